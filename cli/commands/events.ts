/** `failoverctl events [--follow] [--since 10m] [--group G]`: the audit log. */
import { InvalidRequestError } from '../../shared/base/errors';
import type { AuditEvent } from '../../shared/core/ports';
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';

export function parseSince(text: string, now: number): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text);
  if (m)
    return (
      now - Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
    );
  const t = Date.parse(text);
  if (Number.isFinite(t)) return t;
  throw new InvalidRequestError(
    `--since ${text} is neither a duration (30s, 10m, 2h, 1d) nor a date (2026-11-23T12:00:00Z)`,
  );
}

export function renderEvent(e: AuditEvent): string {
  return `${new Date(e.at).toISOString()}  ${(e.group ?? '-').padEnd(8)} ${e.epoch !== undefined ? `e${e.epoch}`.padEnd(5) : '     '} ${e.kind.padEnd(16)} ${e.message}`;
}

export async function eventsCommand(
  io: Io,
  flags: GlobalFlags,
  options: {
    cluster?: string;
    since: string;
    follow?: boolean;
    group?: string;
    json?: boolean;
    signal?: AbortSignal;
  },
): Promise<number> {
  const store = openStore(io, flags);
  const { config } = await loadCluster(store, options.cluster);
  const print = (e: AuditEvent) => {
    if (options.group && e.group !== options.group) return;
    io.out(options.json ? JSON.stringify(e) : renderEvent(e));
  };
  let events = await store.listAudit(config.cluster, { since: parseSince(options.since, io.now()) });
  events.forEach(print);
  if (!options.follow) return 0;
  let cursor = events.at(-1)?.id;
  while (!options.signal?.aborted) {
    await new Promise((r) => setTimeout(r, 1000));
    events = await store.listAudit(config.cluster, cursor ? { after: cursor } : { since: io.now() - 60_000 });
    events.forEach(print);
    cursor = events.at(-1)?.id ?? cursor;
  }
  return 0;
}
