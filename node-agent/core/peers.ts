/**
 * Watching the peers' leases, without trusting any wall clock: for each peer, the monotonic time
 * at which this agent first READ its current renewal token. A token that stays the same for a whole
 * lease proves the peer has fenced itself (shared/core/liveness.ts):
 *
 *   send(T) <= write(T) <= firstRead(T)      (the read that saw T completed after T was written)
 *   peer's fence deadline <= send(T) + lease - margin < firstRead(T) + lease
 *
 * so `silentForMs = now - firstRead(T) >= lease` means the peer stopped serving. The first-read
 * time is taken when the read returns, never when it was sent (the write may have landed between).
 *
 * WHEN to read is a separate matter (PeerReads, below), and only a matter of speed: the sooner
 * after its write a renewal is first read, the sooner a crash right after it is proven. The standby
 * reads right after each peer's renewal is due (its send times give the phase of its heartbeat),
 * re-checks an overdue one a few times, and reports the silence by a timer the moment a lease has
 * passed since the first read of the last renewal. Crash at c, last renewal sent at s <= c:
 *
 *   s   s+landed: read (first sight F ~ s)      c      F + lease: silence proven, reported
 *   |──────────|──────────────────────────────── | ─────────|
 *
 * so the proof comes lease - (c - s) after the crash, between lease - heartbeat and lease, instead
 * of up to a heartbeat later when reads keep their own phase. A read proves nothing more or less
 * for being timed: a mistimed one (a clock that is off) is only late.
 */
import {
  fallbackReadDelayMs,
  nextLandingMs,
  nextLookNotBeforeMs,
  nextRenewalReadableWall,
  overdueRecheckMs,
  peerDoubtAfterMs,
  RENEWAL_READABLE_AFTER_MS,
  renewalReadInMs,
  type Timing,
} from '../../shared/config/timing';
import type { Heartbeat } from '../../shared/core/model';
import type { Clock, Scheduler } from './clock';

interface Seen {
  token: string;
  firstSeenMono: number;
  leaseMs: number;
  /** The renewal's send time (the peer's wall clock): when to look next, never what a look proves. */
  sentAtWall: number;
  /** The send time of the last periodic renewal seen: the phase of the peer's heartbeat. */
  anchorWall: number;
  /** Reads that found this renewal still current after the next one was due. */
  misses: number;
  /** How long after its send the peer's next renewal is expected to be readable (learnt). */
  landingMs: number;
  lastReadMono: number;
}

/** When a read completed, on both clocks, and the heartbeat interval (for the reads' schedule). */
export interface ReadTime {
  wall: number;
  heartbeatIntervalMs: number;
}

/** Remembers when each peer's current token was first read (monotonic) and reports silences. */
export class PeerWatcher {
  private readonly seen = new Map<string, Seen>();

  /**
   * Records one read of the peers' items that completed at `readDoneMono`. Peers missing from the
   * answer keep their memory (a missing item never proves anything).
   */
  observe(
    heartbeats: Record<string, Heartbeat>,
    readDoneMono: number,
    peers: readonly string[],
    at?: ReadTime,
  ): void {
    for (const name of [...this.seen.keys()]) if (!peers.includes(name)) this.seen.delete(name);
    for (const name of peers) {
      const hb = heartbeats[name];
      if (!hb) continue;
      const prev = this.seen.get(name);
      if (!prev || prev.token !== hb.token) {
        const sentAtWall = Number(hb.sentAt) || 0;
        const landingMs =
          prev && at
            ? nextLandingMs(prev.landingMs, prev.misses > 0, at.wall - sentAtWall, at.heartbeatIntervalMs)
            : RENEWAL_READABLE_AFTER_MS;
        this.seen.set(name, {
          token: hb.token,
          firstSeenMono: readDoneMono,
          leaseMs: Number(hb.leaseMs) || 0,
          sentAtWall,
          anchorWall: hb.reason === 'periodic' || !prev ? sentAtWall : prev.anchorWall,
          misses: 0,
          landingMs,
          lastReadMono: readDoneMono,
        });
      } else {
        prev.lastReadMono = readDoneMono;
        if (at && at.wall >= this.dueWall(prev, at.heartbeatIntervalMs)) prev.misses++;
      }
    }
  }

  private dueWall(s: Seen, heartbeatIntervalMs: number): number {
    return nextRenewalReadableWall(s.anchorWall, s.sentAtWall, heartbeatIntervalMs, s.landingMs);
  }

  /**
   * Milliseconds until the next read the peers' renewals call for: right after the earliest renewal
   * due, or a re-check of an overdue one (a few, then none: the expiry timer takes over). Undefined
   * when no peer calls for one.
   */
  nextReadInMs(
    nowMono: number,
    nowWall: number,
    t: Pick<Timing, 'heartbeatIntervalMs' | 'heartbeatRetryMs'>,
  ): number | undefined {
    let next: number | undefined;
    for (const s of this.seen.values()) {
      let ms: number | undefined;
      if (s.misses === 0) {
        ms = Math.max(
          renewalReadInMs(this.dueWall(s, t.heartbeatIntervalMs), nowWall, t.heartbeatIntervalMs),
          nextLookNotBeforeMs(s.firstSeenMono, nowMono, t.heartbeatIntervalMs),
        );
      } else {
        const recheck = overdueRecheckMs(s.misses, t);
        if (recheck !== undefined) ms = Math.max(0, s.lastReadMono + recheck - nowMono);
      }
      if (ms !== undefined && (next === undefined || ms < next)) next = ms;
    }
    return next;
  }

  report(nowMono: number): Record<string, { token: string; silentForMs: number }> {
    const out: Record<string, { token: string; silentForMs: number }> = {};
    for (const [name, s] of this.seen) {
      out[name] = { token: s.token, silentForMs: Math.max(0, Math.floor(nowMono - s.firstSeenMono)) };
    }
    return out;
  }

  /** The lease the controller applies to a peer: the longer of its own and the cluster's. */
  private leaseOf(s: Seen, clusterLeaseMs: number): number {
    return Math.max(s.leaseMs, clusterLeaseMs);
  }

  /** Peers whose token has not changed for `silence(lease)` since it was first read, sorted. */
  private unchangedFor(
    nowMono: number,
    clusterLeaseMs: number,
    silence: (leaseMs: number) => number,
  ): string[] {
    return [...this.seen]
      .filter(([, s]) => nowMono - s.firstSeenMono >= silence(this.leaseOf(s, clusterLeaseMs)))
      .map(([name]) => name)
      .sort();
  }

  /** Peers whose token has not changed for a whole lease, sorted. */
  expired(nowMono: number, clusterLeaseMs: number): string[] {
    return this.unchangedFor(nowMono, clusterLeaseMs, (lease) => lease);
  }

  /**
   * Peers whose token has not changed for their doubt time (peerDoubtAfterMs: a lead before the
   * lease), sorted: reported at once, so that the controller waits for the proof instead of being
   * woken by it.
   */
  doubted(nowMono: number, clusterLeaseMs: number): string[] {
    return this.unchangedFor(nowMono, clusterLeaseMs, peerDoubtAfterMs);
  }

  /** Milliseconds until the next peer crosses its lease, or undefined when none is pending. */
  nextExpiryInMs(nowMono: number, clusterLeaseMs: number): number | undefined {
    let next: number | undefined;
    for (const s of this.seen.values()) {
      const left = s.firstSeenMono + this.leaseOf(s, clusterLeaseMs) - nowMono;
      if (left > 0 && (next === undefined || left < next)) next = left;
    }
    return next;
  }

  /**
   * The next moment a peer crosses its doubt time or its lease (each is reported the moment it
   * happens): milliseconds from now and which, or undefined when none is pending.
   */
  nextCrossing(
    nowMono: number,
    clusterLeaseMs: number,
  ): { inMs: number; kind: 'doubt' | 'expiry' } | undefined {
    let next: { inMs: number; kind: 'doubt' | 'expiry' } | undefined;
    for (const s of this.seen.values()) {
      const lease = this.leaseOf(s, clusterLeaseMs);
      for (const [at, kind] of [
        [peerDoubtAfterMs(lease), 'doubt'],
        [lease, 'expiry'],
      ] as const) {
        const left = s.firstSeenMono + at - nowMono;
        if (left > 0 && (next === undefined || left < next.inMs)) next = { inMs: left, kind };
      }
    }
    return next;
  }
}

export interface PeerReadsDeps {
  clock: Clock;
  scheduler: Scheduler;
  timing: () => Pick<Timing, 'heartbeatIntervalMs' | 'heartbeatRetryMs'>;
  /** Starts one read of the cluster (group records and peers' renewals); ignored while one runs. */
  read: () => void;
}

/**
 * When the agent reads the cluster: right after each peer's renewal is due and when an overdue one
 * is re-checked (PeerWatcher.nextReadInMs), and at least once per heartbeat (half an interval after
 * its own renewal) when no peer calls for a read sooner. One timer: the next read planned.
 */
export class PeerReads {
  private cancel: (() => void) | undefined;
  private atMono = Number.POSITIVE_INFINITY;
  /** Reads started by this schedule (for tests and benchmarks). */
  planned = 0;

  constructor(
    private readonly watcher: PeerWatcher,
    private readonly deps: PeerReadsDeps,
  ) {}

  /** At each heartbeat: keeps a read planned within the interval, else plans the fallback read. */
  onTick(): void {
    const { clock, timing } = this.deps;
    const t = timing();
    if (this.cancel && this.atMono <= clock.mono() + t.heartbeatIntervalMs) return;
    this.arm(fallbackReadDelayMs(t));
  }

  /** After every read (whoever started it): plans the next one the peers call for. */
  afterRead(): void {
    const { clock, timing } = this.deps;
    const ms = this.watcher.nextReadInMs(clock.mono(), clock.wall(), timing());
    if (ms !== undefined) this.arm(ms);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
    this.atMono = Number.POSITIVE_INFINITY;
  }

  private arm(ms: number): void {
    this.cancel?.();
    const delay = Math.max(0, Math.ceil(ms));
    this.atMono = this.deps.clock.mono() + delay;
    this.cancel = this.deps.scheduler.after(delay, () => {
      this.cancel = undefined;
      this.atMono = Number.POSITIVE_INFINITY;
      this.planned++;
      this.deps.read();
    });
  }
}
