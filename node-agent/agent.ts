/**
 * The agent daemon: renews the node's lease, reports monitors, witnesses, peers and Spot notices,
 * follows the cluster definition and the group records, and stops what runs here when it must
 * (self-fence, stale owner, shutdown). It never starts an application: the controller does, through
 * `failover-agent guard` (guard.ts), which checks this daemon's lease in the state directory. A
 * group without an application (floating IP, Elastic IP or record alone) is brought up here by the
 * agent itself once the record names this node owner and lists it in mayRun, through the guard's
 * same start, in process and without a command (shared/core/node-side.ts).
 *
 * Loops (all independent; a slow DynamoDB call delays none of the others):
 *
 *   every heartbeatIntervalMs   renewal write · read group records · read peers' renewals ·
 *                               local state check (orphans, fenced leftovers, watchdog)
 *   while a transition is seen  the same read every heartbeatRetryMs, for at most
 *                               FAST_FOLLOW_LEASES leases: a peer gone silent, leaving or
 *                               fenced; a group starting, stopping or owned here but not running
 *   fence timer                 fires at send(last acked renewal) + lease - fenceMargin
 *   per monitor                 its own interval; a change of status is written at once
 *   witnesses                   every max(2 x heartbeat, 1 s); all failing = isolated
 *   Spot / rebalance            IMDSv2 every 5 s
 *   cluster definition          re-read every 10 x heartbeat (1 s to 30 s); new versions apply live
 *   groups/ directory watch     a guard's start or stop is reported at once
 */
import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { NotFoundError } from '../shared/base/errors';
import { monitorKind } from '../shared/config/kinds';
import type { ClusterConfig } from '../shared/config/load';
import { defaultTiming } from '../shared/config/rules';
import type { GroupConfig } from '../shared/config/schema';
import { storedDefinitionProblems } from '../shared/config/stored-check';
import {
  daemonCallTimeouts,
  fastFollowMs,
  heartbeatRetryMs,
  leaseEndFromDeadline,
  leaseFileRewriteMs,
  type Timing,
  watchdogFeedIntervalMs,
} from '../shared/config/timing';
import type { AgentGroupState, GroupState, Heartbeat } from '../shared/core/model';
import { groupStopBudgetMs, hasApplication, interfaceAddresses } from '../shared/core/node-side';
import type { Clock } from './clock';
import { realScheduler, sleep } from './clock';
import { agentState, fencePromise, groupReports } from './core/claims';
import { FenceTimer } from './core/fence-timer';
import { activationWanted, GroupFollower, mustDemote } from './core/follow';
import { type Ack, HeartbeatWriter, type ReportParts } from './core/heartbeat-writer';
import { PeerReads, PeerWatcher } from './core/peers';
import { WatchdogFeeder } from './core/watchdog-feeder';
import { AgentError, EXIT } from './errors';
import { LockHandle, readLockOwner, tryLock } from './file-lock';
import { GroupStopper } from './group-stopper';
import { runGuard } from './guard';
import type { Imds } from './imds';
import { bootId, type LocalGroupRecord, type LocalState } from './local-state';
import type { Logger } from './log';
import { errorText } from './log';
import { isAgentMonitor, monitorSpec, probeFor } from './monitors';
import { MonitorRunner } from './monitors/runner';
import { processStartTime, sameProcessAlive } from './process-util';
import { SpotWatcher } from './spot';
import type { AgentStore } from './store';
import type { VipOps } from './vip';
import type { Watchdog } from './watchdog';
import { Witnesses } from './witnesses';

export interface AgentOptions {
  cluster: string;
  node: string;
  table: string;
  state: LocalState;
  /** A store whose call timeouts suit `timing` (rebuilt when the timing changes). */
  storeFor(timing: Timing | undefined): AgentStore;
  clock: Clock;
  log: Logger;
  env: Record<string, string | undefined>;
  vip: VipOps;
  agentVersion: string;
  /** Region and endpoint in use, written to agent.json so that guards use the same. */
  region?: string;
  endpoint?: string;
  imds?: Imds;
  watchdog?: Watchdog;
  /** Overrides (tests): cluster definition refresh and Spot poll periods. */
  configRefreshMs?: number;
  spotPollMs?: number;
  pingCommand?: string;
  /** Called with every acknowledged renewal (the daemon writes `failover-agent status`'s file). */
  onAcked?: (ack: Ack) => void;
}

const PID_START = processStartTime(process.pid);
const BOOT_ID = bootId();

/** Retry failed fence stops at most this often. */
const FENCE_RETRY_MS = 5000;
/** A non-urgent stop waits for a start or stop in progress this long beyond the group's stop budget. */
const STOP_LOCK_SLACK_MS = 10_000;
/** At a planned shutdown: how long renewals in flight may take to land before the final report. */
const FINAL_DRAIN_MS = 3000;
/** Attempts at the final `leaving` report, this far apart (without it, reconcile waits for the lease). */
const FINAL_REPORT_ATTEMPTS = 3;
const FINAL_REPORT_RETRY_MS = 500;
/** How often the definition is read again while it cannot be read at start. */
const INITIAL_CONFIG_RETRY_MS = 1000;
/** The definition is read again every CONFIG_REFRESH_HEARTBEATS heartbeats, within these bounds. */
const CONFIG_REFRESH_HEARTBEATS = 10;
const CONFIG_REFRESH_MIN_MS = 1000;
const CONFIG_REFRESH_MAX_MS = 30_000;
/** Witnesses are probed every WITNESS_HEARTBEATS heartbeats, at least this far apart. */
const WITNESS_HEARTBEATS = 2;
const WITNESS_MIN_INTERVAL_MS = 1000;

/** The daemon: `run()` until `shutdown()`; see the header for its loops. */
export class Agent {
  readonly incarnation = randomBytes(4).toString('hex');
  private store: AgentStore;
  private config: ClusterConfig | undefined;
  private configVersion = 0;
  /** Definitions of groups seen in any version (stop scripts of a group removed while running). */
  private readonly definitions = new Map<string, GroupConfig>();
  private readonly fence: FenceTimer;
  private readonly writer: HeartbeatWriter;
  private readonly follower = new GroupFollower();
  private readonly peers = new PeerWatcher();
  /** When the cluster is read: right after each peer's renewal is due (core/peers.ts). */
  private readonly peerReads: PeerReads;
  private readonly stopper: GroupStopper;
  private readonly monitors = new Map<string, { key: string; runner: MonitorRunner }>();
  private witnesses: Witnesses | undefined;
  private witnessKey = '';
  private spot: SpotWatcher | undefined;
  private readonly activeSince = new Map<string, number>();
  private readonly startedMono: number;

  private everAcked = false;
  private fenced = false;
  private readonly fenceAttempts = new Map<string, number>();
  private leaving = false;
  private final = false;
  private agentLock: LockHandle | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private tickMs = 0;
  /** Pending retry of an unacknowledged renewal, and the newest acknowledged send (monotonic). */
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private lastAckSentMono = Number.NEGATIVE_INFINITY;
  private peerTimer: NodeJS.Timeout | undefined;
  /** Starts of groups without application in flight, and when each was last tried (monotonic). */
  /** The agent's own starts under way (groups without application), by group. */
  private readonly activating = new Map<string, Promise<void>>();
  private readonly activationTried = new Map<string, number>();
  /** Fast reads while a transition is under way: what was seen, and until when (monotonic). */
  private fastFollow = { key: '', until: 0 };
  private fastTimer: NodeJS.Timeout | undefined;
  private dirWatcher: FSWatcher | undefined;
  private localCheckQueued = false;
  private readingCluster = false;
  private readingConfig = false;
  private nextConfigReadMono = 0;
  private writeFailures = 0;
  private leaseWritten = { flags: '', deadline: 0 };
  /** Feeds the watchdog by the rule of core/watchdog-feeder.ts once the device is armed. */
  private feeder: WatchdogFeeder | undefined;
  /** The idle-feed bound a previous agent process of this boot announced in agent.json. */
  private inheritedIdleBound = Number.NEGATIVE_INFINITY;
  /** The newest idle-feed bound this process announced in agent.json. */
  private announcedIdleBound = Number.NEGATIVE_INFINITY;
  /** A stored definition version refused (the last good one stays in force). */
  private rejected: { version: number; problem: string } | undefined;
  private resolveDone: ((code: number) => void) | undefined;
  private readonly done: Promise<number>;

  constructor(private readonly o: AgentOptions) {
    this.store = o.storeFor(undefined);
    this.startedMono = o.clock.mono();
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.fence = new FenceTimer(o.clock, () => this.onFenceDeadline(), realScheduler);
    this.peerReads = new PeerReads(this.peers, {
      clock: o.clock,
      scheduler: realScheduler,
      timing: () => this.timing(),
      read: () => {
        if (!this.leaving && !this.final) void this.followCluster();
      },
    });
    this.stopper = new GroupStopper({
      state: o.state,
      log: o.log,
      vip: o.vip,
      env: o.env,
      definition: (g) => this.definition(g),
      onLocalChange: () => this.localChanged(),
      startInProcess: (g) => this.activating.get(g),
    });
    this.writer = new HeartbeatWriter({
      cluster: o.cluster,
      node: o.node,
      incarnation: this.incarnation,
      agentVersion: o.agentVersion,
      clock: o.clock,
      scheduler: realScheduler,
      put: (hb) => this.store.putHeartbeat(hb),
      build: () => this.buildReport(),
      timing: () => this.timing(),
      onAck: (ack) => this.onAck(ack),
      onError: (e, hb) => this.onWriteError(e, hb),
      // Past twice the per-call timeout a write is hung, whatever the client thinks.
      writeTimeoutMs: () => 2 * daemonCallTimeouts(this.config?.timing).requestTimeoutMs,
    });
  }

  // ------------------------------------------------------------------------------------------
  // Life cycle

  /** Runs until shutdown; resolves with the process exit code. */
  async run(): Promise<number> {
    const { state } = this.o;
    state.ensure();
    const lock = tryLock(state.agentLockFile, `failover-agent ${this.o.cluster}/${this.o.node}`);
    if (!(lock instanceof LockHandle)) {
      throw new AgentError(
        EXIT.failed,
        `another failover-agent (pid ${lock.busy?.pid ?? '?'}) runs with state directory ${state.dir}; stop it first (systemctl stop failover-agent) or use another --state-dir`,
      );
    }
    this.agentLock = lock;
    try {
      return await this.startUp();
    } catch (e) {
      this.fence.stop();
      this.agentLock.release();
      throw e;
    }
  }

  private async startUp(): Promise<number> {
    const { state, log } = this.o;

    // A restart on the same boot must not extend the lease the previous process held.
    const previous = state.readLease();
    if (
      previous &&
      previous.bootId === BOOT_ID &&
      previous.cluster === this.o.cluster &&
      previous.node === this.o.node
    ) {
      this.fence.restore(previous.fenceUntilMono ?? previous.leaseUntilMono);
      // Its idle watchdog feeds may still keep the node up: the guard must go on seeing them.
      if (previous.idleFeedResetBy !== undefined) this.inheritedIdleBound = previous.idleFeedResetBy;
    }
    const cached = this.readCachedDefinition();
    if (cached) {
      for (const g of cached.config.groups) this.definitions.set(g.name, g);
    }
    this.writeLease();
    log.info('starting', {
      cluster: this.o.cluster,
      node: this.o.node,
      table: this.o.table,
      incarnation: this.incarnation,
      version: this.o.agentVersion,
      stateDir: state.dir,
    });
    // Anything still running from before is covered by the fence timer restored above meanwhile.
    for (const rec of state.listGroups()) if (rec.state !== 'stopped') this.fenceTimerCheckSoon();

    if (!(await this.loadInitialConfig()) || this.leaving) return this.done;
    await this.verifyLocalGroups();
    this.startLoops();
    return this.done;
  }

  /** Planned shutdown (SIGTERM): stop every group, then the final `leaving` heartbeat, then exit 0. */
  async shutdown(why: string): Promise<void> {
    const { log } = this.o;
    if (this.leaving) {
      log.info(`${why}: already shutting down`);
      return;
    }
    this.leaving = true;
    log.info(`${why}: stopping the groups that run here, then leaving`);
    this.writeLease();
    for (const { runner } of this.monitors.values()) runner.stop();
    this.witnesses?.stop();
    this.spot?.stop();
    const running = this.mayRunHere();
    const results = await Promise.all(
      running.map((r) =>
        this.stopper.stop(r.group, 'shutdown', { urgent: false, lockWaitMs: this.longestStopMs(r.group) }),
      ),
    );
    if (results.some((ok) => !ok)) log.error('some groups could not be stopped; the leaving report says so');
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.peerTimer) clearTimeout(this.peerTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watchdogTimer) clearTimeout(this.watchdogTimer);
    this.peerReads.stop();
    if (this.fastTimer) clearTimeout(this.fastTimer);
    this.fastTimer = undefined;
    this.retryTimer = undefined;
    this.watchdogTimer = undefined;
    this.tickTimer = undefined;
    if (this.config) {
      // The final report must be the last write: let the renewals in flight land first.
      await this.writer.drain(FINAL_DRAIN_MS);
      this.final = true;
      let sent = false;
      for (let attempt = 0; attempt < FINAL_REPORT_ATTEMPTS && !sent; attempt++) {
        if (attempt > 0) await sleep(FINAL_REPORT_RETRY_MS);
        sent = await this.writer.final();
      }
      if (sent) log.info('final heartbeat written: leaving');
      else log.error('could not write the final leaving heartbeat; reconcile will wait for the lease to end');
    }
    // Disarm the watchdog only if everything stopped: otherwise something may still run here, and
    // the reset it brings (soft_margin after the last feed) is the fence of last resort.
    if (results.every((ok) => ok)) this.o.watchdog?.close();
    else log.error('the watchdog stays armed: a stop failed, so the node resets when it expires');
    this.fence.stop();
    this.dirWatcher?.close();
    this.agentLock?.release();
    this.resolveDone?.(EXIT.ok);
  }

  private async loadInitialConfig(): Promise<boolean> {
    const { log } = this.o;
    let warned = false;
    while (!this.leaving) {
      try {
        const stored = await this.store.getConfig(this.o.cluster);
        if (!stored) throw await this.unknownCluster();
        if (!this.acceptable(stored.config, stored.version)) {
          // Never adopted: run on the last good definition this node cached, if any.
          const cached = this.readCachedDefinition();
          if (cached && cached.config.nodes.some((n) => n.name === this.o.node)) {
            log.warn(
              `running on the last good definition, version ${cached.version}, from ${this.o.state.dir}`,
            );
            this.applyConfig(cached.config, cached.version);
            return true;
          }
          throw new Error(`definition version ${stored.version} is not usable and no good one is cached`);
        }
        const node = stored.config.nodes.find((n) => n.name === this.o.node);
        if (!node) {
          throw new AgentError(
            EXIT.notFound,
            `node ${this.o.node} is not in cluster ${this.o.cluster} (version ${stored.version}); known nodes: ${stored.config.nodes.map((n) => n.name).join(', ')}`,
          );
        }
        this.applyConfig(stored.config, stored.version);
        return true;
      } catch (e) {
        if (e instanceof AgentError) throw e;
        if (e instanceof NotFoundError) throw new AgentError(EXIT.notFound, e.message);
        if (!warned) log.warn(`cannot read the cluster definition yet: ${errorText(e)}; retrying`);
        warned = true;
        await sleep(INITIAL_CONFIG_RETRY_MS);
      }
    }
    return false;
  }

  private async unknownCluster(): Promise<AgentError> {
    let known = '';
    try {
      const clusters = await this.store.listClusters();
      known =
        clusters.length > 0
          ? `; clusters in this table: ${clusters.join(', ')}`
          : '; the table holds no cluster yet';
    } catch {
      // the hint is optional
    }
    return new AgentError(
      EXIT.notFound,
      `cluster ${this.o.cluster} has no definition in table ${this.o.table}${known}; apply one with "failoverctl apply -f cluster.yaml" or fix --cluster / --table`,
    );
  }

  /**
   * A group the local state says runs here is kept only if a strongly consistent read names this
   * node owner at that same epoch; otherwise (or when it cannot be read) it is stopped.
   */
  private async verifyLocalGroups(): Promise<void> {
    const { log } = this.o;
    for (const rec of this.localRecords() ?? []) {
      if (rec.state === 'stopped') continue;
      if ((rec.state === 'starting' || rec.state === 'stopping') && this.writerAlive(rec)) continue;
      let keep = false;
      let why = '';
      try {
        const record = await this.store.getGroup(this.o.cluster, rec.group);
        keep = rec.state === 'running' && record?.owner === this.o.node && record.epoch === rec.epoch;
        if (record) this.follower.observe([record]);
        why = record
          ? `record names ${record.owner ?? 'no owner'} at epoch ${record.epoch}`
          : 'no group record';
      } catch (e) {
        why = `cannot verify: ${errorText(e)}`;
      }
      if (keep) {
        log.info(`keeps ${rec.group}: still owner at epoch ${rec.epoch}`);
      } else {
        log.warn(
          `${rec.group} was ${rec.state} at epoch ${rec.epoch} before this start; ${why}: stopping it`,
        );
        void this.stopper.stop(rec.group, 'startup', {
          urgent: false,
          expect: { epoch: rec.epoch, state: rec.state },
          lockWaitMs: this.longestStopMs(rec.group),
        });
      }
    }
  }

  private startLoops(): void {
    this.armTick();
    try {
      this.dirWatcher = watch(this.o.state.groupsDir, () => this.localChanged());
      this.dirWatcher.on('error', () => undefined);
    } catch {
      // The periodic check covers it.
    }
    if (this.o.imds) {
      this.spot = new SpotWatcher(this.o.imds, this.o.log, () => this.writer.changed(), this.o.spotPollMs);
      this.spot.start();
    }
    this.tick();
  }

  private armTick(): void {
    const ms = this.timing().heartbeatIntervalMs;
    if (this.tickTimer && ms === this.tickMs) return;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickMs = ms;
    this.tickTimer = setInterval(() => this.tick(), ms);
  }

  // ------------------------------------------------------------------------------------------
  // The periodic tick

  private tick(): void {
    if (this.final) return;
    this.renew();
    if (!this.leaving) {
      // The cluster is read right after each peer's renewal is due (the sooner a renewal is first
      // read, the sooner a crash after it is proven), else half an interval after this renewal.
      this.peerReads.onTick();
      if (this.o.clock.mono() >= this.nextConfigReadMono) void this.refreshConfig();
    }
    const records = this.checkLocal();
    // Backstop for the fence timer (a lost timer must not mean a missed fence).
    if (!this.fence.holdsLease() && records.some((r) => r.state !== 'stopped')) this.onFenceDeadline();
    this.feedWatchdog();
  }

  /**
   * One renewal; while it stays unacknowledged, another every heartbeatRetryMs. A lost write then
   * costs a retry interval, not a whole heartbeat, so the lease survives TOLERATED_LOST_RENEWALS in
   * a row (shared/config/rules.ts) at a slow, cheap heartbeat. Safety does not depend on it: the
   * fence deadline only ever follows acknowledged renewals.
   *
   *   t=0 renewal A sent ... acked           -> next renewal at t=heartbeat
   *   t=0 renewal A sent, no ack by t=retry  -> renewal B at t=retry, C at 2 x retry, ...
   */
  private renew(): void {
    const sentMono = this.o.clock.mono();
    void this.writer.tick();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.final || this.lastAckSentMono >= sentMono) return;
      this.renew();
    }, heartbeatRetryMs(this.timing()));
  }

  private timing(): Timing {
    return this.config?.timing ?? defaultTiming();
  }

  // ------------------------------------------------------------------------------------------
  // Renewals and the fence

  private onAck(ack: Ack): void {
    const { log } = this.o;
    this.everAcked = true;
    this.lastAckSentMono = Math.max(this.lastAckSentMono, ack.sentMono);
    this.fence.ack(ack.seq, {
      sentMono: ack.sentMono,
      leaseMs: ack.timing.leaseMs,
      fenceMarginMs: ack.timing.fenceMarginMs,
    });
    if (this.writeFailures > 0) {
      log.info(`renewals acknowledged again after ${this.writeFailures} failed`);
      this.writeFailures = 0;
    }
    // Serve again only after a renewal that reported the fence was acknowledged; the guard still
    // requires the group record to name this node owner at the current epoch before any start.
    if (this.fenced && ack.heartbeat.state === 'fenced') {
      this.fenced = false;
      this.fenceAttempts.clear();
      log.warn('lease renewed after the self-fence; starts through the guard are allowed again');
      this.writer.changed();
    }
    // A change of the fenced flag is always written; a moved deadline only now and then.
    this.writeLease(false);
    this.feedWatchdog();
    this.o.onAcked?.(ack);
  }

  private onWriteError(e: unknown, hb: Heartbeat): void {
    this.writeFailures++;
    if (this.writeFailures === 1 || this.writeFailures % 10 === 0) {
      this.o.log.warn(`renewal ${hb.token} failed (${this.writeFailures} in a row): ${errorText(e)}`, {
        fenceInMs: Math.round(this.fence.remainingMs()),
      });
    }
  }

  private fenceTimerCheckSoon(): void {
    if (!this.fence.holdsLease()) setImmediate(() => this.onFenceDeadline());
  }

  /**
   * The lease could not be renewed for lease - fenceMargin: stop everything that runs here before
   * the controller (or a peer) may consider this node dead, and serve nothing until a renewal that
   * reports the fence is acknowledged.
   */
  private onFenceDeadline(): void {
    if (this.fence.holdsLease()) return;
    const { log, clock } = this.o;
    const running = this.mayRunHere();
    if (!this.everAcked && running.length === 0) return; // never held a lease, nothing to protect
    if (!this.fenced) {
      this.fenced = true;
      const last = this.fence.lastAck;
      log.warn(
        'self-fence: no renewal acknowledged for lease - fenceMargin; stopping everything that runs here',
        {
          lastAckSentMsAgo: last ? Math.round(clock.mono() - last.sentMono) : undefined,
          leaseMs: this.timing().leaseMs,
          fenceMarginMs: this.timing().fenceMarginMs,
          groups: running.map((r) => r.group),
        },
      );
      // Written before anything is stopped: a guard that checks the lease from now on refuses.
      this.writeLease();
      this.writer.changed();
    }
    const now = clock.mono();
    for (const r of running) {
      if (this.stopper.isStopping(r.group)) {
        void this.stopper.stop(r.group, 'fence', { urgent: true }); // upgrades a stop waiting for the lock
        continue;
      }
      // A stop that failed (stop script error) is tried again, but not in a tight loop.
      if (now - (this.fenceAttempts.get(r.group) ?? Number.NEGATIVE_INFINITY) < FENCE_RETRY_MS) continue;
      this.fenceAttempts.set(r.group, now);
      void this.stopper.stop(r.group, 'fence', { urgent: true });
    }
  }

  /**
   * agent.json: what the guard checks before any start. Rewritten on every change of state, when
   * an idle watchdog feed is announced, and when the deadline has moved a quarter of (lease -
   * fenceMargin) past the one written: the guard then sees a deadline that is never later than the
   * real one (so it may refuse a little early, never start late), without a file replace on every
   * renewal. Returns false when the file could not be written.
   */
  private writeLease(force = true): boolean {
    const t = this.timing();
    const deadline = Number.isFinite(this.fence.deadline) ? this.fence.deadline : 0;
    const admit = Number.isFinite(this.fence.admitUntil) ? this.fence.admitUntil : 0;
    const idle = this.idleFeedBound();
    const flags = `${admit > 0}/${this.fenced}/${this.leaving}/${t.leaseMs}/${t.fenceMarginMs}/${idle}/${JSON.stringify(this.o.watchdog?.status)}/${this.rejected?.version}`;
    const moved = deadline - this.leaseWritten.deadline;
    // A deadline that moved back (a shorter lease) is always written: never later than the real one.
    // So is one whose lease end would leave an announced idle feed uncovered (the guard would refuse).
    if (
      !force &&
      flags === this.leaseWritten.flags &&
      moved >= 0 &&
      moved < leaseFileRewriteMs(t) &&
      !(idle !== undefined && idle > leaseEndFromDeadline(this.leaseWritten.deadline, t.fenceMarginMs))
    ) {
      return true;
    }
    try {
      this.o.state.writeLease({
        pid: process.pid,
        ...(PID_START !== undefined ? { pidStart: PID_START } : {}),
        incarnation: this.incarnation,
        ...(BOOT_ID !== undefined ? { bootId: BOOT_ID } : {}),
        cluster: this.o.cluster,
        node: this.o.node,
        table: this.o.table,
        ...(this.o.region ? { region: this.o.region } : {}),
        ...(this.o.endpoint ? { endpoint: this.o.endpoint } : {}),
        leaseUntilMono: admit,
        fenceUntilMono: deadline,
        fenced: this.fenced,
        leaving: this.leaving,
        leaseMs: t.leaseMs,
        fenceMarginMs: t.fenceMarginMs,
        ...(idle !== undefined ? { idleFeedResetBy: idle } : {}),
        ...(this.o.watchdog ? { watchdog: this.o.watchdog.status } : {}),
        ...(this.rejected ? { rejectedConfig: this.rejected } : {}),
        at: this.o.clock.wall(),
      });
      this.leaseWritten = { flags, deadline };
      return true;
    } catch (e) {
      this.o.log.error(`cannot write the lease file in ${this.o.state.dir}: ${errorText(e)}`);
      return false;
    }
  }

  /** The idle-feed bound to publish: this process's announcements and its predecessor's. */
  private idleFeedBound(): number | undefined {
    const bound = Math.max(this.inheritedIdleBound, this.announcedIdleBound);
    return Number.isFinite(bound) ? bound : undefined;
  }

  /**
   * Opens the watchdog once a definition gives the lease, if the device's real timeout suits it
   * (watchdog.ts), and starts feeding at once: the device resets the node S after it is opened.
   */
  private armWatchdog(timing: Timing): void {
    const wd = this.o.watchdog;
    if (!wd || this.final || this.leaving) return;
    wd.armFor(timing);
    if (wd.armed && !this.feeder) {
      this.feeder = new WatchdogFeeder(
        {
          now: () => this.o.clock.mono(),
          feed: () => wd.feed(),
          announce: (bound) => {
            this.announcedIdleBound = Math.max(this.announcedIdleBound, bound);
            return this.writeLease();
          },
          nothingRuns: () => this.localRecords()?.every((r) => r.state === 'stopped'),
        },
        wd.timeoutMs,
        this.inheritedIdleBound,
      );
      this.feedWatchdog();
      this.armWatchdogFeed();
    }
  }

  /** One chance to feed, by the rule of core/watchdog-feeder.ts. */
  private feedWatchdog(): void {
    this.feeder?.tick(this.fence.leaseEnd);
  }

  /**
   * Feeds the watchdog on a cadence of its own (a quarter of its timeout, 100-1000 ms): a heartbeat
   * interval close to the timeout (1750 ms against softdog's 2 s at the defaults) must not reset a
   * healthy node because one tick or one renewal came late.
   */
  private armWatchdogFeed(): void {
    const feeder = this.feeder;
    if (!feeder || this.final) return;
    this.watchdogTimer = setTimeout(() => {
      this.feedWatchdog();
      this.armWatchdogFeed();
    }, watchdogFeedIntervalMs(feeder.timeoutMs));
  }

  // ------------------------------------------------------------------------------------------
  // The report

  private buildReport(): ReportParts {
    const now = this.o.clock.mono();
    const monitors: ReportParts['monitors'] = {};
    for (const [name, { runner }] of this.monitors) monitors[name] = runner.report();
    const lease = this.timing().leaseMs;
    const wd = this.o.watchdog;
    return {
      state: agentState({ leaving: this.leaving, fenced: this.fenced }),
      groups: groupReports(
        this.myGroups().map((g) => g.name),
        this.localRecords(),
        (g) => this.follower.seenEpoch(g),
      ),
      monitors,
      isolated: this.witnesses?.isolated ?? false,
      ...(this.witnesses && this.witnesses.report().length > 0 ? { witnesses: this.witnesses.report() } : {}),
      peers: this.peers.report(now),
      expiredPeers: this.peers.expired(now, lease),
      doubtedPeers: this.peers.doubted(now, lease),
      ...(this.spot?.spot ? { spot: this.spot.spot } : {}),
      ...(this.spot?.rebalance ? { rebalance: this.spot.rebalance } : {}),
      fence: fencePromise(
        this.myGroups().map((g) => groupStopBudgetMs(g)),
        wd ? { armed: wd.armed, timeoutMs: wd.timeoutMs } : undefined,
      ),
      ...(this.rejected ? { rejectedConfig: this.rejected } : {}),
    };
  }

  private myGroups(): GroupConfig[] {
    return (this.config?.groups ?? []).filter((g) => g.nodes.includes(this.o.node));
  }

  private definition(group: string): GroupConfig | undefined {
    return this.config?.groups.find((g) => g.name === group) ?? this.definitions.get(group);
  }

  /**
   * The local group records; undefined when they cannot be read. Unreadable is never "nothing
   * runs": the report then says `failed` (which the controller treats as running), the fence tries
   * every group of the definition, and the watchdog is not fed.
   */
  private localRecords(): LocalGroupRecord[] | undefined {
    try {
      return this.o.state.listGroups();
    } catch (e) {
      this.o.log.error(`cannot read the local group states in ${this.o.state.groupsDir}: ${errorText(e)}`);
      return undefined;
    }
  }

  /**
   * Groups that may run here: the local records not stopped, or, when they cannot be read, every
   * group of the definition that lists this node (the stop scripts are idempotent).
   */
  private mayRunHere(): LocalGroupRecord[] {
    const records = this.localRecords();
    if (records) return records.filter((r) => r.state !== 'stopped');
    return this.myGroups().map((g) => ({
      group: g.name,
      state: 'failed',
      epoch: this.follower.seenEpoch(g.name),
      pid: process.pid,
      at: this.o.clock.wall(),
    }));
  }

  private localState(group: string): AgentGroupState {
    try {
      return this.o.state.readGroup(group)?.state ?? 'stopped';
    } catch {
      return 'failed';
    }
  }

  // ------------------------------------------------------------------------------------------
  // Local state: guard runs, orphans, monitors' active time

  private localChanged(): void {
    if (this.localCheckQueued) return;
    this.localCheckQueued = true;
    setTimeout(() => {
      this.localCheckQueued = false;
      this.checkLocal();
    }, 10);
  }

  /** The process that wrote a "starting" or "stopping" record is still at it (same pid and start time). */
  private writerAlive(rec: LocalGroupRecord): boolean {
    if (rec.run) return sameProcessAlive(rec.run.guardPid, rec.run.guardStart);
    if (rec.pid === process.pid) return rec.pidStart === undefined || rec.pidStart === PID_START;
    return sameProcessAlive(rec.pid, rec.pidStart);
  }

  /** Looks at the local group records (orphans, groups no longer assigned); returns them. */
  private checkLocal(): LocalGroupRecord[] {
    if (this.final) return [];
    const now = this.o.clock.mono();
    const records = this.localRecords();
    if (records === undefined) {
      // Cannot tell what runs here: behave as if everything might (report failed, fence if due).
      if (this.fenced) this.onFenceDeadline();
      this.writer.changed();
      return [];
    }
    const mine = new Set(this.myGroups().map((g) => g.name));
    for (const rec of records) {
      if (rec.state === 'running') {
        if (!this.activeSince.has(rec.group)) this.activeSince.set(rec.group, now);
      } else {
        this.activeSince.delete(rec.group);
      }
      if (rec.state === 'stopped' || this.stopper.isStopping(rec.group)) continue;
      // A start or stop whose guard died (SSM timeout, crash): its outcome is unknown, so stop.
      if ((rec.state === 'starting' || rec.state === 'stopping') && !this.writerAlive(rec)) {
        const holder = readLockOwner(this.o.state.lockFile(rec.group));
        if (!holder || !sameProcessAlive(holder.pid, holder.start)) {
          this.o.log.warn(
            `${rec.group}: the ${rec.state === 'starting' ? 'start' : 'stop'} at epoch ${rec.epoch} was interrupted (its process is gone); stopping`,
          );
          void this.stopper.stop(rec.group, 'orphan', {
            urgent: false,
            expect: { epoch: rec.epoch, state: rec.state },
          });
          continue;
        }
      }
      if (this.config && !mine.has(rec.group) && (rec.state === 'running' || rec.state === 'failed')) {
        this.o.log.warn(
          `${rec.group} runs here but the cluster definition no longer assigns it to ${this.o.node}; stopping`,
        );
        void this.stopper.stop(rec.group, 'removed', {
          urgent: false,
          expect: { epoch: rec.epoch, state: rec.state },
        });
      }
    }
    for (const g of [...this.activeSince.keys()])
      if (!records.some((r) => r.group === g)) this.activeSince.delete(g);
    if (this.fenced) this.onFenceDeadline();
    this.writer.changed();
    return records;
  }

  // ------------------------------------------------------------------------------------------
  // Following the controller: group records, peers, cluster definition

  /**
   * One read per tick (a single BatchGetItem, eventually consistent) for both the group records
   * and the peers' renewals: each call costs the agent CPU (signing, TLS, JSON).
   */
  private async followCluster(): Promise<void> {
    if (this.readingCluster || !this.config) return;
    this.readingCluster = true;
    const groups = this.config.groups.map((g) => g.name);
    const peers = this.config.nodes.map((n) => n.name).filter((n) => n !== this.o.node);
    let transition = '';
    try {
      const read = await this.store.readClusterState(this.o.cluster, groups, peers);
      // The first-read time of a peer's renewal is when the answer arrived, never when it was sent.
      const readDone = this.o.clock.mono();
      const readDoneWall = this.o.clock.wall();
      if (this.final) return;
      this.followGroups(read.groups);
      if (peers.length > 0) this.watchPeers(read.heartbeats, peers, readDone, readDoneWall);
      transition = this.transitionSeen(read.groups, read.heartbeats);
    } catch (e) {
      this.o.log.debug(`cannot read the group records and the peers' renewals: ${errorText(e)}`);
    } finally {
      this.readingCluster = false;
    }
    if (!this.leaving && !this.final) this.peerReads.afterRead();
    this.followFastWhile(transition);
  }

  /**
   * What is moving that concerns this node, as a key ('' when nothing): peers whose renewals
   * stopped or who left or fenced (the controller is about to move their groups, maybe here), and
   * groups owned here that do not run here yet, or run here but are owned elsewhere.
   */
  private transitionSeen(records: GroupState[], heartbeats: Record<string, Heartbeat>): string {
    const lease = this.timing().leaseMs;
    const parts: string[] = this.peers.expired(this.o.clock.mono(), lease).map((p) => `silent:${p}`);
    for (const [peer, hb] of Object.entries(heartbeats)) {
      if (peer !== this.o.node && hb.state !== 'running') parts.push(`${hb.state}:${peer}`);
    }
    for (const r of records) {
      const local = this.localState(r.group);
      const mine = r.owner === this.o.node;
      if (mine !== (local === 'running')) {
        parts.push(`${r.group}:${r.epoch}:${r.phase}:${r.owner ?? '-'}:${local}`);
      }
    }
    return parts.sort().join(' ');
  }

  /**
   * While a transition is seen, the next read comes after a retry interval instead of a heartbeat:
   * a new owner brings its addresses up (and a standby sees its peer's renewal stop) within a few
   * hundred milliseconds of the controller's decision. Each new transition buys FAST_FOLLOW_LEASES
   * leases of fast reads at most, so a peer that stays down costs nothing once it has been seen.
   */
  private followFastWhile(transition: string): void {
    const now = this.o.clock.mono();
    if (transition !== this.fastFollow.key) {
      this.fastFollow = {
        key: transition,
        until: transition ? now + fastFollowMs(this.timing()) : 0,
      };
    }
    if (!transition || now >= this.fastFollow.until || this.fastTimer || this.leaving || this.final) return;
    this.fastTimer = setTimeout(() => {
      this.fastTimer = undefined;
      if (!this.leaving && !this.final) void this.followCluster();
    }, heartbeatRetryMs(this.timing()));
  }

  private followGroups(records: GroupState[]): void {
    const changed = this.follower.observe(records);
    for (const record of records) {
      const local = this.o.state.readGroup(record.group);
      if (!local || !mustDemote(local, record, this.o.node) || this.stopper.isStopping(record.group))
        continue;
      this.o.log.warn(
        `${record.group} runs here at epoch ${local.epoch} but the record names ${record.owner ?? 'no owner'} at epoch ${record.epoch}: stale owner, stopping at once`,
      );
      void this.stopper.stop(record.group, 'demote', {
        urgent: false,
        expect: { epoch: local.epoch, state: local.state },
        lockWaitMs: this.longestStopMs(record.group),
      });
    }
    for (const record of records) this.activateIfOwned(record);
    if (changed) this.writer.changed();
  }

  /**
   * Brings a group without application up here when the record names this node owner and lists it
   * in mayRun (the controller records it there before anything may start): the guard's start, in
   * this process and without a command, reads the record again (strongly consistent), checks the
   * lease, puts the group's addresses on the interface and records the group running.
   */
  private activateIfOwned(record: GroupState): void {
    const me = this.o.node;
    const def = this.config?.groups.find((g) => g.name === record.group);
    if (!def) return;
    let local: LocalGroupRecord | undefined | 'unreadable';
    try {
      local = this.o.state.readGroup(record.group);
    } catch {
      local = 'unreadable';
    }
    const tried = this.activationTried.get(record.group);
    const wanted = activationWanted({
      node: me,
      record,
      selfStarted: def.nodes.includes(me) && !hasApplication(def),
      serving: !this.fenced && !this.leaving && !this.final && this.fence.servesLease(),
      busy: this.activating.has(record.group) || this.stopper.isStopping(record.group),
      local,
      sinceLastTryMs: tried === undefined ? Number.POSITIVE_INFINITY : this.o.clock.mono() - tried,
    });
    if (wanted) {
      const started = this.activate(def, record.epoch);
      this.activating.set(def.name, started);
      void started.finally(() => {
        if (this.activating.get(def.name) === started) this.activating.delete(def.name);
      });
    }
  }

  private async activate(def: GroupConfig, epoch: number): Promise<void> {
    const { log, state } = this.o;
    const group = def.name;
    this.activationTried.set(group, this.o.clock.mono());
    try {
      const code = await runGuard(
        {
          group,
          epoch,
          action: 'start',
          cluster: this.o.cluster,
          node: this.o.node,
          table: this.o.table,
          stateDir: state.dir,
          vips: interfaceAddresses(def),
          lockTimeoutMs: 0,
          command: [],
        },
        {
          env: this.o.env,
          clock: this.o.clock,
          vip: this.o.vip,
          store: this.store,
          err: (line) => log.info(line.replace(/^failover-agent guard: /, '')),
        },
      );
      if (code === EXIT.ok) this.follower.note(group, epoch);
    } catch (e) {
      log.error(`cannot start ${group} at epoch ${epoch}: ${errorText(e)}`);
    } finally {
      this.localChanged();
    }
  }

  private watchPeers(
    heartbeats: Record<string, Heartbeat>,
    peers: string[],
    readDone: number,
    readDoneWall: number,
  ): void {
    this.peers.observe(heartbeats, readDone, peers, {
      wall: readDoneWall,
      heartbeatIntervalMs: this.timing().heartbeatIntervalMs,
    });
    this.armPeerTimer(readDone);
    this.writer.changed();
  }

  /**
   * Reports a peer's doubt and its lease expiry the moment each happens, not at the next read: one
   * timer for the next crossing, armed again for the one after it (the expiry follows the doubt).
   * A doubt is reported after a fresh read, only if the renewal is still the same (a late one may
   * have landed since the last re-check): a false doubt would cost two reports, two invocations.
   */
  private armPeerTimer(nowMono: number): void {
    const lease = this.timing().leaseMs;
    const next = this.peers.nextCrossing(nowMono, lease);
    if (this.peerTimer) clearTimeout(this.peerTimer);
    this.peerTimer = undefined;
    if (next === undefined || this.leaving || this.final) return;
    this.peerTimer = setTimeout(() => {
      this.peerTimer = undefined;
      if (next.kind === 'doubt') {
        // The read's watchPeers reports the doubt (or not) and arms the timer again.
        void this.followCluster();
        this.armPeerTimer(this.o.clock.mono());
        return;
      }
      this.writer.changed();
      // The controller moves the silent peer's groups within moments: look for them fast.
      this.followFastWhile(
        this.peers
          .expired(this.o.clock.mono(), lease)
          .map((p) => `silent:${p}`)
          .join(' '),
      );
      this.armPeerTimer(this.o.clock.mono());
    }, Math.ceil(next.inMs) + 1);
  }

  private async refreshConfig(): Promise<void> {
    if (this.readingConfig) return;
    this.readingConfig = true;
    this.nextConfigReadMono = this.o.clock.mono() + this.configRefreshMs();
    try {
      const stored = await this.store.getConfig(this.o.cluster);
      if (
        stored &&
        stored.version !== this.configVersion &&
        stored.version !== this.rejected?.version &&
        !this.leaving &&
        this.acceptable(stored.config, stored.version)
      ) {
        this.o.log.info(`cluster definition version ${stored.version} (was ${this.configVersion}): applying`);
        this.applyConfig(stored.config, stored.version);
      }
    } catch (e) {
      this.o.log.debug(`cannot re-read the cluster definition: ${errorText(e)}`);
    } finally {
      this.readingConfig = false;
    }
  }

  private configRefreshMs(): number {
    return (
      this.o.configRefreshMs ??
      Math.min(
        CONFIG_REFRESH_MAX_MS,
        Math.max(CONFIG_REFRESH_MIN_MS, CONFIG_REFRESH_HEARTBEATS * this.timing().heartbeatIntervalMs),
      )
    );
  }

  /**
   * Checks a stored definition before it is adopted (shared/config/stored-check.ts). A refused
   * version is logged once, reported in every heartbeat and in agent.json, and never adopted; the
   * definition in force (and its stop scripts) stays.
   */
  private acceptable(config: unknown, version: number): config is ClusterConfig {
    const problems = storedDefinitionProblems(config);
    if (problems.length === 0) return true;
    if (this.rejected?.version !== version) {
      const problem =
        problems.slice(0, 3).join('; ') + (problems.length > 3 ? `; and ${problems.length - 3} more` : '');
      this.rejected = { version, problem };
      this.o.log.error(
        `refusing cluster definition version ${version}: ${problem}; keeping ${this.configVersion > 0 ? `version ${this.configVersion}` : 'none yet'}; fix it and apply again with "failoverctl apply -f cluster.yaml"`,
      );
      this.writeLease();
      this.writer.changed();
    }
    return false;
  }

  /** The definition cached in the state directory, if it is this cluster's and sound. */
  private readCachedDefinition(): { version: number; config: ClusterConfig } | undefined {
    let cached: { version: number; config: unknown } | undefined;
    try {
      cached = this.o.state.readConfigCache();
    } catch (e) {
      this.o.log.warn(`cannot read the cached definition in ${this.o.state.dir}: ${errorText(e)}`);
      return undefined;
    }
    if (!cached || storedDefinitionProblems(cached.config).length > 0) return undefined;
    const config = cached.config as ClusterConfig;
    return config.cluster === this.o.cluster ? { version: cached.version, config } : undefined;
  }

  /** Applies a (new) cluster definition without a restart. */
  private applyConfig(config: ClusterConfig, version: number): void {
    const { log } = this.o;
    const before = this.config?.timing;
    this.config = config;
    this.configVersion = version;
    for (const g of config.groups) this.definitions.set(g.name, g);
    try {
      this.o.state.writeConfigCache(version, config);
    } catch (e) {
      log.warn(`cannot cache the cluster definition in ${this.o.state.dir}: ${errorText(e)}`);
    }
    if (!config.nodes.some((n) => n.name === this.o.node)) {
      log.error(
        `node ${this.o.node} is no longer in cluster ${this.o.cluster} (version ${version}); it reports no group`,
      );
    }
    if (this.rejected && this.rejected.version <= version) this.rejected = undefined;
    this.armWatchdog(config.timing);
    if (JSON.stringify(before) !== JSON.stringify(config.timing)) {
      this.store = this.o.storeFor(config.timing);
      if (this.tickTimer) this.armTick();
    }
    this.rebuildMonitors();
    this.rebuildWitnesses();
    this.nextConfigReadMono = this.o.clock.mono() + this.configRefreshMs();
    this.writeLease();
    this.writer.changed();
  }

  private rebuildMonitors(): void {
    const wanted = new Map<string, { key: string; make: () => MonitorRunner }>();
    for (const group of this.myGroups()) {
      for (const m of group.monitors) {
        if (!isAgentMonitor(m)) continue;
        // A monitor that judges the group's addresses restarts when they change.
        const key = JSON.stringify([
          group.name,
          m,
          monitorKind(m.type)?.needsAddress ? group.resources : null,
        ]);
        wanted.set(m.name, {
          key,
          make: () =>
            new MonitorRunner(
              monitorSpec(m, group.name),
              probeFor(m, group, {
                vip: this.o.vip,
                localState: (g) => this.localState(g),
                ...(this.o.pingCommand ? { pingCommand: this.o.pingCommand } : {}),
              }),
              {
                clock: this.o.clock,
                log: this.o.log,
                activeSince: (g) => this.activeSince.get(g),
                startedMono: this.startedMono,
                onChange: () => this.writer.changed(),
              },
            ),
        });
      }
    }
    for (const [name, current] of this.monitors) {
      if (wanted.get(name)?.key !== current.key) {
        current.runner.stop();
        this.monitors.delete(name);
      }
    }
    for (const [name, w] of wanted) {
      if (this.monitors.has(name)) continue;
      const runner = w.make();
      this.monitors.set(name, { key: w.key, runner });
      if (!this.leaving) runner.start();
    }
  }

  private rebuildWitnesses(): void {
    const config = this.config!;
    const interval = Math.max(
      WITNESS_MIN_INTERVAL_MS,
      WITNESS_HEARTBEATS * config.timing.heartbeatIntervalMs,
    );
    const key = JSON.stringify([config.witnesses, interval]);
    if (key === this.witnessKey) return;
    this.witnessKey = key;
    this.witnesses?.stop();
    this.witnesses = new Witnesses(
      config.witnesses,
      interval,
      this.o.log,
      () => this.writer.changed(),
      this.o.pingCommand,
    );
    if (!this.leaving) this.witnesses.start();
  }

  /** How long a non-urgent stop may wait for a guard holding the lock: the group's stop budget. */
  private longestStopMs(group: string): number {
    const def = this.definition(group);
    return STOP_LOCK_SLACK_MS + (def ? groupStopBudgetMs(def) : 0);
  }
}
