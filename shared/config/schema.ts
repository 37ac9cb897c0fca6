/**
 * The cluster definition: a strict zod schema (unknown keys are errors so that typos fail loudly)
 * with defaults. Cross-field rules (names that refer to each other, lease vs heartbeat, ...) live in
 * `rules.ts`; together they are the single source of truth, and `cluster.schema.json` for editors is
 * generated from this file (`npm run schema`).
 */
import * as z from 'zod';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_LEASE_MS, DEFAULT_MAX_CLOCK_SKEW_MS } from './rules';

const NAME_HINT =
  'use 1-63 lowercase letters, digits and dashes, starting with a letter or digit, e.g. "db-1"';
export const nameSchema = z
  .string({ error: `expected a name: ${NAME_HINT}` })
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    error: NAME_HINT,
  });

const ipv4 = (what: string) => z.ipv4({ error: `${what} must be an IPv4 address such as 10.0.1.10` });
const int = (what: string, min: number, max: number) =>
  z
    .int({ error: `${what} must be a whole number between ${min} and ${max}` })
    .min(min, { error: `${what} must be at least ${min}` })
    .max(max, { error: `${what} must be at most ${max}` });
const text = (what: string, example: string) =>
  z
    .string({ error: `${what} must be a string, e.g. ${example}` })
    .min(1, { error: `${what} must not be empty, e.g. ${example}` });
const awsId = (prefix: string, what: string) =>
  z
    .string({ error: `${what} must be a string such as ${prefix}-0123456789abcdef0` })
    .regex(new RegExp(`^${prefix}-[0-9a-f]+$`), {
      error: `${what} must look like ${prefix}-0123456789abcdef0 (lowercase hex after "${prefix}-")`,
    });

/** Lease and heartbeat timing. All values are milliseconds. */
export const timingSchema = z.strictObject({
  /** How often each agent renews its lease. */
  heartbeatIntervalMs: int('heartbeatIntervalMs', 100, 60_000).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
  /** A node counts as alive while its last renewal is younger than this (plus maxClockSkewMs). */
  leaseMs: int('leaseMs', 300, 600_000).default(DEFAULT_LEASE_MS),
  /** Largest clock difference tolerated between controller invocations (and, for display, agents). */
  maxClockSkewMs: int('maxClockSkewMs', 0, 10_000).default(DEFAULT_MAX_CLOCK_SKEW_MS),
  /** The agent fences itself this long before its lease ends. Default: 1000, at most lease/3. */
  fenceMarginMs: int('fenceMarginMs', 1, 600_000).optional(),
  /**
   * While a renewal is unacknowledged (lost or slow), the agent sends the next one after this long
   * instead of a whole heartbeat interval. Default: heartbeatIntervalMs / 2, at most 250.
   */
  heartbeatRetryMs: int('heartbeatRetryMs', 50, 60_000).optional(),
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

const perNode = <T extends z.ZodType>(value: T) =>
  z.record(nameSchema, value, {
    error: 'expected a map from node name to value, e.g. { node1: ..., node2: ... }',
  });

const vipResource = z.strictObject({
  type: z.literal('vip'),
  name: nameSchema,
  /** The virtual IP, routed as a /32 to the active node's ENI; must lie outside every CIDR block of the VPC. */
  ip: ipv4('ip'),
  vpcId: awsId('vpc', 'vpcId'),
  /** Tables that must hold the route even if they do not have it yet (CreateRoute there). */
  routeTableIds: z.array(awsId('rtb', 'routeTableIds[]')).optional(),
  /** Restrict the tables updated to those carrying this tag. */
  routeTableTag: z.strictObject({ key: text('key', 'failover'), value: text('value', 'orders') }).optional(),
  /** ENI per node for multi-NIC instances; defaults to each node's `eni`. */
  eni: perNode(awsId('eni', 'eni')).optional(),
});

const eipResource = z.strictObject({
  type: z.literal('eip'),
  name: nameSchema,
  allocationId: awsId('eipalloc', 'allocationId'),
  eni: perNode(awsId('eni', 'eni')).optional(),
  /** Secondary private IP per node to associate the address with (default: the ENI's primary). */
  privateIp: perNode(ipv4('privateIp')).optional(),
});

const dnsResource = z.strictObject({
  type: z.literal('dns'),
  name: nameSchema,
  hostedZoneId: z
    .string({ error: 'hostedZoneId must be a string such as Z0123456789ABCDEFGHIJ' })
    .regex(/^(\/hostedzone\/)?[A-Z0-9]+$/, {
      error: 'hostedZoneId must look like Z0123456789ABCDEFGHIJ (uppercase letters and digits)',
    }),
  /** Normalized to a lowercase FQDN with the trailing dot. */
  recordName: z
    .string({ error: 'recordName must be a DNS name such as db.example.internal.' })
    .regex(
      /^(?=.{1,254}$)([A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/,
      {
        error:
          'recordName must be a DNS name such as db.example.internal. (labels of letters, digits and dashes)',
      },
    )
    .transform((name) => `${name.toLowerCase().replace(/\.$/, '')}.`),
  ttl: int('ttl', 0, 2_147_483_647).default(60),
  /** A common address to publish (e.g. the VIP or the EIP); without it, the active node's privateIp. */
  ip: ipv4('ip').optional(),
  deleteOnDeactivate: z.boolean({ error: 'deleteOnDeactivate must be true or false' }).default(false),
  /** Wait for Route 53 to report the change INSYNC before going on. */
  waitInsync: z.boolean({ error: 'waitInsync must be true or false' }).default(false),
  waitTimeoutSec: int('waitTimeoutSec', 1, 900).default(60),
});

const execResource = z.strictObject({
  type: z.literal('exec'),
  name: nameSchema,
  start: text('start', '/opt/app/start.sh'),
  stop: text('stop', '/opt/app/stop.sh'),
  timeoutSec: int('timeoutSec', 1, 172_800).default(300),
  /** Asynchronous start: the command is recorded and its outcome checked by later reconciles. */
  async: z.boolean({ error: 'async must be true or false' }).default(false),
  /** SSM document that runs the command. */
  document: text('document', 'AWS-RunShellScript').default('AWS-RunShellScript'),
});

export const resourceSchema = z.discriminatedUnion(
  'type',
  [vipResource, eipResource, dnsResource, execResource],
  {
    error: 'resource type must be one of: vip, eip, dns, exec',
  },
);

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

const monitorCommon = {
  name: nameSchema,
  /** The resource to restart on error; also makes the monitor `active`-timed by default. */
  resource: nameSchema.optional(),
  intervalMs: int('intervalMs', 100, 3_600_000).default(3000),
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
const onApiError = z
  .enum(['warn', 'ignore', 'recover'], { error: 'onApiError must be one of: warn, ignore, recover' })
  .default('warn');

export const monitorSchema = z.discriminatedUnion(
  'type',
  [
    // Agent-side monitors, run by the node agent.
    z.strictObject({
      ...monitorCommon,
      type: z.literal('pid'),
      pidFile: text('pidFile', '/run/app.pid').optional(),
      processName: text('processName', 'postgres').optional(),
    }),
    z.strictObject({
      ...monitorCommon,
      type: z.literal('disk'),
      path: text('path', '/mnt/efs/monitor.txt'),
      sizeBytes: int('sizeBytes', 1, 1_048_576).default(512),
    }),
    z.strictObject({ ...monitorCommon, type: z.literal('ip'), host: text('host', '10.0.0.1') }),
    z.strictObject({
      ...monitorCommon,
      type: z.literal('http'),
      url: z.url({ protocol: /^https?$/, error: 'url must be an http:// or https:// URL' }),
      method: z.enum(['GET', 'HEAD'], { error: 'method must be GET or HEAD' }).default('GET'),
      expectStatus: int('expectStatus', 100, 599).default(200),
    }),
    z.strictObject({
      ...monitorCommon,
      type: z.literal('tcp'),
      host: text('host', '127.0.0.1'),
      port: int('port', 1, 65_535),
    }),
    z.strictObject({
      ...monitorCommon,
      type: z.literal('command'),
      command: text('command', '/opt/app/check.sh'),
    }),
    z.strictObject({
      ...monitorCommon,
      type: z.literal('dns'),
      hostname: text('hostname', 'db.example.internal'),
      expectIp: ipv4('expectIp').optional(),
    }),
    z.strictObject({ ...monitorCommon, type: z.literal('vip') }),
    // Controller-side monitors, run by reconcile.
    z.strictObject({ ...monitorCommon, type: z.literal('az'), onApiError }),
    z.strictObject({ ...monitorCommon, type: z.literal('instance'), onApiError }),
    /** Overrides the policy of the automatic check of one entry-point resource (route, EIP, record). */
    z.strictObject({ ...monitorCommon, type: z.literal('resource'), onApiError }),
  ],
  {
    error: 'monitor type must be one of: pid, disk, ip, http, tcp, command, dns, vip, az, instance, resource',
  },
);

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
  resources: z.array(resourceSchema, { error: 'resources must be a list' }).default([]),
  monitors: z.array(monitorSchema, { error: 'monitors must be a list' }).default([]),
});

export const clusterSchema = z.strictObject({
  cluster: nameSchema,
  region: z
    .string({ error: 'region must be an AWS region such as us-east-1' })
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, {
      error: 'region must be an AWS region such as us-east-1',
    }),
  timing: timingSchema.prefault({}),
  nodes: z
    .array(nodeSchema, { error: 'nodes must be a list' })
    .min(1, { error: 'nodes must list at least one node' }),
  witnesses: z.array(witnessSchema, { error: 'witnesses must be a list' }).default([]),
  groups: z.array(groupSchema, { error: 'groups must be a list' }).default([]),
});

export type ClusterInput = z.input<typeof clusterSchema>;
export type ClusterConfigParsed = z.output<typeof clusterSchema>;
export type TimingParsed = z.output<typeof timingSchema>;
export type NodeConfig = z.output<typeof nodeSchema>;
export type WitnessConfig = z.output<typeof witnessSchema>;
export type GroupConfig = z.output<typeof groupSchema>;
export type ResourceConfig = z.output<typeof resourceSchema>;
export type VipResource = z.output<typeof vipResource>;
export type EipResource = z.output<typeof eipResource>;
export type DnsResource = z.output<typeof dnsResource>;
export type ExecResource = z.output<typeof execResource>;
export type MonitorConfig = z.output<typeof monitorSchema>;
export type RecoveryPolicy = z.output<typeof recoverySchema>;

/** Monitors run by the node agent (the rest are run by reconcile). */
export const AGENT_MONITOR_TYPES = ['pid', 'disk', 'ip', 'http', 'tcp', 'command', 'dns', 'vip'] as const;
export const CONTROLLER_MONITOR_TYPES = ['az', 'instance', 'resource'] as const;
export const ENTRY_POINT_TYPES = ['vip', 'eip', 'dns'] as const;
