/**
 * A reconcile that fails is reported the way its trigger expects, and a retryable one is retried
 * inside the invocation first: the Lambda handlers as Lambda runs them, their AWS calls through a
 * fault proxy in front of moto (moto checks no IAM and never throttles).
 *
 * Before: errors of a cluster or group (NOT_AUTHORIZED in the middle of a failover, throttled out,
 * a deadline) were caught and the handler returned success; nothing was audited or alarmed on, and
 * the stream mapping never retried.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvocationResult } from '../../controller/reconcile/entry';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { scheduled } from '../../sandbox/sandbox';
import { parseClusterConfig } from '../../shared/config/load';
import { instanceArn, keys } from '../../shared/table/keys';
import { type FaultProxy, jsonErrorBody, startFaultProxy } from '../../testkit/fault-proxy';
import { aws, lambdaContext as context, testHeartbeat as heartbeat, uniqueName } from './support';

const table = uniqueName('failures');
const good = uniqueName('good');
const bad = uniqueName('bad');
process.env.FAILOVER_TABLE = table;
process.env.AWS_REGION = 'us-east-1';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

const schedule = scheduled();

/** The ReconcileErrors values of the EMF documents written since `from`. */
const emf: Record<string, unknown>[] = [];
/** The handlers' ERROR log lines (Powertools JSON), kept out of the test output. */
const errorLogs: Record<string, unknown>[] = [];
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = String(chunk);
  if (text.includes('"_aws"')) {
    for (const line of text.split('\n')) if (line.includes('"_aws"')) emf.push(JSON.parse(line));
    return true;
  }

  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;
// Powertools writes ERROR lines to stderr.
const writeErr = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = String(chunk);
  if (text.startsWith('{"level":')) {
    for (const line of text.split('\n')) if (line.trim()) errorLogs.push(JSON.parse(line));
    return true;
  }
  return (writeErr as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stderr.write;
const reconcileErrors = () =>
  emf.flatMap((d) => (d.ReconcileErrors === undefined ? [] : [d.ReconcileErrors]));

const denied = {
  status: 400,
  body: jsonErrorBody('AccessDeniedException', 'not authorized to perform dynamodb:UpdateItem'),
};
const throttled = { status: 400, body: jsonErrorBody('ThrottlingException', 'Rate exceeded') };

describe('failed reconciles are retried, then reported (handlers behind a fault proxy)', () => {
  let proxy: FaultProxy;
  let store: DynamoStore;
  beforeAll(async () => {
    proxy = await startFaultProxy(aws().endpoint!);
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    store = new DynamoStore(table, aws());
    await store.createTable();
    for (const cluster of [good, bad]) {
      await store.applyConfig(
        parseClusterConfig({
          cluster,
          region: 'us-east-1',
          nodes: [
            { name: 'node1', instanceId: 'i-0b1b1b1b', az: 'us-east-1a' },
            { name: 'node2', instanceId: 'i-0b2b2b2b', az: 'us-east-1b' },
          ],
          groups: [{ name: 'db', nodes: ['node1', 'node2'] }],
        }),
        { now: Date.now() },
      );
      await store.putHeartbeat(heartbeat(cluster, 'node1'));
      await store.putHeartbeat(heartbeat(cluster, 'node2'));
    }
  });
  afterAll(async () => {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    await proxy.close();
  });

  it('NOT_AUTHORIZED in the middle of a start fails the EventBridge invocation, is audited and counted', async () => {
    const { handler } = await import('../../functions/reconcile-schedule');
    proxy.inject('UpdateItem', denied, 1_000);
    const error = await handler(schedule, context('denied')).catch((e) => e);
    proxy.inject('UpdateItem', denied, 0);
    expect(error).toMatchObject({ code: 'RECONCILE_FAILED' });
    expect(error.message).toMatch(new RegExp(`${good}/db: NOT_AUTHORIZED`));
    expect(error.failures).toContainEqual(
      expect.objectContaining({ cluster: good, group: 'db', code: 'NOT_AUTHORIZED', retryable: false }),
    );
    const audit = await store.listAudit(good, { since: Date.now() - 60_000 });
    expect(audit).toContainEqual(
      expect.objectContaining({
        kind: 'reconcile.failed',
        group: 'db',
        message: expect.stringMatching(/^NOT_AUTHORIZED: /),
      }),
    );
    // The reconcile-failures alarm watches this metric.
    expect(reconcileErrors().at(-1)).toBe(2);
    // The log line names the failure with its text (Powertools drops an attribute named `message`).
    expect(errorLogs).toContainEqual(
      expect.objectContaining({
        message: 'reconcile failed',
        cluster: good,
        group: 'db',
        code: 'NOT_AUTHORIZED',
        error: expect.stringMatching(/not authorized/i),
      }),
    );
  });

  it('throttling past the SDK retries is retried inside the invocation with backoff, and the start completes', async () => {
    const { handler } = await import('../../functions/reconcile-schedule');
    // The SDK makes 3 attempts: the first acquisition of each cluster's lock is throttled out.
    proxy.inject('UpdateItem', throttled, 6);
    const result = (await handler(schedule, context('throttled'))) as InvocationResult;
    expect(result.failures).toEqual([]);
    expect(result.retries).toBeGreaterThanOrEqual(1);
    expect((await store.getGroup(good, 'db'))?.owner).toBe('node1');
    expect(reconcileErrors().at(-1)).toBe(0);
  });

  it('the stream handler reports the first record of each failed cluster as a batch item failure', async () => {
    const { handler } = await import('../../functions/reconcile-stream');
    // A stored definition that no longer validates: reconcile of that cluster fails, the other's does not.
    await store.doc.send(
      new PutCommand({
        TableName: table,
        Item: {
          ...keys.config(bad),
          config: { cluster: bad, region: 'nowhere', nodes: [] },
          version: 9,
          hash: 'x',
          appliedAt: 1,
        },
      }),
    );
    const record = (cluster: string, id: string, seq: string) => ({
      eventName: 'MODIFY',
      eventSource: 'aws:dynamodb',
      dynamodb: {
        Keys: {
          pk: { S: `NODE#${cluster}#${instanceArn({ region: 'us-east-1', account: '123456789012' }, id)}` },
          sk: { S: 'HEARTBEAT' },
        },
        SequenceNumber: seq,
      },
    });
    const result = (await handler(
      {
        Records: [
          record(good, 'i-0b1b1b1b', '100'),
          record(bad, 'i-0b1b1b1b', '101'),
          record(bad, 'i-0b2b2b2b', '102'),
        ],
      },
      context('stream'),
    )) as InvocationResult;
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '101' }]);
    expect(result.failures).toEqual([expect.objectContaining({ cluster: bad, code: 'CONFIG_INVALID' })]);
    expect(result.clusters.map((c) => c.cluster)).toEqual([good]);
  });
});
