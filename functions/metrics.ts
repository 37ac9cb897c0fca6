/**
 * Publishes the controller's metrics (controller/reconcile/metrics.ts) as CloudWatch Embedded
 * Metric Format lines with Powertools Metrics: one EMF document per dimension set, written to
 * stdout when the invocation ends. CloudWatch Logs turns them into metrics; no PutMetricData call,
 * no permission, no latency on the failover path.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { InstrumentableClient } from '../controller/reconcile/controller';
import type { ControllerDeps, InvocationResult } from '../controller/reconcile/entry';
import {
  ControllerMetrics,
  type Datum,
  isThrottle,
  METRICS_NAMESPACE,
} from '../controller/reconcile/metrics';
import type { Heartbeat } from '../shared/core/model';

const SERVICE = 'failover-controller';

/** The collector of the current invocation (Lambda runs one invocation at a time per process). */
export const collector = new ControllerMetrics();

/**
 * Watches the controller's dependencies from outside: the audit records, the transitions and the
 * heartbeats reconcile reads. Called once per process, on the dependencies it keeps.
 */
export function instrumentDeps(deps: ControllerDeps): ControllerDeps {
  const { store, clock, notifier } = deps;
  const publish = notifier.publish.bind(notifier);
  notifier.publish = async (event) => {
    collector.observeTransition(event);
    return publish(event);
  };
  const append = store.appendAudit.bind(store);
  store.appendAudit = async (event) => {
    collector.observeAudit(event);
    return append(event);
  };
  const read = store.getHeartbeats.bind(store);
  store.getHeartbeats = async (
    cluster: string,
    nodes: readonly string[],
  ): Promise<Record<string, Heartbeat>> => {
    const heartbeats = await read(cluster, nodes);
    collector.observeHeartbeats(cluster, heartbeats, clock.now());
    return heartbeats;
  };
  return deps;
}

/** Counts every throttled attempt of a client's calls (below the SDK's retries). */
export function countThrottles(client: InstrumentableClient): void {
  (client.middlewareStack.add as (mw: unknown, options: unknown) => void)(
    (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      try {
        return await next(args);
      } catch (e) {
        if (isThrottle((e as { name?: string; Code?: string }).name ?? (e as { Code?: string }).Code))
          collector.throttled();
        throw e;
      }
    },
    { step: 'deserialize', name: 'countThrottles' },
  );
}

/** Writes the invocation's data points (one EMF document per dimension set) and starts afresh. */
export function publishMetrics(result: InvocationResult | undefined, functionName?: string): Datum[] {
  if (result) collector.observeResult(result);
  // metrics: basic (serverless.yml) keeps only the deployment-wide metrics: no custom metric per
  // group or node to pay for.
  const basic = process.env.FAILOVER_METRICS === 'basic';
  const data = collector.drain().filter((d) => !basic || !('cluster' in d.dimensions));
  const sets = new Map<string, Datum[]>();
  for (const d of data) {
    const key = JSON.stringify(d.dimensions);
    sets.set(key, [...(sets.get(key) ?? []), d]);
  }
  for (const [key, points] of sets) {
    const metrics = new Metrics({
      namespace: METRICS_NAMESPACE,
      serviceName: SERVICE,
      defaultDimensions: JSON.parse(key) as Record<string, string>,
    });
    if (functionName) metrics.addMetadata('function', functionName);
    for (const p of points)
      metrics.addMetric(
        p.name,
        p.unit === 'Milliseconds' ? MetricUnit.Milliseconds : MetricUnit.Count,
        p.value,
      );
    metrics.publishStoredMetrics();
  }
  return data;
}
