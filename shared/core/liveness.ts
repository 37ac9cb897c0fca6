/**
 * Liveness of nodes and the evidence that a node has stopped serving. Pure.
 *
 * Two different questions, on purpose:
 *
 * 1. "Is the node alive?" (`isLive`) compares the agent's wall clock (`sentAt`) with the controller's.
 *    It is fast and decides *who may be chosen*. If clocks disagree, the worst outcome is a wrong
 *    choice that the guard and the demotion rule below still make safe.
 *
 * 2. "Has the node certainly stopped?" (`stopEvidence`) decides *when a new owner may start*. The
 *    agent fences itself `lease - fenceMargin` after the send time of its last acknowledged
 *    renewal, measured on its monotonic clock. So if the current renewal token T was first *read*
 *    at time F by anyone, and at least `lease` has passed since F on that reader's monotonic clock
 *    while the token is still T, the agent has fenced:
 *
 *      send(last acked) <= send(T) <= write(T) <= F
 *      fence deadline   <= send(T) + lease - margin  <  F + lease  <=  now
 *
 *    Readers are reconcile itself (a `Suspect` record: only controller clocks are compared, bounded
 *    by maxClockSkew) or peer agents (their `peers` report). A peer's report is one node's word
 *    about another, so it counts only together with the silent node's own send time of T, old
 *    enough by the controller's clock (`silenceProof`): no single node can demote another.

 *    "Has fenced" must also mean "has finished fencing": the stop scripts take time after the fence
 *    starts, and a dead or frozen agent fences nothing. So the silence needed is the lease plus
 *    the node's own promise, from its last renewal (`fence`): nothing more when it runs an armed
 *    watchdog (fed only while the lease outlasts the watchdog timeout, so a node that still runs
 *    something is reset by the end of its lease); otherwise the longest its self-fence may take
 *    (`maxStopMs`). Without a watchdog a node whose agent died while its application runs is not
 *    covered: run the watchdog, or `fencing: stop-instance`, which never relies on silence.
 */

import {
  controllerSawSilence,
  effectiveLeaseMs,
  liveWindowMs,
  reliesOnWatchdog,
  sentBefore,
  sentLongAgo,
  sentLongAgoInMs,
  requiredSilenceMs as silenceNeededMs,
  type Timing,
} from '../config/timing';
import type { GroupState, Heartbeat, InstanceView, NodeObservation } from './model';

/** Milliseconds since the node's last renewal, by the controller's clock; Infinity without one. */
export function leaseAgeMs(heartbeat: Heartbeat | undefined, now: number): number {
  return heartbeat ? now - heartbeat.sentAt : Number.POSITIVE_INFINITY;
}

/** The node's renewal is recent by the controller's clock (its lease plus the clock skew). */
export function recentlyRenewed(heartbeat: Heartbeat | undefined, now: number, timing: Timing): boolean {
  return heartbeat !== undefined && leaseAgeMs(heartbeat, now) <= liveWindowMs(heartbeat.leaseMs, timing);
}

/** Milliseconds until the node's renewal stops counting as recent (0 when it no longer does). */
export function recentForMs(heartbeat: Heartbeat, now: number, timing: Timing): number {
  return sentLongAgoInMs(heartbeat.sentAt, effectiveLeaseMs(heartbeat.leaseMs, timing), now, timing);
}

/** The node's lease is live and its agent is serving normally (not fenced, not leaving). */
export function isLive(heartbeat: Heartbeat | undefined, now: number, timing: Timing): boolean {
  return heartbeat?.state === 'running' && recentlyRenewed(heartbeat, now, timing);
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
  /** When the heartbeats in `nodes` were read (GroupObservation.readAt): the proof holds then. */
  readAt: number,
  timing: Timing,
  options: {
    /** false: only a node's own report, a stop or a stopped instance count (fencing: stop-instance). */
    trustSilence?: boolean;
    /** The node's longest self-fence when its heartbeat does not say (older agents). */
    fallbackStopMs?: number;
  } = {},
): string | undefined {
  const obs = nodes[node];
  const hb = obs?.heartbeat;
  // Timeline: describe sent at D says "stopped"; the instance may be started again right after, and
  // its agent renews before its guard admits any start. So the state counts only for a node whose
  // last renewal we read was sent before D: a describe reused from earlier in the invocation (a
  // read-only pass, a lock wait) is as good as a fresh one for a node that has not renewed since.
  if (instanceDown(obs?.instance) && (!hb || sentBefore(hb.sentAt, obs!.instance!.describedAt, timing))) {
    return `instance ${obs?.config.instanceId} is ${obs?.instance?.state} (described after the node's last renewal)`;
  }
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
  return silenceProof(node, nodes, state, readAt, timing, options.fallbackStopMs ?? 0);
}

/** The silence after which a node has certainly finished fencing (see the header). */
export function requiredSilenceMs(hb: Heartbeat, timing: Timing, fallbackStopMs: number): number {
  return silenceNeededMs(hb.fence, hb.leaseMs, timing, fallbackStopMs);
}

/**
 * Proof, measured on monotonic clocks, that `node` has been silent long enough to have fenced
 * itself completely, or undefined when there is none yet. No single node's word demotes another:
 *
 * - reconcile's own sight of the current renewal token (a Suspect record, controller clocks only)
 *   is proof by itself;
 * - a peer's report that the token stayed unchanged counts only when the node's own send time of
 *   that renewal, which no other node can write, is as old by the controller's clock (plus the
 *   skew). A standby that writes a false silence into its own item (a bug, a bad clock, a
 *   compromised instance) therefore takes nothing from an owner that still renews.
 *
 * On the honest path both hold together: the peer first read the renewal after it was sent, and
 * its report reaches reconcile a stream hop later, by when the send is about as old.
 */
export function silenceProof(
  node: string,
  nodes: Record<string, NodeObservation>,
  state: GroupState,
  /**
   * When the heartbeats in `nodes` were read (GroupObservation.readAt), not when the decision is
   * made: the token they show is known to be current only then.
   *
   *   read sent at R: token T      renewal T' lands      decision at N (a slow describe before it)
   *   |─────────────────────────── | ───────────────────|
   *
   * Proven at N, a silence of T would count time after T' landed: the node renewed and serves on.
   */
  now: number,
  timing: Timing,
  fallbackStopMs: number,
): string | undefined {
  const hb = nodes[node]?.heartbeat;
  if (!hb) return undefined;
  const needed = requiredSilenceMs(hb, timing, fallbackStopMs);
  const why = reliesOnWatchdog(hb.fence, hb.leaseMs, timing)
    ? 'its watchdog guarantees it'
    : `lease + up to ${hb.fence?.maxStopMs ?? fallbackStopMs} ms of stop scripts`;
  const suspect = state.suspects[node];
  if (
    suspect &&
    suspect.token === hb.token &&
    controllerSawSilence(suspect.firstSeenAt, needed, now, timing)
  ) {
    return `reconcile saw ${node}'s renewal ${hb.token} unchanged for ${now - suspect.firstSeenAt} ms (needed ${needed} ms: ${why}): it has fenced itself`;
  }
  if (!sentLongAgo(hb.sentAt, needed, now, timing)) return undefined;
  for (const [peer, peerObs] of Object.entries(nodes)) {
    if (peer === node) continue;
    const seen = peerObs.heartbeat?.peers[node];
    if (seen && seen.token === hb.token && seen.silentForMs >= needed) {
      return `peer ${peer} saw ${node}'s renewal ${hb.token} unchanged for ${seen.silentForMs} ms, sent ${now - hb.sentAt} ms ago (needed ${needed} ms: ${why}): it has fenced itself`;
    }
  }
  return undefined;
}

/**
 * When a peer's silence report would be corroborated by the node's own send time: milliseconds
 * from now, or undefined when no peer reports the current token silent long enough yet.
 */
export function peerProofPendingMs(
  node: string,
  nodes: Record<string, NodeObservation>,
  now: number,
  timing: Timing,
  fallbackStopMs: number,
): number | undefined {
  const hb = nodes[node]?.heartbeat;
  if (!hb) return undefined;
  const needed = requiredSilenceMs(hb, timing, fallbackStopMs);
  const claimed = Object.entries(nodes).some(
    ([peer, o]) =>
      peer !== node &&
      o.heartbeat?.peers[node]?.token === hb.token &&
      o.heartbeat.peers[node]!.silentForMs >= needed,
  );
  if (!claimed) return undefined;
  return sentLongAgoInMs(hb.sentAt, needed, now, timing);
}
