/**
 * The node-side part of a group: what its owner holds on the instance itself, as opposed to what
 * the controller switches in AWS (the kinds table, shared/config/kinds.ts, says which is which).
 * Pure.
 *
 * - Floating addresses (`vip`) go on the owner's interface, or the kernel drops the traffic that
 *   the route table sends there.
 * - An application (`exec`) is started and stopped by the controller through SSM and the node's
 *   guard, which puts the group's addresses on before the start command.
 * - A group without an application (a floating IP, an Elastic IP or a record alone) is brought up
 *   on its owner by the agent itself, through the same guarded start (node-agent/guard.ts): no SSM.
 */

import { interfaceAddress, isApplication, stopBudgetMs } from '../config/kinds';
import type { ClusterConfig } from '../config/load';
import type { GroupConfig } from '../config/schema';

/** The addresses the group's owner puts on its own interface, in resource order. */
export function interfaceAddresses(group: Pick<GroupConfig, 'resources'>): string[] {
  return [...new Set(group.resources.flatMap((r) => interfaceAddress(r) ?? []))];
}

/** True when the group runs an application through SSM (an `exec` resource). */
export function hasApplication(group: Pick<GroupConfig, 'resources'>): boolean {
  return group.resources.some(isApplication);
}

/** The longest a stop of the group may take on a node: its resources' stop budgets, added up. */
export function groupStopBudgetMs(group: Pick<GroupConfig, 'resources'>): number {
  return group.resources.reduce((sum, r) => sum + stopBudgetMs(r), 0);
}

/**
 * Per node, the longest its self-fence may take: the stop budgets of every group it may run. One
 * pass over the definition (reconcile computes it once for all groups).
 */
export function nodeStopBudgets(config: Pick<ClusterConfig, 'groups'>): Map<string, number> {
  const out = new Map<string, number>();
  for (const g of config.groups) {
    const ms = groupStopBudgetMs(g);
    for (const n of new Set(g.nodes)) out.set(n, (out.get(n) ?? 0) + ms);
  }
  return out;
}
