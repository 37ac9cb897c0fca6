/**
 * The agent's real time sources (node-agent/core/clock.ts explains the two clocks): CLOCK_MONOTONIC
 * through process.hrtime, Date.now, and Node's timers as the core's scheduler.
 */
import { MAX_TIMER_MS } from '../shared/config/timing';
import type { Clock, Scheduler } from './core/clock';

export type { Clock, Scheduler } from './core/clock';

/** CLOCK_MONOTONIC through process.hrtime, and Date.now. */
export const systemClock: Clock = {
  mono: () => Number(process.hrtime.bigint() / 1000n) / 1000,
  wall: () => Date.now(),
};

/**
 * setTimeout and setImmediate as the core's scheduler. Delays are clamped to what setTimeout
 * honours: a longer one would fire at once (a 1 ms timer loop for a lease near 1e12).
 */
export const realScheduler: Scheduler = {
  after: (ms, fn) => {
    const t = setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    return () => clearTimeout(t);
  },
  soon: (fn) => {
    setImmediate(fn);
  },
};

/** Resolves after `ms` (unref'd timers would let the process exit early, so this one is not). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(MAX_TIMER_MS, Math.max(0, ms))));
}
