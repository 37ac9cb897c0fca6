/**
 * AWS SDK errors become domain errors here, at the adapter boundary, with stable codes and messages
 * that say what to fix. Callers above the adapters never see SDK exception classes.
 */
import { ConflictError, DeadlineExceededError, FailoverError, NotFoundError } from '../base/errors';

/** The caller lacks an IAM permission; the message names the action and the resource. */
export class NotAuthorizedError extends FailoverError {
  constructor(action: string, resource: string, options: { cause?: unknown } = {}) {
    super(
      'NOT_AUTHORIZED',
      `not authorized to call ${action} on ${resource}; grant it to the role in use (see "failoverctl iam-policy")`,
      options,
    );
  }
}

export class ThrottledError extends FailoverError {
  constructor(action: string, options: { cause?: unknown } = {}) {
    super(
      'THROTTLED',
      `${action} was throttled by AWS after retries; reconcile tries again with backoff while its deadline allows, then reports the failure`,
      {
        ...options,
        retryable: true,
      },
    );
  }
}

export class AwsTimeoutError extends FailoverError {
  constructor(action: string, options: { cause?: unknown } = {}) {
    super('TIMEOUT', `${action} did not answer in time; check the network path to the AWS endpoint`, {
      ...options,
      retryable: true,
    });
  }
}

/**
 * The SDK could not even make the call: no region, no credentials, or expired ones. The message says
 * what to set (the CLI adds what it saw of AWS_PROFILE).
 */
export class AwsSetupError extends FailoverError {
  constructor(
    code: 'NO_REGION' | 'NO_CREDENTIALS' | 'CREDENTIALS_EXPIRED',
    action: string,
    options: { cause?: unknown } = {},
  ) {
    const what = {
      NO_REGION: `no AWS region for ${action}: set AWS_REGION (for example export AWS_REGION=eu-west-1), pass --region, or give the profile of AWS_PROFILE a region`,
      NO_CREDENTIALS: `no AWS credentials for ${action}: set AWS_PROFILE to a profile of ~/.aws/config (with IAM Identity Center, run "aws sso login --profile NAME" first), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; on EC2 and Lambda the role of the instance or function is used`,
      CREDENTIALS_EXPIRED: `the AWS credentials for ${action} have expired: run "aws sso login" (with --profile NAME for a named profile), or refresh AWS_SESSION_TOKEN`,
    }[code];
    super(code, what, options);
  }
}

/** Any other AWS failure, with the service's own code kept for diagnosis. */
export class AwsApiError extends FailoverError {
  readonly awsCode: string;
  constructor(
    action: string,
    awsCode: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super('AWS_API_ERROR', `${action} failed: ${awsCode}: ${message}`, options);
    this.awsCode = awsCode;
  }
}

/** AWS error codes that mean throttling (THROTTLED; counted by the controller's Throttles metric). */
export const THROTTLING: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'PriorRequestNotComplete',
  'SlowDown',
]);
const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'TokenProviderError', 'RequestExpired']);
const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnrecognizedClientException',
]);
const TIMEOUTS = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
]);

export interface ErrorContext {
  /** The API action, e.g. `ec2:ReplaceRoute`. */
  action: string;
  /** What it was called on, e.g. `route table rtb-0abc`. */
  resource: string;
  /** Service-specific mappings tried first: AWS code -> domain error. */
  codes?: Record<string, (message: string, cause: unknown) => FailoverError>;
}

export function awsErrorCode(e: unknown): string {
  if (!e || typeof e !== 'object') return 'Unknown';
  const err = e as { name?: string; Code?: string; code?: string; __type?: string };
  return err.Code ?? err.name ?? err.code ?? err.__type ?? 'Unknown';
}

export function toDomainError(e: unknown, ctx: ErrorContext): FailoverError {
  if (e instanceof FailoverError) return e;
  const code = awsErrorCode(e);
  const message = e instanceof Error ? e.message : String(e);
  const specific = ctx.codes?.[code];
  if (specific) return specific(message, e);
  if (code === 'AbortError' || (e instanceof Error && e.name === 'AbortError')) {
    return new DeadlineExceededError(
      `${ctx.action} on ${ctx.resource} was aborted at the reconcile deadline`,
      { cause: e },
    );
  }
  if (code === 'CredentialsProviderError' && !/expired/i.test(message))
    return new AwsSetupError('NO_CREDENTIALS', `${ctx.action} on ${ctx.resource}`, { cause: e });
  if (
    EXPIRED.has(code) ||
    (code === 'CredentialsProviderError' && /expired/i.test(message)) ||
    /SSO session .*(expired|invalid)|token is expired/i.test(message)
  )
    return new AwsSetupError('CREDENTIALS_EXPIRED', `${ctx.action} on ${ctx.resource}`, { cause: e });
  if (/^Region is missing/.test(message))
    return new AwsSetupError('NO_REGION', `${ctx.action} on ${ctx.resource}`, { cause: e });
  if (THROTTLING.has(code)) return new ThrottledError(`${ctx.action} on ${ctx.resource}`, { cause: e });
  if (DENIED.has(code)) return new NotAuthorizedError(ctx.action, ctx.resource, { cause: e });
  if (TIMEOUTS.has(code)) return new AwsTimeoutError(`${ctx.action} on ${ctx.resource}`, { cause: e });
  if (code === 'ConditionalCheckFailedException' || code === 'TransactionCanceledException') {
    return new ConflictError(`${ctx.action} on ${ctx.resource}: the item changed since it was read`, {
      cause: e,
    });
  }
  if (code === 'ResourceNotFoundException') {
    return new NotFoundError('NOT_FOUND', `${ctx.action}: ${ctx.resource} does not exist (${message})`, {
      cause: e,
    });
  }
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return new AwsApiError(`${ctx.action} on ${ctx.resource}`, code, message, {
    cause: e,
    retryable: status !== undefined && status >= 500,
  });
}
