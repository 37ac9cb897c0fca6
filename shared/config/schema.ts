/**
 * The cluster definition: a strict zod schema (unknown keys are errors so that typos fail loudly)
 * with defaults. Cross-field rules (names that refer to each other, lease vs heartbeat, ...) live in
 * `rules.ts`; together they are the single source of truth, and `cluster.schema.json` for editors is
 * generated from this file (`npm run schema`).
 */
import * as z from 'zod';
import * as fields from './fields';
import { awsId, int, ipv4, nameSchema, text } from './fields';
import { type Builders, MONITOR_KINDS, RESOURCE_KINDS } from './kinds';
import {
  MAX_GROUPS,
  MAX_MONITORS_PER_GROUP,
  MAX_NODES,
  MAX_RESOURCES_PER_GROUP,
  MAX_WITNESSES,
} from './limits';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_CLOCK_SKEW_MS } from './rules';
import { TIMING_LIMITS } from './timing';

/** A list of at most `max` items, whose error says why the limit is there. */
const atMost = (what: string, max: number, why: string) => ({
  error: `${what} lists more than ${max}; ${why}`,
});

export { nameSchema, recoverySchema } from './fields';
/** Each kind's own resource type (VipResource, ExecResource, ...) comes with its kind. */
export type * from './kinds';

const builders: Builders = { z, f: fields };

/** The kinds' schemas as a tuple, each with its own type (for the discriminated unions). */
type SchemasOf<T extends readonly { schema: (b: Builders) => unknown }[]> = {
  -readonly [K in keyof T]: ReturnType<T[K]['schema']>;
};
const resourceSchemas = RESOURCE_KINDS.map((k) => k.schema(builders)) as unknown as SchemasOf<
  typeof RESOURCE_KINDS
>;
const monitorSchemas = MONITOR_KINDS.map((k) => k.schema(builders)) as unknown as SchemasOf<
  typeof MONITOR_KINDS
>;

/** Lease and heartbeat timing. All values are milliseconds. */
export const timingSchema = z.strictObject({
  /** How often each agent renews its lease. */
  heartbeatIntervalMs: int(
    'heartbeatIntervalMs',
    TIMING_LIMITS.heartbeatIntervalMs.min,
    TIMING_LIMITS.heartbeatIntervalMs.max,
  ).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
  /** A node counts as alive while its last renewal is younger than this (plus maxClockSkewMs). */
  leaseMs: int('leaseMs', TIMING_LIMITS.leaseMs.min, TIMING_LIMITS.leaseMs.max).default(DEFAULT_LEASE_MS),
  /** Largest clock difference tolerated between controller invocations (and, for display, agents). */
  maxClockSkewMs: int(
    'maxClockSkewMs',
    TIMING_LIMITS.maxClockSkewMs.min,
    TIMING_LIMITS.maxClockSkewMs.max,
  ).default(DEFAULT_MAX_CLOCK_SKEW_MS),
  /** The agent fences itself this long before its lease ends. Default: 1000, at most lease/3. */
  fenceMarginMs: int(
    'fenceMarginMs',
    TIMING_LIMITS.fenceMarginMs.min,
    TIMING_LIMITS.fenceMarginMs.max,
  ).optional(),
  /**
   * While a renewal is unacknowledged (lost or slow), the agent sends the next one after this long
   * instead of a whole heartbeat interval. Default: heartbeatIntervalMs / 2, at most 250.
   */
  heartbeatRetryMs: int(
    'heartbeatRetryMs',
    TIMING_LIMITS.heartbeatRetryMs.min,
    TIMING_LIMITS.heartbeatRetryMs.max,
  ).optional(),
});

export const nodeSchema = z.strictObject({
  name: nameSchema,
  instanceId: awsId('i', 'instanceId'),
  /** Primary ENI; needed by vip and eip resources (a resource may name a different ENI per node). */
  eni: awsId('eni', 'eni').optional(),
  az: z
    .string({ error: 'az must be an Availability Zone name such as us-east-1a' })
    .regex(/^[a-z]{2}(-[a-z0-9]+)+[a-z]$/, {
      error: 'az must be an Availability Zone name such as us-east-1a',
    }),
  privateIp: ipv4('privateIp').optional(),
  /**
   * The node's operating system: `linux` (systemd, softdog) or `windows` (a Windows service, no
   * watchdog: its silence is proven with its stop scripts' time, or fencing: stop-instance).
   * Its starts and stops go through the deployment's guard document or its PowerShell variant
   * accordingly (controller/resources/guard-document.ts).
   */
  platform: z
    .enum(['linux', 'windows'], { error: 'platform must be one of: linux, windows' })
    .default('linux'),
});

export const witnessSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('ping'),
      host: text('host', '10.0.0.5'),
      timeoutMs: int('timeoutMs', 100, 30_000).optional(),
    }),
    z.strictObject({
      type: z.literal('http'),
      url: z.url({
        protocol: /^https?$/,
        error: 'url must be an http:// or https:// URL, e.g. "http://10.0.3.7/health"',
      }),
      timeoutMs: int('timeoutMs', 100, 30_000).optional(),
    }),
    z.strictObject({
      type: z.literal('tcp'),
      host: text('host', 'ec2.us-east-1.amazonaws.com'),
      port: int('port', 1, 65_535),
      timeoutMs: int('timeoutMs', 100, 30_000).optional(),
    }),
  ],
  { error: 'witness type must be one of: ping, http, tcp' },
);

/** Every resource kind of the kinds table (kinds.ts). */
export const resourceSchema = z.discriminatedUnion('type', resourceSchemas, {
  error: `resource type must be one of: ${RESOURCE_KINDS.map((k) => k.type).join(', ')}`,
});

/** Every monitor kind of the kinds table: agent-side ones run by the node agent, the others by reconcile. */
export const monitorSchema = z.discriminatedUnion('type', monitorSchemas, {
  error: `monitor type must be one of: ${MONITOR_KINDS.map((k) => k.type).join(', ')}`,
});

export const groupSchema = z.strictObject({
  name: nameSchema,
  /** Priority order: the first eligible node runs the group. */
  nodes: z.array(nameSchema, { error: 'nodes must be a list of node names, e.g. [node1, node2]' }).min(1, {
    error: 'nodes must name at least one node, e.g. [node1, node2]',
  }),
  /** Move back to a higher-priority node when it becomes eligible again. */
  failback: z.boolean({ error: 'failback must be true or false' }).default(false),
  /** Start the group when it is Offline and an eligible node exists. */
  autoStart: z.boolean({ error: 'autoStart must be true or false' }).default(true),
  /** stop-instance: StopInstances (force) on an owner that must be fenced and cannot be reached. */
  fencing: z
    .enum(['none', 'stop-instance'], { error: 'fencing must be one of: none, stop-instance' })
    .default('none'),
  /** A failover counter is reset after the group has been Online and healthy this long. */
  stableAfterMs: int('stableAfterMs', 0, 86_400_000).default(600_000),
  resources: z
    .array(resourceSchema, { error: 'resources must be a list' })
    .max(MAX_RESOURCES_PER_GROUP, atMost('resources', MAX_RESOURCES_PER_GROUP, 'split the group'))
    .default([]),
  monitors: z
    .array(monitorSchema, { error: 'monitors must be a list' })
    .max(MAX_MONITORS_PER_GROUP, atMost('monitors', MAX_MONITORS_PER_GROUP, 'split the group'))
    .default([]),
});

export const clusterSchema = z.strictObject({
  cluster: nameSchema,
  region: z
    .string({ error: 'region must be an AWS region such as us-east-1' })
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, {
      error: 'region must be an AWS region such as us-east-1',
    }),
  /**
   * The AWS account of the nodes' instances (12 digits). Optional: `failoverctl apply` records the
   * account of the state table; the ARNs of the instances key their heartbeats (IAM names them).
   */
  account: z
    .string({ error: 'account must be a 12-digit AWS account id such as "111122223333" (quoted)' })
    .regex(/^\d{12}$/, { error: 'account must be a 12-digit AWS account id such as "111122223333" (quoted)' })
    .optional(),
  timing: timingSchema.prefault({}),
  nodes: z
    .array(nodeSchema, { error: 'nodes must be a list' })
    .min(1, { error: 'nodes must list at least one node' })
    .max(
      MAX_NODES,
      atMost(
        'nodes',
        MAX_NODES,
        "every agent reads every peer's heartbeat each heartbeat; split the nodes over several clusters",
      ),
    ),
  witnesses: z
    .array(witnessSchema, { error: 'witnesses must be a list' })
    .max(MAX_WITNESSES, atMost('witnesses', MAX_WITNESSES, 'each is probed every heartbeat'))
    .default([]),
  groups: z
    .array(groupSchema, { error: 'groups must be a list' })
    .max(MAX_GROUPS, atMost('groups', MAX_GROUPS, 'split them over several clusters'))
    .default([]),
});

export type ClusterInput = z.input<typeof clusterSchema>;
export type ClusterConfigParsed = z.output<typeof clusterSchema>;
export type TimingParsed = z.output<typeof timingSchema>;
export type NodeConfig = z.output<typeof nodeSchema>;
export type WitnessConfig = z.output<typeof witnessSchema>;
export type GroupConfig = z.output<typeof groupSchema>;
export type ResourceConfig = z.output<typeof resourceSchema>;
export type MonitorConfig = z.output<typeof monitorSchema>;
export type RecoveryPolicy = z.output<typeof fields.recoverySchema>;
