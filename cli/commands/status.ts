/** `failoverctl status [--json]`: a clpstat-like view of nodes, groups and monitors from the state table. */

import type { DynamoStore } from '../../controller/state/dynamo-store';
import { isLive, leaseAgeMs } from '../../shared/core/liveness';
import type { GroupState, Heartbeat } from '../../shared/core/model';
import type { StoredConfig } from '../../shared/core/ports';
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';

export interface StatusView {
  cluster: string;
  configVersion: number;
  appliedAt: string;
  table: string;
  nodes: {
    name: string;
    instanceId: string;
    az: string;
    state: 'running' | 'leaving' | 'fenced' | 'expired' | 'unknown';
    leaseAgeMs: number | null;
    isolated: boolean;
    agentVersion: string | null;
    /** armed (ms) / none: whether a silent node is reset by its watchdog (fast, safe failover). */
    watchdog: string;
    monitors: Record<string, string>;
    groups: Record<string, string>;
    spot?: string;
  }[];
  groups: {
    name: string;
    owner: string | null;
    phase: string;
    epoch: number;
    mode: string;
    desired: string;
    since: string;
    mayRun: string[];
    resources: string[];
    monitors: Record<string, string>;
    lastError: string | null;
    lockedBy: string | null;
  }[];
}

export function buildStatus(
  stored: StoredConfig,
  heartbeats: Record<string, Heartbeat>,
  groups: GroupState[],
  now: number,
  table: string,
): StatusView {
  const { config } = stored;
  return {
    cluster: config.cluster,
    configVersion: stored.version,
    appliedAt: new Date(stored.appliedAt).toISOString(),
    table,
    nodes: config.nodes.map((n) => {
      const hb = heartbeats[n.name];
      const age = leaseAgeMs(hb, now);
      return {
        name: n.name,
        instanceId: n.instanceId,
        az: n.az,
        state: !hb
          ? 'unknown'
          : hb.state !== 'running'
            ? hb.state
            : isLive(hb, now, config.timing)
              ? 'running'
              : 'expired',
        leaseAgeMs: Number.isFinite(age) ? age : null,
        isolated: hb?.isolated ?? false,
        agentVersion: hb?.agentVersion ?? null,
        watchdog: hb?.fence?.watchdogMs !== undefined ? `armed ${hb.fence.watchdogMs} ms` : hb ? 'none' : '-',
        monitors: Object.fromEntries(Object.entries(hb?.monitors ?? {}).map(([k, v]) => [k, v.status])),
        groups: Object.fromEntries(
          Object.entries(hb?.groups ?? {}).map(([k, v]) => [k, `${v.state}@${v.epoch}`]),
        ),
        ...(hb?.spot ? { spot: `${hb.spot.action} at ${hb.spot.time}` } : {}),
      };
    }),
    groups: config.groups.map((g) => {
      const s = groups.find((x) => x.group === g.name);
      return {
        name: g.name,
        owner: s?.owner ?? null,
        phase: s?.phase ?? 'Offline',
        epoch: s?.epoch ?? 0,
        mode: s?.mode ?? 'auto',
        desired: s?.desired ?? (g.autoStart ? 'online' : 'offline'),
        since: s ? new Date(s.phaseSince).toISOString() : '-',
        mayRun: s?.mayRun ?? [],
        resources: g.resources.map((r) => `${r.name}(${r.type})`),
        monitors: Object.fromEntries(Object.entries(s?.monitors ?? {}).map(([k, v]) => [k, v.status])),
        lastError: s?.lastError ?? null,
        lockedBy: s?.lock && s.lock.expiresAt > now ? s.lock.holder : null,
      };
    }),
  };
}

function duration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 0) return `${(ms / 1000).toFixed(1)} s (clock ahead)`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.floor((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

export function renderStatus(v: StatusView, now: number): string {
  const map = (m: Record<string, string>) =>
    Object.entries(m)
      .map(([k, s]) => `${k}:${s}`)
      .join(' ') || '-';
  const lines = [
    `cluster ${v.cluster}  config v${v.configVersion} (applied ${v.appliedAt})  table ${v.table}`,
    '',
  ];
  lines.push(
    ...table([
      ['NODE', 'STATE', 'LEASE AGE', 'AZ', 'INSTANCE', 'ISOLATED', 'WATCHDOG', 'GROUPS', 'MONITORS'],
      ...v.nodes.map((n) => [
        n.name,
        n.state + (n.spot ? ` (spot ${n.spot})` : ''),
        duration(n.leaseAgeMs),
        n.az,
        n.instanceId,
        n.isolated ? 'YES' : 'no',
        n.watchdog,
        map(n.groups),
        map(n.monitors),
      ]),
    ]),
  );
  lines.push('');
  lines.push(
    ...table([
      ['GROUP', 'OWNER', 'PHASE', 'EPOCH', 'MODE', 'FOR', 'RESOURCES'],
      ...v.groups.map((g) => [
        g.name,
        g.owner ?? '-',
        g.phase + (g.desired === 'offline' && g.phase !== 'Offline' ? ' (stopping)' : ''),
        String(g.epoch),
        g.mode,
        g.since === '-' ? '-' : duration(now - Date.parse(g.since)),
        g.resources.join(' '),
      ]),
    ]),
  );
  for (const g of v.groups) {
    const notes = [
      Object.keys(g.monitors).length ? `monitors ${map(g.monitors)}` : '',
      g.lockedBy ? `being reconciled by ${g.lockedBy}` : '',
      g.lastError ? `last error: ${g.lastError}` : '',
    ].filter(Boolean);
    for (const n of notes) lines.push(`  ${g.name}: ${n}`);
  }
  return lines.join('\n');
}

export type Health = 'ok' | 'degraded' | 'critical';

/** `failoverctl status`'s exit code for each verdict (crm_mon -s / Nagios style). */
export const HEALTH_EXIT: Record<Health, number> = { ok: 0, degraded: 1, critical: 2 };

/**
 * The verdict a monitoring script wants: critical when a group is Failed or Offline, degraded when
 * something is not as it should be (a group starting, stopping or in maintenance, a monitor warning
 * or error, a node that is not running with a live lease, or is isolated), ok otherwise; with the
 * reasons, most severe first.
 */
export function statusHealth(v: StatusView): { health: Health; reasons: string[] } {
  const critical: string[] = [];
  const degraded: string[] = [];
  for (const g of v.groups) {
    if (g.phase === 'Failed' || g.phase === 'Offline')
      critical.push(`group ${g.name} is ${g.phase}${g.lastError ? `: ${g.lastError}` : ''}`);
    else if (g.phase !== 'Online') degraded.push(`group ${g.name} is ${g.phase}`);
    if (g.mode !== 'auto') degraded.push(`group ${g.name} is in ${g.mode}`);
    for (const [m, s] of Object.entries(g.monitors))
      if (s === 'warn' || s === 'error') degraded.push(`group ${g.name}: monitor ${m} ${s}`);
  }
  for (const n of v.nodes) {
    if (n.state !== 'running') degraded.push(`node ${n.name} is ${n.state}`);
    if (n.isolated) degraded.push(`node ${n.name} is isolated`);
    for (const [m, s] of Object.entries(n.monitors))
      if (s === 'warn' || s === 'error') degraded.push(`node ${n.name}: monitor ${m} ${s}`);
  }
  const health: Health = critical.length > 0 ? 'critical' : degraded.length > 0 ? 'degraded' : 'ok';
  return { health, reasons: [...critical, ...degraded] };
}

async function readStatus(io: Io, store: DynamoStore, cluster: string | undefined) {
  const stored = await loadCluster(store, cluster);
  const [heartbeats, groups, requests] = await Promise.all([
    store.getHeartbeats(
      stored.config.cluster,
      stored.config.nodes.map((n) => n.name),
    ),
    store.listGroups(stored.config.cluster),
    store.listRequests(stored.config.cluster),
  ]);
  const now = io.now();
  return { view: buildStatus(stored, heartbeats, groups, now, store.table), now, requests };
}

/**
 * Prints the status once (exit code from statusHealth: 0 ok, 1 degraded, 2 critical), or with
 * `watch` redraws it every `interval` seconds until `signal` aborts (Ctrl-C), then exits with the
 * last verdict.
 */
export async function statusCommand(
  io: Io,
  flags: GlobalFlags,
  options: { cluster?: string; json?: boolean; watch?: boolean; interval?: number; signal?: AbortSignal },
): Promise<number> {
  const store = openStore(io, flags);
  const once = async (): Promise<number> => {
    const { view, now, requests } = await readStatus(io, store, options.cluster);
    const { health, reasons } = statusHealth(view);
    if (options.json)
      io.out(JSON.stringify({ ...view, pendingRequests: requests, health, healthReasons: reasons }, null, 2));
    else {
      io.out(renderStatus(view, now));
      // Requests reconcile has not processed yet ("failoverctl cancel ID" withdraws one).
      for (const r of requests)
        io.out(
          `  pending request ${r.id}: ${r.kind} ${r.group}${r.to ? ` --to ${r.to}` : ''} by ${r.by ?? '?'}, ${((now - r.createdAt) / 1000).toFixed(0)} s ago`,
        );
      io.out(`\n${health === 'ok' ? 'ok: every group online' : `${health}: ${reasons.join('; ')}`}`);
    }
    return HEALTH_EXIT[health];
  };
  if (!options.watch) return once();

  const signal = options.signal ?? interruptSignal();
  const intervalMs = (options.interval ?? 2) * 1000;
  let code = 0;
  while (!signal.aborted) {
    // Clear the screen and go home, as watch(1) does; JSON output is a stream of documents instead.
    if (!options.json) io.out('\x1b[2J\x1b[H');
    try {
      code = await once();
      if (!options.json)
        io.out(`\nevery ${intervalMs / 1000} s, ${new Date(io.now()).toISOString()}; Ctrl-C to stop`);
    } catch (e) {
      // A failed read (throttling, a dropped connection) is shown and retried, not fatal.
      io.err(`status read failed: ${(e as Error).message}; retrying`);
      code = HEALTH_EXIT.critical;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, intervalMs);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  return code;
}

/** Aborts on the first Ctrl-C (SIGINT) or SIGTERM. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}
