/**
 * The console's failover timeline, read from the audit log (pure; no clock, no I/O). Reconcile
 * records, per group:
 *
 *   decision (with a takeover)      the plan, the invocation's start, the owner and its last renewal
 *   action / action-failed          each resource action with its node, resource and duration
 *   failover.completed / .failed    the transition
 *
 * A change of owner becomes one FailoverView with its breakdown: detection (the old owner's last
 * renewal to the decision), or the request's wait; the decision (the invocation's start to the
 * decision); demote (the decision to the first activation: stopping the old owner, or waiting for
 * it to fence itself); each entry point; the application's start.
 */
import type { AuditEvent } from '../../shared/core/ports';
import type { FailoverPart, FailoverView } from './view';

interface DecisionData {
  actions?: { type: string; to?: string | null; why?: string }[];
  invokedAt?: number;
  owner?: string | null;
  ownerLastRenewalAt?: number;
  request?: { kind: string; createdAt: number };
}

interface ActionData {
  action?: string;
  node?: string;
  ms?: number;
  resource?: string;
  resourceType?: string;
}

const ENTRY_POINT_TYPES = new Set(['vip', 'eip', 'dns']);

/** Changes of owner found in `events` (any order), newest first, at most `limit`. */
export function failoverTimeline(events: readonly AuditEvent[], limit = 20): FailoverView[] {
  const sorted = [...events].sort((a, b) => a.at - b.at);
  const open = new Map<string, { view: FailoverView; firstActivation?: number; demoteMs: number }>();
  const all: FailoverView[] = [];

  const close = (group: string, outcome: FailoverView['outcome'], at: number) => {
    const current = open.get(group);
    if (!current) return;
    current.view.outcome = outcome;
    current.view.endedAt = at;
    current.view.totalMs = Math.max(0, at - current.view.startedAt);
    open.delete(group);
  };

  for (const e of sorted) {
    if (!e.group) continue;
    const data = (e.data ?? {}) as DecisionData & ActionData;
    if (e.kind === 'decision') {
      const takeover = data.actions?.find((a) => a.type === 'takeover');
      if (!takeover || takeover.to === null || takeover.to === undefined) continue;
      close(e.group, 'superseded', e.at);
      const from = data.owner ?? null;
      const parts: FailoverPart[] = [];
      if (data.request) {
        parts.push({
          label: `${data.request.kind} request waited`,
          ms: Math.max(0, e.at - data.request.createdAt),
        });
      } else if (from !== null && data.ownerLastRenewalAt !== undefined) {
        parts.push({
          label: `detection (${from}'s last renewal)`,
          ms: Math.max(0, e.at - data.ownerLastRenewalAt),
        });
      }
      if (data.invokedAt !== undefined)
        parts.push({ label: 'decision', ms: Math.max(0, e.at - data.invokedAt) });
      const view: FailoverView = {
        group: e.group,
        epoch: (e.epoch ?? 0) + 1,
        kind: from === null ? 'start' : data.request?.kind === 'move' ? 'move' : 'failover',
        from,
        to: takeover.to,
        reason: takeover.why ?? e.message,
        startedAt: e.at,
        endedAt: null,
        outcome: 'in progress',
        totalMs: null,
        parts,
      };
      open.set(e.group, { view, demoteMs: 0 });
      all.push(view);
      continue;
    }
    const current = open.get(e.group);
    if (!current || e.epoch !== current.view.epoch) continue;
    if ((e.kind === 'action' || e.kind === 'action-failed') && data.action && data.ms !== undefined) {
      const began = e.at - data.ms;
      if (data.action === 'activate') {
        if (current.firstActivation === undefined) {
          current.firstActivation = began;
          current.view.parts.push({
            label: current.view.from ? `demote ${current.view.from}` : 'prepare',
            ms: Math.max(0, began - current.view.startedAt),
          });
        }
        const type = data.resourceType ?? '';
        const label = ENTRY_POINT_TYPES.has(type)
          ? `${type} ${data.resource}`
          : type === 'exec'
            ? `application start (${data.resource})`
            : `${data.resource ?? 'resource'}`;
        current.view.parts.push({
          label: e.kind === 'action-failed' ? `${label} FAILED` : label,
          ms: data.ms,
        });
      }
      continue;
    }
    if (e.kind === 'failover.completed') close(e.group, 'completed', e.at);
    else if (e.kind === 'failover.failed') close(e.group, 'failed', e.at);
  }
  return all.reverse().slice(0, limit);
}
