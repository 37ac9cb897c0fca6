/**
 * The acceptance run's account: a VPC with a public subnet in each of two Availability Zones, a
 * route table tagged for the deployment (it carries the VIP's /32), a security group with no
 * inbound rule, the nodes' instance role, and an instance in each zone. The same calls run against
 * AWS (`npm run test:aws`) and against the emulator (its twin in `npm test`); every resource goes
 * into the ledger with its removal.
 */
import {
  AssociateRouteTableCommand,
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteInternetGatewayCommand,
  DeleteRouteTableCommand,
  DeleteSecurityGroupCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  DetachInternetGatewayCommand,
  DisassociateRouteTableCommand,
  type EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  ModifySubnetAttributeCommand,
  RunInstancesCommand,
  type Tag,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  AddRoleToInstanceProfileCommand,
  AttachRolePolicyCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteInstanceProfileCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  type IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  RemoveRoleFromInstanceProfileCommand,
} from '@aws-sdk/client-iam';
import type { Ledger } from './ledger';

export type NodeName = 'node1' | 'node2';
export const NODE_NAMES: readonly NodeName[] = ['node1', 'node2'];

export interface AcceptanceNode {
  name: NodeName;
  instanceId: string;
  eni: string;
  az: string;
  privateIp: string;
}

export interface AcceptanceNetwork {
  vpcId: string;
  /** Carries the default route and the VIP's /32; tagged failover:managed for the deployment. */
  routeTableId: string;
  /** The nodes' instance role (the agent policy is put on it once the definition exists). */
  role: string;
  nodes: AcceptanceNode[];
}

export interface NetworkOptions {
  /** Names every resource (Name tag, role and profile names), e.g. failover-acceptance-at1a2b3c. */
  prefix: string;
  /** The deployment's management tag value, failover-controller-<stage>. */
  managedTag: string;
  cluster: string;
  /** The VPC's block: 10.x.0.0/16; subnets are 10.x.1.0/24 and 10.x.2.0/24. */
  cidr: string;
  /** The floating IP (outside the VPC's block): its /32 goes into the route table. */
  vip: string;
  imageId: string;
  instanceType: string;
  /** Each instance's user data (plain text; encoded here). */
  userData?: (node: NodeName) => string;
  /** Managed policies for the nodes' role besides the agent policy (SSM, the agent bucket's read). */
  managedPolicies: string[];
  /** How long an instance may take to be gone at teardown (AWS: minutes; the emulator: at once). */
  terminateTimeoutMs: number;
  say: (line: string) => void;
}

const tags = (o: NetworkOptions, name: string, extra: Tag[] = []): Tag[] => [
  { Key: 'Name', Value: `${o.prefix}-${name}` },
  { Key: 'failover:acceptance', Value: o.prefix },
  ...extra,
];

/** Creates the account's network, role and instances; everything is recorded in the ledger. */
export async function createNetwork(
  ec2: EC2Client,
  iam: IAMClient,
  ledger: Ledger,
  o: NetworkOptions,
): Promise<AcceptanceNetwork> {
  const zones = (
    await ec2.send(
      new DescribeAvailabilityZonesCommand({
        Filters: [
          { Name: 'state', Values: ['available'] },
          { Name: 'zone-type', Values: ['availability-zone'] },
        ],
      }),
    )
  ).AvailabilityZones?.flatMap((z) => (z.ZoneName ? [z.ZoneName] : []))
    .sort()
    .slice(0, 2);
  if (!zones || zones.length < 2)
    throw new Error(`the region has fewer than two available Availability Zones (${zones?.join(', ')})`);

  const vpcId = (
    await ec2.send(
      new CreateVpcCommand({
        CidrBlock: o.cidr,
        TagSpecifications: [{ ResourceType: 'vpc', Tags: tags(o, 'vpc') }],
      }),
    )
  ).Vpc?.VpcId;
  if (!vpcId) throw new Error('CreateVpc returned no id');
  ledger.add({ kind: 'VPC', id: vpcId, detail: o.cidr }, async () => {
    await ec2.send(new DeleteVpcCommand({ VpcId: vpcId }));
  });

  const igw = (
    await ec2.send(
      new CreateInternetGatewayCommand({
        TagSpecifications: [{ ResourceType: 'internet-gateway', Tags: tags(o, 'igw') }],
      }),
    )
  ).InternetGateway?.InternetGatewayId;
  if (!igw) throw new Error('CreateInternetGateway returned no id');
  await ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpcId }));
  ledger.add({ kind: 'internet gateway', id: igw }, async () => {
    await ec2.send(new DetachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpcId }));
    await ec2.send(new DeleteInternetGatewayCommand({ InternetGatewayId: igw }));
  });

  // The nodes reach DynamoDB, SSM and S3 through the internet gateway (public addresses): no NAT
  // gateway or endpoints to pay for during a run.
  const octet = o.cidr.split('.')[1];
  const subnets: string[] = [];
  for (const [i, az] of zones.entries()) {
    const subnetId = (
      await ec2.send(
        new CreateSubnetCommand({
          VpcId: vpcId,
          CidrBlock: `10.${octet}.${i + 1}.0/24`,
          AvailabilityZone: az,
          TagSpecifications: [{ ResourceType: 'subnet', Tags: tags(o, `subnet-${az}`) }],
        }),
      )
    ).Subnet?.SubnetId;
    if (!subnetId) throw new Error('CreateSubnet returned no id');
    await ec2.send(
      new ModifySubnetAttributeCommand({ SubnetId: subnetId, MapPublicIpOnLaunch: { Value: true } }),
    );
    ledger.add({ kind: 'subnet', id: subnetId, detail: az }, async () => {
      await ec2.send(new DeleteSubnetCommand({ SubnetId: subnetId }));
    });
    subnets.push(subnetId);
  }

  const routeTableId = (
    await ec2.send(
      new CreateRouteTableCommand({
        VpcId: vpcId,
        TagSpecifications: [
          {
            ResourceType: 'route-table',
            Tags: tags(o, 'routes', [{ Key: 'failover:managed', Value: o.managedTag }]),
          },
        ],
      }),
    )
  ).RouteTable?.RouteTableId;
  if (!routeTableId) throw new Error('CreateRouteTable returned no id');
  const associations: string[] = [];
  ledger.add(
    { kind: 'route table', id: routeTableId, detail: `failover:managed=${o.managedTag}` },
    async () => {
      for (const a of associations.splice(0))
        await ec2.send(new DisassociateRouteTableCommand({ AssociationId: a }));
      await ec2.send(new DeleteRouteTableCommand({ RouteTableId: routeTableId }));
    },
  );
  await ec2.send(
    new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw }),
  );
  for (const subnetId of subnets) {
    const a = (
      await ec2.send(new AssociateRouteTableCommand({ RouteTableId: routeTableId, SubnetId: subnetId }))
    ).AssociationId;
    if (a) associations.push(a);
  }

  const sg = (
    await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: `${o.prefix}-nodes`,
        Description: 'failover acceptance run: no inbound rule (SSM needs none)',
        VpcId: vpcId,
        TagSpecifications: [{ ResourceType: 'security-group', Tags: tags(o, 'nodes') }],
      }),
    )
  ).GroupId;
  if (!sg) throw new Error('CreateSecurityGroup returned no id');
  ledger.add({ kind: 'security group', id: sg }, async () => {
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: sg }));
  });

  const role = await createNodeRole(iam, ledger, o);

  const nodes: AcceptanceNode[] = [];
  for (const [i, name] of NODE_NAMES.entries()) {
    const node = await runInstance(ec2, ledger, o, {
      name,
      subnetId: subnets[i]!,
      az: zones[i]!,
      securityGroup: sg,
      profile: role,
    });
    // A VIP routed to an ENI only arrives if the ENI accepts traffic for other addresses.
    await ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: node.eni,
        SourceDestCheck: { Value: false },
      }),
    );
    nodes.push(node);
  }
  // The VIP's /32, as the README has users add it before the first apply: the controller only ever
  // changes the target of an existing route (it creates none in tables the definition does not list).
  await ec2.send(
    new CreateRouteCommand({
      RouteTableId: routeTableId,
      DestinationCidrBlock: `${o.vip}/32`,
      NetworkInterfaceId: nodes[0]!.eni,
    }),
  );
  o.say(`  route ${o.vip}/32 → ${nodes[0]!.eni} (${nodes[0]!.name}) in ${routeTableId}`);
  return { vpcId, routeTableId, role, nodes };
}

/** The nodes' role and its instance profile (same name). */
async function createNodeRole(iam: IAMClient, ledger: Ledger, o: NetworkOptions): Promise<string> {
  const name = `${o.prefix}-node`;
  await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      Description: 'failover acceptance run: the nodes (agent policy, SSM, agent bucket read)',
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  ledger.add({ kind: 'IAM role', id: name }, async () => {
    const inline = (await iam.send(new ListRolePoliciesCommand({ RoleName: name }))).PolicyNames ?? [];
    for (const p of inline) await iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: p }));
    const attached =
      (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }))).AttachedPolicies ?? [];
    for (const p of attached)
      await iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: p.PolicyArn }));
    await iam.send(new DeleteRoleCommand({ RoleName: name }));
  });
  for (const arn of o.managedPolicies)
    await iam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: arn }));
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: name }));
  await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }));
  ledger.add({ kind: 'instance profile', id: name }, async () => {
    await iam
      .send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }))
      .catch((e: Error) => {
        if (e.name !== 'NoSuchEntity' && e.name !== 'NoSuchEntityException') throw e;
      });
    await iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: name }));
  });
  return name;
}

async function runInstance(
  ec2: EC2Client,
  ledger: Ledger,
  o: NetworkOptions,
  n: { name: NodeName; subnetId: string; az: string; securityGroup: string; profile: string },
): Promise<AcceptanceNode> {
  const input = {
    ImageId: o.imageId,
    InstanceType: o.instanceType as never,
    MinCount: 1,
    MaxCount: 1,
    SubnetId: n.subnetId,
    SecurityGroupIds: [n.securityGroup],
    IamInstanceProfile: { Name: n.profile },
    // IMDSv2 only, as production nodes should run.
    MetadataOptions: { HttpTokens: 'required' as const, HttpEndpoint: 'enabled' as const },
    TagSpecifications: [
      {
        ResourceType: 'instance' as const,
        Tags: tags(o, n.name, [
          { Key: 'failover:managed', Value: o.managedTag },
          { Key: 'failover:cluster', Value: o.cluster },
        ]),
      },
    ],
    ...(o.userData ? { UserData: Buffer.from(o.userData(n.name)).toString('base64') } : {}),
  };
  // A new instance profile takes a few seconds to be usable by EC2 ("Invalid IAM Instance Profile").
  const started = Date.now();
  for (;;) {
    try {
      const instance = (await ec2.send(new RunInstancesCommand(input))).Instances?.[0];
      const eni =
        instance?.NetworkInterfaces?.find((x) => x.Attachment?.DeviceIndex === 0) ??
        instance?.NetworkInterfaces?.[0];
      if (!instance?.InstanceId || !eni?.NetworkInterfaceId || !instance.PrivateIpAddress)
        throw new Error('RunInstances returned no instance');
      const instanceId = instance.InstanceId;
      ledger.add({ kind: 'instance', id: instanceId, detail: `${n.name}, ${o.instanceType}, ${n.az}` }, () =>
        terminate(ec2, instanceId, o.terminateTimeoutMs),
      );
      return {
        name: n.name,
        instanceId,
        eni: eni.NetworkInterfaceId,
        az: n.az,
        privateIp: instance.PrivateIpAddress,
      };
    } catch (e) {
      const message = (e as Error).message;
      if (!/instance profile/i.test(message) || Date.now() - started > 90_000) throw e;
      o.say(`  the instance profile is not usable yet (${message}); trying again in 5 s`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

/** Terminates an instance and waits until it is gone (its ENI and addresses with it). */
async function terminate(ec2: EC2Client, instanceId: string, timeoutMs: number): Promise<void> {
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  const started = Date.now();
  for (;;) {
    const state = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })))
      .Reservations?.[0]?.Instances?.[0]?.State?.Name;
    if (state === 'terminated' || state === undefined) return;
    if (Date.now() - started > timeoutMs)
      throw new Error(`instance ${instanceId} is still ${state} after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 5000));
  }
}
