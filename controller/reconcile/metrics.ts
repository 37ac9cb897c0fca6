/**
 * The controller's CloudWatch metrics, collected during one invocation from what reconcile already
 * does (the audit records it appends, the transitions it announces, the heartbeats it reads, its
 * outcome) and the SDK's throttled attempts; published as EMF by the Lambda runtime (functions/metrics.ts). Nothing in
 * reconcile knows it is measured. Pure collection: no I/O, time is a parameter.
 *
 * Namespace `FailoverController`. Dimensions are kept low-cardinality: a cluster and a group, or a
 * cluster and a node (both bounded by the definitions), an entry point type (vip, eip, dns), a
 * reconcile outcome (6 values), or none (Powertools adds `service` to every set).
 */
import { THROTTLING } from '../../shared/aws/errors';
import type { Heartbeat } from '../../shared/core/model';
import type { AuditEvent, TransitionEvent } from '../../shared/core/ports';
import { failuresOf, type InvocationResult } from './entry';

export const METRICS_NAMESPACE = 'FailoverController';

export type MetricUnit = 'Count' | 'Milliseconds';

export interface Datum {
  name: string;
  unit: MetricUnit;
  value: number;
  dimensions: Record<string, string>;
}

/** Every metric, its unit, dimensions and meaning: the README's list is this table. */
export const METRICS: Record<string, { unit: MetricUnit; dimensions: string; description: string }> = {
  GroupOnline: {
    unit: 'Count',
    dimensions: 'cluster, group',
    description: '1 when the group is Online after the reconcile, else 0',
  },
  GroupsNotOnline: {
    unit: 'Count',
    dimensions: '(none)',
    description: 'groups of the invocation that are not Online (the not-online alarm)',
  },
  Failovers: {
    unit: 'Count',
    dimensions: 'cluster, group',
    description: 'changes of owner away from a node (failovers and moves)',
  },
  FailoverFailures: {
    unit: 'Count',
    dimensions: 'cluster, group',
    description: 'failover.failed: no eligible node',
  },
  FailoverDuration: {
    unit: 'Milliseconds',
    dimensions: 'cluster, group',
    description: 'from the takeover decision to Online',
  },
  FailoverDetectionTime: {
    unit: 'Milliseconds',
    dimensions: 'cluster, group',
    description: "from the old owner's last renewal to the takeover decision",
  },
  FailoverDecisionTime: {
    unit: 'Milliseconds',
    dimensions: 'cluster, group',
    description: 'from the invocation start to the takeover decision',
  },
  DemoteTime: {
    unit: 'Milliseconds',
    dimensions: 'cluster, group',
    description: 'a stop of the application through SSM and the guard',
  },
  EntryPointSwitchTime: {
    unit: 'Milliseconds',
    dimensions: 'cluster, group, type',
    description: 'one entry point activated (vip, eip, dns)',
  },
  ApplicationStartTime: {
    unit: 'Milliseconds',
    dimensions: 'cluster, group',
    description: 'the application started through SSM and the guard',
  },
  RecoveryActions: {
    unit: 'Count',
    dimensions: 'cluster, group',
    description: 'resources restarted by a monitor or a drifted entry point',
  },
  MonitorErrors: { unit: 'Count', dimensions: 'cluster, group', description: 'monitor.error transitions' },
  LeaseAge: {
    unit: 'Milliseconds',
    dimensions: 'cluster, node',
    description: "age of the node's last renewal, as reconcile read it",
  },
  NodeIsolated: {
    unit: 'Count',
    dimensions: 'cluster, node',
    description: '1 when every witness of the node fails',
  },
  ReconcileOutcome: {
    unit: 'Count',
    dimensions: 'outcome',
    description: 'groups per outcome: converged, waiting, busy, error, deadline, unconverged',
  },
  ReconcileErrors: {
    unit: 'Count',
    dimensions: '(none)',
    description: 'groups and clusters whose reconcile failed (the reconcile-failures alarm)',
  },
  Throttles: {
    unit: 'Count',
    dimensions: '(none)',
    description: 'AWS calls throttled (each attempt, before the SDK retries)',
  },
};

const ENTRY_POINTS = new Set(['vip', 'eip', 'dns']);

/** Collects one invocation's data points. */
export class ControllerMetrics {
  private data: Datum[] = [];
  /** Last lease age per node of the invocation (a gauge: one value per invocation). */
  private leases = new Map<string, { cluster: string; node: string; ageMs: number; isolated: boolean }>();

  private add(name: keyof typeof METRICS, value: number, dimensions: Record<string, string> = {}): void {
    this.data.push({ name, unit: METRICS[name]!.unit, value, dimensions });
  }

  /** What reconcile writes to the audit log: decisions and resource actions. */
  observeAudit(e: AuditEvent): void {
    if (!e.group) return;
    const dims = { cluster: e.cluster, group: e.group };
    const data = (e.data ?? {}) as Record<string, unknown>;
    switch (e.kind) {
      case 'decision': {
        const actions = (data.actions ?? []) as { type: string; to?: string | null }[];
        const takeover = actions.find((a) => a.type === 'takeover');
        if (!takeover?.to || !data.owner) return;
        if (typeof data.ownerLastRenewalAt === 'number' && !data.request)
          this.add('FailoverDetectionTime', Math.max(0, e.at - data.ownerLastRenewalAt), dims);
        if (typeof data.invokedAt === 'number')
          this.add('FailoverDecisionTime', Math.max(0, e.at - data.invokedAt), dims);
        return;
      }
      case 'action': {
        const ms = typeof data.ms === 'number' ? data.ms : undefined;
        if (ms === undefined) return;
        const type = String(data.resourceType ?? '');
        if (data.action === 'activate' && ENTRY_POINTS.has(type))
          this.add('EntryPointSwitchTime', ms, { ...dims, type });
        else if (data.action === 'activate' && type === 'exec') this.add('ApplicationStartTime', ms, dims);
        else if (data.action === 'deactivate' && type === 'exec') this.add('DemoteTime', ms, dims);
        return;
      }
    }
  }

  /** A transition reconcile announces (the notifier's events). */
  observeTransition(e: TransitionEvent): void {
    if (!e.group) return;
    const dims = { cluster: e.cluster, group: e.group };
    switch (e.kind) {
      case 'failover.started':
        if (e.previousOwner) this.add('Failovers', 1, dims);
        return;
      case 'failover.completed':
        if (e.startedAt !== undefined) this.add('FailoverDuration', Math.max(0, e.at - e.startedAt), dims);
        return;
      case 'failover.failed':
        this.add('FailoverFailures', 1, dims);
        return;
      case 'resource.restarted':
        this.add('RecoveryActions', 1, dims);
        return;
      case 'monitor.error':
        this.add('MonitorErrors', 1, dims);
        return;
    }
  }

  /** The heartbeats reconcile read, at the controller clock `now`. */
  observeHeartbeats(cluster: string, heartbeats: Record<string, Heartbeat>, now: number): void {
    for (const [node, hb] of Object.entries(heartbeats))
      this.leases.set(`${cluster}\u0000${node}`, {
        cluster,
        node,
        ageMs: Math.max(0, now - hb.sentAt),
        isolated: hb.isolated,
      });
  }

  /** One throttled attempt of an AWS call. */
  throttled(): void {
    this.add('Throttles', 1);
  }

  /** The invocation's outcome: each group's phase and status, failed clusters. */
  observeResult(result: InvocationResult): void {
    let notOnline = 0;
    // Clusters that threw, and groups that ended in an error, at their deadline or unconverged.
    const errors = (result.failures ?? failuresOf(result)).length;
    for (const c of result.clusters) {
      for (const g of c.groups) {
        this.add('ReconcileOutcome', 1, { outcome: g.status });
        if (g.phase !== undefined) {
          const online = g.phase === 'Online' ? 1 : 0;
          this.add('GroupOnline', online, { cluster: c.cluster, group: g.group });
          // A group an operator stopped is not a problem to page about.
          if (!online && g.desired !== 'offline') notOnline++;
        }
      }
    }
    if (result.clusters.length > 0 || result.failed.length > 0) {
      this.add('GroupsNotOnline', notOnline);
      this.add('ReconcileErrors', errors);
    }
  }

  /** Everything collected since the last drain (lease gauges once per node), and starts afresh. */
  drain(): Datum[] {
    const out = this.data;
    for (const l of this.leases.values()) {
      const dims = { cluster: l.cluster, node: l.node };
      out.push({ name: 'LeaseAge', unit: 'Milliseconds', value: l.ageMs, dimensions: dims });
      out.push({ name: 'NodeIsolated', unit: 'Count', value: l.isolated ? 1 : 0, dimensions: dims });
    }
    this.data = [];
    this.leases = new Map();
    return out;
  }
}

/** True for an AWS error code that means throttling (the same set as shared/aws/errors.ts). */
export function isThrottle(code: string | undefined): boolean {
  return code !== undefined && THROTTLING.has(code);
}
