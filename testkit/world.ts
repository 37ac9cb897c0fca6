/**
 * A deterministic discrete-event world for running the *real* reconcile code (async, promise based)
 * against simulated time. Every asynchronous step of the simulated store, cloud and agents goes
 * through `delay()`: the world resolves those promises in time order (ties broken by the seeded RNG)
 * and lets all microtasks settle between two events, so a seed replays exactly.
 */

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32 */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

interface Event {
  at: number;
  order: number;
  run: () => void;
}

export class World {
  /** Real (simulated) time in ms. */
  t = 0;
  readonly rng: Rng;
  private queue: Event[] = [];
  private order = 0;
  private stopped = false;
  /** Invariant violations found so far (the runner stops at the first). */
  readonly violations: string[] = [];
  readonly log: string[] = [];
  private readonly keepLog: boolean;

  constructor(seed: number, options: { keepLog?: boolean } = {}) {
    this.rng = new Rng(seed);
    this.keepLog = options.keepLog ?? false;
  }

  note(line: string): void {
    if (this.keepLog) this.log.push(`${String(this.t).padStart(7)} ${line}`);
  }

  violation(message: string): void {
    this.violations.push(`t=${this.t}: ${message}`);
    this.note(`VIOLATION ${message}`);
  }

  /** Runs `run` at time `at` (never in the past). */
  at(at: number, run: () => void): void {
    const ev = { at: Math.max(at, this.t), order: this.rng.next() + this.order++ * 1e-9, run };
    // Binary insertion keeps the queue sorted by (at, order).
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.queue[mid]!;
      if (m.at < ev.at || (m.at === ev.at && m.order < ev.order)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, ev);
  }

  after(ms: number, run: () => void): void {
    this.at(this.t + ms, run);
  }

  /** A promise resolved `ms` from now, or rejected when `signal` aborts first. */
  delay(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let done = false;
      const onAbort = () => {
        if (done) return;
        done = true;
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.after(ms, () => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Repeats `run` every `ms` (with the first run after `ms`) until it returns false or the world stops. */
  every(ms: number, run: () => boolean | undefined): void {
    const tick = () => {
      if (this.stopped) return;
      if (run() === false) return;
      this.after(ms, tick);
    };
    this.after(ms, tick);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Processes events until time `until` (inclusive) or until a violation, settling microtasks between events. */
  async runUntil(until: number, afterEach?: () => void): Promise<void> {
    while (!this.stopped && this.queue.length > 0 && this.queue[0]!.at <= until) {
      const ev = this.queue.shift()!;
      this.t = ev.at;
      ev.run();
      await settle();
      afterEach?.();
      if (this.violations.length > 0) return;
    }
    if (!this.stopped) this.t = Math.max(this.t, until);
  }
}

/** Lets every pending promise continuation run (they only block again on world delays). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
