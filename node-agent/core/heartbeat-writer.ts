/**
 * Lease renewals and reports: one Heartbeat item per node (shared/core/model.ts), written with
 * the agent store's putHeartbeat (store.ts) to the node's own key only.
 *
 * - `token` = `<incarnation>/<seq>`: the incarnation is random per agent process, `seq` grows with
 *   every write, so every write changes the token that peers and reconcile watch.
 * - `reason` is `change` when something reportable differs from the last ACKNOWLEDGED write (group
 *   states and epochs, monitor statuses, isolated, a peer crossing its lease, Spot / rebalance
 *   notices, the agent's state), else `periodic`. The stream filter drops periodic writes, so only
 *   real changes invoke reconcile; a change whose write failed is repeated as a change.
 * - A change is written at once, not at the next tick.
 * - Writes may overlap (a slow one does not hold back the next renewal), at most `maxInFlight`.
 */

import type { Timing } from '../../shared/config/timing';
import type { Heartbeat, MonitorReport } from '../../shared/core/model';
import type { Clock, Scheduler } from './clock';

/** The code of a renewal refused because a newer one of the same process was stored first. */
export const HEARTBEAT_SUPERSEDED = 'HEARTBEAT_SUPERSEDED';

/** Everything a heartbeat reports, before the renewal fields are added. */
export interface ReportParts {
  state: Heartbeat['state'];
  groups: Heartbeat['groups'];
  monitors: Record<string, MonitorReport>;
  isolated: boolean;
  witnesses?: Heartbeat['witnesses'];
  peers: Heartbeat['peers'];
  /** Peers whose token stayed the same for a whole lease (part of the change fingerprint). */
  expiredPeers: string[];
  /**
   * Peers whose token stayed the same for their doubt time, a lead before the lease (part of the
   * change fingerprint). Absent: none (a simulated agent that does not report doubts).
   */
  doubtedPeers?: string[];
  spot?: Heartbeat['spot'];
  rebalance?: Heartbeat['rebalance'];
  fence?: Heartbeat['fence'];
  rejectedConfig?: Heartbeat['rejectedConfig'];
}

/** The reportable part of a report: a difference here makes a write a `change`. */
export function fingerprint(p: ReportParts): string {
  const monitors: Record<string, string> = {};
  for (const name of Object.keys(p.monitors).sort()) monitors[name] = p.monitors[name]!.status;
  const groups: Record<string, string> = {};
  for (const name of Object.keys(p.groups).sort())
    groups[name] = `${p.groups[name]!.state}@${p.groups[name]!.epoch}`;
  return JSON.stringify({
    s: p.state,
    g: groups,
    m: monitors,
    i: p.isolated,
    x: p.expiredPeers,
    d: p.doubtedPeers ?? [],
    sp: p.spot ?? null,
    rb: p.rebalance ?? null,
    rc: p.rejectedConfig?.version ?? null,
  });
}

export interface Ack {
  seq: number;
  /** Monotonic time taken right before the write was handed to the DynamoDB client. */
  sentMono: number;
  timing: Timing;
  heartbeat: Heartbeat;
}

export interface WriterDeps {
  cluster: string;
  node: string;
  incarnation: string;
  agentVersion: string;
  clock: Clock;
  scheduler: Scheduler;
  put(hb: Heartbeat): Promise<void>;
  build(): ReportParts;
  timing(): Timing;
  onAck(ack: Ack): void;
  onError(error: unknown, hb: Heartbeat): void;
  maxInFlight?: number;
  /**
   * A write still unanswered after this long no longer counts against `maxInFlight` (its answer,
   * if it ever comes, is still handled), so a hung call can never stop the renewals.
   */
  writeTimeoutMs?(): number;
}

/** Writes renewals (periodic) and reports (change), numbering them `<incarnation>/<seq>`. */
export class HeartbeatWriter {
  private seq = 0;
  private ackedSeq = 0;
  private ackedFingerprint = '';
  private sentFingerprint = '';
  private inFlight = 0;
  private pendingChange = false;
  private changeQueued = false;
  private idle: (() => void)[] = [];
  readonly stats = { sent: 0, acked: 0, failed: 0, changes: 0, superseded: 0 };

  constructor(private readonly deps: WriterDeps) {}

  /** Periodic renewal. */
  tick(): Promise<boolean> {
    return this.write('tick');
  }

  /** Something reportable may have changed: write now if it did (coalesced within one turn). */
  changed(): void {
    if (this.changeQueued) return;
    this.changeQueued = true;
    this.deps.scheduler.soon(() => {
      this.changeQueued = false;
      void this.write('change');
    });
  }

  /** The final write of a planned shutdown; waits for nothing else to be in flight first. */
  async final(): Promise<boolean> {
    return this.write('final');
  }

  /** Resolves when no write is in flight (or after `timeoutMs`). */
  drain(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.deps.scheduler.after(timeoutMs, resolve);
      this.idle.push(() => {
        cancel();
        resolve();
      });
    });
  }

  get inFlightWrites(): number {
    return this.inFlight;
  }

  private async write(kind: 'tick' | 'change' | 'final'): Promise<boolean> {
    const { deps } = this;
    if (kind !== 'final' && this.inFlight >= (deps.maxInFlight ?? 3)) {
      if (kind === 'change') this.pendingChange = true;
      return false;
    }
    const parts = deps.build();
    const fp = fingerprint(parts);
    if (kind === 'change' && fp === this.sentFingerprint) return false;
    const reason: Heartbeat['reason'] =
      kind === 'final' || fp !== this.ackedFingerprint ? 'change' : 'periodic';
    this.sentFingerprint = fp;
    const seq = ++this.seq;
    const timing = deps.timing();
    const hb: Heartbeat = {
      cluster: deps.cluster,
      node: deps.node,
      token: `${deps.incarnation}/${seq}`,
      seq,
      incarnation: deps.incarnation,
      sentAt: deps.clock.wall(),
      leaseMs: timing.leaseMs,
      agentVersion: deps.agentVersion,
      state: parts.state,
      reason,
      monitors: parts.monitors,
      isolated: parts.isolated,
      ...(parts.witnesses ? { witnesses: parts.witnesses } : {}),
      groups: parts.groups,
      peers: parts.peers,
      ...(parts.spot ? { spot: parts.spot } : {}),
      ...(parts.rebalance ? { rebalance: parts.rebalance } : {}),
      ...(parts.fence ? { fence: parts.fence } : {}),
      ...(parts.rejectedConfig ? { rejectedConfig: parts.rejectedConfig } : {}),
    };
    const sentMono = deps.clock.mono();
    this.inFlight++;
    this.stats.sent++;
    if (reason === 'change') this.stats.changes++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.inFlight--;
      if (this.inFlight === 0) for (const done of this.idle.splice(0)) done();
      if (this.pendingChange && kind !== 'final') {
        this.pendingChange = false;
        this.changed();
      }
    };
    const cancelTimer = deps.scheduler.after(deps.writeTimeoutMs?.() ?? 10_000, release);
    try {
      await deps.put(hb);
      this.stats.acked++;
      if (seq > this.ackedSeq) {
        this.ackedSeq = seq;
        this.ackedFingerprint = fp;
      }
      deps.onAck({ seq, sentMono, timing, heartbeat: hb });
      return true;
    } catch (e) {
      // A newer renewal of this process was stored first (writes in flight landed out of order):
      // that one holds the lease; this one is neither acknowledged nor a failure. The newest one
      // sent refused is no such thing (another process with this incarnation?): a failure, logged.
      if ((e as { code?: unknown } | undefined)?.code === HEARTBEAT_SUPERSEDED && seq < this.seq) {
        this.stats.superseded++;
        return false;
      }
      this.stats.failed++;
      deps.onError(e, hb);
      return false;
    } finally {
      cancelTimer();
      release();
    }
  }
}
