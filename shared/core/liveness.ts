/**
 * Liveness of nodes and the evidence that a node has stopped serving. Pure.
 *
 * Two different questions, on purpose:
 *
 * 1. "Is the node alive?" (`isLive`) compares the agent's wall clock (`sentAt`) with the controller's.
 *    It is fast and decides *who may be chosen*. If clocks disagree, the worst outcome is a wrong
 *    choice that the guard and the demotion rule below still make safe.
 *
 * 2. "Has the node certainly stopped?" (`stopEvidence`) decides *when a new owner may start*. It never
 *    trusts a wall clock of the agent. The agent fences itself `lease - fenceMargin` after the send
 *    time of its last acknowledged renewal, measured on its monotonic clock. So if the current
 *    renewal token T was first *read* at time F by anyone, and at least `lease` has passed since F on
 *    that reader's monotonic clock while the token is still T, the agent has fenced:
 *
 *      send(last acked) <= send(T) <= write(T) <= F
 *      fence deadline   <= send(T) + lease - margin  <  F + lease  <=  now
 *
 *    Readers are peer agents (their `peers` report) or reconcile itself (a `Suspect` record, where
 *    only controller clocks are compared, bounded by maxClockSkew).
 */

import type { GroupState, Heartbeat, InstanceView, NodeObservation } from './model';
import type { Timing } from './timing';

/** Milliseconds since the node's last renewal, by the controller's clock; Infinity without one. */
export function leaseAgeMs(heartbeat: Heartbeat | undefined, now: number): number {
  return heartbeat ? now - heartbeat.sentAt : Number.POSITIVE_INFINITY;
}

/** The node's lease is live and its agent is serving normally (not fenced, not leaving). */
export function isLive(heartbeat: Heartbeat | undefined, now: number, timing: Timing): boolean {
  if (heartbeat?.state !== 'running') return false;
  const lease = Math.max(heartbeat.leaseMs, timing.leaseMs);
  return leaseAgeMs(heartbeat, now) <= lease + timing.maxClockSkewMs;
}

export const INSTANCE_DOWN_STATES: ReadonlySet<string> = new Set(['stopped', 'terminated']);
export const INSTANCE_GOING_DOWN_STATES: ReadonlySet<string> = new Set([
  'stopping',
  'stopped',
  'shutting-down',
  'terminated',
]);

export function instanceDown(instance: InstanceView | undefined): boolean {
  return instance !== undefined && INSTANCE_DOWN_STATES.has(instance.state);
}

/**
 * Why we can be sure `node` no longer runs `group` (so it may leave `mayRun`), or undefined when
 * we cannot be sure yet.
 */
export function stopEvidence(
  node: string,
  group: string,
  state: GroupState,
  nodes: Record<string, NodeObservation>,
  now: number,
  timing: Timing,
): string | undefined {
  const obs = nodes[node];
  if (instanceDown(obs?.instance)) return `instance ${obs?.config.instanceId} is ${obs?.instance?.state}`;
  const hb = obs?.heartbeat;
  // Without any renewal on record we cannot know what it did; wait for a stop or the instance.
  if (!hb) return undefined;

  const report = hb.groups[group];
  if (report && report.state === 'stopped' && report.epoch >= state.epoch) {
    return `agent of ${node} reports ${group} stopped at epoch ${report.epoch}`;
  }
  if (hb.state === 'leaving' && Object.values(hb.groups).every((g) => g.state === 'stopped')) {
    return `agent of ${node} stopped everything and left (planned shutdown)`;
  }

  const lease = Math.max(hb.leaseMs, timing.leaseMs);
  for (const [peer, peerObs] of Object.entries(nodes)) {
    if (peer === node) continue;
    const seen = peerObs.heartbeat?.peers[node];
    if (seen && seen.token === hb.token && seen.silentForMs >= lease) {
      return `peer ${peer} saw ${node}'s renewal ${hb.token} unchanged for ${seen.silentForMs} ms (lease ${lease} ms): it has fenced itself`;
    }
  }
  const suspect = state.suspects[node];
  if (suspect && suspect.token === hb.token && now - suspect.firstSeenAt >= lease + timing.maxClockSkewMs) {
    return `reconcile saw ${node}'s renewal ${hb.token} unchanged for ${now - suspect.firstSeenAt} ms (lease ${lease} ms): it has fenced itself`;
  }
  return undefined;
}
