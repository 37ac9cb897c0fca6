/**
 * The stream mapping's settings at work (serverless.yml: a parallelization factor above 1,
 * ReportBatchItemFailures): moto's stream read by the sandbox's emulation of the event source
 * mapping (sandbox/stream.ts), handed to the real Lambda stream handler, with the handler's AWS
 * calls through a fault proxy.
 *
 * - One cluster's reconcile is slow (its group's lock is held by an invocation that died, so the
 *   handler waits ~8 s for the lock to run out): another cluster's failover, reported meanwhile,
 *   is not held up behind that batch — unless the mapping handles one batch at a time.
 * - One cluster's reconcile fails (NOT_AUTHORIZED): the handler reports that cluster's record as a
 *   batch item failure and the mapping hands it over again at once, so the failover is done within
 *   seconds rather than at the next 1-minute schedule.
 *
 * A failover here is a planned shutdown: the owner's final report says `leaving`, every group
 * stopped; reconcile then takes the group to the other node (a new epoch naming node2).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../../controller/aws/clients';
import { addEmulatorDateCompat } from '../../controller/aws/emulator-compat';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { scheduled } from '../../sandbox/sandbox';
import { StreamPoller } from '../../sandbox/stream';
import { parseClusterConfig } from '../../shared/config/load';
import { initialGroupState } from '../../shared/core/model';
import { type FaultProxy, jsonErrorBody, startFaultProxy } from '../../testkit/fault-proxy';
import { aws, lambdaContext, testHeartbeat, uniqueName } from './support';

const table = uniqueName('mapping');
process.env.FAILOVER_TABLE = table;
process.env.AWS_REGION = 'us-east-1';
process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';
process.env.POWERTOOLS_METRICS_DISABLED = 'true'; // the EMF documents are not what this file checks

/** How long the dead invocation's lock still runs when the slow cluster's failover is reported. */
const DEAD_LOCK_MS = 8_000;

describe('the stream mapping: parallel batches and batch item failures (sandbox emulation, real handler)', () => {
  let proxy: FaultProxy;
  let store: DynamoStore;
  const pollers: StreamPoller[] = [];

  /** A cluster with db on node1 (placed by a first reconcile through the stream handler). */
  const cluster = async (prefix: string): Promise<string> => {
    const name = uniqueName(prefix);
    await store.applyConfig(
      parseClusterConfig({
        cluster: name,
        region: 'us-east-1',
        nodes: [
          { name: 'node1', instanceId: 'i-0c1c1c1c', az: 'us-east-1a' },
          { name: 'node2', instanceId: 'i-0c2c2c2c', az: 'us-east-1b' },
        ],
        groups: [{ name: 'db', nodes: ['node1', 'node2'] }],
      }),
      { now: Date.now() },
    );
    await store.putHeartbeat(testHeartbeat(name, 'node1', { reason: 'periodic' }));
    await store.putHeartbeat(testHeartbeat(name, 'node2', { reason: 'periodic' }));
    return name;
  };

  /** The owner's final report of a planned shutdown: a change, so the mapping's filter keeps it. */
  const leave = async (name: string): Promise<number> => {
    const epoch = (await store.getGroup(name, 'db'))?.epoch ?? 0;
    await store.putHeartbeat(
      testHeartbeat(name, 'node1', {
        state: 'leaving',
        reason: 'change',
        seq: 2,
        groups: { db: { epoch, state: 'stopped' } },
      }),
    );
    return Date.now();
  };

  /** ms until db names node2 owner (the takeover is committed), or NaN after `timeoutMs`. */
  const movedAfter = async (name: string, from: number, timeoutMs: number): Promise<number> => {
    while (Date.now() - from < timeoutMs) {
      if ((await store.getGroup(name, 'db'))?.owner === 'node2') return Date.now() - from;
      await new Promise((r) => setTimeout(r, 50));
    }
    return Number.NaN;
  };

  /** The sandbox's mapping with `maxInFlight` batches at once, delivering to the Lambda handler. */
  const mapping = async (maxInFlight: number): Promise<StreamPoller> => {
    const { handler } = await import('../../functions/reconcile-stream');
    const direct = clientConfig(aws());
    const streams = new DynamoDBStreamsClient(direct);
    const dynamodb = new DynamoDBClient(direct);
    for (const c of [streams, dynamodb]) addEmulatorDateCompat(c);
    let n = 0;
    const poller = new StreamPoller(
      dynamodb,
      streams,
      table,
      (records) => handler({ Records: records }, lambdaContext(`stream-${++n}`, 'reconcile-stream')),
      100,
      maxInFlight,
    );
    await poller.start();
    pollers.push(poller);
    return poller;
  };

  /** Places db on node1 (a reconcile through the schedule's handler). */
  const place = async (...names: string[]) => {
    const { handler } = await import('../../functions/reconcile-schedule');
    await handler(scheduled(), lambdaContext('place'));
    for (const name of names) expect((await store.getGroup(name, 'db'))?.owner).toBe('node1');
  };

  /** An invocation that took db's lock and died: it runs out DEAD_LOCK_MS from now. */
  const deadHolder = async (name: string) => {
    const group = (await store.getConfig(name))?.config.groups.find((g) => g.name === 'db');
    if (!group) throw new Error(`no group db in ${name}`);
    const now = Date.now();
    await store.acquireLock(
      name,
      initialGroupState(group, now),
      { holder: 'dead-invocation', expiresAt: now + DEAD_LOCK_MS, acquisition: 'dead-1' },
      now,
    );
  };

  /**
   * Two clusters with db on node1: `slow` reports its owner leaving while a dead invocation holds
   * its lock; half a second later `fast` reports the same. Returns when fast's db moved.
   */
  const slowThenFast = async (prefix: string, maxInFlight: number, timeoutMs: number) => {
    const slow = await cluster(`slow${prefix}`);
    const fast = await cluster(`fast${prefix}`);
    await place(slow, fast);
    const poller = await mapping(maxInFlight);
    await deadHolder(slow);
    const slowFrom = await leave(slow);
    // The slow cluster's batch is in the handler, waiting for the lock, when the other reports.
    await new Promise((r) => setTimeout(r, 500));
    const fastFrom = await leave(fast);
    const fastMs = await movedAfter(fast, fastFrom, timeoutMs);
    return { slow, slowFrom, fastMs, poller };
  };

  beforeAll(async () => {
    proxy = await startFaultProxy(aws().endpoint!);
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    store = new DynamoStore(table, aws());
    await store.createTable();
  });
  afterAll(async () => {
    for (const p of pollers) await p.stop();
    await proxy.close();
  });

  it("a cluster whose reconcile waits for a dead holder's lock does not hold up another cluster's failover", async () => {
    const { slow, slowFrom, fastMs, poller } = await slowThenFast('', 3, 15_000);
    const slowOwnerThen = (await store.getGroup(slow, 'db'))?.owner;
    const slowMs = await movedAfter(slow, slowFrom, 30_000);
    console.log(
      `mapping with 3 batches in flight: the other cluster moved ${fastMs} ms after its report; the slow one ${slowMs} ms after its own (dead lock ${DEAD_LOCK_MS} ms); ${poller.invocations} handler invocations`,
    );
    expect(fastMs).toBeLessThan(3_000);
    expect(slowOwnerThen).toBe('node1'); // it was still waiting when the other had moved
    expect(slowMs).toBeGreaterThan(DEAD_LOCK_MS - 1_000);
    expect(slowMs).toBeLessThan(DEAD_LOCK_MS + 5_000);
    await poller.stop();
  }, 60_000);

  it('with one batch at a time (a parallelization factor of 1) the same failover waits behind the slow batch', async () => {
    const { fastMs, poller } = await slowThenFast('1', 1, 30_000);
    console.log(`mapping with 1 batch in flight: the other cluster moved ${fastMs} ms after its report`);
    expect(fastMs).toBeGreaterThan(DEAD_LOCK_MS - 2_000);
    await poller.stop();
  }, 60_000);

  it('a cluster whose reconcile fails is handed over again through its batch item failure and moves within seconds', async () => {
    const flaky = await cluster('flaky');
    await place(flaky);
    const poller = await mapping(3);
    // The first write of its reconcile (taking the group's lock) is refused.
    proxy.inject(
      'UpdateItem',
      {
        status: 400,
        body: jsonErrorBody('AccessDeniedException', 'not authorized to perform dynamodb:UpdateItem'),
      },
      1,
    );
    const from = await leave(flaky);
    const ms = await movedAfter(flaky, from, 15_000);
    console.log(
      `batch item failure: moved ${ms} ms after the report; ${poller.retried} record(s) handed over again, ${poller.dropped} dropped`,
    );
    expect(poller.retried).toBeGreaterThanOrEqual(1);
    expect(poller.dropped).toBe(0);
    expect(ms).toBeLessThan(5_000);
    await poller.stop();
  }, 60_000);
});
