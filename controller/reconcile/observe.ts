/**
 * observe: read the current state of one group, fresh, for decide(). Describe calls (instances,
 * zones, entry points) and the cluster's heartbeats, facts and pending requests are read once per
 * reconcile and shared by every group's first round (reconcileCluster takes every group's lock
 * before any of them observes, so these reads still follow each group's lock); later rounds of a
 * group read them again for that group alone.
 */

import type { FreshReads } from '../../shared/base/coalesce';
import { FailoverError } from '../../shared/base/errors';
import { isEntryPoint } from '../../shared/config/kinds';
import type { GroupConfig } from '../../shared/config/schema';
import type {
  CheckResult,
  GroupObservation,
  GroupState,
  Heartbeat,
  InstanceView,
  NodeFact,
  NodeObservation,
  RequestView,
} from '../../shared/core/model';
import { nodeStopBudgets } from '../../shared/core/node-side';
import type { Clock, Cloud, DescribeCache, StateStore, StoredConfig } from '../../shared/core/ports';
import { memo, SharedDescribeCache } from '../resources/describe-cache';

export interface ObserveDeps {
  store: StateStore;
  cloud: Cloud;
  clock: Pick<Clock, 'now'>;
}

export interface ClusterState {
  /** When the reads were sent (controller clock): what they show held at some moment after it. */
  readAt: number;
  /** When the heartbeats' read came back (controller clock): they were current at some moment before. */
  heardAt: number;
  heartbeats: Record<string, Heartbeat>;
  facts: Record<string, NodeFact[]>;
  requests: RequestView[];
}

/** Cache key of the cluster's heartbeats, facts and requests (ReconcileSnapshot.clusterState). */
const STATE_KEY = 'state';

/** Shared, memoized reads of one reconcile. */
export class ReconcileSnapshot {
  readonly cache: DescribeCache;
  constructor(
    private readonly deps: ObserveDeps,
    readonly stored: StoredConfig,
    private readonly signal: AbortSignal,
    /** False for a group's later rounds (ReconcileSnapshot.next), which only that group uses. */
    readonly shared = true,
    /**
     * Reads shared by the groups of the reconcile that ask for the same thing at the same moment
     * (later rounds, plans): each still gets an answer read after it asked. None: each reads alone.
     */
    private readonly reads?: FreshReads,
    /**
     * The instance and zone describes too go through `reads` (a view of one group among many that
     * lock one after another): each view reads after its group's lock, in calls shared with the
     * views asking at the same moment. Otherwise each view makes its own.
     */
    private readonly shareDescribes = false,
  ) {
    this.cache = this.planCache();
  }

  /** A fresh memo for one plan's actions (or one round), sharing its misses through `reads`. */
  planCache(): DescribeCache {
    return this.reads ? new SharedDescribeCache(this.reads) : new Map();
  }

  private memo<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (this.shareDescribes) return memo(this.cache, key, load);
    let p = this.cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      this.cache.set(key, p);
    }
    return p;
  }

  /**
   * The view for a group's next round, which must see what the previous round changed: the reads
   * its actions just made (the drivers drop what they changed), and instance and zone states again
   * only after a hard fence (an instance being stopped); everything else is read afresh.
   */
  next(previous: DescribeCache, refreshInstances: boolean): ReconcileSnapshot {
    const view = new ReconcileSnapshot(this.deps, this.stored, this.signal, false, this.reads);
    for (const [key, value] of previous) view.cache.set(key, value);
    if (!refreshInstances) {
      for (const key of ['instances', 'zones']) {
        const kept = this.cache.get(key);
        if (kept) view.cache.set(key, kept);
      }
    }
    return view;
  }

  /**
   * The view for the first rounds of the groups locked after a read-only pass through this one:
   * the describe calls are reused (as a group's later rounds reuse instance and zone states), the
   * cluster's heartbeats, facts and requests are read again, after the locks.
   */
  afterLock(options: { reuseDescribes: boolean; shareDescribes?: boolean }): ReconcileSnapshot {
    const view = new ReconcileSnapshot(
      this.deps,
      this.stored,
      this.signal,
      this.shared,
      this.reads,
      options.shareDescribes,
    );
    if (!options.reuseDescribes) return view;
    for (const [key, value] of this.cache) if (key !== STATE_KEY) view.cache.set(key, value);
    return view;
  }

  instances(): Promise<{ views: Record<string, InstanceView>; error?: string }> {
    const ids = this.stored.config.nodes.map((n) => n.instanceId);
    return this.memo('instances', async () => {
      // Stamped before the call: a stopped state only proves something about renewals sent earlier.
      const describedAt = this.deps.clock.now();
      try {
        const described = await this.deps.cloud.describeInstances(ids, this.signal);
        const views: Record<string, InstanceView> = {};
        for (const [id, status] of Object.entries(described)) views[id] = { ...status, describedAt };
        return { views };
      } catch (e) {
        return { views: {}, error: errorMessage(e) };
      }
    });
  }

  /**
   * The cluster's heartbeats (strongly consistent), facts and pending requests: one read of each for
   * every group that observes through this view. A failed read is not kept (the next asks again).
   */
  clusterState(): Promise<ClusterState> {
    const { cluster, nodes } = this.stored.config;
    return memo(this.cache, STATE_KEY, async () => {
      // Stamped before the reads: a renewal may land while they are under way.
      const readAt = this.deps.clock.now();
      // And when the heartbeats came back, before the reads beside them may: liveness is judged
      // then (a node alive at that moment is not taken for dead because another read was slow).
      let heardAt = readAt;
      const [heartbeats, facts, requests] = await Promise.all([
        this.deps.store
          .getHeartbeats(
            cluster,
            nodes.map((n) => n.name),
          )
          .then((read) => {
            heardAt = this.deps.clock.now();
            return read;
          }),
        this.deps.store.getFacts(cluster),
        this.deps.store.listRequests(cluster),
      ]);
      return { readAt, heardAt, heartbeats, facts, requests };
    });
  }

  /** Per node, the longest its self-fence may take by the definition (computed once per reconcile). */
  stopBudgets(): Map<string, number> {
    this.budgets ??= nodeStopBudgets(this.stored.config);
    return this.budgets;
  }
  private budgets: Map<string, number> | undefined;

  zones(): Promise<{ states: Record<string, string>; error?: string }> {
    const zones = [...new Set(this.stored.config.nodes.map((n) => n.az))];
    return this.memo('zones', async () => {
      try {
        return { states: await this.deps.cloud.describeZones(zones, this.signal) };
      } catch (e) {
        return { states: {}, error: errorMessage(e) };
      }
    });
  }
}

export async function observeGroup(
  deps: ObserveDeps,
  snapshot: ReconcileSnapshot,
  group: GroupConfig,
  state: GroupState,
  now: () => number,
  signal: AbortSignal,
): Promise<GroupObservation> {
  const { config } = snapshot.stored;
  // Entry points are checked only where the group should be serving. The checks need nothing but
  // the record, so they run beside the reads of the cluster's state rather than after them: a
  // failover decided on this observation waits for one round of reads, not two.
  const checks: Record<string, CheckResult> = {};
  const owner = state.owner !== null ? config.nodes.find((n) => n.name === state.owner) : undefined;
  const checking =
    owner && state.phase === 'Online' && state.mode === 'auto'
      ? Promise.all(
          group.resources.filter(isEntryPoint).map(async (resource) => {
            try {
              checks[resource.name] = await deps.cloud.resources[resource.type].check({
                cache: snapshot.cache,
                shared: snapshot.shared,
                cluster: config.cluster,
                group: group.name,
                resource,
                node: owner,
                config,
                signal,
              });
            } catch (e) {
              checks[resource.name] = {
                status: 'error',
                detail: errorMessage(e),
                ...(e instanceof FailoverError ? { code: e.code } : {}),
              };
            }
          }),
        )
      : undefined;
  const [{ readAt, heardAt, heartbeats, facts, requests }, instances, zones] = await Promise.all([
    snapshot.clusterState(),
    snapshot.instances(),
    snapshot.zones(),
    checking,
  ]);
  const nodes: Record<string, NodeObservation> = {};
  for (const n of config.nodes) {
    const obs: NodeObservation = {
      config: n,
      stopBudgetMs: snapshot.stopBudgets().get(n.name) ?? 0,
      facts: facts[n.name] ?? [],
    };
    const hb = heartbeats[n.name];
    if (hb) obs.heartbeat = hb;
    const instance = instances.views[n.instanceId];
    if (instance) obs.instance = instance;
    const az = zones.states[n.az];
    if (az) obs.azState = az;
    nodes[n.name] = obs;
  }

  const apiErrors: GroupObservation['apiErrors'] = {};
  if (instances.error) apiErrors.instance = instances.error;
  if (zones.error) apiErrors.az = zones.error;

  // The decision's time is taken after every read came back; the heartbeats' read may be older (a
  // memoized read shared by several groups, or one that came back before a slow describe).
  return {
    now: now(),
    readAt,
    heardAt,
    config,
    group,
    state,
    nodes,
    requests: requests.filter((r) => r.group === group.name || r.group === '*'),
    checks,
    apiErrors,
  };
}

export function errorMessage(e: unknown): string {
  if (e instanceof FailoverError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
