/**
 * Time as the agent core sees it: two clocks and a scheduler, all passed in, so that the agent
 * process, the guard and the simulation run the same core on real or simulated time.
 *
 * - `mono()` is CLOCK_MONOTONIC in milliseconds, shared by every process of the machine: the agent
 *   writes its fence deadline on this clock into the state directory and the guard, a different
 *   process, compares it with its own reading. It never jumps with NTP or an operator's `date -s`,
 *   so every lease decision uses it.
 * - `wall()` is the wall clock: only written into reports (`sentAt`, `since`) for the controller,
 *   which checks it against its own clock with the skew bound and never relies on it alone.
 */
export interface Clock {
  /** Monotonic milliseconds, comparable between processes of the same boot. */
  mono(): number;
  /** Wall clock, ms since the epoch. */
  wall(): number;
}

/** Timers of the core (setTimeout / setImmediate in the agent, the simulated world in the sim). */
export interface Scheduler {
  /** Runs `fn` after `ms` (at most MAX_TIMER_MS; callers check a deadline again when it fires). */
  after(ms: number, fn: () => void): () => void;
  /** Runs `fn` once the current turn has finished (coalescing point for reports). */
  soon(fn: () => void): void;
}
