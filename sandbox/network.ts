/**
 * The sandbox's AWS account, built in the emulator: a VPC with two subnets in two Availability
 * Zones, two instances (source/destination check off), two route tables holding the VIP route, an
 * Elastic IP and a private hosted zone — and the cluster definition that uses them.
 */
import { randomBytes } from 'node:crypto';
import {
  AllocateAddressCommand,
  AssociateRouteTableCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateTagsCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeRouteTablesCommand,
  type EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateHostedZoneCommand, type Route53Client } from '@aws-sdk/client-route-53';
import { type ClusterConfig, parseClusterConfig } from '../shared/config/load';

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

export async function buildNetwork(
  ec2: EC2Client,
  route53: Route53Client,
  shapes: readonly GroupShape[],
): Promise<SandboxNetwork> {
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const image = (
    await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }))
  ).Images?.[0]?.ImageId;
  if (!image) throw new Error('the emulator lists no x86_64 image to start instances from');
  const specs = [
    { name: 'node1' as const, az: 'us-east-1a', cidr: '10.0.1.0/24', privateIp: '10.0.1.10' },
    { name: 'node2' as const, az: 'us-east-1b', cidr: '10.0.2.0/24', privateIp: '10.0.2.10' },
  ];
  const nodes: SandboxNetwork['nodes'] = [];
  const subnets: string[] = [];
  for (const s of specs) {
    const subnetId = (
      await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: s.cidr, AvailabilityZone: s.az }))
    ).Subnet!.SubnetId!;
    subnets.push(subnetId);
    const instance = (
      await ec2.send(
        new RunInstancesCommand({
          ImageId: image,
          MinCount: 1,
          MaxCount: 1,
          InstanceType: 't3.micro',
          SubnetId: subnetId,
          PrivateIpAddress: s.privateIp,
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'Name', Value: `sandbox-${s.name}` },
                { Key: 'failover:managed', Value: 'true' },
              ],
            },
          ],
        }),
      )
    ).Instances![0]!;
    const eni = instance.NetworkInterfaces![0]!.NetworkInterfaceId!;
    // A VIP routed to an ENI only arrives if the ENI accepts traffic for other addresses.
    await ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: eni,
        SourceDestCheck: { Value: false },
      }),
    );
    nodes.push({ name: s.name, instanceId: instance.InstanceId!, eni, az: s.az, privateIp: s.privateIp });
  }

  const main = (
    await ec2.send(
      new DescribeRouteTablesCommand({
        Filters: [
          { Name: 'vpc-id', Values: [vpcId] },
          { Name: 'association.main', Values: ['true'] },
        ],
      }),
    )
  ).RouteTables![0]!.RouteTableId!;
  const second = (await ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!;
  await ec2.send(new AssociateRouteTableCommand({ RouteTableId: second, SubnetId: subnets[1]! }));
  await ec2.send(
    new CreateTagsCommand({ Resources: [main, second], Tags: [{ Key: 'failover:managed', Value: 'true' }] }),
  );
  const zone = await route53.send(
    new CreateHostedZoneCommand({
      Name: ZONE,
      CallerReference: `sandbox-${randomBytes(6).toString('hex')}`,
      VPC: { VPCRegion: 'us-east-1', VPCId: vpcId },
      HostedZoneConfig: { PrivateZone: true, Comment: 'failover sandbox' },
    }),
  );

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
      const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
      group.allocationId = eip.AllocationId!;
      group.publicIp = eip.PublicIp!;
    }
    if (shape.dns) group.record = `${shape.name}.${ZONE}.`;
    groups.push(group);
  }
  return {
    vpcId,
    nodes,
    routeTables: [main, second],
    hostedZoneId: zone.HostedZone!.Id!.replace(/^\/hostedzone\//, ''),
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
  app: { start: string; stop: string },
  witnessPort: number,
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
          timeoutSec: 20,
        });
      return {
        name,
        nodes: [...g.shape.nodes],
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
