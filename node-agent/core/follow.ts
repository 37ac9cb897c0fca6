/**
 * Following the group records the controller writes: the highest epoch seen per group (reported in
 * every heartbeat, never lowered by an older, eventually consistent read) and the stale-owner rule.
 */
import type { GroupState } from '../../shared/core/model';
import type { LocalGroupView } from './claims';

/** Highest epoch seen per group, from the records and the guard. */
export class GroupFollower {
  private readonly seen = new Map<string, number>();

  observe(records: readonly Pick<GroupState, 'group' | 'epoch'>[]): boolean {
    let changed = false;
    for (const rec of records) {
      if (rec.epoch > (this.seen.get(rec.group) ?? -1)) {
        this.seen.set(rec.group, rec.epoch);
        changed = true;
      }
    }
    return changed;
  }

  /** Also counts epochs the guard read (strongly consistent) for this node. */
  note(group: string, epoch: number): void {
    if (epoch > (this.seen.get(group) ?? -1)) this.seen.set(group, epoch);
  }

  seenEpoch(group: string): number {
    return this.seen.get(group) ?? 0;
  }
}

/**
 * Stale owner: the group runs here at epoch E, and the record (at an epoch >= E, so not an older
 * read) names another owner or another epoch. The copy here must stop at once. A start or stop in
 * progress is left to its guard; `failed` counts as running (it may be half up).
 */
export function mustDemote(
  local: Pick<LocalGroupView, 'state' | 'epoch'> | undefined,
  record: Pick<GroupState, 'owner' | 'epoch'>,
  node: string,
): boolean {
  if (!local || (local.state !== 'running' && local.state !== 'failed')) return false;
  return record.epoch >= local.epoch && (record.owner !== node || record.epoch !== local.epoch);
}

/** A failed start of a group without application is tried again at most this often. */
export const ACTIVATION_RETRY_MS = 5000;

/**
 * Whether the agent should bring a group without application up here now (through the guard's
 * start, which checks the record and the lease again): the record names this node owner, in auto
 * mode, lists it in mayRun (the controller records it there before anything may start), and is
 * Starting or Online; the agent serves and holds its lease; nothing runs, starts or stops here for
 * the group, or a failed start at this epoch is due for another try.
 */
export function activationWanted(p: {
  node: string;
  record: Pick<GroupState, 'owner' | 'mode' | 'mayRun' | 'phase' | 'epoch'>;
  /** The group lists this node and has no application. */
  selfStarted: boolean;
  /** Not fenced, not leaving, lease held. */
  serving: boolean;
  /** A start or stop of the group by this agent is under way. */
  busy: boolean;
  /** The local record; 'unreadable' when it cannot be read (never start on top of it). */
  local: Pick<LocalGroupView, 'state' | 'epoch'> | undefined | 'unreadable';
  /** Since the last start this agent tried for the group (Infinity: never). */
  sinceLastTryMs: number;
}): boolean {
  const { record, node } = p;
  if (!p.selfStarted || !p.serving || p.busy || p.local === 'unreadable') return false;
  if (record.owner !== node || record.mode !== 'auto' || !record.mayRun.includes(node)) return false;
  if (record.phase !== 'Starting' && record.phase !== 'Online') return false;
  if (!p.local || p.local.state === 'stopped') return true;
  // Running, starting or stopping at this epoch: nothing to do; at another epoch: the stale copy is
  // stopped first (mustDemote). A failed start is tried again now and then.
  return (
    p.local.state === 'failed' && p.local.epoch === record.epoch && p.sinceLastTryMs >= ACTIVATION_RETRY_MS
  );
}
