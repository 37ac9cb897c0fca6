/**
 * One place that configures every AWS SDK v3 client the project builds: region, endpoint override
 * (AWS_ENDPOINT_URL, for the local emulator), standard retry mode with bounded attempts, and
 * per-call timeouts well under the lease so that no call can hang for a minute.
 */
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type AwsOptions, DEFAULT_AWS_OPTIONS } from '../../shared/aws/options';

export type { AwsOptions } from '../../shared/aws/options';

/** The configuration object every client constructor of the project receives. */
export function clientConfig(options: AwsOptions) {
  const merged = { ...DEFAULT_AWS_OPTIONS, ...options };
  return {
    ...(merged.region ? { region: merged.region } : {}),
    ...(merged.endpoint ? { endpoint: merged.endpoint } : {}),
    retryMode: 'standard' as const,
    maxAttempts: merged.maxAttempts,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: merged.connectionTimeoutMs,
      requestTimeout: merged.requestTimeoutMs,
      // Without this, @smithy/node-http-handler 4.x only logs a warning when requestTimeout passes
      // and the call goes on hanging.
      throwOnRequestTimeout: true,
    }),
  };
}
