/**
 * Exit codes of failoverctl (documented in the README):
 *   0  success
 *   1  the operation failed (AWS error, timeout, internal error)
 *   2  invalid input: bad flags or an invalid cluster definition
 *   3  not found: table, cluster, group or node
 *   4  conflict: someone else changed the same thing first; review and retry
 *   5  rejected: the controller refused the request (e.g. target node not eligible)
 */
import {
  ConfigError,
  ConflictError,
  FailoverError,
  InvalidRequestError,
  NotFoundError,
} from '../shared/base/errors';

export const EXIT = { ok: 0, failed: 1, invalid: 2, notFound: 3, conflict: 4, rejected: 5 } as const;

export function exitCodeFor(e: unknown): number {
  if (e instanceof ConfigError || e instanceof InvalidRequestError) return EXIT.invalid;
  if (e instanceof NotFoundError) return EXIT.notFound;
  if (e instanceof ConflictError) return EXIT.conflict;
  if (e instanceof FailoverError && e.code === 'REQUEST_REJECTED') return EXIT.rejected;
  return EXIT.failed;
}

export function describeError(e: unknown, env: Record<string, string | undefined> = {}): string {
  if (e instanceof ConfigError) return e.message;
  if (
    e instanceof FailoverError &&
    (e.code === 'NO_CREDENTIALS' || e.code === 'CREDENTIALS_EXPIRED') &&
    env.AWS_PROFILE
  )
    return `error [${e.code}]: ${e.message} (AWS_PROFILE is "${env.AWS_PROFILE}": check that ~/.aws/config has [profile ${env.AWS_PROFILE}], or run "aws sso login --profile ${env.AWS_PROFILE}")`;
  if (e instanceof FailoverError) return `error [${e.code}]: ${e.message}`;
  if (e instanceof Error) return `error: ${e.message}`;
  return `error: ${String(e)}`;
}
