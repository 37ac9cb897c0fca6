/**
 * What the platform can hold, checked by `failoverctl validate` (and every load of a definition)
 * instead of failing at apply or failover time. Import-free: the schema, the loader and the state
 * store read them.
 */

/** A definition file larger than this is refused before it is parsed (the largest example is 3 KB). */
export const DEFINITION_MAX_BYTES = 1024 * 1024;
/** A definition whose JSON is larger than this is stored gzipped in its DynamoDB item. */
export const CONFIG_INLINE_MAX_BYTES = 256 * 1024;
/** The largest gzipped definition a DynamoDB item (400 KB) holds with room for its other attributes. */
export const CONFIG_GZ_MAX_BYTES = 350 * 1024;
/**
 * Nodes per cluster: every agent reads every peer's heartbeat each heartbeat (one BatchGetItem of
 * up to 100 keys), so reads grow with the square of the nodes; IAM's agent policy has no limit.
 */
export const MAX_NODES = 100;
/** Groups per cluster (reconcile of 1,000 groups is measured in `npm run bench`, scaling). */
export const MAX_GROUPS = 1000;
export const MAX_RESOURCES_PER_GROUP = 20;
export const MAX_MONITORS_PER_GROUP = 50;
export const MAX_WITNESSES = 16;
/**
 * A start, stop or monitor command: a line of shell for the node's /bin/sh (Linux takes at most
 * 128 KB per argument); anything longer belongs in a script on the node.
 */
export const COMMAND_MAX_CHARS = 4096;
/** YAML aliases a definition may use (the yaml library's guard against alias bombs is 100). */
export const MAX_YAML_ALIASES = 100;
