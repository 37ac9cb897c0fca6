/**
 * A two-node network in the moto server for the entry-point drivers and, later, an end-to-end
 * failover test: a VPC with a secondary CIDR block, subnets in two zones (one in each block), an
 * internet gateway, two running instances with source/dest check off, route tables holding the VIP
 * route, an Elastic IP and a private hosted zone — and a validated ClusterConfig for one group
 * (vip + eip + dns + exec) over both nodes. Every call names unique resources, so fixtures of
 * parallel tests do not meet.
 */
import { randomInt } from 'node:crypto';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AssociateRouteTableCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateTagsCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
} from '@aws-sdk/client-ec2';
import { CreateInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { ChangeResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { clientConfig } from '../../../controller/aws/clients';
import type { AwsOptions } from '../../../shared/aws/options';
import { type ClusterConfig, parseClusterConfig } from '../../../shared/config/load';
import type { ClusterInput } from '../../../shared/config/schema';
import { buildTwoNodeNetwork, type NodeName } from '../../../testkit/emulator-network';
import { aws, uniqueName } from '../support';

export type { NodeName } from '../../../testkit/emulator-network';

export interface FixtureNode {
  name: NodeName;
  instanceId: string;
  /** Primary ENI (device index 0). */
  eni: string;
  privateIp: string;
  az: string;
  subnetId: string;
  /** A second ENI attached at device index 1, when `extraEni` was asked for. */
  extraEni?: string;
}

type ResourceInput = NonNullable<NonNullable<ClusterInput['groups']>[number]['resources']>[number];
type Input<T extends ResourceInput['type']> = Partial<
  Omit<Extract<ResourceInput, { type: T }>, 'type' | 'name'>
>;

export interface FixtureOptions {
  aws?: AwsOptions;
  /** Where the entry points start: on node1 (routes, EIP, record), or nowhere (the default is node1). */
  initialOwner?: 'node1' | 'none';
  /** Nodes whose ENIs keep source/destination check enabled (default: none). */
  sourceDestCheck?: NodeName[];
  /** Attach a second ENI to node2 (multi-NIC). */
  extraEni?: boolean;
  /** Overrides of the resources' settings in the definition. */
  vip?: Input<'vip'>;
  eip?: Input<'eip'>;
  dns?: Input<'dns'>;
}

export interface Fixture {
  /** Clients for setup and assertions (not the ones under test, so their calls are not counted). */
  ec2: EC2Client;
  route53: Route53Client;
  vpcId: string;
  /** Primary and secondary CIDR blocks. */
  cidrs: [string, string];
  nodes: Record<NodeName, FixtureNode>;
  vip: string;
  routeTables: {
    /** The VPC's main table: holds the VIP route (untagged). */
    main: string;
    /** A custom table tagged failover=<cluster>, associated with node2's subnet: holds the VIP route. */
    tagged: string;
    /** A custom table without the VIP route, listed in routeTableIds. */
    listed: string;
    /** A custom table that neither holds nor lists the VIP: never touched. */
    unrelated: string;
  };
  /** Tag on `routeTables.tagged`. */
  tag: { key: string; value: string };
  allocationId: string;
  publicIp: string;
  /** As returned by Route 53, with the /hostedzone/ prefix. */
  hostedZoneId: string;
  zoneName: string;
  recordName: string;
  cluster: string;
  group: string;
  names: { vip: string; eip: string; dns: string; exec: string };
  config: ClusterConfig;
}

const PRIMARY = '10.40.0.0/16';
const SECONDARY = '10.41.0.0/16';

/** Builds the network and the definition. Everything is created fresh; nothing is cleaned up. */
export async function createFixture(options: FixtureOptions = {}): Promise<Fixture> {
  // Building the network is not what is measured: a slow emulator (a loaded machine, moto's AMI
  // list) gets more than the 3 s per call the controller's clients allow.
  const config = clientConfig({ requestTimeoutMs: 20_000, ...(options.aws ?? aws()) });
  const ec2 = new EC2Client(config);
  const route53 = new Route53Client({ ...config, region: 'us-east-1' });
  const cluster = uniqueName('c');

  const zoneName = `${uniqueName('z')}.internal`;
  // The nodes run with an instance profile, as deployed nodes do (SSM registration needs one).
  const iam = new IAMClient(config);
  const profile = uniqueName('node-profile');
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: profile }));
  const base = await buildTwoNodeNetwork(ec2, route53, {
    instanceProfile: profile,
    cidr: PRIMARY,
    secondaryCidr: SECONDARY,
    subnets: { node1: '10.40.1.0/24', node2: '10.41.2.0/24' },
    instanceTags: (name) => [{ Key: 'Name', Value: `${cluster}-${name}` }],
    keepSourceDestCheck: options.sourceDestCheck ?? [],
    internetGateway: true,
    zoneName,
    zoneReference: uniqueName('ref'),
  });
  const vpcId = base.vpcId;
  const igw = base.internetGateway!;
  const subnets = { node1: base.nodes.node1.subnetId, node2: base.nodes.node2.subnetId };
  const nodes: Record<NodeName, FixtureNode> = {
    node1: { ...base.nodes.node1 },
    node2: { ...base.nodes.node2 },
  };
  if (options.extraEni) {
    const extra = (await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: subnets.node2 })))
      .NetworkInterface!.NetworkInterfaceId!;
    await ec2.send(
      new AttachNetworkInterfaceCommand({
        NetworkInterfaceId: extra,
        InstanceId: nodes.node2.instanceId,
        DeviceIndex: 1,
      }),
    );
    nodes.node2.extraEni = extra;
  }
  if (nodes.node2.extraEni && !options.sourceDestCheck?.includes('node2')) {
    await ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: nodes.node2.extraEni,
        SourceDestCheck: { Value: false },
      }),
    );
  }

  // Route tables: the main one (created with the VPC) and three custom ones.
  const main = base.mainRouteTable;
  const table = async () =>
    (await ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!;
  const tagged = await table();
  const listed = await table();
  const unrelated = await table();
  const tag = { key: 'failover', value: cluster };
  await ec2.send(new CreateTagsCommand({ Resources: [tagged], Tags: [{ Key: tag.key, Value: tag.value }] }));
  await ec2.send(new AssociateRouteTableCommand({ RouteTableId: tagged, SubnetId: subnets.node2 }));
  await ec2.send(
    new CreateRouteCommand({ RouteTableId: unrelated, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw }),
  );

  const vip = `172.16.${randomInt(0, 256)}.${randomInt(1, 255)}`;
  const owner = options.initialOwner ?? 'node1';
  if (owner === 'node1') {
    for (const rtb of [main, tagged]) {
      await ec2.send(
        new CreateRouteCommand({
          RouteTableId: rtb,
          DestinationCidrBlock: `${vip}/32`,
          NetworkInterfaceId: nodes.node1.eni,
        }),
      );
    }
  }

  const address = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  const allocationId = address.AllocationId!;
  if (owner === 'node1')
    await ec2.send(
      new AssociateAddressCommand({ AllocationId: allocationId, NetworkInterfaceId: nodes.node1.eni }),
    );

  const hostedZoneId = base.hostedZoneId;
  const recordName = `db.${zoneName}.`;
  if (owner === 'node1') {
    await route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: hostedZoneId,
        ChangeBatch: {
          Changes: [
            {
              Action: 'UPSERT',
              ResourceRecordSet: {
                Name: recordName,
                Type: 'A',
                TTL: 30,
                ResourceRecords: [{ Value: nodes.node1.privateIp }],
              },
            },
          ],
        },
      }),
    );
  }

  const group = 'web';
  const names = { vip: 'web-vip', eip: 'web-eip', dns: 'web-dns', exec: 'web-app' };
  const clusterConfig = parseClusterConfig(
    {
      cluster,
      region: 'us-east-1',
      nodes: Object.values(nodes).map((n) => ({
        name: n.name,
        instanceId: n.instanceId,
        eni: n.eni,
        az: n.az,
        privateIp: n.privateIp,
      })),
      groups: [
        {
          name: group,
          nodes: ['node1', 'node2'],
          resources: [
            { type: 'vip', name: names.vip, ip: vip, vpcId, routeTableIds: [listed], ...options.vip },
            { type: 'eip', name: names.eip, allocationId, ...options.eip },
            { type: 'dns', name: names.dns, hostedZoneId, recordName, ttl: 30, ...options.dns },
            { type: 'exec', name: names.exec, start: '/bin/true', stop: '/bin/true' },
          ],
        },
      ],
    } satisfies ClusterInput,
    `fixture ${cluster}`,
  );

  return {
    ec2,
    route53,
    vpcId,
    cidrs: [PRIMARY, SECONDARY],
    nodes,
    vip,
    routeTables: { main, tagged, listed, unrelated },
    tag,
    allocationId,
    publicIp: address.PublicIp!,
    hostedZoneId,
    zoneName,
    recordName,
    cluster,
    group,
    names,
    config: clusterConfig,
  };
}
