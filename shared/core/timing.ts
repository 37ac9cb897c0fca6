/** Lease timing with every default resolved (see shared/config/schema.ts for meanings). */
export interface Timing {
  heartbeatIntervalMs: number;
  leaseMs: number;
  maxClockSkewMs: number;
  fenceMarginMs: number;
}
