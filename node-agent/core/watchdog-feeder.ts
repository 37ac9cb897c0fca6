/**
 * When the node's watchdog (softdog) may be fed: the rule the controller's "a watchdog node is
 * stopped by its lease end" rests on (shared/config/timing.ts). Run by the agent on its feed cadence
 * and by the simulation; the device write, agent.json and the local records are the caller's IO.
 *
 * Two kinds of feed:
 *
 * - lease feed: t + S <= send(last acked) + lease. Whatever runs here, the watchdog then fires by
 *   the lease end if the agent never feeds again.
 * - idle feed: nothing runs here (a standby, a node without lease). It may keep the node alive past
 *   its lease end, which is harmless only while nothing starts. So it is announced first: agent.json
 *   gets `idleFeedResetBy` = t + window + S BEFORE the local records are read, and the feed is made
 *   only if they show nothing running and the announced bound still covers it. The guard records
 *   its start BEFORE it reads agent.json and admits nothing the bound could outlive
 *   (core/admission.ts): one of the two always sees the other.
 *
 *   t0 announce (agent.json) ─▶ t1 read records: nothing runs ─▶ t2 feed, only if t2 + S <= bound
 *
 * What is left: the process frozen between the last clock read and the write() itself, a window of
 * a few instructions (README, "How it stays safe").
 */
import { idleFeedAllowed, idleFeedBound, leaseCoversFeed } from '../../shared/config/timing';

/** The caller's side effects. */
export interface FeederIo {
  /** CLOCK_MONOTONIC now, ms. */
  now(): number;
  /** One write to the device. */
  feed(): void;
  /** Publishes the idle-feed bound where the guard reads it (agent.json); false if it failed. */
  announce(resetBy: number): boolean;
  /** Whether nothing runs here, read now; undefined when the local records cannot be read. */
  nothingRuns(): boolean | undefined;
}

export type FeedKind = 'lease' | 'idle' | 'none';

/** Applies the rule above; `announced` starts from what a previous agent left in agent.json. */
export class WatchdogFeeder {
  private announcedBound: number;

  constructor(
    private readonly io: FeederIo,
    /** The device's timeout (S), in ms. */
    readonly timeoutMs: number,
    announced = Number.NEGATIVE_INFINITY,
  ) {
    this.announcedBound = announced;
  }

  /** The idle-feed bound announced so far (-Infinity when none). */
  get announced(): number {
    return this.announcedBound;
  }

  /** One chance to feed, given the newest acknowledged renewal's lease end. */
  tick(leaseEnd: number): FeedKind {
    const s = this.timeoutMs;
    if (leaseCoversFeed(this.io.now(), s, leaseEnd)) {
      this.io.feed();
      return 'lease';
    }
    if (!idleFeedAllowed(this.io.now(), s, this.announcedBound)) {
      const bound = idleFeedBound(this.io.now(), s);
      if (!this.io.announce(bound)) return 'none';
      this.announcedBound = bound;
    }
    // Read after the announcement: a start recorded before it is seen here.
    if (this.io.nothingRuns() !== true) return 'none';
    if (!idleFeedAllowed(this.io.now(), s, this.announcedBound)) return 'none';
    this.io.feed();
    return 'idle';
  }
}
