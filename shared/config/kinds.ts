/**
 * The kinds table: every resource kind and every monitor kind of a cluster definition, with what
 * the rest of the code needs to know about it. The schema (schema.ts) builds its unions from it;
 * decide, observe and reconcile ask it which resources are entry points and which run on the node;
 * the rules (rules.ts) run its checks; the agent asks which monitors are its own and what a stop may
 * cost; the IAM generator takes its grants. Adding a kind is one entry here plus its driver
 * (controller/resources/) or probe (node-agent/monitors/), its tests and its docs: see
 * ARCHITECTURE.md, "Adding a resource kind".
 *
 * No zod at run time here: the node agent reads this table and must not load the schema library
 * (about 7 MB of resident memory). Each kind's schema is a function of the builders that schema.ts
 * hands it.
 */
import type * as zod from 'zod';
import { ipv4ToInt } from '../base/ipv4';
import type * as fieldsModule from './fields';

/** What a kind's schema is built with (schema.ts passes zod and the field builders). */
export interface Builders {
  z: typeof zod;
  f: typeof fieldsModule;
}

type Raw = Record<string, unknown>;

/** What a kind's own checks of a raw definition see (rules.ts runs them; see `check`). */
export interface CheckContext {
  /** Path of the resource or monitor, e.g. groups[0].resources[2]. */
  path: string;
  /** The group's name (its index when it has none), for messages. */
  group: string;
  /** The group's nodes that are defined, in priority order. */
  members: readonly string[];
  /** Every defined node, by name, as written. */
  nodes: ReadonlyMap<string, Raw>;
  /** The definition's node list as written (for "nodes[i]" in messages). */
  nodeList: readonly unknown[];
  /** The group's resources: name -> type. */
  groupResources: ReadonlyMap<string, string>;
  add(path: string, message: string): void;
}

/** One IAM permission the controller needs for a resource; grants with the same sid are merged. */
export interface Grant {
  sid: string;
  actions: string[];
  resources: string[];
  condition?: Record<string, Record<string, string[]>>;
}

export interface GrantContext {
  /** `arn:<partition>:<service>:<region>:<account>:<resource>`; account '' for AWS-owned resources. */
  arn(service: string, resource: string, account?: string): string;
  partition: string;
  /** The SSM Command document that runs the guard (the deployment creates it). */
  document: string;
  /** Its PowerShell variant for Windows nodes (the deployment creates it too). */
  windowsDocument: string;
  /** The group's nodes. */
  members: readonly { name: string; instanceId: string; eni?: string | undefined; platform?: string }[];
}

export interface ResourceKind<R = never> {
  readonly type: string;
  /** One line for the docs and messages. */
  readonly summary: string;
  readonly schema: (b: Builders) => zod.ZodObject;
  /**
   * An entry point: switched in AWS by the controller, checked on every reconcile (drift is put
   * back), activated at the same time as the group's other entry points.
   */
  readonly entryPoint: boolean;
  /**
   * What the owner itself holds. `application`: started and stopped through SSM and the node's
   * guard; a live old owner is stopped that way before another node starts. `address`: an address
   * on the owner's interface, put on by the guard before an application starts, or by the agent
   * itself for a group without application; taken off by every stop.
   */
  readonly onNode?: 'application' | 'address';
  /** The address the owner holds on its interface (kinds with onNode `address`). */
  readonly address?: (r: R) => string;
  /** The longest a stop of the resource may take on the node (part of the self-fence's promise). */
  readonly stopBudgetMs?: (r: R) => number;
  /** The command that stops it on the node (kinds with onNode `application`): the agent's own stops run it. */
  readonly stopCommand?: (r: R) => string;
  /** Needs each node's ENI (the node's `eni`, or `eni: { node: eni-... }` on the resource). */
  readonly needsEni?: boolean;
  /** Fields that map node names to values (their keys must be nodes of the group). */
  readonly perNodeFields?: readonly string[];
  /** A field whose value no two resources of a cluster may share. */
  readonly unique?: { field: string; what: string; hint: string };
  /** Checks of a raw definition beyond the schema (rules.ts). */
  readonly check?: (raw: Raw, ctx: CheckContext) => void;
  /** Read-only AWS actions the controller calls for it (they take no resource-level permission). */
  readonly readActions?: readonly string[];
  /** The controller's permissions on this resource. */
  readonly grants?: (r: R, ctx: GrantContext) => Grant[];
}

export interface MonitorKind<M = never> {
  readonly type: string;
  readonly summary: string;
  readonly schema: (b: Builders) => zod.ZodObject;
  /** Run by the node agent (a probe in node-agent/monitors/) or by reconcile. */
  readonly runsOn: 'agent' | 'controller';
  /** Watched only where the group runs unless `timing` says otherwise (default: when tied to a resource). */
  readonly activeByDefault?: boolean;
  /** The agent judges it on every node, active or not (it checks both ways). */
  readonly judgedEverywhere?: boolean;
  /** Needs a resource of the group that puts an address on the owner's interface. */
  readonly needsAddress?: boolean;
  readonly check?: (raw: Raw, ctx: CheckContext) => void;
  /** Only for type-checking `check` against the parsed monitor; unused at run time. */
  readonly _monitor?: M;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

// ------------------------------------------------------------------------------------------------
// Resources

const vipSchema = ({ z, f }: Builders) =>
  z.strictObject({
    type: z.literal('vip'),
    name: f.nameSchema,
    /** The virtual IP, routed as a /32 to the active node's ENI; must lie outside every CIDR block of the VPC. */
    ip: f.ipv4('ip'),
    vpcId: f.awsId('vpc', 'vpcId'),
    /** Tables that must hold the route even if they do not have it yet (CreateRoute there). */
    routeTableIds: z.array(f.awsId('rtb', 'routeTableIds[]')).optional(),
    /** Restrict the tables updated to those carrying this tag. */
    routeTableTag: z
      .strictObject({ key: f.text('key', 'failover'), value: f.text('value', 'orders') })
      .optional(),
    /** ENI per node for multi-NIC instances; defaults to each node's `eni`. */
    eni: f.perNode(f.awsId('eni', 'eni')).optional(),
  });
export type VipResource = zod.output<ReturnType<typeof vipSchema>>;

/** 0/8, loopback, multicast, reserved and link-local addresses: never a VIP. */
function reservedAddress(ip: string): boolean {
  const n = ipv4ToInt(ip);
  return (
    n !== undefined &&
    (n >>> 24 === 0 || n >>> 24 === 127 || n >>> 28 === 14 || n >>> 28 === 15 || n >>> 16 === 0xa9fe)
  );
}

export const vip = {
  type: 'vip' as const,
  summary: 'a VPC route table /32 to the active node (a floating IP outside the VPC CIDR)',
  schema: vipSchema,
  entryPoint: true,
  onNode: 'address',
  address: (r) => r.ip,
  needsEni: true,
  perNodeFields: ['eni'],
  unique: { field: 'ip', what: 'VIP', hint: 'each VIP belongs to one resource' },
  check: (raw, ctx) => {
    const ip = str(raw.ip);
    if (!ip) return;
    if (reservedAddress(ip))
      ctx.add(
        `${ctx.path}.ip`,
        `VIP ${ip} is a reserved address (0/8, loopback, link-local or multicast); choose an unused private address outside the VPC CIDR, e.g. 172.16.0.10`,
      );
    ctx.nodeList.forEach((node, i) => {
      if (node && typeof node === 'object' && (node as Raw).privateIp === ip)
        ctx.add(
          `${ctx.path}.ip`,
          `VIP ${ip} is the privateIp of nodes[${i}]; choose an address outside the VPC CIDR`,
        );
    });
  },
  readActions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeRouteTables', 'ec2:DescribeVpcs'],
  // IAM cannot limit a route's destination: ReplaceRoute on a table allows any route of it. The
  // driver only ever touches the VIP's /32 (it reads the table first and names that destination).
  grants: (r, ctx) => [
    {
      sid: 'VipRoutesInVpc',
      actions: ['ec2:ReplaceRoute'],
      resources: [ctx.arn('ec2', 'route-table/*')],
      condition: {
        ArnLike: { 'ec2:Vpc': [ctx.arn('ec2', `vpc/${r.vpcId}`)] },
        ...(r.routeTableTag
          ? { StringEquals: { [`aws:ResourceTag/${r.routeTableTag.key}`]: [r.routeTableTag.value] } }
          : {}),
      },
    },
    ...(r.routeTableIds?.length
      ? [
          {
            // The listed tables: the route is created there when missing.
            sid: 'VipListedRouteTables',
            actions: ['ec2:CreateRoute', 'ec2:ReplaceRoute'],
            resources: r.routeTableIds.map((t) => ctx.arn('ec2', `route-table/${t}`)),
          },
        ]
      : []),
  ],
} satisfies ResourceKind<VipResource>;

const eipSchema = ({ z, f }: Builders) =>
  z.strictObject({
    type: z.literal('eip'),
    name: f.nameSchema,
    allocationId: f.awsId('eipalloc', 'allocationId'),
    eni: f.perNode(f.awsId('eni', 'eni')).optional(),
    /** Secondary private IP per node to associate the address with (default: the ENI's primary). */
    privateIp: f.perNode(f.ipv4('privateIp')).optional(),
  });
export type EipResource = zod.output<ReturnType<typeof eipSchema>>;

export const eip = {
  type: 'eip' as const,
  summary: 'an Elastic IP associated with the active node',
  schema: eipSchema,
  entryPoint: true,
  needsEni: true,
  perNodeFields: ['eni', 'privateIp'],
  unique: { field: 'allocationId', what: 'allocation', hint: 'an Elastic IP can serve only one resource' },
  readActions: ['ec2:DescribeAddresses', 'ec2:DescribeNetworkInterfaces'],
  grants: (r, ctx) => [
    {
      sid: 'ElasticIps',
      actions: ['ec2:AssociateAddress', 'ec2:DisassociateAddress'],
      resources: [
        ctx.arn('ec2', `elastic-ip/${r.allocationId}`),
        ...ctx.members.flatMap((n) => {
          const eni = r.eni?.[n.name] ?? n.eni;
          return eni ? [ctx.arn('ec2', `network-interface/${eni}`)] : [];
        }),
      ],
    },
  ],
} satisfies ResourceKind<EipResource>;

const dnsSchema = ({ z, f }: Builders) =>
  z.strictObject({
    type: z.literal('dns'),
    name: f.nameSchema,
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
    ttl: f.int('ttl', 0, 2_147_483_647).default(60),
    /** A common address to publish (e.g. the VIP or the EIP); without it, the active node's privateIp. */
    ip: f.ipv4('ip').optional(),
    deleteOnDeactivate: f.bool('deleteOnDeactivate').default(false),
    /** Wait for Route 53 to report the change INSYNC before going on. */
    waitInsync: f.bool('waitInsync').default(false),
    waitTimeoutSec: f.int('waitTimeoutSec', 1, 900).default(60),
  });
export type DnsResource = zod.output<ReturnType<typeof dnsSchema>>;

export const dns = {
  type: 'dns' as const,
  summary: "a Route 53 A record naming the active node's address (or a common one)",
  schema: dnsSchema,
  entryPoint: true,
  check: (raw, ctx) => {
    if (raw.ip !== undefined) return;
    for (const member of ctx.members) {
      if (str(ctx.nodes.get(member)?.privateIp) === undefined)
        ctx.add(
          ctx.path,
          `dns resource "${str(raw.name) ?? '?'}" publishes the active node's privateIp, but node "${member}" has none: set privateIp on that node, or ip: <address> on this resource`,
        );
    }
  },
  grants: (r, ctx) => {
    const zone = r.hostedZoneId.replace(/^\/hostedzone\//, '');
    const zoneArn = `arn:${ctx.partition}:route53:::hostedzone/${zone}`;
    return [
      {
        sid: `Dns${zone.replace(/[^A-Za-z0-9]/g, '')}`,
        actions: ['route53:ChangeResourceRecordSets'],
        resources: [zoneArn],
        condition: {
          'ForAllValues:StringEquals': {
            'route53:ChangeResourceRecordSetsNormalizedRecordNames': [r.recordName.replace(/\.$/, '')],
            'route53:ChangeResourceRecordSetsRecordTypes': ['A'],
            'route53:ChangeResourceRecordSetsActions': ['DELETE', 'UPSERT'],
          },
        },
      },
      {
        sid: 'DnsRead',
        actions: ['route53:GetChange', 'route53:ListResourceRecordSets'],
        resources: [zoneArn, `arn:${ctx.partition}:route53:::change/*`],
      },
    ];
  },
} satisfies ResourceKind<DnsResource>;

const execSchema = ({ z, f }: Builders) =>
  z.strictObject({
    type: z.literal('exec'),
    name: f.nameSchema,
    start: f.command('start', '/opt/app/start.sh'),
    stop: f.command('stop', '/opt/app/stop.sh'),
    timeoutSec: f.int('timeoutSec', 1, 172_800).default(300),
    /** Asynchronous start: the command is recorded and its outcome checked by later reconciles. */
    async: f.bool('async').default(false),
    /** Refused with the reason (see `check`): commands run through the deployment's guard document. */
    document: z.unknown().optional(),
  });
export type ExecResource = zod.output<ReturnType<typeof execSchema>>;

export const exec = {
  type: 'exec' as const,
  summary: 'an application started and stopped with SSM Run Command through the node agent guard',
  schema: execSchema,
  entryPoint: false,
  onNode: 'application',
  stopBudgetMs: (r) => r.timeoutSec * 1000,
  stopCommand: (r) => r.stop,
  check: (raw, ctx) => {
    if (raw.document !== undefined)
      ctx.add(
        `${ctx.path}.document`,
        "document is no longer set per resource: every start and stop runs through the SSM document the deployment creates (failover-guard-<stage>, its PowerShell variant on Windows nodes), which runs only the node agent's guard; remove this line",
      );
  },
  readActions: ['ssm:GetCommandInvocation'],
  // Only the deployment's guard documents (guard-document.ts): they run nothing but the node agent's
  // guard, which reads the command from the stored definition. No free shell command is sent, not
  // even to Windows nodes (no AWS-RunShellScript, no AWS-RunPowerShellScript).
  grants: (_r, ctx) => [
    {
      sid: 'RunCommand',
      actions: ['ssm:SendCommand'],
      resources: [
        // Linux nodes get the shell document, Windows nodes its PowerShell variant; only those of
        // the platforms the group's nodes run.
        ...[
          ...new Set(ctx.members.map((n) => (n.platform === 'windows' ? ctx.windowsDocument : ctx.document))),
        ].map((doc) => ctx.arn('ssm', `document/${doc}`)),
        ...ctx.members.map((n) => ctx.arn('ec2', `instance/${n.instanceId}`)),
      ],
    },
  ],
} satisfies ResourceKind<ExecResource>;

const secondaryIpSchema = ({ z, f }: Builders) =>
  z.strictObject({
    type: z.literal('secondaryIp'),
    name: f.nameSchema,
    /** The floating address: a free address of the nodes' common subnet. */
    ip: f.ipv4('ip'),
    /** The subnet's CIDR block, e.g. 10.0.1.0/24: lets `validate` check the address without AWS. */
    subnetCidr: z
      .string({ error: 'subnetCidr must be a CIDR block such as 10.0.1.0/24' })
      .regex(/^(\d{1,3}\.){3}\d{1,3}\/(1[6-9]|2[0-8])$/, {
        error:
          'subnetCidr must be a subnet CIDR block such as 10.0.1.0/24 (a /16 to /28, as VPC subnets are)',
      })
      .optional(),
    /** ENI per node for multi-NIC instances; defaults to each node's `eni`. */
    eni: f.perNode(f.awsId('eni', 'eni')).optional(),
  });
export type SecondaryIpResource = zod.output<ReturnType<typeof secondaryIpSchema>>;

/** Network, broadcast and the three addresses AWS reserves at the start of every subnet. */
function reservedInSubnet(ip: number, base: number, size: number): boolean {
  const offset = ip - base;
  return offset < 4 || offset === size - 1;
}

export const secondaryIp = {
  type: 'secondaryIp' as const,
  summary:
    "a secondary private IP of the nodes' common subnet, assigned to the active node's ENI (what keepalived users on AWS script with assign-private-ip-addresses)",
  schema: secondaryIpSchema,
  entryPoint: true,
  onNode: 'address',
  address: (r) => r.ip,
  needsEni: true,
  perNodeFields: ['eni'],
  unique: {
    field: 'ip',
    what: 'secondary IP',
    hint: 'each floating address belongs to one resource',
  },
  check: (raw, ctx) => {
    const ip = str(raw.ip);
    // A subnet lies in one Availability Zone: nodes in several zones cannot share one.
    const zones = new Set(ctx.members.map((m) => str(ctx.nodes.get(m)?.az)).filter(Boolean));
    if (zones.size > 1)
      ctx.add(
        ctx.path,
        `secondaryIp resource "${str(raw.name) ?? '?'}" needs the group's nodes in one subnet, but they are in ${[...zones].join(' and ')}; a subnet lies in one Availability Zone: use a vip resource (a route table /32 works across zones) instead`,
      );
    if (!ip) return;
    ctx.nodeList.forEach((node, i) => {
      if (node && typeof node === 'object' && (node as Raw).privateIp === ip)
        ctx.add(
          `${ctx.path}.ip`,
          `${ip} is the privateIp of nodes[${i}]; choose a free address of the subnet`,
        );
    });
    const cidr = str(raw.subnetCidr);
    const [base, bits] = cidr ? cidr.split('/') : [];
    const start = base ? ipv4ToInt(base) : undefined;
    const n = ipv4ToInt(ip);
    if (cidr && start !== undefined && n !== undefined && bits !== undefined) {
      const size = 2 ** (32 - Number(bits));
      const network = start - (start % size);
      if (n < network || n >= network + size)
        ctx.add(`${ctx.path}.ip`, `${ip} is outside subnet ${cidr}; choose a free address of ${cidr}`);
      else if (reservedInSubnet(n, network, size))
        ctx.add(
          `${ctx.path}.ip`,
          `${ip} is reserved in subnet ${cidr} (AWS keeps the first four addresses and the last one); choose another`,
        );
      for (const m of ctx.members) {
        const p = str(ctx.nodes.get(m)?.privateIp);
        const pn = p ? ipv4ToInt(p) : undefined;
        if (pn !== undefined && (pn < network || pn >= network + size))
          ctx.add(
            ctx.path,
            `node "${m}" (privateIp ${p}) is not in subnet ${cidr}; every node of the group must be in the subnet of the secondary IP`,
          );
      }
    }
  },
  readActions: ['ec2:DescribeNetworkInterfaces'],
  grants: (r, ctx) => [
    {
      sid: 'SecondaryIps',
      actions: ['ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: ctx.members.flatMap((n) => {
        const eni = r.eni?.[n.name] ?? n.eni;
        return eni ? [ctx.arn('ec2', `network-interface/${eni}`)] : [];
      }),
    },
  ],
} satisfies ResourceKind<SecondaryIpResource>;

/** Every resource kind, in the order the docs and messages list them. */
export const RESOURCE_KINDS = [vip, eip, dns, secondaryIp, exec] as const;

// ------------------------------------------------------------------------------------------------
// Monitors

// The schema functions are built apart from the kind objects: typed in place, zod would infer a
// loose shape from MonitorKind's return type instead of each monitor's own fields.
type MonitorExtras = Pick<MonitorKind, 'activeByDefault' | 'judgedEverywhere' | 'needsAddress' | 'check'>;

const agentMonitor = <T extends string, S extends zod.ZodRawShape>(
  type: T,
  summary: string,
  fields: (b: Builders) => S,
  extra: MonitorExtras = {},
) => {
  const schema = (b: Builders) =>
    b.z.strictObject({ ...b.f.monitorCommon, type: b.z.literal(type), ...fields(b) });
  return { type, summary, runsOn: 'agent' as const, schema, ...extra };
};

const controllerMonitor = <T extends string>(type: T, summary: string) => {
  const schema = (b: Builders) =>
    b.z.strictObject({ ...b.f.monitorCommon, type: b.z.literal(type), onApiError: b.f.onApiError });
  return { type, summary, runsOn: 'controller' as const, schema };
};

export const MONITOR_KINDS = [
  agentMonitor(
    'pid',
    'a process is alive (pid file or process name)',
    ({ f }) => ({
      pidFile: f.text('pidFile', '/run/app.pid').optional(),
      processName: f.text('processName', 'postgres').optional(),
    }),
    {
      check: (raw, ctx) => {
        if (raw.pidFile === undefined && raw.processName === undefined)
          ctx.add(ctx.path, 'a pid monitor needs pidFile: /run/app.pid or processName: <name>');
      },
    },
  ),
  agentMonitor('disk', 'a file can be written and read back (e.g. on EFS)', ({ f }) => ({
    path: f.text('path', '/mnt/efs/monitor.txt'),
    sizeBytes: f.int('sizeBytes', 1, 1_048_576).default(512),
  })),
  agentMonitor('ip', 'a host answers ping', ({ f }) => ({ host: f.text('host', '10.0.0.1') })),
  agentMonitor('http', 'a URL answers with the expected status', ({ z, f }) => ({
    url: z.url({ protocol: /^https?$/, error: 'url must be an http:// or https:// URL' }),
    method: z.enum(['GET', 'HEAD'], { error: 'method must be GET or HEAD' }).default('GET'),
    expectStatus: f.int('expectStatus', 100, 599).default(200),
  })),
  agentMonitor('tcp', 'a TCP port accepts connections', ({ f }) => ({
    host: f.text('host', '127.0.0.1'),
    port: f.int('port', 1, 65_535),
  })),
  agentMonitor('command', 'a command exits 0', ({ f }) => ({
    command: f.command('command', '/opt/app/check.sh'),
  })),
  agentMonitor('dns', 'a name resolves (to the expected address)', ({ f }) => ({
    hostname: f.text('hostname', 'db.example.internal'),
    expectIp: f.ipv4('expectIp').optional(),
  })),
  agentMonitor('vip', "the group's addresses are on the owner's interface and on no other", () => ({}), {
    activeByDefault: true,
    judgedEverywhere: true,
    needsAddress: true,
  }),
  controllerMonitor('az', "the node's Availability Zone is available"),
  controllerMonitor('instance', "the instance's EC2 status checks pass"),
  {
    ...controllerMonitor('resource', 'the policy of the automatic check of one entry point'),
    check: (raw: Raw, ctx: CheckContext) => {
      const target = str(raw.resource);
      if (target === undefined)
        ctx.add(
          `${ctx.path}.resource`,
          `a monitor of type resource must name the ${entryPointTypes().join(', ')} resource whose check it configures`,
        );
      else if (ctx.groupResources.has(target) && !resourceKind(ctx.groupResources.get(target)!)?.entryPoint)
        ctx.add(
          `${ctx.path}.resource`,
          `resource "${target}" is of type ${ctx.groupResources.get(target)}; a monitor of type resource configures the check of a ${entryPointTypes().join(', ')} resource`,
        );
    },
  },
] as const;

// Every entry is a kind (checked here rather than in place, for the reason above).
const _resourceKinds: readonly ResourceKind<never>[] =
  RESOURCE_KINDS as unknown as readonly ResourceKind<never>[];
const _monitorKinds: readonly MonitorKind[] = MONITOR_KINDS;
void _resourceKinds;
void _monitorKinds;

// ------------------------------------------------------------------------------------------------
// Lookups

export type ResourceType = (typeof RESOURCE_KINDS)[number]['type'];
export type MonitorType = (typeof MONITOR_KINDS)[number]['type'];
/** Monitor kinds run by the node agent (each has a probe in node-agent/monitors/). */
export type AgentMonitorType = Extract<(typeof MONITOR_KINDS)[number], { runsOn: 'agent' }>['type'];

const resourceByType = new Map<string, ResourceKind<never>>(
  RESOURCE_KINDS.map((k) => [k.type, k as unknown as ResourceKind<never>]),
);
const monitorByType = new Map<string, MonitorKind>(MONITOR_KINDS.map((k) => [k.type, k as MonitorKind]));

/** The kind of a resource type (undefined for a type the table does not know). */
export function resourceKind(type: string): ResourceKind<never> | undefined {
  return resourceByType.get(type);
}

export function monitorKind(type: string): MonitorKind | undefined {
  return monitorByType.get(type);
}

/** The kind's properties for a parsed resource (typed by the resource). */
function kindOf<R extends { type: string }>(r: R): ResourceKind<R> {
  return resourceByType.get(r.type) as unknown as ResourceKind<R>;
}

export function entryPointTypes(): string[] {
  return RESOURCE_KINDS.filter((k) => k.entryPoint).map((k) => k.type);
}

export function isEntryPoint(r: { type: string }): boolean {
  return resourceByType.get(r.type)?.entryPoint === true;
}

/** Started and stopped through SSM and the node's guard. */
export function isApplication(r: { type: string }): boolean {
  return resourceByType.get(r.type)?.onNode === 'application';
}

/** The address a resource puts on the owner's interface, if it puts one there. */
export function interfaceAddress<R extends { type: string }>(r: R): string | undefined {
  const kind = kindOf(r);
  return kind?.onNode === 'address' ? kind.address?.(r) : undefined;
}

/** The longest a stop of the resource may take on the node. */
export function stopBudgetMs<R extends { type: string }>(r: R): number {
  return kindOf(r)?.stopBudgetMs?.(r) ?? 0;
}

/** The command that stops the resource on the node, if the node runs one for it. */
export function stopCommand<R extends { type: string }>(r: R): string | undefined {
  const kind = kindOf(r);
  return kind?.onNode === 'application' ? kind.stopCommand?.(r) : undefined;
}

export function isAgentMonitor(m: { type: string }): boolean {
  return monitorByType.get(m.type)?.runsOn === 'agent';
}

/** Monitors tied to a resource (or active by kind) watch only where the group runs unless told otherwise. */
export function monitorTiming(m: {
  type: string;
  timing?: 'always' | 'active';
  resource?: string;
}): 'always' | 'active' {
  return (
    m.timing ?? (m.resource !== undefined || monitorByType.get(m.type)?.activeByDefault ? 'active' : 'always')
  );
}

/** The controller's permissions for one resource (the IAM generator merges them by sid). */
export function resourceGrants<R extends { type: string }>(r: R, ctx: GrantContext): Grant[] {
  return kindOf(r)?.grants?.(r, ctx) ?? [];
}

/** Read-only actions the controller needs for these resources. */
export function resourceReadActions(resources: readonly { type: string }[]): string[] {
  return [...new Set(resources.flatMap((r) => resourceByType.get(r.type)?.readActions ?? []))];
}
