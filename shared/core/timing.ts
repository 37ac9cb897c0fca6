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
