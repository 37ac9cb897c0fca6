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
 *
 *    "Has fenced" must also mean "has finished fencing": the stop scripts take time after the fence
 *    starts, and a dead or frozen agent fences nothing. So the silence needed is the lease plus
 *    the node's own promise, from its last renewal (`fence`): nothing more when it runs an armed
 *    watchdog (fed only while the lease outlasts the watchdog timeout, so a node that still runs
 *    something is reset by the end of its lease); otherwise the longest its self-fence may take
 *    (`maxStopMs`). Without a watchdog a node whose agent died while its application runs is not
 *    covered: run the watchdog, or `fencing: stop-instance`, which never relies on silence.
 */

import type { Timing } from '../config/timing';
import type { GroupState, Heartbeat, InstanceView, NodeObservation } from './model';

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
  options: {
    /** false: only a node's own report, a stop or a stopped instance count (fencing: stop-instance). */
    trustSilence?: boolean;
    /** The node's longest self-fence when its heartbeat does not say (older agents). */
    fallbackStopMs?: number;
  } = {},
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

  if (options.trustSilence === false) return undefined;
  return silenceProof(node, nodes, state, now, timing, options.fallbackStopMs ?? 0);
}

/** The silence after which a node has certainly finished fencing (see the header). */
export function requiredSilenceMs(hb: Heartbeat, timing: Timing, fallbackStopMs: number): number {
  const lease = Math.max(hb.leaseMs, timing.leaseMs);
  if (hb.fence?.watchdogMs !== undefined) return lease;
  return lease + (hb.fence?.maxStopMs ?? fallbackStopMs);
}

/**
 * Proof, measured on monotonic clocks, that `node` has been silent long enough to have fenced
 * itself completely: a peer (or reconcile, through a Suspect record) saw its current renewal token
 * unchanged for the required silence. Undefined when there is none yet.
 */
export function silenceProof(
  node: string,
  nodes: Record<string, NodeObservation>,
  state: GroupState,
  now: number,
  timing: Timing,
  fallbackStopMs: number,
): string | undefined {
  const hb = nodes[node]?.heartbeat;
  if (!hb) return undefined;
  const needed = requiredSilenceMs(hb, timing, fallbackStopMs);
  const why =
    hb.fence?.watchdogMs !== undefined
      ? 'its watchdog guarantees it'
      : `lease + up to ${needed - Math.max(hb.leaseMs, timing.leaseMs)} ms of stop scripts`;
  for (const [peer, peerObs] of Object.entries(nodes)) {
    if (peer === node) continue;
    const seen = peerObs.heartbeat?.peers[node];
    if (seen && seen.token === hb.token && seen.silentForMs >= needed) {
      return `peer ${peer} saw ${node}'s renewal ${hb.token} unchanged for ${seen.silentForMs} ms (needed ${needed} ms: ${why}): it has fenced itself`;
    }
  }
  const suspect = state.suspects[node];
  if (suspect && suspect.token === hb.token && now - suspect.firstSeenAt >= needed + timing.maxClockSkewMs) {
    return `reconcile saw ${node}'s renewal ${hb.token} unchanged for ${now - suspect.firstSeenAt} ms (needed ${needed} ms: ${why}): it has fenced itself`;
  }
  return undefined;
}
