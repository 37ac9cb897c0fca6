/**
 * One place that configures every AWS SDK v3 client the project builds: region, endpoint override
 * (AWS_ENDPOINT_URL, for the local emulator), bounded attempts with a backoff sized for a failover,
 * and per-call timeouts well under the lease so that no call can hang for a minute.
 */
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type AwsOptions, DEFAULT_AWS_OPTIONS } from '../../shared/aws/options';

export type { AwsOptions } from '../../shared/aws/options';

/** First retry within RETRY_BACKOFF_BASE_MS, the window doubling per attempt up to RETRY_BACKOFF_CAP_MS. */
export const RETRY_BACKOFF_BASE_MS = 100;
export const RETRY_BACKOFF_CAP_MS = 1_000;

/**
 * The wait before retry `attempt` (1 for the first): full jitter over an exponential
 * window. The SDK's standard mode waits up to 0.5 s, 1 s, 2 s ... after a throttling error (its
 * base is 500 ms, capped at 20 s): sized for batch jobs, it put seconds into a failover when 30 %
 * of the EC2 and Route 53 calls were throttled. Here a throttled call is retried within 100 ms,
 * then 200 ms; what is still throttled after the attempts is retried by reconcile itself, with its
 * own backoff, while the invocation's deadline allows (controller/reconcile/entry.ts). Adaptive mode
 * was not chosen: its client-side rate limiter delays every later call of the client too.
 */
export function retryBackoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.floor(
    random() * Math.min(RETRY_BACKOFF_CAP_MS, RETRY_BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1)),
  );
}

/** The configuration object every client constructor of the project receives. */
export function clientConfig(options: AwsOptions) {
  const merged = { ...DEFAULT_AWS_OPTIONS, ...options };
  return {
    ...(merged.region ? { region: merged.region } : {}),
    ...(merged.endpoint ? { endpoint: merged.endpoint } : {}),
    maxAttempts: merged.maxAttempts,
    retryStrategy: new ConfiguredRetryStrategy(merged.maxAttempts, (attempt: number) =>
      retryBackoffMs(attempt),
    ),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: merged.connectionTimeoutMs,
      requestTimeout: merged.requestTimeoutMs,
      // Without this, @smithy/node-http-handler 4.x only logs a warning when requestTimeout passes
      // and the call goes on hanging.
      throwOnRequestTimeout: true,
    }),
  };
}
