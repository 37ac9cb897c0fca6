/**
 * The output of decide(): a short list of idempotent actions for one group, with the reasons behind
 * them. The executor applies them in order, each mutation behind a conditional epoch check, then
 * reads fresh state and decides again until the plan is empty.
 */
import type { GroupState } from './model';

/** Fields of the group record a plan may change (never the epoch, lock or kick directly). */
export type GroupPatch = Partial<Omit<GroupState, 'group' | 'epoch' | 'lock' | 'kick' | 'updatedAt'>>;

/**
 * A node's renewal as an observation read it: `token` of its heartbeat item, or null when it had
 * none. A write pinned to it fails (a lost race) if the node wrote its item since.
 */
export interface HeartbeatPin {
  node: string;
  token: string | null;
}

export type AlertKind =
  | 'failover.started'
  | 'failover.completed'
  | 'failover.failed'
  | 'group.stopped'
  | 'monitor.error'
  | 'monitor.warning'
  | 'monitor.recovered'
  | 'resource.restarted'
  | 'node.fenced'
  | 'request.done'
  | 'request.rejected'
  | 'config.applied';

export type Action =
  /** Conditional update of the group record (same epoch). */
  | { type: 'update'; set: GroupPatch; why: string }
  /**
   * Conditional change of owner: epoch := epoch + 1. Later actions of the plan carry the new epoch.
   * `pins`: the write commits only if each named node's heartbeat item still holds the renewal this
   * plan's observation read (decide.ts startOnThisRead: a stop proven on that read stays proven).
   */
  | { type: 'takeover'; to: string | null; set: GroupPatch; why: string; pins?: HeartbeatPin[] }
  /** Bring one resource up on a node (idempotent: read before write). */
  | {
      type: 'activate';
      node: string;
      resource: string;
      why: string;
      /**
       * The monitor whose restart budget this activation spent (the first activation of a restart
       * only): an attempt that AWS throttled or timed out gives it back (patchForFailedAction).
       */
      restartOf?: string;
    }
  /** Take one resource down on a node (idempotent; a failure is an error, never "not running"). */
  | { type: 'deactivate'; node: string; resource: string; why: string }
  /** Hard fence: StopInstances with force; completion is confirmed by a later observation. */
  | { type: 'fence-instance'; node: string; why: string }
  /** Mark a request processed (once). */
  | { type: 'complete-request'; id: string; outcome: 'done' | 'rejected'; message: string }
  /** Announce a transition (EventBridge + SNS); never blocks or fails the plan. */
  | { type: 'alert'; kind: AlertKind; message: string };

export interface Plan {
  group: string;
  /** Epoch the plan was made at; mutations before a takeover carry it, after it epoch + 1. */
  epoch: number;
  actions: Action[];
  /** One line per observation that shaped the decision (logged and audited). */
  reasons: string[];
  /** Decide again after this long even if nothing happens (a time-based condition is pending). */
  requeueAfterMs?: number;
}

/** Mutating actions are those that touch AWS; each runs behind a conditional epoch check. */
export function isMutation(
  action: Action,
): action is Extract<Action, { type: 'activate' | 'deactivate' | 'fence-instance' }> {
  return action.type === 'activate' || action.type === 'deactivate' || action.type === 'fence-instance';
}
