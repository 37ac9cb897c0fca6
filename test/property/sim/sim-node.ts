/**
 * A simulated EC2 node: its instance, its application processes, and a model of the node agent and
 * guard that follows the agent's protocol (shared/core/liveness.ts explains why it is safe):
 *
 * - renew the lease every heartbeat; the fence deadline is `lease - fenceMargin` after the *send*
 *   time of the last acknowledged renewal, on the monotonic clock;
 * - stop a group at once when the group record names another owner or a newer epoch;
 * - report per group the epoch seen and what runs (`starting` while a guarded start is under way);
 * - watch peers' renewal tokens and report how long each has stayed unchanged;
 * - the self-fence starts at the deadline and its stop scripts take up to `maxStopMs`;
 * - an optional watchdog (softdog), fed only while the lease outlasts its timeout, resets the node
 *   at the end of the lease if something still runs there (dead or paused agent, slow stop);
 * - the guard starts only if the record names this node owner at the given epoch and lists it in
 *   mayRun, *and* the local agent holds a live lease; it stops only at the current epoch;
 * - a group without application is started by the agent itself, through the same guarded start,
 *   once a record names this node owner, lists it in mayRun and is Starting or Online.
 */

import type { Timing } from '../../../shared/config/timing';
import type { AgentGroupState, Heartbeat } from '../../../shared/core/model';
import { type MemoryStore, TimeoutError } from '../../../testkit/memory-store';
import type { World } from '../../../testkit/world';

export interface SimNodeOptions {
  cluster: string;
  name: string;
  instanceId: string;
  groups: readonly string[];
  /** Groups without application: the agent brings them up itself (node-agent/agent.ts). */
  selfStarted: readonly string[];
  timing: Timing;
  /** Called when the agent writes a change (the DynamoDB stream then invokes reconcile). */
  onChange: (node: string) => void;
  /** Tests of the checker itself: an agent that never fences itself must be caught. */
  selfFence?: boolean;
  /** An armed watchdog (softdog) on this node. */
  watchdog: boolean;
  /** The longest the self-fence's stop scripts may take (the agent's promise in its heartbeats). */
  maxStopMs: number;
  /** Tests of the checker itself: the promise reported instead of `maxStopMs`. */
  reportedStopMs?: number;
}

export class SimNode {
  readonly name: string;
  /** EC2's view of the instance. */
  instanceState: 'running' | 'stopped' = 'running';
  /** The machine is up (false: crashed, hung, or stopped). */
  up = true;
  agentAlive = true;
  paused = false;
  /** Cut off from DynamoDB and the AWS APIs (SSM included). */
  partitioned = false;
  /** Agent wall clock minus real time. */
  wallOffset = 0;
  /** Application processes per group: the epoch each was started at. */
  readonly running = new Map<string, number>();
  readonly starting = new Map<string, number>();
  readonly stopping = new Set<string>();
  private readonly seenEpoch = new Map<string, number>();
  private readonly peersSeen = new Map<string, { token: string; firstSeen: number }>();
  private incarnationCount = 0;
  private incarnation = 'a0';
  private seq = 0;
  /** Monotonic (= real) time at which the last acknowledged renewal was *sent*. */
  lastAckedSend = Number.NEGATIVE_INFINITY;
  private lastReported = '';
  private busy = false;
  /** Total fences and watchdog resets, for the report. */
  fences = 0;
  resets = 0;

  constructor(
    private readonly world: World,
    private readonly store: MemoryStore,
    private readonly o: SimNodeOptions,
  ) {
    this.name = o.name;
    world.every(o.timing.heartbeatIntervalMs, () => {
      void this.tick();
      return true;
    });
    // The fence timer and the watchdog do not wait for slow calls: they run on their own.
    world.every(50, () => {
      this.fenceCheck();
      return true;
    });
  }

  instanceId(): string {
    return this.o.instanceId;
  }

  private get timing(): Timing {
    return this.o.timing;
  }

  private fenceDeadlinePassed(): boolean {
    return this.world.t - this.lastAckedSend >= this.timing.leaseMs - this.timing.fenceMarginMs;
  }

  private runsSomething(): boolean {
    return this.running.size > 0 || this.starting.size > 0;
  }

  private fencing = false;

  private fenceCheck(): void {
    if (!this.up || !this.runsSomething() || !this.fenceDeadlinePassed()) return;
    // The watchdog: not fed once the lease no longer outlasts its timeout while something runs.
    if (this.o.watchdog && this.world.t >= this.lastAckedSend + this.timing.leaseMs) {
      this.world.note(
        `${this.name}: watchdog reset (agent ${this.paused ? 'paused' : this.agentAlive ? 'still fencing' : 'dead'})`,
      );
      this.resets++;
      this.crash(this.world.rng.int(5_000, 20_000));
      return;
    }
    if (!this.agentAlive || this.paused || this.fencing || this.o.selfFence === false) return;
    this.world.note(
      `${this.name}: self-fence (no renewal acknowledged for ${this.world.t - this.lastAckedSend} ms)`,
    );
    this.fences++;
    this.fencing = true;
    // Stop scripts take time, within the promise the agent made in its heartbeats.
    const incarnation = this.incarnation;
    this.world.after(this.world.rng.int(0, this.o.maxStopMs), () => {
      this.fencing = false;
      if (this.incarnation === incarnation && this.up) this.stopAll();
    });
  }

  private stopAll(): void {
    this.running.clear();
    this.starting.clear();
  }

  /** The machine goes down (apps and agent die); it comes back after `downMs` unless told otherwise. */
  crash(downMs?: number, instanceStopped = false): void {
    this.up = false;
    this.agentAlive = false;
    this.fencing = false;
    this.stopAll();
    if (instanceStopped) this.instanceState = 'stopped';
    if (downMs !== undefined) this.world.after(downMs, () => this.boot());
  }

  boot(): void {
    if (this.up) return;
    this.up = true;
    this.instanceState = 'running';
    this.restartAgent();
  }

  /** The agent process dies; the applications keep running (the watchdog covers them). */
  killAgent(restartAfterMs?: number): void {
    this.agentAlive = false;
    if (restartAfterMs !== undefined) this.world.after(restartAfterMs, () => this.restartAgent());
  }

  restartAgent(): void {
    if (!this.up || this.agentAlive) return;
    this.agentAlive = true;
    this.paused = false;
    this.incarnation = `a${++this.incarnationCount}`;
    this.seq = 0;
    this.peersSeen.clear();
    void this.recoverAfterRestart();
  }

  /** A restarted agent keeps a running group only if the record still names it owner at that epoch. */
  private async recoverAfterRestart(): Promise<void> {
    for (const [group, epoch] of [...this.running]) {
      let keep = false;
      if (!this.partitioned) {
        try {
          const rec = await this.store.guardReadGroup(this.o.cluster, group);
          keep = rec?.owner === this.name && rec.epoch === epoch;
        } catch {
          keep = false;
        }
      }
      if (!keep && this.running.get(group) === epoch) {
        this.world.note(`${this.name}: agent restart stops ${group}@${epoch}`);
        this.running.delete(group);
      }
    }
  }

  private groupStates(): Record<string, { epoch: number; state: AgentGroupState }> {
    const out: Record<string, { epoch: number; state: AgentGroupState }> = {};
    for (const g of this.o.groups) {
      const state: AgentGroupState = this.starting.has(g)
        ? 'starting'
        : this.stopping.has(g)
          ? 'stopping'
          : this.running.has(g)
            ? 'running'
            : 'stopped';
      out[g] = { epoch: this.seenEpoch.get(g) ?? 0, state };
    }
    return out;
  }

  private async tick(): Promise<void> {
    if (!this.up || !this.agentAlive || this.paused || this.busy) return;
    this.busy = true;
    try {
      await this.renew();
      await this.followGroups();
      await this.watchPeers();
    } finally {
      this.busy = false;
    }
  }

  private async net<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.partitioned) {
      await this.world.delay(1000);
      throw new TimeoutError(`${this.name} cannot reach DynamoDB (${what})`);
    }
    return call();
  }

  private async renew(): Promise<void> {
    const groups = this.groupStates();
    const peers: Heartbeat['peers'] = {};
    for (const [peer, seen] of this.peersSeen)
      peers[peer] = { token: seen.token, silentForMs: this.world.t - seen.firstSeen };
    const report = JSON.stringify({
      groups,
      expired: Object.keys(peers).filter((p) => peers[p]!.silentForMs >= this.timing.leaseMs),
    });
    const changed = report !== this.lastReported;
    this.seq++;
    const hb: Heartbeat = {
      cluster: this.o.cluster,
      node: this.name,
      token: `${this.incarnation}/${this.seq}`,
      seq: this.seq,
      incarnation: this.incarnation,
      sentAt: this.world.t + this.wallOffset,
      leaseMs: this.timing.leaseMs,
      agentVersion: 'sim',
      state: 'running',
      reason: changed ? 'change' : 'periodic',
      monitors: {},
      isolated: false,
      groups,
      peers,
      fence: {
        maxStopMs: this.o.reportedStopMs ?? this.o.maxStopMs,
        ...(this.o.watchdog ? { watchdogMs: this.timing.leaseMs - this.timing.fenceMarginMs } : {}),
      },
    };
    const sentAt = this.world.t;
    try {
      await this.net('renew', () => this.store.agentPut(hb));
    } catch {
      return;
    }
    // A late answer from a previous incarnation must not extend this one's lease.
    if (!this.agentAlive || `${this.incarnation}/${this.seq}` !== hb.token) return;
    this.lastAckedSend = Math.max(this.lastAckedSend, sentAt);
    if (hb.reason === 'change') {
      this.lastReported = report;
      this.o.onChange(this.name);
    }
  }

  private async followGroups(): Promise<void> {
    let records: Awaited<ReturnType<MemoryStore['agentReadGroups']>>;
    try {
      records = await this.net('read groups', () => this.store.agentReadGroups(this.o.cluster));
    } catch {
      return;
    }
    if (!this.agentAlive || this.paused) return;
    for (const rec of records) {
      this.seenEpoch.set(rec.group, Math.max(this.seenEpoch.get(rec.group) ?? 0, rec.epoch));
      const runningEpoch = this.running.get(rec.group);
      if (
        runningEpoch !== undefined &&
        (rec.owner !== this.name || rec.epoch !== runningEpoch) &&
        rec.epoch >= runningEpoch
      ) {
        // Stale owner: demote itself at once.
        this.world.note(
          `${this.name}: sees ${rec.group} owned by ${rec.owner}@${rec.epoch}; stops its copy @${runningEpoch}`,
        );
        this.stopping.add(rec.group);
        await this.world.delay(this.world.rng.int(10, 1500));
        if (this.running.get(rec.group) === runningEpoch) this.running.delete(rec.group);
        this.stopping.delete(rec.group);
      }
      if (
        this.o.selfStarted.includes(rec.group) &&
        rec.owner === this.name &&
        rec.mode === 'auto' &&
        rec.mayRun.includes(this.name) &&
        (rec.phase === 'Starting' || rec.phase === 'Online') &&
        !this.running.has(rec.group) &&
        !this.starting.has(rec.group) &&
        !this.stopping.has(rec.group) &&
        this.leaseHeld()
      ) {
        this.world.note(`${this.name}: brings ${rec.group}@${rec.epoch} up itself (no application)`);
        void this.guardStart(rec.group, rec.epoch);
      }
    }
  }

  private async watchPeers(): Promise<void> {
    let heartbeats: Heartbeat[];
    try {
      heartbeats = await this.net('read peers', () => this.store.agentReadHeartbeats(this.o.cluster));
    } catch {
      return;
    }
    const readAt = this.world.t;
    for (const hb of heartbeats) {
      if (hb.node === this.name) continue;
      const seen = this.peersSeen.get(hb.node);
      if (!seen || seen.token !== hb.token)
        this.peersSeen.set(hb.node, { token: hb.token, firstSeen: readAt });
    }
  }

  private leaseHeld(): boolean {
    return this.agentAlive && !this.paused && !this.fenceDeadlinePassed();
  }

  /** `failover-agent guard --group G --epoch N -- start`. Resolves true on success. */
  async guardStart(group: string, epoch: number): Promise<string | undefined> {
    if (!this.up) return 'instance is down';
    if (this.partitioned) return 'cannot reach DynamoDB';
    // Registered before the check, so that a heartbeat never says "stopped" while a start is under way.
    this.starting.set(group, epoch);
    try {
      const rec = await this.store.guardReadGroup(this.o.cluster, group);
      if (rec?.owner !== this.name || rec.epoch !== epoch || !rec.mayRun.includes(this.name))
        return `refused: record says ${rec?.owner}@${rec?.epoch}, mayRun [${rec?.mayRun.join(', ')}]`;
      if (!this.leaseHeld()) return 'refused: local agent holds no live lease';
      await this.world.delay(this.world.rng.int(20, 1000));
      if (this.starting.get(group) !== epoch || !this.up) return 'start interrupted (fenced)';
      this.running.set(group, epoch);
      return undefined;
    } catch (e) {
      return `guard failed: ${(e as Error).message}`;
    } finally {
      if (this.starting.get(group) === epoch) this.starting.delete(group);
    }
  }

  /** `failover-agent guard --group G --epoch N -- stop`. */
  async guardStop(group: string, epoch: number): Promise<string | undefined> {
    if (!this.up) return 'instance is down';
    if (this.partitioned) return 'cannot reach DynamoDB';
    try {
      // Serialized with a start under way (the guard holds a per-group file lock).
      while (this.starting.has(group)) await this.world.delay(20);
      const rec = await this.store.guardReadGroup(this.o.cluster, group);
      if (rec?.epoch !== epoch) return `refused: epoch ${epoch} is stale (record at ${rec?.epoch})`;
      this.stopping.add(group);
      await this.world.delay(this.world.rng.int(10, 1500));
      this.running.delete(group);
      this.stopping.delete(group);
      return undefined;
    } catch (e) {
      this.stopping.delete(group);
      return `guard failed: ${(e as Error).message}`;
    }
  }
}
