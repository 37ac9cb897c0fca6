/** Triggers only say where to look and carry facts; events are validated strictly. */
import { describe, expect, it } from 'vitest';
import { clustersFromStream, parseEventBridgeEvent } from '../../controller/reconcile/triggers';

const base = {
  version: '0',
  id: 'e1',
  account: '111122223333',
  region: 'us-east-1',
  time: '2026-11-23T12:00:00Z',
  resources: [],
};
const expected = { account: '111122223333', region: 'us-east-1' };

describe('EventBridge events', () => {
  it('recognizes the schedule', () => {
    expect(
      parseEventBridgeEvent(
        { ...base, source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} },
        expected,
      ),
    ).toEqual({ kind: 'schedule' });
  });

  it('turns EC2 state changes, Spot warnings and rebalance recommendations into facts', () => {
    const state = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Instance State-change Notification',
        detail: { 'instance-id': 'i-0abc', state: 'stopping' },
      },
      expected,
    );
    expect(state).toEqual({
      kind: 'instance',
      summary: 'i-0abc is stopping',
      facts: [
        {
          instanceId: 'i-0abc',
          fact: { kind: 'instance-state', at: Date.parse(base.time), detail: 'EC2 reports stopping' },
        },
      ],
    });
    const spot = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Spot Instance Interruption Warning',
        detail: { 'instance-id': 'i-0abc', 'instance-action': 'terminate' },
      },
      expected,
    );
    expect(spot).toMatchObject({
      kind: 'instance',
      facts: [{ fact: { kind: 'spot-interruption', detail: 'Spot terminate in 2 minutes' } }],
    });
    const rebalance = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Instance Rebalance Recommendation',
        detail: { 'instance-id': 'i-0abc' },
      },
      expected,
    );
    expect(rebalance).toMatchObject({
      kind: 'instance',
      facts: [{ instanceId: 'i-0abc', fact: { kind: 'rebalance' } }],
    });
  });

  it('reads the instances of an AWS Health event and treats a closed one as a plain look', () => {
    const open = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.health',
        'detail-type': 'AWS Health Event',
        resources: ['arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb'],
        detail: {
          service: 'EC2',
          eventTypeCode: 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED',
          affectedEntities: [{ entityValue: 'i-0aaa' }],
        },
      },
      expected,
    );
    expect(open).toMatchObject({
      kind: 'instance',
      facts: [{ instanceId: 'i-0aaa' }, { instanceId: 'i-0bbb' }],
    });
    const closed = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.health',
        'detail-type': 'AWS Health Event',
        detail: { service: 'EC2', eventTypeCode: 'X', statusCode: 'closed' },
      },
      expected,
    );
    expect(closed).toEqual({ kind: 'schedule' });
  });

  it('drops events of another account or region, malformed ones, and unknown kinds, saying why', () => {
    const stateChange = {
      ...base,
      source: 'aws.ec2',
      'detail-type': 'EC2 Instance State-change Notification',
      detail: { 'instance-id': 'i-0abc', state: 'stopped' },
    };
    expect(parseEventBridgeEvent({ ...stateChange, account: '999999999999' }, expected)).toEqual({
      kind: 'ignored',
      reason: 'event from account 999999999999, this deployment serves 111122223333',
    });
    expect(parseEventBridgeEvent({ ...stateChange, region: 'eu-west-1' }, expected)).toMatchObject({
      kind: 'ignored',
      reason: expect.stringMatching(/region eu-west-1/),
    });
    expect(
      parseEventBridgeEvent({ ...stateChange, detail: { 'instance-id': 'not-an-id', state: 'x' } }, expected),
    ).toMatchObject({ kind: 'ignored' });
    expect(parseEventBridgeEvent({ hello: 'world' }, expected)).toMatchObject({
      kind: 'ignored',
      reason: expect.stringMatching(/not an EventBridge event/),
    });
    expect(
      parseEventBridgeEvent(
        { ...base, source: 'aws.s3', 'detail-type': 'Object Created', detail: {} },
        expected,
      ),
    ).toMatchObject({ kind: 'ignored', reason: 'unexpected event aws.s3 / Object Created' });
  });
});

describe('DynamoDB stream records', () => {
  const record = (pk: string, sk: string, eventName = 'MODIFY') => ({
    eventName,
    dynamodb: { Keys: { pk: { S: pk }, sk: { S: sk } } },
  });
  it('points at the clusters of agent reports and requests, once each', () => {
    const { clusters, ignored } = clustersFromStream([
      record('NODE#orders#node1', 'HEARTBEAT'),
      record('NODE#orders#node2', 'HEARTBEAT'),
      record('CLUSTER#billing', 'REQUEST#0abc-1', 'INSERT'),
      record('CLUSTER#billing', 'GROUP#db'),
      record('NODE#orders#node1', 'HEARTBEAT', 'REMOVE'),
      { garbage: true },
    ]);
    expect(clusters.sort()).toEqual(['billing', 'orders']);
    expect(ignored).toBe(3);
  });
});
