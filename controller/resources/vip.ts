/**
 * vip resource: a /32 outside the VPC's CIDR blocks, routed to the active node's ENI in every route
 * table of the VPC that holds it (ReplaceRoute), plus the tables the definition lists (CreateRoute
 * where the route is missing). Read before write: a table already right is not touched, except a
 * `blackhole` route, which is replaced even when its target is already the wanted ENI.
 *
 * The node must also hold the VIP on its interface; the exec path and the agent do that. This
 * driver covers the route side and the ENI's source/destination check.
 */
import {
  CreateRouteCommand,
  type EC2Client,
  type NetworkInterface,
  ReplaceRouteCommand,
  type Route,
  type RouteTable,
} from '@aws-sdk/client-ec2';
import { awsErrorCode } from '../../shared/aws/errors';
import { FailoverError } from '../../shared/base/errors';
import { cidrContains } from '../../shared/base/ipv4';
import type { ClusterConfig } from '../../shared/config/load';
import type { NodeConfig, ResourceConfig, VipResource } from '../../shared/config/schema';
import type { CheckResult } from '../../shared/core/model';
import type {
  ActionOutcome,
  CheckRequest,
  DescribeCache,
  PreflightContext,
  ResourceDriver,
  ResourceRequest,
} from '../../shared/core/ports';
import {
  describeEnis,
  describeRouteTables,
  describeVpcCidrs,
  eniFor,
  preflightEnis,
  routeTablesKey,
} from './ec2-describe';
import {
  checkError,
  EniNotFoundError,
  EniNotInVpcError,
  ec2Error,
  RouteNotFoundError,
  RouteTableNotFoundError,
  SourceDestCheckEnabledError,
  VipInsideVpcCidrError,
  VipRouteTableNotFoundError,
  wrongType,
} from './errors';

/** One route table the VIP route must be in, with the route as read (absent: to be created). */
interface TableState {
  id: string;
  route?: Route;
}

/**
 * The vip driver over one EC2 client.
 * - activate: refuses a VIP inside the VPC's CIDR blocks and an ENI with source/dest check on,
 *   then points the route at the node's ENI wherever it does not already (zero calls otherwise);
 * - deactivate: leaves the route (it cannot point nowhere; the next activation moves it);
 * - check: `drift` naming each table that points elsewhere, `error` for missing resources, the
 *   CIDR rule, or source/dest check enabled on the active or a standby node's ENI.
 */
export function createVipDriver(ec2: EC2Client): ResourceDriver {
  return {
    activate: (req) => activate(ec2, req),
    deactivate: async (req) => {
      const r = vipOf(req.resource);
      return {
        changed: false,
        detail: `${r.ip}/32: route left in place (a VPC route cannot point nowhere); the next activation moves it`,
      };
    },
    check: (req) => check(ec2, req).catch(checkError),
    preflight: (ctx) => preflight(ec2, ctx),
  };
}

/**
 * `failoverctl doctor`: the ENIs (attached, source/destination check off), the VIP outside every
 * CIDR block of its VPC, the route tables that hold or are listed for the /32, and whether the role
 * in use may replace the route.
 */
async function preflight(ec2: EC2Client, ctx: PreflightContext): Promise<void> {
  const r = vipOf(ctx.resource);
  const label = ctx.label;
  await preflightEnis(ec2, ctx, r, true);
  const cidrs = await describeVpcCidrs(ec2, ctx.cache, r.vpcId, ctx.signal);
  const inside = cidrs.find((c) => cidrContains(c, r.ip));
  if (inside)
    ctx.report(
      'fail',
      `${label} VIP ${r.ip}`,
      `inside ${inside} of ${r.vpcId}: a route table cannot route a VIP of its own VPC; choose an address outside ${cidrs.join(', ')}`,
    );
  else
    ctx.report('ok', `${label} VIP ${r.ip}`, `outside the CIDR blocks of ${r.vpcId} (${cidrs.join(', ')})`);
  const tables = await describeRouteTables(ec2, ctx.cache, r.vpcId, ctx.signal);
  const holding = tables
    .filter((t) => t.Routes?.some((x) => x.DestinationCidrBlock === `${r.ip}/32`))
    .map((t) => t.RouteTableId!);
  const listed = r.routeTableIds ?? [];
  const missing = listed.filter((id) => !tables.some((t) => t.RouteTableId === id));
  if (missing.length)
    ctx.report('fail', `${label} route tables`, `listed but not in ${r.vpcId}: ${missing.join(', ')}`);
  if (holding.length === 0 && listed.length === 0) {
    ctx.report(
      'fail',
      `${label} route tables`,
      `no route table of ${r.vpcId} holds ${r.ip}/32; add the route (target: the active node's ENI) or list routeTableIds`,
    );
  } else
    ctx.report(
      'ok',
      `${label} route tables`,
      `holding ${r.ip}/32: ${holding.join(', ') || '(none yet)'}${listed.length ? `; listed: ${listed.join(', ')}` : ''}`,
    );
  const table = holding[0] ?? listed[0];
  const eni = ctx.members[0] ? eniFor(r, ctx.members[0]) : undefined;
  if (table && eni) {
    await ctx.dryRun(`${label} permission ec2:ReplaceRoute`, () =>
      ec2.send(
        new ReplaceRouteCommand({
          DryRun: true,
          RouteTableId: table,
          DestinationCidrBlock: `${r.ip}/32`,
          NetworkInterfaceId: eni,
        }),
      ),
    );
  }
}

function vipOf(resource: ResourceConfig): VipResource {
  if (resource.type !== 'vip') throw wrongType('vip', resource);
  return resource;
}

async function activate(ec2: EC2Client, req: ResourceRequest): Promise<ActionOutcome> {
  const r = vipOf(req.resource);
  const eni = eniFor(r, req.node);
  const dest = `${r.ip}/32`;
  // The three reads at once (a failover waits for the slowest, not for their sum); their errors in
  // this order, whichever came back first.
  const [outside, enis, found] = await Promise.allSettled([
    assertOutsideVpc(ec2, req.cache, r, req.signal),
    describeEnis(ec2, req.cache, req.config, req.signal, [eni]),
    vipTables(ec2, req.cache, r, eni, req.signal),
  ]);
  if (outside.status === 'rejected') throw outside.reason;
  if (enis.status === 'rejected') throw enis.reason;
  assertUsableEni(enis.value, eni, req.node.name, r);
  if (found.status === 'rejected') throw found.reason;
  const tables = found.value;

  // Every table at once, each call behind its own fence (req.beforeMutation).
  let changed = false;
  const moves = await Promise.allSettled(
    tables.map(async (t): Promise<string> => {
      if (routesTo(t.route, eni)) return `${t.id}: already ${eni}`;
      changed = true;
      if (t.route) {
        if (!(await replaceRoute(ec2, req, t.id, dest, eni))) await createRoute(ec2, req, t.id, dest, eni);
        const was = `${targetOf(t.route)}${t.route.State === 'blackhole' ? ' (blackhole)' : ''}`;
        return `${t.id}: ${was} -> ${eni}`;
      }
      await createRoute(ec2, req, t.id, dest, eni);
      return `${t.id}: created -> ${eni}`;
    }),
  );
  // Also after a failure part-way: some tables may have changed.
  if (changed) req.cache.delete(routeTablesKey(r.vpcId));
  const failed = moves.find((m) => m.status === 'rejected');
  if (failed) throw failed.reason;
  const parts = moves.map((m) => (m.status === 'fulfilled' ? m.value : ''));
  return { changed, detail: `${dest}: ${parts.join('; ')}` };
}

async function check(ec2: EC2Client, req: CheckRequest): Promise<CheckResult> {
  const r = vipOf(req.resource);
  const eni = eniFor(r, req.node);
  const dest = `${r.ip}/32`;
  await assertOutsideVpc(ec2, req.cache, r, req.signal);
  const standbys = groupNodes(req.config, req.group).filter((n) => n.name !== req.node.name);
  const standbyEnis = standbys.map((n) => [n, eniFor(r, n)] as const);
  const enis = await describeEnis(ec2, req.cache, req.config, req.signal, [
    eni,
    ...standbyEnis.map(([, e]) => e),
  ]);
  assertUsableEni(enis, eni, req.node.name, r);
  const tables = await vipTables(ec2, req.cache, r, eni, req.signal);

  const wrong = tables.filter((t) => !routesTo(t.route, eni));
  if (wrong.length > 0) {
    const detail = wrong
      .map((t) =>
        t.route
          ? `route to ${dest} in ${t.id} points to ${targetOf(t.route)}${t.route.State === 'blackhole' ? ' (blackhole)' : ''} instead of ${eni} (node ${req.node.name})`
          : `${t.id} has no route to ${dest} (it should point to ${eni} of node ${req.node.name})`,
      )
      .join('; ');
    return { status: 'drift', detail };
  }
  // The route is right; a standby that could not take it over is worth an alert now, not at failover.
  for (const [node, standbyEni] of standbyEnis) {
    try {
      assertUsableEni(enis, standbyEni, node.name, r);
    } catch (e) {
      if (!(e instanceof FailoverError)) throw e;
      return {
        status: 'error',
        detail: `${dest} is right on ${eni}, but a failover to standby ${node.name} would fail: ${e.message}`,
        code: e.code,
      };
    }
  }
  return { status: 'ok', detail: `${dest} -> ${eni} in ${tables.map((t) => t.id).join(', ')}` };
}

/** The members of the group, in priority order (the definition's rules guarantee they exist). */
function groupNodes(config: ClusterConfig, group: string): NodeConfig[] {
  const names = config.groups.find((g) => g.name === group)?.nodes ?? [];
  return names.map((n) => config.nodes.find((x) => x.name === n)).filter((n): n is NodeConfig => !!n);
}

/** AWS accepts a /32 inside the VPC's own blocks, but the VPC's local route wins: refuse it here. */
async function assertOutsideVpc(
  ec2: EC2Client,
  cache: DescribeCache,
  r: VipResource,
  signal: AbortSignal,
): Promise<void> {
  const cidrs = await describeVpcCidrs(ec2, cache, r.vpcId, signal, { resource: r.name });
  const inside = cidrs.find((c) => cidrContains(c, r.ip));
  if (inside) throw new VipInsideVpcCidrError(r.name, r.ip, r.vpcId, inside, cidrs);
}

function assertUsableEni(
  enis: Map<string, NetworkInterface>,
  eni: string,
  node: string,
  r: VipResource,
): void {
  const info = enis.get(eni);
  if (!info) throw new EniNotFoundError(eni, { node, resource: r.name });
  if (info.VpcId !== r.vpcId) throw new EniNotInVpcError(eni, node, info.VpcId ?? '', r.vpcId, r.name);
  // Only an explicit false is safe; EC2 reports the attribute on every ENI.
  if (info.SourceDestCheck !== false) throw new SourceDestCheckEnabledError(eni, node, r.ip);
}

/**
 * The tables the VIP route belongs in: those of the VPC that hold a route to the VIP (restricted to
 * `routeTableTag` when set) and every table in `routeTableIds` (listed explicitly, so always
 * included, tag or not). Sorted by id so that details read the same every time.
 */
async function vipTables(
  ec2: EC2Client,
  cache: DescribeCache,
  r: VipResource,
  eni: string,
  signal: AbortSignal,
): Promise<TableState[]> {
  const dest = `${r.ip}/32`;
  const tables = await describeRouteTables(ec2, cache, r.vpcId, signal);
  const listed = new Set(r.routeTableIds ?? []);
  for (const id of listed) {
    if (!tables.some((t) => t.RouteTableId === id))
      throw new RouteTableNotFoundError(id, { resource: r.name, vpcId: r.vpcId });
  }
  const tagged = (t: RouteTable) =>
    !r.routeTableTag ||
    (t.Tags ?? []).some((k) => k.Key === r.routeTableTag?.key && k.Value === r.routeTableTag?.value);
  const out: TableState[] = [];
  for (const t of tables) {
    const id = t.RouteTableId;
    if (!id) continue;
    const route = t.Routes?.find((x) => x.DestinationCidrBlock === dest);
    if (listed.has(id) || (route && tagged(t))) out.push(route ? { id, route } : { id });
  }
  if (out.length === 0) throw new VipRouteTableNotFoundError(r.name, r.ip, r.vpcId, eni, r.routeTableTag);
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Right when it targets the ENI and is not a blackhole (a blackhole is repaired by a replace). */
function routesTo(route: Route | undefined, eni: string): boolean {
  return !!route && route.NetworkInterfaceId === eni && route.State !== 'blackhole';
}

function targetOf(route: Route): string {
  return (
    route.NetworkInterfaceId ||
    route.InstanceId ||
    route.GatewayId ||
    route.NatGatewayId ||
    route.TransitGatewayId ||
    route.VpcPeeringConnectionId ||
    route.LocalGatewayId ||
    route.CarrierGatewayId ||
    'nothing'
  );
}

/** ReplaceRoute; false when the route has gone since it was read (the caller creates it). */
async function replaceRoute(
  ec2: EC2Client,
  req: ResourceRequest,
  table: string,
  dest: string,
  eni: string,
): Promise<boolean> {
  await req.beforeMutation();
  try {
    await ec2.send(
      new ReplaceRouteCommand({ RouteTableId: table, DestinationCidrBlock: dest, NetworkInterfaceId: eni }),
      { abortSignal: req.signal },
    );
    return true;
  } catch (e) {
    const error = ec2Error(e, 'ec2:ReplaceRoute', `route table ${table}`, subject(req, table, dest, eni));
    if (error instanceof RouteNotFoundError) return false;
    throw error;
  }
}

/** CreateRoute; falls back to ReplaceRoute when the route appeared since it was read. */
async function createRoute(
  ec2: EC2Client,
  req: ResourceRequest,
  table: string,
  dest: string,
  eni: string,
): Promise<void> {
  await req.beforeMutation();
  try {
    await ec2.send(
      new CreateRouteCommand({ RouteTableId: table, DestinationCidrBlock: dest, NetworkInterfaceId: eni }),
      { abortSignal: req.signal },
    );
  } catch (e) {
    if (awsErrorCode(e) !== 'RouteAlreadyExists')
      throw ec2Error(e, 'ec2:CreateRoute', `route table ${table}`, subject(req, table, dest, eni));
    if (!(await replaceRoute(ec2, req, table, dest, eni)))
      throw new RouteNotFoundError(subject(req, table, dest, eni), { cause: e });
  }
}

function subject(req: ResourceRequest, table: string, dest: string, eni: string) {
  const r = req.resource as VipResource;
  return {
    resource: r.name,
    node: req.node.name,
    vpcId: r.vpcId,
    routeTableId: table,
    destination: dest,
    eni,
  };
}
