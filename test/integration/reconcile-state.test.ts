/**
 * reconcile end to end over the real state table on moto (conditional writes, lock, epochs, audit,
 * requests), with the in-memory cloud standing in for the entry points and SSM.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../controller/reconcile/clock';
import { LAMBDA_RESERVE_MS } from '../../controller/reconcile/controller';
import { handleEventBridge } from '../../controller/reconcile/entry';
import {
  CLEANUP_TIMEOUT_MS,
  type ReconcileOptions,
  reconcileCluster,
} from '../../controller/reconcile/reconcile';
import { ExecFailedError } from '../../controller/resources/exec';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { scheduled } from '../../sandbox/sandbox';
import { ThrottledError } from '../../shared/aws/errors';
import { LockBusyError } from '../../shared/base/errors';
import { parseClusterConfig } from '../../shared/config/load';
import { type Heartbeat, initialGroupState } from '../../shared/core/model';
import type { Log } from '../../shared/core/ports';
import { MemoryCloud, StoreWorld } from '../../testkit/memory-cloud';
import { aws, uniqueName } from './support';

const LEASE = 3_000;

function config(cluster: string) {
  return parseClusterConfig({
    cluster,
    region: 'us-east-1',
    timing: { heartbeatIntervalMs: 500, leaseMs: LEASE, maxClockSkewMs: 100 },
    nodes: [
      { name: 'node1', instanceId: 'i-01', eni: 'eni-01', az: 'us-east-1a', privateIp: '10.0.1.10' },
      { name: 'node2', instanceId: 'i-02', eni: 'eni-02', az: 'us-east-1b', privateIp: '10.0.2.10' },
    ],
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [
          { type: 'vip', name: 'vip', ip: '172.16.0.10', vpcId: 'vpc-1' },
          { type: 'eip', name: 'eip', allocationId: 'eipalloc-1' },
          { type: 'exec', name: 'app', start: '/start', stop: '/stop' },
        ],
      },
    ],
  });
}

function heartbeat(cluster: string, node: string, seq: number, over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    cluster,
    node,
    token: `${node}-a/${seq}`,
    seq,
    incarnation: `${node}-a`,
    sentAt: Date.now(),
    leaseMs: LEASE,
    agentVersion: 'test',
    state: 'running',
    reason: 'periodic',
    monitors: {},
    isolated: false,
    groups: {},
    peers: {},
    fence: { maxStopMs: 1_000, watchdogMs: 2_000 },
    ...over,
  };
}

/** `n` groups of one exec resource each, named prefix00, prefix01, ... */
function execGroups(prefix: string, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    name: `${prefix}${String(i).padStart(2, '0')}`,
    nodes: ['node1', 'node2'],
    resources: [{ type: 'exec' as const, name: `${prefix}${i}-app`, start: '/start', stop: '/stop' }],
  }));
}

/** `store` seen through a view that counts the locks each holder holds at once (on the answers). */
function lockCounting(store: DynamoStore) {
  const held = new Map<string, number>();
  const most = new Map<string, number>();
  const counting = Object.create(store) as DynamoStore;
  counting.acquireLock = async (...args: Parameters<DynamoStore['acquireLock']>) => {
    const state = await store.acquireLock(...args);
    const h = args[2].holder;
    held.set(h, (held.get(h) ?? 0) + 1);
    most.set(h, Math.max(most.get(h) ?? 0, held.get(h)!));
    return state;
  };
  counting.releaseLock = async (...args: Parameters<DynamoStore['releaseLock']>) => {
    const released = await store.releaseLock(...args);
    if (released) held.set(args[2].holder, held.get(args[2].holder)! - 1);
    return released;
  };
  return { store: counting, held, most };
}

describe('reconcile over the DynamoDB state table', () => {
  let store: DynamoStore;
  const lines: { message: string; attributes?: Record<string, unknown> }[] = [];
  const log: Log = {
    info: (message, attributes) => lines.push({ message, ...(attributes ? { attributes } : {}) }),
    warn: (message, attributes) => lines.push({ message, ...(attributes ? { attributes } : {}) }),
    error: (message, attributes) => lines.push({ message, ...(attributes ? { attributes } : {}) }),
  };
  /** One invocation through `via` (the table's store, or a view of it that counts or races). */
  const run = (
    cloud: MemoryCloud,
    cluster: string,
    holder: string,
    via: DynamoStore = store,
    options: Partial<ReconcileOptions> = {},
  ) =>
    reconcileCluster(
      { store: via, cloud, notifier: { publish: async () => undefined }, clock: systemClock, log, holder },
      cluster,
      { deadline: Date.now() + 20_000, ...options },
    );

  beforeAll(async () => {
    store = new DynamoStore(uniqueName('reconcile'), aws());
    await store.createTable();
  });

  it('starts the group, changes nothing on a second pass, and fails over on proof that the owner stopped', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);

    const first = await run(cloud, cluster, 'inv-1');
    expect(first.groups[0]).toMatchObject({
      group: 'db',
      status: 'converged',
      owner: 'node1',
      epoch: 1,
      phase: 'Online',
    });
    expect(cloud.entry.get('db/vip')).toBe('node1');
    expect(cloud.entry.get('db/eip')).toBe('node1');
    expect(world.runners('db')).toEqual(['node1']);
    const decisions = lines.filter((l) => l.message === 'decision');
    expect(decisions.length).toBeGreaterThan(0);
    expect(decisions[0]?.attributes).toMatchObject({
      cluster,
      group: 'db',
      observations: expect.arrayContaining([expect.stringMatching(/^node1: running, lease age/)]),
    });

    // Read before write: a second pass makes no change at all.
    const mutationsBefore = cloud.mutations.length;
    const second = await run(cloud, cluster, 'inv-2');
    expect(second.groups[0]).toMatchObject({ status: 'converged', actions: 0, epoch: 1 });
    expect(cloud.mutations.length).toBe(mutationsBefore);

    // node1 goes silent; node2 watched node1's renewal stay unchanged for a whole lease.
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1, { sentAt: Date.now() - 2 * LEASE }));
    await store.putHeartbeat(
      heartbeat(cluster, 'node2', 2, {
        reason: 'change',
        peers: { node1: { token: 'node1-a/1', silentForMs: LEASE + 200 } },
      }),
    );
    world.running.get('db')?.delete('node1'); // it fenced itself
    const third = await run(cloud, cluster, 'inv-3');
    expect(third.groups[0]).toMatchObject({ status: 'converged', owner: 'node2', epoch: 2, phase: 'Online' });
    expect(cloud.entry.get('db/vip')).toBe('node2');
    expect(cloud.entry.get('db/eip')).toBe('node2');
    expect(world.runners('db')).toEqual(['node2']);
    expect(world.landed.every((m) => m.epoch === m.current)).toBe(true);

    const group = await store.getGroup(cluster, 'db');
    expect(group).toMatchObject({ owner: 'node2', epoch: 2, mayRun: ['node2'], lastOwner: 'node2' });
    expect(group?.lock).toBeUndefined();
    const audit = await store.listAudit(cluster);
    expect(audit.map((a) => a.message).join('\n')).toMatch(
      /takeover\(node2\).*node1 is silent: peer node2 saw/,
    );
  });

  it('writes nothing in a steady state, reads per cluster, and locks only the groups that need work before reading for them', async () => {
    const cluster = uniqueName('c');
    const base = config(cluster);
    const groups = ['a', 'b', 'c', 'd', 'e'].map((g) => ({
      name: g,
      nodes: ['node1', 'node2'],
      resources: [{ type: 'exec' as const, name: `${g}-app`, start: '/start', stop: '/stop' }],
    }));
    await store.applyConfig(parseClusterConfig({ ...base, groups }), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    const first = await run(cloud, cluster, 'inv-start');
    expect(first.groups.map((g) => g.phase)).toEqual(Array(5).fill('Online'));

    // Reconciles through a store whose requests are recorded in the order they are sent.
    const counted = new DynamoStore(store.table, aws());
    const sent: string[] = [];
    (counted.client as unknown as DynamoDBClient).middlewareStack.add(
      (next, context) => async (args) => {
        sent.push((context.commandName ?? '?').replace(/Command$/, ''));
        return next(args);
      },
      { step: 'initialize', name: 'sent' },
    );
    const reconcile = (holder: string) => run(cloud, cluster, holder, counted);

    // Steady: the definition, the group records (one query), then one read of the cluster's
    // heartbeats, facts and requests for all 5 groups; no lock, no write.
    const steady = await reconcile('inv-steady');
    expect(steady.groups.map((g) => [g.group, g.status, g.actions])).toEqual(
      groups.map((g) => [g.name, 'converged', 0]),
    );
    expect(sent.slice(0, 2)).toEqual(['GetItem', 'Query']);
    expect(sent.slice(2).sort()).toEqual(['BatchGetItem', 'Query', 'Query']);

    // One group has work (a move request): only it takes its lock, and its reads follow the lock.
    await store.putRequest(cluster, { kind: 'move', group: 'c', to: 'node2', by: 'test' }, Date.now());
    sent.length = 0;
    const moved = await reconcile('inv-move');
    expect(moved.groups.map((g) => g.group)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(moved.groups.find((g) => g.group === 'c')).toMatchObject({ status: 'converged', owner: 'node2' });
    expect(moved.groups.filter((g) => g.group !== 'c').map((g) => g.actions)).toEqual([0, 0, 0, 0]);
    const firstLock = sent.indexOf('UpdateItem');
    expect(firstLock).toBe(5); // GetItem, Query (groups), BatchGetItem + 2 Queries of the read-only pass
    expect(sent.slice(firstLock + 1, firstLock + 4).sort()).toEqual(['BatchGetItem', 'Query', 'Query']);
    const a = await store.getGroup(cluster, 'a');
    expect(a).toMatchObject({ owner: 'node1', epoch: 1 });
    expect(a?.lock).toBeUndefined();
    expect(await store.getGroup(cluster, 'c')).toMatchObject({ owner: 'node2', phase: 'Online' });
    expect(world.runners('c')).toEqual(['node2']);
  });

  /** A cluster of 12 exec groups, both nodes renewing, seen through a view that counts locks. */
  const twelveGroups = async () => {
    const cluster = uniqueName('c');
    const groups = execGroups('g', 12);
    await store.applyConfig(parseClusterConfig({ ...config(cluster), groups }), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    const counted = lockCounting(store);
    const reconcile = (holder: string) => run(cloud, cluster, holder, counted.store, { groupsInFlight: 4 });
    const expectAllOnline = async () => {
      for (const g of groups) {
        expect(await store.getGroup(cluster, g.name)).toMatchObject({
          owner: 'node1',
          phase: 'Online',
          epoch: 1,
        });
        expect(world.runners(g.name)).toEqual(['node1']);
      }
      // One start per group, whichever invocation made it.
      expect(cloud.mutations.filter((m) => m.what.startsWith('ssm start')).length).toBe(12);
      expect([...counted.held.values()].every((n) => n === 0)).toBe(true);
    };
    return { groups, reconcile, most: counted.most, expectAllOnline };
  };

  it('beyond groupsInFlight groups, one invocation fills its slots but never holds more than that many locks at once, and brings every group online', async () => {
    const { groups, reconcile, most, expectAllOnline } = await twelveGroups();
    const alone = await reconcile('inv-alone');
    // Alone, nothing is busy: every wave is full, and none goes past the limit.
    expect(most.get('inv-alone')).toBe(4);
    expect(alone.groups.map((g) => [g.group, g.status])).toEqual(groups.map((g) => [g.name, 'converged']));
    await expectAllOnline();
  });

  it('beyond groupsInFlight groups, two invocations share the work: each stays within its limit and each group converges once', async () => {
    const { groups, reconcile, most, expectAllOnline } = await twelveGroups();
    const outcomes = await Promise.all([reconcile('inv-one'), reconcile('inv-two')]);
    // How full each invocation's waves get depends on which groups the other holds: only the limit is fixed.
    for (const [holder, n] of most) expect(n, holder).toBeLessThanOrEqual(4);
    expect([...most.keys()].sort()).toEqual(['inv-one', 'inv-two']);
    // Each group converged in one invocation (or was found busy in the other); both did some.
    const byGroup = groups.map((g) => outcomes.map((o) => o.groups.find((x) => x.group === g.name)!.status));
    for (const statuses of byGroup) expect(statuses).toContain('converged');
    const worked = outcomes.map((o) => o.groups.filter((g) => g.actions > 0).length);
    expect(
      worked.every((n) => n > 0),
      JSON.stringify(worked),
    ).toBe(true);
    expect(worked[0]! + worked[1]!).toBe(12);
    await expectAllOnline();
  });

  it('waits out a dead holder without holding more than groupsInFlight locks: a group queues for its slot before it takes its lock', async () => {
    const cluster = uniqueName('c');
    const base = config(cluster);
    const groups = execGroups('w', 6);
    await store.applyConfig(parseClusterConfig({ ...base, groups }), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    // A holder that died holding every lock; they run out in 1.5 s.
    for (const g of groups)
      await store.acquireLock(
        cluster,
        initialGroupState(
          parseClusterConfig({ ...base, groups }).groups.find((x) => x.name === g.name)!,
          Date.now(),
        ),
        { holder: 'ghost', expiresAt: Date.now() + 1_500, acquisition: 'ghost' },
        Date.now(),
      );
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    const { store: counting, held: heldBy, most: mostBy } = lockCounting(store);
    const outcome = await run(cloud, cluster, 'inv-after-ghost', counting, { groupsInFlight: 2 });
    expect(outcome.groups.map((g) => g.status)).toEqual(Array(6).fill('converged'));
    expect(mostBy.get('inv-after-ghost')).toBeLessThanOrEqual(2);
    expect(heldBy.get('inv-after-ghost')).toBe(0);
    for (const g of groups) expect(world.runners(g.name)).toEqual(['node1']);
    await expect(run(cloud, cluster, 'inv-zero', store, { groupsInFlight: 0 })).rejects.toThrow(
      /groupsInFlight must be a whole number of at least 1 \(got 0\)/,
    );
  });

  it('lets one of several concurrent invocations work and the others step aside', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    const outcomes = await Promise.all(['a', 'b', 'c', 'd'].map((h) => run(cloud, cluster, `inv-${h}`)));
    const statuses = outcomes.map((o) => o.groups[0]!.status);
    expect(statuses.filter((s) => s === 'converged').length).toBeGreaterThanOrEqual(1);
    expect(
      statuses.every((s) => s === 'converged' || s === 'busy'),
      JSON.stringify(outcomes),
    ).toBe(true);
    expect(await store.getGroup(cluster, 'db')).toMatchObject({ owner: 'node1', epoch: 1, phase: 'Online' });
    expect(world.runners('db')).toEqual(['node1']);
    // Exactly one takeover happened: one start of the application.
    expect(cloud.mutations.filter((m) => m.what.startsWith('ssm start')).length).toBe(1);
  });

  it('wakes a holder waiting on time when it is kicked (a new fact waits about a second, not the whole wait)', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    await run(cloud, cluster, 'inv-1');
    // node2 doubts node1: its renewal unchanged for two heartbeats, as node1's own send time (1 s
    // ago) allows. The holder waits until node1's lease runs out by the controller's clock (about
    // 2 s: lease 3 s + skew 100 ms - 1 s) before it may take the group.
    await store.putHeartbeat(heartbeat(cluster, 'node1', 2, { sentAt: Date.now() - 1_000 }));
    await store.putHeartbeat(
      heartbeat(cluster, 'node2', 2, {
        reason: 'change',
        peers: { node1: { token: 'node1-a/2', silentForMs: 1_000 } },
      }),
    );
    lines.length = 0;
    const started = Date.now();
    const waiting = reconcileCluster(
      {
        store,
        cloud,
        notifier: { publish: async () => undefined },
        clock: systemClock,
        log,
        holder: 'inv-wait',
      },
      cluster,
      { deadline: Date.now() + 8_000 },
    );
    let kickedAt = 0;
    for (let i = 0; i < 40 && !kickedAt; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if ((await store.getGroup(cluster, 'db'))?.lock?.holder === 'inv-wait' && Date.now() - started > 300) {
        await store.kick(cluster, 'db');
        kickedAt = Date.now();
      }
    }
    expect(kickedAt).toBeGreaterThan(0);
    await waiting;
    const woken = lines.find((l) => l.message === 'woken by a kick while waiting');
    expect(woken, JSON.stringify(lines.map((l) => l.message))).toBeDefined();
    // It woke with a good part of the wait (about 2 s in all) still ahead: by the kick, not its timer.
    expect(woken?.attributes?.leftMs).toBeGreaterThan(500);
  });

  it('gives alerts still in flight a short time of their own at the end, never the rest of the invocation', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const cloud = new MemoryCloud(new StoreWorld(store));
    lines.length = 0;
    const started = Date.now();
    // An SNS that never answers: before, the reconcile waited for it (in Lambda: up to the timeout).
    const outcome = await reconcileCluster(
      {
        store,
        cloud,
        notifier: { publish: () => new Promise(() => {}) },
        clock: systemClock,
        log,
        holder: 'inv-sns',
      },
      cluster,
      { deadline: Date.now() + 20_000 },
    );
    expect(outcome.groups[0]).toMatchObject({ status: 'converged', owner: 'node1', phase: 'Online' });
    expect(Date.now() - started).toBeLessThan(CLEANUP_TIMEOUT_MS + 5_000);
    expect(lines.map((l) => l.message)).toContain('alerts still in flight at the end of the reconcile');
    // Together with the lock release, within what the Lambda keeps after the deadline.
    expect(2 * CLEANUP_TIMEOUT_MS).toBeLessThan(LAMBDA_RESERVE_MS);
  });

  it('does not lose a trigger when the holder lets go of the lock just before the kick lands', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    // The first acquisition meets a holder that has already released by the time we kick.
    let first = true;
    const racing = Object.create(store) as DynamoStore;
    racing.acquireLock = async (...args: Parameters<DynamoStore['acquireLock']>) => {
      if (first) {
        first = false;
        throw new LockBusyError('db', 'inv-gone', Date.now() + 1000);
      }
      return store.acquireLock(...args);
    };
    const outcome = await run(cloud, cluster, 'inv-late', racing);
    expect(outcome.groups[0]).toMatchObject({ status: 'converged', owner: 'node1', phase: 'Online' });
  });

  it("a retry's release that lands late does not remove the lock of the holder's next attempt", async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    // Attempt 1's release is given up on (held back here); attempt 2, the same holder, takes the
    // lock and is deciding when attempt 1's release finally lands.
    const held: (() => Promise<boolean>)[] = [];
    let attempt = 1;
    const late = Object.create(store) as DynamoStore;
    late.releaseLock = async (...args: Parameters<DynamoStore['releaseLock']>) => {
      if (attempt === 1) {
        held.push(() => store.releaseLock(...args));
        return true;
      }
      return store.releaseLock(...args);
    };
    const deps = {
      store: late,
      cloud,
      notifier: { publish: async () => undefined },
      clock: systemClock,
      log,
      holder: 'inv-retrying',
    };
    await reconcileCluster(deps, cluster, { deadline: Date.now() + 20_000 });
    expect(held).toHaveLength(1);
    attempt = 2;
    const second = await store.acquireLock(
      cluster,
      (await store.getGroup(cluster, 'db'))!,
      { holder: 'inv-retrying', expiresAt: Date.now() + 20_000, acquisition: 'attempt-2' },
      Date.now(),
    );
    expect(await held[0]!()).toBe(true);
    // Still attempt 2's: another invocation finds the group busy.
    expect((await store.getGroup(cluster, 'db'))?.lock).toEqual(second.lock);
    await expect(
      store.acquireLock(cluster, second, { holder: 'inv-other', expiresAt: Date.now() + 20_000 }, Date.now()),
    ).rejects.toBeInstanceOf(LockBusyError);
  });

  it("a group whose holder died waits for its lock alone: the cluster's other groups are reconciled meanwhile", async () => {
    const cluster = uniqueName('c');
    const base = config(cluster);
    const web = { ...base.groups[0]!, name: 'web', resources: base.groups[0]!.resources.slice(2) };
    const cfg = { ...base, groups: [base.groups[0]!, web] };
    await store.applyConfig(cfg, { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const cloud = new MemoryCloud(new StoreWorld(store));
    // db's record is held by an invocation that died: its lock runs out in 4 s.
    const initial = await store.acquireLock(
      cluster,
      initialGroupState(cfg.groups[0]!, Date.now()),
      { holder: 'crashed', expiresAt: Date.now() + 4_000 },
      Date.now(),
    );
    expect(initial.lock?.holder).toBe('crashed');
    // Both agents keep renewing meanwhile.
    let seq = 1;
    const renewals = setInterval(() => {
      seq++;
      void store.putHeartbeat(heartbeat(cluster, 'node1', seq));
      void store.putHeartbeat(heartbeat(cluster, 'node2', seq));
    }, 500);
    const started = Date.now();
    const outcome = await run(cloud, cluster, 'inv-both').finally(() => clearInterval(renewals));
    // Both end Online, but web did not wait for db's dead holder.
    expect(outcome.groups.map((g) => [g.group, g.status, g.phase])).toEqual([
      ['db', 'converged', 'Online'],
      ['web', 'converged', 'Online'],
    ]);
    const webRecord = await store.getGroup(cluster, 'web');
    const dbRecord = await store.getGroup(cluster, 'db');
    expect(webRecord!.phaseSince - started).toBeLessThan(2_000);
    expect(dbRecord!.phaseSince - started).toBeGreaterThanOrEqual(3_500);
  });

  it('processes a move request once and takes over a lock whose holder died', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    await store.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await store.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const world = new StoreWorld(store);
    const cloud = new MemoryCloud(world);
    await run(cloud, cluster, 'inv-1');

    // An invocation crashed while holding the lock: it expired a moment ago.
    const g = await store.getGroup(cluster, 'db');
    await store.acquireLock(cluster, g!, { holder: 'crashed', expiresAt: Date.now() + 200 }, Date.now());
    const request = await store.putRequest(
      cluster,
      { kind: 'move', group: 'db', to: 'node2', by: 'test' },
      Date.now(),
    );
    // The next invocation waits the dead holder's lock out (it ends well within its deadline) and
    // moves the group itself. node1 is alive: it must be stopped through the guard before node2
    // starts.
    const moved = await run(cloud, cluster, 'inv-2');
    expect(moved.groups[0]).toMatchObject({ status: 'converged', owner: 'node2', epoch: 2 });
    const mutations = cloud.mutations.length;
    // Once: a later invocation finds nothing to do.
    const again = await run(cloud, cluster, 'inv-3');
    expect(again.groups[0]).toMatchObject({ status: 'converged', owner: 'node2', epoch: 2 });
    expect(cloud.mutations.length).toBe(mutations);
    expect(world.runners('db')).toEqual(['node2']);
    const order = cloud.mutations.map((m) => m.what);
    expect(order.indexOf('ssm stop db@node1')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('ssm stop db@node1')).toBeLessThan(order.indexOf('ssm start db@node2'));
    expect(await store.getRequest(cluster, request.id)).toMatchObject({
      status: 'done',
      message: 'group db is moving to node2 from node1',
    });
    expect(await store.listRequests(cluster)).toEqual([]);
  });
  it('puts a drifted VIP back on the owner while AWS throttles the repair: neither gives up nor sets the owner aside', async () => {
    const cluster = uniqueName('c');
    await store.applyConfig(config(cluster), { now: Date.now() });
    const renew = async (seq: number) => {
      await store.putHeartbeat(heartbeat(cluster, 'node1', seq));
      await store.putHeartbeat(heartbeat(cluster, 'node2', seq));
    };
    await renew(1);
    const cloud = new MemoryCloud(new StoreWorld(store));
    expect((await run(cloud, cluster, 'inv-1')).groups[0]).toMatchObject({ owner: 'node1', phase: 'Online' });

    // Behind the controller's back the VIP now points at node2, and AWS throttles the next five
    // ReplaceRoute calls (each past the SDK's own retries). Before, the first throttled attempts used
    // up the check's 3 restarts and the VIP stayed on node2; or they set node1 aside and moved the
    // group for nothing.
    cloud.entry.set('db/vip', 'node2');
    const activate = cloud.resources.vip.activate;
    let throttled = 0;
    cloud.resources.vip.activate = async (req) => {
      if (throttled < 5) {
        throttled++;
        throw new ThrottledError('ec2:ReplaceRoute on rtb-1');
      }
      return activate(req);
    };
    for (let i = 0; i < 12 && cloud.entry.get('db/vip') !== 'node1'; i++) {
      await renew(2 + i);
      await run(cloud, cluster, `inv-repair-${i}`);
    }
    expect(throttled).toBe(5);
    expect(cloud.entry.get('db/vip')).toBe('node1');
    const [g] = await store.listGroups(cluster);
    expect(g).toMatchObject({
      owner: 'node1',
      phase: 'Online',
      epoch: 1,
      blocked: {},
      finalActionTaken: false,
    });
    // Only the attempt that reached AWS was spent.
    expect(g!.restarts['check:vip']).toBe(1);
  });
});

describe('a stop SSM could not deliver', () => {
  it('is tried again in the same invocation on fresh reads, not left to the next trigger', async () => {
    // A table of its own: the schedule reconciles every cluster of its table.
    const own = new DynamoStore(uniqueName('undeliverable'), aws());
    await own.createTable();
    const cluster = uniqueName('c');
    await own.applyConfig(config(cluster), { now: Date.now() });
    await own.putHeartbeat(heartbeat(cluster, 'node1', 1));
    await own.putHeartbeat(heartbeat(cluster, 'node2', 1));
    const cloud = new MemoryCloud(new StoreWorld(own));
    const lines: string[] = [];
    const log: Log = {
      info: (m) => lines.push(m),
      warn: (m) => lines.push(m),
      error: (m) => lines.push(m),
    };
    const deps = { store: own, cloud, notifier: { publish: async () => undefined }, clock: systemClock, log };
    const invoke = (holder: string) =>
      handleEventBridge(deps, scheduled(), { holder, deadline: Date.now() + 20_000 });
    await invoke('inv-start');
    expect(await own.getGroup(cluster, 'db')).toMatchObject({ owner: 'node1', phase: 'Online' });

    // Moving db stops it on node1 through SSM first; SSM cannot deliver that stop once (the
    // instance not connected), as when EC2 reports it terminated.
    await own.putRequest(cluster, { kind: 'move', group: 'db', to: 'node2', by: 'test' }, Date.now());
    const stop = cloud.resources.exec.deactivate;
    let stops = 0;
    cloud.resources.exec.deactivate = async (req) => {
      if (++stops === 1)
        throw new ExecFailedError(
          `stop of app on ${req.node.instanceId} (${req.node.name}) ended Undeliverable`,
          'Undeliverable',
          undefined,
          'stop',
        );
      return stop(req);
    };
    const result = await invoke('inv-move');
    expect(stops).toBe(2);
    expect(result.retries).toBeGreaterThanOrEqual(1);
    expect(lines).toContain('retrying after a retryable failure');
    expect(await own.getGroup(cluster, 'db')).toMatchObject({ owner: 'node2', phase: 'Online', epoch: 2 });
  });
});
