/**
 * reconcile: the one path every trigger takes (schedule, EC2 event, Spot/rebalance warning, Health,
 * DynamoDB stream, `failoverctl reconcile --once`). Per group:
 *
 *   lock ─▶ [ observe ─▶ decide (pure) ─▶ execute ] ─▶ ... until the plan is empty ─▶ unlock
 *
 * Every group's lock is taken before any group observes, so that the first round of all of them
 * shares one read of the cluster's heartbeats, facts and requests (and one describe call per kind)
 * made after their locks: DynamoDB reads grow with clusters, not with groups. Beyond
 * DEFAULT_GROUPS_IN_FLIGHT groups needing work (a zone outage), that many at a time, each later
 * group reading after its own lock in reads shared with the groups locking beside it.
 *
 * Timeline of one invocation (controller clock):
 *
 *   start                                  deadline            lock.expiresAt
 *     |── rounds ──────────────────────────────|── lockSlackMs ──────|
 *                                              ^ every in-flight AWS call is aborted here, so no
 *                                                mutation of ours lands after a newer holder may
 *                                                have taken the lock.
 *
 * Every mutation of AWS is preceded by `store.fence()`: a conditional write that succeeds only if
 * the epoch is still the planned one and we still hold an unexpired lock. AWS cannot make the
 * mutation itself conditional, so two more rules bound what a late invocation can do:
 *
 * - no mutating call starts unless the lock outlasts the call's worst case (every attempt timing
 *   out); the lock outlives the deadline by at least that much (shared/config/timing.ts);
 * - a call that returns when, by our clock, another invocation may already hold the lock (we
 *   stalled between the checks and the call: GC, a suspended `failoverctl`) may have landed stale:
 *   we ask for a repair (store.requestRepair), a reconcile that checks the entry points at once.
 */
import { setMaxListeners } from 'node:events';
import { FreshReads } from '../../shared/base/coalesce';
import {
  ConflictError,
  DeadlineExceededError,
  FailoverError,
  InvalidRequestError,
  LockBusyError,
  NotFoundError,
} from '../../shared/base/errors';
import { InFlight } from '../../shared/base/in-flight';
import { isEntryPoint } from '../../shared/config/kinds';
import type { GroupConfig } from '../../shared/config/schema';
import { lockAllowsMutation, lockBeyondDeadlineMs, mutationMayBeStale } from '../../shared/config/timing';
import type { ClusterConfig } from '../../shared/config/validate';
import { decide, patchForFailedAction } from '../../shared/core/decide';
import {
  type GroupLock,
  type GroupObservation,
  type GroupState,
  initialGroupState,
  sameLockAcquisition,
} from '../../shared/core/model';
import type { Action, Plan } from '../../shared/core/plan';
import type {
  Clock,
  Cloud,
  DescribeCache,
  Log,
  MutationContext,
  Notifier,
  StateStore,
  TransitionEvent,
} from '../../shared/core/ports';
import { errorMessage, observeGroup, ReconcileSnapshot } from './observe';

export interface ReconcileDeps {
  store: StateStore;
  cloud: Cloud;
  notifier: Notifier;
  clock: Clock;
  log: Log;
  /** Identifies this invocation as lock holder (Lambda request id, CLI run id). */
  holder: string;
}

export interface ReconcileOptions {
  /** Controller-clock time by which every call of this invocation has finished or been aborted. */
  deadline: number;
  /** How long the lock outlives the deadline: covers clock skew between invocations and network slack. */
  lockSlackMs?: number;
  /** Only these groups (the trigger's hint); all groups when absent. */
  groups?: readonly string[];
  /** Safety valve against a plan that never converges. */
  maxRounds?: number;
  /** Longest wait inside the invocation for a time-based condition (e.g. a lease running out). */
  maxWaitMs?: number;
  /** At most this many groups of the cluster locked and reconciled at once (DEFAULT_GROUPS_IN_FLIGHT). */
  groupsInFlight?: number;
}

export type GroupStatus = 'converged' | 'waiting' | 'busy' | 'error' | 'deadline' | 'unconverged';

export interface GroupOutcome {
  group: string;
  status: GroupStatus;
  epoch?: number;
  owner?: string | null;
  phase?: string;
  /** Whether the operator (or autoStart) wants the group running. */
  desired?: 'online' | 'offline';
  rounds: number;
  actions: number;
  /** Milliseconds to wait before looking again, when waiting on time. */
  requeueAfterMs?: number;
  error?: { code: string; message: string; retryable: boolean };
}

export interface ClusterOutcome {
  cluster: string;
  configVersion?: number;
  groups: GroupOutcome[];
}

const DEFAULT_LOCK_SLACK_MS = 5_000;
const DEFAULT_MAX_ROUNDS = 25;
const DEFAULT_MAX_WAIT_MS = 30_000;
/** Groups of one cluster locked and reconciled at once by one invocation (reconcileInWaves). */
export const DEFAULT_GROUPS_IN_FLIGHT = 64;
/** After a busy holder's lock runs out, look again this much later (its clock may lag ours). */
const LOCK_EXPIRY_GRACE_MS = 50;
/** Stop starting new work this long before the deadline. */
const DEADLINE_MARGIN_MS = 250;
/**
 * A holder waiting on time reads its group this often: a kick (another trigger saw something new)
 * ends the wait, so a new fact waits at most this long rather than up to DEFAULT_MAX_WAIT_MS.
 */
export const KICK_POLL_MS = 1_000;
/**
 * The lock release and the alerts still in flight when a group's reconcile ends (possibly at the
 * deadline) get this long each: together well within the time the Lambda keeps after the deadline
 * (controller.ts LAMBDA_RESERVE_MS), so a slow DynamoDB or SNS never turns into a Lambda timeout.
 * A release that does not finish is harmless: the lock runs out by itself.
 */
export const CLEANUP_TIMEOUT_MS = 1_500;

/** Reconcile every (or the hinted) group of one cluster. Never throws for one group's failure. */
export async function reconcileCluster(
  deps: ReconcileDeps,
  cluster: string,
  options: ReconcileOptions,
): Promise<ClusterOutcome> {
  const stored = await deps.store.getConfig(cluster);
  if (!stored) {
    throw new NotFoundError(
      'CLUSTER_NOT_FOUND',
      `cluster ${cluster} has no configuration in the state table; run "failoverctl apply -f cluster.yaml" first`,
    );
  }
  const startedAt = deps.clock.now();
  const deadline = deadlineSignal(deps.clock, options.deadline);
  try {
    const groups = stored.config.groups.filter((g) => !options.groups || options.groups.includes(g.name));
    // 1. A read-only pass: a group whose record nobody holds and whose plan is empty, with nothing
    //    to wait for, is converged; it is left alone (no lock, no write). Decisions of this pass are
    //    never executed: the other groups are decided again on reads made under their lock.
    // Reads of the groups' later rounds and plans are shared by those that ask at the same moment.
    const readOnly = new ReconcileSnapshot(deps, stored, deadline.signal, true, new FreshReads());
    const steady = await steadyGroups(deps, readOnly, groups, deadline.signal);
    const pending = groups.filter((g) => !steady.has(g.name));
    // 2. Every remaining group's lock first, then they observe (reconcileTogether); beyond
    //    `groupsInFlight` groups, that many at a time (reconcileInWaves).
    const limit = options.groupsInFlight ?? DEFAULT_GROUPS_IN_FLIGHT;
    if (!(Number.isInteger(limit) && limit >= 1))
      throw new InvalidRequestError(
        `groupsInFlight must be a whole number of at least 1 (got ${limit}); leave it out for ${DEFAULT_GROUPS_IN_FLIGHT}`,
        'INVALID_OPTION',
      );
    const outcomes =
      pending.length <= limit
        ? await reconcileTogether(deps, stored.config, readOnly, pending, options, deadline.signal, startedAt)
        : await reconcileInWaves(
            deps,
            stored.config,
            readOnly,
            pending,
            limit,
            options,
            deadline.signal,
            startedAt,
          );
    const byName = new Map(outcomes.map((o) => [o.group, o]));
    return {
      cluster,
      configVersion: stored.version,
      groups: groups.map((g) => steady.get(g.name) ?? byName.get(g.name)!),
    };
  } finally {
    deadline.cancel();
  }
}

/**
 * Every pending group's lock first, then they observe: the groups locked at once share one read of
 * the cluster's heartbeats, facts and requests (ReconcileSnapshot.clusterState), made after every
 * one of their locks was taken, as each group's own read was, and reuse the describe calls of the
 * read-only pass. Reads per cluster, not per group.
 */
async function reconcileTogether(
  deps: ReconcileDeps,
  config: ClusterConfig,
  readOnly: ReconcileSnapshot,
  pending: readonly GroupConfig[],
  options: ReconcileOptions,
  signal: AbortSignal,
  startedAt: number,
): Promise<GroupOutcome[]> {
  const locked = await Promise.all(
    pending.map(async (group) => ({ group, lock: await lockGroup(deps, config, group, options) })),
  );
  const snapshot = readOnly.afterLock({ reuseDescribes: true });
  return Promise.all(
    locked.map(({ group, lock }) =>
      settleLock(deps, readOnly, group, lock, () => snapshot, options, signal, startedAt),
    ),
  );
}

/**
 * More pending groups than `limit` (a zone outage moving hundreds of groups at once): at most
 * `limit` of them hold our lock and reconcile at a time, each slot taking the next group when its
 * group is done. All at once, every group would be half way (locked, taken over, its calls queued
 * behind everyone's) when the deadline comes, and none online; in slots, groups come online one
 * after another from the first seconds, and what the deadline leaves is left unlocked for the next
 * trigger. The first `limit` groups are locked at once and share the read-only pass's describes,
 * as reconcileTogether's are; each later group reads after its own lock, its reads shared with the
 * other groups asking at the same moment (FreshReads). Concurrent invocations of one cluster start
 * their queues at different groups (by holder), so that they share the work instead of meeting on
 * every lock.
 */
async function reconcileInWaves(
  deps: ReconcileDeps,
  config: ClusterConfig,
  readOnly: ReconcileSnapshot,
  pending: readonly GroupConfig[],
  limit: number,
  options: ReconcileOptions,
  signal: AbortSignal,
  startedAt: number,
): Promise<GroupOutcome[]> {
  const start = holderOffset(deps.holder, pending.length);
  const ordered = [...pending.slice(start), ...pending.slice(0, start)];
  const slots = new InFlight(limit);
  const firstBatch = ordered.slice(0, limit);
  const queue = ordered.slice(limit);
  const outcomes: Promise<GroupOutcome>[] = [];
  // The first batch takes its slots and locks at once, then shares one snapshot (as together).
  await Promise.all(firstBatch.map(() => slots.take()));
  const firstLocks = await Promise.all(
    firstBatch.map(async (group) => ({ group, lock: await lockGroup(deps, config, group, options) })),
  );
  const snapshot = readOnly.afterLock({ reuseDescribes: true });
  for (const { group, lock } of firstLocks)
    outcomes.push(
      settleLock(deps, readOnly, group, lock, () => snapshot, options, signal, startedAt, slots).finally(() =>
        slots.give(),
      ),
    );
  for (const group of queue) {
    await slots.take();
    outcomes.push(
      (async () => {
        if (deps.clock.now() >= options.deadline - DEADLINE_MARGIN_MS)
          return { group: group.name, status: 'deadline', rounds: 0, actions: 0 } satisfies GroupOutcome;
        const lock = await lockGroup(deps, config, group, options);
        const view = () => readOnly.afterLock({ reuseDescribes: false, shareDescribes: true });
        return settleLock(deps, readOnly, group, lock, view, options, signal, startedAt, slots);
      })().finally(() => slots.give()),
    );
  }
  const done = await Promise.all(outcomes);
  const byName = new Map(done.map((o) => [o.group, o]));
  return pending.map((g) => byName.get(g.name)!);
}

/**
 * Where an invocation starts its queue of `n` groups: a hash of its holder name, so that two
 * invocations of one cluster begin at different groups (deterministic, for the simulation).
 */
function holderOffset(holder: string, n: number): number {
  let h = 2166136261;
  for (let i = 0; i < holder.length; i++) h = Math.imul(h ^ holder.charCodeAt(i), 16777619);
  return (h >>> 0) % n;
}

/**
 * What a group's lock attempt leads to: its outcome (busy, an error), its reconcile on `view`, or,
 * when its holder is dead or stalled, a wait for that lock to run out on its own. The others go on
 * meanwhile (holding their locks, or a slot, through its wait would hold their failovers back by up
 * to a lock's lifetime). A group taken after the wait is decided on reads made after it, the
 * describe calls too: instance states that old would move groups for nothing. (Safety does not
 * rest on this: a stopped state counts as proof only for a node that has not renewed since the
 * describe, liveness.ts stopEvidence.)
 */
async function settleLock(
  deps: ReconcileDeps,
  readOnly: ReconcileSnapshot,
  group: GroupConfig,
  lock: Awaited<ReturnType<typeof lockGroup>>,
  view: () => ReconcileSnapshot,
  options: ReconcileOptions,
  signal: AbortSignal,
  startedAt: number,
  /** Held by the caller: given back during the wait, taken again after it. */
  slots?: InFlight,
): Promise<GroupOutcome> {
  if ('outcome' in lock) return lock.outcome;
  if ('state' in lock) return reconcileGroup(deps, view(), group, lock.state, options, signal, startedAt);
  // Waited for without the lock, and in reconcileInWaves without a slot: a lock taken, then held
  // while queueing for a slot, would keep others (and their kicks) off a group nobody works on.
  slots?.give();
  try {
    await deps.clock.sleep(lock.waitMs);
  } finally {
    await slots?.take();
  }
  if (deps.clock.now() >= options.deadline - DEADLINE_MARGIN_MS)
    return { group: group.name, status: 'deadline', rounds: 0, actions: 0 };
  const after = await lock.acquireAfterWait();
  if ('outcome' in after) return after.outcome;
  const fresh = readOnly.afterLock({ reuseDescribes: false, shareDescribes: slots !== undefined });
  return reconcileGroup(deps, fresh, group, after.state, options, signal, startedAt);
}

/**
 * The groups that need nothing: an existing record with no live lock, and a plan
 * without actions or a wait, decided on strongly consistent reads (the group records, the cluster's
 * heartbeats, facts and requests, the describe calls). A steady reconcile so writes nothing at all
 * (not even the lock of each group); whatever changes afterwards writes a record or sends an event
 * that triggers a reconcile of its own. Any doubt (a read failing) sends the group to the locked path.
 */
async function steadyGroups(
  deps: ReconcileDeps,
  view: ReconcileSnapshot,
  groups: readonly GroupConfig[],
  signal: AbortSignal,
): Promise<Map<string, GroupOutcome>> {
  const out = new Map<string, GroupOutcome>();
  const cluster = view.stored.config.cluster;
  let records: GroupState[];
  try {
    records = await deps.store.listGroups(cluster);
  } catch (e) {
    deps.log.warn('cannot list the group records; every group takes its lock', {
      cluster,
      error: errorMessage(e),
    });
    return out;
  }
  const byName = new Map(records.map((r) => [r.group, r]));
  await Promise.all(
    groups.map(async (group) => {
      const state = byName.get(group.name);
      if (!state || (state.lock && state.lock.expiresAt > deps.clock.now())) return;
      try {
        const obs = await observeGroup(deps, view, group, state, () => deps.clock.now(), signal);
        const plan = decide(obs);
        if (plan.actions.length > 0 || plan.requeueAfterMs !== undefined) return;
        logDecision(deps, cluster, state, plan);
        out.set(group.name, {
          group: group.name,
          status: 'converged',
          rounds: 1,
          actions: 0,
          epoch: state.epoch,
          owner: state.owner,
          phase: state.phase,
          desired: state.desired,
        });
      } catch {
        // The locked path reads again and reports the error.
      }
    }),
  );
  return out;
}

/**
 * A new acquisition name for each lock this process takes (unique with the holder's name, which
 * is unique per invocation); a counter rather than a random id keeps the simulation replayable.
 */
let acquisitions = 0;
const nextAcquisition = () => String(++acquisitions);

type LockResult = { state: GroupState } | { outcome: GroupOutcome };

/**
 * Takes the group's lock (kicking a busy holder once), or says why not, or, when the holder
 * neither lets go nor answers and its lock runs out before our deadline, how to wait for it
 * (`waitMs`, then `acquireAfterWait`). Never throws.
 */
async function lockGroup(
  deps: ReconcileDeps,
  config: ClusterConfig,
  group: GroupConfig,
  options: ReconcileOptions,
): Promise<LockResult | { waitMs: number; acquireAfterWait: () => Promise<LockResult> }> {
  const { store, clock, holder, log } = deps;
  const cluster = config.cluster;
  const outcome: GroupOutcome = { group: group.name, status: 'converged', rounds: 0, actions: 0 };
  const lockExpiresAt =
    options.deadline +
    lockBeyondDeadlineMs(
      options.lockSlackMs ?? DEFAULT_LOCK_SLACK_MS,
      deps.cloud.mutationWorstCaseMs,
      config.timing,
    );
  const failed = (e: unknown): LockResult => ({
    outcome: { ...outcome, status: 'error', error: toOutcomeError(e) },
  });
  const busyOutcome = (busy: unknown): LockResult => {
    log.info('group busy', {
      cluster,
      group: group.name,
      holder: busy instanceof LockBusyError ? busy.holder : 'unknown',
    });
    return { outcome: { ...outcome, status: 'busy' } };
  };
  const isBusy = (e: unknown) => e instanceof LockBusyError || e instanceof ConflictError;

  // Each attempt its own acquisition: see GroupLock.acquisition.
  const acquire = () =>
    store.acquireLock(
      cluster,
      initialGroupState(group, clock.now()),
      { holder, expiresAt: lockExpiresAt, acquisition: nextAcquisition() },
      clock.now(),
    );
  try {
    return { state: await acquire() };
  } catch (e) {
    if (!isBusy(e)) return failed(e);
  }
  // The holder re-reads before letting go when kicked, so what made us look will be seen.
  await store
    .kick(cluster, group.name)
    .catch((k) => log.warn('kick failed', { group: group.name, error: errorMessage(k) }));
  // Unless it let go just before the kick landed: then nobody would look. Try once more.
  let busy: unknown;
  try {
    return { state: await acquire() };
  } catch (again) {
    if (!isBusy(again)) return failed(again);
    busy = again;
  }
  // A holder that neither lets go nor answers the kick is dead or stalled: its lock runs out
  // at expiresAt. Wait for that (when it comes before our deadline) rather than leave the group
  // to the next trigger, which may be the 1-minute schedule.
  if (!(busy instanceof LockBusyError)) return busyOutcome(busy);
  const wait = busy.expiresAt - clock.now() + LOCK_EXPIRY_GRACE_MS;
  if (!(wait > 0 && clock.now() + wait < options.deadline - DEADLINE_MARGIN_MS)) return busyOutcome(busy);
  log.info("group busy; waiting for the holder's lock to run out", {
    cluster,
    group: group.name,
    holder: busy.holder,
    waitMs: wait,
  });
  return {
    waitMs: wait,
    acquireAfterWait: async () => {
      try {
        return { state: await acquire() };
      } catch (late) {
        return isBusy(late) ? busyOutcome(late) : failed(late);
      }
    },
  };
}

/** Rounds of observe, decide and execute on a group whose lock we hold; releases the lock. */
async function reconcileGroup(
  deps: ReconcileDeps,
  snapshot: ReconcileSnapshot,
  group: GroupConfig,
  locked: GroupState,
  options: ReconcileOptions,
  signal: AbortSignal,
  /** When the invocation started (controller clock): the audit's "decision" time is counted from it. */
  startedAt: number,
): Promise<GroupOutcome> {
  const { store, clock, holder, log } = deps;
  const cluster = snapshot.stored.config.cluster;
  const outcome: GroupOutcome = { group: group.name, status: 'converged', rounds: 0, actions: 0 };
  let state = locked;
  // The lock as we took it: a record whose lock is another acquisition is no longer ours.
  const mine: GroupLock = locked.lock ?? { holder, expiresAt: Number.NEGATIVE_INFINITY };

  const alerts: Promise<void>[] = [];
  let released = false;
  let view = snapshot;
  let lastPlanCache: DescribeCache = snapshot.planCache();
  let lastPlanFenced = false;
  try {
    const maxRounds = options.maxRounds ?? DEFAULT_MAX_ROUNDS;
    for (;;) {
      if (clock.now() >= options.deadline - DEADLINE_MARGIN_MS) {
        outcome.status = 'deadline';
        break;
      }
      if (outcome.rounds >= maxRounds) {
        outcome.status = 'unconverged';
        log.error('plan did not converge', { cluster, group: group.name, rounds: outcome.rounds });
        break;
      }
      if (outcome.rounds > 0) {
        const fresh = await store.getGroup(cluster, group.name);
        if (!fresh || !sameLockAcquisition(fresh.lock, mine)) {
          // Our lock expired and someone else took over: stop touching this group.
          outcome.status = 'deadline';
          break;
        }
        state = fresh;
      }
      // The first round shares the describe calls of every group; later rounds see what the
      // previous one changed (ReconcileSnapshot.next).
      view = outcome.rounds === 0 ? snapshot : view.next(lastPlanCache, lastPlanFenced);
      outcome.rounds++;
      const kickSeen = state.kick;
      const obs = await observeGroup(deps, view, group, state, () => clock.now(), signal);
      const plan = decide(obs);
      logDecision(deps, cluster, state, plan);

      if (plan.actions.length === 0) {
        const wait = plan.requeueAfterMs;
        if (
          wait !== undefined &&
          wait <= (options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS) &&
          clock.now() + wait < options.deadline - DEADLINE_MARGIN_MS
        ) {
          await sleepUnlessKicked(deps, cluster, group.name, mine, kickSeen, wait + 1, signal);
          continue;
        }
        if (wait !== undefined) {
          outcome.status = 'waiting';
          outcome.requeueAfterMs = wait;
        }
        if (await store.releaseLock(cluster, group.name, mine, kickSeen)) {
          released = true;
          break;
        }
        // Kicked while we decided: look once more.
        continue;
      }

      // Written beside the plan's first write, not before it (audit items sort by `at`): the
      // record of a decision is for `failoverctl events`, and the failover does not wait for it.
      alerts.push(
        audit(deps, {
          at: clock.now(),
          cluster,
          group: group.name,
          epoch: state.epoch,
          kind: 'decision',
          message: summarize(plan),
          data: { actions: plan.actions, reasons: plan.reasons, ...decisionContext(obs, startedAt) },
        }),
      );
      try {
        lastPlanCache = snapshot.planCache();
        lastPlanFenced = plan.actions.some((a) => a.type === 'fence-instance');
        state = await execute(deps, snapshot, group, plan, state, signal, alerts, lastPlanCache);
        outcome.actions += plan.actions.length;
      } catch (e) {
        if (e instanceof ConflictError) {
          log.warn('lost a race; deciding again on fresh state', {
            cluster,
            group: group.name,
            error: e.message,
          });
          continue;
        }
        throw e;
      }
    }
  } catch (e) {
    outcome.status = e instanceof DeadlineExceededError || signal.aborted ? 'deadline' : 'error';
    outcome.error = toOutcomeError(e);
    log.error('reconcile of group failed', { cluster, group: group.name, error: outcome.error });
  } finally {
    if (!released) {
      await within(CLEANUP_TIMEOUT_MS, store.releaseLock(cluster, group.name, mine, Number.NaN)).catch((e) =>
        log.warn('lock release failed; the lock runs out by itself', {
          group: group.name,
          error: errorMessage(e),
        }),
      );
    }
    await within(CLEANUP_TIMEOUT_MS, Promise.allSettled(alerts)).catch(() =>
      log.warn('alerts still in flight at the end of the reconcile', {
        group: group.name,
        count: alerts.length,
      }),
    );
  }
  outcome.epoch = state.epoch;
  outcome.owner = state.owner;
  outcome.phase = state.phase;
  outcome.desired = state.desired;
  return outcome;
}

/** An `activate` of a vip, eip or dns resource (independent of each other, unlike exec). */
function isEntryPointActivation(action: Action | undefined, group: GroupConfig): boolean {
  if (action?.type !== 'activate') return false;
  const resource = group.resources.find((r) => r.name === action.resource);
  return resource !== undefined && isEntryPoint(resource);
}

/** Applies one plan in order. Stops at the first failure, after recording it on the group. */
async function execute(
  deps: ReconcileDeps,
  snapshot: ReconcileSnapshot,
  group: GroupConfig,
  plan: Plan,
  initial: GroupState,
  signal: AbortSignal,
  alerts: Promise<void>[],
  /** The plan's own describe memo, shared by its actions (and handed to the next round). */
  cache: DescribeCache,
): Promise<GroupState> {
  const { store, cloud, clock, holder } = deps;
  const config = snapshot.stored.config;
  const cluster = config.cluster;
  // Actions read before they write on reads of their own (the `cache` of this plan), never on the
  // observation's, which may be seconds old by now.
  let state = initial;
  /** When the group last became Starting (a takeover, in this plan or an earlier one): failover.completed's start. */
  let startingSince = initial.phase === 'Starting' ? initial.phaseSince : undefined;
  const guard = () => ({ holder, epoch: state.epoch, now: clock.now() });
  const lockExpiresAt = initial.lock?.holder === holder ? initial.lock.expiresAt : Number.NEGATIVE_INFINITY;
  const worstCase = cloud.mutationWorstCaseMs;
  /** A mutating call may start now: before the deadline, and the lock outlasts its worst case. */
  const mayStart = () => {
    if (signal.aborted)
      throw new DeadlineExceededError(`reconcile deadline passed before a change to group ${group.name}`);
    if (!lockAllowsMutation(clock.now(), lockExpiresAt, worstCase, config.timing))
      throw new DeadlineExceededError(
        `the lock of group ${group.name} has ${lockExpiresAt - clock.now()} ms left, less than a change may take (${worstCase} ms) plus the controllers' clock skew (${config.timing.maxClockSkewMs} ms); leaving it to the next reconcile`,
      );
  };
  const mutation = (): MutationContext => ({
    cluster,
    group: group.name,
    epoch: state.epoch,
    holder,
    signal,
    beforeMutation: async () => {
      mayStart();
      await store.fence(cluster, group.name, guard());
      // The fence itself may have been slow: never start a mutation after the deadline, nor one
      // the lock would not outlast. (The abort signal is a timer: after a stall it fires late.)
      mayStart();
    },
    assertMayStart: mayStart,
  });
  /** After a resource action: a change that may have landed after the lock passed on is repaired. */
  const repairIfStale = async (what: string) => {
    const now = clock.now();
    if (!mutationMayBeStale(now, lockExpiresAt, config.timing)) return;
    deps.log.warn('a change may have landed after the lock expired; asking for a repair', {
      cluster,
      group: group.name,
      epoch: state.epoch,
      action: what,
      lockExpiredMsAgo: now - lockExpiresAt,
    });
    await store
      .requestRepair(
        cluster,
        group.name,
        holder,
        `${what} returned ${now - lockExpiresAt} ms after the lock of ${holder} expired`,
        now,
      )
      .catch((e) =>
        deps.log.error('cannot ask for a repair', { cluster, group: group.name, error: errorMessage(e) }),
      );
  };

  /** One resource action (or a hard fence); records a failure on the group before throwing it. */
  const runResourceAction = async (
    action: Extract<Action, { type: 'activate' | 'deactivate' | 'fence-instance' }>,
  ) => {
    let started = clock.now();
    try {
      const node = config.nodes.find((n) => n.name === action.node);
      if (!node)
        throw new NotFoundError('NODE_NOT_FOUND', `node ${action.node} is not in the cluster definition`);
      started = clock.now();
      let detail: string;
      if (action.type === 'fence-instance') {
        detail = (await cloud.stopInstance(node.instanceId, mutation())).detail;
      } else {
        const resource = group.resources.find((r) => r.name === action.resource);
        if (!resource)
          throw new NotFoundError(
            'RESOURCE_NOT_FOUND',
            `resource ${action.resource} is not in group ${group.name}`,
          );
        const driver = cloud.resources[resource.type];
        const req = { ...mutation(), cache, resource, node, config };
        detail = (await (action.type === 'activate' ? driver.activate(req) : driver.deactivate(req))).detail;
      }
      const ms = clock.now() - started;
      deps.log.info('action done', {
        cluster,
        group: group.name,
        epoch: state.epoch,
        action: describeAction(action),
        detail,
        ms,
      });
      // What AWS (or the node's command, with its output tail) answered, for `failoverctl events`;
      // written in the background like alerts, so that the failover does not wait for it.
      alerts.push(
        audit(deps, {
          at: clock.now(),
          cluster,
          group: group.name,
          epoch: state.epoch,
          kind: 'action',
          message: `${describeAction(action)} in ${ms} ms: ${detail}`,
          data: actionData(action, group, ms),
        }),
      );
    } catch (e) {
      if (e instanceof ConflictError || signal.aborted) throw e;
      const message = errorMessage(e);
      deps.log.error('action failed', {
        cluster,
        group: group.name,
        epoch: state.epoch,
        action: describeAction(action),
        error: message,
      });
      await audit(deps, {
        at: clock.now(),
        cluster,
        group: group.name,
        epoch: state.epoch,
        kind: 'action-failed',
        message: `${describeAction(action)}: ${message}`,
        data: actionData(action, group, clock.now() - started),
      });
      try {
        state = await store.updateGroup(
          cluster,
          group.name,
          guard(),
          patchForFailedAction(
            state,
            action,
            message,
            clock.now(),
            e instanceof FailoverError && e.retryable,
          ),
        );
      } catch (recordError) {
        deps.log.warn('could not record the failure', { error: errorMessage(recordError) });
      }
      throw e;
    } finally {
      await repairIfStale(describeAction(action));
    }
  };

  for (let i = 0; i < plan.actions.length; i++) {
    const action = plan.actions[i]!;
    switch (action.type) {
      case 'update':
        state = await store.updateGroup(cluster, group.name, guard(), action.set);
        if (state.phase === 'Starting') startingSince = state.phaseSince;
        break;
      case 'takeover':
        state = await store.updateGroup(cluster, group.name, guard(), action.set, true, action.pins);
        if (state.phase === 'Starting') startingSince = state.phaseSince;
        break;
      case 'activate': {
        // Entry points (vip, eip, dns) activated one after another in the plan do not depend on
        // each other: switch them at once, each behind its own epoch fence. The first failure in
        // plan order is the one reported; the others have been recorded on the group as well.
        const batch = [action];
        while (isEntryPointActivation(plan.actions[i + 1], group))
          batch.push(plan.actions[++i] as typeof action);
        if (batch.length === 1 || !isEntryPointActivation(action, group)) {
          for (const a of batch) await runResourceAction(a);
          break;
        }
        const settled = await Promise.allSettled(batch.map((a) => runResourceAction(a)));
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        break;
      }
      case 'deactivate':
      case 'fence-instance':
        await runResourceAction(action);
        break;
      case 'complete-request':
        await store.completeRequest(cluster, action.id, action.outcome, action.message, clock.now());
        await audit(deps, {
          at: clock.now(),
          cluster,
          group: group.name,
          kind: `request.${action.outcome}`,
          message: action.message,
        });
        alerts.push(
          notify(deps, {
            ...transitionEvent(
              config,
              group,
              plan,
              initial,
              state,
              {
                type: 'alert',
                kind: action.outcome === 'done' ? 'request.done' : 'request.rejected',
                message: action.message,
              },
              clock.now(),
              startingSince,
            ),
            reason: action.message,
          }),
        );
        break;
      case 'alert':
        alerts.push(
          notify(
            deps,
            transitionEvent(config, group, plan, initial, state, action, clock.now(), startingSince),
          ),
        );
        break;
    }
  }
  return state;
}

/** Publishing never blocks or fails a failover: errors are logged and dropped. */
function notify(deps: ReconcileDeps, event: TransitionEvent): Promise<void> {
  return deps.notifier
    .publish(event)
    .catch((e) =>
      deps.log.warn('could not publish transition', { kind: event.kind, error: errorMessage(e) }),
    );
}

async function audit(deps: ReconcileDeps, event: Parameters<StateStore['appendAudit']>[0]): Promise<void> {
  await deps.store
    .appendAudit(event)
    .catch((e) => deps.log.warn('could not write audit event', { error: errorMessage(e) }));
}

function logDecision(deps: ReconcileDeps, cluster: string, state: GroupState, plan: Plan): void {
  deps.log.info('decision', {
    cluster,
    group: plan.group,
    epoch: state.epoch,
    owner: state.owner,
    phase: state.phase,
    actions: plan.actions.map(describeAction),
    requeueAfterMs: plan.requeueAfterMs,
    observations: plan.reasons,
  });
}

export function describeAction(a: Action): string {
  switch (a.type) {
    case 'update':
      return `update(${Object.keys(a.set).join(',')})`;
    case 'takeover':
      return `takeover(${a.to ?? 'none'})`;
    case 'activate':
    case 'deactivate':
      return `${a.type}(${a.resource}@${a.node})`;
    case 'fence-instance':
      return `fence-instance(${a.node})`;
    case 'complete-request':
      return `complete-request(${a.id}:${a.outcome})`;
    case 'alert':
      return `alert(${a.kind})`;
  }
}

function summarize(plan: Plan): string {
  const main = plan.actions.find((a) => a.type !== 'alert' && a.type !== 'update') ?? plan.actions[0];
  return `${plan.actions.map(describeAction).join(' → ')}${main && 'why' in main ? `: ${main.why}` : ''}`;
}

function toOutcomeError(e: unknown): GroupOutcome['error'] {
  if (e instanceof FailoverError) return { code: e.code, message: e.message, retryable: e.retryable };
  return { code: 'INTERNAL', message: errorMessage(e), retryable: true };
}

/** An AbortSignal that fires at the controller-clock deadline. */
function deadlineSignal(clock: Clock, deadline: number): { signal: AbortSignal; cancel: () => void } {
  const controller = new AbortController();
  // Every in-flight call and wait of every group listens to it: no "possible leak" warning.
  setMaxListeners(0, controller.signal);
  const stop = new AbortController();
  clock.sleep(Math.max(0, deadline - clock.now()), stop.signal).then(
    () =>
      controller.abort(
        new DeadlineExceededError(
          `invocation deadline ${new Date(deadline).toISOString()} reached; in-flight calls aborted`,
        ),
      ),
    () => undefined,
  );
  return { signal: controller.signal, cancel: () => stop.abort() };
}

/**
 * What the audit's decision record keeps besides the plan, for the console's failover timeline:
 * when the invocation started (the decision took from then to now), who owned the group, when that
 * owner last renewed its lease (agent clock: the last sign of life before a silent failure), and the
 * request being answered.
 */
function decisionContext(obs: GroupObservation, startedAt: number): Record<string, unknown> {
  const owner = obs.state.owner;
  const lastRenewal = owner !== null ? obs.nodes[owner]?.heartbeat?.sentAt : undefined;
  const request = obs.requests[0];
  return {
    invokedAt: startedAt,
    owner,
    ...(lastRenewal !== undefined ? { ownerLastRenewalAt: lastRenewal } : {}),
    ...(request ? { request: { id: request.id, kind: request.kind, createdAt: request.createdAt } } : {}),
  };
}

/** Structured form of a resource action's audit record (what it did, where, on what, how long). */
function actionData(
  action: Extract<Action, { type: 'activate' | 'deactivate' | 'fence-instance' }>,
  group: GroupConfig,
  ms: number,
): Record<string, unknown> {
  const resource = 'resource' in action ? group.resources.find((r) => r.name === action.resource) : undefined;
  return {
    action: action.type,
    node: action.node,
    ms,
    ...(resource ? { resource: resource.name, resourceType: resource.type } : {}),
  };
}

/**
 * A transition as announced: the node it concerns, the previous owner, that node's instance, and
 * the reason (the takeover's own, or the decision's observations) beside the plan's message.
 */
function transitionEvent(
  config: StoredConfigLike,
  group: GroupConfig,
  plan: Plan,
  before: GroupState,
  after: GroupState,
  action: Extract<Action, { type: 'alert' }>,
  at: number,
  startingSince: number | undefined,
): TransitionEvent {
  const takeover = plan.actions.find((a) => a.type === 'takeover');
  const fenced = plan.actions.find((a) => a.type === 'fence-instance');
  const node =
    action.kind === 'node.fenced'
      ? fenced?.node
      : action.kind === 'group.stopped'
        ? (before.owner ?? before.lastOwner ?? undefined)
        : (after.owner ?? before.owner ?? before.lastOwner ?? undefined);
  const previousOwner = takeover ? before.owner : undefined;
  const instanceId = node ? config.nodes.find((n) => n.name === node)?.instanceId : undefined;
  const reason = takeover?.why ?? plan.actions.find((a) => a.type !== 'alert' && 'why' in a)?.why;
  return {
    kind: action.kind,
    cluster: config.cluster,
    group: group.name,
    epoch: after.epoch,
    message: action.message,
    at,
    ...(node ? { node } : {}),
    ...(previousOwner ? { previousOwner } : {}),
    ...(instanceId ? { instanceId } : {}),
    ...(reason ? { reason } : {}),
    ...(action.kind === 'failover.completed' && startingSince !== undefined
      ? { startedAt: startingSince }
      : {}),
  };
}

type StoredConfigLike = { cluster: string; nodes: readonly { name: string; instanceId: string }[] };

/**
 * Sleeps `ms` on the controller's clock, reading the group every KICK_POLL_MS: returns early when
 * it was kicked (the caller observes again) or when the lock is no longer ours.
 */
async function sleepUnlessKicked(
  deps: ReconcileDeps,
  cluster: string,
  group: string,
  mine: GroupLock,
  kickSeen: number,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const until = deps.clock.now() + ms;
  for (;;) {
    const left = until - deps.clock.now();
    if (left <= 0 || signal.aborted) return;
    await deps.clock.sleep(Math.min(left, KICK_POLL_MS), signal);
    if (deps.clock.now() >= until || signal.aborted) return;
    const fresh = await deps.store.getGroup(cluster, group).catch(() => undefined);
    if (fresh && (fresh.kick !== kickSeen || !sameLockAcquisition(fresh.lock, mine))) {
      deps.log.info('woken by a kick while waiting', { cluster, group, leftMs: until - deps.clock.now() });
      return;
    }
  }
}

/** `promise`, or a rejection after `ms` of real time (the promise itself is left to finish). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
