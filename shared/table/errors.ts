/** Errors of the state table, the same from the controller's store and the agent's. */

import { awsErrorCode, toDomainError } from '../aws/errors';
import { type FailoverError, NotFoundError } from '../base/errors';

/** The message of a missing table: what to do about it. */
export function tableNotFound(table: string, cause: unknown): NotFoundError {
  return new NotFoundError(
    'TABLE_NOT_FOUND',
    `state table ${table} does not exist in this account/region; deploy the stack, run "failoverctl init --table ${table}", or set --table / FAILOVER_TABLE`,
    { cause },
  );
}

/** Any error of a call on the table, as a domain error naming the table and the action. */
export function tableError(e: unknown, table: string, action: string): FailoverError {
  if (awsErrorCode(e) === 'ResourceNotFoundException') return tableNotFound(table, e);
  return toDomainError(e, { action: `dynamodb:${action}`, resource: `table ${table}` });
}
