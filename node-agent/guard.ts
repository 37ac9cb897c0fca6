/**
 * `failover-agent guard --group G --epoch N [--action start|stop] -- COMMAND [ARGS...]`
 *
 * The node-side fence of every start and stop the controller sends through SSM Run Command: the
 * command runs only if the state table agrees, at that moment, with the epoch it was sent for. The
 * agent itself brings up groups without an application through the same start, in its own process
 * and with no command (`guardedStart`): one admission rule for everything that starts on a node.
 *
 * start:  lock ─▶ record "starting" (BEFORE the read: a heartbeat must never say "stopped" while a
 *         start is under way) ─▶ strongly consistent read: owner == this node AND epoch == N AND
 *         this node in mayRun? (else exit 3) ─▶ local agent holds a live lease? (else exit 4)
 *         ─▶ addresses on ─▶ COMMAND ─▶ lease still live? ─▶ record "running" at N ─▶ unlock
 *         The lock is checked to be still this run's before the "starting" record, before each
 *         address and as the command is spawned: a start that has lost its lock cannot record what
 *         it does, so the heartbeat could say "stopped" while it runs. It goes no further, and what
 *         it had started (the command's tree, its addresses) is killed and taken off (exit 5).
 * stop:   lock (waits for a start in progress) ─▶ strongly consistent read: epoch == N? (else exit 3:
 *         a delayed stop from an old epoch must not stop a copy started since) ─▶ record "stopping"
 *         ─▶ COMMAND ─▶ addresses off ─▶ record "stopped" at N ─▶ unlock
 *
 * COMMAND: one argument runs through `/bin/sh -c` (as the exec resource's `start`/`stop` strings,
 * e.g. "/opt/app/start.sh --fast"); several arguments run directly, without a shell. Its output
 * goes to the guard's stdout/stderr (SSM captures them). It runs in its own process group, with
 * FAILOVER_GROUP, FAILOVER_EPOCH, FAILOVER_ACTION and FAILOVER_GUARD_RUN in its environment; if the
 * agent fences itself during a start, it kills the guard and that process group and runs the stop
 * scripts itself.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { DEFAULT_TABLE } from '../shared/table/keys';
import type { Clock } from './clock';
import { recordProblem } from './core/admission';
import { EXIT } from './errors';
import { acquireLock, type LockHandle, LockTimeoutError } from './file-lock';
import { leaseProblem } from './lease-check';
import { bootId, type GuardRun, killRunCommand, type LocalGroupRecord, LocalState } from './local-state';
import { errorText } from './log';
import {
  describeExit,
  GUARD_MARKER,
  killGroup,
  killMarked,
  killMarkedUntilGone,
  processStartTime,
  runCommand,
  sameProcessAlive,
} from './process-util';
import { type AgentStore, guardAwsOptions, openStore } from './store';
import type { VipOps } from './vip';

export interface GuardArgs {
  group: string;
  epoch: number;
  action: 'start' | 'stop';
  cluster?: string;
  node?: string;
  table?: string;
  region?: string;
  stateDir: string;
  /** Floating addresses put on the interface before a start and taken off after a stop. */
  vips: string[];
  dev?: string;
  lockTimeoutMs: number;
  /** The start or stop command; empty for the agent's own start of a group without application. */
  command: string[];
  /** The exec resource whose stored start/stop is the command (guard-resource.ts fills `command` from it). */
  resource?: string;
}

export interface GuardDeps {
  env: Record<string, string | undefined>;
  clock: Clock;
  vip: VipOps;
  /** Messages of the guard itself (stderr). */
  err: (line: string) => void;
  /** The state table (the agent's own store when it runs a start in process); default: opened here. */
  store?: AgentStore;
}

/** Runs one guarded start or stop; resolves with the exit code (see errors.ts). */
export async function runGuard(args: GuardArgs, deps: GuardDeps): Promise<number> {
  const { env, err } = deps;
  const say = (line: string) => err(`failover-agent guard: ${line}`);
  const state = new LocalState(args.stateDir);
  if (!existsSync(args.stateDir)) {
    say(
      `refused: state directory ${args.stateDir} does not exist; is failover-agent installed and running here?`,
    );
    return EXIT.noLease;
  }
  state.ensure();
  const lease = state.readLease();
  const cluster = args.cluster ?? env.FAILOVER_CLUSTER ?? lease?.cluster;
  const node = args.node ?? env.FAILOVER_NODE ?? lease?.node;
  if (!cluster || !node) {
    say(
      `cannot tell the cluster and node: no agent.json in ${args.stateDir}; pass --cluster NAME --node NAME`,
    );
    return EXIT.usage;
  }
  const table = args.table ?? env.FAILOVER_TABLE ?? lease?.table ?? DEFAULT_TABLE;
  const region = args.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? lease?.region;
  const store = deps.store ?? openStore(table, guardAwsOptions(env, region, lease?.endpoint));

  let lock: LockHandle;
  try {
    lock = await acquireLock(state.lockFile(args.group), `guard ${args.action} epoch ${args.epoch}`, {
      timeoutMs: args.lockTimeoutMs,
      pollMs: 100,
    });
  } catch (e) {
    if (e instanceof LockTimeoutError) {
      say(`busy: another start or stop of ${args.group} is in progress (${e.message}); try again later`);
      return EXIT.busy;
    }
    throw e;
  }
  const ctx: Ctx = { args, deps, state, say, cluster, node, table, store, lock, left: [] };
  try {
    return args.action === 'start' ? await start(ctx) : await stop(ctx);
  } finally {
    lock.release();
    // A start marks what it spawns through this process's environment (start()); the marker must
    // not outlive the run where the guard runs in a longer-lived process (tests).
    delete process.env[GUARD_MARKER];
  }
}

interface Ctx {
  args: GuardArgs;
  deps: GuardDeps;
  state: LocalState;
  say: (line: string) => void;
  cluster: string;
  node: string;
  table: string;
  store: AgentStore;
  lock: LockHandle;
  /** Markers of interrupted runs not yet killed (LocalGroupRecord.left, newest first), carried in every record. */
  left: string[];
}

/** How often a start checks, while its command runs, that its lock is still its own. */
const LOCK_WATCH_MS = 100;

function newRun(action: 'start' | 'stop'): GuardRun {
  const start = processStartTime(process.pid);
  const boot = bootId();
  return {
    action,
    nonce: randomBytes(8).toString('hex'),
    guardPid: process.pid,
    ...(start !== undefined ? { guardStart: start } : {}),
    ...(boot !== undefined ? { boot } : {}),
  };
}

/** Records the command's pid and start time in its run (what tells it from a later process). */
function spawned(run: GuardRun, pid: number): void {
  run.cmdPid = pid;
  const start = processStartTime(pid);
  if (start !== undefined) run.cmdStart = start;
}

/**
 * Writes the local group record, only while this run holds the group's lock: whoever broke the
 * lock (the agent's fence) owns the record from then on. (A guard process is killed before its lock
 * is broken; the agent's own start runs in the agent's process and finds out here.)
 */
function record(
  ctx: Ctx,
  state: LocalGroupRecord['state'],
  extra: { run?: GuardRun; vips?: string[]; detail?: string; epoch?: number } = {},
): boolean {
  if (!ctx.lock.held()) return false;
  const rec: LocalGroupRecord = {
    group: ctx.args.group,
    state,
    epoch: extra.epoch ?? ctx.args.epoch,
    pid: process.pid,
    at: ctx.deps.clock.wall(),
    ...(extra.run ? { run: extra.run } : {}),
    ...(extra.vips && extra.vips.length > 0 ? { vips: extra.vips } : {}),
    ...(extra.detail ? { detail: extra.detail } : {}),
    ...(ctx.left.length > 0 ? { left: ctx.left } : {}),
  };
  ctx.state.writeGroup(rec);
  return true;
}

/**
 * The interrupted run of the previous record, if its guard is gone (SSM's timeout, a crash): its
 * command's tree is killed now (it must not go on starting or stopping things beside this run), and
 * its marker is carried in this run's records until a stop has killed what carries it.
 */
function takeOverDeadRun(ctx: Ctx, previous: LocalGroupRecord | undefined): GuardRun | undefined {
  ctx.left = [...(previous?.left ?? [])];
  const dead =
    previous?.run && !sameProcessAlive(previous.run.guardPid, previous.run.guardStart)
      ? previous.run
      : undefined;
  if (!dead) return undefined;
  if (!ctx.left.includes(dead.nonce)) ctx.left.unshift(dead.nonce); // newest first
  if (killRunCommand(dead))
    ctx.say(`killed the ${dead.action} command a dead guard left (process group ${dead.cmdPid})`);
  return dead;
}

/** Forwards SIGTERM/SIGINT (an SSM cancel) to the command's process group while it runs. */
function forwardSignals(getPid: () => number | undefined): () => void {
  const handler = (signal: NodeJS.Signals) => {
    const pid = getPid();
    if (pid) killGroup(pid, signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

async function start(ctx: Ctx): Promise<number> {
  const { args, deps, state, say, cluster, node, table, store } = ctx;
  const previous = state.readGroup(args.group);
  takeOverDeadRun(ctx, previous);
  // The agent's own start (no command) runs in the agent's process: no guard run to record, or a
  // fence would take the agent itself for a guard to kill.
  const run = args.command.length > 0 ? newRun('start') : undefined;
  // Everything this run spawns carries its marker, the address commands too: a fence that kills
  // this guard kills an `ip addr add` still under way with it (it would otherwise land after the
  // fence's stop). The guard's own environment, as the OS shows it, is unchanged.
  if (run) process.env[GUARD_MARKER] = run.nonce;
  const vips = [...(previous?.vips ?? [])];
  const added: string[] = [];
  // Registered before the table is read: from here on the heartbeat says "starting", never "stopped".
  // A start that could not record it goes no further.
  if (!record(ctx, 'starting', { ...(run ? { run } : {}), vips })) return abandon(ctx, run, added);
  const refuse = (code: number, why: string): number => {
    // Nothing was started: put the previous record back as it was.
    if (previous) {
      if (ctx.lock.held()) state.writeGroup(previous);
    } else record(ctx, 'stopped', { epoch: 0 });
    say(`refused to start ${args.group} at epoch ${args.epoch}: ${why}`);
    return code;
  };

  let current: Awaited<ReturnType<typeof store.getGroup>>;
  try {
    current = await store.getGroup(cluster, args.group);
  } catch (e) {
    return refuse(EXIT.failed, `cannot read the group record (${errorText(e)})`);
  }
  // The one admission rule (core/admission.ts); the simulation's guard runs the same function.
  const stale = recordProblem(current, node, args.epoch, { group: args.group, cluster, table });
  if (stale) return refuse(EXIT.stale, stale);
  const who = { cluster, node, stateDir: args.stateDir };
  const noLease = leaseProblem(state.readLease(), who, deps.clock);
  if (noLease) return refuse(EXIT.noLease, noLease);

  for (const ip of args.vips) {
    if (!vips.includes(ip)) vips.push(ip);
    // Recorded before the address goes on: any stop takes off what the record lists.
    if (!record(ctx, 'starting', { ...(run ? { run } : {}), vips })) return abandon(ctx, run, added);
    try {
      // Counted as added before the call: an add that fails may still have taken effect (removal
      // is idempotent).
      added.push(ip);
      await deps.vip.add(ip, args.dev);
    } catch (e) {
      say(`cannot put ${ip} on the interface: ${errorText(e)}`);
      if (!ctx.lock.held()) return abandon(ctx, run, added);
      record(ctx, 'failed', { vips, detail: `address ${ip}: ${errorText(e)}` });
      return EXIT.failed;
    }
  }
  if (!run) return finishWithoutCommand(ctx, vips, added, who);
  if (!ctx.lock.held()) return abandon(ctx, run, added);

  let lostLease: string | undefined;
  const unforward = forwardSignals(() => run.cmdPid);
  // The lock is watched while the command runs: one lost is acted on at once, not at its end.
  const watch = setInterval(() => {
    if (!ctx.lock.held()) killRun(run);
  }, LOCK_WATCH_MS);
  const result = await runCommand({
    argv: args.command,
    output: 'inherit',
    env: {
      ...deps.env,
      [GUARD_MARKER]: run.nonce,
      FAILOVER_GROUP: args.group,
      FAILOVER_EPOCH: String(args.epoch),
      FAILOVER_ACTION: 'start',
    },
    onSpawn: (pid) => {
      spawned(run, pid);
      // Not ours any more: nothing would record this command, so it must not run.
      if (!record(ctx, 'starting', { run, vips })) return void killGroup(pid, 'SIGKILL');
      // The agent writes "fenced" before it looks for starts to kill; checking again after our
      // pid is recorded means one of us always sees the other.
      lostLease = leaseProblem(state.readLease(), who, deps.clock);
      if (lostLease) killGroup(pid, 'SIGKILL');
    },
  });
  clearInterval(watch);
  unforward();
  if (!ctx.lock.held()) return abandon(ctx, run, added);
  lostLease ??= leaseProblem(state.readLease(), who, deps.clock);
  if (lostLease) {
    record(ctx, 'failed', { vips, detail: `lease lost during the start: ${lostLease}` });
    say(
      `start of ${args.group} at epoch ${args.epoch} abandoned: ${lostLease}; the agent stops what it started`,
    );
    return EXIT.noLease;
  }
  if (result.code !== 0 || result.timedOut || result.error) {
    record(ctx, 'failed', { vips, detail: `start command: ${describeExit(result)}` });
    say(`start command of ${args.group} failed: ${describeExit(result)}`);
    return EXIT.commandFailed;
  }
  record(ctx, 'running', { vips });
  say(`started ${args.group} at epoch ${args.epoch}`);
  return EXIT.ok;
}

async function stop(ctx: Ctx): Promise<number> {
  const { args, deps, state, say, cluster, table, store } = ctx;
  let current: Awaited<ReturnType<typeof store.getGroup>>;
  try {
    current = await store.getGroup(cluster, args.group);
  } catch (e) {
    say(`cannot read the record of ${args.group}: ${errorText(e)}; nothing was stopped`);
    return EXIT.failed;
  }
  if (!current) {
    say(`refused to stop ${args.group}: it has no record in table ${table} (cluster ${cluster})`);
    return EXIT.stale;
  }
  if (current.epoch !== args.epoch) {
    say(
      `refused to stop ${args.group} at epoch ${args.epoch}: the record is at epoch ${current.epoch} (owner ${current.owner ?? 'none'}); a stop from an older epoch must not stop a copy started since`,
    );
    return EXIT.stale;
  }
  const previous = state.readGroup(args.group);
  // A start whose guard died must not go on starting things while, or after, this stop runs; what
  // carries its marker dies after the stop command (which stops the application cleanly first).
  takeOverDeadRun(ctx, previous);
  const run = newRun('stop');
  const vips = [...new Set([...(previous?.vips ?? []), ...args.vips])];
  record(ctx, 'stopping', { run, vips });
  const unforward = forwardSignals(() => run.cmdPid);
  const result = await runCommand({
    argv: args.command,
    output: 'inherit',
    env: {
      ...deps.env,
      [GUARD_MARKER]: run.nonce,
      FAILOVER_GROUP: args.group,
      FAILOVER_EPOCH: String(args.epoch),
      FAILOVER_ACTION: 'stop',
    },
    onSpawn: (pid) => {
      spawned(run, pid);
      record(ctx, 'stopping', { run, vips });
    },
  });
  unforward();
  if (!ctx.lock.held()) {
    say(`the stop of ${args.group} was taken over by the agent (self-fence)`);
    return EXIT.busy;
  }
  const problems: string[] = [];
  const { survivors } = await killMarkedUntilGone(ctx.left);
  if (survivors.length > 0)
    problems.push(`processes of an interrupted run outlived SIGKILL: ${survivors.join(', ')}`);
  else ctx.left = [];
  if (result.code !== 0 || result.timedOut || result.error)
    problems.push(`stop command: ${describeExit(result)}`);
  const left: string[] = [];
  for (const ip of vips) {
    try {
      await deps.vip.remove(ip);
    } catch (e) {
      problems.push(`address ${ip}: ${errorText(e)}`);
      left.push(ip);
    }
  }
  if (problems.length > 0) {
    // A failed stop is an error, never "not running".
    record(ctx, 'failed', { vips: left, detail: problems.join('; ') });
    say(`stop of ${args.group} failed: ${problems.join('; ')}`);
    return result.code !== 0 || result.timedOut || result.error ? EXIT.commandFailed : EXIT.failed;
  }
  record(ctx, 'stopped');
  say(`stopped ${args.group} at epoch ${args.epoch}`);
  return EXIT.ok;
}

/**
 * The end of a start without a command (the agent's own start of a group without application):
 * the addresses are on; the group runs here once the lease still holds and nobody broke the lock.
 */
async function finishWithoutCommand(
  ctx: Ctx,
  vips: string[],
  added: string[],
  who: { cluster: string; node: string; stateDir: string },
): Promise<number> {
  const { args, deps, state, say } = ctx;
  if (!ctx.lock.held()) return abandon(ctx, undefined, added);
  const lostLease = leaseProblem(state.readLease(), who, deps.clock);
  if (lostLease) {
    record(ctx, 'failed', { vips, detail: `lease lost during the start: ${lostLease}` });
    say(`start of ${args.group} at epoch ${args.epoch} abandoned: ${lostLease}; the agent stops it`);
    return EXIT.noLease;
  }
  record(ctx, 'running', { vips });
  say(
    `started ${args.group} at epoch ${args.epoch}${vips.length > 0 ? ` (${vips.join(', ')} on the interface)` : ''}`,
  );
  return EXIT.ok;
}

/**
 * A start that finds its lock gone: whoever took it (the agent's fence, which stops the group
 * under it; a guard run's lock is only taken after its guard was killed, the agent's own start's
 * while it runs) owns the record from then on, so this run can record nothing, and what it started
 * must not outlive it: its command's tree and what carries its marker are killed, and the
 * addresses it put on are taken off (the fence may have run its stop before they went on).
 */
async function abandon(ctx: Ctx, run: GuardRun | undefined, added: string[]): Promise<number> {
  const { args, deps, say } = ctx;
  if (run) killRun(run);
  for (const ip of added) await deps.vip.remove(ip).catch(() => undefined);
  say(
    `the start of ${args.group} at epoch ${args.epoch} was interrupted: its lock ${ctx.lock.file} was taken (the agent's self-fence takes it to stop the group); what this start did is undone`,
  );
  return EXIT.busy;
}

/** Kills what a start run spawned: its command's tree and every process carrying its marker. */
function killRun(run: GuardRun): void {
  if (run.cmdPid) killGroup(run.cmdPid, 'SIGKILL');
  killMarked(run.nonce);
}
