/**
 * eip resource: the Elastic IP allocation associated with the active node's ENI (optionally a given
 * private IP of it). A remap may be charged, so the association is read first (DescribeAddresses,
 * shared by the cluster's allocations per reconcile) and compared by exact id: a reconcile that
 * finds it right makes no call that changes anything.
 */
import {
  type Address,
  AssociateAddressCommand,
  DisassociateAddressCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { awsErrorCode } from '../../shared/aws/errors';
import type { EipResource, ResourceConfig } from '../../shared/config/schema';
import type { CheckResult } from '../../shared/core/model';
import type {
  ActionOutcome,
  CheckRequest,
  PreflightContext,
  ResourceDriver,
  ResourceRequest,
} from '../../shared/core/ports';
import { forget } from './describe-cache';
import { describeAddresses, eniFor, preflightEnis } from './ec2-describe';
import { checkError, EipAllocationNotFoundError, ec2Error, mapped, wrongType } from './errors';

/**
 * The eip driver over one EC2 client.
 * - activate: AssociateAddress (AllowReassociation) unless already associated exactly as wanted;
 * - deactivate: DisassociateAddress only while it is associated with this node's ENI;
 * - check: `drift` when it is associated elsewhere or nowhere, saying where.
 */
export function createEipDriver(ec2: EC2Client): ResourceDriver {
  return {
    activate: (req) => activate(ec2, req),
    deactivate: (req) => deactivate(ec2, req),
    check: (req) => check(ec2, req).catch(checkError),
    preflight: (ctx) => preflight(ec2, ctx),
  };
}

/** `failoverctl doctor`: the ENIs, the allocation, and whether the role in use may associate it. */
async function preflight(ec2: EC2Client, ctx: PreflightContext): Promise<void> {
  const r = eipOf(ctx.resource);
  const check = `${ctx.label} allocation ${r.allocationId}`;
  await preflightEnis(ec2, ctx, r, false);
  const addresses = await describeAddresses(ec2, ctx.cache, ctx.config, ctx.signal, [r.allocationId]);
  const a = addresses.get(r.allocationId);
  if (!a) {
    ctx.report('fail', check, `no such Elastic IP allocation in ${ctx.config.region}; fix allocationId`);
    return;
  }
  ctx.report(
    'ok',
    check,
    `${a.PublicIp}${a.NetworkInterfaceId ? ` on ${a.NetworkInterfaceId}` : ', not associated'}`,
  );
  const eni = ctx.members[0] ? eniFor(r, ctx.members[0]) : undefined;
  if (eni) {
    await ctx.dryRun(`${ctx.label} permission ec2:AssociateAddress`, () =>
      ec2.send(
        new AssociateAddressCommand({
          DryRun: true,
          AllocationId: r.allocationId,
          NetworkInterfaceId: eni,
          AllowReassociation: true,
        }),
      ),
    );
  }
}

function eipOf(resource: ResourceConfig): EipResource {
  if (resource.type !== 'eip') throw wrongType('eip', resource);
  return resource;
}

/** The wanted association on a node. */
interface Wanted {
  eni: string;
  /** Only when the definition names one; otherwise any address of the ENI (its primary by default). */
  privateIp?: string;
}

function wanted(r: EipResource, req: { node: ResourceRequest['node'] }): Wanted {
  const privateIp = r.privateIp?.[req.node.name];
  return { eni: eniFor(r, req.node), ...(privateIp ? { privateIp } : {}) };
}

async function readAddress(ec2: EC2Client, req: CheckRequest, r: EipResource): Promise<Address> {
  const addresses = await describeAddresses(ec2, req.cache, req.config, req.signal, [r.allocationId]);
  const address = addresses.get(r.allocationId);
  if (!address) throw new EipAllocationNotFoundError(r.allocationId, { resource: r.name });
  return address;
}

// moto reports an unassociated address with NetworkInterfaceId "" rather than leaving it out.
const eniOf = (a: Address) => a.NetworkInterfaceId || undefined;

function matches(a: Address, w: Wanted): boolean {
  return eniOf(a) === w.eni && (w.privateIp === undefined || a.PrivateIpAddress === w.privateIp);
}

function describe(a: Address): string {
  const eni = eniOf(a);
  if (!eni) return 'not associated';
  return `${eni}${a.PrivateIpAddress ? ` (${a.PrivateIpAddress})` : ''}`;
}

const label = (r: EipResource, a: Address) => `${r.allocationId}${a.PublicIp ? ` (${a.PublicIp})` : ''}`;

async function activate(ec2: EC2Client, req: ResourceRequest): Promise<ActionOutcome> {
  const r = eipOf(req.resource);
  const w = wanted(r, req);
  const address = await readAddress(ec2, req, r);
  const target = `${w.eni}${w.privateIp ? ` (${w.privateIp})` : ''}`;
  if (matches(address, w)) return { changed: false, detail: `${label(r, address)}: already on ${target}` };

  await req.beforeMutation();
  try {
    await mapped(
      () =>
        ec2.send(
          new AssociateAddressCommand({
            AllocationId: r.allocationId,
            NetworkInterfaceId: w.eni,
            ...(w.privateIp ? { PrivateIpAddress: w.privateIp } : {}),
            AllowReassociation: true,
          }),
          { abortSignal: req.signal },
        ),
      (e) =>
        ec2Error(e, 'ec2:AssociateAddress', `Elastic IP ${r.allocationId}`, {
          resource: r.name,
          node: req.node.name,
          eni: w.eni,
          allocationId: r.allocationId,
        }),
    );
  } finally {
    forget(req.cache, 'ec2:DescribeAddresses:');
  }
  return { changed: true, detail: `${label(r, address)}: ${describe(address)} -> ${target}` };
}

async function deactivate(ec2: EC2Client, req: ResourceRequest): Promise<ActionOutcome> {
  const r = eipOf(req.resource);
  const w = wanted(r, req);
  const address = await readAddress(ec2, req, r);
  // Another node's association is its business (it may be the new owner already).
  if (eniOf(address) !== w.eni || !address.AssociationId)
    return {
      changed: false,
      detail: `${label(r, address)}: ${describe(address)}, not on ${w.eni}; left alone`,
    };

  await req.beforeMutation();
  try {
    await ec2.send(new DisassociateAddressCommand({ AssociationId: address.AssociationId }), {
      abortSignal: req.signal,
    });
  } catch (e) {
    // Gone since it was read: the wanted end state.
    if (awsErrorCode(e) === 'InvalidAssociationID.NotFound')
      return { changed: false, detail: `${label(r, address)}: already disassociated from ${w.eni}` };
    throw ec2Error(e, 'ec2:DisassociateAddress', `Elastic IP ${r.allocationId}`, {
      resource: r.name,
      allocationId: r.allocationId,
    });
  } finally {
    forget(req.cache, 'ec2:DescribeAddresses:');
  }
  return { changed: true, detail: `${label(r, address)}: disassociated from ${describe(address)}` };
}

async function check(ec2: EC2Client, req: CheckRequest): Promise<CheckResult> {
  const r = eipOf(req.resource);
  const w = wanted(r, req);
  const address = await readAddress(ec2, req, r);
  const target = `${w.eni}${w.privateIp ? ` (${w.privateIp})` : ''}`;
  if (matches(address, w)) return { status: 'ok', detail: `${label(r, address)} on ${target}` };
  const where = eniOf(address) ? `is associated with ${describe(address)}` : 'is not associated';
  return {
    status: 'drift',
    detail: `${label(r, address)} ${where} instead of ${target} (node ${req.node.name})`,
  };
}
