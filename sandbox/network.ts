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

export const VIP = '172.16.0.10';
export const ZONE = 'sandbox.internal';
export const RECORD = `db.${ZONE}.`;

export interface SandboxNetwork {
  vpcId: string;
  nodes: { name: 'node1' | 'node2'; instanceId: string; eni: string; az: string; privateIp: string }[];
  routeTables: string[];
  allocationId: string;
  publicIp: string;
  hostedZoneId: string;
}

export async function buildNetwork(ec2: EC2Client, route53: Route53Client): Promise<SandboxNetwork> {
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
  for (const table of [main, second]) {
    await ec2.send(
      new CreateRouteCommand({
        RouteTableId: table,
        DestinationCidrBlock: `${VIP}/32`,
        NetworkInterfaceId: nodes[0]!.eni,
      }),
    );
  }
  await ec2.send(
    new CreateTagsCommand({ Resources: [main, second], Tags: [{ Key: 'failover:managed', Value: 'true' }] }),
  );

  const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  const zone = await route53.send(
    new CreateHostedZoneCommand({
      Name: ZONE,
      CallerReference: `sandbox-${randomBytes(6).toString('hex')}`,
      VPC: { VPCRegion: 'us-east-1', VPCId: vpcId },
      HostedZoneConfig: { PrivateZone: true, Comment: 'failover sandbox' },
    }),
  );
  return {
    vpcId,
    nodes,
    routeTables: [main, second],
    allocationId: eip.AllocationId!,
    publicIp: eip.PublicIp!,
    hostedZoneId: zone.HostedZone!.Id!.replace(/^\/hostedzone\//, ''),
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

/** The cluster definition of the sandbox: one group with vip + eip + dns + exec on two nodes. */
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
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [
          { type: 'vip', name: 'vip', ip: VIP, vpcId: net.vpcId },
          { type: 'eip', name: 'eip', allocationId: net.allocationId },
          { type: 'dns', name: 'dns', hostedZoneId: net.hostedZoneId, recordName: RECORD, ttl: 10 },
          { type: 'exec', name: 'app', start: app.start, stop: app.stop, timeoutSec: 20 },
        ],
        monitors: [{ type: 'az', name: 'az' }],
      },
    ],
  });
}
