/**
 * Triggers only say *where to look* (which cluster) and carry facts (instance i-… got a Spot
 * interruption warning). They never decide anything: reconcile reads fresh state either way.
 *
 * Everything a trigger hands over is checked before it reaches AWS, as input from anyone would be:
 * the shape and sizes of the whole event (zod), the account and region, the event's time (neither
 * unparseable nor in the future: a fact's age decides how long it counts), the names in table keys
 * (the definition's name pattern). What fails is refused with a typed reason (`EventRefusal`) and
 * costs no AWS call; the handler logs it as one line.
 */
import * as z from 'zod';
import { NAME_PATTERN } from '../../shared/config/defaults';
import type { NodeFact } from '../../shared/core/model';
import { instanceArn, parseHeartbeatPk } from '../../shared/table/keys';

/** How long a fact from an event stays in the table (its TTL). */
export const FACT_RETENTION_MS = 30 * 60_000;
/** An event stamped later than this ahead of the controller's clock is refused (clock skew allowance). */
export const EVENT_FUTURE_TOLERANCE_MS = 5 * 60_000;
/** An event older than this is refused: EventBridge gives up retrying an event after 24 hours. */
export const EVENT_MAX_AGE_MS = 24 * 3_600_000;
/** EventBridge's largest event (256 KB); anything larger did not come from it. */
const EVENT_MAX_BYTES = 256 * 1024;
/** A stream batch holds at most 10,000 records (the event source mapping's largest batch). */
export const STREAM_MAX_RECORDS = 10_000;

/** Why an event or a record was refused: a stable code and what was wrong. */
export interface EventRefusal {
  /** INVALID_EVENT: malformed; FOREIGN_EVENT: another account or region; UNEXPECTED_EVENT: a kind this deployment does not handle. */
  code: 'INVALID_EVENT' | 'FOREIGN_EVENT' | 'UNEXPECTED_EVENT';
  reason: string;
}

const bounded = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(max, { error: `${what} is longer than ${max} characters` });

/** ISO 8601 with a zone, as EventBridge writes `time` (e.g. 2026-11-23T12:00:00Z). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

// Unknown top-level fields are let through: EventBridge may add some, and they are never read.
const envelope = z.object({
  version: bounded('version', 16).optional(),
  id: bounded('id', 256),
  'detail-type': bounded('detail-type', 256),
  source: bounded('source', 256),
  account: z.string({ error: 'account must be a string' }).regex(/^\d{12}$/, {
    error: 'account must be a 12-digit AWS account id',
  }),
  region: z.string({ error: 'region must be a string' }).regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, {
    error: 'region must be an AWS region such as us-east-1',
  }),
  time: z.string({ error: 'time must be a string' }).regex(ISO_TIME, {
    error: 'time must be an ISO 8601 time such as 2026-11-23T12:00:00Z',
  }),
  resources: z
    .array(bounded('resources[]', 2048), { error: 'resources must be a list of ARNs' })
    .max(100, { error: 'resources lists more than 100 ARNs' })
    .default([]),
  detail: z.record(z.string(), z.unknown(), { error: 'detail must be an object' }),
  'replay-name': bounded('replay-name', 256).optional(),
});

const instanceDetail = z
  .object({
    'instance-id': z.string().regex(INSTANCE_ID, { error: 'instance-id must look like i-0123456789abcdef0' }),
  })
  .loose();
const stateDetail = instanceDetail.extend({
  state: z.enum(['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'], {
    error: 'state must be an EC2 instance state',
  }),
});
const spotDetail = instanceDetail.extend({
  'instance-action': z.enum(['terminate', 'stop', 'hibernate'], {
    error: 'instance-action must be terminate, stop or hibernate',
  }),
});
const healthDetail = z
  .object({
    service: bounded('service', 64),
    eventTypeCode: bounded('eventTypeCode', 256),
    eventTypeCategory: bounded('eventTypeCategory', 64).optional(),
    statusCode: bounded('statusCode', 64).optional(),
    affectedEntities: z
      .array(z.object({ entityValue: bounded('entityValue', 2048) }).loose())
      .max(1000, { error: 'affectedEntities lists more than 1,000 entities' })
      .optional(),
  })
  .loose();

export type EventBridgeEvent = z.infer<typeof envelope>;

/** A fact about one EC2 instance, to be recorded on its node before reconcile runs. */
export interface InstanceFact {
  instanceId: string;
  /** The instance's ARN (the key of the instance index). */
  instanceArn: string;
  fact: NodeFact;
}

export type ParsedEvent =
  | { kind: 'schedule' }
  | { kind: 'instance'; facts: InstanceFact[]; summary: string }
  | ({ kind: 'refused' } & EventRefusal);

export interface Expected {
  account?: string;
  region?: string;
}

const refuse = (code: EventRefusal['code'], reason: string): ParsedEvent => ({
  kind: 'refused',
  code,
  reason,
});

/** The first problem zod found, with its path. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.map(String).join('.');
  return `${path ? `${path}: ` : ''}${issue.message}`;
}

/** JSON size of an event, or Infinity when it cannot be serialized (then it is not an event). */
function jsonBytes(value: unknown): number {
  try {
    const json = JSON.stringify(value);
    return json === undefined ? Number.POSITIVE_INFINITY : Buffer.byteLength(json);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Validates an EventBridge event and extracts its facts. Pure: `now` is the controller's clock.
 * Never throws.
 */
export function parseEventBridgeEvent(input: unknown, expected: Expected, now: number): ParsedEvent {
  if (jsonBytes(input) > EVENT_MAX_BYTES)
    return refuse(
      'INVALID_EVENT',
      `not an EventBridge event: larger than ${EVENT_MAX_BYTES / 1024} KB or not JSON`,
    );
  const parsed = envelope.safeParse(input);
  if (!parsed.success)
    return refuse('INVALID_EVENT', `not an EventBridge event: ${firstIssue(parsed.error)}`);
  const e = parsed.data;
  if (expected.account && e.account !== expected.account) {
    return refuse(
      'FOREIGN_EVENT',
      `event from account ${e.account}, this deployment serves ${expected.account}`,
    );
  }
  if (expected.region && e.region !== expected.region) {
    return refuse(
      'FOREIGN_EVENT',
      `event from region ${e.region}, this deployment serves ${expected.region}`,
    );
  }
  const stamped = Date.parse(e.time);
  if (!Number.isFinite(stamped)) return refuse('INVALID_EVENT', `time ${e.time} is not a valid time`);
  if (stamped > now + EVENT_FUTURE_TOLERANCE_MS)
    return refuse(
      'INVALID_EVENT',
      `time ${e.time} is more than ${EVENT_FUTURE_TOLERANCE_MS / 60_000} minutes ahead of the controller's clock (${new Date(now).toISOString()})`,
    );
  if (stamped < now - EVENT_MAX_AGE_MS)
    return refuse(
      'INVALID_EVENT',
      `time ${e.time} is more than 24 hours old (EventBridge retries for 24 hours at most)`,
    );
  // A fact counts from when it happened, never from a moment ahead of the controller's clock.
  const at = Math.min(stamped, now);
  const type = e['detail-type'];
  const arnOf = (id: string) => instanceArn({ region: e.region, account: e.account }, id);

  if (e.source === 'aws.events' && type === 'Scheduled Event') return { kind: 'schedule' };
  if (e.source === 'aws.ec2' && type === 'EC2 Instance State-change Notification') {
    const d = stateDetail.safeParse(e.detail);
    if (!d.success) return refuse('INVALID_EVENT', `EC2 state-change event: detail.${firstIssue(d.error)}`);
    const id = d.data['instance-id'];
    return {
      kind: 'instance',
      summary: `${id} is ${d.data.state}`,
      facts: [
        {
          instanceId: id,
          instanceArn: arnOf(id),
          fact: { kind: 'instance-state', at, detail: `EC2 reports ${d.data.state}`, state: d.data.state },
        },
      ],
    };
  }
  if (e.source === 'aws.ec2' && type === 'EC2 Spot Instance Interruption Warning') {
    const d = spotDetail.safeParse(e.detail);
    if (!d.success)
      return refuse('INVALID_EVENT', `Spot interruption warning: detail.${firstIssue(d.error)}`);
    const id = d.data['instance-id'];
    return {
      kind: 'instance',
      summary: `Spot ${d.data['instance-action']} warning for ${id}`,
      facts: [
        {
          instanceId: id,
          instanceArn: arnOf(id),
          fact: { kind: 'spot-interruption', at, detail: `Spot ${d.data['instance-action']} in 2 minutes` },
        },
      ],
    };
  }
  if (e.source === 'aws.ec2' && type === 'EC2 Instance Rebalance Recommendation') {
    const d = instanceDetail.safeParse(e.detail);
    if (!d.success) return refuse('INVALID_EVENT', `rebalance recommendation: detail.${firstIssue(d.error)}`);
    const id = d.data['instance-id'];
    return {
      kind: 'instance',
      summary: `rebalance recommendation for ${id}`,
      facts: [
        {
          instanceId: id,
          instanceArn: arnOf(id),
          fact: { kind: 'rebalance', at, detail: 'EC2 rebalance recommendation' },
        },
      ],
    };
  }
  if (e.source === 'aws.health' && type === 'AWS Health Event') {
    const d = healthDetail.safeParse(e.detail);
    if (!d.success) return refuse('INVALID_EVENT', `AWS Health event: detail.${firstIssue(d.error)}`);
    if (d.data.service !== 'EC2')
      return refuse('UNEXPECTED_EVENT', `AWS Health event about ${d.data.service}, not EC2`);
    // A closed event is a recovery: its facts must not keep nodes ineligible.
    if (d.data.statusCode === 'closed') return { kind: 'schedule' };
    const ids = new Set<string>();
    for (const entity of d.data.affectedEntities ?? [])
      if (INSTANCE_ID.test(entity.entityValue)) ids.add(entity.entityValue);
    for (const arn of e.resources) {
      const m = /:instance\/(i-[0-9a-f]{8,17})$/.exec(arn);
      if (m) ids.add(m[1]!);
    }
    if (ids.size === 0) return { kind: 'schedule' };
    return {
      kind: 'instance',
      summary: `AWS Health ${d.data.eventTypeCode} for ${[...ids].join(', ')}`,
      facts: [...ids].map((instanceId) => ({
        instanceId,
        instanceArn: arnOf(instanceId),
        fact: { kind: 'health', at, detail: `AWS Health ${d.data.eventTypeCode}` },
      })),
    };
  }
  return refuse('UNEXPECTED_EVENT', `unexpected event ${e.source} / ${type}`);
}

/** A request id as `failoverctl` makes them (base-36 time, a dash, 8 hex digits). */
const REQUEST_SK = /^REQUEST#[0-9a-z]{1,16}-[0-9a-f]{8}$/;
const REPAIR_SK = /^REPAIR#/;

const streamRecord = z
  .object({
    eventID: bounded('eventID', 256).optional(),
    eventName: z.enum(['INSERT', 'MODIFY', 'REMOVE'], {
      error: 'eventName must be INSERT, MODIFY or REMOVE',
    }),
    eventSource: z.literal('aws:dynamodb', { error: 'eventSource must be aws:dynamodb' }).optional(),
    dynamodb: z
      .object({
        SequenceNumber: z
          .string({ error: 'dynamodb.SequenceNumber must be a string' })
          .regex(/^\d{1,40}$/, { error: 'dynamodb.SequenceNumber must be digits' }),
        Keys: z.strictObject({
          pk: z.strictObject({ S: bounded('pk', 2048) }),
          sk: z.strictObject({ S: bounded('sk', 1024) }),
        }),
      })
      .loose(),
  })
  .loose();

/** One stream record that points at a cluster. */
export interface StreamPointer {
  cluster: string;
  /** The record's sequence number: what the mapping is told when reconcile of this cluster fails. */
  sequenceNumber: string;
  /** Its position in the batch. */
  index: number;
}

export type ParsedStream =
  | {
      kind: 'records';
      /** Records pointing at a cluster, in batch order. */
      pointers: StreamPointer[];
      /** Records that are nobody's business (removals by TTL). */
      ignored: number;
      /** Records refused, with why. */
      refused: { index: number; reason: string }[];
    }
  | ({ kind: 'refused' } & EventRefusal);

/**
 * The clusters DynamoDB stream records (agent reports, requests) point at. Pure; never throws.
 * A batch that is not a batch is refused whole; a record that is malformed, or whose key is not an
 * agent's report or a request of a cluster with a valid name, is refused alone.
 */
export function parseStreamBatch(event: unknown): ParsedStream {
  if (typeof event !== 'object' || event === null || Array.isArray(event))
    return { kind: 'refused', code: 'INVALID_EVENT', reason: 'not a DynamoDB stream batch: not an object' };
  const records = (event as { Records?: unknown }).Records;
  if (!Array.isArray(records))
    return {
      kind: 'refused',
      code: 'INVALID_EVENT',
      reason: 'not a DynamoDB stream batch: Records is not a list',
    };
  if (records.length === 0 || records.length > STREAM_MAX_RECORDS)
    return {
      kind: 'refused',
      code: 'INVALID_EVENT',
      reason: `not a DynamoDB stream batch: ${records.length} records (1 to ${STREAM_MAX_RECORDS})`,
    };
  const pointers: StreamPointer[] = [];
  const refused: { index: number; reason: string }[] = [];
  let ignored = 0;
  records.forEach((r: unknown, index) => {
    const parsed = streamRecord.safeParse(r);
    if (!parsed.success) {
      refused.push({ index, reason: firstIssue(parsed.error) });
      return;
    }
    const { eventName, dynamodb } = parsed.data;
    const { pk, sk } = { pk: dynamodb.Keys.pk.S, sk: dynamodb.Keys.sk.S };
    if (eventName === 'REMOVE') {
      ignored++;
      return;
    }
    const heartbeat = parseHeartbeatPk(pk);
    let cluster: string | undefined;
    if (heartbeat && sk === 'HEARTBEAT') cluster = heartbeat.cluster;
    else if (pk.startsWith('CLUSTER#')) {
      const name = pk.slice('CLUSTER#'.length);
      // A new request; a repair request (reconcile's own, overwritten: an insert or a modify).
      const request = REQUEST_SK.test(sk) && eventName === 'INSERT';
      const repair = REPAIR_SK.test(sk) && NAME_PATTERN.test(sk.slice('REPAIR#'.length));
      if ((request || repair) && NAME_PATTERN.test(name)) cluster = name;
    }
    if (cluster === undefined) {
      refused.push({
        index,
        reason: `key ${pk.slice(0, 80)} / ${sk.slice(0, 40)} is neither an agent's report nor a request`,
      });
      return;
    }
    pointers.push({ cluster, sequenceNumber: dynamodb.SequenceNumber, index });
  });
  return { kind: 'records', pointers, ignored, refused };
}
