/** `failoverctl status [--json]`: a clpstat-like view of nodes, groups and monitors from the state table. */
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

export async function statusCommand(
  io: Io,
  flags: GlobalFlags,
  options: { cluster?: string; json?: boolean },
): Promise<number> {
  const store = openStore(io, flags);
  const stored = await loadCluster(store, options.cluster);
  const [heartbeats, groups] = await Promise.all([
    store.getHeartbeats(
      stored.config.cluster,
      stored.config.nodes.map((n) => n.name),
    ),
    store.listGroups(stored.config.cluster),
  ]);
  const now = io.now();
  const view = buildStatus(stored, heartbeats, groups, now, store.table);
  io.out(options.json ? JSON.stringify(view, null, 2) : renderStatus(view, now));
  return 0;
}
