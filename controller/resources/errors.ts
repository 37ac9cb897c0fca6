/**
 * Typed errors of the entry-point resources (vip, eip, dns) and the mapping of EC2 / Route 53 error
 * codes onto them. Codes are stable (alerts and the README's error table use them); messages name
 * the thing that is wrong and what to change, usually with the AWS CLI command that shows or fixes it.
 */
import { AwsApiError, toDomainError } from '../../shared/aws/errors';
import { FailoverError, InvalidRequestError, NotFoundError } from '../../shared/base/errors';
import { cidrContains } from '../../shared/base/ipv4';
import type { CheckResult } from '../../shared/core/model';

/** Where a failing id came from, so that the message can say which line of the definition to fix. */
export interface Subject {
  /** Resource name in the cluster definition. */
  resource?: string;
  node?: string;
  eni?: string;
  vpcId?: string;
  routeTableId?: string;
  allocationId?: string;
  hostedZoneId?: string;
  /** Destination of a route, e.g. `172.16.0.10/32`. */
  destination?: string;
}

type Cause = { cause?: unknown };

const of = (s: Subject) => (s.resource ? ` of resource ${s.resource}` : '');

/** A VIP inside the VPC's own address space is routed locally by the VPC: the /32 route is never used. */
export class VipInsideVpcCidrError extends FailoverError {
  readonly vip: string;
  readonly cidr: string;
  constructor(resource: string, vip: string, vpcId: string, cidr: string, allCidrs: readonly string[]) {
    const example =
      ['172.16.0.10', '192.168.0.10', '10.255.0.10', '100.64.0.10'].find(
        (ip) => !allCidrs.some((c) => cidrContains(c, ip)),
      ) ?? '172.16.0.10';
    super(
      'VIP_INSIDE_VPC_CIDR',
      `vip resource ${resource}: VIP ${vip} lies inside ${cidr}, a CIDR block of ${vpcId} (blocks: ${allCidrs.join(', ')}); ` +
        `the VPC delivers its own addresses locally, so a /32 route to it would never be used. ` +
        `Choose an address outside every CIDR block of the VPC (e.g. ${example}) and set it as ip of resource ${resource}`,
    );
    this.vip = vip;
    this.cidr = cidr;
  }
}

/** No route table of the VPC holds the VIP route and the definition lists none to create it in. */
export class VipRouteTableNotFoundError extends FailoverError {
  constructor(
    resource: string,
    vip: string,
    vpcId: string,
    eni: string,
    tag?: { key: string; value: string },
  ) {
    super(
      'VIP_ROUTE_TABLE_NOT_FOUND',
      `vip resource ${resource}: no route table of ${vpcId}${tag ? ` tagged ${tag.key}=${tag.value}` : ''} has a route to ${vip}/32 ` +
        `and routeTableIds lists none; add the route to the tables the clients use ` +
        `(aws ec2 create-route --route-table-id rtb-... --destination-cidr-block ${vip}/32 --network-interface-id ${eni}) ` +
        `or list those tables under routeTableIds of resource ${resource}`,
    );
  }
}

export class RouteTableNotFoundError extends NotFoundError {
  constructor(routeTableId: string, subject: Subject, options: Cause = {}) {
    super(
      'ROUTE_TABLE_NOT_FOUND',
      `route table ${routeTableId}${subject.resource ? ` (routeTableIds of resource ${subject.resource})` : ''} does not exist` +
        `${subject.vpcId ? ` in ${subject.vpcId}` : ''}; fix routeTableIds ` +
        `(aws ec2 describe-route-tables${subject.vpcId ? ` --filters Name=vpc-id,Values=${subject.vpcId}` : ''} lists the tables)`,
      options,
    );
  }
}

/** ReplaceRoute found no route to the destination (it was deleted after it was read). */
export class RouteNotFoundError extends NotFoundError {
  constructor(subject: Subject, options: Cause = {}) {
    const dest = subject.destination ?? 'the VIP';
    super(
      'ROUTE_NOT_FOUND',
      `route table ${subject.routeTableId ?? '?'} has no route to ${dest}${of(subject)} (removed since it was read); ` +
        `list the table under routeTableIds so that the route is created, or add it: aws ec2 create-route ` +
        `--route-table-id ${subject.routeTableId ?? 'rtb-...'} --destination-cidr-block ${dest} --network-interface-id ${subject.eni ?? 'eni-...'}`,
      options,
    );
  }
}

export class EniNotFoundError extends NotFoundError {
  constructor(eni: string, subject: Subject, options: Cause = {}) {
    const where = subject.node
      ? `eni of node ${subject.node}${subject.resource ? ` (or eni.${subject.node} of resource ${subject.resource})` : ''}`
      : 'the eni settings';
    super(
      'ENI_NOT_FOUND',
      `network interface ${eni}${subject.node ? ` (node ${subject.node})` : ''}${of(subject)} does not exist; ` +
        `fix ${where} in the cluster definition (aws ec2 describe-instances --instance-ids i-... shows an instance's ENIs)`,
      options,
    );
  }
}

/** A route may only target an ENI of the route table's own VPC. */
export class EniNotInVpcError extends FailoverError {
  constructor(eni: string, node: string, actualVpc: string, vpcId: string, resource: string) {
    super(
      'ENI_NOT_IN_VPC',
      `network interface ${eni} of node ${node} is in ${actualVpc || 'no VPC'}, not in ${vpcId} of vip resource ${resource}; ` +
        `a route can only target an ENI of its own VPC: fix the node's eni (or eni.${node} of the resource) or the resource's vpcId`,
    );
  }
}

export class VpcNotFoundError extends NotFoundError {
  constructor(vpcId: string, subject: Subject, options: Cause = {}) {
    super(
      'VPC_NOT_FOUND',
      `VPC ${vpcId}${subject.resource ? ` (vpcId of resource ${subject.resource})` : ''} does not exist in this account and region; ` +
        `fix vpcId (aws ec2 describe-vpcs lists the VPCs)`,
      options,
    );
  }
}

export class EipAllocationNotFoundError extends NotFoundError {
  constructor(allocationId: string, subject: Subject, options: Cause = {}) {
    super(
      'EIP_ALLOCATION_NOT_FOUND',
      `Elastic IP allocation ${allocationId}${subject.resource ? ` (allocationId of resource ${subject.resource})` : ''} ` +
        `does not exist in this account and region; fix allocationId (aws ec2 describe-addresses lists them) ` +
        `or allocate one (aws ec2 allocate-address --domain vpc)`,
      options,
    );
  }
}

export class HostedZoneNotFoundError extends NotFoundError {
  constructor(hostedZoneId: string, subject: Subject, options: Cause = {}) {
    super(
      'HOSTED_ZONE_NOT_FOUND',
      `hosted zone ${hostedZoneId}${subject.resource ? ` (hostedZoneId of resource ${subject.resource})` : ''} ` +
        `does not exist or is not visible to this account; fix hostedZoneId (aws route53 list-hosted-zones lists them)`,
      options,
    );
  }
}

/** EC2 drops packets whose destination is not the ENI's own address unless the check is off. */
export class SourceDestCheckEnabledError extends FailoverError {
  readonly eni: string;
  constructor(eni: string, node: string, vip: string) {
    super(
      'SOURCE_DEST_CHECK_ENABLED',
      `source/destination check is enabled on network interface ${eni} of node ${node}: EC2 drops the packets ` +
        `for VIP ${vip}, which is not the interface's own address. Disable it: ` +
        `aws ec2 modify-network-interface-attribute --network-interface-id ${eni} --no-source-dest-check`,
    );
    this.eni = eni;
  }
}

/** The record was written but Route 53 did not report it INSYNC within waitTimeoutSec. */
export class DnsChangeNotInsyncError extends FailoverError {
  constructor(changeId: string, recordName: string, status: string, seconds: number, resource: string) {
    super(
      'DNS_CHANGE_NOT_INSYNC',
      `Route 53 change ${changeId} for ${recordName} is still ${status} after ${seconds} s (waitTimeoutSec of resource ${resource}); ` +
        `the record is written and will propagate: raise waitTimeoutSec or set waitInsync: false`,
      { retryable: true },
    );
  }
}

/** Route 53 refused the change batch (name outside the zone, a conflicting CNAME, ...). */
export class DnsChangeRejectedError extends FailoverError {
  constructor(recordName: string, hostedZoneId: string, reason: string, options: Cause = {}) {
    super(
      'DNS_CHANGE_REJECTED',
      `Route 53 rejected the change of ${recordName} A in zone ${hostedZoneId}: ${reason}; ` +
        `check that recordName lies inside the zone and that no other record type (e.g. CNAME) holds the name`,
      options,
    );
  }
}

/** The id AWS names in its message (the call may have carried several), else the one we sent. */
function idIn(message: string, prefix: string, fallback: string | undefined): string {
  return message.match(new RegExp(`\\b${prefix}-[0-9a-f]+\\b`))?.[0] ?? fallback ?? '(unknown)';
}

/**
 * An EC2 SDK error as a domain error: EC2's not-found codes become the typed errors above, the rest
 * (throttling, permissions, timeouts, aborts) goes through the shared mapping.
 * @param action e.g. `ec2:ReplaceRoute`
 * @param target what it was called on, e.g. `route table rtb-0abc`
 */
export function ec2Error(e: unknown, action: string, target: string, subject: Subject = {}): FailoverError {
  const eni = (m: string, c: unknown) =>
    new EniNotFoundError(idIn(m, 'eni', subject.eni), subject, { cause: c });
  const rtb = (m: string, c: unknown) =>
    new RouteTableNotFoundError(idIn(m, 'rtb', subject.routeTableId), subject, { cause: c });
  const vpc = (m: string, c: unknown) =>
    new VpcNotFoundError(idIn(m, 'vpc', subject.vpcId), subject, { cause: c });
  const alloc = (m: string, c: unknown) =>
    new EipAllocationNotFoundError(idIn(m, 'eipalloc', subject.allocationId), subject, { cause: c });
  return toDomainError(e, {
    action,
    resource: target,
    codes: {
      'InvalidNetworkInterfaceID.NotFound': eni,
      'InvalidNetworkInterfaceID.Malformed': eni,
      'InvalidRouteTableID.NotFound': rtb,
      'InvalidRouteTableID.Malformed': rtb,
      'InvalidVpcID.NotFound': vpc,
      'InvalidVpcID.Malformed': vpc,
      'InvalidAllocationID.NotFound': alloc,
      'InvalidAllocationID.Malformed': alloc,
      // Real AWS and moto both answer ReplaceRoute of a missing route with this code and text.
      InvalidParameterValue: (m, c) =>
        /no route defined/i.test(m)
          ? new RouteNotFoundError(subject, { cause: c })
          : new AwsApiError(action, 'InvalidParameterValue', m, { cause: c }),
    },
  });
}

/** A Route 53 SDK error as a domain error (see {@link ec2Error}). */
export function route53Error(
  e: unknown,
  action: string,
  target: string,
  subject: Subject & { recordName?: string } = {},
): FailoverError {
  const rejected = (m: string, c: unknown) =>
    new DnsChangeRejectedError(subject.recordName ?? '(record)', subject.hostedZoneId ?? '?', m, {
      cause: c,
    });
  return toDomainError(e, {
    action,
    resource: target,
    codes: {
      NoSuchHostedZone: (_m, c) =>
        new HostedZoneNotFoundError(subject.hostedZoneId ?? '?', subject, { cause: c }),
      InvalidChangeBatch: rejected,
      InvalidInput: rejected,
    },
  });
}

/** Runs one SDK call and turns whatever it throws into a domain error with `map`. */
export async function mapped<T>(call: () => Promise<T>, map: (e: unknown) => FailoverError): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw map(e);
  }
}

/**
 * A check that could not be completed: typed errors become `status: 'error'` with their code
 * (decide() treats them by the monitor's onApiError policy); anything else is a bug and is thrown.
 */
export function checkError(e: unknown): CheckResult {
  if (e instanceof FailoverError) return { status: 'error', detail: e.message, code: e.code };
  throw e;
}

/** A driver was handed a resource of another type: a wiring bug, not a configuration problem. */
export function wrongType(driver: string, resource: { type: string; name: string }): FailoverError {
  return new InvalidRequestError(
    `the ${driver} driver was given resource ${resource.name} of type ${resource.type}`,
    'RESOURCE_TYPE_MISMATCH',
  );
}
