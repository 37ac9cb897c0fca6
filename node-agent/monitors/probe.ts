/** One check of a monitor or a witness: ok or not, and a short human detail either way. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/**
 * Runs one check. It should stop its work when `signal` aborts (the runner aborts at the timeout),
 * but the runner never waits for it past the timeout anyway.
 */
export type Probe = (signal: AbortSignal, timeoutMs: number) => Promise<ProbeResult>;

export const ok = (detail: string): ProbeResult => ({ ok: true, detail });
export const fail = (detail: string): ProbeResult => ({ ok: false, detail });
