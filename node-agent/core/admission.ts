/**
 * The one admission rule for everything that starts on a node (the guard's start through SSM, the
 * agent's own start of a group without application, and the simulation's guard), in two halves:
 *
 * - the group record, read strongly consistent AFTER the start was recorded locally as "starting":
 *   it names this node owner, at the start's epoch, and lists it in mayRun;
 * - the local agent's lease, read from agent.json after that same record: the agent process of
 *   this boot runs (and is not frozen), serves (not fenced, not leaving), its fence deadline is
 *   ahead, and no idle watchdog feed it announced can keep the node alive past its lease end
 *   (shared/config/timing.ts `watchdogProblem`).
 *
 * Why the order matters (the idle-feed handshake with watchdog-feeder.ts):
 *
 *   agent:  announce idle bound in agent.json ──▶ read local records ──▶ feed if nothing runs
 *   guard:  record "starting" ──────────────────▶ read agent.json ────▶ admit if bound <= lease end
 *
 * Each side writes before it reads the other's file, so at least one sees the other: either the
 * agent sees "starting" and feeds only under the lease, or the guard sees the bound and refuses.
 * Pure: the caller reads the files and the process facts.
 */
import { watchdogProblem } from '../../shared/config/timing';
import type { GroupState } from '../../shared/core/model';

/** What agent.json says about the agent's lease (node-agent/local-state.ts LeaseRecord). */
export interface LeaseView {
  cluster: string;
  node: string;
  bootId?: string;
  pid: number;
  /**
   * CLOCK_MONOTONIC ms until which a start may be admitted: the fence deadline of the agent's own
   * last acknowledged renewal, never later than the real one; 0 while the running process has none
   * (a restart keeps fencing by its predecessor's deadline, `fenceUntilMono`, but admits nothing).
   */
  leaseUntilMono: number;
  /** CLOCK_MONOTONIC ms of the fence deadline, a predecessor's restored one included. */
  fenceUntilMono?: number;
  fenceMarginMs: number;
  fenced: boolean;
  leaving: boolean;
  /** The latest reset an idle watchdog feed may have pushed the node to (absent: no idle feed). */
  idleFeedResetBy?: number;
}

/** Facts about the agent process named in agent.json, read by the caller. */
export interface AgentProcessFacts {
  /** The same process (pid and start time) still exists. */
  alive: boolean;
  /** It is stopped (SIGSTOP, a debugger): it could not fence itself now. */
  frozen?: boolean;
}

/** Why the record does not admit a start of `epoch` on `node`, or undefined when it does. */
export function recordProblem(
  record: Pick<GroupState, 'owner' | 'epoch' | 'mayRun'> | undefined,
  node: string,
  epoch: number,
  where: { group: string; cluster: string; table: string },
): string | undefined {
  if (!record) return `group ${where.group} has no record in table ${where.table} (cluster ${where.cluster})`;
  if (record.owner !== node || record.epoch !== epoch) {
    return `the record names ${record.owner ?? 'no owner'} at epoch ${record.epoch}, not ${node} at epoch ${epoch} (stale epoch or not the owner)`;
  }
  // The controller records a node in mayRun before anything may start there: promoting another
  // node then needs proof that this one stopped.
  if (!record.mayRun.includes(node)) {
    return `the record does not list ${node} among the nodes that may run ${where.group} yet (mayRun: ${record.mayRun.join(', ') || 'none'})`;
  }
  return undefined;
}

/** Why the local agent's lease does not admit a start now, or undefined when it does. */
export function leaseProblem(
  lease: LeaseView | undefined,
  who: { cluster: string; node: string; stateDir: string },
  nowMono: number,
  boot: string | undefined,
  agent: AgentProcessFacts | undefined,
): string | undefined {
  if (!lease) {
    return `no failover-agent has run with state directory ${who.stateDir} (no agent.json); start it (systemctl start failover-agent) or pass the agent's --state-dir`;
  }
  if (lease.cluster !== who.cluster || lease.node !== who.node) {
    return `the local agent runs as ${lease.cluster}/${lease.node}, not ${who.cluster}/${who.node}`;
  }
  if (boot !== undefined && lease.bootId !== undefined && lease.bootId !== boot) {
    return 'the lease in agent.json is from a previous boot; the agent has not started since';
  }
  if (!agent?.alive) {
    return `the local agent (pid ${lease.pid}) is not running; start it (systemctl start failover-agent)`;
  }
  if (agent.frozen) {
    return `the local agent (pid ${lease.pid}) is stopped (SIGSTOP or a debugger) and could not fence itself`;
  }
  if (lease.leaving) return 'the local agent is shutting down (planned shutdown)';
  if (lease.fenced) return 'the local agent fenced itself after losing its lease and has not renewed it yet';
  if (lease.leaseUntilMono <= 0)
    return 'the local agent has no acknowledged renewal yet (is DynamoDB reachable?)';
  const left = lease.leaseUntilMono - nowMono;
  if (left <= 0) {
    return `the local agent's lease ran out ${Math.round(-left)} ms ago (no renewal acknowledged for lease - fenceMargin)`;
  }
  return watchdogProblem(lease);
}
