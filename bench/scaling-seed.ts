/**
 * The steady state of the reconcile scaling benchmark, written directly instead of reconciled to:
 * every group Online on one node at epoch 1, its entry points in their final place. What is
 * written here is what a bring-up through reconcile leaves behind (checked by the benchmark: the
 * first reconcile after seeding must decide an empty plan for every group and make no mutating
 * call), but it takes seconds where the bring-up of 1,000 groups on the emulator took many minutes
 * (a dozen conditional writes and an SSM command per group, and the emulator runs DynamoDB
 * requests one at a time).
 */
import {
  AssociateAddressCommand,
  CreateRouteCommand,
  type EC2Client,
  ReplaceRouteCommand,
} from '@aws-sdk/client-ec2';
import { type Change, ChangeResourceRecordSetsCommand, type Route53Client } from '@aws-sdk/client-route-53';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { normalizeHostedZoneId } from '../controller/resources/dns';
import { eniFor } from '../controller/resources/ec2-describe';
import type { DynamoStore } from '../controller/state/dynamo-store';
import { awsErrorCode } from '../shared/aws/errors';
import type { ClusterConfig } from '../shared/config/load';
import type { GroupConfig, NodeConfig } from '../shared/config/schema';
import { type GroupState, initialGroupState } from '../shared/core/model';
import { keys } from '../shared/table/keys';

/**
 * The record reconcile leaves for a group it started on `owner` (shared/core/decide.ts): a takeover
 * from nobody (epoch 0 -> 1, owner, phase Starting), then start(): `mayRun` and `lastOwner`, the
 * resources activated, phase Online with `healthySince`; the next decision (superviseOnline) finds
 * no monitor finding and nothing to reset, so the record stays as it is. No lock: released.
 */
export function steadyGroupState(group: GroupConfig, owner: string, at: number): GroupState {
  return {
    ...initialGroupState(group, at),
    epoch: 1,
    owner,
    phase: 'Online',
    phaseSince: at,
    desired: 'online',
    mayRun: [owner],
    lastOwner: owner,
    healthySince: at,
    lastError: null,
    updatedAt: at,
  };
}

/** Differences between the seeded records and the records as the store reads them back. */
export function recordDifferences(seeded: readonly GroupState[], stored: readonly GroupState[]): string[] {
  const byName = new Map(stored.map((s) => [s.group, s]));
  const out: string[] = [];
  for (const s of seeded) {
    const read = byName.get(s.group);
    if (!read) out.push(`${s.group}: no record`);
    else if (canonical(read) !== canonical(s))
      out.push(`${s.group}: stored ${canonical(read)}, seeded ${canonical(s)}`);
  }
  if (stored.length !== seeded.length) out.push(`${stored.length} records stored, ${seeded.length} seeded`);
  return out;
}

/** JSON with object keys sorted at every level. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** What one group holds in its final place on the owner (for the benchmark's own checks and notes). */
export interface SeededEntryPoints {
  routes: number;
  addresses: number;
  records: number;
  calls: number;
}

/**
 * The entry points of every group on `owner`, as the drivers' activations leave them
 * (controller/resources/vip.ts, eip.ts, dns.ts): a route `<ip>/32 -> owner's ENI` in each listed route
 * table, each Elastic IP associated with the owner's ENI, an A record `<recordName> <privateIp>`
 * with the definition's TTL. Route 53 records go in batches of up to 1,000 changes per call; routes
 * and associations have no batch call and go `concurrency` at a time.
 */
export async function seedEntryPoints(
  ec2: EC2Client,
  route53: Route53Client,
  config: ClusterConfig,
  /** The node every group is on, or each group's own (groups it returns nothing for are skipped). */
  ownerOf: NodeConfig | ((group: GroupConfig) => NodeConfig | undefined),
  concurrency = 4,
): Promise<SeededEntryPoints> {
  const routes: { table: string; dest: string; eni: string }[] = [];
  const addresses: { allocationId: string; eni: string; privateIp?: string }[] = [];
  const changes = new Map<string, Change[]>();
  for (const g of config.groups) {
    const owner = typeof ownerOf === 'function' ? ownerOf(g) : ownerOf;
    if (!owner || !g.nodes.includes(owner.name)) continue;
    for (const r of g.resources) {
      if (r.type === 'vip') {
        // The bench lists its table; a table found only by holding the route would need it anyway.
        for (const table of r.routeTableIds ?? [])
          routes.push({ table, dest: `${r.ip}/32`, eni: eniFor(r, owner) });
      } else if (r.type === 'eip') {
        const privateIp = r.privateIp?.[owner.name];
        addresses.push({
          allocationId: r.allocationId,
          eni: eniFor(r, owner),
          ...(privateIp ? { privateIp } : {}),
        });
      } else if (r.type === 'dns') {
        const value = r.ip ?? owner.privateIp;
        if (!value) throw new Error(`dns resource ${r.name}: node ${owner.name} has no privateIp`);
        const zone = normalizeHostedZoneId(r.hostedZoneId);
        const list = changes.get(zone) ?? [];
        list.push({
          Action: 'CREATE',
          ResourceRecordSet: {
            Name: r.recordName,
            Type: 'A',
            TTL: r.ttl,
            ResourceRecords: [{ Value: value }],
          },
        });
        changes.set(zone, list);
      }
    }
  }

  let calls = 0;
  await pool(routes, concurrency, async ({ table, dest, eni }) => {
    calls++;
    try {
      await ec2.send(
        new CreateRouteCommand({ RouteTableId: table, DestinationCidrBlock: dest, NetworkInterfaceId: eni }),
      );
    } catch (e) {
      // A server reused across runs (AWS_ENDPOINT_URL) may hold it from an earlier network: move it.
      if (awsErrorCode(e) !== 'RouteAlreadyExists') throw e;
      calls++;
      await ec2.send(
        new ReplaceRouteCommand({ RouteTableId: table, DestinationCidrBlock: dest, NetworkInterfaceId: eni }),
      );
    }
  });
  await pool(addresses, concurrency, async ({ allocationId, eni, privateIp }) => {
    calls++;
    await ec2.send(
      new AssociateAddressCommand({
        AllocationId: allocationId,
        NetworkInterfaceId: eni,
        ...(privateIp ? { PrivateIpAddress: privateIp } : {}),
        AllowReassociation: true,
      }),
    );
  });
  let records = 0;
  for (const [zone, list] of changes) {
    // At most 1,000 ResourceRecord elements per request (a CREATE counts once).
    for (let i = 0; i < list.length; i += 1000) {
      const batch = list.slice(i, i + 1000);
      calls++;
      await route53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zone,
          ChangeBatch: { Comment: 'reconcile scaling bench: seeded owners active', Changes: batch },
        }),
      );
      records += batch.length;
    }
  }
  return { routes: routes.length, addresses: addresses.length, records, calls };
}

/**
 * The group records as items of the state table (keys.group, the fields of GroupState, and
 * `fencedAt`, which the fence before each activation of the bring-up leaves), 25 per BatchWriteItem.
 * Returns the number of requests sent.
 */
export async function writeGroupRecords(
  store: DynamoStore,
  cluster: string,
  states: readonly GroupState[],
): Promise<number> {
  let requests = 0;
  for (let i = 0; i < states.length; i += 25) {
    let items: Record<string, unknown>[] | undefined = states.slice(i, i + 25).map((s) => ({
      PutRequest: { Item: { ...keys.group(cluster, s.group), ...s, fencedAt: s.phaseSince } },
    }));
    for (let attempt = 0; items && items.length > 0; attempt++) {
      if (attempt >= 8) throw new Error(`BatchWriteItem left ${items.length} group records unwritten`);
      if (attempt > 0) await new Promise((r) => setTimeout(r, 20 * 2 ** attempt));
      requests++;
      const out = await store.doc.send(
        new BatchWriteCommand({ RequestItems: { [store.table]: items as never } }),
      );
      items = out.UnprocessedItems?.[store.table] as Record<string, unknown>[] | undefined;
    }
  }
  return requests;
}

/** Runs `task` over `items`, at most `limit` at a time; the first failure rejects. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
