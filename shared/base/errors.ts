/**
 * One error base class with typed subclasses, each with a stable `code` that scripts, alerts and the
 * README's error table rely on. Messages say what went wrong *and* what to do about it.
 */
export class FailoverError extends Error {
  /** Stable machine-readable code, e.g. `CONFLICT` or `VIP_INSIDE_VPC_CIDR`. Never renamed. */
  readonly code: string;
  /** True when retrying the same operation later may succeed (throttling, timeouts, lost races). */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** One problem in a cluster definition: where it is and what to write instead. */
export interface ConfigIssue {
  /** Dotted path into the definition, e.g. `groups[0].resources[2].recordName`. */
  path: string;
  message: string;
  /** `file:line:column` when the definition came from a file. */
  location?: string;
}

/** The cluster definition is invalid; `issues` holds every problem found, not only the first. */
export class ConfigError extends FailoverError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], source?: string) {
    const head = `${source ? `${source}: ` : ''}${issues.length} problem${issues.length === 1 ? '' : 's'} in the cluster definition`;
    super('CONFIG_INVALID', [head, ...issues.map((i) => `  - ${formatIssue(i)}`)].join('\n'));
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.location ? `${issue.location} ` : ''}${issue.path || '(top level)'}: ${issue.message}`;
}

/**
 * A conditional write lost a race (another invocation changed the item first). Never a silent
 * overwrite: the caller re-reads and decides again.
 */
export class ConflictError extends FailoverError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('CONFLICT', message, { ...options, retryable: true });
  }
}

/** Another invocation holds the per-group lock and its deadline has not passed. */
export class LockBusyError extends FailoverError {
  readonly holder: string;
  readonly expiresAt: number;
  constructor(group: string, holder: string, expiresAt: number) {
    super(
      'LOCK_BUSY',
      `group ${group} is being reconciled by ${holder} (lock held until ${new Date(expiresAt).toISOString()})`,
      {
        retryable: true,
      },
    );
    this.holder = holder;
    this.expiresAt = expiresAt;
  }
}

/** The epoch a mutation was planned at is no longer current: the action is refused. */
export class StaleEpochError extends FailoverError {
  constructor(group: string, planned: number, message?: string) {
    super(
      'STALE_EPOCH',
      message ?? `group ${group}: epoch ${planned} is no longer current; re-read and decide again`,
      {
        retryable: true,
      },
    );
  }
}

/** The invocation's deadline passed; in-flight calls were aborted so a newer holder can act safely. */
export class DeadlineExceededError extends FailoverError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('DEADLINE_EXCEEDED', message, { ...options, retryable: true });
  }
}

/** Something the operator named does not exist (cluster, group, node, table, ENI, ...). */
export class NotFoundError extends FailoverError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** A request or event that cannot be acted on, with the reason. */
export class InvalidRequestError extends FailoverError {
  constructor(message: string, code = 'INVALID_REQUEST') {
    super(code, message);
  }
}
