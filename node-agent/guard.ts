/**
 * `failover-agent guard --group G --epoch N [--action start|stop] -- COMMAND [ARGS...]`
 *
 * The node-side fence of every start and stop the controller sends through SSM Run Command: the
 * command runs only if the state table agrees, at that moment, with the epoch it was sent for.
 *
 * start:  lock ─▶ record "starting" (BEFORE the read: a heartbeat must never say "stopped" while a
 *         start is under way) ─▶ strongly consistent read: owner == this node AND epoch == N?
 *         (else exit 3) ─▶ local agent holds a live lease? (else exit 4) ─▶ VIP on ─▶ COMMAND
 *         ─▶ lease still live? ─▶ record "running" at N ─▶ unlock
 * stop:   lock (waits for a start in progress) ─▶ strongly consistent read: epoch == N? (else exit 3:
 *         a delayed stop from an old epoch must not stop a copy started since) ─▶ record "stopping"
 *         ─▶ COMMAND ─▶ VIP off ─▶ record "stopped" at N ─▶ unlock
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
import { DEFAULT_TABLE } from '../shared/state/keys';
import type { Clock } from './clock';
import { EXIT } from './errors';
import { acquireLock, type LockHandle, LockTimeoutError } from './file-lock';
import { leaseProblem } from './lease-check';
import { type GuardRun, type LocalGroupRecord, LocalState } from './local-state';
import { errorText } from './log';
import { describeExit, GUARD_MARKER, killGroup, processStartTime, runCommand } from './process-util';
import { guardAwsOptions, openStore } from './store';
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
  vip?: string;
  dev?: string;
  lockTimeoutMs: number;
  command: string[];
}

export interface GuardDeps {
  env: Record<string, string | undefined>;
  clock: Clock;
  vip: VipOps;
  /** Messages of the guard itself (stderr). */
  err: (line: string) => void;
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
  const store = openStore(table, guardAwsOptions(env, region, lease?.endpoint));

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
  const ctx: Ctx = { args, deps, state, say, cluster, node, table, store, lock };
  try {
    return args.action === 'start' ? await start(ctx) : await stop(ctx);
  } finally {
    lock.release();
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
  store: ReturnType<typeof openStore>;
  lock: LockHandle;
}

function newRun(action: 'start' | 'stop'): GuardRun {
  const start = processStartTime(process.pid);
  return {
    action,
    nonce: randomBytes(8).toString('hex'),
    guardPid: process.pid,
    ...(start !== undefined ? { guardStart: start } : {}),
  };
}

function record(
  ctx: Ctx,
  state: LocalGroupRecord['state'],
  extra: { run?: GuardRun; vips?: string[]; detail?: string; epoch?: number } = {},
): void {
  const rec: LocalGroupRecord = {
    group: ctx.args.group,
    state,
    epoch: extra.epoch ?? ctx.args.epoch,
    pid: process.pid,
    at: ctx.deps.clock.wall(),
    ...(extra.run ? { run: extra.run } : {}),
    ...(extra.vips && extra.vips.length > 0 ? { vips: extra.vips } : {}),
    ...(extra.detail ? { detail: extra.detail } : {}),
  };
  ctx.state.writeGroup(rec);
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
  const run = newRun('start');
  const vips = [...(previous?.vips ?? [])];
  // Registered before the table is read: from here on the heartbeat says "starting", never "stopped".
  record(ctx, 'starting', { run, vips });
  const refuse = (code: number, why: string): number => {
    // Nothing was started: put the previous record back as it was.
    if (previous) state.writeGroup(previous);
    else record(ctx, 'stopped', { epoch: 0 });
    say(`refused to start ${args.group} at epoch ${args.epoch}: ${why}`);
    return code;
  };

  let current: Awaited<ReturnType<typeof store.getGroup>>;
  try {
    current = await store.getGroup(cluster, args.group);
  } catch (e) {
    return refuse(EXIT.failed, `cannot read the group record (${errorText(e)})`);
  }
  if (!current) {
    return refuse(EXIT.stale, `group ${args.group} has no record in table ${table} (cluster ${cluster})`);
  }
  if (current.owner !== node || current.epoch !== args.epoch) {
    return refuse(
      EXIT.stale,
      `the record names ${current.owner ?? 'no owner'} at epoch ${current.epoch}, not ${node} at epoch ${args.epoch} (stale epoch or not the owner)`,
    );
  }
  const who = { cluster, node, stateDir: args.stateDir };
  const noLease = leaseProblem(state.readLease(), who, deps.clock);
  if (noLease) return refuse(EXIT.noLease, noLease);

  if (args.vip) {
    try {
      await deps.vip.add(args.vip, args.dev);
      if (!vips.includes(args.vip)) vips.push(args.vip);
      record(ctx, 'starting', { run, vips });
    } catch (e) {
      record(ctx, 'failed', { vips: [...vips, args.vip], detail: `VIP ${args.vip}: ${errorText(e)}` });
      say(`cannot put VIP ${args.vip} on the interface: ${errorText(e)}`);
      return EXIT.failed;
    }
  }

  let lostLease: string | undefined;
  const unforward = forwardSignals(() => run.cmdPid);
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
      run.cmdPid = pid;
      record(ctx, 'starting', { run, vips });
      // The agent writes "fenced" before it looks for starts to kill; checking again after our
      // pid is recorded means one of us always sees the other.
      lostLease = leaseProblem(state.readLease(), who, deps.clock);
      if (lostLease) killGroup(pid, 'SIGKILL');
    },
  });
  unforward();
  if (!ctx.lock.held()) {
    say(`the start of ${args.group} was interrupted: the agent took over the group (self-fence)`);
    return EXIT.busy;
  }
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
  const run = newRun('stop');
  const vips = [...(previous?.vips ?? [])];
  if (args.vip && !vips.includes(args.vip)) vips.push(args.vip);
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
      run.cmdPid = pid;
      record(ctx, 'stopping', { run, vips });
    },
  });
  unforward();
  if (!ctx.lock.held()) {
    say(`the stop of ${args.group} was taken over by the agent (self-fence)`);
    return EXIT.busy;
  }
  const problems: string[] = [];
  if (result.code !== 0 || result.timedOut || result.error)
    problems.push(`stop command: ${describeExit(result)}`);
  const left: string[] = [];
  for (const ip of vips) {
    try {
      await deps.vip.remove(ip);
    } catch (e) {
      problems.push(`VIP ${ip}: ${errorText(e)}`);
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
