/**
 * Following the group records the controller writes: the highest epoch seen per group (reported in
 * every heartbeat, never lowered by an older, eventually consistent read) and the stale-owner rule.
 */
import type { GroupState } from '../shared/core/model';
import type { LocalGroupRecord } from './local-state';

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
  local: LocalGroupRecord | undefined,
  record: Pick<GroupState, 'owner' | 'epoch'>,
  node: string,
): boolean {
  if (!local || (local.state !== 'running' && local.state !== 'failed')) return false;
  return record.epoch >= local.epoch && (record.owner !== node || record.epoch !== local.epoch);
}
