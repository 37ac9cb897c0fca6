/**
 * secondaryIp resource: a floating private address of the nodes' common subnet, assigned as a
 * secondary IP to the active node's ENI (AssignPrivateIpAddresses with AllowReassignment: EC2 moves
 * it from whichever ENI holds it). The address is also put on the owner's interface by its agent
 * or guard (the kinds table: onNode `address`), as the route-table VIP is.
 *
 * Read before write: which of the cluster's ENIs hold the address comes from the shared describe
 * of the cluster's ENIs (one DescribeNetworkInterfaces per reconcile); a reconcile that finds it on
 * the owner's ENI alone changes nothing.
 *
 * - activate: assign to the owner's ENI unless it holds it alone; then take it off any other ENI of
 *   the cluster that still lists it (EC2's reassignment does; the emulator does not);
 * - deactivate: unassign from this node's ENI while it holds it (the demoted holder, when reachable);
 * - check: `drift` when another ENI holds it or the owner's does not, saying which.
 */
import {
  AssignPrivateIpAddressesCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type NetworkInterface,
  UnassignPrivateIpAddressesCommand,
} from '@aws-sdk/client-ec2';
import { FailoverError } from '../../shared/base/errors';
import { cidrContains } from '../../shared/base/ipv4';
import type { ResourceConfig, SecondaryIpResource } from '../../shared/config/schema';
import type { CheckResult } from '../../shared/core/model';
import type {
  ActionOutcome,
  CheckRequest,
  PreflightContext,
  ResourceDriver,
  ResourceRequest,
} from '../../shared/core/ports';
import { forget } from './describe-cache';
import { describeEnis, ENIS_KEY_PREFIX, eniFor, preflightEnis } from './ec2-describe';
import { checkError, EniNotFoundError, ec2Error, mapped, wrongType } from './errors';

/** The nodes' ENIs are not in one subnet: a secondary IP cannot move between them. */
export class EnisInDifferentSubnetsError extends FailoverError {
  constructor(resource: string, subnets: Record<string, string>) {
    super(
      'NODES_IN_DIFFERENT_SUBNETS',
      `secondaryIp resource ${resource} needs every node's ENI in one subnet, but they are in ${Object.entries(
        subnets,
      )
        .map(([node, subnet]) => `${subnet} (${node})`)
        .join(', ')}; use a vip resource (a route table /32 works across subnets and zones) instead`,
    );
  }
}

/** The address is not in the subnet of the ENIs it should move between. */
export class SecondaryIpOutsideSubnetError extends FailoverError {
  constructor(resource: string, ip: string, subnet: string, cidr: string) {
    super(
      'SECONDARY_IP_OUTSIDE_SUBNET',
      `secondaryIp resource ${resource}: ${ip} is outside ${subnet} (${cidr}), the subnet of the nodes' ENIs; choose a free address of ${cidr}`,
    );
  }
}

export function createSecondaryIpDriver(ec2: EC2Client): ResourceDriver {
  return {
    activate: (req) => activate(ec2, req),
    deactivate: (req) => deactivate(ec2, req),
    check: (req) => check(ec2, req).catch(checkError),
    preflight: (ctx) => preflight(ec2, ctx),
  };
}

function secondaryIpOf(resource: ResourceConfig): SecondaryIpResource {
  if (resource.type !== 'secondaryIp') throw wrongType('secondaryIp', resource);
  return resource;
}

/** The ENIs of the cluster that list the address as one of theirs (primary or secondary). */
async function holders(
  ec2: EC2Client,
  req: CheckRequest,
  r: SecondaryIpResource,
): Promise<NetworkInterface[]> {
  const wanted = req.config.nodes.map((n) => eniFor(r, n));
  const enis = await describeEnis(ec2, req.cache, req.config, req.signal, wanted);
  const own = eniFor(r, req.node);
  if (!enis.has(own)) throw new EniNotFoundError(own, { resource: r.name, node: req.node.name });
  return [...enis.values()].filter((e) => e.PrivateIpAddresses?.some((a) => a.PrivateIpAddress === r.ip));
}

const ids = (enis: readonly NetworkInterface[]) => enis.map((e) => e.NetworkInterfaceId ?? '?');

async function activate(ec2: EC2Client, req: ResourceRequest): Promise<ActionOutcome> {
  const r = secondaryIpOf(req.resource);
  const eni = eniFor(r, req.node);
  const held = await holders(ec2, req, r);
  const others = held.filter((e) => e.NetworkInterfaceId !== eni);
  const mine = held.length > others.length;
  if (mine && others.length === 0) return { changed: false, detail: `${r.ip}: already on ${eni} alone` };

  const subject = { resource: r.name, node: req.node.name, eni };
  try {
    if (!mine) {
      await req.beforeMutation();
      await mapped(
        () =>
          ec2.send(
            new AssignPrivateIpAddressesCommand({
              NetworkInterfaceId: eni,
              PrivateIpAddresses: [r.ip],
              AllowReassignment: true,
            }),
            { abortSignal: req.signal },
          ),
        (e) => ec2Error(e, 'ec2:AssignPrivateIpAddresses', `network interface ${eni}`, subject),
      );
    }
    // EC2's reassignment has taken it off the other ENIs already; an ENI that still lists it (the
    // emulator's, or one that held it as its own assignment race) gives it up now.
    forget(req.cache, ENIS_KEY_PREFIX);
    const still = (await holders(ec2, req, r)).filter((e) => e.NetworkInterfaceId !== eni);
    for (const other of ids(still)) {
      await req.beforeMutation();
      await mapped(
        () =>
          ec2.send(
            new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: other, PrivateIpAddresses: [r.ip] }),
            { abortSignal: req.signal },
          ),
        (e) => ec2Error(e, 'ec2:UnassignPrivateIpAddresses', `network interface ${other}`, subject),
      );
    }
  } finally {
    forget(req.cache, ENIS_KEY_PREFIX);
  }
  return {
    changed: true,
    detail: `${r.ip}: ${held.length > 0 ? ids(held).join(', ') : 'nowhere'} -> ${eni}`,
  };
}

async function deactivate(ec2: EC2Client, req: ResourceRequest): Promise<ActionOutcome> {
  const r = secondaryIpOf(req.resource);
  const eni = eniFor(r, req.node);
  const held = await holders(ec2, req, r);
  // Another ENI's assignment is the new owner's business.
  if (!held.some((e) => e.NetworkInterfaceId === eni))
    return { changed: false, detail: `${r.ip}: not on ${eni}; left alone` };
  await req.beforeMutation();
  try {
    await mapped(
      () =>
        ec2.send(
          new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: [r.ip] }),
          {
            abortSignal: req.signal,
          },
        ),
      (e) =>
        ec2Error(e, 'ec2:UnassignPrivateIpAddresses', `network interface ${eni}`, {
          resource: r.name,
          node: req.node.name,
          eni,
        }),
    );
  } finally {
    forget(req.cache, ENIS_KEY_PREFIX);
  }
  return { changed: true, detail: `${r.ip}: unassigned from ${eni}` };
}

async function check(ec2: EC2Client, req: CheckRequest): Promise<CheckResult> {
  const r = secondaryIpOf(req.resource);
  const eni = eniFor(r, req.node);
  const held = ids(await holders(ec2, req, r));
  if (held.length === 1 && held[0] === eni) return { status: 'ok', detail: `${r.ip} on ${eni}` };
  const elsewhere = held.filter((id) => id !== eni);
  return {
    status: 'drift',
    detail: held.includes(eni)
      ? `${r.ip} is on ${eni} but also on ${elsewhere.join(', ')}`
      : `${r.ip} is on ${elsewhere.join(', ') || 'no ENI'} instead of ${eni} (${req.node.name})`,
  };
}

/**
 * `failoverctl doctor`: the ENIs, all in one subnet, and the address inside that subnet.
 */
async function preflight(ec2: EC2Client, ctx: PreflightContext): Promise<void> {
  const r = secondaryIpOf(ctx.resource);
  await preflightEnis(ec2, ctx, r, false);
  const enis = await describeEnis(
    ec2,
    ctx.cache,
    ctx.config,
    ctx.signal,
    ctx.members.map((n) => eniFor(r, n)),
  );
  const subnets: Record<string, string> = {};
  for (const n of ctx.members) {
    const subnet = enis.get(eniFor(r, n))?.SubnetId;
    if (subnet) subnets[n.name] = subnet;
  }
  const distinct = [...new Set(Object.values(subnets))];
  const check = `${ctx.label} subnet`;
  if (distinct.length > 1) {
    ctx.report('fail', check, new EnisInDifferentSubnetsError(r.name, subnets).message);
    return;
  }
  const subnet = distinct[0];
  if (!subnet) return;
  const cidr = await mapped(
    async () =>
      (await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnet] }), { abortSignal: ctx.signal }))
        .Subnets?.[0]?.CidrBlock,
    (e) => ec2Error(e, 'ec2:DescribeSubnets', `subnet ${subnet}`, { resource: r.name }),
  );
  if (cidr && !cidrContains(cidr, r.ip))
    ctx.report('fail', check, new SecondaryIpOutsideSubnetError(r.name, r.ip, subnet, cidr).message);
  else ctx.report('ok', check, `every node's ENI in ${subnet}${cidr ? ` (${cidr}), ${r.ip} inside` : ''}`);
  // AssignPrivateIpAddresses takes no DryRun: its permission is not probed here.
}
