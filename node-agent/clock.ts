/**
 * Time sources of the agent. Two clocks, on purpose:
 *
 * - `mono()` is CLOCK_MONOTONIC in milliseconds (`process.hrtime`), shared by every process of the
 *   machine: the agent writes its fence deadline on this clock into the state directory and the
 *   guard, a different process, compares it with its own reading. It never jumps with NTP or an
 *   operator's `date -s`, so every lease decision uses it.
 * - `wall()` is `Date.now()`: only written into reports (`sentAt`, `since`) for the controller,
 *   which never trusts an agent's wall clock for safety (see shared/core/liveness.ts).
 */
export interface Clock {
  /** Monotonic milliseconds, comparable between processes of the same boot. */
  mono(): number;
  /** Wall clock, ms since the epoch. */
  wall(): number;
}

/** CLOCK_MONOTONIC through process.hrtime, and Date.now. */
export const systemClock: Clock = {
  mono: () => Number(process.hrtime.bigint() / 1000n) / 1000,
  wall: () => Date.now(),
};

/** Resolves after `ms` (unref'd timers would let the process exit early, so this one is not). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
