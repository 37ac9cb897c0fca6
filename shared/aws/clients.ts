/**
 * One place that configures every AWS SDK v3 client the project builds: region, endpoint override
 * (AWS_ENDPOINT_URL, for the local emulator), standard retry mode with bounded attempts, and
 * per-call timeouts well under the lease so that no call can hang for a minute.
 */
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface AwsOptions {
  region?: string;
  /** Endpoint override, e.g. http://127.0.0.1:5000 for the moto server. */
  endpoint?: string;
  /** Named profile (AWS_PROFILE) — the SDK's default chain reads it; kept for messages. */
  profile?: string;
  /** Total attempts per call, including the first (standard retry mode). */
  maxAttempts?: number;
  /** Socket connect timeout per attempt. */
  connectionTimeoutMs?: number;
  /** Whole-request timeout per attempt. */
  requestTimeoutMs?: number;
}

export const DEFAULT_AWS_OPTIONS = {
  maxAttempts: 3,
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 3_000,
} as const;

/** Reads AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL and AWS_PROFILE from an environment. */
export function awsOptionsFromEnv(
  env: Record<string, string | undefined>,
  overrides: AwsOptions = {},
): AwsOptions {
  const options: AwsOptions = { ...overrides };
  const region = overrides.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (region) options.region = region;
  const endpoint = overrides.endpoint ?? env.AWS_ENDPOINT_URL;
  if (endpoint) options.endpoint = endpoint;
  if (env.AWS_PROFILE && !overrides.profile) options.profile = env.AWS_PROFILE;
  return options;
}

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
