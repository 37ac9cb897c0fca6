/**
 * The web console's HTTP server (node:http, no framework): one page, its script and style, a JSON
 * snapshot, a server-sent event stream of snapshots, and one endpoint for actions.
 *
 *   GET  /                 the page (with this session's token in a <meta> tag)
 *   GET  /console.js, /console.css
 *   GET  /api/state        one ConsoleView (JSON)
 *   GET  /api/events       text/event-stream: a ConsoleView whenever the table changed (polled every
 *                          `pollMs`), at least every 10 s
 *   POST /api/actions      { cluster, kind, group?, to?, id? } -> ActionResult
 *
 * Safety: it listens on loopback unless told otherwise; every request must name this server in its
 * Host header (an IP literal, `localhost`, or a name given with `allowedHosts`), which defeats DNS
 * rebinding; a mutating request needs the session token of the page (a random 256-bit value made at
 * start, sent back in the `X-Console-Token` header, compared in constant time), a JSON body
 * (a cross-site form cannot send one without a CORS preflight, which is never granted) and, when the
 * browser sends an Origin, this server's own origin. The page is served with a strict
 * Content-Security-Policy (same-origin scripts, styles and connections only).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ConflictError, FailoverError, InvalidRequestError, NotFoundError } from '../../shared/base/errors';
import type { RequestKind } from '../../shared/core/model';
import { awaitOutcomes, pendingError, submitRequests } from '../commands/request';
import { loadPageAssets, type PageAssets } from './assets';
import type { ConsoleSource } from './snapshot';
import type { ActionRequest, ActionResult, ConsoleView } from './view';

export interface ConsoleServerOptions {
  source: ConsoleSource;
  /** Address to listen on [127.0.0.1]. */
  host?: string;
  /** TCP port [8080]; 0 picks a free one. */
  port?: number;
  readOnly?: boolean;
  /** Host names (besides IP literals and localhost) the page may be reached by. */
  allowedHosts?: readonly string[];
  /** Who is named as the requester of actions (`by` of the request). */
  by: string;
  /** Runs reconcile here after an action was recorded (local runs without a deployed controller). */
  reconcileNow?: (cluster: string) => Promise<void>;
  /** How often the table is polled for the event stream (ms) [1000]. */
  pollMs?: number;
  /** How long an action waits for reconcile's answer (ms) [30000]. */
  actionWaitMs?: number;
  now?: () => number;
  /** Progress and failures of the server itself. */
  log?: (line: string) => void;
}

export interface ConsoleServer {
  /** http://host:port/ */
  url: string;
  /** The session token the page carries (tests use it to call the API as the page does). */
  token: string;
  server: Server;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;
const KEEPALIVE_MS = 10_000;

/** Starts the console; resolves once it listens. */
export async function startConsole(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? (() => Date.now());
  const log = options.log ?? (() => undefined);
  const token = randomBytes(32).toString('base64url');
  const assets: PageAssets = await loadPageAssets();
  const stream = new SnapshotStream(options.source, options.pollMs ?? 1_000, log);
  const allowed = new Set(['localhost', ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())]);

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      log(`console: ${req.method} ${req.url} failed: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) json(res, 500, { error: 'internal error; see the console server output' });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hostHeader = req.headers.host ?? '';
    if (!hostAllowed(hostHeader, allowed)) {
      text(
        res,
        421,
        `This console answers to its IP address or localhost, not "${hostHeader}" (a defence against DNS rebinding). Open http://127.0.0.1:${port()}/ or start it with --allow-host ${hostHeader.replace(/:\d+$/, '')}.`,
      );
      return;
    }
    const url = new URL(req.url ?? '/', `http://${hostHeader}`);
    if (req.method === 'GET' || req.method === 'HEAD') {
      switch (url.pathname) {
        case '/':
        case '/index.html':
          return page(res);
        case '/console.js':
          return asset(res, assets['console.js'], 'text/javascript; charset=utf-8');
        case '/console.css':
          return asset(res, assets['console.css'], 'text/css; charset=utf-8');
        case '/favicon.svg':
        case '/favicon.ico':
          return asset(res, assets['favicon.svg'], 'image/svg+xml');
        case '/api/state':
          return json(res, 200, await stream.current());
        case '/api/events':
          return stream.attach(req, res);
      }
      return text(res, 404, `no such page: ${url.pathname}`);
    }
    if (req.method === 'POST' && url.pathname === '/api/actions') return action(req, res, hostHeader);
    res.setHeader('Allow', 'GET, HEAD, POST');
    return text(res, 405, `${req.method} is not allowed here`);
  }

  function page(res: ServerResponse): void {
    const html = assets['index.html']
      .replace('__CONSOLE_TOKEN__', options.readOnly ? '' : token)
      .replace('__CONSOLE_READ_ONLY__', options.readOnly ? 'true' : 'false');
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    res.end(html);
  }

  async function action(req: IncomingMessage, res: ServerResponse, hostHeader: string): Promise<void> {
    const refuse = (status: number, message: string) =>
      json(res, status, { ok: false, outcome: 'refused', message, requestIds: [] } satisfies ActionResult);
    if (options.readOnly) return refuse(403, 'this console was started with --read-only: it changes nothing');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${hostHeader}`)
      return refuse(403, `cross-origin request from ${origin} refused`);
    if (!tokenMatches(req.headers['x-console-token'], token))
      return refuse(403, 'missing or wrong session token: reload the page (the server may have restarted)');
    if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json'))
      return refuse(415, 'actions are JSON (Content-Type: application/json)');
    let body: ActionRequest;
    try {
      body = JSON.parse(await readBody(req)) as ActionRequest;
    } catch (e) {
      return refuse(400, `the body is not JSON: ${(e as Error).message}`);
    }
    const result = await runAction(body);
    stream.refresh();
    return json(res, 200, result);
  }

  /** The same code paths as failoverctl's commands: checkRequest/submitRequests/awaitOutcomes, cancel. */
  async function runAction(body: ActionRequest): Promise<ActionResult> {
    const { store } = options.source;
    try {
      if (typeof body?.cluster !== 'string' || typeof body.kind !== 'string')
        throw new InvalidRequestError('an action names a cluster and a kind');
      if (body.kind === 'cancel') {
        if (typeof body.id !== 'string') throw new InvalidRequestError('cancel needs the request id');
        const r = await store.cancelRequest(body.cluster, body.id, options.by, now());
        return {
          ok: true,
          outcome: 'cancelled',
          message: `${r.kind} ${r.group}: cancelled`,
          requestIds: [r.id],
        };
      }
      const stored = await store.getConfig(body.cluster);
      if (!stored)
        throw new NotFoundError(
          'CLUSTER_NOT_FOUND',
          `cluster ${body.cluster} is not in table ${store.table}`,
        );
      const submitted = await submitRequests(
        store,
        stored.config,
        {
          kind: body.kind as RequestKind,
          ...(body.group ? { group: body.group } : {}),
          ...(body.to ? { to: body.to } : {}),
          by: options.by,
        },
        now(),
      );
      if (options.reconcileNow) await options.reconcileNow(stored.config.cluster);
      const waitMs = options.actionWaitMs ?? 30_000;
      const outcomes = await awaitOutcomes(store, stored.config.cluster, submitted, { waitMs, now });
      const ids = outcomes.map((r) => r.id);
      const pending = outcomes.filter((r) => r.status === 'pending');
      if (pending.length > 0) {
        return {
          ok: false,
          outcome: 'pending',
          message: pendingError(pending, Math.round(waitMs / 1000)).message,
          requestIds: ids,
        };
      }
      const bad = outcomes.find((r) => r.status !== 'done');
      return {
        ok: !bad,
        outcome: bad ? bad.status : 'done',
        message: outcomes.map((r) => `${r.group}: ${r.message ?? r.status}`).join('\n'),
        requestIds: ids,
      };
    } catch (e) {
      const refused =
        e instanceof InvalidRequestError || e instanceof NotFoundError || e instanceof ConflictError;
      return {
        ok: false,
        outcome: refused ? 'refused' : 'error',
        message: e instanceof FailoverError ? `${e.message} [${e.code}]` : (e as Error).message,
        requestIds: [],
      };
    }
  }

  const port = () => {
    const a = server.address();
    return a && typeof a === 'object' ? a.port : (options.port ?? 8080);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const shownHost = isIP(host) === 6 ? `[${host}]` : host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${port()}/`,
    token,
    server,
    async close() {
      stream.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** An IP literal or an allowed name, with an optional port. DNS names would allow rebinding. */
export function hostAllowed(hostHeader: string, allowed: ReadonlySet<string>): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader);
  if (!m) return false;
  const name = m[1]!.toLowerCase();
  const bare = name.startsWith('[') ? name.slice(1, -1) : name;
  return isIP(bare) !== 0 || allowed.has(name);
}

function tokenMatches(given: string | string[] | undefined, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.end(JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}

function asset(res: ServerResponse, body: string, type: string): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-cache' });
  res.end(body);
}

/**
 * Polls the table while at least one page listens and sends each changed snapshot to every page.
 * A snapshot differs when anything but the server's clock differs (a renewal, a phase, an event).
 */
class SnapshotStream {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private last: ConsoleView | undefined;
  private lastSignature = '';
  private lastSentAt = 0;
  private reading: Promise<ConsoleView> | undefined;

  constructor(
    private readonly source: ConsoleSource,
    private readonly pollMs: number,
    private readonly log: (line: string) => void,
  ) {}

  /** A fresh snapshot (one read shared by concurrent callers). */
  current(): Promise<ConsoleView> {
    this.reading ??= this.source.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    this.clients.add(res);
    req.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stop();
    });
    if (this.last) this.send(res, this.last);
    this.start();
  }

  /** Reads again now (after an action) instead of at the next tick. */
  refresh(): void {
    if (this.clients.size > 0) void this.tick();
  }

  close(): void {
    this.stop();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private start(): void {
    if (this.timer) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.pollMs);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.reading) return;
    let view: ConsoleView;
    try {
      view = await this.current();
    } catch (e) {
      this.log(`console: reading the table failed: ${(e as Error).message}`);
      return;
    }
    const { serverNow: _, ...rest } = view;
    const signature = JSON.stringify(rest);
    this.last = view;
    if (signature === this.lastSignature && view.serverNow - this.lastSentAt < KEEPALIVE_MS) return;
    this.lastSignature = signature;
    this.lastSentAt = view.serverNow;
    for (const c of this.clients) this.send(c, view);
  }

  private send(res: ServerResponse, view: ConsoleView): void {
    res.write(`event: state\ndata: ${JSON.stringify(view)}\n\n`);
  }
}
