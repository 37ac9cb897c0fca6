/**
 * Triggers only say *where to look* (which cluster) and carry facts (instance i-… got a Spot
 * interruption warning). They never decide anything: reconcile reads fresh state either way.
 * Events are validated strictly: shape (zod), account and region, and the instance must belong to
 * a configured cluster; anything else is dropped with a reason.
 */
import * as z from 'zod';
import type { NodeFact } from '../../shared/core/model';

/** How long a fact from an event stays in the table (its TTL). */
export const FACT_RETENTION_MS = 30 * 60_000;

const envelope = z.object({
  id: z.string(),
  'detail-type': z.string(),
  source: z.string(),
  account: z.string(),
  region: z.string(),
  time: z.string(),
  resources: z.array(z.string()).default([]),
  detail: z.unknown(),
});

const instanceDetail = z.object({ 'instance-id': z.string().regex(/^i-[0-9a-f]+$/) }).loose();
const stateDetail = instanceDetail.extend({ state: z.string() });
const spotDetail = instanceDetail.extend({ 'instance-action': z.string() });
const healthDetail = z
  .object({
    service: z.string(),
    eventTypeCode: z.string(),
    eventTypeCategory: z.string().optional(),
    statusCode: z.string().optional(),
    affectedEntities: z.array(z.object({ entityValue: z.string() }).loose()).optional(),
  })
  .loose();

export type EventBridgeEvent = z.infer<typeof envelope>;

/** A fact about one EC2 instance, to be recorded on its node before reconcile runs. */
export interface InstanceFact {
  instanceId: string;
  fact: NodeFact;
}

export type ParsedEvent =
  | { kind: 'schedule' }
  | { kind: 'instance'; facts: InstanceFact[]; summary: string }
  | { kind: 'ignored'; reason: string };

export interface Expected {
  account?: string;
  region?: string;
}

/** Validates an EventBridge event and extracts its facts. Pure. */
export function parseEventBridgeEvent(input: unknown, expected: Expected): ParsedEvent {
  const parsed = envelope.safeParse(input);
  if (!parsed.success)
    return {
      kind: 'ignored',
      reason: `not an EventBridge event: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    };
  const e = parsed.data;
  if (expected.account && e.account !== expected.account) {
    return {
      kind: 'ignored',
      reason: `event from account ${e.account}, this deployment serves ${expected.account}`,
    };
  }
  if (expected.region && e.region !== expected.region) {
    return {
      kind: 'ignored',
      reason: `event from region ${e.region}, this deployment serves ${expected.region}`,
    };
  }
  const at = Date.parse(e.time);
  const when = Number.isFinite(at) ? at : 0;
  const type = e['detail-type'];

  if (e.source === 'aws.events' && type === 'Scheduled Event') return { kind: 'schedule' };
  if (e.source === 'aws.ec2' && type === 'EC2 Instance State-change Notification') {
    const d = stateDetail.safeParse(e.detail);
    if (!d.success) return { kind: 'ignored', reason: 'EC2 state-change event without instance-id/state' };
    const id = d.data['instance-id'];
    return {
      kind: 'instance',
      summary: `${id} is ${d.data.state}`,
      facts: [
        { instanceId: id, fact: { kind: 'instance-state', at: when, detail: `EC2 reports ${d.data.state}` } },
      ],
    };
  }
  if (e.source === 'aws.ec2' && type === 'EC2 Spot Instance Interruption Warning') {
    const d = spotDetail.safeParse(e.detail);
    if (!d.success) return { kind: 'ignored', reason: 'Spot interruption warning without instance-id' };
    const id = d.data['instance-id'];
    return {
      kind: 'instance',
      summary: `Spot ${d.data['instance-action']} warning for ${id}`,
      facts: [
        {
          instanceId: id,
          fact: {
            kind: 'spot-interruption',
            at: when,
            detail: `Spot ${d.data['instance-action']} in 2 minutes`,
          },
        },
      ],
    };
  }
  if (e.source === 'aws.ec2' && type === 'EC2 Instance Rebalance Recommendation') {
    const d = instanceDetail.safeParse(e.detail);
    if (!d.success) return { kind: 'ignored', reason: 'rebalance recommendation without instance-id' };
    const id = d.data['instance-id'];
    return {
      kind: 'instance',
      summary: `rebalance recommendation for ${id}`,
      facts: [
        { instanceId: id, fact: { kind: 'rebalance', at: when, detail: 'EC2 rebalance recommendation' } },
      ],
    };
  }
  if (e.source === 'aws.health' && type === 'AWS Health Event') {
    const d = healthDetail.safeParse(e.detail);
    if (!d.success || d.data.service !== 'EC2')
      return { kind: 'ignored', reason: 'AWS Health event not about EC2' };
    // A closed event is a recovery: its facts must not keep nodes ineligible.
    if (d.data.statusCode === 'closed') return { kind: 'schedule' };
    const ids = new Set<string>();
    for (const entity of d.data.affectedEntities ?? [])
      if (/^i-[0-9a-f]+$/.test(entity.entityValue)) ids.add(entity.entityValue);
    for (const arn of e.resources) {
      const m = /:instance\/(i-[0-9a-f]+)$/.exec(arn);
      if (m) ids.add(m[1]!);
    }
    if (ids.size === 0) return { kind: 'schedule' };
    return {
      kind: 'instance',
      summary: `AWS Health ${d.data.eventTypeCode} for ${[...ids].join(', ')}`,
      facts: [...ids].map((instanceId) => ({
        instanceId,
        fact: { kind: 'health', at: when, detail: `AWS Health ${d.data.eventTypeCode}` },
      })),
    };
  }
  return { kind: 'ignored', reason: `unexpected event ${e.source} / ${type}` };
}

const streamRecord = z
  .object({
    eventName: z.string().optional(),
    dynamodb: z
      .object({ Keys: z.record(z.string(), z.object({ S: z.string() }).loose()).optional() })
      .loose()
      .optional(),
  })
  .loose();

/** The clusters that DynamoDB stream records (agent reports, requests, repair requests) point at. Pure. */
export function clustersFromStream(records: readonly unknown[]): { clusters: string[]; ignored: number } {
  const clusters = new Set<string>();
  let ignored = 0;
  for (const r of records) {
    const parsed = streamRecord.safeParse(r);
    const pk = parsed.success ? parsed.data.dynamodb?.Keys?.pk?.S : undefined;
    const sk = parsed.success ? parsed.data.dynamodb?.Keys?.sk?.S : undefined;
    if (!pk || parsed.data?.eventName === 'REMOVE') {
      ignored++;
      continue;
    }
    const heartbeat = /^NODE#([a-z0-9-]+)#[a-z0-9-]+$/.exec(pk);
    if (heartbeat && sk === 'HEARTBEAT') clusters.add(heartbeat[1]!);
    else if (pk.startsWith('CLUSTER#') && (sk?.startsWith('REQUEST#') || sk?.startsWith('REPAIR#')))
      clusters.add(pk.slice('CLUSTER#'.length));
    else ignored++;
  }
  return { clusters: [...clusters], ignored };
}
