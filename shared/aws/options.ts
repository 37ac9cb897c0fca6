/**
 * Where and how to reach AWS, without the SDK: region, endpoint override (AWS_ENDPOINT_URL, for the
 * local emulator), attempts and per-call timeouts. The controller's SDK clients
 * (controller/aws/clients.ts) and the agent's own DynamoDB client both start from these.
 */
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
