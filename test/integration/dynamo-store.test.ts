/**
 * The DynamoDB state store against the moto server, through the real AWS SDK v3 client: conditional
 * writes, the per-group lock, epochs, requests processed once, heartbeats, facts and audit.
 */
import { DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { ConflictError, LockBusyError, NotFoundError } from '../../shared/base/errors';
import { parseClusterConfig } from '../../shared/config/load';
import { type Heartbeat, initialGroupState } from '../../shared/core/model';
import { instanceArn, keys } from '../../shared/table/keys';
import { aws, uniqueName } from './support';

/** moto's account: the table's, which apply records in the definition. */
const ACCOUNT = '123456789012';
const arnOf = (id: string) => instanceArn({ region: 'us-east-1', account: ACCOUNT }, id);

const config = parseClusterConfig({
  cluster: 'orders',
  region: 'us-east-1',
  nodes: [
    { name: 'node1', instanceId: 'i-0aaa', eni: 'eni-0aaa', az: 'us-east-1a', privateIp: '10.0.1.10' },
    { name: 'node2', instanceId: 'i-0bbb', eni: 'eni-0bbb', az: 'us-east-1b', privateIp: '10.0.2.10' },
  ],
  groups: [
    {
      name: 'db',
      nodes: ['node1', 'node2'],
      resources: [{ type: 'exec', name: 'app', start: '/s', stop: '/t' }],
    },
  ],
});
const group = config.groups[0]!;

function heartbeat(node: string, seq: number): Heartbeat {
  return {
    cluster: 'orders',
    node,
    token: `a1/${seq}`,
    seq,
    incarnation: 'a1',
    sentAt: 1_000 + seq,
    leaseMs: 10_000,
    agentVersion: 'test',
    state: 'running',
    reason: 'periodic',
    monitors: { pidw1: { status: 'ok' } },
    isolated: false,
    groups: { db: { epoch: 0, state: 'stopped' } },
    peers: {},
  };
}

describe('DynamoStore on moto', () => {
  let store: DynamoStore;
  beforeAll(async () => {
    store = new DynamoStore(uniqueName('state'), aws());
    expect((await store.createTable()).created).toBe(true);
  });

  it('creates the table once, with a stream and TTL on expiresAt', async () => {
    expect((await store.createTable()).created).toBe(false);
    const table = await store.describeTable();
    expect(table?.StreamSpecification?.StreamEnabled).toBe(true);
    expect(table?.BillingModeSummary?.BillingMode ?? 'PAY_PER_REQUEST').toBe('PAY_PER_REQUEST');
    const ttl = await store.client.send(new DescribeTimeToLiveCommand({ TableName: store.table }));
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe('expiresAt');
  });

  it('names the table and the fix when it does not exist', async () => {
    const missing = new DynamoStore(uniqueName('missing'), aws());
    const error = await missing.getConfig('orders').catch((e) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.code).toBe('TABLE_NOT_FOUND');
    expect(error.message).toMatch(/failoverctl init --table missing-/);
  });

  it('stores versioned configs, idempotently, and refuses a concurrent apply', async () => {
    const first = await store.applyConfig(config, { now: 1, by: 'test' });
    expect(first).toMatchObject({ changed: true, version: 1 });
    const again = await store.applyConfig(config, { now: 2 });
    expect(again).toMatchObject({ changed: false, version: 1 });

    const changed = parseClusterConfig({ ...config, timing: { ...config.timing, leaseMs: 12_000 } });
    const second = await store.applyConfig(changed, { now: 3, expectedVersion: 1 });
    expect(second).toMatchObject({ changed: true, version: 2 });
    expect((await store.getConfig('orders'))?.config.timing.leaseMs).toBe(12_000);

    // An operator who reviewed version 1 must not silently overwrite version 2.
    await expect(store.applyConfig(config, { now: 4, expectedVersion: 1 })).rejects.toBeInstanceOf(
      ConflictError,
    );
    // The instance index is keyed by the instance's ARN (what an agent's IAM policy names).
    expect(await store.findInstance(arnOf('i-0bbb'))).toEqual({ cluster: 'orders', node: 'node2' });
    expect(await store.findInstance('i-0bbb')).toBeUndefined();
    expect(await store.listClusters()).toContain('orders');
    // apply records the table's account; a definition naming another account is refused.
    expect((await store.getConfig('orders'))?.config.account).toBe(ACCOUNT);
    await expect(store.applyConfig({ ...config, account: '999999999999' }, { now: 4 })).rejects.toMatchObject(
      {
        code: 'ACCOUNT_MISMATCH',
        message: expect.stringMatching(/names account 999999999999, but table .* is in account 123456789012/),
      },
    );

    // A node removed from the definition leaves the instance index.
    const oneNode = parseClusterConfig({
      ...changed,
      nodes: [changed.nodes[0]],
      groups: [{ ...group, nodes: ['node1'] }],
    });
    expect((await store.applyConfig(oneNode, { now: 5 })).version).toBe(3);
    expect(await store.findInstance(arnOf('i-0bbb'))).toBeUndefined();
    await store.applyConfig(config, { now: 6 });
  });

  it('stores a definition too large for one item gzipped, and a small one as a map', async () => {
    const groups = Array.from({ length: 1000 }, (_, i) => ({
      name: `g${i}`,
      nodes: ['node1', 'node2'],
      resources: [
        { type: 'vip' as const, name: `g${i}-vip`, ip: `172.16.${i >> 8}.${i & 255}`, vpcId: 'vpc-0aaa' },
        {
          type: 'dns' as const,
          name: `g${i}-dns`,
          hostedZoneId: 'Z0AAAA',
          recordName: `g${i}.orders.internal`,
        },
        { type: 'exec' as const, name: `g${i}-app`, start: '/opt/app/start.sh', stop: '/opt/app/stop.sh' },
      ],
    }));
    const big = parseClusterConfig({ ...config, cluster: 'big', groups });
    expect(JSON.stringify(big).length).toBeGreaterThan(400 * 1024);
    expect(await store.applyConfig(big, { now: 1 })).toMatchObject({ changed: true, version: 1 });
    const raw = await store.doc.send(
      new GetCommand({ TableName: store.table, Key: { pk: 'CONFIG#big', sk: 'CONFIG' } }),
    );
    expect(raw.Item?.config).toBeUndefined();
    expect(raw.Item?.configGz).toBeInstanceOf(Uint8Array);
    expect((raw.Item?.configGz as Uint8Array | undefined)?.length).toBeLessThan(64 * 1024);
    const back = await store.getConfig('big');
    expect(back?.config).toEqual({ ...big, account: ACCOUNT });
    expect(await store.applyConfig(big, { now: 2 })).toMatchObject({ changed: false, version: 1 });

    await store.applyConfig(config, { now: 3 });
    const small = await store.doc.send(
      new GetCommand({ TableName: store.table, Key: { pk: 'CONFIG#orders', sk: 'CONFIG' } }),
    );
    expect(small.Item?.config).toMatchObject({ cluster: 'orders' });
    expect(small.Item?.configGz).toBeUndefined();
  });

  it('keeps at most maxInFlight requests in flight; the others wait their turn', async () => {
    const limited = new DynamoStore(store.table, aws(), undefined, { maxInFlight: 3 });
    let inFlight = 0;
    let peak = 0;
    limited.client.middlewareStack.add(
      (next) => async (args) => {
        peak = Math.max(peak, ++inFlight);
        try {
          return await next(args);
        } finally {
          inFlight--;
        }
      },
      { step: 'initialize', name: 'peak' },
    );
    // Requests (the records of 20 groups read at once would travel in one BatchGetItem).
    const read = await Promise.all(
      Array.from({ length: 20 }, (_, i) => limited.getRequest('orders', `nothing-${i}`)),
    );
    expect(read).toEqual(Array(20).fill(undefined));
    expect(peak).toBe(3);
  });

  it('writes many groups at once, each with its own condition and answer (one UpdateItem each), and reads them together', async () => {
    const batched = new DynamoStore(store.table, aws());
    const ops: string[] = [];
    batched.client.middlewareStack.add(
      (next, context) => async (args) => {
        ops.push(String(context.commandName).replace(/Command$/, ''));
        return next(args);
      },
      { step: 'initialize', name: 'ops' },
    );
    const now = Date.now();
    const names = Array.from({ length: 12 }, (_, i) => `batch-${i}-${uniqueName('g')}`);
    // Half of them are locked by someone else first.
    for (const g of names.slice(0, 6))
      await store.acquireLock(
        'orders',
        initialGroupState({ ...group, name: g }, now),
        { holder: 'other', expiresAt: now + 60_000 },
        now,
      );
    ops.length = 0;
    const taken = await Promise.allSettled(
      names.map((g) =>
        batched.acquireLock(
          'orders',
          initialGroupState({ ...group, name: g }, now),
          { holder: 'mine', expiresAt: now + 60_000 },
          now,
        ),
      ),
    );
    // The locked six lost their race alone; the free six were taken, each record as written.
    taken.slice(0, 6).forEach((r) => {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(LockBusyError);
    });
    taken.slice(6).forEach((r, i) => {
      expect(r.status).toBe('fulfilled');
      expect((r as PromiseFulfilledResult<{ group: string; lock?: { holder: string } }>).value).toMatchObject(
        {
          group: names[6 + i],
          lock: { holder: 'mine' },
        },
      );
    });
    // Each conditional write alone (controller/state/dynamo-store.ts groupWrites: no transactions).
    expect(ops).not.toContain('TransactWriteItems');
    // Twelve, and six more: the free six have no record yet, so their short lock write (SET #lock on
    // an existing record) fails and the record is created with every field.
    expect(ops.filter((o) => o === 'UpdateItem').length).toBe(18);

    // Takeovers of the six: one with a stale epoch is refused, the others bump their epoch.
    const guard = { holder: 'mine', now: now + 1 };
    const updated = await Promise.allSettled(
      names
        .slice(6)
        .map((g, i) =>
          batched.updateGroup('orders', g, { ...guard, epoch: i === 0 ? 7 : 0 }, { owner: 'node1' }, true),
        ),
    );
    expect(updated[0]?.status).toBe('rejected');
    expect((updated[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    for (const r of updated.slice(1))
      expect((r as PromiseFulfilledResult<{ epoch: number; owner: string }>).value).toMatchObject({
        epoch: 1,
        owner: 'node1',
      });

    // Read back together: each group's own record, fresh.
    ops.length = 0;
    const records = await Promise.all(names.map((g) => batched.getGroup('orders', g)));
    expect(records.map((r) => r?.lock?.holder)).toEqual([
      ...Array(6).fill('other'),
      ...Array(6).fill('mine'),
    ]);
    expect(records.map((r) => r?.epoch)).toEqual([...Array(7).fill(0), ...Array(5).fill(1)]);
    expect(ops).toEqual(['BatchGetItem']);
  });

  it('gives the per-group lock to one holder at a time and lets it expire', async () => {
    const g = `lock-${uniqueName('g')}`;
    const initial = initialGroupState({ ...group, name: g }, 100);
    const mine = await store.acquireLock('orders', initial, { holder: 'inv-a', expiresAt: 10_000 }, 100);
    expect(mine).toMatchObject({
      group: g,
      epoch: 0,
      owner: null,
      phase: 'Offline',
      lock: { holder: 'inv-a' },
    });

    const busy = await store
      .acquireLock('orders', initial, { holder: 'inv-b', expiresAt: 20_000 }, 200)
      .catch((e) => e);
    expect(busy).toBeInstanceOf(LockBusyError);
    expect(busy.holder).toBe('inv-a');

    // Re-entrant for the holder; taken over only once expired.
    await store.acquireLock('orders', initial, { holder: 'inv-a', expiresAt: 10_000 }, 300);
    const taken = await store.acquireLock('orders', initial, { holder: 'inv-b', expiresAt: 30_000 }, 10_000);
    expect(taken.lock?.holder).toBe('inv-b');

    // The old holder can no longer write or fence.
    await expect(
      store.updateGroup('orders', g, { holder: 'inv-a', epoch: 0, now: 10_001 }, { phase: 'Starting' }),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(store.fence('orders', g, { holder: 'inv-a', epoch: 0, now: 10_001 })).rejects.toBeInstanceOf(
      ConflictError,
    );

    // A kick makes release fail once so the holder looks again.
    await store.kick('orders', g);
    expect(await store.releaseLock('orders', g, taken.lock!, taken.kick)).toBe(false);
    const fresh = await store.getGroup('orders', g);
    expect(fresh?.kick).toBe(taken.kick + 1);
    expect(await store.releaseLock('orders', g, taken.lock!, fresh!.kick)).toBe(true);
    expect((await store.getGroup('orders', g))?.lock).toBeUndefined();
    // Releasing a lock one does not hold is a no-op.
    expect(await store.releaseLock('orders', g, { holder: 'inv-z', expiresAt: 0 }, 0)).toBe(true);
  });

  it("lets a late release of an earlier acquisition leave the holder's later one alone (a retry inside an invocation)", async () => {
    const g = `lock-${uniqueName('g')}`;
    const initial = initialGroupState({ ...group, name: g }, 100);
    const first = { holder: 'inv-a', expiresAt: 10_000, acquisition: '1' };
    await store.acquireLock('orders', initial, first, 100);
    const second = await store.acquireLock('orders', initial, { ...first, acquisition: '2' }, 200);
    // The first attempt's release, given up on, lands now: not ours any more, nothing removed.
    expect(await store.releaseLock('orders', g, first, Number.NaN)).toBe(true);
    expect((await store.getGroup('orders', g))?.lock).toEqual(second.lock);
    expect(await store.releaseLock('orders', g, second.lock!, Number.NaN)).toBe(true);
    expect((await store.getGroup('orders', g))?.lock).toBeUndefined();
  });

  it('gives a new group to exactly one of several invocations racing for it', async () => {
    // DynamoDB applies each conditional write atomically; the emulator must too (moto-atomic.py).
    for (let trial = 0; trial < 10; trial++) {
      const g = `race-${uniqueName('g')}`;
      const now = Date.now();
      const results = await Promise.allSettled(
        ['a', 'b', 'c', 'd'].map((h) =>
          store.acquireLock(
            'orders',
            initialGroupState({ ...group, name: g }, now),
            { holder: h, expiresAt: now + 30_000 },
            now,
          ),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(
        results
          .filter((r) => r.status === 'rejected')
          .every((r) => (r as PromiseRejectedResult).reason instanceof LockBusyError),
      ).toBe(true);
    }
  });

  it('takes over with one conditional write: the epoch only grows and a stale epoch is refused', async () => {
    const g = `epoch-${uniqueName('g')}`;
    await store.acquireLock(
      'orders',
      initialGroupState({ ...group, name: g }, 0),
      { holder: 'inv-a', expiresAt: 50_000 },
      0,
    );
    const guard = { holder: 'inv-a', now: 1_000 };
    const s1 = await store.updateGroup(
      'orders',
      g,
      { ...guard, epoch: 0 },
      { owner: 'node1', phase: 'Starting', mayRun: ['node1'] },
      true,
    );
    expect(s1).toMatchObject({ epoch: 1, owner: 'node1', phase: 'Starting', mayRun: ['node1'] });
    await store.fence('orders', g, { ...guard, epoch: 1 });
    // A plan made at epoch 0 is refused everywhere.
    await expect(
      store.updateGroup('orders', g, { ...guard, epoch: 0 }, { owner: 'node2' }, true),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(store.fence('orders', g, { ...guard, epoch: 0 })).rejects.toBeInstanceOf(ConflictError);
    const s2 = await store.updateGroup(
      'orders',
      g,
      { ...guard, epoch: 1 },
      { owner: 'node2', lastError: null, blocked: { node1: { reason: 'x', at: 5 } } },
      true,
    );
    expect(s2).toMatchObject({
      epoch: 2,
      owner: 'node2',
      mayRun: ['node1'],
      blocked: { node1: { reason: 'x', at: 5 } },
    });
    expect(await store.listGroups('orders')).toEqual(
      expect.arrayContaining([expect.objectContaining({ group: g, epoch: 2 })]),
    );
  });

  it('reads heartbeats strongly consistently, one item per node', async () => {
    await store.putHeartbeat(heartbeat('node1', 1));
    await store.putHeartbeat(heartbeat('node1', 2));
    await store.putHeartbeat(heartbeat('node2', 7));
    const hbs = await store.getHeartbeats('orders', ['node1', 'node2', 'node9']);
    expect(Object.keys(hbs).sort()).toEqual(['node1', 'node2']);
    expect(hbs.node1).toMatchObject({ token: 'a1/2', seq: 2, monitors: { pidw1: { status: 'ok' } } });
    expect(hbs.node2?.seq).toBe(7);
    // Each at the key of its instance's ARN: the one key IAM lets that node's agent write.
    const raw = await store.doc.send(
      new GetCommand({ TableName: store.table, Key: keys.heartbeat('orders', arnOf('i-0aaa')) }),
    );
    expect(raw.Item?.node).toBe('node1');
  });

  it("drops a heartbeat that claims another node's name at its own key (a forgery)", async () => {
    // node1's agent may write only its own key; what it claims there about node2 is not node2's word.
    await store.doc.send(
      new PutCommand({
        TableName: store.table,
        Item: { ...keys.heartbeat('orders', arnOf('i-0aaa')), ...heartbeat('node2', 99) },
      }),
    );
    const hbs = await store.getHeartbeats('orders', ['node1', 'node2']);
    expect(hbs.node2?.seq).toBe(7);
    expect(hbs.node1).toBeUndefined();
    await store.putHeartbeat(heartbeat('node1', 3));
  });

  it('a pinned takeover commits only while every pinned heartbeat still holds the renewal read (one transaction)', async () => {
    const g = `pinned-${uniqueName('g')}`;
    await store.acquireLock(
      'orders',
      { ...initialGroupState({ ...group, name: g }, 0), owner: 'node2', mayRun: ['node2'] },
      { holder: 'inv-p', expiresAt: 50_000 },
      0,
    );
    const guard = { holder: 'inv-p', now: 1_000, epoch: 0 };
    await store.putHeartbeat(heartbeat('node2', 20));
    const patch = { owner: 'node1', phase: 'Starting' as const, mayRun: ['node1'], lastOwner: 'node1' };
    // node2 renewed after the read that proved it stopped: nothing is written.
    await store.putHeartbeat(heartbeat('node2', 21));
    const renewed = await store
      .updateGroup('orders', g, guard, patch, true, [{ node: 'node2', token: 'a1/20' }])
      .catch((e) => e);
    expect(renewed).toBeInstanceOf(ConflictError);
    expect(renewed.message).toMatch(/node2 renewed since it was read/);
    // A pin of "no renewal" for a node that has one is refused too.
    await expect(
      store.updateGroup('orders', g, guard, patch, true, [{ node: 'node1', token: null }]),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(await store.getGroup('orders', g)).toMatchObject({ epoch: 0, owner: 'node2', mayRun: ['node2'] });
    // Still the renewal read: the takeover and the new mayRun land together, epoch + 1.
    const taken = await store.updateGroup('orders', g, guard, patch, true, [
      { node: 'node2', token: 'a1/21' },
    ]);
    expect(taken).toMatchObject({ epoch: 1, owner: 'node1', mayRun: ['node1'], lastOwner: 'node1' });
    expect(taken.lock).toMatchObject({ holder: 'inv-p' });
    // The group's own condition still holds in the transaction: a stale epoch is refused.
    await expect(
      store.updateGroup('orders', g, guard, { owner: 'node2' }, true, [{ node: 'node2', token: 'a1/21' }]),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it('processes a request once, oldest first', async () => {
    const cluster = uniqueName('req');
    const a = await store.putRequest(cluster, { kind: 'move', group: 'db', to: 'node2', by: 'alice' }, 1_000);
    const b = await store.putRequest(cluster, { kind: 'stop', group: 'db', by: 'bob' }, 2_000);
    expect((await store.listRequests(cluster)).map((r) => r.id)).toEqual([a.id, b.id]);
    expect(await store.completeRequest(cluster, a.id, 'done', 'moving', 3_000)).toBe(true);
    expect(await store.completeRequest(cluster, a.id, 'rejected', 'again', 3_001)).toBe(false);
    expect((await store.listRequests(cluster)).map((r) => r.id)).toEqual([b.id]);
    expect(await store.getRequest(cluster, a.id)).toMatchObject({
      status: 'done',
      message: 'moving',
      to: 'node2',
    });
  });

  it('keeps facts per node and audit events in time order with a TTL', async () => {
    const cluster = uniqueName('facts');
    await store.putFact(
      cluster,
      'node1',
      { kind: 'spot-interruption', at: 5_000, detail: 'terminate at 12:00' },
      600_000,
    );
    await store.putFact(cluster, 'node1', { kind: 'rebalance', at: 6_000, detail: 'rebalance' }, 600_000);
    await store.putFact(
      cluster,
      'node2',
      { kind: 'instance-state', at: 7_000, detail: 'EC2 reports stopped', state: 'stopped' },
      600_000,
    );
    const facts = await store.getFacts(cluster);
    expect(facts.node1?.map((f) => f.kind).sort()).toEqual(['rebalance', 'spot-interruption']);
    expect(facts.node1?.find((f) => f.kind === 'rebalance')).toEqual({
      kind: 'rebalance',
      at: 6_000,
      detail: 'rebalance',
    });
    // The state EC2 reported comes back as it was stored (decide lets a later renewal void "stopped").
    expect(facts.node2).toEqual([
      { kind: 'instance-state', at: 7_000, detail: 'EC2 reports stopped', state: 'stopped' },
    ]);

    await store.appendAudit({
      at: Date.UTC(2026, 0, 1, 0, 0, 1),
      cluster,
      group: 'db',
      kind: 'decision',
      message: 'first',
    });
    await store.appendAudit({
      at: Date.UTC(2026, 0, 1, 0, 0, 2),
      cluster,
      group: 'db',
      kind: 'decision',
      message: 'second',
    });
    const events = await store.listAudit(cluster, { since: Date.UTC(2026, 0, 1) });
    expect(events.map((e) => e.message)).toEqual(['first', 'second']);
    expect(
      (await store.listAudit(cluster, { since: Date.UTC(2026, 0, 1, 0, 0, 2) })).map((e) => e.message),
    ).toEqual(['second']);
    expect((await store.listAudit(cluster, { after: events[0]!.id })).map((e) => e.message)).toEqual([
      'second',
    ]);
    expect(events[0]).toMatchObject({ group: 'db', kind: 'decision' });
  });
});
