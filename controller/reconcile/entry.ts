/**
 * What the Lambda handlers (and `failoverctl reconcile --once`) call: validate the trigger, record
 * its facts, then reconcile the clusters it points at. Trigger-specific code ends here; from
 * reconcileCluster() on, every trigger takes the same path.
 */
import type { Log } from '../../shared/core/ports';
import type { DynamoStore } from '../state/dynamo-store';
import { errorMessage } from './observe';
import { type ClusterOutcome, type ReconcileDeps, reconcileCluster } from './reconcile';
import { clustersFromStream, FACT_RETENTION_MS, parseEventBridgeEvent } from './triggers';

export interface InvocationContext {
  /** Lock holder id: the Lambda request id. */
  holder: string;
  /** Controller-clock deadline for every call of this invocation. */
  deadline: number;
  /** Account and region this deployment serves (events from elsewhere are dropped). */
  account?: string;
  region?: string;
}

export interface ControllerDeps extends Omit<ReconcileDeps, 'holder' | 'store'> {
  store: DynamoStore;
}

export interface InvocationResult {
  trigger: string;
  clusters: ClusterOutcome[];
  ignored?: string;
  failed: { cluster: string; error: string }[];
}

async function reconcileAll(
  deps: ControllerDeps,
  ctx: InvocationContext,
  clusters: readonly string[],
  trigger: string,
): Promise<InvocationResult> {
  const result: InvocationResult = { trigger, clusters: [], failed: [] };
  // Clusters are independent: one broken definition must not hold the others back.
  const outcomes = await Promise.allSettled(
    clusters.map((c) => reconcileCluster({ ...deps, holder: ctx.holder }, c, { deadline: ctx.deadline })),
  );
  outcomes.forEach((o, i) => {
    if (o.status === 'fulfilled') result.clusters.push(o.value);
    else result.failed.push({ cluster: clusters[i]!, error: errorMessage(o.reason) });
  });
  logResult(deps.log, result);
  return result;
}

function logResult(log: Log, result: InvocationResult): void {
  const groups = result.clusters.flatMap((c) => c.groups.map((g) => ({ cluster: c.cluster, ...g })));
  log.info('reconcile finished', { trigger: result.trigger, groups, failed: result.failed });
  for (const f of result.failed) log.error('reconcile of cluster failed', f);
}

/** EventBridge: the 1-minute schedule, EC2 state changes, Spot / rebalance warnings, AWS Health. */
export async function handleEventBridge(
  deps: ControllerDeps,
  event: unknown,
  ctx: InvocationContext,
): Promise<InvocationResult> {
  const parsed = parseEventBridgeEvent(event, {
    ...(ctx.account ? { account: ctx.account } : {}),
    ...(ctx.region ? { region: ctx.region } : {}),
  });
  if (parsed.kind === 'ignored') {
    deps.log.warn('event ignored', { reason: parsed.reason });
    return { trigger: 'eventbridge', ignored: parsed.reason, clusters: [], failed: [] };
  }
  if (parsed.kind === 'schedule') return reconcileAll(deps, ctx, await deps.store.listClusters(), 'schedule');

  const clusters = new Set<string>();
  const unknown: string[] = [];
  for (const { instanceId, fact } of parsed.facts) {
    const owner = await deps.store.findInstance(instanceId);
    if (!owner) {
      unknown.push(instanceId);
      continue;
    }
    await deps.store.putFact(owner.cluster, owner.node, fact, FACT_RETENTION_MS);
    clusters.add(owner.cluster);
  }
  if (clusters.size === 0) {
    const reason = `${parsed.summary}: instance ${unknown.join(', ')} belongs to no configured cluster`;
    deps.log.info('event ignored', { reason });
    return { trigger: 'eventbridge', ignored: reason, clusters: [], failed: [] };
  }
  deps.log.info('event', { summary: parsed.summary, clusters: [...clusters] });
  return reconcileAll(deps, ctx, [...clusters], parsed.summary);
}

/** DynamoDB stream: agent reports (changes, expired peers, leaving) and operator requests. */
export async function handleStream(
  deps: ControllerDeps,
  records: readonly unknown[],
  ctx: InvocationContext,
): Promise<InvocationResult> {
  const { clusters, ignored } = clustersFromStream(records);
  if (ignored > 0) deps.log.info('stream records ignored', { ignored });
  return reconcileAll(deps, ctx, clusters, `stream (${records.length} records)`);
}
