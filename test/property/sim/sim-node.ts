/**
 * A simulated EC2 node. The machine is the simulation's: its instance state, its application
 * processes, the state directory's files (group records, agent.json), the watchdog device, its
 * network reachability and its clocks. The agent and the guard are the shipped core
 * (node-agent/core): the lease and fence timer, the heartbeat writer (up to three writes in flight,
 * so writes overlap and land out of order), the peer watcher, the group follower and the activation
 * rule, the watchdog feeder and its idle-feed announcement, the claims of the reports, and the
 * guard's admission. What the agent does between those rules (which timer, which read) follows
 * node-agent/agent.ts; only the IO is simulated.
 *
 * Each agent process is a SimAgent; a SIGSTOP pauses it (its timers and answers wait until it is
 * continued, as a stopped process's would), a kill ends it while the applications run on, and the
 * watchdog device, once opened, resets the machine when it is not fed for its timeout, whether the
 * agent is dead, frozen, or fencing too slowly.
 */

import { type LeaseView, leaseProblem, recordProblem } from '../../../node-agent/core/admission';
import { agentState, fencePromise, groupReports, type LocalGroupView } from '../../../node-agent/core/claims';
import type { Clock, Scheduler } from '../../../node-agent/core/clock';
import { FenceTimer } from '../../../node-agent/core/fence-timer';
import { activationWanted, GroupFollower, mustDemote } from '../../../node-agent/core/follow';
import { type Ack, HeartbeatWriter } from '../../../node-agent/core/heartbeat-writer';
import { PeerReads, PeerWatcher } from '../../../node-agent/core/peers';
import { WatchdogFeeder } from '../../../node-agent/core/watchdog-feeder';
import type { Timing } from '../../../shared/config/timing';
import {
  heartbeatRetryMs,
  leaseEndFromDeadline,
  leaseFileRewriteMs,
  watchdogFeedIntervalMs,
} from '../../../shared/config/timing';
import type { AgentGroupState, GroupState, Heartbeat, InstanceState } from '../../../shared/core/model';
import { type MemoryStore, ThrottledError, TimeoutError } from '../../../testkit/memory-store';
import type { World } from '../../../testkit/world';

/** Retry of a failed fence stop (node-agent/agent.ts FENCE_RETRY_MS). */
const FENCE_RETRY_MS = 5000;

export interface SimNodeOptions {
  cluster: string;
  name: string;
  instanceId: string;
  /** Groups that list this node. */
  groups: readonly string[];
  /** Groups without application: the agent brings them up itself (node-agent/agent.ts). */
  selfStarted: readonly string[];
  /** Per group: the longest its stop may take (its exec timeouts; a little for addresses only). */
  stopBudgets: ReadonlyMap<string, number>;
  /** Agent monitors of this node's groups, by group. */
  monitors: ReadonlyMap<string, readonly string[]>;
  timing: Timing;
  /** Called when an agent's change is written (the DynamoDB stream then invokes reconcile). */
  onChange: (node: string) => void;
  /** The watchdog device's timeout (softdog soft_margin) in ms; undefined: no watchdog. */
  watchdogMs: number | undefined;
  /** Tests of the checker itself: an agent that never fences itself must be caught. */
  selfFence?: boolean;
  /** Tests of the checker itself: the stop promise reported instead of the real budgets. */
  reportedStopMs?: number;
}

/** The machine and its files; the agent process is `agent`. */
export class SimNode {
  readonly name: string;
  /** EC2's view of the instance. */
  instanceState: InstanceState = 'running';
  /** The machine is up (false: crashed, reset, or stopped). */
  up = true;
  /** Cut off from DynamoDB and the AWS APIs (SSM included). */
  partitioned = false;
  /** The node's heartbeat writes are throttled (write capacity); its reads, the guard's too, work. */
  renewalsThrottled = false;
  /** Called when the guard has started a group, before the agent hears of it (a fault's hook). */
  afterStart: ((group: string) => void) | undefined;
  /** Agent wall clock minus real time (the monotonic clock never jumps). */
  wallOffset = 0;
  /** Application processes per group: the epoch each was started at. Survives the agent. */
  readonly running = new Map<string, number>();
  /** The state directory's group records (what the agent reports). */
  readonly records = new Map<string, LocalGroupView>();
  /** agent.json as the agent last wrote it (the guard reads it). */
  leaseFile: LeaseView | undefined;
  /** The current agent process, if any. */
  agent: SimAgent | undefined;
  /** Per-group locks of starts and stops (the guard's lock files): who holds each. */
  readonly locks = new Map<string, number>();
  private lockTokens = 0;
  /** Stop-script faults of the schedule: probability that a stop fails, or hangs until its timeout. */
  stopFaults = { fail: 0, hang: 0 };
  /** A buggy or compromised agent that claims every peer silent in its own item. */
  forging = false;
  /** Agent monitors reported in error. */
  readonly monitorErrors = new Set<string>();
  /** Totals for the report. */
  fences = 0;
  resets = 0;
  bootCount = 1;
  private device = { open: false, lastFeed: 0 };
  private pausedFlag = false;
  private resumers: (() => void)[] = [];
  private incarnations = 0;

  constructor(
    readonly world: World,
    readonly store: MemoryStore,
    readonly o: SimNodeOptions,
  ) {
    this.name = o.name;
    // The device resets the machine on its own timer, whatever the agent does.
    world.every(50, () => {
      this.watchdogCheck();
      return true;
    });
    this.startAgent();
  }

  instanceId(): string {
    return this.o.instanceId;
  }

  get timing(): Timing {
    return this.o.timing;
  }

  /** The agent process is stopped (SIGSTOP): its timers and answers wait for SIGCONT. */
  get paused(): boolean {
    return this.pausedFlag;
  }

  set paused(value: boolean) {
    this.pausedFlag = value;
    if (!value) for (const resume of this.resumers.splice(0)) resume();
  }

  get agentAlive(): boolean {
    return this.agent?.alive ?? false;
  }

  /** Resolves true once the agent runs (not paused), false if it died meanwhile. */
  whileRunning(agent: SimAgent): Promise<boolean> {
    if (!agent.alive) return Promise.resolve(false);
    if (!this.pausedFlag) return Promise.resolve(true);
    return new Promise((resolve) => this.resumers.push(() => resolve(agent.alive)));
  }

  /** Queues `fn` for when the agent runs again (or runs it now). */
  runAgent(agent: SimAgent, fn: () => void): void {
    if (!agent.alive) return;
    if (this.pausedFlag) this.resumers.push(() => this.runAgent(agent, fn));
    else fn();
  }

  /** A call over the network: a partition times out. */
  async net<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.partitioned) {
      await this.world.delay(1000);
      throw new TimeoutError(`${this.name} cannot reach DynamoDB (${what})`);
    }
    if (this.renewalsThrottled && what === 'renew') {
      await this.world.delay(20);
      throw new ThrottledError();
    }
    return call();
  }

  // ------------------------------------------------------------------------------------------
  // The machine

  /** The machine goes down (applications and agent die); it comes back after `downMs` if given. */
  crash(downMs?: number, instanceStopped = false): void {
    this.up = false;
    this.agent?.die();
    this.agent = undefined;
    this.pausedFlag = false;
    this.resumers = [];
    this.running.clear();
    this.locks.clear();
    // Nothing runs after the reboot; the agent's start-up check would stop (and record) them so.
    for (const [g, r] of this.records) this.records.set(g, { group: g, state: 'stopped', epoch: r.epoch });
    this.device = { open: false, lastFeed: 0 };
    if (instanceStopped) this.instanceState = 'stopped';
    if (downMs !== undefined) this.world.after(downMs, () => this.boot());
  }

  boot(): void {
    if (this.up) return;
    this.up = true;
    this.bootCount++;
    this.instanceState = 'running';
    this.startAgent();
  }

  /** StopInstances (the controller's hard fence): stopping for a while, then stopped. */
  stopInstance(): void {
    if (!this.up || this.instanceState !== 'running') return;
    this.instanceState = 'stopping';
    this.world.after(this.world.rng.int(300, 3000), () => {
      if (this.instanceState === 'stopping') this.crash(undefined, true);
    });
  }

  /** The agent process dies; the applications keep running (the watchdog covers them). */
  killAgent(restartAfterMs?: number): void {
    this.agent?.die();
    this.agent = undefined;
    this.pausedFlag = false;
    this.resumers = [];
    if (restartAfterMs !== undefined) this.world.after(restartAfterMs, () => this.restartAgent());
  }

  restartAgent(): void {
    if (!this.up || this.agent) return;
    this.startAgent();
  }

  private startAgent(): void {
    this.agent = new SimAgent(this, ++this.incarnations);
  }

  /** Opens the watchdog device (softdog starts counting at open). */
  openWatchdog(): void {
    if (this.device.open) return;
    this.device = { open: true, lastFeed: this.world.t };
  }

  feedWatchdog(): void {
    if (this.device.open) this.device.lastFeed = this.world.t;
  }

  private watchdogCheck(): void {
    const s = this.o.watchdogMs;
    if (!this.up || !this.device.open || s === undefined) return;
    if (this.world.t - this.device.lastFeed <= s) return;
    const agent = this.agent;
    this.world.note(
      `${this.name}: watchdog reset, not fed for ${this.world.t - this.device.lastFeed} ms (agent ${!agent ? 'dead' : this.pausedFlag ? 'paused' : 'alive'})`,
    );
    this.resets++;
    this.crash(this.world.rng.int(5_000, 20_000));
  }

  /** The group records as the agent core reads them. */
  localViews(): LocalGroupView[] {
    return [...this.records.values()];
  }

  nothingRuns(): boolean {
    return this.running.size === 0 && [...this.records.values()].every((r) => r.state === 'stopped');
  }

  // ------------------------------------------------------------------------------------------
  // The guard (its own process: a paused agent does not pause it)

  /** Takes a group's lock (waiting up to `timeoutMs`); its token, or undefined when busy. */
  async lock(group: string, timeoutMs: number): Promise<number | undefined> {
    const until = this.world.t + timeoutMs;
    while (this.locks.has(group)) {
      if (this.world.t >= until) return undefined;
      await this.world.delay(20);
    }
    const token = ++this.lockTokens;
    this.locks.set(group, token);
    return token;
  }

  /** The self-fence takes the lock from whoever holds it (it kills a guard in progress). */
  breakLock(group: string): number {
    const token = ++this.lockTokens;
    this.locks.set(group, token);
    return token;
  }

  unlock(group: string, token: number): void {
    if (this.locks.get(group) === token) this.locks.delete(group);
  }

  /** Writes a record only while holding the group's lock (node-agent/guard.ts record()). */
  private write(group: string, token: number, rec: LocalGroupView): boolean {
    if (this.locks.get(group) !== token) return false;
    this.records.set(group, rec);
    return true;
  }

  private admissionProblem(): string | undefined {
    const agent = this.agent;
    const facts =
      agent && this.leaseFile && this.leaseFile.pid === agent.pid
        ? { alive: agent.alive, frozen: this.pausedFlag }
        : { alive: false };
    return leaseProblem(
      this.leaseFile,
      { cluster: this.o.cluster, node: this.name, stateDir: '/sim' },
      this.world.t,
      undefined,
      facts,
    );
  }

  /** `failover-agent guard --group G --epoch N -- start` (and the agent's own start). */
  async guardStart(group: string, epoch: number): Promise<string | undefined> {
    if (!this.up) return 'instance is down';
    if (this.partitioned) return 'cannot reach DynamoDB';
    const token = await this.lock(group, 5_000);
    if (token === undefined) return 'busy';
    const previous = this.records.get(group);
    try {
      // Recorded before the read: a heartbeat never says "stopped" while a start is under way, and
      // the agent's idle watchdog feed sees it (core/watchdog-feeder.ts).
      this.write(group, token, { group, state: 'starting', epoch });
      const refuse = (why: string) => {
        this.write(group, token, previous ?? { group, state: 'stopped', epoch: 0 });
        return why;
      };
      let rec: GroupState | undefined;
      try {
        rec = await this.net('guard read', () => this.store.guardReadGroup(this.o.cluster, group));
      } catch (e) {
        return refuse(`guard failed: ${(e as Error).message}`);
      }
      const refused =
        recordProblem(rec, this.name, epoch, { group, cluster: this.o.cluster, table: 'sim' }) ??
        this.admissionProblem();
      if (refused) {
        this.world.note(`${this.name}: guard refuses to start ${group}@${epoch}: ${refused}`);
        return refuse(`refused: ${refused}`);
      }
      if (this.locks.get(group) !== token || !this.up) return 'start interrupted (fenced)';
      // The command is spawned: the application runs from here on.
      this.running.set(group, epoch);
      const lost = this.admissionProblem();
      if (lost) {
        this.running.delete(group); // killed at once: its pid was recorded first
        this.write(group, token, { group, state: 'failed', epoch });
        return `lease lost at spawn: ${lost}`;
      }
      await this.world.delay(this.world.rng.int(20, 1000));
      if (this.locks.get(group) !== token || !this.up) return 'start interrupted (fenced)';
      if (this.admissionProblem()) {
        this.write(group, token, { group, state: 'failed', epoch });
        this.agent?.localChanged();
        return 'lease lost during the start; the agent stops it';
      }
      this.write(group, token, { group, state: 'running', epoch });
      this.afterStart?.(group);
      this.agent?.localChanged();
      return undefined;
    } finally {
      this.unlock(group, token);
    }
  }

  /** `failover-agent guard --group G --epoch N --action stop -- stop`. */
  async guardStop(group: string, epoch: number): Promise<string | undefined> {
    if (!this.up) return 'instance is down';
    if (this.partitioned) return 'cannot reach DynamoDB';
    const token = await this.lock(group, 10_000);
    if (token === undefined) return 'busy';
    try {
      let rec: GroupState | undefined;
      try {
        rec = await this.net('guard read', () => this.store.guardReadGroup(this.o.cluster, group));
      } catch (e) {
        return `guard failed: ${(e as Error).message}`;
      }
      if (rec?.epoch !== epoch) return `refused: epoch ${epoch} is stale (record at ${rec?.epoch})`;
      const ok = await this.runStop(group, epoch, 'guard', token);
      return ok ? undefined : 'stop command failed';
    } finally {
      this.unlock(group, token);
    }
  }

  /**
   * Runs a group's stop script (idempotent): the application is gone once it succeeds. A failed or
   * hung stop (killed at its timeout) leaves the application running and the record `failed`.
   */
  async runStop(group: string, epoch: number, why: string, token: number): Promise<boolean> {
    const boot = this.bootCount;
    if (!this.write(group, token, { group, state: 'stopping', epoch })) return false;
    this.agent?.localChanged();
    const budget = this.o.stopBudgets.get(group) ?? 0;
    const hang = this.world.rng.chance(this.stopFaults.hang);
    const fail = !hang && this.world.rng.chance(this.stopFaults.fail);
    await this.world.delay(hang ? budget : this.world.rng.int(10, Math.max(20, Math.min(1500, budget))));
    if (!this.up || this.bootCount !== boot || this.locks.get(group) !== token) return false;
    if (hang || fail) {
      this.world.note(`${this.name}: stop of ${group} (${why}) ${hang ? 'hung and was killed' : 'failed'}`);
      this.write(group, token, { group, state: 'failed', epoch });
      this.agent?.localChanged();
      return false;
    }
    this.running.delete(group);
    this.write(group, token, { group, state: 'stopped', epoch });
    this.agent?.localChanged();
    return true;
  }
}

/** One agent process on a SimNode, wired from the agent core with the simulation's IO. */
export class SimAgent {
  alive = true;
  readonly pid: number;
  readonly incarnation: string;
  private readonly world: World;
  private readonly clock: Clock;
  private readonly scheduler: Scheduler;
  private readonly fence: FenceTimer;
  private readonly writer: HeartbeatWriter;
  private readonly peers = new PeerWatcher();
  private readonly peerReads: PeerReads;
  private readonly follower = new GroupFollower();
  private feeder: WatchdogFeeder | undefined;
  private fenced = false;
  private everAcked = false;
  private lastAckSent = Number.NEGATIVE_INFINITY;
  private leaseWritten = { flags: '', deadline: 0 };
  private announcedIdle = Number.NEGATIVE_INFINITY;
  private inheritedIdle = Number.NEGATIVE_INFINITY;
  private readonly fenceAttempts = new Map<string, number>();
  private readonly stopping = new Set<string>();
  private readonly activating = new Set<string>();
  private readonly activationTried = new Map<string, number>();
  private reading = false;

  constructor(
    private readonly node: SimNode,
    n: number,
  ) {
    this.world = node.world;
    this.pid = n;
    this.incarnation = `a${n}`;
    const world = this.world;
    this.clock = { mono: () => world.t, wall: () => world.t + node.wallOffset };
    this.scheduler = {
      after: (ms, fn) => {
        let cancelled = false;
        world.after(ms, () => {
          if (!cancelled) node.runAgent(this, fn);
        });
        return () => {
          cancelled = true;
        };
      },
      soon: (fn) => world.after(0, () => node.runAgent(this, fn)),
    };
    this.fence = new FenceTimer(this.clock, () => this.onFenceDeadline(), this.scheduler);
    this.peerReads = new PeerReads(this.peers, {
      clock: this.clock,
      scheduler: this.scheduler,
      timing: () => this.timing,
      read: () => void this.follow(),
    });
    const t = node.timing;
    this.writer = new HeartbeatWriter({
      cluster: node.o.cluster,
      node: node.name,
      incarnation: this.incarnation,
      agentVersion: 'sim',
      clock: this.clock,
      scheduler: this.scheduler,
      put: async (hb) => {
        await node.net('renew', () => node.store.agentPut(hb));
        // The answer is handled by the process: not while it is stopped, never once it died.
        if (!(await node.whileRunning(this))) throw new Error('agent gone');
        if (hb.reason === 'change') node.o.onChange(node.name);
      },
      build: () => this.report(),
      timing: () => t,
      onAck: (ack) => this.onAck(ack),
      onError: () => undefined,
      writeTimeoutMs: () => 2_000,
    });
    this.start();
  }

  die(): void {
    this.alive = false;
    this.fence.stop();
    this.peerReads.stop();
  }

  private get timing(): Timing {
    return this.node.timing;
  }

  private start(): void {
    const { node } = this;
    // A restart on the same boot keeps its predecessor's deadline and idle-feed announcement.
    const previous = node.leaseFile;
    if (previous) {
      this.fence.restore(previous.fenceUntilMono ?? previous.leaseUntilMono);
      if (previous.idleFeedResetBy !== undefined) this.inheritedIdle = previous.idleFeedResetBy;
    }
    this.writeLease();
    const s = node.o.watchdogMs;
    if (s !== undefined) {
      node.openWatchdog();
      this.feeder = new WatchdogFeeder(
        {
          now: () => this.world.t,
          feed: () => node.feedWatchdog(),
          announce: (bound) => {
            this.announcedIdle = Math.max(this.announcedIdle, bound);
            this.writeLease();
            return true;
          },
          nothingRuns: () => node.nothingRuns(),
        },
        s,
        this.inheritedIdle,
      );
      const feedEvery = watchdogFeedIntervalMs(s);
      const feedLoop = () => {
        this.feedWatchdog();
        this.scheduler.after(feedEvery, feedLoop);
      };
      this.scheduler.after(0, feedLoop);
    }
    void this.verifyLocalGroups();
    const every = this.timing.heartbeatIntervalMs;
    const tick = () => {
      this.tick();
      this.scheduler.after(every, tick);
    };
    this.scheduler.after(0, tick);
  }

  /** A start or stop changed the local records (the agent watches the directory). */
  localChanged(): void {
    this.node.runAgent(this, () => this.writer.changed());
  }

  private tick(): void {
    this.renew();
    // When to read: node-agent/core/peers.ts, as the agent does.
    this.peerReads.onTick();
    // Backstop for the fence timer.
    if (!this.fence.holdsLease() && !this.node.nothingRuns()) this.onFenceDeadline();
    this.feedWatchdog();
  }

  private renew(): void {
    const sent = this.clock.mono();
    void this.writer.tick();
    this.scheduler.after(heartbeatRetryMs(this.timing), () => {
      if (this.lastAckSent < sent) this.renew();
    });
  }

  private onAck(ack: Ack): void {
    this.everAcked = true;
    this.lastAckSent = Math.max(this.lastAckSent, ack.sentMono);
    this.fence.ack(ack.seq, {
      sentMono: ack.sentMono,
      leaseMs: ack.timing.leaseMs,
      fenceMarginMs: ack.timing.fenceMarginMs,
    });
    if (this.fenced && ack.heartbeat.state === 'fenced') {
      this.fenced = false;
      this.fenceAttempts.clear();
      this.writer.changed();
    }
    this.writeLease(false);
    this.feedWatchdog();
  }

  private feedWatchdog(): void {
    this.feeder?.tick(this.fence.leaseEnd);
  }

  /** agent.json, written as node-agent/agent.ts writes it (lazily for a moved deadline). */
  private writeLease(force = true): void {
    const t = this.timing;
    const deadline = Number.isFinite(this.fence.deadline) ? this.fence.deadline : 0;
    const admit = Number.isFinite(this.fence.admitUntil) ? this.fence.admitUntil : 0;
    const idleBound = Math.max(this.inheritedIdle, this.announcedIdle);
    const idle = Number.isFinite(idleBound) ? idleBound : undefined;
    const flags = `${admit > 0}/${this.fenced}/${idle}`;
    const moved = deadline - this.leaseWritten.deadline;
    if (
      !force &&
      flags === this.leaseWritten.flags &&
      moved >= 0 &&
      moved < leaseFileRewriteMs(t) &&
      !(idle !== undefined && idle > leaseEndFromDeadline(this.leaseWritten.deadline, t.fenceMarginMs))
    )
      return;
    this.leaseWritten = { flags, deadline };
    this.node.leaseFile = {
      cluster: this.node.o.cluster,
      node: this.node.name,
      pid: this.pid,
      leaseUntilMono: admit,
      fenceUntilMono: deadline,
      fenceMarginMs: t.fenceMarginMs,
      fenced: this.fenced,
      leaving: false,
      ...(idle !== undefined ? { idleFeedResetBy: idle } : {}),
    };
  }

  private onFenceDeadline(): void {
    if (this.fence.holdsLease() || !this.node.up) return;
    const runs = this.node.localViews().filter((r) => r.state !== 'stopped');
    if (!this.everAcked && runs.length === 0 && this.node.running.size === 0) return;
    if (this.node.o.selfFence === false) return;
    if (!this.fenced) {
      this.fenced = true;
      this.node.fences++;
      this.world.note(`${this.node.name}: self-fence (no renewal acknowledged for lease - fenceMargin)`);
      // Written before anything is stopped: a guard that checks the lease from now on refuses.
      this.writeLease();
      this.writer.changed();
    }
    const now = this.world.t;
    for (const r of runs) {
      if (this.stopping.has(r.group)) continue;
      if (now - (this.fenceAttempts.get(r.group) ?? Number.NEGATIVE_INFINITY) < FENCE_RETRY_MS) continue;
      this.fenceAttempts.set(r.group, now);
      void this.stop(r.group, r.epoch, 'fence');
    }
  }

  /**
   * Stops a group here. The self-fence breaks the group's lock (a start in progress is killed with
   * its guard); other stops wait for it, as node-agent/group-stopper.ts does.
   */
  private async stop(group: string, epoch: number, why: string): Promise<void> {
    if (this.stopping.has(group)) return;
    this.stopping.add(group);
    let token: number | undefined;
    try {
      token = why === 'fence' ? this.node.breakLock(group) : await this.node.lock(group, 30_000);
      if (token === undefined || !this.alive) return;
      await this.node.runStop(group, epoch, why, token);
    } finally {
      if (token !== undefined) this.node.unlock(group, token);
      this.stopping.delete(group);
      this.localChanged();
    }
  }

  /** A restarted agent keeps a running group only if the record still names it owner at that epoch. */
  private async verifyLocalGroups(): Promise<void> {
    for (const rec of this.node.localViews()) {
      if (rec.state === 'stopped') continue;
      let keep = false;
      try {
        const record = await this.node.net('verify', () =>
          this.node.store.guardReadGroup(this.node.o.cluster, rec.group),
        );
        keep = rec.state === 'running' && record?.owner === this.node.name && record.epoch === rec.epoch;
      } catch {
        keep = false;
      }
      if (!(await this.node.whileRunning(this))) return;
      if (!keep) {
        this.world.note(`${this.node.name}: agent start stops ${rec.group}@${rec.epoch}`);
        void this.stop(rec.group, rec.epoch, 'startup');
      }
    }
  }

  /** One read of the group records and the peers' renewals (node-agent/agent.ts followCluster). */
  private async follow(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    const { node } = this;
    try {
      const [records, heartbeats] = await node.net('read cluster', () =>
        Promise.all([
          node.store.agentReadGroups(node.o.cluster),
          node.store.agentReadHeartbeats(node.o.cluster, node.name),
        ]),
      );
      if (!(await node.whileRunning(this))) return;
      const readDone = this.clock.mono();
      const readDoneWall = this.clock.wall();
      const changed = this.follower.observe(records);
      for (const record of records) this.followGroup(record);
      const peers: Record<string, Heartbeat> = {};
      for (const hb of heartbeats) if (hb.node !== node.name) peers[hb.node] = hb;
      const names = Object.keys(peers);
      const expiredBefore = this.peers.expired(readDone, this.timing.leaseMs).join();
      this.peers.observe(peers, readDone, names, {
        wall: readDoneWall,
        heartbeatIntervalMs: this.timing.heartbeatIntervalMs,
      });
      this.armPeerTimer(readDone);
      if (changed || expiredBefore !== this.peers.expired(readDone, this.timing.leaseMs).join())
        this.writer.changed();
    } catch {
      // the next tick reads again
    } finally {
      this.reading = false;
    }
    if (this.alive) this.peerReads.afterRead();
  }

  /** A peer's doubt (after a fresh read), then its lease expiry, reported the moment each happens (node-agent/agent.ts armPeerTimer). */
  private armPeerTimer(nowMono: number): void {
    this.cancelPeerTimer?.();
    this.cancelPeerTimer = undefined;
    const next = this.peers.nextCrossing(nowMono, this.timing.leaseMs);
    if (next === undefined) return;
    this.cancelPeerTimer = this.scheduler.after(Math.ceil(next.inMs) + 1, () => {
      this.cancelPeerTimer = undefined;
      // A doubt after a fresh read, reported if the renewal is still the same (the fingerprint decides).
      if (next.kind === 'doubt') void this.follow().then(() => this.writer.changed());
      else this.writer.changed();
      this.armPeerTimer(this.clock.mono());
    });
  }
  private cancelPeerTimer: (() => void) | undefined;

  private followGroup(record: GroupState): void {
    const { node } = this;
    const local = node.records.get(record.group);
    if (local && mustDemote(local, record, node.name) && !this.stopping.has(record.group)) {
      this.world.note(
        `${node.name}: sees ${record.group} owned by ${record.owner}@${record.epoch}; stops its copy @${local.epoch}`,
      );
      void this.stop(record.group, local.epoch, 'demote');
    }
    const tried = this.activationTried.get(record.group);
    if (
      node.o.groups.includes(record.group) &&
      activationWanted({
        node: node.name,
        record,
        selfStarted: node.o.selfStarted.includes(record.group),
        serving: !this.fenced && this.fence.servesLease(),
        busy: this.activating.has(record.group) || this.stopping.has(record.group),
        local,
        sinceLastTryMs: tried === undefined ? Number.POSITIVE_INFINITY : this.world.t - tried,
      })
    ) {
      this.world.note(`${node.name}: brings ${record.group}@${record.epoch} up itself (no application)`);
      this.activating.add(record.group);
      this.activationTried.set(record.group, this.world.t);
      void node.guardStart(record.group, record.epoch).then((why) => {
        this.activating.delete(record.group);
        if (why === undefined) this.follower.note(record.group, record.epoch);
        this.localChanged();
      });
    }
  }

  /** The report, built by the core's claims from the machine's state. */
  private report() {
    const { node } = this;
    const now = this.clock.mono();
    const lease = this.timing.leaseMs;
    const monitors: Heartbeat['monitors'] = {};
    for (const g of node.o.groups)
      for (const m of node.o.monitors.get(g) ?? [])
        monitors[m] = node.monitorErrors.has(m)
          ? { status: 'error', detail: 'sim: failing' }
          : { status: 'ok' };
    const honest = this.peers.report(now);
    // A forging agent claims every peer it has read silent for ten leases.
    const peers = node.forging
      ? Object.fromEntries(
          Object.entries(honest).map(([p, s]) => [p, { token: s.token, silentForMs: 10 * lease }]),
        )
      : honest;
    const budgets = node.o.groups.map((g) => node.o.stopBudgets.get(g) ?? 0);
    return {
      state: agentState({ leaving: false, fenced: this.fenced }),
      groups: groupReports(node.o.groups, node.localViews(), (g) => this.follower.seenEpoch(g)),
      monitors,
      isolated: false,
      peers,
      expiredPeers: node.forging ? Object.keys(peers).sort() : this.peers.expired(now, lease),
      doubtedPeers: node.forging ? Object.keys(peers).sort() : this.peers.doubted(now, lease),
      fence: fencePromise(
        node.o.reportedStopMs !== undefined ? [node.o.reportedStopMs] : budgets,
        node.o.watchdogMs !== undefined ? { armed: true, timeoutMs: node.o.watchdogMs } : undefined,
      ),
    };
  }
}

export type { AgentGroupState };
