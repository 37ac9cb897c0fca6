/**
 * A loopback HTTP proxy in front of the moto server that answers chosen API actions with an AWS
 * error response (or never answers), for the failures the emulator cannot produce: permissions
 * (moto checks no IAM), throttling, timeouts, and Route 53's answers to a stale DELETE. Everything
 * else is forwarded to moto unchanged, so the drivers run their real call sequence and the SDK
 * parses a real error body.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = { status: number; body: string } | 'hang';

export interface FaultProxy {
  endpoint: string;
  /** Answer the next `times` calls of `action` (e.g. `ReplaceRoute`) with `fault`. */
  inject(action: string, fault: Fault, times?: number): void;
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

function actionOf(method: string, url: string, body: string): string {
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
  const sockets = new Set<Socket>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const action = actionOf(req.method ?? 'GET', req.url ?? '/', body.toString('utf8'));
    seen.push(action);
    const planned = faults.get(action);
    if (planned && planned.times > 0) {
      planned.times--;
      if (planned.fault === 'hang') return; // the client's request timeout ends it
      res.writeHead(planned.fault.status, { 'content-type': 'text/xml' });
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
      res.end(String(e));
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
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
