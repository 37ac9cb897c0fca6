/**
 * The EC2 describe calls of the vip and eip drivers, memoized per reconcile in the DescribeCache:
 * one DescribeVpcs and one DescribeRouteTables per VPC, one DescribeNetworkInterfaces for all ENIs
 * of the cluster, one DescribeAddresses for all its allocations. Ids go in filters, not in the id
 * lists, so that one wrong id in the definition does not fail the call for every resource: a
 * missing id is simply absent and the driver that needs it raises the typed error.
 */
import {
  type Address,
  DescribeAddressesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  DescribeVpcsCommand,
  type EC2Client,
  type NetworkInterface,
  type RouteTable,
} from '@aws-sdk/client-ec2';
import { InvalidRequestError } from '../../shared/base/errors';
import type { ClusterConfig } from '../../shared/config/load';
import type { NodeConfig } from '../../shared/config/schema';
import type { DescribeCache, PreflightContext } from '../../shared/core/ports';
import { memo } from './describe-cache';
import { ec2Error, mapped, type Subject } from './errors';

/** EC2 accepts at most 200 values per filter. */
const FILTER_VALUES = 200;

const chunks = <T>(items: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += FILTER_VALUES) out.push(items.slice(i, i + FILTER_VALUES));
  return out;
};

const sortedUnique = (ids: Iterable<string | undefined>): string[] =>
  [...new Set([...ids].filter((x): x is string => typeof x === 'string'))].sort();

/**
 * The ENI a vip or eip resource uses on a node: the resource's own map first (multi-NIC
 * instances), else the node's primary ENI. The definition's rules guarantee one of them.
 */
export function eniFor(
  resource: { name?: string; eni?: Record<string, string> | undefined },
  node: NodeConfig,
): string {
  const eni = resource.eni?.[node.name] ?? node.eni;
  if (!eni)
    throw new InvalidRequestError(
      `resource ${resource.name ?? '?'} has no ENI for node ${node.name}: set eni on the node or eni.${node.name} on the resource`,
      'ENI_NOT_CONFIGURED',
    );
  return eni;
}

export const vpcKey = (vpcId: string) => `ec2:DescribeVpcs:${vpcId}`;
export const routeTablesKey = (vpcId: string) => `ec2:DescribeRouteTables:${vpcId}`;

/** Every ENI the definition names (nodes and per-resource maps): the key of the shared call. */
export function clusterEnis(config: ClusterConfig, extra: readonly string[] = []): string[] {
  const ids: (string | undefined)[] = [...extra, ...config.nodes.map((n) => n.eni)];
  for (const g of config.groups)
    for (const r of g.resources) if ('eni' in r && r.eni) ids.push(...Object.values(r.eni));
  return sortedUnique(ids);
}

/** Every Elastic IP allocation the definition names. */
export function clusterAllocations(config: ClusterConfig, extra: readonly string[] = []): string[] {
  const ids: string[] = [...extra];
  for (const g of config.groups) for (const r of g.resources) if (r.type === 'eip') ids.push(r.allocationId);
  return sortedUnique(ids);
}

/**
 * Preflight of the ENIs a resource uses on each node (`failoverctl doctor`): they exist, are
 * attached to that node's instance, and, for a floating address routed to them, accept traffic for
 * other addresses (source/destination check off).
 */
export async function preflightEnis(
  ec2: EC2Client,
  ctx: PreflightContext,
  resource: { name?: string; eni?: Record<string, string> | undefined },
  needsSourceDestOff: boolean,
): Promise<void> {
  const wanted = ctx.members.map((n) => eniFor(resource, n));
  const enis = await describeEnis(ec2, ctx.cache, ctx.config, ctx.signal, wanted);
  for (const n of ctx.members) {
    const id = eniFor(resource, n);
    const eni = enis.get(id);
    const check = `${ctx.label} ENI ${id} (${n.name})`;
    if (!eni)
      ctx.report(
        'fail',
        check,
        `ENI not found; set the ENI of node ${n.name} (eni on the node or eni.${n.name} on the resource)`,
      );
    else if (eni.Attachment?.InstanceId && eni.Attachment.InstanceId !== n.instanceId)
      ctx.report('fail', check, `attached to ${eni.Attachment.InstanceId}, not to ${n.instanceId}`);
    else if (needsSourceDestOff && eni.SourceDestCheck !== false)
      ctx.report(
        'fail',
        check,
        `source/destination check is enabled, so traffic to the VIP is dropped: aws ec2 modify-network-interface-attribute --network-interface-id ${id} --no-source-dest-check`,
      );
    else
      ctx.report(
        'ok',
        check,
        needsSourceDestOff ? 'attached, source/destination check disabled' : 'attached',
      );
  }
}

/** Every key of the shared ENI describes starts so (forget() them after a change). */
export const ENIS_KEY_PREFIX = 'ec2:DescribeNetworkInterfaces:';
export const enisKey = (ids: readonly string[]) => `${ENIS_KEY_PREFIX}${ids.join(',')}`;
export const addressesKey = (ids: readonly string[]) => `ec2:DescribeAddresses:${ids.join(',')}`;

/**
 * The IPv4 CIDR blocks of a VPC: the primary and every secondary block that is associated or being
 * associated. Throws VPC_NOT_FOUND when the VPC does not exist.
 */
export function describeVpcCidrs(
  ec2: EC2Client,
  cache: DescribeCache,
  vpcId: string,
  signal: AbortSignal,
  subject: Subject = {},
): Promise<string[]> {
  return memo(cache, vpcKey(vpcId), async () => {
    const res = await mapped(
      () => ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }), { abortSignal: signal }),
      (e) => ec2Error(e, 'ec2:DescribeVpcs', `VPC ${vpcId}`, { ...subject, vpcId }),
    );
    const vpc = res.Vpcs?.find((v) => v.VpcId === vpcId);
    if (!vpc)
      throw ec2Error({ name: 'InvalidVpcID.NotFound', message: vpcId }, 'ec2:DescribeVpcs', vpcId, subject);
    const blocks = (vpc.CidrBlockAssociationSet ?? [])
      .filter((a) => a.CidrBlockState?.State === 'associated' || a.CidrBlockState?.State === 'associating')
      .map((a) => a.CidrBlock);
    return sortedUnique([vpc.CidrBlock, ...blocks]);
  });
}

/** All route tables of a VPC (tags and routes included). */
export function describeRouteTables(
  ec2: EC2Client,
  cache: DescribeCache,
  vpcId: string,
  signal: AbortSignal,
): Promise<RouteTable[]> {
  return memo(cache, routeTablesKey(vpcId), () =>
    mapped(
      async () => {
        const tables: RouteTable[] = [];
        let token: string | undefined;
        do {
          const page = await ec2.send(
            new DescribeRouteTablesCommand({
              Filters: [{ Name: 'vpc-id', Values: [vpcId] }],
              NextToken: token,
            }),
            { abortSignal: signal },
          );
          tables.push(...(page.RouteTables ?? []));
          token = page.NextToken;
        } while (token);
        return tables;
      },
      (e) => ec2Error(e, 'ec2:DescribeRouteTables', `route tables of ${vpcId}`, { vpcId }),
    ),
  );
}

/** The cluster's ENIs by id; ids that do not exist are absent. */
export function describeEnis(
  ec2: EC2Client,
  cache: DescribeCache,
  config: ClusterConfig,
  signal: AbortSignal,
  wanted: readonly string[],
): Promise<Map<string, NetworkInterface>> {
  const ids = clusterEnis(config, wanted);
  return memo(cache, enisKey(ids), () =>
    mapped(
      async () => {
        const out = new Map<string, NetworkInterface>();
        for (const part of chunks(ids)) {
          let token: string | undefined;
          do {
            const page = await ec2.send(
              new DescribeNetworkInterfacesCommand({
                Filters: [{ Name: 'network-interface-id', Values: part }],
                NextToken: token,
              }),
              { abortSignal: signal },
            );
            for (const n of page.NetworkInterfaces ?? [])
              if (n.NetworkInterfaceId) out.set(n.NetworkInterfaceId, n);
            token = page.NextToken;
          } while (token);
        }
        return out;
      },
      (e) => ec2Error(e, 'ec2:DescribeNetworkInterfaces', `network interfaces ${ids.join(', ')}`),
    ),
  );
}

/** The cluster's Elastic IPs by allocation id; allocations that do not exist are absent. */
export function describeAddresses(
  ec2: EC2Client,
  cache: DescribeCache,
  config: ClusterConfig,
  signal: AbortSignal,
  wanted: readonly string[],
): Promise<Map<string, Address>> {
  const ids = clusterAllocations(config, wanted);
  return memo(cache, addressesKey(ids), () =>
    mapped(
      async () => {
        const out = new Map<string, Address>();
        for (const part of chunks(ids)) {
          const res = await ec2.send(
            new DescribeAddressesCommand({ Filters: [{ Name: 'allocation-id', Values: part }] }),
            { abortSignal: signal },
          );
          for (const a of res.Addresses ?? []) if (a.AllocationId) out.set(a.AllocationId, a);
        }
        return out;
      },
      (e) => ec2Error(e, 'ec2:DescribeAddresses', `Elastic IP allocations ${ids.join(', ')}`),
    ),
  );
}
