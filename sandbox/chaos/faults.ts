/**
 * The nemesis' faults, and the plan of one run drawn from its seed alone: `--replay SEED` draws the
 * same plan again. A plan names its targets by role (the group's owner or the standby at the start
 * of the run), not by node, so that a replay hits the same role whichever node holds it.
 *
 * Every run has one primary fault; event perturbations (duplicated, delayed controller
 * invocations) may come on top, for the whole run.
 */

/** The primary faults, one per run. */
export const FAULT_KINDS = [
  'sigkill-agent',
  'sigkill-node',
  'sigstop-agent',
  'partition',
  'one-way-cut',
  'clock-jump',
  'slow-stop',
  'hanging-stop',
  'controller-stall',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Perturbations of the events that wake the controller, on top of the primary fault. */
export const PERTURBATION_KINDS = ['duplicated-events', 'delayed-events'] as const;
export type PerturbationKind = (typeof PERTURBATION_KINDS)[number];

export type Role = 'owner' | 'standby';

/** What makes a node with a slow or hanging stop script stop its application. */
export type StopTrigger = 'move' | 'partition' | 'sigterm';

export interface Fault {
  kind: FaultKind;
  target: Role;
  /** After the run's start, before the fault (spreads faults over the heartbeat's phase). */
  offsetMs: number;
  /** How long the fault holds before it is healed (pause, cut, clock offset, stop script mode). */
  holdMs: number;
  /** clock-jump: the node's wall clock offset in seconds (negative: back in time). */
  jumpSec?: number;
  /** slow-stop / hanging-stop: how long the stop script sleeps, and what makes the node stop. */
  stopSleepSec?: number;
  trigger?: StopTrigger;
  /** sigkill-node: how long the node takes to boot again. */
  bootMs?: number;
}

export interface Perturbation {
  kind: PerturbationKind;
  /** Probability per invocation. */
  p: number;
  /** The extra delay (delayed) or the gap to the second delivery (duplicated), drawn per event. */
  maxMs: number;
}

export interface RunPlan {
  seed: number;
  fault: Fault;
  perturbations: Perturbation[];
}

/** Timing the plan is drawn against (the lane's). */
export interface PlanTiming {
  leaseMs: number;
  heartbeatIntervalMs: number;
  /** The exec resource's timeoutSec: a slow stop stays under it, a hanging one goes over. */
  stopTimeoutSec: number;
}

/** mulberry32: a small, fast PRNG whose whole state is one 32-bit number (the seed). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of run `index` of a session seeded with `session` (a 32-bit mix of both). */
export function runSeed(session: number, index: number): number {
  let h = (session ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Draws one run's plan from its seed. */
export function planRun(seed: number, t: PlanTiming): RunPlan {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const between = (lo: number, hi: number) => lo + r() * (hi - lo);
  const kind = pick(FAULT_KINDS);
  // Mostly the owner: that is where a fault can cost a failover or a double start.
  const target: Role = r() < 0.75 ? 'owner' : 'standby';
  const fault: Fault = {
    kind,
    target,
    offsetMs: Math.round(between(0, t.heartbeatIntervalMs)),
    holdMs: 0,
  };
  switch (kind) {
    case 'sigkill-agent':
      break;
    case 'sigkill-node':
      fault.bootMs = Math.round(between(0.5, 2) * t.leaseMs);
      break;
    case 'sigstop-agent':
      // Longer than the lease: the agent wakes up (if its watchdog has not reset the node) to a
      // world that went on without it.
      fault.holdMs = Math.round(between(1.05, 2) * t.leaseMs);
      break;
    case 'partition':
    case 'one-way-cut':
      // From shorter than the fence (renewals retried, nothing moves) to well past the lease.
      fault.holdMs = Math.round(between(0.25, 2.5) * t.leaseMs);
      break;
    case 'clock-jump':
      fault.jumpSec = Math.round(between(3, 60)) * (r() < 0.5 ? -1 : 1);
      fault.holdMs = Math.round(between(1, 3) * t.leaseMs);
      break;
    case 'slow-stop':
    case 'hanging-stop':
      // Slow: finishes within its timeoutSec; hanging: sleeps well past it (the agent's or SSM's
      // timeout kills it, and the application it should have stopped still runs).
      fault.target = 'owner';
      fault.stopSleepSec =
        kind === 'slow-stop'
          ? Math.round(between(0.3, 0.8) * t.stopTimeoutSec * 10) / 10
          : Math.round(between(2, 4) * t.stopTimeoutSec);
      fault.trigger = pick(['move', 'partition', 'sigterm'] as const);
      fault.holdMs = Math.round(between(1.5, 2.5) * t.stopTimeoutSec * 1000);
      break;
    case 'controller-stall':
      // A move makes the controller fence and mutate; the first mutation after the fence stalls.
      fault.target = 'owner';
      fault.trigger = 'move';
      break;
  }
  const perturbations: Perturbation[] = [];
  if (r() < 0.3) perturbations.push({ kind: 'duplicated-events', p: 0.5, maxMs: 1500 });
  if (r() < 0.3) perturbations.push({ kind: 'delayed-events', p: 0.5, maxMs: 2000 });
  return { seed, fault, perturbations };
}

/**
 * The plan of run `index` of a session; with `cover`, the first seed (of a fixed sequence) whose
 * fault is the (index mod n)-th kind, so that a short session covers every kind and each run still
 * replays from its seed alone.
 */
export function sessionPlan(session: number, index: number, t: PlanTiming, cover = false): RunPlan {
  if (!cover) return planRun(runSeed(session, index), t);
  const want = FAULT_KINDS[index % FAULT_KINDS.length];
  for (let attempt = 0; ; attempt++) {
    const plan = planRun(runSeed(session, index * 1000 + attempt), t);
    if (plan.fault.kind === want) return plan;
  }
}

/** One line: what the run does. */
export function describePlan(plan: RunPlan): string {
  const f = plan.fault;
  const parts: string[] = [`${f.kind} of the ${f.target}`];
  if (f.holdMs) parts.push(`for ${(f.holdMs / 1000).toFixed(2)} s`);
  if (f.jumpSec !== undefined) parts.push(`by ${f.jumpSec > 0 ? '+' : ''}${f.jumpSec} s`);
  if (f.stopSleepSec !== undefined) parts.push(`(stop script sleeps ${f.stopSleepSec} s)`);
  if (f.trigger) parts.push(`triggered by ${f.trigger}`);
  if (f.bootMs !== undefined) parts.push(`(boots again after ${(f.bootMs / 1000).toFixed(2)} s)`);
  parts.push(`at +${f.offsetMs} ms`);
  for (const p of plan.perturbations) parts.push(`+ ${p.kind} (p ${p.p}, up to ${p.maxMs} ms)`);
  return parts.join(' ');
}
