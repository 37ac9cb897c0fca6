/**
 * Two EC2 nodes in two Availability Zones, built in the emulator (or any EC2 endpoint): a VPC with
 * a subnet per zone, a running instance in each (source/destination check off unless asked), the
 * VPC's main route table and a private hosted zone. The sandbox, the integration fixtures and the
 * scaling benchmark build on it and add what they need (VIP routes, Elastic IPs, records, tables).
 */
import {
  AllocateAddressCommand,
  AssociateVpcCidrBlockCommand,
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeRouteTablesCommand,
  type EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  RunInstancesCommand,
  type Tag,
} from '@aws-sdk/client-ec2';
import { CreateHostedZoneCommand, type Route53Client } from '@aws-sdk/client-route-53';

export type NodeName = 'node1' | 'node2';
export const NODE_NAMES = ['node1', 'node2'] as const;
const ZONES: Record<NodeName, string> = { node1: 'us-east-1a', node2: 'us-east-1b' };

export interface NetworkNode {
  name: NodeName;
  instanceId: string;
  /** Primary ENI (device index 0). */
  eni: string;
  privateIp: string;
  az: string;
  subnetId: string;
}

export interface TwoNodeNetwork {
  vpcId: string;
  nodes: Record<NodeName, NetworkNode>;
  mainRouteTable: string;
  /** Present when an internet gateway was asked for. */
  internetGateway?: string;
  /** As Route 53 returns it, with the /hostedzone/ prefix. */
  hostedZoneId: string;
  zoneName: string;
}

export interface TwoNodeOptions {
  /** The VPC's CIDR block, e.g. 10.0.0.0/16. */
  cidr: string;
  /** A second CIDR block associated with the VPC (subnets may lie in it). */
  secondaryCidr?: string;
  /** Each node's subnet, in its own zone (node1: us-east-1a, node2: us-east-1b). */
  subnets: Record<NodeName, string>;
  /** Both nodes in node1's subnet and zone (a same-subnet floating address needs it). */
  oneSubnet?: boolean;
  /** Fixed private addresses (default: the emulator picks). */
  privateIps?: Record<NodeName, string>;
  /** Tags of each instance. */
  instanceTags?: (name: NodeName) => Tag[];
  /**
   * The instance profile both instances run with (the agents' role), by name: what an instance needs
   * to register with SSM (the emulator's DescribeInstanceInformation follows it).
   */
  instanceProfile?: string;
  /** Nodes whose ENI keeps the source/destination check (default: none; a VIP needs it off). */
  keepSourceDestCheck?: readonly NodeName[];
  internetGateway?: boolean;
  /** The private hosted zone's name, e.g. sandbox.internal. */
  zoneName: string;
  /** A unique CallerReference for the zone. */
  zoneReference: string;
}

let amiPromise: Promise<string> | undefined;

/** An AMI the emulator knows (moto ships a list of real public AMIs; any will do for RunInstances). */
export function anyImage(ec2: EC2Client): Promise<string> {
  amiPromise ??= ec2
    .send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }))
    .then((res) => {
      const id = res.Images?.find((i) => i.ImageId)?.ImageId;
      if (!id) throw new Error('the emulator lists no x86_64 image to start instances from');
      return id;
    });
  return amiPromise;
}

export async function buildTwoNodeNetwork(
  ec2: EC2Client,
  route53: Route53Client,
  o: TwoNodeOptions,
): Promise<TwoNodeNetwork> {
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: o.cidr }))).Vpc?.VpcId;
  if (!vpcId) throw new Error('CreateVpc returned no id');
  if (o.secondaryCidr)
    await ec2.send(new AssociateVpcCidrBlockCommand({ VpcId: vpcId, CidrBlock: o.secondaryCidr }));
  let internetGateway: string | undefined;
  if (o.internetGateway) {
    internetGateway = (await ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway
      ?.InternetGatewayId;
    if (!internetGateway) throw new Error('CreateInternetGateway returned no id');
    await ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: internetGateway, VpcId: vpcId }));
  }
  const imageId = await anyImage(ec2);
  const nodes = {} as Record<NodeName, NetworkNode>;
  let shared: string | undefined;
  for (const name of NODE_NAMES) {
    const az = o.oneSubnet ? ZONES.node1 : ZONES[name];
    const subnetId =
      (o.oneSubnet ? shared : undefined) ??
      (
        await ec2.send(
          new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: o.subnets[name], AvailabilityZone: az }),
        )
      ).Subnet?.SubnetId;
    if (!subnetId) throw new Error('CreateSubnet returned no id');
    shared = subnetId;
    const tags = o.instanceTags?.(name) ?? [];
    const instance = (
      await ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
          SubnetId: subnetId,
          ...(o.privateIps ? { PrivateIpAddress: o.privateIps[name] } : {}),
          ...(o.instanceProfile ? { IamInstanceProfile: { Name: o.instanceProfile } } : {}),
          ...(tags.length > 0 ? { TagSpecifications: [{ ResourceType: 'instance', Tags: tags }] } : {}),
        }),
      )
    ).Instances?.[0];
    const eni = instance?.NetworkInterfaces?.[0]?.NetworkInterfaceId;
    if (!instance?.InstanceId || !eni || !instance.PrivateIpAddress)
      throw new Error('RunInstances returned no instance');
    if (!o.keepSourceDestCheck?.includes(name)) {
      // A VIP routed to an ENI only arrives if the ENI accepts traffic for other addresses.
      await ec2.send(
        new ModifyNetworkInterfaceAttributeCommand({
          NetworkInterfaceId: eni,
          SourceDestCheck: { Value: false },
        }),
      );
    }
    nodes[name] = {
      name,
      instanceId: instance.InstanceId,
      eni,
      privateIp: instance.PrivateIpAddress,
      az,
      subnetId,
    };
  }
  const mainRouteTable = (
    await ec2.send(
      new DescribeRouteTablesCommand({
        Filters: [
          { Name: 'vpc-id', Values: [vpcId] },
          { Name: 'association.main', Values: ['true'] },
        ],
      }),
    )
  ).RouteTables?.[0]?.RouteTableId;
  if (!mainRouteTable) throw new Error(`VPC ${vpcId} has no main route table`);
  const zone = await route53.send(
    new CreateHostedZoneCommand({
      Name: o.zoneName,
      CallerReference: o.zoneReference,
      VPC: { VPCRegion: 'us-east-1', VPCId: vpcId },
      HostedZoneConfig: { PrivateZone: true, Comment: 'failover test network' },
    }),
  );
  const hostedZoneId = zone.HostedZone?.Id;
  if (!hostedZoneId) throw new Error('CreateHostedZone returned no id');
  return {
    vpcId,
    nodes,
    mainRouteTable,
    ...(internetGateway ? { internetGateway } : {}),
    hostedZoneId,
    zoneName: o.zoneName,
  };
}

/** A new Elastic IP allocation in the VPC domain. */
export async function allocateAddress(ec2: EC2Client): Promise<{ allocationId: string; publicIp: string }> {
  const a = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  if (!a.AllocationId || !a.PublicIp) throw new Error('AllocateAddress returned no allocation');
  return { allocationId: a.AllocationId, publicIp: a.PublicIp };
}

/** The zone id without the /hostedzone/ prefix. */
export function bareZoneId(id: string): string {
  return id.replace(/^\/hostedzone\//, '');
}
