/**
 * The Lambda handlers as Lambda runs them (middy + Powertools logger and metrics, dependencies from
 * the environment), against the moto server: a schedule, a Spot warning for a configured instance,
 * an event from another account, and a stream batch; then a start and a move, with the metrics
 * they publish (EMF on stdout) and the transition events they put on the bus, each validated
 * against schema/transition-event.schema.json.
 */
import { readFileSync } from 'node:fs';
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import Ajv2020 from 'ajv/dist/2020';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../../controller/aws/clients';
import { EVENT_SOURCE } from '../../controller/notify/notifier';
import type { InvocationResult } from '../../controller/reconcile/entry';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { parseClusterConfig } from '../../shared/config/load';
import type { Heartbeat } from '../../shared/core/model';
import { keys } from '../../shared/table/keys';
import { aws, uniqueName } from './support';

const table = uniqueName('handlers');
const cluster = uniqueName('c');
const bus = uniqueName('bus');
process.env.FAILOVER_TABLE = table;
process.env.FAILOVER_EVENT_BUS = bus;
process.env.AWS_ENDPOINT_URL = aws().endpoint;
process.env.AWS_REGION = 'us-east-1';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

const context = (id: string): Context =>
  ({
    awsRequestId: id,
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:failover-controller-test-reconcile',
    functionName: 'reconcile',
    getRemainingTimeInMillis: () => 30_000,
  }) as unknown as Context;

const base = {
  version: '0',
  id: 'e',
  account: '123456789012',
  region: 'us-east-1',
  time: new Date().toISOString(),
  resources: [],
};

/** EMF documents the Powertools Metrics instances write to stdout. */
const emf: Record<string, unknown>[] = [];
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = String(chunk);
  // Kept for the assertions below, not printed (a document per dimension set per invocation).
  if (text.includes('"_aws"')) {
    for (const line of text.split('\n')) if (line.includes('"_aws"')) emf.push(JSON.parse(line));
    return true;
  }
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;
afterAll(() => {
  process.stdout.write = write;
});

/** The value(s) of a metric in the EMF documents, with the dimensions it was published under. */
function metric(name: string): { value: number; dimensions: Record<string, string> }[] {
  return emf.flatMap((doc) => {
    const defs = (
      doc._aws as {
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
      }
    ).CloudWatchMetrics[0]!;
    if (defs.Namespace !== 'FailoverController' || !defs.Metrics.some((m) => m.Name === name)) return [];
    const dimensions = Object.fromEntries(defs.Dimensions[0]!.map((d) => [d, String(doc[d])]));
    const values = ([] as number[]).concat(doc[name] as number | number[]);
    return values.map((value) => ({ value, dimensions }));
  });
}

describe('Lambda handlers', () => {
  let store: DynamoStore;
  let sqs: SQSClient;
  let queueUrl: string;
  beforeAll(async () => {
    store = new DynamoStore(table, aws());
    await store.createTable();
    // Transition events reach an SQS queue through a rule on the bus, as a consumer would get them.
    const config = clientConfig(aws());
    const events = new EventBridgeClient(config);
    sqs = new SQSClient(config);
    await events.send(new CreateEventBusCommand({ Name: bus }));
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('events') }))).QueueUrl!;
    const queueArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    await events.send(
      new PutRuleCommand({
        Name: 'all',
        EventBusName: bus,
        EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }),
      }),
    );
    await events.send(
      new PutTargetsCommand({ Rule: 'all', EventBusName: bus, Targets: [{ Id: 'q', Arn: queueArn }] }),
    );
    // A cluster whose group has no resources: reconcile runs end to end without touching EC2.
    await store.applyConfig(
      parseClusterConfig({
        cluster,
        region: 'us-east-1',
        nodes: [
          { name: 'node1', instanceId: 'i-0a1a1a1a', az: 'us-east-1a' },
          { name: 'node2', instanceId: 'i-0a2a2a2a', az: 'us-east-1b' },
        ],
        groups: [{ name: 'db', nodes: ['node1', 'node2'], autoStart: false }],
      }),
      { now: Date.now() },
    );
  });

  it('the schedule reconciles every cluster of the table', async () => {
    const { handler } = await import('../../functions/reconcile-schedule');
    const result = (await handler(
      { ...base, source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} },
      context('req-1'),
    )) as InvocationResult;
    expect(result.trigger).toBe('schedule');
    expect(result.failed).toEqual([]);
    expect(result.clusters.find((c) => c.cluster === cluster)?.groups).toEqual([
      expect.objectContaining({ group: 'db', status: 'converged', phase: 'Offline' }),
    ]);
    // The metrics of the invocation, as EMF: the group is not online, the reconcile converged.
    expect(metric('GroupOnline')).toContainEqual({
      value: 0,
      dimensions: { service: 'failover-controller', cluster, group: 'db' },
    });
    // autoStart: false: the group is not meant to run, so the not-online alarm's metric ignores it.
    expect(metric('GroupsNotOnline').at(-1)?.value).toBe(0);
    expect(metric('ReconcileOutcome')).toContainEqual({
      value: 1,
      dimensions: { service: 'failover-controller', outcome: 'converged' },
    });
    expect(metric('ReconcileErrors').at(-1)).toEqual({
      value: 0,
      dimensions: { service: 'failover-controller' },
    });
  });

  it('a Spot warning for a configured instance is recorded as a fact and reconciles its cluster', async () => {
    const { handler } = await import('../../functions/reconcile-ec2-event');
    const event = {
      ...base,
      source: 'aws.ec2',
      'detail-type': 'EC2 Spot Instance Interruption Warning',
      detail: { 'instance-id': 'i-0a2a2a2a', 'instance-action': 'terminate' },
    };
    const result = (await handler(event, context('req-2'))) as InvocationResult;
    expect(result.clusters.map((c) => c.cluster)).toEqual([cluster]);
    expect((await store.getFacts(cluster)).node2?.[0]).toMatchObject({
      kind: 'spot-interruption',
      detail: 'Spot terminate in 2 minutes',
    });
  });

  it('drops an event of another account, and one about an instance no cluster knows', async () => {
    const { handler } = await import('../../functions/reconcile-ec2-event');
    const other = (await handler(
      {
        ...base,
        account: '999999999999',
        source: 'aws.ec2',
        'detail-type': 'EC2 Instance Rebalance Recommendation',
        detail: { 'instance-id': 'i-0a1a1a1a' },
      },
      context('req-3'),
    )) as InvocationResult;
    expect(other.refused).toMatchObject({
      code: 'FOREIGN_EVENT',
      reason: expect.stringMatching(/account 999999999999/),
    });
    const unknown = (await handler(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Instance State-change Notification',
        detail: { 'instance-id': 'i-0ffff0000', state: 'stopped' },
      },
      context('req-4'),
    )) as InvocationResult;
    expect(unknown.ignored).toMatch(/i-0ffff0000 belongs to no configured cluster/);
  });

  it('a stream batch with an agent report reconciles that cluster', async () => {
    const { handler } = await import('../../functions/reconcile-stream');
    const record = {
      eventName: 'MODIFY',
      eventSource: 'aws:dynamodb',
      dynamodb: {
        Keys: {
          pk: { S: `NODE#${cluster}#arn:aws:ec2:us-east-1:123456789012:instance/i-0a1a1a1a` },
          sk: { S: 'HEARTBEAT' },
        },
        SequenceNumber: '1000',
      },
    };
    const result = (await handler({ Records: [record] } as never, context('req-5'))) as InvocationResult;
    expect(result.clusters.map((c) => c.cluster)).toEqual([cluster]);
    expect(result.batchItemFailures).toEqual([]);
  });

  it('a start and a move publish group, node and failover metrics and schema-valid transition events', async () => {
    const { handler } = await import('../../functions/reconcile-stream');
    const heartbeat = (node: string, seq: number): Heartbeat => ({
      cluster,
      node,
      token: `${node}/${seq}`,
      seq,
      incarnation: node,
      sentAt: Date.now(),
      leaseMs: 60_000,
      agentVersion: 'test',
      state: 'running',
      reason: 'change',
      monitors: {},
      isolated: node === 'node2',
      groups: {},
      peers: {},
    });
    const record = (id: string) => ({
      eventName: 'INSERT',
      eventSource: 'aws:dynamodb',
      dynamodb: {
        Keys: { pk: { S: `CLUSTER#${cluster}` }, sk: { S: `REQUEST#${id}` } },
        SequenceNumber: '2000',
      },
    });
    await store.putHeartbeat(heartbeat('node1', 1));
    await store.putHeartbeat(heartbeat('node2', 1));
    const start = await store.putRequest(cluster, { kind: 'start', group: 'db', to: 'node1' }, Date.now());
    await handler({ Records: [record(start.id)] } as never, context('req-6'));
    expect((await store.getGroup(cluster, 'db'))?.owner).toBe('node1');
    expect(metric('GroupOnline').at(-1)).toEqual({
      value: 1,
      dimensions: { service: 'failover-controller', cluster, group: 'db' },
    });
    expect(metric('LeaseAge').find((m) => m.dimensions.node === 'node1')?.dimensions).toEqual({
      service: 'failover-controller',
      cluster,
      node: 'node1',
    });
    expect(
      metric('NodeIsolated')
        .filter((m) => m.dimensions.node === 'node2')
        .at(-1)?.value,
    ).toBe(1);

    // node2 may take the group: not isolated any more, and the Spot warning of an earlier test gone;
    // node1's agent, as a real one would, reports the group stopped at the move's epoch (the
    // controller waits for a live old owner's own word before it promotes another node).
    await store.putHeartbeat({ ...heartbeat('node2', 2), isolated: false });
    await store.putHeartbeat({ ...heartbeat('node1', 2), groups: { db: { epoch: 2, state: 'stopped' } } });
    await store.doc.send(
      new DeleteCommand({ TableName: table, Key: keys.fact(cluster, 'node2', 'spot-interruption') }),
    );
    const move = await store.putRequest(cluster, { kind: 'move', group: 'db', to: 'node2' }, Date.now());
    await handler({ Records: [record(move.id)] } as never, context('req-7'));
    expect((await store.getGroup(cluster, 'db'))?.owner).toBe('node2');
    expect(metric('Failovers')).toEqual([
      { value: 1, dimensions: { service: 'failover-controller', cluster, group: 'db' } },
    ]);
    expect(metric('FailoverDuration').at(-1)?.value).toBeGreaterThanOrEqual(0);
    expect(metric('FailoverDecisionTime').length).toBeGreaterThan(0);

    // Every event on the bus matches the published JSON Schema; the move carries who, from where, why.
    const schema = JSON.parse(
      readFileSync(new URL('../../schema/transition-event.schema.json', import.meta.url), 'utf8'),
    );
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    ajv.addFormat('date-time', (v: string) => !Number.isNaN(Date.parse(v)));
    const validate = ajv.compile(schema);
    const details: Record<string, unknown>[] = [];
    for (
      let i = 0;
      i < 10 && !details.some((d) => d.kind === 'failover.completed' && d.node === 'node2');
      i++
    ) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      details.push(...(out.Messages ?? []).map((m) => JSON.parse(m.Body!).detail));
    }
    expect(details.length).toBeGreaterThanOrEqual(4);
    for (const d of details)
      expect(validate(d) ? 'valid' : JSON.stringify(validate.errors), JSON.stringify(d)).toBe('valid');
    const started = details.find((d) => d.kind === 'failover.started' && d.node === 'node2');
    expect(started).toMatchObject({
      cluster,
      group: 'db',
      previousOwner: 'node1',
      instanceId: 'i-0a2a2a2a',
      severity: 'warning',
      region: 'us-east-1',
      account: '123456789012',
    });
    expect(String(started?.reason)).toMatch(/node2/);
    const completed = details.find((d) => d.kind === 'failover.completed' && d.node === 'node2');
    expect(completed?.durationMs).toBeGreaterThanOrEqual(0);
    expect(completed?.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // A schema that accepts anything would prove nothing: a malformed event is refused.
    expect(validate({ ...started, epoch: 'seven' })).toBe(false);
    expect(validate({ ...started, node: undefined })).toBe(false);
  });
});
