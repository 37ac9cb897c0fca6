/**
 * The Lambda handlers as Lambda runs them (middy + Powertools logger, dependencies from the
 * environment), against the moto server: a schedule, a Spot warning for a configured instance, an
 * event from another account, and a stream batch.
 */
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import type { InvocationResult } from '../../controller/reconcile/entry';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { parseClusterConfig } from '../../shared/config/load';
import { aws, uniqueName } from './support';

const table = uniqueName('handlers');
const cluster = uniqueName('c');
process.env.FAILOVER_TABLE = table;
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

describe('Lambda handlers', () => {
  let store: DynamoStore;
  beforeAll(async () => {
    store = new DynamoStore(table, aws());
    await store.createTable();
    // A cluster whose group has no resources: reconcile runs end to end without touching EC2.
    await store.applyConfig(
      parseClusterConfig({
        cluster,
        region: 'us-east-1',
        nodes: [
          { name: 'node1', instanceId: 'i-0a1', az: 'us-east-1a' },
          { name: 'node2', instanceId: 'i-0a2', az: 'us-east-1b' },
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
  });

  it('a Spot warning for a configured instance is recorded as a fact and reconciles its cluster', async () => {
    const { handler } = await import('../../functions/reconcile-ec2-event');
    const event = {
      ...base,
      source: 'aws.ec2',
      'detail-type': 'EC2 Spot Instance Interruption Warning',
      detail: { 'instance-id': 'i-0a2', 'instance-action': 'terminate' },
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
        detail: { 'instance-id': 'i-0a1' },
      },
      context('req-3'),
    )) as InvocationResult;
    expect(other.ignored).toMatch(/account 999999999999/);
    const unknown = (await handler(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Instance State-change Notification',
        detail: { 'instance-id': 'i-0ffff', state: 'stopped' },
      },
      context('req-4'),
    )) as InvocationResult;
    expect(unknown.ignored).toMatch(/i-0ffff belongs to no configured cluster/);
  });

  it('a stream batch with an agent report reconciles that cluster', async () => {
    const { handler } = await import('../../functions/reconcile-stream');
    const record = {
      eventName: 'MODIFY',
      dynamodb: { Keys: { pk: { S: `NODE#${cluster}#node1` }, sk: { S: 'HEARTBEAT' } } },
    };
    const result = (await handler({ Records: [record] } as never, context('req-5'))) as InvocationResult;
    expect(result.clusters.map((c) => c.cluster)).toEqual([cluster]);
  });
});
