/**
 * The self-fence deadline, on the monotonic clock, independent of the renewal calls themselves.
 *
 * Timeline of one renewal n (agent's monotonic clock; see shared/core/liveness.ts for why the
 * controller may rely on it):
 *
 *   send(n)   ack(n)                            deadline(n)                       send(n) + lease
 *     |---------|--------- renewals fail ------------|==== fence: stop, VIP off ====|
 *     |<-------------------- lease - fenceMargin --->|<-------- fenceMargin ------->|
 *
 * - The deadline counts from when renewal n was SENT, not from when its answer came back: the
 *   controller measures the lease from the item it read, which was written after the send.
 * - Only the newest acknowledged renewal counts. A late answer to an older renewal (sent before the
 *   newest acknowledged one) is ignored, so it can never move the deadline past what its own send
 *   time allows.
 * - A renewal that hangs does not delay the fence: the deadline is a timer of its own, armed at
 *   every acknowledgement, and the calls carry short timeouts anyway.
 * - Each renewal's deadline uses the lease and margin in force when it was sent.
 */
import type { Clock } from './clock';

export type Schedule = (fn: () => void, ms: number) => () => void;

/** setTimeout as a Schedule. */
export const realSchedule: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/** Arms the self-fence at send(newest acknowledged renewal) + lease - fenceMargin. */
export class FenceTimer {
  private ackedSeq = -1;
  private deadlineMono = Number.NEGATIVE_INFINITY;
  private lastAckSendMono = Number.NEGATIVE_INFINITY;
  private lastLeaseMs = 0;
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    /** Called once each time the deadline passes (a new acknowledgement re-arms it). */
    private readonly onDeadline: () => void,
    private readonly schedule: Schedule = realSchedule,
  ) {}

  /**
   * Renewal `seq`, sent at `sentMono`, was acknowledged. Returns true when it moved the deadline.
   */
  ack(seq: number, sentMono: number, leaseMs: number, fenceMarginMs: number): boolean {
    if (seq <= this.ackedSeq) return false;
    this.ackedSeq = seq;
    this.lastAckSendMono = sentMono;
    this.lastLeaseMs = leaseMs;
    this.deadlineMono = sentMono + leaseMs - fenceMarginMs;
    this.arm();
    return true;
  }

  /**
   * Starts from the deadline a previous agent process on this boot left in the state directory
   * (an agent restart must not extend the lease its predecessor held).
   */
  restore(deadlineMono: number): void {
    if (deadlineMono > this.deadlineMono) {
      this.deadlineMono = deadlineMono;
      this.arm();
    }
  }

  /** CLOCK_MONOTONIC ms at which the fence deadline passes (-Infinity before any lease). */
  get deadline(): number {
    return this.deadlineMono;
  }

  /** Send time of the newest acknowledged renewal, and its lease (for the watchdog rule). */
  get lastAck(): { sentMono: number; leaseMs: number } {
    return { sentMono: this.lastAckSendMono, leaseMs: this.lastLeaseMs };
  }

  /** The agent holds its lease: the deadline is still ahead. */
  holdsLease(now = this.clock.mono()): boolean {
    return now < this.deadlineMono;
  }

  remainingMs(now = this.clock.mono()): number {
    return this.deadlineMono - now;
  }

  private arm(): void {
    this.cancel?.();
    this.cancel = undefined;
    if (this.stopped || !Number.isFinite(this.deadlineMono)) return;
    const fire = () => {
      this.cancel = undefined;
      const left = this.deadlineMono - this.clock.mono();
      // Timers may fire a little early on some platforms; never fence before the deadline.
      if (left > 0) {
        this.cancel = this.schedule(fire, left);
        return;
      }
      this.onDeadline();
    };
    this.cancel = this.schedule(fire, Math.max(0, this.deadlineMono - this.clock.mono()));
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }
}
