/** Defaults of the definition, with nothing imported: the schema, the rules and the agent read them. */

/**
 * Defaults of `timing`, set from `npm run bench` (README "Performance"): a silent crash is taken
 * over in about lease + 0.8 s (4.6 s), the agent fences itself 1 s before its lease ends, 3 lost
 * renewals in a row do not fence it (1750 + 3 x 250 = 2500 <= 3750 - 1000, 250 ms to spare), and
 * heartbeats cost 1.14 writes per second per two-node cluster (about $0.9 a month provisioned).
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1750;
export const DEFAULT_LEASE_MS = 3750;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 500;
/** A monitor's interval when the definition gives none (fields.ts `monitorCommon`). */
export const DEFAULT_MONITOR_INTERVAL_MS = 3000;

/**
 * What a name (cluster, node, group, resource, monitor) may be: 1-63 lowercase letters, digits and
 * dashes, starting with a letter or digit. Names go into table keys and SSM parameters, so every
 * trigger checks them again before they reach AWS.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * An operator's request (move, start, stop, suspend, resume) not processed this long after it was
 * recorded is rejected as expired, never carried out late: a `move` that timed out must not happen
 * minutes later, when nobody watches. `failoverctl --wait` is at most this long.
 */
export const REQUEST_MAX_AGE_MS = 5 * 60_000;
