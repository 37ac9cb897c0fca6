/**
 * One lane of `npm run chaos`: a sandbox cluster (two real agent processes of the shipped bundle,
 * the real controller code, one group with a VIP, an Elastic IP, a record and the writer as its
 * application) on the shared emulator, through which runs pass one after another. Several lanes run
 * side by side on one emulator, each with its own account, table and ledger.
 *
 * What a lane adds to the sandbox, all outside the production code:
 *   - systemd: an agent that exits is started again after 1 s (Restart=always, RestartSec=1);
 *   - a node the watchdog reset (or a crash) boots again: its applications and addresses are gone,
 *     its state directory stays, the agent starts;
 *   - each node's wall clock can jump (libfaketime, LD_PRELOAD, with a timestamp file per node;
 *     CLOCK_MONOTONIC is left alone, as a jump of the real clock leaves it);
 *   - the stop script can be made slow or to hang (a file it reads);
 *   - controller invocations can be delayed or duplicated, and one can stall after its fence.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControllerDeps } from '../../controller/reconcile/entry';
import type { DynamoStore } from '../../controller/state/dynamo-store';
import { effectiveLeaseMs, liveWindowMs, sentLongAgo } from '../../shared/config/timing';
import { FULL_GROUP } from '../network';
import { type EntryPoints, Sandbox, type SandboxNode } from '../sandbox';
import { describeInterval, LedgerChecker, type Overlap } from './checker';
import { describePlan, type Fault, type Perturbation, type PlanTiming, type RunPlan, rng } from './faults';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRITER = join(REPO, 'sandbox', 'chaos', 'writer.mjs');

/** The lanes' timing: a short lease so that a run (fault, failover, recovery) takes seconds. */
export const CHAOS_TIMING = { heartbeatIntervalMs: 1000, leaseMs: 3000, maxClockSkewMs: 200 };
/** The exec resource's timeoutSec: the stop budget a slow stop stays under and a hanging one exceeds. */
export const STOP_TIMEOUT_SEC = 6;
export const PLAN_TIMING: PlanTiming = {
  leaseMs: CHAOS_TIMING.leaseMs,
  heartbeatIntervalMs: CHAOS_TIMING.heartbeatIntervalMs,
  stopTimeoutSec: STOP_TIMEOUT_SEC,
};
/** systemd's RestartSec in the agent's unit. */
const RESTART_MS = 1000;
/** How long a node the watchdog reset takes to boot again. */
const REBOOT_MS = 1500;
/**
 * A run that has not converged this long after its fault is healed is stuck. Generous: on a
 * loaded 2-core machine the one emulator all lanes share answers in seconds, agents' renewals time
 * out and the controller's invocations run out of time for minutes at a stretch (seen at a load
 * average of 50), with the service back long before both agents renew steadily again.
 */
const CONVERGE_TIMEOUT_MS = 150_000;
/**
 * A run ends no sooner than this after its fault was healed: the time a silent node still counts as
 * alive (its lease and the clock skew, shared/config/timing.ts) and a heartbeat.
 */
const SETTLE_MIN_MS = liveWindowMs(0, CHAOS_TIMING) + CHAOS_TIMING.heartbeatIntervalMs;
/** The compressed schedule (1 minute in AWS). */
const SCHEDULE_MS = 3000;
/**
 * The groups' stableAfterMs in the lanes: a few heartbeats. A run starts only once the group's
 * restart and failover counters are back to zero (`fresh`), which takes this long after a recovery
 * that spent them: otherwise a run's fault meets the budget its predecessor spent, and a policy with
 * `finalAction: none` rightly leaves the group down (seen: run 157 of session 20261202).
 */
const STABLE_AFTER_MS = 3000;
/** Lambda's timeout in the lanes: short, so that a stalled invocation's lock runs out within a run. */
const INVOCATION_MS = 10_000;

export interface LaneOptions {
  index: number;
  endpoint: string;
  agentScript: string;
  /** libfaketime's library, or undefined: wall clocks cannot jump (clock-jump faults are skipped). */
  faketime: string | undefined;
  root: string;
  /** Progress of the lane (start-up), not of runs. */
  say: (line: string) => void;
  /** The agents log at info level (a replay), not only warnings. */
  verbose?: boolean;
}

export interface RunResult {
  index: number;
  seed: number;
  lane: number;
  plan: RunPlan;
  /** The owner when the run began, and at its end. */
  from: string;
  to: string | null;
  /**
   * From the fault to the moment every entry point, the VIP and the only writer were on the final
   * owner for good (ms); 0 when the service was never seen disrupted.
   */
  recoveredMs: number;
  /** Whether the service was seen disrupted at all (moved, stopped, an entry point elsewhere). */
  disrupted: boolean;
  /** Safety (writers overlapping) and liveness (not converged) problems; empty: the run passed. */
  violations: string[];
  /** Overlapping writers the checker found in this run: of two nodes, and of one node. */
  overlaps: { twoNodes: number; oneNode: number };
  /** The run did not converge (one owner with every entry point) in time. */
  stuck: boolean;
  /** Anomalies that are not violations (e.g. a late watchdog reset of the emulation). */
  notes: string[];
  log: string[];
  wallMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export class ChaosLane {
  sandbox!: Sandbox;
  readonly ledger: LedgerChecker;
  private readonly dir: string;
  private lines: string[] = [];
  private t0 = Date.now();
  private perturbations: Perturbation[] = [];
  private eventRandom: () => number = Math.random;
  private stall: {
    armed: boolean;
    after?: { cluster: string; group: string; holder: string };
  } = { armed: false };
  private stopping = false;
  /** Nodes with a boot pending (a crash and its watchdog must not boot a node twice). */
  private readonly booting = new Set<string>();
  private starting = false;
  /** When the previous run ended settled (healthy for a heartbeat): the next run need not wait again. */
  private settledAt = Number.NaN;
  /** Worst lateness of an emulated watchdog reset (its polling), ms. */
  maxResetLateMs = 0;
  private readonly origin = process.hrtime.bigint();

  constructor(private readonly o: LaneOptions) {
    this.dir = join(o.root, `lane-${o.index}`);
    mkdirSync(this.dir, { recursive: true });
    this.ledger = new LedgerChecker(join(this.dir, 'ledger'));
    writeFileSync(this.ledger.file, '');
  }

  /** A line in the current run's log, with the time since the run began. */
  private log(line: string): void {
    this.lines.push(`${`+${((Date.now() - this.t0) / 1000).toFixed(3)}s`.padStart(9)} ${line}`);
  }

  async start(): Promise<void> {
    const pidFile = '"$SANDBOX_NODE_DIR/app-$FAILOVER_GROUP.pid"';
    const alive = `[ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null`;
    // Idempotent, as start scripts must be: the controller may send a start again (a retry after a
    // lost answer), and a second writer would orphan the first one's pid file.
    const running = `p=$(cat ${pidFile} 2>/dev/null) && [ -n "$p" ] && ${alive} && tr '\\0' ' ' </proc/$p/cmdline | grep -q writer.mjs`;
    const start = `if ${running}; then echo "already running (pid $p)"; else (setsid nohup "${process.execPath}" "${WRITER}" >>"$SANDBOX_NODE_DIR/app-$FAILOVER_GROUP.log" 2>&1 & echo $! > ${pidFile}); fi`;
    // A stop-sleep file makes the stop script slow (under its timeout) or hang (well past it, the
    // application still running when the script is killed).
    const stop = `s=$(cat "$SANDBOX_NODE_DIR/stop-sleep" 2>/dev/null); if [ -n "$s" ]; then echo "stop script sleeps $s s"; sleep "$s"; fi; if [ -f ${pidFile} ]; then p=$(cat ${pidFile}); kill "$p" 2>/dev/null; for i in $(seq 50); do ${alive} || break; sleep 0.05; done; kill -9 "$p" 2>/dev/null; rm -f ${pidFile}; fi; true`;
    this.sandbox = new Sandbox({
      endpoint: this.o.endpoint,
      agentScript: this.o.agentScript,
      groups: [FULL_GROUP],
      timing: CHAOS_TIMING,
      scheduleMs: SCHEDULE_MS,
      invocationMs: INVOCATION_MS,
      // Runs are independent: a group healthy for a few seconds after one run's fault starts the
      // next with its recovery counters reset. With the product's 10 minutes, a lane's faults use
      // up the one failover the agent's "stopped" report allows, and the group, rightly by that
      // policy, stays down after the next reset of its owner (final action none).
      stableAfterMs: STABLE_AFTER_MS,
      app: { start, stop, timeoutSec: STOP_TIMEOUT_SEC },
      say: (line) => {
        if (!this.starting) this.log(line.trim());
        else if (!line.trim().startsWith('controller')) this.o.say(`lane ${this.o.index}: ${line.trim()}`);
      },
      agentLogLevel: this.o.verbose ? 'info' : 'warn',
      nodeEnv: (_node, dir) => this.nodeEnv(dir),
      deliver: (trigger, run) => this.deliver(trigger, run),
      wrapController: (deps, clients) => this.wrapController(deps, clients),
      onReset: (node, overdue) => {
        this.maxResetLateMs = Math.max(this.maxResetLateMs, overdue);
        this.reboot(node, REBOOT_MS);
      },
    });
    this.starting = true;
    await this.sandbox.start();
    this.starting = false;
    for (const n of this.sandbox.nodes.values()) this.supervise(n);
    let first = await this.waitConverged(60_000);
    if (!Number.isFinite(first.at)) {
      // As an operator would: a start request clears the nodes set aside after failed starts.
      await this.requestStart();
      first = await this.waitConverged(60_000);
    }
    if (!Number.isFinite(first.at))
      throw new Error(
        `lane ${this.o.index} did not start: ${Sandbox.describeAll(first.e)}\n${this.lines.join('\n')}`,
      );
    this.o.say(
      `lane ${this.o.index}: table ${this.sandbox.store.table}, work directory ${this.sandbox.workDir}`,
    );
  }

  /** `failoverctl start db`: what an operator does for a group that failed on every node. */
  private async requestStart(): Promise<void> {
    try {
      const r = await this.sandbox.store.putRequest(
        'sandbox',
        { kind: 'start', group: this.sandbox.primary, by: 'chaos (operator)' },
        Date.now(),
      );
      this.log(`requested: start ${this.sandbox.primary} (${r.id}), as an operator would`);
    } catch (e) {
      // A busy emulator: an attempt that landed but whose answer was lost makes its retry
      // conflict; the request is there, or the wait that follows shows that it is not.
      this.log(`request to start ${this.sandbox.primary}: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.sandbox?.stop();
  }

  // ------------------------------------------------------------------------------------------
  // The node's world: environment, systemd, reboots, clocks

  private nodeEnv(dir: string): Record<string, string> {
    const env: Record<string, string> = { CHAOS_LEDGER: this.ledger.file };
    if (this.o.faketime) {
      writeFileSync(join(dir, 'faketime'), '+0s\n');
      Object.assign(env, {
        LD_PRELOAD: this.o.faketime,
        FAKETIME_TIMESTAMP_FILE: join(dir, 'faketime'),
        // Read the offset at every call, so that a jump takes effect at once.
        FAKETIME_NO_CACHE: '1',
        // A jump of the wall clock leaves CLOCK_MONOTONIC alone (both spellings: 0.9.10 and later).
        DONT_FAKE_MONOTONIC: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      });
    }
    return env;
  }

  private setClock(node: SandboxNode, offsetSec: number): void {
    writeFileSync(join(node.dir, 'faketime'), `${offsetSec >= 0 ? '+' : ''}${offsetSec}s\n`);
  }

  /** systemd: the agent is started again RESTART_MS after it exits, while the node is up. */
  private startAgent(node: SandboxNode): void {
    this.sandbox.startAgent(node);
    this.supervise(node);
  }

  private supervise(node: SandboxNode): void {
    const child = node.agent;
    child?.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.log(`[systemd] agent of ${node.name} exited (${signal ?? code})`);
      setTimeout(() => {
        if (this.stopping || !node.up() || node.agent !== child) return;
        this.log(`[systemd] starting the agent of ${node.name} again`);
        this.startAgent(node);
      }, RESTART_MS);
    });
  }

  /** The node boots again after `bootMs`: nothing of before runs, its state directory stays. */
  private reboot(node: SandboxNode, bootMs: number): void {
    node.isUp = false;
    if (this.booting.has(node.name)) return;
    this.booting.add(node.name);
    setTimeout(() => {
      this.booting.delete(node.name);
      if (this.stopping) return;
      node.forgetApps();
      node.clearAddresses();
      this.log(`[boot] ${node.name} is up again; starting its agent`);
      this.startAgent(node);
    }, bootMs);
  }

  // ------------------------------------------------------------------------------------------
  // The controller's world: events and a stalled invocation

  private deliver(trigger: string, run: () => Promise<unknown>): void {
    const delayed = this.perturbations.find((p) => p.kind === 'delayed-events');
    const duplicated = this.perturbations.find((p) => p.kind === 'duplicated-events');
    const r = this.eventRandom;
    const delay = delayed && r() < delayed.p ? Math.round(r() * delayed.maxMs) : 0;
    if (delay > 0) this.log(`[events] ${trigger} invocation delayed by ${delay} ms`);
    if (delay > 0) setTimeout(() => void run(), delay);
    else void run();
    if (duplicated && r() < duplicated.p) {
      const again = delay + Math.round(r() * duplicated.maxMs);
      this.log(`[events] ${trigger} invocation delivered again after ${again} ms`);
      setTimeout(() => void run(), again);
    }
  }

  /**
   * The stall of one invocation after its fence: once armed, the first fence that succeeds makes the
   * next mutating AWS call wait until the group's lock has expired, and then go out as if the
   * invocation had been frozen between the fence and the call and woke before its own deadline
   * timer (the call is sent without its abort signal). The fence no longer covers it: the guard,
   * the drift checks and the next holder must make it harmless.
   */
  private wrapController(
    deps: ControllerDeps,
    clients: { ec2: object; route53: object; ssm: object },
  ): ControllerDeps {
    const store = deps.store as DynamoStore;
    const fence = store.fence.bind(store);
    store.fence = async (cluster, group, guard) => {
      await fence(cluster, group, guard);
      if (this.stall.armed) {
        this.stall = { armed: false, after: { cluster, group, holder: guard.holder } };
        this.log(`[stall] ${guard.holder} passed its fence (epoch ${guard.epoch}); its next call stalls`);
      }
    };
    type Send = (command: object, options?: { abortSignal?: unknown }) => Promise<unknown>;
    for (const client of Object.values(clients) as { send: Send }[]) {
      const send = client.send.bind(client) as Send;
      client.send = async (command, options) => {
        const name = command.constructor.name.replace(/Command$/, '');
        const after = this.stall.after;
        if (!after || /^(Describe|Get|List)/.test(name)) return send(command, options);
        this.stall.after = undefined;
        const record = await this.sandbox.store.getGroup(after.cluster, after.group);
        const until = (record?.lock?.expiresAt ?? Date.now()) + 300;
        this.log(
          `[stall] ${name} of ${after.holder} held for ${until - Date.now()} ms, until after the lock expires`,
        );
        await sleep(until - Date.now());
        this.log(`[stall] ${name} of ${after.holder} goes out now, its fence long expired`);
        const { abortSignal: _dropped, ...rest } = options ?? {};
        return send(command, rest);
      };
    }
    return deps;
  }

  // ------------------------------------------------------------------------------------------
  // One run

  /**
   * Where the cluster stands: `service` when the group is wholly on one owner (its record Online,
   * every entry point, the VIP on that owner's interface only, the only running writer), `healthy`
   * when both agents renew as well.
   */
  private async look(): Promise<{ service: boolean; healthy: boolean; fresh: boolean; e: EntryPoints[] }> {
    // The cheap parts first (one read, local files): the describe calls of the entry points are
    // what the emulator is slowest at, and it serves the agents and the controller meanwhile.
    const group = this.sandbox.primary;
    const record = (await this.sandbox.store.listGroups('sandbox')).find((g) => g.group === group);
    const nodes = [...this.sandbox.nodes.values()];
    const apps = nodes.filter((n) => n.appPid(group) !== undefined).map((n) => n.name);
    const vip = this.sandbox.net.groups[0]?.vip;
    const holders = nodes.filter((n) => vip !== undefined && n.addresses().includes(vip)).map((n) => n.name);
    const owner = record?.owner;
    const local =
      owner &&
      record.phase === 'Online' &&
      apps.length === 1 &&
      apps[0] === owner &&
      holders.length === 1 &&
      holders[0] === owner;
    if (!local) return { service: false, healthy: false, fresh: false, e: [] };
    // The recovery budgets spent by the previous run are back (stableAfterMs of health reset them).
    const fresh =
      Object.values(record.restarts).every((n) => !n) && Object.values(record.failovers).every((n) => !n);
    const e = await this.sandbox.entryPoints();
    const service = e.every(
      (g) => g.owner !== null && Sandbox.consistent(g, g.owner, this.sandbox.shapes[0]!),
    );
    if (!service) return { service, healthy: false, fresh, e };
    const hbs = await this.sandbox.store.getHeartbeats('sandbox', ['node1', 'node2']);
    const now = Date.now();
    const live = Object.values(hbs).filter(
      (h) =>
        h.state === 'running' &&
        !sentLongAgo(h.sentAt, effectiveLeaseMs(h.leaseMs, CHAOS_TIMING), now, CHAOS_TIMING),
    );
    return { service, healthy: live.length === 2, fresh, e };
  }

  /**
   * Looks every 200 ms from now on. `settled(timeoutMs)` resolves once the cluster has been healthy
   * for a heartbeat (not a moment between two moves), with the start of the service's final
   * stretch: when the group last became wholly available, which is the failover time of a fault
   * that moved it; `disrupted` tells whether it was ever seen otherwise.
   */
  private watch(): {
    /** Settled for a heartbeat, and not sooner than `minMs` from now. */
    settled: (
      timeoutMs: number,
      minMs: number,
      /** Also wait until the group's restart and failover counters are back to zero. */
      fresh?: boolean,
    ) => Promise<{ at: number; e: EntryPoints[]; disrupted: boolean }>;
  } {
    let serviceSince = Number.NaN;
    let healthySince = Number.NaN;
    let disrupted = false;
    let last: EntryPoints[] = [];
    let stopped = false;
    let notBefore = Number.POSITIVE_INFINITY;
    let wantFresh = false;
    let done: (() => void) | undefined;
    const loop = (async () => {
      while (!stopped) {
        const c = await this.look().catch(() => ({
          service: false,
          healthy: false,
          fresh: false,
          e: [] as EntryPoints[],
        }));
        const now = Date.now();
        if (c.e.length > 0) last = c.e;
        if (c.service) {
          if (Number.isNaN(serviceSince)) serviceSince = now;
        } else {
          serviceSince = Number.NaN;
          disrupted = true;
        }
        if (c.service && c.healthy) {
          if (Number.isNaN(healthySince)) healthySince = now;
        } else healthySince = Number.NaN;
        if (
          done &&
          now >= notBefore &&
          now - healthySince >= CHAOS_TIMING.heartbeatIntervalMs &&
          (!wantFresh || c.fresh)
        )
          done();
        await sleep(200);
      }
    })();
    return {
      settled: async (timeoutMs, minMs, fresh = false) => {
        notBefore = Date.now() + minMs;
        wantFresh = fresh;
        const ok = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), timeoutMs);
          done = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        stopped = true;
        await loop;
        if (ok) return { at: serviceSince, e: last, disrupted };
        // Where everything stands, for the report.
        return { at: Number.NaN, e: await this.sandbox.entryPoints().catch(() => last), disrupted };
      },
    };
  }

  /**
   * The previous run's settled end, if it is recent (under a heartbeat ago) and one look now still
   * finds one owner with every entry point and both agents renewing; otherwise undefined.
   */
  private async stillSettled(): Promise<{ at: number; e: EntryPoints[]; disrupted: boolean } | undefined> {
    const since = this.settledAt;
    this.settledAt = Number.NaN;
    if (!(Date.now() - since < CHAOS_TIMING.heartbeatIntervalMs)) return undefined;
    const c = await this.look().catch(() => undefined);
    return c?.service && c.healthy && c.fresh ? { at: Date.now(), e: c.e, disrupted: false } : undefined;
  }

  private waitConverged(timeoutMs: number): Promise<{ at: number; e: EntryPoints[]; disrupted: boolean }> {
    return this.watch().settled(timeoutMs, 0, true);
  }

  private nodesByRole(e: EntryPoints[]): { owner: SandboxNode; standby: SandboxNode } {
    const name = e[0]?.owner ?? 'node1';
    const owner = this.sandbox.nodes.get(name)!;
    const standby = [...this.sandbox.nodes.values()].find((n) => n !== owner)!;
    return { owner, standby };
  }

  async run(index: number, plan: RunPlan): Promise<RunResult> {
    const wallStart = Date.now();
    this.lines = [];
    this.t0 = Date.now();
    const violations: string[] = [];
    const notes: string[] = [];
    const logOffsets = new Map(
      [...this.sandbox.nodes.values()].map((n) => [n.name, fileSize(join(n.dir, 'agent.log'))]),
    );
    this.log(`run ${index} (seed ${plan.seed}, lane ${this.o.index}): ${describePlan(plan)}`);
    // Start from a settled cluster (the previous run's end, or a lane just started). A run that ended
    // settled a moment ago was healthy for a heartbeat already: one fresh look that still finds it so
    // is enough (waiting another heartbeat per run cost about a tenth of a session).
    let pre = await this.stillSettled();
    if (!pre) pre = await this.waitConverged(CONVERGE_TIMEOUT_MS);
    if (!Number.isFinite(pre.at)) {
      notes.push(`the lane had not settled before the run: ${Sandbox.describeAll(pre.e)}; start requested`);
      await this.requestStart().catch((e) => this.log(`the start request failed: ${(e as Error).message}`));
      pre = await this.waitConverged(CONVERGE_TIMEOUT_MS);
    }
    const { owner, standby } = this.nodesByRole(pre.e);
    const target = plan.fault.target === 'owner' ? owner : standby;
    this.log(`owner ${owner.name} at epoch ${pre.e[0]?.epoch}; the fault hits ${target.name}`);
    this.eventRandom = rng(plan.seed ^ 0x5bd1e995);
    this.perturbations = plan.perturbations;

    await sleep(plan.fault.offsetMs);
    this.t0 = Date.now();
    this.log(`fault: ${plan.fault.kind} on ${target.name}`);
    const faultAt = Date.now();
    const watch = this.watch();
    try {
      await this.inject(plan.fault, target, owner, standby);
    } catch (e) {
      notes.push(`the fault could not be injected: ${(e as Error).message}`);
    }
    this.log('healed; waiting for one owner with every entry point');
    // What a fault sets going may take a lease to show (a watchdog reset, a peer's silence proof):
    // a run never ends sooner than that after its fault was healed.
    const done = await watch.settled(CONVERGE_TIMEOUT_MS, SETTLE_MIN_MS);
    this.perturbations = [];
    this.stall = { armed: false };
    // A fault that never took the service away (a short cut, the standby's) recovered at once.
    const recoveredMs = Number.isFinite(done.at)
      ? done.disrupted
        ? Math.max(0, done.at - faultAt)
        : 0
      : Number.NaN;
    if (!Number.isFinite(done.at))
      violations.push(
        `not converged ${CONVERGE_TIMEOUT_MS / 1000} s after the fault was healed: ${Sandbox.describeAll(done.e)}`,
      );
    else
      this.log(
        `converged ${(recoveredMs / 1000).toFixed(2)} s after the fault: ${Sandbox.describeAll(done.e)}`,
      );
    // Writers still running keep appending: read once more a moment later, so that an overlap at
    // the very end of the run is seen in this run.
    await sleep(100);
    const found = this.ledger.check(index);
    for (const o of found) violations.push(describeOverlap(o, this.origin));
    this.settledAt = Number.isFinite(done.at) ? Date.now() : Number.NaN;
    this.logCommands(wallStart);
    const last = this.ledger.lastWriter();
    if (last) this.log(`last writer: ${describeInterval(last, this.origin)}`);
    for (const n of this.sandbox.nodes.values()) {
      const text = readFrom(join(n.dir, 'agent.log'), logOffsets.get(n.name) ?? 0);
      if (text.trim())
        this.lines.push(`--- agent log of ${n.name} (warnings and errors) ---`, text.trimEnd());
    }
    return {
      index,
      seed: plan.seed,
      lane: this.o.index,
      plan,
      from: owner.name,
      to: done.e[0]?.owner ?? null,
      recoveredMs,
      disrupted: done.disrupted,
      violations,
      overlaps: {
        twoNodes: found.filter((o) => o.kind === 'two-nodes').length,
        oneNode: found.filter((o) => o.kind === 'one-node-two-writers').length,
      },
      stuck: !Number.isFinite(done.at),
      notes,
      log: this.lines,
      wallMs: Date.now() - wallStart,
    };
  }

  /** The SSM commands of the run (through the guard), each with its outcome, into the run's log. */
  private logCommands(since: number): void {
    const names = new Map([...this.sandbox.nodes.values()].map((n) => [n.instanceId, n.name]));
    for (const c of this.sandbox.commands) {
      if (c.at < since) continue;
      const epoch = /--epoch (\d+)/.exec(c.line)?.[1] ?? '?';
      const action = /--action (\w+)/.exec(c.line)?.[1] ?? 'start';
      const said = `${c.run.stdout}${c.run.stderr}`.trim().split('\n').slice(-2).join(' | ');
      this.lines.push(
        `${`+${((c.at - this.t0) / 1000).toFixed(3)}s`.padStart(9)} [ssm] ${names.get(c.instanceId) ?? c.instanceId}: guard ${action} at epoch ${epoch} -> ${c.run.status} (${c.run.code}) ${said}`,
      );
    }
  }

  /** Injects the fault, holds it, and heals it (returns when healed). */
  private async inject(
    f: Fault,
    target: SandboxNode,
    owner: SandboxNode,
    standby: SandboxNode,
  ): Promise<void> {
    switch (f.kind) {
      case 'sigkill-agent':
        this.log(`SIGKILL to the agent of ${target.name} (pid ${target.agent?.pid})`);
        target.agent?.kill('SIGKILL');
        return;
      case 'sigkill-node': {
        this.log(`${target.name} crashes: SIGKILL to every process of the node`);
        const killed = target.crash();
        this.log(`killed ${killed.length} processes of ${target.name}`);
        this.reboot(target, f.bootMs ?? REBOOT_MS);
        return;
      }
      case 'sigstop-agent': {
        const agent = target.agent;
        this.log(`SIGSTOP to the agent of ${target.name} (pid ${agent?.pid}) for ${f.holdMs} ms`);
        agent?.kill('SIGSTOP');
        await sleep(f.holdMs);
        if (agent && agent.exitCode === null && agent.signalCode === null) {
          this.log(`SIGCONT to the agent of ${target.name}`);
          agent.kill('SIGCONT');
        } else this.log(`the agent of ${target.name} is gone (the watchdog reset the node): no SIGCONT`);
        return;
      }
      case 'partition':
        this.log(`${target.name} cut off from DynamoDB and the AWS APIs for ${f.holdMs} ms`);
        target.proxy.cutOff();
        await sleep(f.holdMs);
        target.proxy.heal();
        this.log(`${target.name} reconnected`);
        return;
      case 'one-way-cut':
        this.log(`${target.name}: requests still land, answers are lost, for ${f.holdMs} ms`);
        target.proxy.cutResponses();
        await sleep(f.holdMs);
        target.proxy.heal();
        this.log(`${target.name}: answers come back`);
        return;
      case 'clock-jump':
        if (!this.o.faketime) {
          this.log('no libfaketime here: the wall clock cannot jump; nothing injected');
          return;
        }
        this.log(`${target.name}'s wall clock jumps by ${f.jumpSec} s for ${f.holdMs} ms`);
        this.setClock(target, f.jumpSec ?? 0);
        await sleep(f.holdMs);
        this.setClock(target, 0);
        this.log(`${target.name}'s wall clock is set right again`);
        return;
      case 'slow-stop':
      case 'hanging-stop': {
        const file = join(owner.dir, 'stop-sleep');
        writeFileSync(file, String(f.stopSleepSec));
        this.log(
          `the stop script of ${owner.name} now sleeps ${f.stopSleepSec} s (timeoutSec ${STOP_TIMEOUT_SEC})`,
        );
        await this.trigger(f, owner, standby);
        writeFileSync(file, '');
        this.log(`the stop script of ${owner.name} is quick again`);
        return;
      }
      case 'controller-stall':
        this.stall = { armed: true };
        await this.trigger(f, owner, standby);
        return;
    }
  }

  /** What makes the owner stop: a requested move, a partition (its fence) or SIGTERM (systemd restart). */
  private async trigger(f: Fault, owner: SandboxNode, standby: SandboxNode): Promise<void> {
    switch (f.trigger) {
      case 'move': {
        const r = await this.sandbox.store.putRequest(
          'sandbox',
          { kind: 'move', group: this.sandbox.primary, to: standby.name, by: 'chaos' },
          Date.now(),
        );
        this.log(`requested: move ${this.sandbox.primary} to ${standby.name} (${r.id})`);
        // Until reconcile has taken it up: the run must not look converged before the move began.
        const until = Date.now() + 20_000;
        let status = r.status;
        while (status === 'pending' && Date.now() < until) {
          await sleep(100);
          status =
            (await this.sandbox.store.getRequest('sandbox', r.id).catch(() => undefined))?.status ?? status;
        }
        this.log(`the move request is ${status}`);
        await sleep(f.holdMs);
        return;
      }
      case 'partition':
        this.log(`${owner.name} cut off from DynamoDB and the AWS APIs for ${f.holdMs} ms`);
        owner.proxy.cutOff();
        await sleep(f.holdMs);
        owner.proxy.heal();
        this.log(`${owner.name} reconnected`);
        return;
      case 'sigterm':
        this.log(`SIGTERM to the agent of ${owner.name} (systemctl restart)`);
        owner.agent?.kill('SIGTERM');
        await sleep(f.holdMs);
        return;
      default:
        await sleep(f.holdMs);
    }
  }
}

function describeOverlap(o: Overlap, origin: bigint): string {
  const what = o.kind === 'two-nodes' ? 'SPLIT BRAIN: two nodes wrote at once' : 'two writers on one node';
  return `${what} for ${o.ms.toFixed(1)} ms: ${describeInterval(o.a, origin)} and ${describeInterval(o.b, origin)}`;
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  if (!existsSync(file)) return '';
  return readFileSync(file).subarray(offset).toString('utf8');
}
