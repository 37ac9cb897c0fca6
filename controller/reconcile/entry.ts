/**
 * What the Lambda handlers (and `failoverctl reconcile --once`) call: validate the trigger, record
 * its facts, then reconcile the clusters it points at. Trigger-specific code ends here; from
 * reconcileCluster() on, every trigger takes the same path.
 *
 * Failures are reported, never swallowed:
 * - a group whose reconcile ends in a retryable error (throttling, a timeout, a lost race) is
 *   reconciled again inside the invocation, after a backoff with jitter, while its deadline allows;
 * - what is still failed at the end is in `failures`: the audit log gets a `reconcile.failed`
 *   record, the ReconcileErrors metric counts it (the reconcile-failures alarm), and the handler
 *   reports it the way its trigger expects: the stream handler as batch item failures (the mapping
 *   retries from that record at once), the EventBridge handlers by failing the invocation (Lambda
 *   retries it and counts it in `Errors`).
 */
import { FailoverError } from '../../shared/base/errors';
import type { Log } from '../../shared/core/ports';
import type { DynamoStore } from '../state/dynamo-store';
import { errorMessage } from './observe';
import { type ClusterOutcome, type GroupOutcome, type ReconcileDeps, reconcileCluster } from './reconcile';
import { type EventRefusal, FACT_RETENTION_MS, parseEventBridgeEvent, parseStreamBatch } from './triggers';

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
  /** Jitter of the retry backoff (a parameter for tests); default Math.random. */
  random?: () => number;
}

/** A cluster or group whose reconcile failed, as the audit log, the metrics and the trigger see it. */
export interface ReconcileFailure {
  cluster: string;
  group?: string;
  code: string;
  message: string;
  retryable: boolean;
}

export interface InvocationResult {
  trigger: string;
  clusters: ClusterOutcome[];
  /** Why nothing was done: the event was refused (typed) or concerns no configured cluster. */
  refused?: EventRefusal;
  ignored?: string;
  /** Clusters whose reconcile threw (their groups are not in `clusters`). */
  failed: { cluster: string; error: string; code?: string }[];
  /** Every cluster and group still failed at the end of the invocation. */
  failures?: ReconcileFailure[];
  /** Reconciles run again inside the invocation after a retryable failure. */
  retries?: number;
  /** Stream invocations: the first record of each failed cluster (ReportBatchItemFailures). */
  batchItemFailures?: { itemIdentifier: string }[];
}

/** The error an EventBridge-triggered invocation ends with when a reconcile failed. */
export class ReconcileFailedError extends FailoverError {
  readonly failures: readonly ReconcileFailure[];
  constructor(failures: readonly ReconcileFailure[]) {
    const list = failures
      .slice(0, 5)
      .map((f) => `${f.cluster}${f.group ? `/${f.group}` : ''}: ${f.code}`)
      .join(', ');
    super(
      'RECONCILE_FAILED',
      `reconcile failed for ${failures.length} cluster(s)/group(s) (${list}${failures.length > 5 ? ', ...' : ''}); see "failoverctl events" and this invocation's log`,
      { retryable: failures.some((f) => f.retryable) },
    );
    this.failures = failures;
  }
}

/** Group outcomes that are failures: the group's reconcile did not finish its work. */
const FAILED: ReadonlySet<GroupOutcome['status']> = new Set(['error', 'deadline', 'unconverged']);

/** Every failure of an invocation: clusters that threw and groups that ended failed. */
export function failuresOf(result: Pick<InvocationResult, 'clusters' | 'failed'>): ReconcileFailure[] {
  const out: ReconcileFailure[] = result.failed.map((f) => ({
    cluster: f.cluster,
    code: f.code ?? 'INTERNAL',
    message: f.error,
    retryable: true,
  }));
  for (const c of result.clusters) {
    for (const g of c.groups) {
      if (!FAILED.has(g.status)) continue;
      out.push({
        cluster: c.cluster,
        group: g.group,
        code: g.error?.code ?? (g.status === 'deadline' ? 'DEADLINE_EXCEEDED' : 'UNCONVERGED'),
        message: g.error?.message ?? `reconcile ended ${g.status}`,
        retryable: g.error?.retryable ?? true,
      });
    }
  }
  return out;
}

/** First retry after about RETRY_BASE_MS, doubling up to RETRY_CAP_MS, half of it random (jitter). */
export const RETRY_BASE_MS = 150;
export const RETRY_CAP_MS = 3_000;
/** No retry is started with less than this left before the deadline (it could not finish). */
const RETRY_MIN_WINDOW_MS = 2_000;

/** The wait before retry `attempt` (0-based): half of the exponential step plus a random half of it. */
export function retryDelayMs(attempt: number, random: () => number): number {
  const step = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt);
  return Math.round(step / 2 + random() * (step / 2));
}

/**
 * One cluster, reconciled again (only its failed groups) after each retryable failure, with backoff
 * and jitter, while the deadline leaves room.
 */
async function reconcileWithRetries(
  deps: ControllerDeps,
  ctx: InvocationContext,
  cluster: string,
): Promise<{ outcome?: ClusterOutcome; error?: unknown; retries: number }> {
  const random = deps.random ?? Math.random;
  let outcome: ClusterOutcome | undefined;
  let only: string[] | undefined;
  for (let attempt = 0; ; attempt++) {
    let error: unknown;
    try {
      const o = await reconcileCluster({ ...deps, holder: ctx.holder }, cluster, {
        deadline: ctx.deadline,
        ...(only ? { groups: only } : {}),
      });
      if (!outcome) outcome = o;
      else {
        const fresh = new Map(o.groups.map((g) => [g.group, g]));
        outcome = { ...o, groups: outcome.groups.map((g) => fresh.get(g.group) ?? g) };
      }
    } catch (e) {
      error = e;
    }
    const retryable = error
      ? error instanceof FailoverError && error.retryable
        ? undefined
        : []
      : (outcome?.groups ?? []).filter((g) => g.status === 'error' && g.error?.retryable).map((g) => g.group);
    const delay = retryDelayMs(attempt, random);
    const roomy = deps.clock.now() + delay + RETRY_MIN_WINDOW_MS < ctx.deadline;
    if ((retryable && retryable.length === 0) || !roomy) {
      if (error) return { ...(outcome ? { outcome } : {}), error, retries: attempt };
      return { ...(outcome ? { outcome } : {}), retries: attempt };
    }
    deps.log.warn('retrying after a retryable failure', {
      cluster,
      groups: retryable ?? 'all',
      attempt: attempt + 1,
      delayMs: delay,
      ...(error ? { error: errorMessage(error) } : {}),
    });
    await deps.clock.sleep(delay);
    // A cluster that failed as a whole is reconciled whole again; otherwise only the failed groups.
    only = retryable ?? only;
  }
}

async function reconcileAll(
  deps: ControllerDeps,
  ctx: InvocationContext,
  clusters: readonly string[],
  trigger: string,
): Promise<InvocationResult> {
  const result: InvocationResult = { trigger, clusters: [], failed: [], retries: 0 };
  // Clusters are independent: one broken definition must not hold the others back.
  const outcomes = await Promise.all(clusters.map((c) => reconcileWithRetries(deps, ctx, c)));
  outcomes.forEach((o, i) => {
    const cluster = clusters[i]!;
    result.retries = (result.retries ?? 0) + o.retries;
    if (o.error !== undefined) {
      result.failed.push({
        cluster,
        error: errorMessage(o.error),
        code: o.error instanceof FailoverError ? o.error.code : 'INTERNAL',
      });
    } else if (o.outcome) result.clusters.push(o.outcome);
  });
  // A cluster that no longer exists is not a failure to retry (an agent of a removed cluster).
  result.failed = result.failed.filter((f) => {
    if (f.code !== 'CLUSTER_NOT_FOUND') return true;
    deps.log.warn('reconcile of an unknown cluster skipped', { cluster: f.cluster, error: f.error });
    return false;
  });
  result.failures = failuresOf(result);
  logResult(deps.log, result);
  await auditFailures(deps, ctx, result);
  return result;
}

function logResult(log: Log, result: InvocationResult): void {
  const groups = result.clusters.flatMap((c) => c.groups.map((g) => ({ cluster: c.cluster, ...g })));
  log.info('reconcile finished', {
    trigger: result.trigger,
    groups,
    failed: result.failed,
    retries: result.retries,
  });
  // `message` is the log line's own key (Powertools drops an attribute of that name): the failure's
  // text goes under `error`.
  for (const { message, ...f } of result.failures ?? [])
    log.error('reconcile failed', { trigger: result.trigger, ...f, error: message });
}

/** One `reconcile.failed` audit record per failure (skipped once the deadline has passed). */
async function auditFailures(
  deps: ControllerDeps,
  ctx: InvocationContext,
  result: InvocationResult,
): Promise<void> {
  const failures = result.failures ?? [];
  if (failures.length === 0) return;
  if (deps.clock.now() >= ctx.deadline) {
    deps.log.warn('no time left to audit the failures', { count: failures.length });
    return;
  }
  await Promise.all(
    failures.map((f) =>
      deps.store
        .appendAudit({
          at: deps.clock.now(),
          cluster: f.cluster,
          ...(f.group ? { group: f.group } : {}),
          kind: 'reconcile.failed',
          message: `${f.code}: ${f.message}`,
          data: { trigger: result.trigger, code: f.code, retryable: f.retryable },
        })
        .catch((e) => deps.log.warn('could not write audit event', { error: errorMessage(e) })),
    ),
  );
}

/** The one log line of a refused event or batch. */
function refused(deps: ControllerDeps, trigger: string, refusal: EventRefusal): InvocationResult {
  deps.log.warn('event refused', { trigger, code: refusal.code, reason: refusal.reason });
  return { trigger, refused: refusal, clusters: [], failed: [], failures: [] };
}

/** EventBridge: the 1-minute schedule, EC2 state changes, Spot / rebalance warnings, AWS Health. */
export async function handleEventBridge(
  deps: ControllerDeps,
  event: unknown,
  ctx: InvocationContext,
): Promise<InvocationResult> {
  const parsed = parseEventBridgeEvent(
    event,
    {
      ...(ctx.account ? { account: ctx.account } : {}),
      ...(ctx.region ? { region: ctx.region } : {}),
    },
    deps.clock.now(),
  );
  if (parsed.kind === 'refused') return refused(deps, 'eventbridge', parsed);
  if (parsed.kind === 'schedule') return reconcileAll(deps, ctx, await deps.store.listClusters(), 'schedule');

  const clusters = new Set<string>();
  const unknown: string[] = [];
  for (const { instanceId, instanceArn, fact } of parsed.facts) {
    const owner = await deps.store.findInstance(instanceArn);
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
    return { trigger: 'eventbridge', ignored: reason, clusters: [], failed: [], failures: [] };
  }
  deps.log.info('event', { summary: parsed.summary, clusters: [...clusters] });
  return reconcileAll(deps, ctx, [...clusters], parsed.summary);
}

/**
 * DynamoDB stream: agent reports (changes, expired peers, leaving) and operator requests. Each
 * cluster that still fails is reported by the first record that pointed at it: the mapping retries
 * from there (records after it are seen again: reconcile is idempotent, requests are processed once).
 */
export async function handleStream(
  deps: ControllerDeps,
  event: unknown,
  ctx: InvocationContext,
): Promise<InvocationResult> {
  const parsed = parseStreamBatch(event);
  if (parsed.kind === 'refused') return { ...refused(deps, 'stream', parsed), batchItemFailures: [] };
  const trigger = `stream (${parsed.pointers.length + parsed.refused.length + parsed.ignored} records)`;
  if (parsed.refused.length > 0) {
    deps.log.warn('stream records refused', {
      code: 'INVALID_EVENT',
      count: parsed.refused.length,
      records: parsed.refused.slice(0, 10),
    });
  }
  if (parsed.pointers.length === 0) {
    return {
      trigger,
      ...(parsed.refused.length > 0
        ? { refused: { code: 'INVALID_EVENT' as const, reason: `${parsed.refused.length} records refused` } }
        : { ignored: `${parsed.ignored} records point at no cluster` }),
      clusters: [],
      failed: [],
      failures: [],
      batchItemFailures: [],
    };
  }
  const first = new Map<string, string>();
  for (const p of parsed.pointers) if (!first.has(p.cluster)) first.set(p.cluster, p.sequenceNumber);
  const result = await reconcileAll(deps, ctx, [...first.keys()], trigger);
  const failedClusters = new Set((result.failures ?? []).map((f) => f.cluster));
  result.batchItemFailures = [...failedClusters].map((c) => ({ itemIdentifier: first.get(c)! }));
  return result;
}
