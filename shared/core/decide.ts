/**
 * decide(): from a fresh observation of one group, the next idempotent steps. Pure: no I/O, time is
 * `obs.now`. Whatever triggered reconcile, the same observation gives the same plan.
 *
 * Order of concerns, each returning early so that every plan is short and made on fresh state:
 *   1. maintenance mode and operator requests
 *   2. who should own the group (a takeover only rewrites the group record; when its read already
 *      proves every other node stopped, the same pinned write records the new owner in `mayRun`
 *      and the start follows in the same plan: startOnThisRead)
 *   3. demote before promote: every node in `mayRun` other than the owner must be shown stopped
 *   4. stopping: take the entry points off the last owner
 *   5. starting: record the owner in `mayRun`, then activate resources in order
 *   6. online: monitors and the recovery policy (restart, failover, final action), failback
 */
import { REQUEST_MAX_AGE_MS } from '../config/defaults';
import { isAgentMonitor, isApplication, isEntryPoint, monitorTiming } from '../config/kinds';
import type { GroupConfig, MonitorConfig, RecoveryPolicy, ResourceConfig } from '../config/schema';
import {
  claimFitsSendTime,
  controllerSawSilenceInMs,
  effectiveLeaseMs,
  heartbeatRetryMs,
  peerDoubtAfterMs,
  reportGraceMs,
  sentAfter,
  type Timing,
} from '../config/timing';
import {
  INSTANCE_GOING_DOWN_STATES,
  isLive,
  leaseAgeMs,
  peerProofPendingMs,
  recentForMs,
  recentlyRenewed,
  requiredSilenceMs,
  silenceProof,
  stopEvidence,
} from './liveness';
import type {
  GroupObservation,
  GroupState,
  Heartbeat,
  MonitorStatus,
  NodeObservation,
  RequestView,
} from './model';
import { hasApplication } from './node-side';
import type { Action, GroupPatch, Plan } from './plan';

/** Activation attempts on one node before the group stops using that node for a while. */
export const MAX_ACTIVATION_ATTEMPTS = 2;
/** Failed stops on one node before a group with `fencing: stop-instance` stops the instance. */
export const MAX_STOP_FAILURES = 2;
/** Policy of the automatic check of an entry point when no `resource` monitor configures it. */
export const DEFAULT_ENTRY_POINT_POLICY: RecoveryPolicy = { restarts: 3, failovers: 0, finalAction: 'none' };
/** Policy when the owner's agent reports the group stopped or failed while it should run. */
export const AGENT_REPORT_POLICY: RecoveryPolicy = { restarts: 1, failovers: 1, finalAction: 'none' };
/** An EventBridge event's `time` has whole seconds: the event may have happened up to this later. */
export const EVENT_TIME_RESOLUTION_MS = 1_000;
/** Facts from events (Spot, rebalance, Health) count for this long. */
export const FACT_TTL_MS = 15 * 60_000;

interface Ctx {
  obs: GroupObservation;
  state: GroupState;
  group: GroupConfig;
  timing: Timing;
  now: number;
  /** When the heartbeats were read (GroupObservation.readAt): proofs of a stop are taken then. */
  readAt: number;
  /** When that read came back (GroupObservation.heardAt): liveness is judged then. */
  liveAt: number;
  reasons: string[];
  /** Decide again after this long at the latest (a lease about to run out). */
  requeue?: number;
}

export function decide(obs: GroupObservation): Plan {
  const ctx: Ctx = {
    obs,
    state: obs.state,
    group: obs.group,
    timing: obs.config.timing,
    now: obs.now,
    readAt: Math.min(obs.readAt, obs.now),
    liveAt: Math.min(obs.heardAt, obs.now),
    reasons: [],
  };
  const plan = (actions: Action[], requeueAfterMs?: number): Plan => {
    const wait = Math.min(
      requeueAfterMs ?? Number.POSITIVE_INFINITY,
      ctx.requeue ?? Number.POSITIVE_INFINITY,
    );
    return {
      group: obs.group.name,
      epoch: obs.state.epoch,
      actions,
      reasons: ctx.reasons,
      ...(Number.isFinite(wait) ? { requeueAfterMs: Math.max(0, Math.ceil(wait)) } : {}),
    };
  };

  describeNodes(ctx);

  // 1. Maintenance and requests. A request older than REQUEST_MAX_AGE_MS is never carried out.
  const expired = obs.requests.find((r) => obs.now - r.createdAt > REQUEST_MAX_AGE_MS);
  if (expired) return plan([expireRequest(expired, obs.now)]);
  if (ctx.state.mode === 'maintenance') {
    const resume = obs.requests.find((r) => r.kind === 'resume');
    if (resume) return plan(resumeRequest(ctx, resume));
    const other = obs.requests[0];
    if (other) {
      return plan([
        {
          type: 'complete-request',
          id: other.id,
          outcome: 'rejected',
          message: `group ${ctx.group.name} is in maintenance; run "failoverctl resume ${ctx.group.name}" first`,
        },
      ]);
    }
    ctx.reasons.push('maintenance mode: observing only');
    return plan([]);
  }
  const request = obs.requests[0];
  if (request) return plan(handleRequest(ctx, request));

  // 2. Who should own the group.
  const ownership = chooseOwner(ctx);
  if (ownership.to !== ctx.state.owner) {
    const moving = takeover(ctx, ownership.to, ownership.why, ownership.set);
    return plan((ownership.to !== null && startOnThisRead(ctx, ownership.to, moving)) || moving);
  }
  if (ownership.hold !== undefined) return plan(ownership.update ?? [], ownership.hold);

  // 3. Demote before promote.
  const demotion = demoteOthers(ctx);
  if (demotion) return plan(demotion.actions, demotion.requeueAfterMs);

  const owner = ctx.state.owner;
  // 4. Stopped (or nowhere to run): entry points off the last owner.
  if (owner === null) return plan(settleOffline(ctx, ownership.why));

  // 5. Starting.
  if (ctx.state.phase !== 'Online' || !ctx.state.mayRun.includes(owner)) return plan(start(ctx, owner));

  // 6. Online.
  const online = superviseOnline(ctx, owner);
  return plan(online.actions, online.requeueAfterMs);
}

// ------------------------------------------------------------------------------------------------
// Node views

function describeNodes(ctx: Ctx): void {
  for (const name of ctx.group.nodes) {
    const n = ctx.obs.nodes[name];
    const hb = n?.heartbeat;
    const age = leaseAgeMs(hb, ctx.liveAt);
    ctx.reasons.push(
      `${name}: ${hb ? `${hb.state}, lease age ${Number.isFinite(age) ? `${age} ms` : 'n/a'}` : 'no heartbeat'}` +
        `${n?.instance ? `, instance ${n.instance.state}` : ''}${n?.azState ? `, az ${n.azState}` : ''}` +
        `${hb?.isolated ? ', isolated' : ''}`,
    );
  }
}

/** Reasons a node cannot keep or take the group at all (it is down or going down). */
function hardReasons(ctx: Ctx, name: string): string[] {
  const n = ctx.obs.nodes[name];
  const out: string[] = [];
  if (!ctx.group.nodes.includes(name)) out.push(`${name} is no longer a node of group ${ctx.group.name}`);
  if (!n) return [...out, `${name} is not defined`];
  const hb = n.heartbeat;
  const silent = hb
    ? silenceProof(name, ctx.obs.nodes, ctx.state, ctx.readAt, ctx.timing, fallbackStopMs(ctx, name))
    : undefined;
  // A final report of a planned shutdown (every group it reports stopped) names the cause even once
  // the lease has run out since (a busy controller may decide seconds after the agent exited). A
  // shutdown that did not finish (a stop hung, the agent died) is still named for its silence.
  const leftCleanly = hb?.state === 'leaving' && Object.values(hb.groups).every((g) => g.state === 'stopped');
  if (!hb) out.push(`${name} has never renewed a lease`);
  else if (leftCleanly) out.push(`${name} is shutting down (planned)`);
  else if (silent) out.push(`${name} is silent: ${silent}`);
  else if (hb.state === 'leaving') out.push(`${name} is shutting down (planned)`);
  else if (hb.state === 'fenced') out.push(`${name} fenced itself (lost its lease)`);
  else if (!isLive(hb, ctx.liveAt, ctx.timing))
    out.push(`${name}'s lease expired ${leaseAgeMs(hb, ctx.liveAt)} ms after its last renewal`);
  if (n.instance && INSTANCE_GOING_DOWN_STATES.has(n.instance.state))
    out.push(`instance ${n.config.instanceId} is ${n.instance.state}`);
  else if (!n.instance) {
    // Without a describe (throttled, failed), an EC2 state-change event stands in for it. A
    // "stopped" one counts until the node renews after it: the instance was started again (found at
    // 30 % throttling: a 10-minute-old "stopped" of the standby left the group without a node).
    // Going-down states count whatever the node renews: it keeps renewing while it stops.
    const stateFact = freshFacts(ctx, n).find(
      (f) =>
        f.kind === 'instance-state' &&
        !(f.state === 'stopped' && hb && sentAfter(hb.sentAt, f.at + EVENT_TIME_RESOLUTION_MS, ctx.timing)),
    );
    if (stateFact) out.push(`instance ${n.config.instanceId}: ${stateFact.detail}`);
  }
  return out;
}

/** Reasons to move away from a node when there is somewhere better to go. */
function softReasons(ctx: Ctx, name: string, asOwner: boolean): string[] {
  const n = ctx.obs.nodes[name];
  if (!n) return [];
  const out: string[] = [];
  const hb = n.heartbeat;
  if (hb?.isolated) out.push(`${name} is isolated (every witness failed)`);
  if (n.azState !== undefined && n.azState !== 'available') out.push(`AZ ${n.config.az} is ${n.azState}`);
  for (const f of freshFacts(ctx, n)) {
    if (f.kind !== 'instance-state') out.push(`${f.kind} on ${name}: ${f.detail}`);
  }
  if (hb?.spot) out.push(`Spot ${hb.spot.action} notice on ${name} for ${hb.spot.time}`);
  if (hb?.rebalance) out.push(`rebalance recommendation on ${name}`);
  const block = activeBlock(ctx, name);
  if (block) out.push(`${name} is set aside: ${block}`);
  if (!asOwner && hb) {
    // A standby failing an "always" monitor cannot take over.
    for (const m of agentMonitors(ctx.group)) {
      if (monitorTiming(m) === 'always' && hb.monitors[m.name]?.status === 'error') {
        out.push(`monitor ${m.name} reports an error on ${name}${detailOf(hb.monitors[m.name]?.detail)}`);
      }
    }
  }
  if (ctx.obs.config.nodes.find((x) => x.name === name) === undefined) out.push(`${name} is not defined`);
  return out;
}

/** The longest self-fence of a node whose heartbeat does not say: its groups' stop budgets. */
function fallbackStopMs(ctx: Ctx, node: string): number {
  return ctx.obs.nodes[node]?.stopBudgetMs ?? 0;
}

function freshFacts(ctx: Ctx, n: NodeObservation) {
  return n.facts.filter((f) => ctx.now - f.at <= FACT_TTL_MS);
}

function activeBlock(ctx: Ctx, name: string): string | undefined {
  const b = ctx.state.blocked[name];
  return b && ctx.now - b.at < ctx.group.stableAfterMs ? b.reason : undefined;
}

function isCandidate(ctx: Ctx, name: string): boolean {
  return hardReasons(ctx, name).length === 0 && softReasons(ctx, name, false).length === 0;
}

function candidates(ctx: Ctx, except?: string): string[] {
  return ctx.group.nodes.filter((n) => n !== except && isCandidate(ctx, n));
}

// ------------------------------------------------------------------------------------------------
// 1. Requests

function expireRequest(r: RequestView, now: number): Action {
  return {
    type: 'complete-request',
    id: r.id,
    outcome: 'rejected',
    message: `expired: ${r.kind}${r.to ? ` to ${r.to}` : ''} was recorded ${Math.round((now - r.createdAt) / 1000)} s ago, more than the ${REQUEST_MAX_AGE_MS / 1000} s a request waits for reconcile; nothing was done (submit it again if it is still wanted)`,
  };
}

function resumeRequest(ctx: Ctx, r: RequestView): Action[] {
  return [
    { type: 'update', set: { mode: 'auto' }, why: `resumed by ${r.by ?? 'operator'}` },
    { type: 'complete-request', id: r.id, outcome: 'done', message: `group ${ctx.group.name} resumed` },
  ];
}

function handleRequest(ctx: Ctx, r: RequestView): Action[] {
  const g = ctx.group.name;
  const done = (message: string): Action => ({
    type: 'complete-request',
    id: r.id,
    outcome: 'done',
    message,
  });
  const reject = (message: string): Action[] => [
    { type: 'complete-request', id: r.id, outcome: 'rejected', message },
  ];
  ctx.reasons.push(`request ${r.id}: ${r.kind}${r.to ? ` to ${r.to}` : ''} by ${r.by ?? 'operator'}`);
  switch (r.kind) {
    case 'suspend':
      return [
        { type: 'update', set: { mode: 'maintenance' }, why: `suspended by ${r.by ?? 'operator'}` },
        done(`group ${g} suspended: reconcile observes but changes nothing until "failoverctl resume ${g}"`),
      ];
    case 'resume':
      return [done(`group ${g} was not suspended`)];
    case 'stop':
      if (ctx.state.owner === null && ctx.state.desired === 'offline')
        return [done(`group ${g} is already stopped`)];
      return [
        ...takeover(ctx, null, `stop requested by ${r.by ?? 'operator'}`, { desired: 'offline' }),
        done(`group ${g} is stopping`),
      ];
    case 'start':
    case 'move': {
      const to = r.to;
      if (to === undefined) {
        if (r.kind === 'move') return reject('move needs a target node: failoverctl move GROUP --to NODE');
        // Operator start: clear set-aside nodes and counters, then the normal path picks a node.
        return [
          {
            type: 'update',
            set: {
              desired: 'online',
              blocked: {},
              restarts: {},
              failovers: {},
              finalActionTaken: false,
              lastError: null,
            },
            why: `start requested by ${r.by ?? 'operator'}`,
          },
          done(`group ${g} will start on the first eligible node (${ctx.group.nodes.join(', ')})`),
        ];
      }
      if (!ctx.group.nodes.includes(to))
        return reject(`node ${to} is not a node of group ${g}; use one of: ${ctx.group.nodes.join(', ')}`);
      const blocked = { ...ctx.state.blocked };
      delete blocked[to];
      const why = [
        ...hardReasons(ctx, to),
        ...softReasons({ ...ctx, state: { ...ctx.state, blocked } }, to, false),
      ];
      if (why.length > 0) return reject(`cannot ${r.kind} ${g} to ${to}: ${why.join('; ')}`);
      if (ctx.state.owner === to && ctx.state.desired === 'online') {
        return [done(`group ${g} already runs on ${to}`)];
      }
      return [
        ...takeover(ctx, to, `${r.kind} to ${to} requested by ${r.by ?? 'operator'}`, {
          desired: 'online',
          blocked,
          finalActionTaken: false,
        }),
        done(`group ${g} is moving to ${to}${ctx.state.owner ? ` from ${ctx.state.owner}` : ''}`),
      ];
    }
  }
}

// ------------------------------------------------------------------------------------------------
// 2. Ownership

interface Ownership {
  to: string | null;
  why: string;
  set?: GroupPatch;
  /** Same owner, but nothing may be started now; decide again after this long. */
  hold?: number;
  update?: Action[];
}

/**
 * A peer doubts the node: its current renewal unchanged for two heartbeats, or for the doubt time its
 * watcher reports at (a lead before the lease). A doubt longer than the node's own send time allows
 * (plus the skew) is no doubt: a peer that said so every heartbeat would keep an invocation waiting
 * with the lock. Speed only: a doubt proves nothing.
 */
function doubtedByPeer(ctx: Ctx, node: string, hb: Heartbeat): boolean {
  const doubtAfter = Math.min(
    2 * ctx.timing.heartbeatIntervalMs,
    peerDoubtAfterMs(effectiveLeaseMs(hb.leaseMs, ctx.timing)),
  );
  return Object.values(ctx.obs.nodes).some((n) => {
    const seen = n.heartbeat?.peers[node];
    return (
      seen?.token === hb.token &&
      seen.silentForMs >= doubtAfter &&
      claimFitsSendTime(seen.silentForMs, hb.sentAt, ctx.now, ctx.timing)
    );
  });
}

function chooseOwner(ctx: Ctx): Ownership {
  const { state, group } = ctx;
  const owner = state.owner;
  if (state.desired === 'offline') return { to: null, why: 'the group is to be stopped' };

  if (owner !== null) {
    if (stillLeaving(ctx, owner)) {
      // The owner is shutting down and stopping its groups. Its final report (every group stopped)
      // lets the next node start at once, in one reconcile; a takeover now would only wait for it.
      // That report is a change, which invokes reconcile; if it never comes, its lease runs out.
      ctx.reasons.push(
        `${owner} is shutting down (planned) and stopping its groups; waiting for its final report`,
      );
      // Its final report invokes reconcile. An agent that dies mid-shutdown sends none: once a
      // peer doubts it, look again when its lease runs out (not before: a shutdown may take minutes).
      const hb = ctx.obs.nodes[owner]!.heartbeat!;
      const hold = doubtedByPeer(ctx, owner, hb)
        ? recentForMs(hb, ctx.now, ctx.timing) + 1
        : Number.POSITIVE_INFINITY;
      return { to: owner, why: `${owner} is shutting down`, hold };
    }
    const hard = hardReasons(ctx, owner);
    const soft = softReasons(ctx, owner, true);
    if (hard.length === 0 && soft.length === 0) {
      const hb = ctx.obs.nodes[owner]?.heartbeat;
      // A peer doubts the owner: look again when its lease runs out by our clock, which is when a
      // peer's proof of its silence can first count. Speed only.
      if (hb && doubtedByPeer(ctx, owner, hb)) {
        ctx.requeue = recentForMs(hb, ctx.now, ctx.timing) + 1;
      }
      if (group.failback && state.phase === 'Online' && state.healthySince !== null) {
        const better = candidates(ctx, owner).find(
          (n) => group.nodes.indexOf(n) < group.nodes.indexOf(owner),
        );
        if (better)
          return {
            to: better,
            why: `failback to ${better}, which comes before ${owner} in the priority list`,
          };
      }
      return { to: owner, why: `${owner} stays owner` };
    }
    const next = candidates(ctx, owner)[0];
    if (next) return { to: next, why: `${[...hard, ...soft].join('; ')}; moving to ${next}` };
    if (hard.length > 0) return { to: null, why: `${hard.join('; ')}; no eligible node to move to` };
    ctx.reasons.push(`${soft.join('; ')}; no other eligible node, ${owner} stays`);
    const block = state.blocked[owner];
    if (block && activeBlock(ctx, owner) && state.phase !== 'Online') {
      // Set aside after repeated failures and nowhere else to go: do not hammer it; wait for the
      // block to expire (or an operator start / move).
      return {
        to: owner,
        why: `${owner} is set aside`,
        hold: block.at + group.stableAfterMs - ctx.now,
        update:
          state.phase === 'Failed'
            ? []
            : [
                {
                  type: 'update',
                  set: { phase: 'Failed', phaseSince: ctx.now, lastError: soft.join('; ') },
                  why: 'no other eligible node',
                },
                {
                  type: 'alert',
                  kind: 'failover.failed',
                  message: `group ${group.name}: ${soft.join('; ')}; no other eligible node`,
                },
              ],
      };
    }
    return { to: owner, why: `${owner} stays owner (nowhere better)` };
  }

  const next = candidates(ctx)[0];
  if (next) return { to: next, why: `starting on ${next}, the first eligible node` };
  const why = group.nodes
    .map((n) => [...hardReasons(ctx, n), ...softReasons(ctx, n, false)].join('; ') || `${n}: ?`)
    .join(' | ');
  ctx.reasons.push(`no eligible node: ${why}`);
  return { to: null, why };
}

/** A planned shutdown under way: the node reports `leaving`, renews, and has not stopped everything yet. */
function stillLeaving(ctx: Ctx, node: string): boolean {
  const hb = ctx.obs.nodes[node]?.heartbeat;
  return (
    hb?.state === 'leaving' &&
    !Object.values(hb.groups).every((g) => g.state === 'stopped') &&
    recentlyRenewed(hb, ctx.liveAt, ctx.timing)
  );
}

function takeover(ctx: Ctx, to: string | null, why: string, extra: GroupPatch = {}): Action[] {
  const from = ctx.state.owner;
  ctx.reasons.push(why);
  const actions: Action[] = [
    {
      type: 'takeover',
      to,
      set: {
        owner: to,
        phase: to === null ? 'Stopping' : 'Starting',
        phaseSince: ctx.now,
        healthySince: null,
        lastError: null,
        ...extra,
      },
      why,
    },
  ];
  if (to !== null) {
    actions.push({
      type: 'alert',
      kind: 'failover.started',
      message: from
        ? `group ${ctx.group.name}: moving from ${from} to ${to}: ${why}`
        : `group ${ctx.group.name}: starting on ${to}: ${why}`,
    });
  }
  return actions;
}

/**
 * A takeover whose every demotion this observation already proves starts the group in the same
 * plan: its one conditional write names the new owner, drops the stopped nodes from `mayRun` and
 * records the new owner there (steps 3 and 5 of the next rounds), and the resources come up right
 * after. Two rounds of reads and writes fewer on every failover; undefined when any node is not
 * proven stopped yet, or the next round would not simply start the group.
 *
 * A stop is proven as of the read (`readAt`); the takeover commits later, at C:
 *
 *   read R: X proven stopped (fenced, instance down, left)      takeover commits at C
 *   |───────────────────────────────────────────────────────────|
 *            X still owner at the old epoch; could a start reach it here?
 *
 * Only after a renewal of X lands: the guard admits nothing without a live lease of the agent's
 * own, and a node that fenced, was stopped or left has none until it renews (an agent restarted
 * meanwhile included: node-agent/core/fence-timer.ts admitUntil). After C, X is neither owner nor
 * at the epoch. So the takeover pins every such node's renewal as read (`pins`): it commits only
 * if none has landed by C, in the same transaction. A renewal in between fails the write, and the
 * group is decided again on a fresh read.
 */
function startOnThisRead(ctx: Ctx, to: string, moving: Action[]): Action[] | undefined {
  const [first, ...rest] = moving;
  if (first?.type !== 'takeover') return undefined;
  const after: GroupState = { ...ctx.state, ...first.set, epoch: ctx.state.epoch + 1 };
  // The next round decides on the record as written; with this observation it must keep `to`
  // and have nothing to wait for.
  const next: Ctx = { ...ctx, state: after, reasons: [] };
  delete next.requeue;
  const again = chooseOwner(next);
  if (again.to !== to || again.hold !== undefined) return undefined;
  const stopped: string[] = [];
  const reasons: string[] = [];
  for (const node of after.mayRun) {
    if (node === to) continue;
    const evidence = stopEvidence(node, ctx.group.name, after, ctx.obs.nodes, ctx.readAt, ctx.timing, {
      trustSilence: ctx.group.fencing !== 'stop-instance',
      fallbackStopMs: fallbackStopMs(ctx, node),
    });
    if (!evidence) return undefined;
    stopped.push(node);
    reasons.push(`${node} has stopped: ${evidence}`);
  }
  ctx.reasons.push(...reasons, `${to} may run ${ctx.group.name} from now on: starting it on this read`);
  const suspects = { ...after.suspects };
  for (const n of stopped) delete suspects[n];
  const set: GroupPatch = {
    ...first.set,
    mayRun: [...after.mayRun.filter((n) => !stopped.includes(n) && n !== to), to],
    lastOwner: to,
    suspects,
    stopFailures: stopped.reduce((acc, n) => omit(acc, n), after.stopFailures),
  };
  const pins = stopped.map((node) => ({ node, token: ctx.obs.nodes[node]?.heartbeat?.token ?? null }));
  const starting = { ...next, state: { ...after, ...set } };
  return [{ ...first, set, pins }, ...rest, ...start(starting, to)];
}

// ------------------------------------------------------------------------------------------------
// 3. Demote before promote

function demoteOthers(ctx: Ctx): { actions: Action[]; requeueAfterMs?: number } | undefined {
  const { state, group, now, timing } = ctx;
  const others = state.mayRun.filter((n) => n !== state.owner);
  if (others.length === 0) return undefined;

  const confirmed: string[] = [];
  const actions: Action[] = [];
  const suspects = { ...state.suspects };
  let suspectsChanged = false;
  let requeueAfterMs: number | undefined;
  const execs = group.resources.filter(isApplication).reverse();

  for (const node of others) {
    // Taken at the heartbeats' read, not at `now`: a renewal may have landed since (liveness.ts).
    const evidence = stopEvidence(node, group.name, state, ctx.obs.nodes, ctx.readAt, timing, {
      // With a hard fence configured, silence is never enough: the instance is stopped instead.
      trustSilence: group.fencing !== 'stop-instance',
      fallbackStopMs: fallbackStopMs(ctx, node),
    });
    if (evidence) {
      confirmed.push(node);
      ctx.reasons.push(`${node} has stopped: ${evidence}`);
      continue;
    }
    const obs = ctx.obs.nodes[node];
    const hb = obs?.heartbeat;
    const canFence =
      group.fencing === 'stop-instance' &&
      obs !== undefined &&
      !(obs.instance && INSTANCE_GOING_DOWN_STATES.has(obs.instance.state));
    if (hb?.state === 'leaving' && recentlyRenewed(hb, ctx.liveAt, timing)) {
      // A planned shutdown under way: its agent is stopping the group and says so when done.
      ctx.reasons.push(`waiting for ${node} to finish its planned shutdown (stopping ${group.name})`);
      requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, heartbeatRetryMs(timing));
      continue;
    }
    if (isLive(hb, ctx.liveAt, timing) && !hasApplication(group)) {
      // Nothing to send it: its agent stops the group itself once it reads the record (it reads
      // every heartbeat, faster while a transition is under way) and reports it stopped, which
      // stopEvidence accepts above. Until then the node may still hold the group's addresses.
      const report = hb?.groups[group.name];
      if (canFence && report?.state === 'failed' && report.epoch >= state.epoch) {
        actions.push(
          {
            type: 'fence-instance',
            node,
            why: `${node} could not stop ${group.name} (its agent reports it failed) and must be fenced`,
          },
          {
            type: 'alert',
            kind: 'node.fenced',
            message: `group ${group.name}: stopping instance ${obs?.config.instanceId} (${node}) to fence it`,
          },
        );
        requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, 5_000);
        continue;
      }
      ctx.reasons.push(
        `waiting for the agent of ${node} to stop ${group.name} and report it (it reads the record every heartbeat)`,
      );
      requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, timing.heartbeatIntervalMs);
      continue;
    }
    if (isLive(hb, ctx.liveAt, timing) && (state.stopFailures[node] ?? 0) < MAX_STOP_FAILURES) {
      // Alive: stop it ourselves (through the agent's guard, at the current epoch), then it is out.
      for (const r of execs)
        actions.push({
          type: 'deactivate',
          node,
          resource: r.name,
          why: `stop ${r.name} on ${node} before another node starts it`,
        });
      actions.push({
        type: 'update',
        set: {
          mayRun: state.mayRun.filter((n) => n !== node && !confirmed.includes(n)),
          stopFailures: omit(state.stopFailures, node),
        },
        why: `${node} stopped ${group.name}`,
      });
      // One live node per plan: its stop must succeed before the next step.
      break;
    }
    if (canFence) {
      actions.push({
        type: 'fence-instance',
        node,
        why: `${node} must be fenced before another node starts ${group.name} and cannot be reached`,
      });
      actions.push({
        type: 'alert',
        kind: 'node.fenced',
        message: `group ${group.name}: stopping instance ${obs?.config.instanceId} (${node}) to fence it`,
      });
      requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, 5_000);
      continue;
    }
    if (!hb) {
      ctx.reasons.push(
        `cannot confirm that ${node} stopped: it has no renewal on record; stop its instance to release the group`,
      );
      continue;
    }
    // Not reachable: wait until it has certainly finished fencing itself.
    const needed = requiredSilenceMs(hb, timing, fallbackStopMs(ctx, node));
    const suspect = suspects[node];
    if (!suspect || suspect.token !== hb.token) {
      suspects[node] = { token: hb.token, firstSeenAt: now };
      suspectsChanged = true;
    }
    // Reconcile's own sight of the token proves the silence in time; a peer's report sooner, once
    // the node's own send time corroborates it.
    const own = controllerSawSilenceInMs(suspects[node]!.firstSeenAt, needed, now, timing);
    const peer = peerProofPendingMs(node, ctx.obs.nodes, now, timing, fallbackStopMs(ctx, node));
    requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, own, (peer ?? own) + 1);
    ctx.reasons.push(`waiting for ${node} to fence itself (renewal ${hb.token} unchanged)`);
  }

  const head: Action[] = [];
  if (confirmed.length > 0 || suspectsChanged) {
    for (const n of confirmed) delete suspects[n];
    head.push({
      type: 'update',
      set: {
        mayRun: state.mayRun.filter((n) => !confirmed.includes(n)),
        suspects,
        stopFailures: confirmed.reduce((acc, n) => omit(acc, n), state.stopFailures),
      },
      why: confirmed.length > 0 ? `confirmed stopped: ${confirmed.join(', ')}` : 'recording silent nodes',
    });
  }
  // A live node's stop carries its own mayRun update computed from the state before `head`; fold
  // the confirmations in so that the later update does not put confirmed nodes back.
  const all = [...head, ...actions];
  if (all.length === 0) return { actions: [], ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) };
  return { actions: all, ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) };
}

// ------------------------------------------------------------------------------------------------
// 4. Offline

function settleOffline(ctx: Ctx, why: string): Action[] {
  const { state, group } = ctx;
  const target: GroupState['phase'] = state.desired === 'online' ? 'Failed' : 'Offline';
  const last = state.lastOwner;
  if (state.phase === target && last === null) return [];
  // Entry points first, then the record says "stopped", then the announcement.
  const actions: Action[] = [];
  if (last !== null) {
    for (const r of [...group.resources].reverse()) {
      if (isEntryPoint(r))
        actions.push({ type: 'deactivate', node: last, resource: r.name, why: `take ${r.name} off ${last}` });
    }
  }
  const set: GroupPatch = { lastOwner: null };
  if (state.phase === target) {
    actions.push({ type: 'update', set, why: 'entry points released' });
    return actions;
  }
  Object.assign(
    set,
    { phase: target, phaseSince: ctx.now },
    target === 'Failed' ? { lastError: `no eligible node: ${why}` } : {},
  );
  actions.push({
    type: 'update',
    set,
    why: target === 'Offline' ? 'group stopped' : 'group down: no eligible node',
  });
  actions.push(
    target === 'Offline'
      ? { type: 'alert', kind: 'group.stopped', message: `group ${group.name} stopped` }
      : {
          type: 'alert',
          kind: 'failover.failed',
          message: `group ${group.name} cannot run: no eligible node (${why})`,
        },
  );
  return actions;
}

// ------------------------------------------------------------------------------------------------
// 5. Starting

function start(ctx: Ctx, owner: string): Action[] {
  const { state, group } = ctx;
  const actions: Action[] = [];
  if (!state.mayRun.includes(owner) || state.lastOwner !== owner) {
    // Recorded *before* anything starts there: from now on, promoting anyone else needs proof it stopped.
    actions.push({
      type: 'update',
      set: { mayRun: [...new Set([...state.mayRun, owner])], lastOwner: owner },
      why: `${owner} may run ${group.name} from now on`,
    });
  }
  for (const r of group.resources)
    actions.push({ type: 'activate', node: owner, resource: r.name, why: `bring ${r.name} up on ${owner}` });
  actions.push({
    type: 'update',
    set: { phase: 'Online', phaseSince: ctx.now, healthySince: ctx.now, lastError: null },
    why: `${group.name} online on ${owner}`,
  });
  actions.push({
    type: 'alert',
    kind: 'failover.completed',
    message: `group ${group.name} is online on ${owner} (epoch ${state.epoch})`,
  });
  return actions;
}

// ------------------------------------------------------------------------------------------------
// 6. Online: monitors and recovery

interface MonitorFinding {
  key: string;
  status: MonitorStatus;
  detail: string;
  policy: RecoveryPolicy;
  /** Resources to restart, in activation order; empty when a restart cannot help. */
  restart: ResourceConfig[];
}

function superviseOnline(ctx: Ctx, owner: string): { actions: Action[]; requeueAfterMs?: number } {
  const findings = collectFindings(ctx, owner);
  const patch: GroupPatch = {};
  const alerts = recordMonitorTransitions(ctx, owner, findings, patch);
  const first = findings.find((f) => f.status === 'error');
  const actions = first ? recover(ctx, owner, first, patch) : stayHealthy(ctx, patch);
  // The record first (counters, statuses), then the status changes' announcements, then the rest.
  const [head, ...rest] = actions;
  return { actions: head?.type === 'update' ? [head, ...alerts, ...rest] : [...alerts, ...actions] };
}

/** Each monitor's change of status is recorded once (in `patch`) and announced once. */
function recordMonitorTransitions(
  ctx: Ctx,
  owner: string,
  findings: readonly MonitorFinding[],
  patch: GroupPatch,
): Action[] {
  const { state, group, now } = ctx;
  const alerts: Action[] = [];
  const monitors = { ...state.monitors };
  let changed = false;
  const seen = new Set<string>();
  for (const f of findings) {
    seen.add(f.key);
    if (monitors[f.key]?.status === f.status) continue;
    monitors[f.key] = { status: f.status, detail: f.detail, since: now };
    changed = true;
    if (f.status === 'error' || f.status === 'warn') {
      alerts.push({
        type: 'alert',
        kind: f.status === 'error' ? 'monitor.error' : 'monitor.warning',
        message: `group ${group.name} on ${owner}: ${f.key}: ${f.detail}`,
      });
    }
  }
  for (const [key, m] of Object.entries(state.monitors)) {
    if (seen.has(key) || m.status === 'ok') continue;
    monitors[key] = { status: 'ok', detail: 'recovered', since: now };
    changed = true;
    alerts.push({
      type: 'alert',
      kind: 'monitor.recovered',
      message: `group ${group.name} on ${owner}: ${key} recovered`,
    });
  }
  if (changed) patch.monitors = monitors;
  return alerts;
}

/** No error: count the healthy time, and reset the recovery counters once stable long enough. */
function stayHealthy(ctx: Ctx, patch: GroupPatch): Action[] {
  const { state, group, now } = ctx;
  const healthySince = state.healthySince ?? now;
  if (state.healthySince === null) patch.healthySince = healthySince;
  const dirty =
    Object.keys(state.restarts).length +
      Object.keys(state.failovers).length +
      Object.keys(state.blocked).length >
      0 || state.finalActionTaken;
  if (dirty && now - healthySince >= group.stableAfterMs) {
    Object.assign(patch, {
      restarts: {},
      failovers: {},
      blocked: {},
      finalActionTaken: false,
      lastError: null,
    });
    ctx.reasons.push(`stable for ${now - healthySince} ms: recovery counters reset`);
  }
  return Object.keys(patch).length > 0 ? [{ type: 'update', set: patch, why: 'monitor status' }] : [];
}

/**
 * The recovery policy of the first error: restart its resources up to `restarts` times, then fail
 * the group over up to `failovers` times (when another node is eligible), then the final action
 * once per incident.
 */
function recover(ctx: Ctx, owner: string, first: MonitorFinding, patch: GroupPatch): Action[] {
  const { state, group, now } = ctx;
  if (state.healthySince !== null) patch.healthySince = null;
  ctx.reasons.push(`monitor ${first.key}: ${first.detail}`);
  const restarts = state.restarts[first.key] ?? 0;
  const failovers = state.failovers[first.key] ?? 0;
  if (first.restart.length > 0 && restarts < first.policy.restarts) {
    patch.restarts = { ...state.restarts, [first.key]: restarts + 1 };
    patch.restartedAt = { ...state.restartedAt, [first.key]: now };
    patch.lastError = `${first.key}: ${first.detail}`;
    return [
      {
        type: 'update',
        set: patch,
        why: `restart ${restarts + 1}/${first.policy.restarts} for ${first.key}`,
      },
      // An application is stopped before it is started again; entry points are simply put back.
      ...[...first.restart]
        .reverse()
        .filter(isApplication)
        .map(
          (r): Action => ({
            type: 'deactivate',
            node: owner,
            resource: r.name,
            why: `restart ${r.name} (${first.key})`,
          }),
        ),
      ...first.restart.map(
        (r, i): Action => ({
          type: 'activate',
          node: owner,
          resource: r.name,
          why: `restart ${r.name} (${first.key})`,
          ...(i === 0 ? { restartOf: first.key } : {}),
        }),
      ),
      {
        type: 'alert',
        kind: 'resource.restarted',
        message: `group ${group.name} on ${owner}: ${first.key}: ${first.detail}; restarting ${first.restart.map((r) => r.name).join(', ')} (${restarts + 1}/${first.policy.restarts})`,
      },
    ];
  }
  if (failovers < first.policy.failovers && candidates(ctx, owner).length > 0) {
    patch.failovers = { ...state.failovers, [first.key]: failovers + 1 };
    patch.blocked = { ...state.blocked, [owner]: { reason: `${first.key}: ${first.detail}`, at: now } };
    patch.lastError = `${first.key}: ${first.detail}`;
    return [
      {
        type: 'update',
        set: patch,
        why: `failover ${failovers + 1}/${first.policy.failovers} for ${first.key}`,
      },
    ];
  }
  if (state.finalActionTaken)
    return Object.keys(patch).length > 0 ? [{ type: 'update', set: patch, why: 'monitor status' }] : [];
  patch.finalActionTaken = true;
  patch.lastError = `${first.key}: ${first.detail}; recovery exhausted, final action ${first.policy.finalAction}`;
  const actions: Action[] = [
    { type: 'update', set: patch, why: `final action ${first.policy.finalAction} for ${first.key}` },
    {
      type: 'alert',
      kind: 'monitor.error',
      message: `group ${group.name} on ${owner}: ${first.key}: ${first.detail}; restarts and failovers exhausted, final action: ${first.policy.finalAction}`,
    },
  ];
  if (first.policy.finalAction === 'stop-group')
    actions.push(...takeover(ctx, null, `final action stop-group for ${first.key}`, { desired: 'offline' }));
  else if (first.policy.finalAction === 'stop-node')
    actions.push({ type: 'fence-instance', node: owner, why: `final action stop-node for ${first.key}` });
  return actions;
}

function collectFindings(ctx: Ctx, owner: string): MonitorFinding[] {
  const { obs, state, group, now, timing } = ctx;
  const out: MonitorFinding[] = [];
  const byName = new Map(group.resources.map((r) => [r.name, r]));
  const hb = obs.nodes[owner]?.heartbeat;
  const grace = reportGraceMs(timing);

  // Entry points, checked by reconcile.
  for (const r of group.resources) {
    if (!isEntryPoint(r)) continue;
    const check = obs.checks[r.name];
    if (!check) continue;
    const m = group.monitors.find((x) => x.type === 'resource' && x.resource === r.name) as
      | Extract<MonitorConfig, { type: 'resource' }>
      | undefined;
    const key = m?.name ?? `check:${r.name}`;
    const policy = m?.recovery ?? DEFAULT_ENTRY_POINT_POLICY;
    if (check.status === 'drift')
      out.push({ key, status: 'error', detail: check.detail, policy, restart: [r] });
    else if (check.status === 'error') {
      const onApiError = m?.onApiError ?? 'warn';
      if (onApiError === 'recover')
        out.push({ key, status: 'error', detail: check.detail, policy, restart: [r] });
      else if (onApiError === 'warn')
        out.push({
          key,
          status: 'warn',
          detail: `check could not confirm the entry point: ${check.detail}`,
          policy,
          restart: [],
        });
    }
  }

  // Agent-side monitors on the owner.
  for (const m of agentMonitors(group)) {
    const report = hb?.monitors[m.name];
    if (!report || (report.status !== 'error' && report.status !== 'warn')) continue;
    const waitMs = Math.max(m.startWaitMs, m.intervalMs * (m.retries + 1)) + grace;
    if (now - state.phaseSince < Math.max(m.startWaitMs + grace, 0)) continue;
    const restartedAt = state.restartedAt[m.name];
    if (restartedAt !== undefined && now - restartedAt < waitMs) continue;
    const target = m.resource ? byName.get(m.resource) : undefined;
    out.push({
      key: m.name,
      status: report.status,
      detail: `${m.type} monitor${detailOf(report.detail)}`,
      policy: m.recovery,
      restart: report.status === 'error' && target ? [target] : [],
    });
  }

  // AWS-side conditions configured as monitors.
  const ownerObs = obs.nodes[owner];
  for (const m of group.monitors) {
    if (m.type !== 'instance' && m.type !== 'az') continue;
    const apiError = obs.apiErrors[m.type];
    if (apiError) {
      if (m.onApiError === 'recover')
        out.push({ key: m.name, status: 'error', detail: apiError, policy: m.recovery, restart: [] });
      else if (m.onApiError === 'warn')
        out.push({
          key: m.name,
          status: 'warn',
          detail: `AWS API call failed: ${apiError}`,
          policy: m.recovery,
          restart: [],
        });
    } else if (m.type === 'instance' && ownerObs?.instance?.statusOk === false) {
      out.push({
        key: m.name,
        status: 'error',
        detail: `instance ${ownerObs.config.instanceId} status checks impaired`,
        policy: m.recovery,
        restart: [],
      });
    }
  }

  // The owner's agent says the group is not running there although it should.
  const report = hb?.groups[group.name];
  const key = 'agent-report';
  const restartedAt = state.restartedAt[key] ?? Number.NEGATIVE_INFINITY;
  if (
    report &&
    report.epoch === state.epoch &&
    (report.state === 'stopped' || report.state === 'failed') &&
    now - state.phaseSince > grace &&
    now - restartedAt > grace &&
    hb !== undefined &&
    sentAfter(hb.sentAt, Math.max(state.phaseSince, restartedAt), timing)
  ) {
    out.push({
      key,
      status: 'error',
      detail: `agent of ${owner} reports ${group.name} ${report.state}`,
      policy: AGENT_REPORT_POLICY,
      restart: group.resources,
    });
  }
  // Errors first, in a stable order, so that the same observation gives the same plan.
  return out.sort((a, b) => (a.status === b.status ? 0 : a.status === 'error' ? -1 : 1));
}

function agentMonitors(group: GroupConfig) {
  return group.monitors.filter(isAgentMonitor);
}

function detailOf(detail: string | undefined): string {
  return detail ? `: ${detail}` : '';
}

function omit<T>(record: Record<string, T>, key: string): Record<string, T> {
  const { [key]: _, ...rest } = record;
  return rest;
}

/**
 * What the group record should remember when an action of a plan failed. Pure; the executor applies
 * it (conditionally) and ends the plan, so the next decision is made on fresh state.
 */
export function patchForFailedAction(
  state: GroupState,
  action: Action,
  message: string,
  now: number,
  /**
   * The failure says nothing about the node: AWS throttled or timed out the call (or answered 5xx).
   * Such an attempt is not counted against the node: setting it aside would strand the group when
   * the other node is gone (it would meet the same throttled API anyway); reconcile tries again.
   */
  retryable = false,
): GroupPatch {
  const lastError = `${action.type}${'resource' in action ? ` ${action.resource}` : ''}${'node' in action ? ` on ${action.node}` : ''} failed: ${message}`;
  if (action.type === 'activate' && retryable) {
    // Nor against the monitor whose restart it was: an entry point that drifted away from the owner
    // while AWS throttled the repair would otherwise use up its restarts and stay on the other node.
    const key = action.restartOf;
    const spent = key === undefined ? 0 : (state.restarts[key] ?? 0);
    return spent > 0 ? { lastError, restarts: { ...state.restarts, [key!]: spent - 1 } } : { lastError };
  }
  if (action.type === 'activate') {
    const key = `activate:${action.resource}`;
    const attempts = (state.restarts[key] ?? 0) + 1;
    if (attempts >= MAX_ACTIVATION_ATTEMPTS) {
      // Set the node aside for this group; the next decision moves the group if it can.
      return {
        lastError,
        restarts: omit(state.restarts, key),
        blocked: {
          ...state.blocked,
          [action.node]: {
            reason: `activating ${action.resource} failed ${attempts} times: ${message}`,
            at: now,
          },
        },
      };
    }
    return { lastError, restarts: { ...state.restarts, [key]: attempts } };
  }
  if (action.type === 'deactivate') {
    // A failed stop is an error, never "not running": the node stays in mayRun.
    return {
      lastError,
      stopFailures: { ...state.stopFailures, [action.node]: (state.stopFailures[action.node] ?? 0) + 1 },
    };
  }
  return { lastError };
}
