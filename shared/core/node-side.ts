/**
 * The node-side part of a group: what its owner holds on the instance itself, as opposed to what
 * the controller switches in AWS. Pure.
 *
 * - Floating addresses (`vip`) go on the owner's interface, or the kernel drops the traffic that
 *   the route table sends there.
 * - An application (`exec`) is started and stopped by the controller through SSM and the node's
 *   guard, which puts the group's addresses on before the start command.
 * - A group without an application (a floating IP, an Elastic IP or a record alone) is brought up
 *   on its owner by the agent itself, through the same guarded start (node-agent/guard.ts): no SSM.
 */
import type { GroupConfig } from '../config/schema';

/** The addresses the group's owner puts on its own interface, in resource order. */
export function interfaceAddresses(group: Pick<GroupConfig, 'resources'>): string[] {
  return [...new Set(group.resources.flatMap((r) => (r.type === 'vip' ? [r.ip] : [])))];
}

/** True when the group runs an application through SSM (an `exec` resource). */
export function hasApplication(group: Pick<GroupConfig, 'resources'>): boolean {
  return group.resources.some((r) => r.type === 'exec');
}
