/**
 * Node watchdog (Linux softdog): the backstop for an agent that is dead or paused and so cannot
 * fence itself. `modprobe softdog soft_margin=S` resets the node when /dev/watchdog is not written
 * for S seconds.
 *
 * The agent writes one byte on each acknowledged renewal, and on its ticks while either nothing runs
 * here (no reason to reset a standby) or the lease provably lasts another S seconds:
 *
 *   feed at t is allowed  <=>  nothing runs locally  OR  t + S <= send(last acked) + lease
 *
 * so if the agent stops feeding while a group runs, the reset comes at the latest when the lease
 * ends, and a live agent still gets its graceful fence (stop scripts) first when S <= lease -
 * fenceMargin. On a clean shutdown it writes the magic 'V' so that closing the device disarms it.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Logger } from './log';
import { errorText } from './log';

/** A watchdog device (or, in tests, a plain file) fed as described above. */
export class Watchdog {
  private fd: number | undefined;
  /** Bytes written (tests and logs). */
  feeds = 0;

  private explicit: boolean;
  /** The device's timeout (softdog soft_margin), in ms. */
  timeoutMs: number;

  constructor(
    readonly device: string,
    /** The device's timeout in ms; undefined: assume the recommended lease - fenceMargin. */
    timeoutMs: number | undefined,
    private readonly log: Logger,
  ) {
    this.explicit = timeoutMs !== undefined;
    this.timeoutMs = timeoutMs ?? Number.POSITIVE_INFINITY;
  }

  /** Without an explicit timeout, the recommended soft_margin for this timing (whole seconds). */
  assumeTimeoutFor(leaseMs: number, fenceMarginMs: number): void {
    if (!this.explicit) this.timeoutMs = Math.max(1, Math.floor((leaseMs - fenceMarginMs) / 1000)) * 1000;
  }

  open(): void {
    this.fd = openSync(this.device, 'w');
  }

  /** Open and not disarmed: it will reset the node if not fed. */
  get armed(): boolean {
    return this.fd !== undefined && Number.isFinite(this.timeoutMs);
  }

  /** Whether a feed now is allowed by the rule above. */
  mayFeed(nowMono: number, nothingRuns: boolean, lastAck: { sentMono: number; leaseMs: number }): boolean {
    return nothingRuns || nowMono + this.timeoutMs <= lastAck.sentMono + lastAck.leaseMs;
  }

  feed(): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, '1');
      this.feeds++;
    } catch (e) {
      this.log.error(`cannot write to watchdog ${this.device}: ${errorText(e)}`);
    }
  }

  /** Clean shutdown: magic close, so that the device is disarmed instead of resetting the node. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, 'V');
      closeSync(this.fd);
      this.fd = undefined;
    } catch (e) {
      this.log.error(`cannot close watchdog ${this.device}: ${errorText(e)}`);
    }
    this.fd = undefined;
  }
}
