/**
 * Test helpers for the entry-point drivers: SDK clients whose calls are recorded (command names,
 * plus a `fence` entry for each beforeMutation), request builders, and readers of the end state
 * in the emulator.
 */
import { DescribeAddressesCommand, DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  ChangeResourceRecordSetsCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { clientConfig } from '../../../controller/aws/clients';
import type { AwsOptions } from '../../../shared/aws/options';
import type { CheckRequest, DescribeCache, ResourceRequest } from '../../../shared/core/ports';
import { aws } from '../support';
import type { Fixture, NodeName } from './fixture';

/** The calls that change AWS; a reconcile that finds everything right makes none of them. */
export const MUTATING = new Set([
  'ReplaceRoute',
  'CreateRoute',
  'AssociateAddress',
  'DisassociateAddress',
  'ChangeResourceRecordSets',
  'ModifyNetworkInterfaceAttribute',
]);

/** What a client under test sent, in order (`fence` marks each beforeMutation). */
export class CallLog {
  readonly calls: string[] = [];
  get mutating(): string[] {
    return this.calls.filter((c) => MUTATING.has(c));
  }
  count(name: string): number {
    return this.calls.filter((c) => c === name).length;
  }
  clear(): void {
    this.calls.length = 0;
  }
  /**
   * True when every mutating call was preceded by a beforeMutation of its own: calls made at once
   * (the route tables of one VIP) each fence first, so fences are never fewer than the mutations
   * sent so far.
   */
  fencedEveryMutation(): boolean {
    let unused = 0;
    for (const c of this.calls) {
      if (c === 'fence') unused++;
      else if (MUTATING.has(c) && unused-- === 0) return false;
    }
    return true;
  }
}

type Tap = (commandName: string, output: unknown, input: unknown) => void;

/** Records command names; `tap` may inspect or alter outputs (e.g. to fake states moto lacks). */
function instrument(client: EC2Client | Route53Client, log: CallLog, tap?: Tap): void {
  (client as EC2Client).middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context.commandName ?? '?').replace(/Command$/, '');
      log.calls.push(name);
      const result = await next(args);
      tap?.(name, result.output, args.input);
      return result;
    },
    { step: 'initialize', name: 'testCallLog' },
  );
}

export function recordedEc2(options: { aws?: AwsOptions; tap?: Tap } = {}): { ec2: EC2Client; log: CallLog } {
  const ec2 = new EC2Client(clientConfig(options.aws ?? aws()));
  const log = new CallLog();
  instrument(ec2, log, options.tap);
  return { ec2, log };
}

export function recordedRoute53(options: { aws?: AwsOptions; tap?: Tap } = {}): {
  route53: Route53Client;
  log: CallLog;
} {
  const route53 = new Route53Client({ ...clientConfig(options.aws ?? aws()), region: 'us-east-1' });
  const log = new CallLog();
  instrument(route53, log, options.tap);
  return { route53, log };
}

function parts(fx: Fixture, resourceName: string, nodeName: NodeName) {
  const group = fx.config.groups.find((g) => g.name === fx.group)!;
  const resource = group.resources.find((r) => r.name === resourceName);
  const node = fx.config.nodes.find((n) => n.name === nodeName);
  if (!resource || !node) throw new Error(`no resource ${resourceName} or node ${nodeName} in the fixture`);
  return { resource, node };
}

export interface RequestOptions {
  log?: CallLog;
  cache?: DescribeCache;
  signal?: AbortSignal;
  /** Replaces the epoch fence (e.g. to make it fail as a stale epoch would). */
  beforeMutation?: () => Promise<void>;
  /** Use this definition instead of the fixture's (e.g. with a broken setting). */
  config?: Fixture['config'];
}

/** A ResourceRequest for `resourceName` on `nodeName`; each beforeMutation is logged as `fence`. */
export function request(
  fx: Fixture,
  resourceName: string,
  nodeName: NodeName,
  options: RequestOptions = {},
): ResourceRequest {
  const config = options.config ?? fx.config;
  const { resource, node } = parts({ ...fx, config }, resourceName, nodeName);
  return {
    cluster: fx.cluster,
    group: fx.group,
    epoch: 7,
    holder: 'test-invocation',
    beforeMutation: async () => {
      options.log?.calls.push('fence');
      await options.beforeMutation?.();
    },
    signal: options.signal ?? new AbortController().signal,
    cache: options.cache ?? new Map(),
    resource,
    node,
    config,
  };
}

export function checkRequest(
  fx: Fixture,
  resourceName: string,
  nodeName: NodeName,
  options: Pick<RequestOptions, 'cache' | 'signal' | 'config'> = {},
): CheckRequest {
  const config = options.config ?? fx.config;
  const { resource, node } = parts({ ...fx, config }, resourceName, nodeName);
  return {
    cache: options.cache ?? new Map(),
    cluster: fx.cluster,
    group: fx.group,
    resource,
    node,
    config,
    signal: options.signal ?? new AbortController().signal,
  };
}

/** A copy of the fixture's definition with one resource's settings changed. */
export function withResource(
  fx: Fixture,
  resourceName: string,
  patch: Record<string, unknown>,
): Fixture['config'] {
  const config = structuredClone(fx.config);
  const group = config.groups.find((g) => g.name === fx.group)!;
  group.resources = group.resources.map((r) =>
    r.name === resourceName ? ({ ...r, ...patch } as typeof r) : r,
  );
  return config;
}

/** route table id -> { target ENI, state } of the route to `dest`, read from the emulator. */
export async function vipRoutes(
  fx: Fixture,
  dest = `${fx.vip}/32`,
): Promise<Record<string, { eni: string | undefined; state: string | undefined }>> {
  const res = await fx.ec2.send(
    new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [fx.vpcId] }] }),
  );
  const out: Record<string, { eni: string | undefined; state: string | undefined }> = {};
  for (const t of res.RouteTables ?? []) {
    const route = t.Routes?.find((r) => r.DestinationCidrBlock === dest);
    if (route) out[t.RouteTableId!] = { eni: route.NetworkInterfaceId, state: route.State };
  }
  return out;
}

/** The ENI (or undefined) the fixture's Elastic IP is associated with, read from the emulator. */
export async function eipEni(fx: Fixture, allocationId = fx.allocationId) {
  const res = await fx.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
  const a = res.Addresses?.[0];
  return { eni: a?.NetworkInterfaceId || undefined, privateIp: a?.PrivateIpAddress || undefined };
}

/** The fixture's A record as { ttl, values }, or undefined when it does not exist. */
export async function aRecord(fx: Fixture, name = fx.recordName) {
  const res = await fx.route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: fx.hostedZoneId }));
  const rec = res.ResourceRecordSets?.find((r) => r.Name === name && r.Type === 'A');
  return rec ? { ttl: rec.TTL, values: (rec.ResourceRecords ?? []).map((v) => v.Value) } : undefined;
}

async function change(fx: Fixture, action: 'UPSERT' | 'DELETE', values: string[], ttl: number) {
  await fx.route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: fx.hostedZoneId,
      ChangeBatch: {
        Changes: [
          {
            Action: action,
            ResourceRecordSet: {
              Name: fx.recordName,
              Type: 'A',
              TTL: ttl,
              ResourceRecords: values.map((Value) => ({ Value })),
            },
          },
        ],
      },
    }),
  );
}

/** Sets the fixture's A record behind the driver's back. */
export const upsert = (fx: Fixture, values: string[], ttl = 30) => change(fx, 'UPSERT', values, ttl);
/** Deletes the fixture's A record (exact values and TTL) behind the driver's back. */
export const remove = (fx: Fixture, values: string[], ttl = 30) => change(fx, 'DELETE', values, ttl);
