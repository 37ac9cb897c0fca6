/** Triggers only say where to look and carry facts; events are validated strictly. */
import { describe, expect, it } from 'vitest';
import { parseEventBridgeEvent, parseStreamBatch } from '../../controller/reconcile/triggers';

const base = {
  version: '0',
  id: 'e1',
  account: '111122223333',
  region: 'us-east-1',
  time: '2026-11-23T12:00:00Z',
  resources: [],
};
const expected = { account: '111122223333', region: 'us-east-1' };
/** The controller's clock: a minute after the events. */
const now = Date.parse('2026-11-23T12:01:00Z');

describe('EventBridge events', () => {
  it('recognizes the schedule', () => {
    expect(
      parseEventBridgeEvent(
        { ...base, source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} },
        expected,
        now,
      ),
    ).toEqual({ kind: 'schedule' });
  });

  it('turns EC2 state changes, Spot warnings and rebalance recommendations into facts', () => {
    const state = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Instance State-change Notification',
        detail: { 'instance-id': 'i-0abc1234', state: 'stopping' },
      },
      expected,
      now,
    );
    expect(state).toEqual({
      kind: 'instance',
      summary: 'i-0abc1234 is stopping',
      facts: [
        {
          instanceId: 'i-0abc1234',
          instanceArn: 'arn:aws:ec2:us-east-1:111122223333:instance/i-0abc1234',
          fact: {
            kind: 'instance-state',
            at: Date.parse(base.time),
            detail: 'EC2 reports stopping',
            state: 'stopping',
          },
        },
      ],
    });
    const spot = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.ec2',
        'detail-type': 'EC2 Spot Instance Interruption Warning',
        detail: { 'instance-id': 'i-0abc1234', 'instance-action': 'terminate' },
      },
      expected,
      now,
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
        detail: { 'instance-id': 'i-0abc1234' },
      },
      expected,
      now,
    );
    expect(rebalance).toMatchObject({
      kind: 'instance',
      facts: [{ instanceId: 'i-0abc1234', fact: { kind: 'rebalance' } }],
    });
  });

  it('reads the instances of an AWS Health event and treats a closed one as a plain look', () => {
    const open = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.health',
        'detail-type': 'AWS Health Event',
        resources: ['arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb2222'],
        detail: {
          service: 'EC2',
          eventTypeCode: 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED',
          affectedEntities: [{ entityValue: 'i-0aaa1111' }],
        },
      },
      expected,
      now,
    );
    expect(open).toMatchObject({
      kind: 'instance',
      facts: [{ instanceId: 'i-0aaa1111' }, { instanceId: 'i-0bbb2222' }],
    });
    const closed = parseEventBridgeEvent(
      {
        ...base,
        source: 'aws.health',
        'detail-type': 'AWS Health Event',
        detail: { service: 'EC2', eventTypeCode: 'X', statusCode: 'closed' },
      },
      expected,
      now,
    );
    expect(closed).toEqual({ kind: 'schedule' });
  });

  it('drops events of another account or region, malformed ones, and unknown kinds, saying why', () => {
    const stateChange = {
      ...base,
      source: 'aws.ec2',
      'detail-type': 'EC2 Instance State-change Notification',
      detail: { 'instance-id': 'i-0abc1234', state: 'stopped' },
    };
    expect(parseEventBridgeEvent({ ...stateChange, account: '999999999999' }, expected, now)).toEqual({
      kind: 'refused',
      code: 'FOREIGN_EVENT',
      reason: 'event from account 999999999999, this deployment serves 111122223333',
    });
    expect(parseEventBridgeEvent({ ...stateChange, region: 'eu-west-1' }, expected, now)).toMatchObject({
      kind: 'refused',
      code: 'FOREIGN_EVENT',
      reason: expect.stringMatching(/region eu-west-1/),
    });
    expect(
      parseEventBridgeEvent(
        { ...stateChange, detail: { 'instance-id': 'not-an-id', state: 'x' } },
        expected,
        now,
      ),
    ).toMatchObject({ kind: 'refused', code: 'INVALID_EVENT' });
    expect(parseEventBridgeEvent({ hello: 'world' }, expected, now)).toMatchObject({
      kind: 'refused',
      code: 'INVALID_EVENT',
      reason: expect.stringMatching(/not an EventBridge event/),
    });
    expect(
      parseEventBridgeEvent(
        { ...base, source: 'aws.s3', 'detail-type': 'Object Created', detail: {} },
        expected,
        now,
      ),
    ).toMatchObject({
      kind: 'refused',
      code: 'UNEXPECTED_EVENT',
      reason: 'unexpected event aws.s3 / Object Created',
    });
  });
});

describe('event times', () => {
  const stateChange = (time: string) => ({
    ...base,
    time,
    source: 'aws.ec2',
    'detail-type': 'EC2 Instance State-change Notification',
    detail: { 'instance-id': 'i-0abc1234', state: 'stopping' },
  });
  it('refuses a time that does not parse, lies in the future or is older than a day', () => {
    // Before: an unparseable time became 0 (the stopping fact expired at once); 2999 kept a fact fresh for ever.
    expect(parseEventBridgeEvent(stateChange('yesterday'), expected, now)).toMatchObject({
      kind: 'refused',
      code: 'INVALID_EVENT',
      reason: expect.stringMatching(/^not an EventBridge event: time: time must be an ISO 8601 time/),
    });
    expect(parseEventBridgeEvent(stateChange('2026-13-45T99:00:00Z'), expected, now)).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/is not a valid time/),
    });
    expect(parseEventBridgeEvent(stateChange('2999-01-01T00:00:00Z'), expected, now)).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/ahead of the controller's clock/),
    });
    expect(parseEventBridgeEvent(stateChange('1970-01-01T00:00:00Z'), expected, now)).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/more than 24 hours old/),
    });
  });
  it("keeps a fact's time, but never ahead of the controller's clock (skew up to 5 minutes)", () => {
    const ahead = parseEventBridgeEvent(stateChange('2026-11-23T12:03:00Z'), expected, now);
    expect(ahead).toMatchObject({ kind: 'instance', facts: [{ fact: { at: now } }] });
    const late = parseEventBridgeEvent(stateChange('2026-11-23T11:00:00Z'), expected, now);
    expect(late).toMatchObject({
      kind: 'instance',
      facts: [{ fact: { at: Date.parse('2026-11-23T11:00:00Z') } }],
    });
  });
});

describe('DynamoDB stream records', () => {
  let seq = 100;
  const record = (pk: string, sk: string, eventName = 'MODIFY') => ({
    eventName,
    eventSource: 'aws:dynamodb',
    dynamodb: { Keys: { pk: { S: pk }, sk: { S: sk } }, SequenceNumber: String(seq++) },
  });
  const hb = (cluster: string, id: string) =>
    `NODE#${cluster}#arn:aws:ec2:us-east-1:111122223333:instance/${id}`;
  it('points at the clusters of agent reports and requests, in batch order, with their sequence numbers', () => {
    const parsed = parseStreamBatch({
      Records: [
        record(hb('orders', 'i-0aaa1111'), 'HEARTBEAT'),
        record(hb('orders', 'i-0bbb2222'), 'HEARTBEAT'),
        record('CLUSTER#billing', 'REQUEST#0abc-0123abcd', 'INSERT'),
        record('CLUSTER#billing', 'GROUP#db'),
        record(hb('orders', 'i-0aaa1111'), 'HEARTBEAT', 'REMOVE'),
        { garbage: true },
      ],
    });
    expect(parsed.kind).toBe('records');
    if (parsed.kind !== 'records') return;
    expect(parsed.pointers.map((p) => [p.cluster, p.index])).toEqual([
      ['orders', 0],
      ['orders', 1],
      ['billing', 2],
    ]);
    expect(parsed.ignored).toBe(1);
    expect(parsed.refused.map((r) => r.index)).toEqual([3, 5]);
  });
  it('refuses what is not a batch, and cluster names the definition could not hold', () => {
    // Before: Records of {}, 42 or {length: 3} crashed the handler with a TypeError.
    for (const event of [
      undefined,
      null,
      42,
      'x',
      [],
      {},
      { Records: {} },
      { Records: 42 },
      { Records: { length: 3 } },
      { Records: [] },
    ])
      expect(parseStreamBatch(event)).toMatchObject({ kind: 'refused', code: 'INVALID_EVENT' });
    // Before: "", "x#y" or 5,000 characters from a REQUEST# key reached DynamoDB.
    for (const name of ['', 'x#y', 'x'.repeat(5000), 'Orders', '-a'])
      expect(
        parseStreamBatch({ Records: [record(`CLUSTER#${name}`, 'REQUEST#0abc-0123abcd', 'INSERT')] }),
      ).toMatchObject({
        kind: 'records',
        pointers: [],
        refused: [{ index: 0 }],
      });
  });
  it("points at the cluster of reconcile's own repair requests, written new or overwritten", () => {
    const parsed = parseStreamBatch({
      Records: [
        record('CLUSTER#orders', 'REPAIR#db', 'INSERT'),
        record('CLUSTER#billing', 'REPAIR#web'),
        record('CLUSTER#billing', 'REPAIR#x#y'),
        record('CLUSTER#x#y', 'REPAIR#db'),
      ],
    });
    expect(parsed).toMatchObject({
      kind: 'records',
      pointers: [
        { cluster: 'orders', index: 0 },
        { cluster: 'billing', index: 1 },
      ],
      refused: [{ index: 2 }, { index: 3 }],
    });
  });
});
