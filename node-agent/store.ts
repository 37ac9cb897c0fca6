/**
 * The DynamoDB store as the agent and the guard use it: the project's DynamoStore with per-call
 * timeouts derived from the lease (shared/aws/clients.ts makes them really end the call).
 *
 * The daemon makes one attempt per call (a renewal that failed is not worth retrying: the next
 * tick sends a fresh one, with a fresher send time) and cuts each attempt at a third of
 * `lease - fenceMargin`, at most 3 s. The fence never waits for these calls anyway (fence-timer.ts);
 * the short timeouts keep hung connections from piling up.
 */
import { type AwsOptions, awsOptionsFromEnv } from '../shared/aws/clients';
import type { Timing } from '../shared/core/timing';
import { DynamoStore } from '../shared/state/dynamo-store';

/** Per-call timeouts of the daemon: a third of lease - fenceMargin, between 250 ms and 3 s. */
export function daemonCallTimeouts(timing: Pick<Timing, 'leaseMs' | 'fenceMarginMs'> | undefined): {
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
} {
  const request = timing
    ? Math.min(3000, Math.max(250, Math.floor((timing.leaseMs - timing.fenceMarginMs) / 3)))
    : 2000;
  return { requestTimeoutMs: request, connectionTimeoutMs: Math.min(1000, request) };
}

/** AWS options of the daemon (environment, region, one attempt, lease-derived timeouts). */
export function daemonAwsOptions(
  env: Record<string, string | undefined>,
  region: string | undefined,
  timing?: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>,
): AwsOptions {
  return awsOptionsFromEnv(env, {
    ...(region ? { region } : {}),
    maxAttempts: 1,
    ...daemonCallTimeouts(timing),
  });
}

/** The guard is a one-shot command: a few attempts, each short. */
export function guardAwsOptions(
  env: Record<string, string | undefined>,
  region: string | undefined,
  endpoint: string | undefined,
): AwsOptions {
  return awsOptionsFromEnv(env, {
    ...(region ? { region } : {}),
    ...(endpoint && !env.AWS_ENDPOINT_URL ? { endpoint } : {}),
    maxAttempts: 3,
    connectionTimeoutMs: 1000,
    requestTimeoutMs: 2000,
  });
}

/** The project's DynamoStore with the given (short) per-call timeouts. */
export function openStore(table: string, options: AwsOptions): DynamoStore {
  return new DynamoStore(table, options);
}
