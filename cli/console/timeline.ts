/**
 * The console's failover timeline, read from the audit log (pure; no clock, no I/O). Reconcile
 * records, per group:
 *
 *   decision                        the plan (a takeover starts a change of owner; a plan that
 *                                   announces failover.completed or .failed ends it), the
 *                                   invocation's start, the owner and its last renewal
 *   action / action-failed          each resource action with its node, resource and duration
 *
 * A change of owner ends when the last action of its closing plan has finished (or, for a plan
 * without actions, at its decision).
 *
 * A change of owner becomes one FailoverView with its breakdown: detection (the old owner's last
 * renewal to the decision), or the request's wait; the decision (the invocation's start to the
 * decision); demote (the decision to the first activation: stopping the old owner, or waiting for
 * it to fence itself); each entry point; the application's start.
 */
import type { AuditEvent } from '../../shared/core/ports';
import type { FailoverPart, FailoverView } from './view';

interface DecisionData {
  actions?: { type: string; to?: string | null; why?: string; kind?: string }[];
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
  const open = new Map<
    string,
    { view: FailoverView; firstActivation?: number; closing?: 'completed' | 'failed'; lastAt: number }
  >();
  const all: FailoverView[] = [];

  const close = (group: string, outcome: FailoverView['outcome'], at: number) => {
    const current = open.get(group);
    if (!current) return;
    current.view.outcome = outcome;
    current.view.endedAt = at;
    current.view.totalMs = Math.max(0, at - current.view.startedAt);
    open.delete(group);
  };
  /** A closing plan ends at its last action (or its decision). */
  const settle = (group: string) => {
    const current = open.get(group);
    if (current?.closing) close(group, current.closing, current.lastAt);
  };

  for (const e of sorted) {
    if (!e.group) continue;
    const data = (e.data ?? {}) as DecisionData & ActionData;
    if (e.kind === 'decision') {
      settle(e.group);
      const takeover = data.actions?.find((a) => a.type === 'takeover');
      const announces = (kind: string) => data.actions?.some((a) => a.type === 'alert' && a.kind === kind);
      const current = open.get(e.group);
      if (current && (!takeover || takeover.to === null || takeover.to === undefined)) {
        // A plan of the change in progress: does it end it?
        if (
          e.epoch === current.view.epoch &&
          (announces('failover.completed') || announces('failover.failed'))
        ) {
          current.closing = announces('failover.failed') ? 'failed' : 'completed';
          current.lastAt = e.at;
        }
        if (takeover && takeover.to === null) close(e.group, 'superseded', e.at);
        continue;
      }
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
      open.set(e.group, { view, lastAt: e.at });
      // A start whose plan brings everything up at once also ends in it.
      if (announces('failover.completed') || announces('failover.failed'))
        open.get(e.group)!.closing = announces('failover.failed') ? 'failed' : 'completed';
      all.push(view);
      continue;
    }
    const current = open.get(e.group);
    if (!current || e.epoch !== current.view.epoch) continue;
    if ((e.kind === 'action' || e.kind === 'action-failed') && data.action && data.ms !== undefined) {
      current.lastAt = Math.max(current.lastAt, e.at);
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
    }
  }
  for (const group of [...open.keys()]) settle(group);
  return all.reverse().slice(0, limit);
}
