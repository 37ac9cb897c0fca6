/**
 * Reads the state table for the web console, with the operator's credentials, and turns it into a
 * ConsoleView. Every cluster of the table, every group and node; the groups' and nodes' fields come
 * from the CLI's status builder (cli/commands/status.ts) so that the two never disagree.
 *
 * Two cadences:
 * - every poll (1 s): per cluster the heartbeats, the group records, the pending requests and the
 *   audit events since the last poll, plus the cluster registry (a definition is read again only
 *   when its version changed): 5 small DynamoDB requests per cluster;
 * - every `observeEveryMs` (5 s), in the background: the controller's own observation of each group
 *   (controller/reconcile/observe.ts: DescribeInstances, DescribeAvailabilityZones, and each entry point's
 *   check on the owner), read-only, for where each entry point points and each instance's state.
 */

import { errorMessage, observeGroup, ReconcileSnapshot } from '../../controller/reconcile/observe';
import type { DynamoStore } from '../../controller/state/dynamo-store';
import type { GroupState, Heartbeat, MonitorStatus } from '../../shared/core/model';
import type { AuditEvent, Cloud, StoredConfig } from '../../shared/core/ports';
import { buildStatus, type StatusView, statusHealth } from '../commands/status';
import { failoverTimeline } from './timeline';
import type { ClusterView, ConsoleView, EntryPointView, GroupView, MonitorView, NodeView } from './view';

export interface ConsoleSourceOptions {
  store: DynamoStore;
  /** The controller's cloud adapter, for its read-only checks; none: no entry point details. */
  cloud?: Cloud;
  now?: () => number;
  readOnly?: boolean;
  /** How often the entry points and instances are described (ms). */
  observeEveryMs?: number;
  /** How far back the failover timeline reads the audit log at start (ms). */
  auditWindowMs?: number;
}

interface ClusterCache {
  stored: StoredConfig;
  audit: (AuditEvent & { id: string })[];
  /** Time of the newest audit record read. */
  cursorAt?: number;
  observed?: {
    at: number;
    instances: Record<string, string>;
    checks: Record<string, Record<string, { status: EntryPointView['status']; detail: string }>>;
    error?: string;
  };
  observing?: Promise<void>;
  last?: ClusterView;
}

const AUDIT_KEEP = 2_000;
/** How far back each poll reads the audit log again (records written late keep their own time). */
const AUDIT_REREAD_MS = 15_000;

export class ConsoleSource {
  private readonly clusters = new Map<string, ClusterCache>();
  private readonly now: () => number;
  private readonly observeEveryMs: number;
  private readonly auditWindowMs: number;

  constructor(private readonly options: ConsoleSourceOptions) {
    this.now = options.now ?? (() => Date.now());
    this.observeEveryMs = options.observeEveryMs ?? 5_000;
    this.auditWindowMs = options.auditWindowMs ?? 24 * 3_600_000;
  }

  get store(): DynamoStore {
    return this.options.store;
  }

  /** One snapshot of every cluster. Never throws: a failed read becomes `error` in the view. */
  async read(): Promise<ConsoleView> {
    const { store } = this.options;
    const base = { table: store.table, readOnly: this.options.readOnly ?? false };
    let registry: { cluster: string; version: number }[];
    try {
      registry = await store.listClusterVersions();
    } catch (e) {
      return {
        ...base,
        serverNow: this.now(),
        clusters: [...this.clusters.values()].flatMap((c) => (c.last ? [c.last] : [])),
        error: readError(e),
      };
    }
    for (const name of [...this.clusters.keys()])
      if (!registry.some((r) => r.cluster === name)) this.clusters.delete(name);
    const clusters = await Promise.all(registry.map((r) => this.readCluster(r.cluster, r.version)));
    return {
      ...base,
      serverNow: this.now(),
      clusters: clusters.filter((c): c is ClusterView => c !== undefined),
    };
  }

  private async readCluster(name: string, version: number): Promise<ClusterView | undefined> {
    const { store } = this.options;
    let cache = this.clusters.get(name);
    try {
      if (!cache || cache.stored.version !== version) {
        const stored = await store.getConfig(name);
        if (!stored) return undefined;
        cache = { ...(cache ?? { audit: [] }), stored };
        this.clusters.set(name, cache);
      }
      const { config } = cache.stored;
      const now = this.now();
      const [heartbeats, groups, requests, audit] = await Promise.all([
        store.getHeartbeats(
          name,
          config.nodes.map((n) => n.name),
        ),
        store.listGroups(name),
        store.listRequests(name),
        // Records are keyed by their time, and some are written a moment after it (action
        // outcomes go in the background): read the last few seconds again and keep what is new.
        store.listAudit(name, {
          since: cache.cursorAt !== undefined ? cache.cursorAt - AUDIT_REREAD_MS : now - this.auditWindowMs,
        }),
      ]);
      const known = new Set(cache.audit.map((e) => e.id));
      const fresh = audit.filter((e) => !known.has(e.id));
      if (fresh.length > 0) {
        cache.audit = [...cache.audit, ...fresh].sort((a, b) => a.at - b.at).slice(-AUDIT_KEEP);
        cache.cursorAt = cache.audit.at(-1)!.at;
      }
      this.observe(cache, groups);
      const view = this.clusterView(cache, heartbeats, groups, requests, this.now());
      cache.last = view;
      return view;
    } catch (e) {
      if (cache?.last) return { ...cache.last, error: readError(e) };
      throw e;
    }
  }

  /** Starts the controller's read-only observation of every group when the last one is old enough. */
  private observe(cache: ClusterCache, groups: GroupState[]): void {
    const { cloud, store } = this.options;
    if (!cloud || cache.observing) return;
    if (cache.observed && this.now() - cache.observed.at < this.observeEveryMs) return;
    const stored = cache.stored;
    cache.observing = (async () => {
      const signal = AbortSignal.timeout(15_000);
      const deps = { store, cloud, clock: { now: this.now } };
      const snapshot = new ReconcileSnapshot(deps, stored, signal);
      const checks: NonNullable<ClusterCache['observed']>['checks'] = {};
      const instances: Record<string, string> = {};
      let error: string | undefined;
      try {
        const { views, error: instanceError } = await snapshot.instances();
        for (const n of stored.config.nodes) {
          const v = views[n.instanceId];
          if (v) instances[n.name] = v.state;
        }
        if (instanceError) error = instanceError;
        await Promise.all(
          stored.config.groups.map(async (group) => {
            const state = groups.find((g) => g.group === group.name);
            if (!state) return;
            const obs = await observeGroup(deps, snapshot, group, state, this.now, signal);
            checks[group.name] = Object.fromEntries(
              Object.entries(obs.checks).map(([k, c]) => [k, { status: c.status, detail: c.detail }]),
            );
          }),
        );
      } catch (e) {
        error = errorMessage(e);
      }
      cache.observed = { at: this.now(), instances, checks, ...(error ? { error } : {}) };
    })().finally(() => {
      cache.observing = undefined;
    });
  }

  private clusterView(
    cache: ClusterCache,
    heartbeats: Record<string, Heartbeat>,
    groups: GroupState[],
    requests: Awaited<ReturnType<DynamoStore['listRequests']>>,
    now: number,
  ): ClusterView {
    const { stored } = cache;
    const { config } = stored;
    const status = buildStatus(stored, heartbeats, groups, now, this.options.store.table);
    const { health, reasons } = statusHealth(status);
    const label = nodeLabeler(config.nodes);
    const observed = cache.observed;
    const live = new Set(status.nodes.filter((n) => n.state === 'running').map((n) => n.name));
    return {
      name: config.cluster,
      region: config.region ?? '',
      configVersion: stored.version,
      appliedAt: stored.appliedAt,
      leaseMs: config.timing.leaseMs,
      maxClockSkewMs: config.timing.maxClockSkewMs,
      heartbeatIntervalMs: config.timing.heartbeatIntervalMs,
      health,
      healthReasons: reasons,
      groups: status.groups.map((g) =>
        groupView(g, live, config, groups, heartbeats, observed?.checks[g.name], label),
      ),
      nodes: status.nodes.map((n) => nodeView(n, config, heartbeats[n.name], observed?.instances[n.name])),
      requests: requests.map((r) => ({
        id: r.id,
        kind: r.kind,
        group: r.group,
        createdAt: r.createdAt,
        ...(r.to ? { to: r.to } : {}),
        ...(r.by ? { by: r.by } : {}),
      })),
      failovers: failoverTimeline(cache.audit),
      observedAt: observed?.at ?? null,
      ...(observed?.error ? { error: `describe calls: ${observed.error}` } : {}),
    };
  }
}

type Config = StoredConfig['config'];

function groupView(
  g: StatusView['groups'][number],
  liveNodes: ReadonlySet<string>,
  config: Config,
  records: GroupState[],
  heartbeats: Record<string, Heartbeat>,
  checks: Record<string, { status: EntryPointView['status']; detail: string }> | undefined,
  label: (text: string) => string,
): GroupView {
  const def = config.groups.find((x) => x.name === g.name)!;
  const record = records.find((r) => r.group === g.name);
  const owner = g.owner;
  const ownerHb = owner ? heartbeats[owner] : undefined;
  const serving = g.phase === 'Online' && g.mode === 'auto';
  const entryPoints: EntryPointView[] = def.resources.flatMap((r) => {
    if (r.type !== 'vip' && r.type !== 'eip' && r.type !== 'dns') return [];
    const check = checks?.[r.name];
    return [
      {
        name: r.name,
        type: r.type,
        address: r.type === 'vip' ? `${r.ip}/32` : r.type === 'eip' ? r.allocationId : r.recordName,
        status: check && serving ? check.status : 'unknown',
        detail:
          check && serving
            ? label(check.detail)
            : serving
              ? 'not checked yet'
              : `not checked while ${g.phase}`,
      },
    ];
  });
  const monitors: MonitorView[] = def.monitors.map((m) => {
    const recorded = record?.monitors[m.name];
    const agent = ownerHb?.monitors[m.name];
    // Reconcile records a monitor only when its status changes away from ok: a controller-side
    // monitor of a serving group without a record is fine.
    const controllerSide = m.type === 'az' || m.type === 'instance' || m.type === 'resource';
    const status: MonitorStatus =
      recorded?.status ?? agent?.status ?? (controllerSide && serving ? 'ok' : 'unknown');
    return {
      name: m.name,
      status,
      detail: `${m.type}${recorded?.detail ? `: ${label(recorded.detail)}` : agent?.detail ? `: ${agent.detail}` : ''}`,
      node: agent ? owner : null,
    };
  });
  // The entry points' automatic checks are recorded as `check:<resource>` when they fail.
  for (const [key, m] of Object.entries(record?.monitors ?? {})) {
    if (!def.monitors.some((x) => x.name === key))
      monitors.push({ name: key, status: m.status, detail: label(m.detail), node: null });
  }
  return {
    name: g.name,
    owner,
    phase: g.phase,
    epoch: g.epoch,
    mode: g.mode,
    desired: g.desired,
    since: g.since === '-' ? null : Date.parse(g.since),
    nodes: def.nodes,
    mayRun: g.mayRun,
    entryPoints,
    applications: def.resources
      .filter((r) => r.type === 'exec')
      .map((r) => ({
        name: r.name,
        // What live agents report; a node whose lease ran out said so last, which proves nothing now.
        runningOn: Object.entries(heartbeats)
          .filter(([node, hb]) => hb.groups[g.name]?.state === 'running' && liveNodes.has(node))
          .map(([node]) => node),
        lastReportedOn: Object.entries(heartbeats)
          .filter(([node, hb]) => hb.groups[g.name]?.state === 'running' && !liveNodes.has(node))
          .map(([node]) => node),
      })),
    monitors,
    lastError: g.lastError ? label(g.lastError) : null,
    lockedBy: g.lockedBy,
  };
}

function nodeView(
  n: StatusView['nodes'][number],
  config: Config,
  hb: Heartbeat | undefined,
  instanceState: string | undefined,
): NodeView {
  const def = config.nodes.find((x) => x.name === n.name)!;
  return {
    name: n.name,
    instanceId: n.instanceId,
    az: n.az,
    privateIp: def.privateIp ?? '',
    state: n.state,
    sentAt: hb?.sentAt ?? null,
    leaseMs: Math.max(hb?.leaseMs ?? 0, config.timing.leaseMs),
    isolated: n.isolated,
    watchdog: n.watchdog,
    agentVersion: n.agentVersion,
    witnesses: hb?.witnesses ?? [],
    instanceState: instanceState ?? null,
    monitors: Object.entries(hb?.monitors ?? {}).map(([name, m]) => ({
      name,
      status: m.status,
      detail: m.detail ?? '',
      node: n.name,
    })),
    groups: Object.entries(hb?.groups ?? {}).map(([name, g]) => ({ name, state: g.state, epoch: g.epoch })),
    ...(n.spot ? { spot: n.spot } : {}),
  };
}

/** Puts the node's name beside each ENI, instance id and private address a message mentions. */
export function nodeLabeler(
  nodes: readonly { name: string; eni?: string; instanceId: string; privateIp?: string }[],
): (text: string) => string {
  const names = new Map<string, string>();
  for (const n of nodes) {
    if (n.eni) names.set(n.eni, n.name);
    names.set(n.instanceId, n.name);
    if (n.privateIp) names.set(n.privateIp, n.name);
  }
  return (text) =>
    text.replace(/\b(eni-[0-9a-f]+|i-[0-9a-f]+|\d{1,3}(?:\.\d{1,3}){3})\b(?! \()/g, (id) => {
      const name = names.get(id);
      return name && !text.includes(`${id} (${name})`) ? `${id} (${name})` : id;
    });
}

/** What the banner says when the table cannot be read: what to set, not only what failed. */
export function readError(e: unknown): string {
  return errorMessage(e);
}
