/**
 * What the node's heartbeat claims about itself, from the agent's facts: its state, what runs here
 * per group, and what its silence guarantees (shared/core/liveness.ts). The agent and the
 * simulation build their reports with these functions, so the controller is tested against the
 * claims the shipped agent makes.
 */
import type { AgentGroupState, Heartbeat } from '../../shared/core/model';

/** running: normal; fenced: lost its lease and stops everything; leaving: planned shutdown. */
export function agentState(flags: { leaving: boolean; fenced: boolean }): Heartbeat['state'] {
  // Leaving from the first moment of a planned shutdown: the controller moves the groups while
  // their stop scripts run here (it promotes only once this node reports them stopped).
  return flags.leaving ? 'leaving' : flags.fenced ? 'fenced' : 'running';
}

/** A local group record as the report needs it. */
export interface LocalGroupView {
  group: string;
  state: AgentGroupState;
  epoch: number;
}

/**
 * Per group: the epoch seen (never lower than the local record's) and what runs here. Unreadable
 * local records (`undefined`) report `failed`, never `stopped`: the controller counts it as running.
 * A group no longer assigned here but still running is reported too.
 */
export function groupReports(
  myGroups: readonly string[],
  records: readonly LocalGroupView[] | undefined,
  seenEpoch: (group: string) => number,
): Heartbeat['groups'] {
  const out: Heartbeat['groups'] = {};
  const local = new Map((records ?? []).map((r) => [r.group, r]));
  for (const g of myGroups) {
    const rec = local.get(g);
    out[g] = {
      epoch: Math.max(seenEpoch(g), rec?.epoch ?? 0),
      state: records === undefined ? 'failed' : (rec?.state ?? 'stopped'),
    };
  }
  for (const rec of local.values()) {
    if (!out[rec.group] && rec.state !== 'stopped') {
      out[rec.group] = { epoch: Math.max(seenEpoch(rec.group), rec.epoch), state: rec.state };
    }
  }
  return out;
}

/**
 * What the controller may rely on once this node goes silent: with an armed watchdog the node is
 * stopped or reset by the end of its lease (the device's real timeout is reported, and the
 * controller relies on it only if it suits the lease); without one, the self-fence may take up to
 * the sum of the stop budgets of the groups it may run.
 */
export function fencePromise(
  stopBudgetsMs: readonly number[],
  watchdog: { armed: boolean; timeoutMs: number } | undefined,
): NonNullable<Heartbeat['fence']> {
  const maxStopMs = stopBudgetsMs.reduce((sum, ms) => sum + ms, 0);
  return { maxStopMs, ...(watchdog?.armed ? { watchdogMs: watchdog.timeoutMs } : {}) };
}
