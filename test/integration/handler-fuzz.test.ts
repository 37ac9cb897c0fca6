/**
 * Hostile input to the Lambda handlers, as Lambda runs them (middy, Powertools logger, dependencies
 * from the environment): 1,000 random malformed stream batches and 1,000 random malformed
 * EventBridge events (seeded, fast-check). Each must be refused with exactly one typed log line (a
 * `code` a runbook can match), throw nothing, and make no AWS call: the handlers' AWS endpoint is a
 * loopback server here that counts every request it gets.
 *
 * Before: Records of {}, 42 or {length: 3} crashed the stream handler with a TypeError (17 of 200
 * batches); cluster names from REQUEST# keys ("", "x#y", 5,000 characters) reached DynamoDB (35 of
 * 200 batches made AWS calls); an unparseable time became 0, a time in 2999 kept a fact for ever.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const RUNS = 1_000;
const SEED = 1_616;
const TYPED = new Set(['INVALID_EVENT', 'FOREIGN_EVENT', 'UNEXPECTED_EVENT']);

let requests = 0;
const server = http.createServer((_req, res) => {
  requests++;
  res.writeHead(500).end();
});

/** Powertools' JSON log lines, captured from stdout and stderr (warnings and errors go there). */
const lines: Record<string, unknown>[] = [];
const write = process.stdout.write.bind(process.stdout);
const writeErr = process.stderr.write.bind(process.stderr);
const capture =
  (original: typeof write) =>
  (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const text = String(chunk);
    if (text.startsWith('{')) {
      for (const line of text.split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line));
      return true;
    }
    return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
  };

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'fuzz';
  process.env.AWS_SECRET_ACCESS_KEY = 'fuzz';
  process.env.FAILOVER_TABLE = 'fuzz-table';
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  process.stdout.write = capture(write) as typeof process.stdout.write;
  process.stderr.write = capture(writeErr) as typeof process.stderr.write;
});
afterAll(async () => {
  process.stdout.write = write;
  process.stderr.write = writeErr;
  await new Promise<void>((r) => server.close(() => r()));
});

const context = (id: string): Context =>
  ({
    awsRequestId: id,
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:reconcile',
    functionName: 'reconcile',
    getRemainingTimeInMillis: () => 30_000,
  }) as unknown as Context;

/** Names a definition cannot hold, as they may come in keys. */
const badName = fc.oneof(
  fc.constant(''),
  fc.constant('x#y'),
  fc.constant('x'.repeat(5_000)),
  fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/^[a-z0-9][a-z0-9-]{0,62}$/.test(s)),
  fc.constant('Orders'),
  fc.constant('-lead'),
);
const anything = fc.jsonValue({ maxDepth: 3 });

/** A stream record broken in one of the ways a hostile or buggy writer could break it. */
const badRecord = fc.oneof(
  anything,
  fc.record({ eventName: fc.constantFrom('INSERT', 'MODIFY'), dynamodb: anything }),
  fc.record({
    eventName: fc.string({ maxLength: 10 }).filter((s) => !['INSERT', 'MODIFY', 'REMOVE'].includes(s)),
    dynamodb: fc.constant({
      Keys: { pk: { S: 'CLUSTER#a' }, sk: { S: 'REQUEST#0abc-0123abcd' } },
      SequenceNumber: '1',
    }),
  }),
  badName.map((name) => ({
    eventName: 'INSERT',
    dynamodb: {
      Keys: { pk: { S: `CLUSTER#${name}` }, sk: { S: 'REQUEST#0abc-0123abcd' } },
      SequenceNumber: '1',
    },
  })),
  badName.map((name) => ({
    eventName: 'MODIFY',
    dynamodb: {
      Keys: {
        pk: { S: `NODE#${name}#arn:aws:ec2:us-east-1:123456789012:instance/i-0123abcd` },
        sk: { S: 'HEARTBEAT' },
      },
      SequenceNumber: '2',
    },
  })),
  fc.record({
    eventName: fc.constant('INSERT'),
    dynamodb: fc.record({
      Keys: fc.record({
        pk: fc.record({ S: fc.string({ maxLength: 30 }) }),
        sk: fc.record({ S: fc.string({ maxLength: 30 }) }),
      }),
      SequenceNumber: fc.oneof(
        fc.constant(undefined),
        fc.integer(),
        fc.string({ maxLength: 5 }).filter((s) => !/^\d+$/.test(s)),
      ),
    }),
  }),
  fc.constant({
    eventName: 'INSERT',
    dynamodb: { Keys: { pk: { N: '1' }, sk: { S: 'HEARTBEAT' } }, SequenceNumber: '3' },
  }),
);

/** Malformed batches: not a batch at all, or a batch of malformed records only. */
const badBatch = fc.oneof(
  anything.filter(
    (v) => !(v && typeof v === 'object' && Array.isArray((v as { Records?: unknown }).Records)),
  ),
  fc.constantFrom(
    {},
    { Records: {} },
    { Records: 42 },
    { Records: { length: 3 } },
    { Records: [] },
    { Records: 'x' },
  ),
  fc.array(badRecord, { minLength: 1, maxLength: 8 }).map((Records) => ({ Records })),
);

const validEvent = {
  version: '0',
  id: 'a1b2',
  'detail-type': 'EC2 Instance State-change Notification',
  source: 'aws.ec2',
  account: '123456789012',
  time: new Date().toISOString(),
  region: 'us-east-1',
  resources: [],
  detail: { 'instance-id': 'i-0123abcd', state: 'stopping' },
};
/** One field of a valid event replaced with something no real event carries. */
const corrupt = fc.oneof(
  fc.record({
    field: fc.constant('account'),
    value: fc.oneof(fc.string({ maxLength: 11 }), fc.integer(), fc.constant('12345678901x')),
  }),
  fc.record({
    field: fc.constant('region'),
    value: fc.oneof(
      fc.string({ maxLength: 8 }).filter((s) => !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(s)),
      fc.integer(),
    ),
  }),
  fc.record({
    field: fc.constant('time'),
    value: fc.oneof(
      fc.constantFrom(
        'yesterday',
        '',
        '2999-01-01T00:00:00Z',
        '1970-01-01T00:00:00Z',
        '2026-13-45T99:00:00Z',
        'NaN',
      ),
      fc.integer(),
    ),
  }),
  fc.record({
    field: fc.constant('detail'),
    value: fc.oneof(fc.constant(null), fc.string(), fc.array(fc.integer()), fc.integer()),
  }),
  fc.record({
    field: fc.constant('detail'),
    value: fc.record({
      'instance-id': fc.oneof(
        fc.string({ maxLength: 12 }).filter((s) => !/^i-[0-9a-f]{8,17}$/.test(s)),
        fc.integer(),
      ),
      state: fc.constant('stopping'),
    }),
  }),
  fc.record({
    field: fc.constant('detail'),
    value: fc.record({ 'instance-id': fc.constant('i-0123abcd'), state: fc.string({ maxLength: 8 }) }),
  }),
  fc.record({
    field: fc.constant('source'),
    value: fc.oneof(fc.constant(''), fc.integer(), fc.constant('x'.repeat(300))),
  }),
  fc.record({
    field: fc.constant('detail-type'),
    value: fc.oneof(fc.constant(''), fc.constant(null), fc.constant('y'.repeat(300))),
  }),
  fc.record({
    field: fc.constant('resources'),
    value: fc.oneof(
      fc.constant('arn'),
      fc.array(fc.integer(), { minLength: 1 }),
      fc.constant(Array(101).fill('a')),
    ),
  }),
  fc.record({
    field: fc.constant('id'),
    value: fc.oneof(fc.constant(''), fc.integer(), fc.constant(undefined)),
  }),
);
const badEvent = fc.oneof(
  anything,
  corrupt.map(({ field, value }) => ({ ...validEvent, [field]: value })),
  fc.constant({
    ...validEvent,
    detail: { 'instance-id': 'i-0123abcd', state: 'stopping', pad: 'x'.repeat(300_000) },
  }),
);

/** Runs each input through a handler; checks the log line, the exception and the AWS calls of each. */
async function fuzz(
  handler: (event: unknown, ctx: Context) => Promise<unknown>,
  inputs: fc.Arbitrary<unknown>,
): Promise<{ refused: number; typedLines: number; untyped: number; awsCalls: number }> {
  const samples = fc.sample(inputs, { numRuns: RUNS, seed: SEED });
  let refused = 0;
  let typedLines = 0;
  let untyped = 0;
  const callsBefore = requests;
  for (const [i, input] of samples.entries()) {
    const from = lines.length;
    let thrown: unknown;
    const result = (await handler(input, context(`fuzz-${i}`)).catch((e) => {
      thrown = e;
      return undefined;
    })) as { refused?: { code: string } } | undefined;
    if (thrown !== undefined) untyped++;
    const problems = lines.slice(from).filter((l) => l.level === 'WARN' || l.level === 'ERROR');
    const typed = problems.filter((l) => TYPED.has(String(l.code)));
    if (problems.length === 1 && typed.length === 1) typedLines++;
    else console.error('not exactly one typed line for', JSON.stringify(input).slice(0, 300), problems);
    if (result?.refused && TYPED.has(result.refused.code)) refused++;
  }
  return { refused, typedLines, untyped, awsCalls: requests - callsBefore };
}

describe('hostile input to the handlers (1,000 seeded malformed inputs each)', () => {
  it('the stream handler refuses every malformed batch: one typed line, no exception, no AWS call', async () => {
    const { handler } = await import('../../functions/reconcile-stream');
    const r = await fuzz(handler as never, badBatch);
    console.log(
      `fuzz (badBatch): ${RUNS} inputs, ${r.refused} refused with a typed line, ${r.untyped} untyped exceptions, ${r.awsCalls} AWS calls`,
    );
    expect(r).toEqual({ refused: RUNS, typedLines: RUNS, untyped: 0, awsCalls: 0 });
  });

  it('the EventBridge handlers refuse every malformed event: one typed line, no exception, no AWS call', async () => {
    const { handler } = await import('../../functions/reconcile-ec2-event');
    const r = await fuzz(handler as never, badEvent);
    console.log(
      `fuzz (badEvent): ${RUNS} inputs, ${r.refused} refused with a typed line, ${r.untyped} untyped exceptions, ${r.awsCalls} AWS calls`,
    );
    expect(r).toEqual({ refused: RUNS, typedLines: RUNS, untyped: 0, awsCalls: 0 });
  });

  it('the counter sees an AWS call when one is made (the check can fail)', async () => {
    const { handler } = await import('../../functions/reconcile-ec2-event');
    const before = requests;
    await (handler as never as (e: unknown, c: Context) => Promise<unknown>)(
      validEvent,
      context('valid'),
    ).catch(() => undefined);
    expect(requests).toBeGreaterThan(before);
  });
});
