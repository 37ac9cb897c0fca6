/**
 * The lease as the node holds it, and the self-fence deadline, on the monotonic clock, independent
 * of the renewal calls themselves.
 *
 * Timeline of one renewal n (agent's monotonic clock; see shared/config/timing.ts and
 * shared/core/liveness.ts for why the controller may rely on it):
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
import { type AckedRenewal, fenceDeadlineMono, leaseEndMono } from '../../shared/config/timing';
import type { Clock, Scheduler } from './clock';

/** The newest acknowledged renewal and the deadlines it gives. Pure state; no timers. */
export class LeaseClock {
  private ackedSeq = -1;
  private last: AckedRenewal | undefined;
  private deadlineMono = Number.NEGATIVE_INFINITY;

  /** Renewal `seq` was acknowledged. Returns true when it moved the deadline. */
  ack(seq: number, renewal: AckedRenewal): boolean {
    if (seq <= this.ackedSeq) return false;
    this.ackedSeq = seq;
    this.last = renewal;
    this.deadlineMono = fenceDeadlineMono(renewal);
    return true;
  }

  /**
   * Starts from the deadline a previous agent process on this boot left in the state directory
   * (an agent restart must not extend the lease its predecessor held). Returns true when it moved.
   */
  restore(deadlineMono: number): boolean {
    if (deadlineMono <= this.deadlineMono) return false;
    this.deadlineMono = deadlineMono;
    return true;
  }

  /** CLOCK_MONOTONIC ms at which the fence deadline passes (-Infinity before any lease). */
  get deadline(): number {
    return this.deadlineMono;
  }

  /** When the newest acknowledged renewal's lease ends (-Infinity before any). */
  get leaseEnd(): number {
    return this.last ? leaseEndMono(this.last) : Number.NEGATIVE_INFINITY;
  }

  /** The newest acknowledged renewal, if any. */
  get lastAck(): AckedRenewal | undefined {
    return this.last;
  }

  /** The node holds its lease: the deadline is still ahead. */
  holds(nowMono: number): boolean {
    return nowMono < this.deadlineMono;
  }

  /**
   * Until when this process may let anything new start here (agent.json's `leaseUntilMono`, the
   * guard's bound): the fence deadline once one of its own renewals was acknowledged, 0 before.
   *
   * A restored deadline only keeps fencing what the previous process started. It says nothing of
   * what the controller concluded since: a predecessor that left with everything stopped is proof
   * enough for the controller to hand the group on at once (shared/core/liveness.ts), and only this
   * process's first renewal, which changes the token the controller read, tells it otherwise.
   *
   *   prev: final report "left, all stopped"   restart, deadline restored   first own ack
   *   |-----------------------------------------|-----------------------------|
   *                                              nothing new starts here --->|
   */
  get admitUntil(): number {
    return this.last ? this.deadlineMono : 0;
  }
}

/** Arms the self-fence at the LeaseClock's deadline, again at every move. */
export class FenceTimer {
  readonly lease = new LeaseClock();
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    /** Called once each time the deadline passes (a new acknowledgement re-arms it). */
    private readonly onDeadline: () => void,
    private readonly scheduler: Scheduler,
  ) {}

  /** Renewal `seq` was acknowledged. Returns true when it moved the deadline. */
  ack(seq: number, renewal: AckedRenewal): boolean {
    if (!this.lease.ack(seq, renewal)) return false;
    this.arm();
    return true;
  }

  /** See LeaseClock.restore. */
  restore(deadlineMono: number): void {
    if (this.lease.restore(deadlineMono)) this.arm();
  }

  get deadline(): number {
    return this.lease.deadline;
  }

  get leaseEnd(): number {
    return this.lease.leaseEnd;
  }

  get lastAck(): AckedRenewal | undefined {
    return this.lease.lastAck;
  }

  holdsLease(now = this.clock.mono()): boolean {
    return this.lease.holds(now);
  }

  /** See LeaseClock.admitUntil. */
  get admitUntil(): number {
    return this.lease.admitUntil;
  }

  /** This process holds a lease of its own: new starts (the guard, node-side resources) may come. */
  servesLease(now = this.clock.mono()): boolean {
    return now < this.lease.admitUntil;
  }

  remainingMs(now = this.clock.mono()): number {
    return this.lease.deadline - now;
  }

  private arm(): void {
    this.cancel?.();
    this.cancel = undefined;
    if (this.stopped || !Number.isFinite(this.lease.deadline)) return;
    const fire = () => {
      this.cancel = undefined;
      const left = this.lease.deadline - this.clock.mono();
      // Timers may fire a little early (or be clamped); never fence before the deadline.
      if (left > 0) {
        this.cancel = this.scheduler.after(left, fire);
        return;
      }
      this.onDeadline();
    };
    this.cancel = this.scheduler.after(Math.max(0, this.lease.deadline - this.clock.mono()), fire);
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }
}
