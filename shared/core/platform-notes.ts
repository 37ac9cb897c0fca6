/**
 * What a definition's Windows nodes cost, said by `failoverctl validate` and `doctor`: Windows has
 * no softdog, so nothing resets a Windows node whose agent died while its application runs. The
 * controller then counts such a node stopped only after the lease plus the longest its stop scripts
 * may take (shared/config/timing.ts `requiredSilenceMs`), unless the group uses
 * `fencing: stop-instance` (StopInstances, confirmed stopped). Pure.
 */

import type { ClusterConfig } from '../config/load';
import { requiredSilenceMs } from '../config/timing';
import { groupStopBudgetMs } from './node-side';

/** One note about one node, with the path of the node in the definition. */
export interface PlatformNote {
  path: string;
  node: string;
  message: string;
}

const s = (ms: number) => `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 2)} s`;

/** A note for every Windows node: its silence proof, what it costs after a silent crash, the fix. */
export function platformNotes(config: ClusterConfig): PlatformNote[] {
  const notes: PlatformNote[] = [];
  config.nodes.forEach((node, i) => {
    if (node.platform !== 'windows') return;
    const groups = config.groups.filter((g) => g.nodes.includes(node.name));
    const unfenced = groups.filter((g) => g.fencing !== 'stop-instance');
    const stopMs = groups.reduce((sum, g) => sum + groupStopBudgetMs(g), 0);
    const silence = requiredSilenceMs({ maxStopMs: stopMs }, config.timing.leaseMs, config.timing, stopMs);
    const head = `node ${node.name} runs Windows: no watchdog (Windows has no softdog), so its silence is proven with its stop scripts' time`;
    if (groups.length === 0) {
      notes.push({ path: `nodes[${i}]`, node: node.name, message: `${head}; it runs no group yet` });
      return;
    }
    if (unfenced.length === 0) {
      notes.push({
        path: `nodes[${i}]`,
        node: node.name,
        message: `${head}, but every group it may run uses fencing: stop-instance: a silent owner is stopped (StopInstances, confirmed stopped) before another node starts`,
      });
      return;
    }
    notes.push({
      path: `nodes[${i}]`,
      node: node.name,
      message: `${head}: after a silent crash, ${unfenced.map((g) => g.name).join(', ')} move${unfenced.length === 1 ? 's' : ''} away only after the lease (${s(config.timing.leaseMs)}) plus its stop scripts' time (${s(stopMs)}, the exec timeoutSec of its groups) = ${s(silence)} instead of ${s(config.timing.leaseMs)} with a watchdog; lower timeoutSec to the stop scripts' real time, or set fencing: stop-instance on ${unfenced.length === 1 ? 'that group' : 'those groups'} (a stop through EC2 instead of the wait)`,
    });
  });
  return notes;
}
