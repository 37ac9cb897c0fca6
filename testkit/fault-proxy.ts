/**
 * A loopback HTTP proxy in front of the moto server that answers chosen API actions with an AWS
 * error response (or never answers), for the failures the emulator cannot produce: permissions
 * (moto checks no IAM), throttling, timeouts, and Route 53's answers to a stale DELETE. Everything
 * else is forwarded to moto unchanged, so the drivers run their real call sequence and the SDK
 * parses a real error body. `throttle` answers a share of chosen calls with AWS's own throttling
 * errors, at random (seeded): what an account under an API rate limit looks like.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = { status: number; body: string } | 'hang';

export interface FaultProxy {
  endpoint: string;
  /** Answer the next `times` calls of `action` (e.g. `ReplaceRoute`) with `fault`. */
  inject(action: string, fault: Fault, times?: number): void;
  /**
   * Answer each call of a matching action with its service's throttling error, with probability
   * `share` (0 turns it off); `seed` makes the sequence reproducible.
   */
  throttle(match: (action: string, service: string) => boolean, share: number, seed?: number): void;
  /** Calls answered with a throttling error so far. */
  readonly throttled: number;
  /** Every action seen, in order. */
  readonly seen: string[];
  close(): Promise<void>;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An EC2 (query protocol) error response body. */
export function ec2ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${xml(message)}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`;
}

/** A Route 53 (REST-XML protocol) error response body. */
export function route53ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`;
}

/** A DynamoDB (JSON protocol) error response body. */
export function jsonErrorBody(code: string, message: string): string {
  return JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, message });
}

/** The service a request is for, from its SigV4 credential scope (…/region/service/aws4_request). */
function serviceOf(headers: http.IncomingHttpHeaders): string {
  const auth = String(headers.authorization ?? '');
  return /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(auth)?.[1] ?? 'unknown';
}

/** The throttling answer of each service, as AWS sends it. */
function throttlingFault(service: string): { status: number; body: string; type: string } {
  if (service === 'ec2')
    return {
      status: 503,
      body: ec2ErrorBody('RequestLimitExceeded', 'Request limit exceeded.'),
      type: 'text/xml',
    };
  if (service === 'route53')
    return { status: 400, body: route53ErrorBody('Throttling', 'Rate exceeded'), type: 'text/xml' };
  return {
    status: 400,
    body: jsonErrorBody('ThrottlingException', 'Rate exceeded'),
    type: 'application/x-amz-json-1.0',
  };
}

/** A small seeded generator (mulberry32): the same seed throttles the same calls. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function actionOf(method: string, url: string, body: string, target?: string): string {
  if (target) return target.split('.').pop() ?? target;
  const query = new URLSearchParams(body).get('Action');
  if (query) return query;
  const path = url.split('?')[0] ?? '';
  if (/\/hostedzone\/[^/]+\/rrset\/?$/.test(path))
    return method === 'POST' ? 'ChangeResourceRecordSets' : 'ListResourceRecordSets';
  if (/\/change\/[^/]+$/.test(path)) return 'GetChange';
  return `${method} ${path}`;
}

const HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'expect', 'keep-alive']);

/** Starts the proxy on 127.0.0.1 (a free port) in front of `target` (the moto endpoint). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const faults = new Map<string, { fault: Fault; times: number }>();
  const seen: string[] = [];
  let throttling:
    | { match: (action: string, service: string) => boolean; share: number; random: () => number }
    | undefined;
  let throttled = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const amzTarget = req.headers['x-amz-target'];
    const action = actionOf(
      req.method ?? 'GET',
      req.url ?? '/',
      body.toString('utf8'),
      typeof amzTarget === 'string' ? amzTarget : undefined,
    );
    seen.push(action);
    // FAULT_PROXY_TRACE=1 prints every call with its time (where an emulator run spends it).
    if (process.env.FAULT_PROXY_TRACE) process.stderr.write(`TRACE ${new Date().toISOString()} ${action}\n`);
    const service = serviceOf(req.headers);
    if (
      throttling &&
      throttling.share > 0 &&
      throttling.match(action, service) &&
      throttling.random() < throttling.share
    ) {
      throttled++;
      const t = throttlingFault(service);
      res.writeHead(t.status, { 'content-type': t.type });
      res.end(t.body);
      return;
    }
    const planned = faults.get(action);
    if (planned && planned.times > 0) {
      planned.times--;
      if (planned.fault === 'hang') return; // the client's request timeout ends it
      res.writeHead(planned.fault.status, {
        'content-type': planned.fault.body.startsWith('{') ? 'application/x-amz-json-1.0' : 'text/xml',
      });
      res.end(planned.fault.body);
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (!HOP.has(k) && typeof v === 'string') headers[k] = v;
    try {
      const method = req.method ?? 'GET';
      const answer = await fetch(`${target}${req.url}`, {
        method,
        headers,
        ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
      });
      const out: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (!HOP.has(k) && k !== 'content-encoding') out[k] = v;
      });
      res.writeHead(answer.status, out);
      res.end(Buffer.from(await answer.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(`${String(e)} ${String((e as { cause?: unknown }).cause ?? '')}`);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    inject: (action, fault, times = 1) => faults.set(action, { fault, times }),
    throttle: (match, share, seed = 1) => {
      throttling = { match, share, random: seeded(seed) };
    },
    get throttled() {
      return throttled;
    },
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
