/**
 * One small HTTP(S) request with a hard timeout, on node:http (no fetch/undici: that would add
 * several MB to the agent's footprint for nothing). Used by IMDS, the http monitor and witnesses.
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpResult {
  status: number;
  body: string;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Keep at most this many bytes of the body (the rest is read and dropped). */
  maxBody?: number;
  signal?: AbortSignal;
}

/** One request; resolves with the status and (the start of) the body, rejects on error or timeout. */
export function httpRequest(url: string, options: HttpOptions): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      reject(new Error(`invalid URL "${url}"`));
      return;
    }
    const lib = target.protocol === 'https:' ? https : http;
    const maxBody = options.maxBody ?? 64 * 1024;
    let done = false;
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    const finish = (err: Error | undefined, result?: HttpResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(result!);
    };
    const onAbort = () => req.destroy(new Error('aborted'));
    // agent: false: a fresh connection per probe (a monitor must see a dead listener, not a pooled
    // socket) and nothing kept open between probes.
    const req = lib.request(
      target,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < maxBody) body += chunk.slice(0, maxBody - body.length);
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body }));
        res.on('error', (e) => finish(e));
      },
    );
    req.on('error', (e) => finish(e));
    if (options.signal) {
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
    req.end();
  });
}
