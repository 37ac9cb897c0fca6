/**
 * Field schemas of the cluster definition, shared by the schema (schema.ts) and the kinds table
 * (kinds.ts): each names the field in its error and says what to write instead.
 */
import * as z from 'zod';
import { DEFAULT_MONITOR_INTERVAL_MS, NAME_PATTERN } from './defaults';
import { COMMAND_MAX_CHARS } from './limits';

const NAME_HINT =
  'use 1-63 lowercase letters, digits and dashes, starting with a letter or digit, e.g. "db-1"';

export const nameSchema = z.string({ error: `expected a name: ${NAME_HINT}` }).regex(NAME_PATTERN, {
  error: NAME_HINT,
});

export const ipv4 = (what: string) => z.ipv4({ error: `${what} must be an IPv4 address such as 10.0.1.10` });

export const int = (what: string, min: number, max: number) =>
  z
    .int({ error: `${what} must be a whole number between ${min} and ${max}` })
    .min(min, { error: `${what} must be at least ${min}` })
    .max(max, { error: `${what} must be at most ${max}` });

export const text = (what: string, example: string) =>
  z
    .string({ error: `${what} must be a string, e.g. ${example}` })
    .min(1, { error: `${what} must not be empty, e.g. ${example}` });

/** A shell command for the node (start, stop, a command monitor), at most COMMAND_MAX_CHARS long. */
export const command = (what: string, example: string) =>
  text(what, example).max(COMMAND_MAX_CHARS, {
    error: `${what} is longer than ${COMMAND_MAX_CHARS} characters; put the script in a file on the nodes and give its path, e.g. ${example}`,
  });

export const awsId = (prefix: string, what: string) =>
  z
    .string({ error: `${what} must be a string such as ${prefix}-0123456789abcdef0` })
    .regex(new RegExp(`^${prefix}-[0-9a-f]+$`), {
      error: `${what} must look like ${prefix}-0123456789abcdef0 (lowercase hex after "${prefix}-")`,
    });

export const perNode = <T extends z.ZodType>(value: T) =>
  z.record(nameSchema, value, {
    error: 'expected a map from node name to value, e.g. { node1: ..., node2: ... }',
  });

export const bool = (what: string) => z.boolean({ error: `${what} must be true or false` });

export const recoverySchema = z.strictObject({
  /** Restart the monitored resource this many times before failing over. */
  restarts: int('restarts', 0, 100).default(0),
  /** Then fail the group over this many times (counted per group until it has been stable). */
  failovers: int('failovers', 0, 100).default(1),
  /** Then: leave it (none), stop the group, or stop the node's instance. */
  finalAction: z
    .enum(['none', 'stop-group', 'stop-node'], {
      error: 'finalAction must be one of: none, stop-group, stop-node',
    })
    .default('none'),
});

/** Fields every monitor has. */
export const monitorCommon = {
  name: nameSchema,
  /** The resource to restart on error; also makes the monitor `active`-timed by default. */
  resource: nameSchema.optional(),
  intervalMs: int('intervalMs', 100, 3_600_000).default(DEFAULT_MONITOR_INTERVAL_MS),
  timeoutMs: int('timeoutMs', 50, 3_600_000).optional(),
  /** Consecutive failures tolerated before the monitor reports an error. */
  retries: int('retries', 0, 100).default(1),
  /** always: watched on every node (a failing standby is not eligible); active: only where the group runs. */
  timing: z.enum(['always', 'active'], { error: 'timing must be one of: always, active' }).optional(),
  /** Errors are ignored for this long after the group (or the resource) starts. */
  startWaitMs: int('startWaitMs', 0, 3_600_000).default(0),
  recovery: recoverySchema.prefault({}),
};

/** What an AWS API failure (not a wrong answer) means for a controller-side monitor. */
export const onApiError = z
  .enum(['warn', 'ignore', 'recover'], { error: 'onApiError must be one of: warn, ignore, recover' })
  .default('warn');
