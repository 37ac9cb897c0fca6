/**
 * The agent's own DynamoDB client (node-agent/dynamodb.ts, node-agent/store.ts) against the project's
 * SDK-based DynamoStore on moto: same items read and written, same results, same domain errors. Then
 * what moto cannot show, against stub servers on loopback: SigV4 signatures checked independently,
 * throttling and 5xx retried (and only with attempts to spare), timeouts, refused connections, a
 * proxy's HTML page, and the clock-skew correction.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { HEARTBEAT_SUPERSEDED } from '../../node-agent/core/heartbeat-writer';
import {
  DynamoDbClient,
  fromAttr,
  marshallItem,
  regionalEndpoint,
  toAttr,
  unmarshallItem,
} from '../../node-agent/dynamodb';
import { HeartbeatSupersededError, openStore } from '../../node-agent/store';
import { AwsApiError, AwsTimeoutError, ThrottledError, toDomainError } from '../../shared/aws/errors';
import { ConflictError, NotFoundError } from '../../shared/base/errors';
import { type GroupState, type Heartbeat, initialGroupState } from '../../shared/core/model';
import { instanceArn, keys } from '../../shared/table/keys';
import { createCluster, type Fixture, MOTO_ACCOUNT, motoEndpoint, REGION, uniqueName } from './support';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
});

/** What a failed call rejected with (an SDK-shaped error). */
type Failure = Error & {
  code?: string;
  $metadata: { httpStatusCode?: number; attempts?: number };
};
function failure(p: Promise<unknown>): Promise<Failure> {
  return p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as Failure,
  );
}

const CALL = { maxAttempts: 1, connectionTimeoutMs: 1000, requestTimeoutMs: 2000 };

function agentStore(f: Fixture, endpoint = motoEndpoint(), maxAttempts = 1) {
  return openStore(f.table, {
    region: REGION,
    endpoint,
    maxAttempts,
    connectionTimeoutMs: 1000,
    requestTimeoutMs: 2000,
  });
}

function sampleHeartbeat(cluster: string, node: string, seq: number): Heartbeat {
  return {
    cluster,
    node,
    token: `inc/${seq}`,
    seq,
    incarnation: 'inc',
    sentAt: 1_700_000_000_123 + seq,
    leaseMs: 10_000,
    agentVersion: '1.2.3',
    state: 'running',
    reason: 'change',
    monitors: {
      web: { status: 'ok', detail: 'GET http://x/: 200 — ünïcode ✓', since: 1_700_000_000_000 } as never,
      disk: { status: 'error', detail: '', since: 0 } as never,
    },
    isolated: false,
    witnesses: [
      { target: 'tcp 10.0.0.1:443', ok: true },
      { target: 'ping 10.0.0.2', ok: false, detail: 'timeout' },
    ],
    groups: { db: { epoch: 7, state: 'running' }, web: { epoch: 0, state: 'stopped' } },
    peers: { node2: { token: 'x/1', silentForMs: 12.5 } },
    spot: undefined,
    fence: { maxStopMs: 30_000, watchdogMs: -1.25 },
  };
}

async function twoNodeCluster(): Promise<Fixture> {
  return createCluster({
    nodes: [
      { name: 'node1', instanceId: `i-0${randomBytes(8).toString('hex')}`, az: 'us-east-1a' },
      { name: 'node2', instanceId: `i-0${randomBytes(8).toString('hex')}`, az: 'us-east-1b' },
    ],
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'exec', name: 'app', start: 'true', stop: 'true' }],
      },
    ],
  });
}

describe('the agent store reads and writes what DynamoStore does (moto)', () => {
  it('heartbeats: written by either, read alike by both', async () => {
    const f = await twoNodeCluster();
    const mine = agentStore(f);
    const hb1 = sampleHeartbeat(f.cluster, 'node1', 1);
    await mine.putHeartbeat(hb1);
    const { spot: _, ...expected } = hb1; // undefined members are left out, as lib-dynamodb does
    expect((await f.store.getHeartbeats(f.cluster, ['node1'])).node1).toEqual(expected);

    await f.store.putHeartbeat(sampleHeartbeat(f.cluster, 'node2', 2));
    const theirs = await f.store.getHeartbeats(f.cluster, ['node1', 'node2']);
    const ours = await mine.readClusterState(f.cluster, ['db'], ['node1', 'node2']);
    expect(ours.heartbeats).toEqual(theirs);
    expect(Object.keys(ours.heartbeats).sort()).toEqual(['node1', 'node2']);
  });

  it('a renewal that lands after a newer one of the same process is refused (HEARTBEAT_SUPERSEDED); a new process writes over the old one', async () => {
    const f = await twoNodeCluster();
    const mine = agentStore(f);
    // Found by the simulation: a tick sent just before a change report landed after it, the
    // controller read the tick, and the change (a monitor error) waited for the next schedule.
    const change = {
      ...sampleHeartbeat(f.cluster, 'node1', 24),
      monitors: { db: { status: 'error' as const, detail: 'failing' } },
    };
    const tick = { ...sampleHeartbeat(f.cluster, 'node1', 23), reason: 'periodic' as const };
    await mine.putHeartbeat(change);
    const refused = await mine.putHeartbeat(tick).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(refused).toBeInstanceOf(HeartbeatSupersededError);
    expect((refused as HeartbeatSupersededError).code).toBe(HEARTBEAT_SUPERSEDED);
    expect(refused?.message).toBe(
      'renewal inc/23 arrived after a newer one of this agent, which stays stored',
    );
    expect((await f.store.getHeartbeats(f.cluster, ['node1'])).node1).toMatchObject({
      seq: 24,
      monitors: change.monitors,
    });
    // The same renewal again (a retry of a write that did land) is refused too; a newer one is stored.
    expect(
      await mine.putHeartbeat(change).then(
        () => 'stored',
        (e: Error) => e.name,
      ),
    ).toBe('HeartbeatSupersededError');
    await mine.putHeartbeat(sampleHeartbeat(f.cluster, 'node1', 25));
    expect((await f.store.getHeartbeats(f.cluster, ['node1'])).node1?.seq).toBe(25);
    // A restarted agent (another incarnation) starts again at 1, over the old process's item.
    await mine.putHeartbeat({
      ...sampleHeartbeat(f.cluster, 'node1', 1),
      incarnation: 'next',
      token: 'next/1',
    });
    expect((await f.store.getHeartbeats(f.cluster, ['node1'])).node1).toMatchObject({
      incarnation: 'next',
      seq: 1,
    });
  });

  it('group records: every field, the lock and defaults for missing fields, as DynamoStore reads them', async () => {
    const f = await twoNodeCluster();
    const mine = agentStore(f);
    expect(await mine.getGroup(f.cluster, 'db')).toBeUndefined();

    // Every field of a group record set to something other than its default.
    const base = initialGroupState(f.config.groups[0]!, 1000);
    const record: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(base)) {
      record[k] = typeof v === 'number' ? 42 : typeof v === 'boolean' ? !v : `set-${k}`;
    }
    Object.assign(record, {
      group: 'db',
      owner: 'node1',
      mayRun: ['node1'],
      lock: { holder: 'reconcile-1', expiresAt: 99 },
    });
    await f.store.doc.send(
      new PutCommand({ TableName: f.table, Item: { ...keys.group(f.cluster, 'db'), ...record } }),
    );
    const theirs = await f.store.getGroup(f.cluster, 'db');
    expect(await mine.getGroup(f.cluster, 'db')).toEqual(theirs);
    expect((await mine.readClusterState(f.cluster, ['db'], [])).groups).toEqual([theirs]);
    for (const k of Object.keys(base))
      expect((theirs as unknown as Record<string, unknown>)[k]).toEqual(record[k]);

    // An older record without most fields gets the same defaults.
    await f.store.doc.send(
      new PutCommand({
        TableName: f.table,
        Item: { ...keys.group(f.cluster, 'old'), group: 'old', epoch: 3, owner: 'node2', updatedAt: 5 },
      }),
    );
    const old = (await mine.getGroup(f.cluster, 'old')) as GroupState;
    expect(old).toEqual(await f.store.getGroup(f.cluster, 'old'));
    expect(old.epoch).toBe(3);
  });

  it('the cluster definition (as a map or gzipped), the cluster list and the instance index', async () => {
    const f = await twoNodeCluster();
    const mine = agentStore(f);
    expect(await mine.getConfig(f.cluster)).toEqual(await f.store.getConfig(f.cluster));
    expect((await mine.getConfig(f.cluster))?.config).toEqual(f.config);
    expect(await mine.getConfig('no-such-cluster')).toBeUndefined();
    expect(await mine.listClusters()).toEqual(await f.store.listClusters());
    expect(await mine.listClusters()).toContain(f.cluster);
    const instanceId = f.config.nodes[1]!.instanceId;
    const arn = instanceArn({ region: REGION, account: MOTO_ACCOUNT }, instanceId);
    expect(await mine.findInstance(arn)).toEqual({ cluster: f.cluster, node: 'node2' });
    expect(
      await mine.findInstance(instanceArn({ region: REGION, account: MOTO_ACCOUNT }, 'i-0123abcd')),
    ).toBeUndefined();

    // A large definition is stored gzipped in a binary attribute.
    await f.store.doc.send(
      new PutCommand({
        TableName: f.table,
        Item: {
          ...keys.config('big'),
          configGz: new Uint8Array(gzipSync(JSON.stringify(f.config))),
          version: 4,
          hash: 'h',
          appliedAt: 12,
        },
      }),
    );
    expect(await mine.getConfig('big')).toEqual({ config: f.config, version: 4, hash: 'h', appliedAt: 12 });
  });

  it('reads more than 100 keys (BatchGetItem pages)', async () => {
    // The most a definition allows (100 nodes) and a few groups: one tick reads more than the 100
    // keys a BatchGetItem takes.
    const nodes = Array.from({ length: 100 }, (_, i) => `n${i}`);
    const groups = Array.from({ length: 12 }, (_, i) => `g${i}`);
    const f = await createCluster({
      nodes: nodes.map((name, i) => ({
        name,
        instanceId: `i-0${randomBytes(7).toString('hex')}${i}`,
        az: 'us-east-1a',
      })),
      groups: groups.map((name) => ({ name, nodes: ['n0'], resources: [] })),
    });
    const mine = agentStore(f);
    for (const n of ['n0', 'n64', 'n99']) await mine.putHeartbeat(sampleHeartbeat(f.cluster, n, 1));
    const read = await mine.readClusterState(f.cluster, groups, nodes);
    expect(nodes.length + groups.length).toBeGreaterThan(100);
    expect(Object.keys(read.heartbeats).sort()).toEqual(['n0', 'n64', 'n99']);
  });

  it('a missing table is TABLE_NOT_FOUND, as with DynamoStore', async () => {
    const table = uniqueName('missing');
    const mine = openStore(table, { region: REGION, endpoint: motoEndpoint(), maxAttempts: 1 });
    const theirs = new DynamoStore(table, { region: REGION, endpoint: motoEndpoint(), maxAttempts: 1 });
    const a = (await failure(mine.getGroup('c', 'g'))) as unknown as NotFoundError;
    const b = await failure(theirs.getGroup('c', 'g'));
    expect(a).toBeInstanceOf(NotFoundError);
    expect(a.code).toBe('TABLE_NOT_FOUND');
    expect(a.message).toBe(b.message);
    const c = await failure(mine.putHeartbeat(sampleHeartbeat('c', 'n', 1)));
    expect(c).toBeInstanceOf(NotFoundError);
  });

  it('error answers carry the code and status the SDK gives them, and map to the same domain errors', async () => {
    const f = await twoNodeCluster();
    const client = new DynamoDbClient({ region: REGION, endpoint: motoEndpoint(), env: {}, userAgent: 't' });
    const key = { pk: { S: 'NODE#x#y' }, sk: { S: 'HEARTBEAT' } };
    await client.call('PutItem', { TableName: f.table, Item: key }, CALL);
    const conditional = {
      TableName: f.table,
      Item: key,
      ConditionExpression: 'attribute_not_exists(pk)',
    };
    const ours = await failure(client.call('PutItem', conditional, { ...CALL, maxAttempts: 3 }));
    const theirs = await failure(
      f.store.client.send(new PutItemCommand(conditional as ConstructorParameters<typeof PutItemCommand>[0])),
    );
    expect(ours.name).toBe('ConditionalCheckFailedException');
    expect(ours.name).toBe(theirs.name);
    expect(ours.$metadata.httpStatusCode).toBe(theirs.$metadata.httpStatusCode);
    expect(ours.$metadata.attempts).toBe(1); // not retried
    const ctx = { action: 'dynamodb:PutItem', resource: 'x' };
    expect(toDomainError(ours, ctx)).toBeInstanceOf(ConflictError);

    // A malformed request: ValidationException, not retried, AwsApiError naming the code.
    const bad = await failure(
      client.call('GetItem', { TableName: f.table, Key: { pk: { S: 'x' } } }, { ...CALL, maxAttempts: 3 }),
    );
    expect(bad.name).toBe('ValidationException');
    expect(bad.$metadata.attempts).toBe(1);
    const domain = toDomainError(bad, ctx);
    expect(domain).toBeInstanceOf(AwsApiError);
    expect((domain as AwsApiError).awsCode).toBe('ValidationException');
  });
});

// ------------------------------------------------------------------------------------------------
// Stub servers

interface Seen {
  /** Client port: the same for requests on one kept-alive connection. */
  port: number;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A server answering each request with `answer(n, request)`; records what it received. */
async function stub(
  answer: (n: number, req: Seen, res: http.ServerResponse) => void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      const s = {
        port: req.socket.remotePort ?? 0,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
      };
      seen.push(s);
      answer(seen.length, s, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, seen };
}

function awsError(res: http.ServerResponse, status: number, type: string, message: string, date?: Date) {
  res
    .writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': 'req-1',
      ...(date ? { date: date.toUTCString() } : {}),
    })
    .end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }));
}

const ok = (res: http.ServerResponse, body: unknown = {}) =>
  res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));

/** SigV4 checked from scratch (node:crypto), from what the server received. */
function checkSignature(req: Seen, secret: string): { accessKeyId: string; scope: string } {
  const auth = String(req.headers.authorization);
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) throw new Error(`malformed authorization: ${auth}`);
  const [, accessKeyId, date, region, service, signed, signature] = m as unknown as string[];
  const names = signed!.split(';');
  const amzDate = String(req.headers['x-amz-date']);
  const canonical = [
    req.method,
    req.url,
    '',
    ...names.map((n) => `${n}:${String(req.headers[n]).trim()}`),
    '',
    signed,
    createHash('sha256').update(req.body).digest('hex'),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonical).digest('hex'),
  ].join('\n');
  const hmac = (k: string | Buffer, s: string) => createHmac('sha256', k).update(s).digest();
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), 'aws4_request');
  expect(createHmac('sha256', kSigning).update(toSign).digest('hex')).toBe(signature);
  for (const h of ['host', 'x-amz-date', 'x-amz-target', 'content-type']) expect(names).toContain(h);
  return { accessKeyId: accessKeyId!, scope };
}

describe('the agent client against stub servers', () => {
  it('signs with SigV4 (session token included) for dynamodb in the region, JSON 1.0 protocol', async () => {
    const s = await stub((_n, _req, res) => ok(res, { Item: { pk: { S: 'a' }, n: { N: '1.5' } } }));
    const client = new DynamoDbClient({
      region: 'eu-west-3',
      endpoint: s.url,
      env: {},
      userAgent: 'failover-agent/test',
      credentials: async () => ({
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'sekrit',
        sessionToken: 'tok',
      }),
    });
    const out = await client.call<{ Item: Record<string, Record<string, unknown>> }>(
      'GetItem',
      { TableName: 't', Key: { pk: { S: 'a' } } },
      CALL,
    );
    expect(unmarshallItem(out.Item)).toEqual({ pk: 'a', n: 1.5 });
    const req = s.seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/');
    expect(req.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(req.headers['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
    expect(req.headers['x-amz-security-token']).toBe('tok');
    expect(req.headers['user-agent']).toBe('failover-agent/test');
    expect(JSON.parse(req.body)).toEqual({ TableName: 't', Key: { pk: { S: 'a' } } });
    const { accessKeyId, scope } = checkSignature(req, 'sekrit');
    expect(accessKeyId).toBe('AKIDEXAMPLE');
    expect(scope).toMatch(/^\d{8}\/eu-west-3\/dynamodb\/aws4_request$/);
    expect(req.headers['x-amz-security-token']).toBeDefined();
    expect(String(req.headers.authorization)).toContain('x-amz-security-token');
  });

  it('retries throttling and 5xx answers only with attempts to spare; then ThrottledError / retryable AwsApiError', async () => {
    const s = await stub((n, _req, res) => {
      if (n <= 2) awsError(res, 400, 'ProvisionedThroughputExceededException', 'slow down');
      else ok(res);
    });
    const client = new DynamoDbClient({ region: REGION, endpoint: s.url, env: {}, userAgent: 't' });
    await client.call('PutItem', { TableName: 't', Item: {} }, { ...CALL, maxAttempts: 3 });
    expect(s.seen).toHaveLength(3);
    // The daemon's single attempt: no retry, a ThrottledError naming the action.
    const t = await stub((_n, _req, res) => awsError(res, 400, 'ThrottlingException', 'rate exceeded'));
    const one = await failure(
      new DynamoDbClient({ region: REGION, endpoint: t.url, env: {}, userAgent: 't' }).call(
        'PutItem',
        {},
        CALL,
      ),
    );
    expect(t.seen).toHaveLength(1);
    expect(one.name).toBe('ThrottlingException');
    expect(toDomainError(one, { action: 'dynamodb:PutItem', resource: 'x' })).toBeInstanceOf(ThrottledError);

    const five = await stub((n, _req, res) =>
      n === 1 ? awsError(res, 500, 'InternalServerError', 'oops') : ok(res, { Responses: {} }),
    );
    await new DynamoDbClient({ region: REGION, endpoint: five.url, env: {}, userAgent: 't' }).call(
      'BatchGetItem',
      {},
      { ...CALL, maxAttempts: 2 },
    );
    expect(five.seen).toHaveLength(2);

    // A proxy's HTML error page: no JSON, still an error with the status, retryable.
    const html = await stub((_n, _req, res) => res.writeHead(502).end('<html>Bad Gateway</html>'));
    const e = await failure(
      new DynamoDbClient({ region: REGION, endpoint: html.url, env: {}, userAgent: 't' }).call(
        'GetItem',
        {},
        {
          ...CALL,
          maxAttempts: 2,
        },
      ),
    );
    expect(html.seen).toHaveLength(2);
    expect(e.$metadata).toMatchObject({ httpStatusCode: 502, attempts: 2 });
    const d = toDomainError(e, { action: 'dynamodb:GetItem', resource: 'x' });
    expect(d).toBeInstanceOf(AwsApiError);
    expect(d.retryable).toBe(true);
    expect(d.message).toContain('Bad Gateway');
  });

  it('cuts an attempt that gets no answer at requestTimeoutMs (TimeoutError, AwsTimeoutError) and drops its connection', async () => {
    const s = await stub((n, _req, res) => {
      if (n > 1) ok(res); // the first request is never answered
    });
    const client = new DynamoDbClient({ region: REGION, endpoint: s.url, env: {}, userAgent: 't' });
    const started = Date.now();
    const e = await failure(
      client.call('PutItem', {}, { maxAttempts: 1, connectionTimeoutMs: 1000, requestTimeoutMs: 300 }),
    );
    const took = Date.now() - started;
    expect(e.name).toBe('TimeoutError');
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1000);
    expect(toDomainError(e, { action: 'dynamodb:PutItem', resource: 'x' })).toBeInstanceOf(AwsTimeoutError);
    // The next calls get a fresh connection, then keep it.
    await client.call('PutItem', {}, CALL);
    await client.call('PutItem', {}, CALL);
    expect(s.seen).toHaveLength(3);
    expect(s.seen[1]!.port).not.toBe(s.seen[0]!.port);
    expect(s.seen[2]!.port).toBe(s.seen[1]!.port);
  });

  it('a refused connection fails at once (ECONNREFUSED), retried only with attempts to spare', async () => {
    const s = await stub(() => undefined);
    const url = s.url;
    const server = servers.pop()!;
    await new Promise<void>((r) => server.close(() => r()));
    const client = new DynamoDbClient({ region: REGION, endpoint: url, env: {}, userAgent: 't' });
    const started = Date.now();
    const e = await failure(client.call('PutItem', {}, { ...CALL, maxAttempts: 2 }));
    expect(e.code).toBe('ECONNREFUSED');
    expect(e.$metadata.attempts).toBe(2);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('follows the server clock after a clock-skew answer and retries with a corrected signature date', async () => {
    const server = new Date(Date.now() + 3_600_000);
    const s = await stub((n, _req, res) => {
      if (n === 1) awsError(res, 400, 'InvalidSignatureException', 'Signature expired', server);
      else ok(res);
    });
    const client = new DynamoDbClient({ region: REGION, endpoint: s.url, env: {}, userAgent: 't' });
    await client.call('PutItem', {}, { ...CALL, maxAttempts: 2 });
    expect(s.seen).toHaveLength(2);
    const parse = (d: string) =>
      Date.parse(d.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
    const first = parse(String(s.seen[0]!.headers['x-amz-date']));
    const second = parse(String(s.seen[1]!.headers['x-amz-date']));
    expect(second - first).toBeGreaterThan(3_500_000);
  });
});

describe('endpoints', () => {
  it("are those of the SDK's endpoint rules for DynamoDB, in every partition, with FIPS and dual-stack", () => {
    const sdk = new DynamoDBClient({ region: REGION }).config.endpointProvider as (p: object) => {
      url: URL;
      properties?: { authSchemes?: { signingRegion?: string }[] };
    };
    const regions = [
      'us-east-1',
      'eu-west-3',
      'ap-southeast-7',
      'cn-north-1',
      'us-gov-west-1',
      'us-iso-east-1',
      'us-isob-east-1',
      'eu-isoe-west-1',
      'us-isof-south-1',
      'eusc-de-east-1',
      'xx-future-1',
    ];
    for (const region of regions) {
      for (const fips of [false, true]) {
        for (const dualStack of [false, true]) {
          const theirs = sdk({ Region: region, UseFIPS: fips, UseDualStack: dualStack }).url.href;
          expect(
            new URL(regionalEndpoint(region, fips, dualStack).url).href,
            `${region} ${fips} ${dualStack}`,
          ).toBe(theirs);
        }
      }
    }
    const local = sdk({ Region: 'local' });
    const ours = regionalEndpoint('local', false, false);
    expect(new URL(ours.url).href).toBe(local.url.href);
    expect(ours.signingRegion).toBe(local.properties?.authSchemes?.[0]?.signingRegion);
    expect(() => regionalEndpoint('local', true, false)).toThrow(/FIPS/);
  });
});

describe('marshalling, as lib-dynamodb with removeUndefinedValues', () => {
  it('converts values both ways and refuses what lib-dynamodb refuses', () => {
    const item = {
      s: 'x',
      e: '',
      n: -1.5,
      big: 2n ** 60n,
      b: true,
      nul: null,
      l: [1, 'a', undefined, { x: undefined, y: 2 }],
      m: new Map([['k', 1]]),
      ss: new Set(['a', 'b']),
      ns: new Set([1, 2]),
      bin: new Uint8Array([1, 2, 3]),
      gone: undefined,
      fn: () => 1,
    };
    const m = marshallItem(item);
    expect(m).toEqual({
      s: { S: 'x' },
      e: { S: '' },
      n: { N: '-1.5' },
      big: { N: '1152921504606846976' },
      b: { BOOL: true },
      nul: { NULL: true },
      l: { L: [{ N: '1' }, { S: 'a' }, { M: { y: { N: '2' } } }] },
      m: { M: { k: { N: '1' } } },
      ss: { SS: ['a', 'b'] },
      ns: { NS: ['1', '2'] },
      bin: { B: 'AQID' },
    });
    expect(unmarshallItem(JSON.parse(JSON.stringify(m)))).toEqual({
      s: 'x',
      e: '',
      n: -1.5,
      big: 2n ** 60n,
      b: true,
      nul: null,
      l: [1, 'a', { y: 2 }],
      m: { k: 1 },
      ss: new Set(['a', 'b']),
      ns: new Set([1, 2]),
      bin: new Uint8Array([1, 2, 3]),
    });
    expect(() => toAttr(Number.NaN)).toThrow(/not allowed/);
    expect(() => toAttr(2 ** 60)).toThrow(/MAX_SAFE_INTEGER/);
    expect(() => toAttr(new (class Foo {})())).toThrow(/Unsupported type/);
    expect(() => toAttr(new Set())).toThrow(/non-empty set/);
    expect(() => fromAttr({ X: 1 })).toThrow(/Unsupported type/);
  });
});
