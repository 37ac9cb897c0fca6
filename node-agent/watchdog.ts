/**
 * The node's watchdog device (Linux softdog): the backstop for an agent that is dead or frozen and
 * so cannot fence itself. `modprobe softdog soft_margin=S` resets the node when /dev/watchdog is not
 * written for S seconds. When it may be fed is node-agent/core/watchdog-feeder.ts; this file is the
 * device: its real timeout, opening, one-byte feeds, and the magic close.
 *
 * The timeout is read, never assumed: /sys/class/watchdog/<dev>/timeout is what the kernel will
 * wait (softdog's default soft_margin is 60 s, far longer than any lease). `--watchdog-timeout-sec`
 * is used only where sysfs has no entry for the device (a plain file in tests, an old kernel); a
 * declared value that differs from the kernel's is reported and ignored. A device whose timeout
 * does not suit the lease (S > lease - fenceMargin) is left closed and reported unarmed: the
 * controller then waits for the stop scripts' time as well, instead of relying on a reset that
 * would come too late (or reset a healthy node running a group).
 */
import { closeSync, openSync, readdirSync, readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { largestFittingWatchdogSec, type Timing, watchdogFits } from '../shared/config/timing';
import type { Logger } from './log';
import { errorText } from './log';

/** Where the kernel lists watchdog devices. FAILOVER_AGENT_SYSFS_WATCHDOG overrides it (tests). */
export const SYSFS_WATCHDOG = '/sys/class/watchdog';

/** The kernel's timeout of a device, in ms, and the sysfs entry it came from; undefined if unknown. */
export function sysfsTimeoutMs(
  device: string,
  sysfsRoot = SYSFS_WATCHDOG,
): { ms: number; entry: string } | undefined {
  let entries: string[];
  try {
    entries = readdirSync(sysfsRoot);
  } catch {
    return undefined;
  }
  const read = (entry: string): { ms: number; entry: string } | undefined => {
    try {
      const sec = Number(readFileSync(path.join(sysfsRoot, entry, 'timeout'), 'utf8').trim());
      return Number.isFinite(sec) && sec > 0 ? { ms: sec * 1000, entry } : undefined;
    } catch {
      return undefined;
    }
  };
  let real = device;
  let st: ReturnType<typeof statSync>;
  try {
    real = realpathSync(device);
    st = statSync(real);
  } catch {
    return undefined;
  }
  // A plain file (tests, the sandbox) has no kernel timeout: --watchdog-timeout-sec says it.
  if (!st.isCharacterDevice()) return undefined;
  const base = path.basename(real);
  // /dev/watchdogN is watchdogN; the legacy /dev/watchdog is the first registered device.
  if (/^watchdog\d+$/.test(base) && entries.includes(base)) return read(base);
  if (base === 'watchdog' && entries.includes('watchdog0')) return read('watchdog0');
  // Otherwise match the device number (a udev alias such as /dev/watchdog-hw). glibc's dev_t
  // encoding: major in bits 8-19 and 32+, minor in bits 0-7 and 20-31.
  const major = ((st.rdev >>> 8) & 0xfff) | (Math.floor(st.rdev / 2 ** 32) & ~0xfff);
  const minor = (st.rdev & 0xff) | ((st.rdev >>> 12) & ~0xff);
  const id = `${major}:${minor}`;
  for (const entry of entries) {
    try {
      if (readFileSync(path.join(sysfsRoot, entry, 'dev'), 'utf8').trim() === id) return read(entry);
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** The watchdog as found: what `failover-agent status` and agent.json show. */
export interface WatchdogStatus {
  device: string;
  timeoutMs?: number;
  source?: 'sysfs' | 'declared';
  armed: boolean;
  problem?: string;
}

/** A watchdog device (or, in tests, a plain file): opened only when its timeout suits the lease. */
export class Watchdog {
  private fd: number | undefined;
  /** Bytes written (tests and logs). */
  feeds = 0;
  private found: { ms: number; source: 'sysfs' | 'declared' } | undefined;
  private problem: string | undefined;

  constructor(
    readonly device: string,
    /** `--watchdog-timeout-sec` in ms, if given. */
    private readonly declaredMs: number | undefined,
    private readonly log: Logger,
    private readonly sysfsRoot = SYSFS_WATCHDOG,
  ) {}

  /** The device's timeout in ms (NaN while unknown). */
  get timeoutMs(): number {
    return this.found?.ms ?? Number.NaN;
  }

  /** Open: it will reset the node if not fed. */
  get armed(): boolean {
    return this.fd !== undefined;
  }

  get status(): WatchdogStatus {
    return {
      device: this.device,
      ...(this.found ? { timeoutMs: this.found.ms, source: this.found.source } : {}),
      armed: this.armed,
      ...(this.problem ? { problem: this.problem } : {}),
    };
  }

  /**
   * Finds the device's timeout and opens it if the timeout suits `timing`; otherwise leaves it
   * closed and says why (logged once per distinct problem). Called with every definition version:
   * an open device stays open (closing would disarm it while something may run), with a warning
   * when the new lease no longer suits it.
   */
  armFor(timing: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>): void {
    if (!this.found) this.found = this.findTimeout();
    const fits = this.found !== undefined && watchdogFits(this.found.ms, timing);
    let problem: string | undefined;
    if (!this.found) {
      problem = `cannot tell the timeout of watchdog ${this.device}: no ${this.sysfsRoot}/<device>/timeout for it; pass --watchdog-timeout-sec (softdog's soft_margin)`;
    } else if (!fits) {
      const largest = largestFittingWatchdogSec(timing);
      problem = `watchdog ${this.device} resets after ${this.found.ms / 1000} s (${this.found.source}), longer than lease ${timing.leaseMs} ms - fenceMargin ${timing.fenceMarginMs} ms; ${largest >= 1 ? `load softdog with soft_margin=${largest}` : 'lengthen the lease'} (modprobe -r softdog; modprobe softdog soft_margin=${Math.max(1, largest)})`;
    }
    if (problem && problem !== this.problem) {
      if (this.armed) this.log.warn(`${problem}; it stays armed, and the controller no longer relies on it`);
      else
        this.log.error(
          `${problem}; running WITHOUT a watchdog: failover after a silent crash waits for the stop scripts' time too`,
        );
    }
    this.problem = problem;
    if (fits && !this.armed) {
      this.fd = openSync(this.device, 'w');
      this.log.info(
        `watchdog ${this.device} armed: resets the node ${this.found!.ms} ms after the last feed (${this.found!.source})`,
      );
    }
  }

  private findTimeout(): { ms: number; source: 'sysfs' | 'declared' } | undefined {
    const real = sysfsTimeoutMs(this.device, this.sysfsRoot);
    if (real) {
      if (this.declaredMs !== undefined && this.declaredMs !== real.ms) {
        this.log.warn(
          `--watchdog-timeout-sec ${this.declaredMs / 1000} differs from the kernel's ${real.ms / 1000} s for ${this.device} (${this.sysfsRoot}/${real.entry}/timeout); using the kernel's`,
        );
      }
      return { ms: real.ms, source: 'sysfs' };
    }
    return this.declaredMs !== undefined ? { ms: this.declaredMs, source: 'declared' } : undefined;
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
    } catch (e) {
      this.log.error(`cannot close watchdog ${this.device}: ${errorText(e)}`);
    }
    this.fd = undefined;
  }
}
