/** Lease timing with every default resolved (see shared/config/schema.ts for meanings). */
export interface Timing {
  heartbeatIntervalMs: number;
  leaseMs: number;
  maxClockSkewMs: number;
  fenceMarginMs: number;
  /**
   * While a renewal is unacknowledged the agent sends another this often, instead of waiting a
   * whole heartbeat interval. Resolved by the definition's loader; absent in older stored timings.
   */
  heartbeatRetryMs?: number;
}

/** Default retry interval of an unacknowledged renewal: half a heartbeat, at most 250 ms. */
export function defaultHeartbeatRetryMs(heartbeatIntervalMs: number): number {
  return Math.max(50, Math.min(250, Math.floor(heartbeatIntervalMs / 2)));
}

/** How soon an unacknowledged renewal is retried (the definition's value, else the default). */
export function heartbeatRetryMs(timing: Pick<Timing, 'heartbeatIntervalMs' | 'heartbeatRetryMs'>): number {
  return timing.heartbeatRetryMs ?? defaultHeartbeatRetryMs(timing.heartbeatIntervalMs);
}
