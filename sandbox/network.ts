/**
 * The sandbox's AWS account, built in the emulator: the test kit's two nodes in two Availability
 * Zones (testkit/emulator-network.ts), a second route table, and per group its VIP route in both
 * tables, its Elastic IP and its record name — and the cluster definition that uses them.
 */
import { randomBytes } from 'node:crypto';
import {
  AssociateRouteTableCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateTagsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import type { Route53Client } from '@aws-sdk/client-route-53';
import { type ClusterConfig, parseClusterConfig } from '../shared/config/load';
import { allocateAddress, bareZoneId, buildTwoNodeNetwork, NODE_NAMES } from '../testkit/emulator-network';

export const ZONE = 'sandbox.internal';

/**
 * A group as users write it: which entry points it has, whether it runs an application, and its
 * nodes in priority order. The sandbox gives each group its own VIP, Elastic IP and record.
 */
export interface GroupShape {
  name: string;
  /** Priority order; [node2, node1] makes an active/active pair with the groups on node1. */
  nodes: readonly ('node1' | 'node2')[];
  vip?: boolean;
  eip?: boolean;
  dns?: boolean;
  exec?: boolean;
}

/** One group with every kind of resource: what `npm run bench` measures. */
export const FULL_GROUP: GroupShape = {
  name: 'db',
  nodes: ['node1', 'node2'],
  vip: true,
  eip: true,
  dns: true,
  exec: true,
};

/** `npm run demo`: the application group, and beside it a floating IP without application. */
export const DEMO_SHAPES: readonly GroupShape[] = [
  FULL_GROUP,
  { name: 'fip', nodes: ['node1', 'node2'], vip: true, eip: true, dns: true },
];

/**
 * Every shape users write, on one pair of nodes: one entry point alone, the entry points without
 * application, the application alone, everything, and a group preferring the other node
 * (active/active).
 */
export const ALL_SHAPES: readonly GroupShape[] = [
  FULL_GROUP,
  { name: 'vip-only', nodes: ['node1', 'node2'], vip: true },
  { name: 'eip-only', nodes: ['node1', 'node2'], eip: true },
  { name: 'dns-only', nodes: ['node1', 'node2'], dns: true },
  { name: 'fip', nodes: ['node1', 'node2'], vip: true, eip: true, dns: true },
  { name: 'app-only', nodes: ['node1', 'node2'], exec: true },
  { name: 'web', nodes: ['node2', 'node1'], vip: true, dns: true, exec: true },
];

/** What the sandbox created for one group. */
export interface SandboxGroup {
  shape: GroupShape;
  vip?: string;
  allocationId?: string;
  publicIp?: string;
  record?: string;
}

export interface SandboxNetwork {
  vpcId: string;
  nodes: { name: 'node1' | 'node2'; instanceId: string; eni: string; az: string; privateIp: string }[];
  routeTables: string[];
  hostedZoneId: string;
  groups: SandboxGroup[];
}

/**
 * The management tag a deployment at stage `sandbox` acts on (serverless.yml `custom.managedTag`:
 * `<service>-<stage>`): its role changes only resources tagged with its own value.
 */
const MANAGED = { Key: 'failover:managed', Value: 'failover-controller-sandbox' };

export async function buildNetwork(
  ec2: EC2Client,
  route53: Route53Client,
  shapes: readonly GroupShape[],
): Promise<SandboxNetwork> {
  const base = await buildTwoNodeNetwork(ec2, route53, {
    cidr: '10.0.0.0/16',
    subnets: { node1: '10.0.1.0/24', node2: '10.0.2.0/24' },
    privateIps: { node1: '10.0.1.10', node2: '10.0.2.10' },
    instanceTags: (name) => [{ Key: 'Name', Value: `sandbox-${name}` }, MANAGED],
    zoneName: ZONE,
    zoneReference: `sandbox-${randomBytes(6).toString('hex')}`,
  });
  const vpcId = base.vpcId;
  const nodes = NODE_NAMES.map((name) => {
    const n = base.nodes[name];
    return { name, instanceId: n.instanceId, eni: n.eni, az: n.az, privateIp: n.privateIp };
  });
  const main = base.mainRouteTable;
  const second = (await ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!;
  await ec2.send(
    new AssociateRouteTableCommand({ RouteTableId: second, SubnetId: base.nodes.node2.subnetId }),
  );
  await ec2.send(new CreateTagsCommand({ Resources: [main, second], Tags: [MANAGED] }));

  const groups: SandboxGroup[] = [];
  for (const [i, shape] of shapes.entries()) {
    const group: SandboxGroup = { shape };
    if (shape.vip) {
      group.vip = `172.16.0.${10 + i}`;
      // The route exists before the cluster does, pointing at the first node (as a user's would).
      for (const table of [main, second]) {
        await ec2.send(
          new CreateRouteCommand({
            RouteTableId: table,
            DestinationCidrBlock: `${group.vip}/32`,
            NetworkInterfaceId: nodes[0]!.eni,
          }),
        );
      }
    }
    if (shape.eip) {
      const eip = await allocateAddress(ec2);
      group.allocationId = eip.allocationId;
      group.publicIp = eip.publicIp;
    }
    if (shape.dns) group.record = `${shape.name}.${ZONE}.`;
    groups.push(group);
  }
  return {
    vpcId,
    nodes,
    routeTables: [main, second],
    hostedZoneId: bareZoneId(base.hostedZoneId),
    groups,
  };
}

export interface SandboxTiming {
  heartbeatIntervalMs: number;
  leaseMs: number;
  maxClockSkewMs: number;
  /** Default: the product's (see shared/config/rules.ts). */
  fenceMarginMs?: number;
  heartbeatRetryMs?: number;
}

/** The cluster definition of the sandbox: the network's groups on two nodes. */
export function sandboxConfig(
  net: SandboxNetwork,
  timing: SandboxTiming,
  app: { start: string; stop: string; timeoutSec?: number },
  witnessPort: number,
  /** Per group: how long Online and healthy resets its recovery counters [the product's default]. */
  stableAfterMs?: number,
): ClusterConfig {
  return parseClusterConfig({
    cluster: 'sandbox',
    region: 'us-east-1',
    timing,
    nodes: net.nodes.map((n) => ({
      name: n.name,
      instanceId: n.instanceId,
      eni: n.eni,
      az: n.az,
      privateIp: n.privateIp,
    })),
    // The "regional endpoint" of the sandbox is the emulator on loopback.
    witnesses: [{ type: 'tcp', host: '127.0.0.1', port: witnessPort, timeoutMs: 300 }],
    groups: net.groups.map((g) => {
      const name = g.shape.name;
      const resources: Record<string, unknown>[] = [];
      if (g.vip) resources.push({ type: 'vip', name: `${name}-vip`, ip: g.vip, vpcId: net.vpcId });
      if (g.allocationId) resources.push({ type: 'eip', name: `${name}-eip`, allocationId: g.allocationId });
      if (g.record)
        resources.push({
          type: 'dns',
          name: `${name}-dns`,
          hostedZoneId: net.hostedZoneId,
          recordName: g.record,
          ttl: 10,
        });
      if (g.shape.exec)
        resources.push({
          type: 'exec',
          name: `${name}-app`,
          start: app.start,
          stop: app.stop,
          timeoutSec: app.timeoutSec ?? 20,
        });
      return {
        name,
        nodes: [...g.shape.nodes],
        ...(stableAfterMs !== undefined ? { stableAfterMs } : {}),
        resources,
        monitors: [
          { type: 'az', name: `${name}-az` },
          // The agent checks that the address is on the owner's interface and on no other.
          ...(g.vip ? [{ type: 'vip', name: `${name}-on-interface` }] : []),
        ],
      };
    }),
  });
}
