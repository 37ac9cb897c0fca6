/**
 * The agent's own DynamoDB client: the JSON protocol (`POST /`, `application/x-amz-json-1.0`,
 * `X-Amz-Target: DynamoDB_20120810.<Operation>`) on node:http(s) with keep-alive, built from the
 * AWS SDK's own parts where they matter:
 *
 * - requests are signed by the SDK's SigV4 signer (@smithy/signature-v4);
 * - credentials come from the SDK's default chain (@aws-sdk/credential-provider-node, the one
 *   DynamoDBClient uses: environment, SSO, shared files and AWS_PROFILE, credential_process, web
 *   identity, ECS, then the instance profile through IMDS), refreshed before they expire;
 * - errors are classified for retries by the SDK's rules and retried by its standard strategy
 *   (@smithy/core/retry), with the attempts the caller allows;
 * - the endpoint is DynamoDB's regional one in the region's partition (@aws-sdk/core's partition
 *   table), FIPS / dual-stack as AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT (or the shared
 *   config file) say, unless an endpoint is given: AWS_ENDPOINT_URL (read by store.ts, as before),
 *   else AWS_ENDPOINT_URL_DYNAMODB. Not read, unlike the SDK: `endpoint_url` / `services` in the
 *   shared config file, and account-based endpoints (an optimization; the regional one always works).
 *
 * Why not @aws-sdk/client-dynamodb: the agent makes five kinds of calls, and the full client (its
 * schemas for every operation, the middleware stack, the document marshaller) costs the daemon
 * about 6 MB of resident memory and about 1 ms of CPU per call (npm run bench:agent). Items are
 * marshalled here the way @aws-sdk/lib-dynamodb does with `removeUndefinedValues: true` and
 * `convertClassInstanceToMap: false` (what controller/state/dynamo-store.ts uses).
 *
 * Errors: an error answer becomes an Error whose `name` is DynamoDB's error code (e.g.
 * `ConditionalCheckFailedException`) with `$metadata.httpStatusCode`, as the SDK's are, so that
 * shared/aws/errors.ts maps both alike; a timeout is a `TimeoutError`; socket errors pass through
 * (`code` ECONNREFUSED, ECONNRESET, ...).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { partition } from '@aws-sdk/core/client';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import {
  loadConfig,
  NODE_REGION_CONFIG_FILE_OPTIONS,
  NODE_REGION_CONFIG_OPTIONS,
  NODE_USE_DUALSTACK_ENDPOINT_CONFIG_OPTIONS,
  NODE_USE_FIPS_ENDPOINT_CONFIG_OPTIONS,
} from '@smithy/core/config';
import { isThrottlingError, isTransientError, StandardRetryStrategy } from '@smithy/core/retry';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider, Checksum, SourceData } from '@smithy/types';

const TARGET_PREFIX = 'DynamoDB_20120810.';
/** The SDK corrects its clock when the server's differs by this much (signatures expire). */
const CLOCK_SKEW_MS = 5 * 60_000;

export type AttributeValue = Record<string, unknown>;
export type Item = Record<string, unknown>;

export interface CallOptions {
  /** Attempts in all, the first included (>= 1). */
  maxAttempts: number;
  /** Socket connect timeout of an attempt. */
  connectionTimeoutMs: number;
  /** Whole-attempt timeout: connect, send, answer. */
  requestTimeoutMs: number;
}

/** An error answer of DynamoDB, shaped like the SDK's service exceptions. */
export class DynamoDbError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: {
    httpStatusCode: number;
    requestId?: string;
    attempts?: number;
    clockSkewCorrected?: boolean;
  };
  constructor(code: string, message: string, status: number, requestId: string | undefined) {
    super(message);
    this.name = code;
    this.$fault = status >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: status, ...(requestId ? { requestId } : {}) };
  }
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/** SHA-256 / HMAC-SHA-256 for the signer, on node:crypto. */
class Sha256 implements Checksum {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(this.secret));
  }
  update(data: Uint8Array | string): void {
    this.hash.update(typeof data === 'string' ? data : toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function toBytes(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * DynamoDB's endpoint for a region and the region to sign for, as the SDK's endpoint rules give
 * them (account-based endpoints aside). `local` is DynamoDB Local, as in the SDK.
 */
export function regionalEndpoint(
  region: string,
  fips: boolean,
  dualStack: boolean,
): { url: string; signingRegion: string } {
  if (region === 'local') {
    if (fips) throw new Error('Invalid Configuration: FIPS and local endpoint are not supported');
    if (dualStack) throw new Error('Invalid Configuration: Dualstack and local endpoint are not supported');
    return { url: 'http://localhost:8000', signingRegion: 'us-east-1' };
  }
  const p = partition(region);
  if (fips && !p.supportsFIPS) throw new Error(`FIPS is enabled but partition ${p.name} does not support it`);
  if (dualStack && !p.supportsDualStack)
    throw new Error(`dual-stack is enabled but partition ${p.name} does not support it`);
  const suffix = dualStack ? p.dualStackDnsSuffix : p.dnsSuffix;
  // GovCloud's regular DynamoDB endpoints are already FIPS endpoints.
  const host = fips && !(p.name === 'aws-us-gov' && !dualStack) ? 'dynamodb-fips' : 'dynamodb';
  return { url: `https://${host}.${region}.${suffix}`, signingRegion: region };
}

interface Target {
  url: URL;
  lib: typeof http | typeof https;
  agent: http.Agent;
  signer: SignatureV4;
}

/**
 * One per process and endpoint: the keep-alive connections, the signer and the credentials are
 * shared by every store built on it (the daemon builds a new store when the lease timing changes).
 */
export class DynamoDbClient {
  private target: Promise<Target> | undefined;
  /** Server time minus local time, once they differ by more than CLOCK_SKEW_MS (as the SDK does). */
  private clockOffsetMs = 0;
  private readonly retries = new Map<number, StandardRetryStrategy>();
  private readonly credentials: AwsCredentialIdentityProvider;

  constructor(
    private readonly options: {
      region?: string;
      endpoint?: string;
      env: Record<string, string | undefined>;
      userAgent: string;
      credentials?: AwsCredentialIdentityProvider;
    },
  ) {
    this.credentials = options.credentials ?? defaultProvider();
  }

  /** Region, endpoint and signer, resolved at the first call (a bad setting fails the call). */
  private resolve(): Promise<Target> {
    this.target ??= (async () => {
      const { env } = this.options;
      const region =
        this.options.region ??
        (await loadConfig(NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS)());
      if (!region) throw new Error('Region is missing');
      const ignoreEnvEndpoint = (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '').toLowerCase() === 'true';
      const given = this.options.endpoint ?? (ignoreEnvEndpoint ? undefined : env.AWS_ENDPOINT_URL_DYNAMODB);
      const resolved = given
        ? { url: given, signingRegion: region }
        : regionalEndpoint(
            region,
            await loadConfig(NODE_USE_FIPS_ENDPOINT_CONFIG_OPTIONS)(),
            await loadConfig(NODE_USE_DUALSTACK_ENDPOINT_CONFIG_OPTIONS)(),
          );
      const url = new URL(resolved.url);
      const lib = url.protocol === 'http:' ? http : https;
      return {
        url,
        lib,
        // As the SDK's NodeHttpHandler: keep-alive, at most 50 sockets.
        agent: new lib.Agent({ keepAlive: true, maxSockets: 50 }),
        signer: new SignatureV4({
          credentials: this.credentials,
          region: resolved.signingRegion,
          service: 'dynamodb',
          sha256: Sha256,
          uriEscapePath: true,
        }),
      };
    })();
    this.target.catch(() => {
      this.target = undefined;
    });
    return this.target;
  }

  /** One operation, with the retries `options.maxAttempts` allows; resolves with the parsed answer. */
  async call<T>(operation: string, input: unknown, options: CallOptions): Promise<T> {
    const body = JSON.stringify(input);
    // One strategy per number of attempts, kept like the SDK client's (its retry quota included).
    let strategy = this.retries.get(options.maxAttempts);
    if (!strategy) {
      strategy = new StandardRetryStrategy(options.maxAttempts);
      this.retries.set(options.maxAttempts, strategy);
    }
    let token = await strategy.acquireInitialRetryToken('dynamodb');
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.attempt(operation, body, options);
        strategy.recordSuccess(token);
        return JSON.parse(out) as T;
      } catch (e) {
        if (e && typeof e === 'object') {
          const err = e as { $metadata?: Record<string, unknown> };
          err.$metadata = { ...err.$metadata, attempts: attempt };
        }
        try {
          token = await strategy.refreshRetryTokenForRetry(token, {
            error: e as never,
            errorType: retryErrorType(e),
          });
        } catch {
          throw e;
        }
      }
    }
  }

  private async attempt(operation: string, body: string, options: CallOptions): Promise<string> {
    const t = await this.resolve();
    const signed = await t.signer.sign(
      {
        method: 'POST',
        protocol: t.url.protocol,
        hostname: t.url.hostname,
        ...(t.url.port ? { port: Number(t.url.port) } : {}),
        path: t.url.pathname || '/',
        query: {},
        headers: {
          host: t.url.host,
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `${TARGET_PREFIX}${operation}`,
        },
        body,
      },
      { signingDate: new Date(Date.now() + this.clockOffsetMs) },
    );
    const res = await this.post(t, signed.headers, body, options);
    const corrected = this.noteServerDate(res.headers.date);
    if (res.status >= 200 && res.status < 300) return res.body;
    const err = parseError(res.status, res.headers, res.body);
    // As the SDK: an error answer that corrected the clock is worth another attempt.
    if (corrected) err.$metadata.clockSkewCorrected = true;
    throw err;
  }

  private post(
    t: Target,
    headers: Record<string, string>,
    body: string,
    options: CallOptions,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      let done = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const finish = (err: Error | undefined, result?: Parameters<typeof resolve>[0]) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(connectTimer);
        if (err) reject(err);
        else resolve(result!);
      };
      const req = t.lib.request(
        {
          protocol: t.url.protocol,
          hostname: t.url.hostname,
          port: t.url.port || undefined,
          path: t.url.pathname || '/',
          method: 'POST',
          agent: t.agent,
          headers: {
            ...headers,
            'content-length': String(Buffer.byteLength(body)),
            'user-agent': this.options.userAgent,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            finish(undefined, {
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', (e) => finish(e));
          res.on('aborted', () => finish(new Error('the answer was cut off')));
        },
      );
      const timer = setTimeout(() => {
        const e = timeoutError(`no answer within ${options.requestTimeoutMs} ms`);
        finish(e);
        req.destroy(e);
      }, options.requestTimeoutMs);
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => {
          const e = timeoutError(`no connection within ${options.connectionTimeoutMs} ms`);
          finish(e);
          req.destroy(e);
        }, options.connectionTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (e) => finish(e));
      req.end(body);
    });
  }

  /** Follows the server's clock once it differs by CLOCK_SKEW_MS; true when it did now. */
  private noteServerDate(date: string | undefined): boolean {
    const server = date ? Date.parse(date) : Number.NaN;
    if (Number.isNaN(server) || Math.abs(server - (Date.now() + this.clockOffsetMs)) < CLOCK_SKEW_MS)
      return false;
    this.clockOffsetMs = server - Date.now();
    return true;
  }
}

/** The SDK's classification: throttling and transient errors are retried, nothing else. */
function retryErrorType(e: unknown): 'THROTTLING' | 'TRANSIENT' | 'CLIENT_ERROR' {
  if (!e || typeof e !== 'object') return 'CLIENT_ERROR';
  if (isThrottlingError(e as never)) return 'THROTTLING';
  if (isTransientError(e as never)) return 'TRANSIENT';
  return 'CLIENT_ERROR';
}

/** An error answer: the code from x-amzn-ErrorType or the body's `__type`/`code`, as the SDK reads it. */
export function parseError(status: number, headers: http.IncomingHttpHeaders, body: string): DynamoDbError {
  let data: { __type?: unknown; code?: unknown; message?: unknown; Message?: unknown } = {};
  try {
    const parsed: unknown = body ? JSON.parse(body) : {};
    if (parsed && typeof parsed === 'object') data = parsed as typeof data;
  } catch {
    // not JSON: a proxy's or load balancer's page
  }
  const header = headers['x-amzn-errortype'];
  const raw = (Array.isArray(header) ? header[0] : header) ?? data.code ?? data.__type;
  const code = raw !== undefined ? sanitizeErrorCode(String(raw)) : `Http${status}`;
  const message =
    typeof data.message === 'string'
      ? data.message
      : typeof data.Message === 'string'
        ? data.Message
        : `HTTP ${status}${body && !data.__type ? `: ${body.slice(0, 200)}` : ''}`;
  const requestId = headers['x-amzn-requestid'];
  return new DynamoDbError(code, message, status, Array.isArray(requestId) ? requestId[0] : requestId);
}

/** `com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException` -> the code alone. */
function sanitizeErrorCode(raw: string): string {
  let v = raw;
  if (v.includes(',')) v = v.split(',')[0]!;
  if (v.includes(':')) v = v.split(':')[0]!;
  if (v.includes('#')) v = v.split('#')[1]!;
  return v;
}

// ------------------------------------------------------------------------------------------------
// Marshalling, as @aws-sdk/util-dynamodb's marshall / unmarshall with the options the project uses
// (removeUndefinedValues, no class instances, numbers not wrapped). Binary values travel as base64.

const BINARY_TYPES = new Set([
  'ArrayBuffer',
  'Blob',
  'Buffer',
  'DataView',
  'File',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
]);

function isBinary(v: unknown): boolean {
  const ctor = (v as { constructor?: { name?: string } } | null | undefined)?.constructor;
  return ctor !== undefined && BINARY_TYPES.has(ctor.name ?? '');
}

function binaryToBase64(v: unknown): string {
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString('base64');
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  throw new Error(`Unsupported binary value: ${String(v)}`);
}

function numberAttr(n: number | number): { N: string } {
  const s = n.toString();
  if (s === 'NaN' || s === 'Infinity' || s === '-Infinity')
    throw new Error(`Special numeric value ${s} is not allowed`);
  if (Number(n) > Number.MAX_SAFE_INTEGER)
    throw new Error(
      `Number ${s} is greater than Number.MAX_SAFE_INTEGER. Use NumberValue from @aws-sdk/lib-dynamodb.`,
    );
  if (Number(n) < Number.MIN_SAFE_INTEGER)
    throw new Error(
      `Number ${s} is lesser than Number.MIN_SAFE_INTEGER. Use NumberValue from @aws-sdk/lib-dynamodb.`,
    );
  return { N: s };
}

function mapEntries(entries: Iterable<[string, unknown]>): AttributeValue {
  const M: Record<string, AttributeValue> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'function' && v !== undefined) M[k] = toAttr(v);
  }
  return { M };
}

/** One value as a DynamoDB attribute value. */
export function toAttr(v: unknown): AttributeValue {
  if (v === undefined)
    throw new Error('Pass options.removeUndefinedValues=true to remove undefined values from map/array/set.');
  if (v === null) return { NULL: true };
  if (Array.isArray(v))
    return { L: v.filter((x) => typeof x !== 'function' && x !== undefined).map((x) => toAttr(x)) };
  const ctorName = (v as { constructor?: { name?: string } }).constructor?.name;
  if (ctorName === 'Set') return setAttr(v as Set<unknown>);
  if (ctorName === 'Map') return mapEntries(v as Map<string, unknown>);
  if (ctorName === 'Object' || (typeof v === 'object' && !(v as object).constructor)) {
    const entries: [string, unknown][] = [];
    for (const k in v as object) entries.push([k, (v as Record<string, unknown>)[k]]);
    return mapEntries(entries);
  }
  if (isBinary(v)) return { B: binaryToBase64(v) };
  if (typeof v === 'boolean' || ctorName === 'Boolean') return { BOOL: (v as boolean | boolean).valueOf() };
  if (typeof v === 'number' || ctorName === 'Number') return numberAttr(v as number | number);
  if (typeof v === 'bigint') return { N: v.toString() };
  if (typeof v === 'string' || ctorName === 'String') return { S: (v as string | string).toString() };
  throw new Error(
    `Unsupported type passed: ${String(v)}. Pass options.convertClassInstanceToMap=true to marshall typeof object as map attribute.`,
  );
}

function setAttr(set: Set<unknown>): AttributeValue {
  const values = [...set].filter((x) => x !== undefined);
  if (values.length === 0) throw new Error('Pass a non-empty set, or options.convertEmptyValues=true.');
  const first = values[0];
  if (typeof first === 'number') return { NS: values.map((x) => numberAttr(x as number).N) };
  if (typeof first === 'bigint') return { NS: values.map((x) => String(x)) };
  if (typeof first === 'string') return { SS: values.map((x) => String(x)) };
  if (isBinary(first)) return { BS: values.map(binaryToBase64) };
  throw new Error('Only Number Set (NS), Binary Set (BS) or String Set (SS) are allowed.');
}

/** An item (a plain object) as a DynamoDB item: undefined members are left out. */
export function marshallItem(item: Item): Record<string, AttributeValue> {
  return toAttr(item).M as Record<string, AttributeValue>;
}

function toNumber(s: string): number | bigint {
  const n = Number(s);
  if ((n > Number.MAX_SAFE_INTEGER || n < Number.MIN_SAFE_INTEGER) && Number.isFinite(n)) {
    try {
      return BigInt(s);
    } catch {
      throw new Error(`${s} can't be converted to BigInt. Set options.wrapNumbers to get string value.`);
    }
  }
  return n;
}

/** One DynamoDB attribute value as a JavaScript value. */
export function fromAttr(a: AttributeValue): unknown {
  for (const [key, value] of Object.entries(a)) {
    if (value === undefined) continue;
    switch (key) {
      case 'NULL':
        return null;
      case 'BOOL':
        return Boolean(value);
      case 'N':
        return toNumber(value as string);
      case 'B':
        return new Uint8Array(Buffer.from(value as string, 'base64'));
      case 'S':
        return value;
      case 'L':
        return (value as AttributeValue[]).map(fromAttr);
      case 'M':
        return unmarshallItem(value as Record<string, AttributeValue>);
      case 'NS':
        return new Set((value as string[]).map(toNumber));
      case 'BS':
        return new Set((value as string[]).map((b) => new Uint8Array(Buffer.from(b, 'base64'))));
      case 'SS':
        return new Set(value as string[]);
      default:
        throw new Error(`Unsupported type passed: ${key}`);
    }
  }
  throw new Error(`No value defined: ${JSON.stringify(a)}`);
}

/** A DynamoDB item as a plain object. */
export function unmarshallItem(item: Record<string, AttributeValue>): Item {
  const out: Item = {};
  for (const [k, v] of Object.entries(item)) out[k] = fromAttr(v);
  return out;
}
