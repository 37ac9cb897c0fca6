/**
 * Every interval the no-split-brain argument rests on, derived in one place from the definition's
 * timing and the node's reported facts. The validator, the agent, the guard, the controller and the
 * simulation all call these functions; nothing else does lease arithmetic (test/unit/timing-owner).
 * Import-free on purpose: the agent bundle and the schema both read it.
 *
 * Timeline of one acknowledged renewal sent at s (the agent's CLOCK_MONOTONIC), lease L, fence
 * margin M, watchdog timeout S (softdog soft_margin):
 *
 *   s                         s+L-M                      s+L
 *   |--- guard admits starts --|=== self-fence: stop ======|  controller may promote a peer once
 *   |--- watchdog fed while something runs only if t+S <= s+L --|  the silence is proven (below)
 *
 * - Fence deadline s+L-M: the agent stops everything that runs here; the guard admits no start.
 * - Lease end s+L: with an armed watchdog the node is stopped or reset by then, whatever the agent
 *   does: a feed while something may run is only made if the lease outlasts the timeout, and a feed
 *   while nothing runs ("idle feed") is announced in agent.json first (`idleFeedBound`) so that the
 *   guard admits no start that an idle feed could outlive (`watchdogProblem`).
 * - The controller never compares two monotonic clocks: a peer's (or its own) first read F of the
 *   renewal token satisfies s <= F, so a silence of `requiredSilenceMs` measured from F proves the
 *   node has stopped. A wall-clock comparison (the node's own `sentAt` against the controller's
 *   clock) adds `maxClockSkewMs`.
 */

/** Lease timing with every default resolved (see shared/config/schema.ts for meanings). */
export interface Timing {
  heartbeatIntervalMs: number;
  leaseMs: number;
  maxClockSkewMs: number;
  fenceMarginMs: number;
  /**
   * While a renewal is unacknowledged the agent sends another this often, instead of waiting a
   * whole heartbeat interval. Resolved by the definition's loader; absent in older stored timings.
   */
  heartbeatRetryMs?: number;
}

/**
 * The accepted range of each timing field, in ms: the schema checks them, and the agent checks a
 * stored definition against them again before adopting it (a lease near 1e12 would overflow timers).
 */
export const TIMING_LIMITS = {
  heartbeatIntervalMs: { min: 100, max: 60_000 },
  leaseMs: { min: 300, max: 600_000 },
  maxClockSkewMs: { min: 0, max: 10_000 },
  fenceMarginMs: { min: 1, max: 600_000 },
  heartbeatRetryMs: { min: 50, max: 60_000 },
} as const satisfies Record<keyof Timing, { min: number; max: number }>;

/** The longest delay setTimeout honours (2^31 - 1 ms); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Renewals lost in a row that a valid timing must survive without the agent fencing itself. */
export const TOLERATED_LOST_RENEWALS = 3;

/** Default retry interval of an unacknowledged renewal: half a heartbeat, at most 250 ms. */
export function defaultHeartbeatRetryMs(heartbeatIntervalMs: number): number {
  return Math.max(50, Math.min(250, Math.floor(heartbeatIntervalMs / 2)));
}

/** How soon an unacknowledged renewal is retried (the definition's value, else the default). */
export function heartbeatRetryMs(timing: Pick<Timing, 'heartbeatIntervalMs' | 'heartbeatRetryMs'>): number {
  return timing.heartbeatRetryMs ?? defaultHeartbeatRetryMs(timing.heartbeatIntervalMs);
}

/** Default fence margin: 1 s for the stop scripts to finish before the lease ends, at most lease/3. */
export function defaultFenceMarginMs(leaseMs: number): number {
  return Math.max(1, Math.min(1000, Math.floor(leaseMs / 3)));
}

/**
 * Time from the last acknowledged renewal until the renewal after `lost` lost ones is sent: the
 * next heartbeat, then one retry per lost renewal after the first.
 */
export function renewalAfterLostMs(heartbeatIntervalMs: number, retryMs: number, lost: number): number {
  return heartbeatIntervalMs + lost * retryMs;
}

/**
 * Why a timing cannot hold TOLERATED_LOST_RENEWALS lost renewals before the fence deadline (the
 * shortest lease that would), or undefined when it can.
 */
export function lostRenewalsProblem(
  t: Timing,
  explicitMargin: boolean,
): { neededMs: number; minLeaseMs: number; fenceAfterMs: number } | undefined {
  const retry = heartbeatRetryMs(t);
  const needed = renewalAfterLostMs(t.heartbeatIntervalMs, retry, TOLERATED_LOST_RENEWALS);
  const fenceAfterMs = t.leaseMs - t.fenceMarginMs;
  if (fenceAfterMs >= needed) return undefined;
  const minLeaseMs = explicitMargin
    ? needed + t.fenceMarginMs
    : needed + 1000 >= 3000
      ? needed + 1000
      : Math.ceil(needed * 1.5);
  return { neededMs: needed, minLeaseMs, fenceAfterMs };
}

// ------------------------------------------------------------------------------------------------
// The node: fence deadline, lease end, watchdog feeding, guard admission

/** One acknowledged renewal: when it was sent (agent's monotonic clock) and the timing it carried. */
export interface AckedRenewal {
  sentMono: number;
  leaseMs: number;
  fenceMarginMs: number;
}

/** The self-fence deadline of a renewal: stop everything, admit nothing, from here on. */
export function fenceDeadlineMono(r: AckedRenewal): number {
  return r.sentMono + r.leaseMs - r.fenceMarginMs;
}

/** The end of a renewal's lease: by then the node has stopped (or been reset) if it has not renewed. */
export function leaseEndMono(r: AckedRenewal): number {
  return r.sentMono + r.leaseMs;
}

/** The lease end written next to a fence deadline in agent.json (the margin is written too). */
export function leaseEndFromDeadline(deadlineMono: number, fenceMarginMs: number): number {
  return deadlineMono + fenceMarginMs;
}

/** A feed at `nowMono` keeps the watchdog quiet until at most the lease end: allowed whatever runs. */
export function leaseCoversFeed(nowMono: number, watchdogMs: number, leaseEnd: number): boolean {
  return nowMono + watchdogMs <= leaseEnd;
}

/**
 * An idle feed (nothing runs here) must be made within this long of its announcement in agent.json;
 * a later one is skipped and announced again.
 */
export const IDLE_FEED_WINDOW_MS = 100;

/** What agent.json announces before an idle feed: no reset before this time is promised. */
export function idleFeedBound(nowMono: number, watchdogMs: number): number {
  return nowMono + IDLE_FEED_WINDOW_MS + watchdogMs;
}

/** An announced idle feed may still be made at `nowMono` (its reset stays within the bound). */
export function idleFeedAllowed(nowMono: number, watchdogMs: number, announcedBound: number): boolean {
  return nowMono + watchdogMs <= announcedBound;
}

/**
 * Whether a device timeout suits the lease: a feed covered by the lease must be possible between an
 * acknowledgement and the fence deadline, or a node running a group would be reset while healthy.
 */
export function watchdogFits(watchdogMs: number, t: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>): boolean {
  return watchdogMs > 0 && watchdogMs <= t.leaseMs - t.fenceMarginMs;
}

/** The largest softdog soft_margin (whole seconds) that suits the lease; 0 when none does. */
export function largestFittingWatchdogSec(t: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>): number {
  return Math.floor((t.leaseMs - t.fenceMarginMs) / 1000);
}

/** The watchdog is fed every quarter of its timeout, between 100 ms and 1 s. */
export function watchdogFeedIntervalMs(watchdogMs: number): number {
  return Math.min(1000, Math.max(100, Math.floor(watchdogMs / 4)));
}

/**
 * agent.json's deadline is rewritten when it has moved this far (it is never later than the real
 * one, so the guard may refuse a little early, never start late).
 */
export function leaseFileRewriteMs(t: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>): number {
  return (t.leaseMs - t.fenceMarginMs) / 4;
}

/**
 * Why the watchdog's promise would not cover a start admitted now, or undefined when it does: an
 * idle feed announced in agent.json (`idleFeedResetBy`) may keep the node alive past the lease end,
 * so a start admitted now could outlive the lease if the agent froze. Without a watchdog the guard
 * relies on the self-fence alone (the controller then waits for the stop scripts too).
 */
export function watchdogProblem(lease: {
  leaseUntilMono: number;
  fenceMarginMs: number;
  idleFeedResetBy?: number;
}): string | undefined {
  if (lease.idleFeedResetBy === undefined) return undefined;
  const leaseEnd = leaseEndFromDeadline(lease.leaseUntilMono, lease.fenceMarginMs);
  if (lease.idleFeedResetBy <= leaseEnd) return undefined;
  return `the watchdog was last fed while nothing ran here and may not reset the node until ${Math.round(lease.idleFeedResetBy - leaseEnd)} ms after the lease ends; wait for the next renewal`;
}

/** Per-call timeouts of the daemon: a third of lease - fenceMargin, between 250 ms and 3 s. */
export function daemonCallTimeouts(timing: Pick<Timing, 'leaseMs' | 'fenceMarginMs'> | undefined): {
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
} {
  const request = timing
    ? Math.min(3000, Math.max(250, Math.floor((timing.leaseMs - timing.fenceMarginMs) / 3)))
    : 2000;
  return { requestTimeoutMs: request, connectionTimeoutMs: Math.min(1000, request) };
}

/** While a transition is seen the agent reads the cluster every retry interval for this long. */
export function fastFollowMs(t: Pick<Timing, 'leaseMs'>): number {
  return 2 * t.leaseMs;
}

// ------------------------------------------------------------------------------------------------
// The controller: liveness and the silence that proves a stop

/** The lease the controller applies to a node: the longer of its own and the cluster's. */
export function effectiveLeaseMs(reportedLeaseMs: number, t: Pick<Timing, 'leaseMs'>): number {
  return Math.max(Number(reportedLeaseMs) || 0, t.leaseMs);
}

/**
 * How old (controller clock minus the node's `sentAt`) a renewal may be while the node still counts
 * as alive: its lease plus the clock skew.
 */
export function liveWindowMs(reportedLeaseMs: number, t: Pick<Timing, 'leaseMs' | 'maxClockSkewMs'>): number {
  return effectiveLeaseMs(reportedLeaseMs, t) + t.maxClockSkewMs;
}

/** What a node's heartbeat promises about its silence (model.ts Heartbeat.fence). */
export interface FencePromise {
  maxStopMs: number;
  watchdogMs?: number;
}

/** Whether the node's reported watchdog suits its lease (an unsuitable one is not relied on). */
export function reliesOnWatchdog(
  promise: FencePromise | undefined,
  reportedLeaseMs: number,
  t: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>,
): boolean {
  const w = promise?.watchdogMs;
  if (w === undefined) return false;
  return watchdogFits(w, { leaseMs: effectiveLeaseMs(reportedLeaseMs, t), fenceMarginMs: t.fenceMarginMs });
}

/**
 * The silence (since the first read of the node's current renewal) after which the node has
 * certainly finished fencing: the lease when a suitable watchdog is armed (it resets the node by
 * the lease end); otherwise the lease plus the longest its stop scripts may take.
 */
export function requiredSilenceMs(
  promise: FencePromise | undefined,
  reportedLeaseMs: number,
  t: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>,
  fallbackStopMs: number,
): number {
  const lease = effectiveLeaseMs(reportedLeaseMs, t);
  if (reliesOnWatchdog(promise, reportedLeaseMs, t)) return lease;
  return lease + (promise?.maxStopMs ?? fallbackStopMs);
}

/**
 * The node's own send time (its wall clock) is old enough, by the controller's clock, for the
 * silence: evidence that no other node can forge (only the node writes its item).
 */
export function sentLongAgo(
  sentAt: number,
  neededMs: number,
  now: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): boolean {
  return now - sentAt >= neededMs + t.maxClockSkewMs;
}

/** When `sentLongAgo` becomes true: milliseconds from `now` (0 when it already is). */
export function sentLongAgoInMs(
  sentAt: number,
  neededMs: number,
  now: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): number {
  return Math.max(0, sentAt + neededMs + t.maxClockSkewMs - now);
}

/** The controller's own first sight of a token, held long enough (its clocks differ by the skew). */
export function controllerSawSilence(
  firstSeenAt: number,
  neededMs: number,
  now: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): boolean {
  return now - firstSeenAt >= neededMs + t.maxClockSkewMs;
}

/** Milliseconds until `controllerSawSilence` becomes true (0 when it already is). */
export function controllerSawSilenceInMs(
  firstSeenAt: number,
  neededMs: number,
  now: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): number {
  return Math.max(0, firstSeenAt + neededMs + t.maxClockSkewMs - now);
}

/**
 * The node's renewal was sent before `since` (controller clock), whatever the skew between them: no
 * later renewal of it has been read yet.
 */
export function sentBefore(sentAt: number, since: number, t: Pick<Timing, 'maxClockSkewMs'>): boolean {
  return sentAt + t.maxClockSkewMs < since;
}

/** The node's renewal was sent after `since` (controller clock), whatever the skew between them. */
export function sentAfter(sentAt: number, since: number, t: Pick<Timing, 'maxClockSkewMs'>): boolean {
  return sentAt > since + t.maxClockSkewMs;
}

/**
 * How long after a start (or a restart) the owner's own report of its group is trusted to reflect
 * it: two renewals, plus the skew between the agent's and the controller's clocks.
 */
export function reportGraceMs(t: Pick<Timing, 'heartbeatIntervalMs' | 'maxClockSkewMs'>): number {
  return 2 * t.heartbeatIntervalMs + t.maxClockSkewMs;
}

/**
 * A mutating AWS call may start only while the invocation's lock outlasts its worst case: every
 * attempt timing out, plus the slack for the server to apply a request the client gave up on.
 */
export const MUTATION_SERVER_SLACK_MS = 1_000;

export function mutationWorstCaseMs(call: { maxAttempts: number; attemptTimeoutMs: number }): number {
  return call.maxAttempts * call.attemptTimeoutMs + MUTATION_SERVER_SLACK_MS;
}

/**
 * How long a reconcile's lock outlives its deadline: the configured slack, and at least the worst
 * case of a mutating call started right before the deadline, so that the rule below never ends an
 * invocation's useful time early.
 *
 *   invocation start          deadline                 lock expiresAt
 *     |── mutations allowed ─────|── worst case of a call ──|
 */
export function lockBeyondDeadlineMs(
  slackMs: number,
  worstCaseMs: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): number {
  return Math.max(slackMs, worstCaseMs + t.maxClockSkewMs);
}

/**
 * A mutating call may start now only if the lock outlasts its worst case on every controller's
 * clock: another invocation may take the lock once ITS clock passes expiresAt, up to the skew
 * before ours does.
 *
 *   now            now + worst case      expiresAt − skew (another clock)   expiresAt (ours)
 *    |── the call ──────|                         |── the lock may pass on ──|
 */
export function lockAllowsMutation(
  now: number,
  lockExpiresAt: number,
  worstCaseMs: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): boolean {
  return lockExpiresAt - now > worstCaseMs + t.maxClockSkewMs;
}

/**
 * After a mutating call returns: it may have landed after another invocation took the lock (the
 * invocation stalled between its checks and the call: GC, a suspended process), so the change may
 * be stale. Another invocation may take the lock once ITS clock passes expiresAt, and the clocks of
 * two invocations differ by up to the skew.
 */
export function mutationMayBeStale(
  nowAfter: number,
  lockExpiresAt: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): boolean {
  return nowAfter >= lockExpiresAt - t.maxClockSkewMs;
}

// ------------------------------------------------------------------------------------------------
// The standby: when it reads its peers (never what a read proves)

/**
 * How long after a peer's renewal is due the standby reads it: the time for the write to land.
 * A read that comes too early only costs a re-check (below).
 */
export const RENEWAL_READABLE_AFTER_MS = 50;

/**
 * How long before a peer's silence is proven its watcher says it doubts it (a change report): the
 * controller, woken by that report, already holds the group's lock and waits for the moment the
 * proof can come (the silent node's send time a lease plus the skew old), instead of being woken
 * only by the proof itself, through the stream (up to 250 ms), a read of the cluster and the lock
 * (about 0.2 s on the emulator). Speed only: a doubt proves nothing.
 */
export const PEER_DOUBT_LEAD_MS = 750;

/**
 * A peer's claim of silence is no longer than the silent node's own send time allows (its renewal's
 * age by the controller's clock, plus the skew): an honest peer first read the renewal after it was
 * sent. Used for doubts (speed only); proofs have their own rule (`sentLongAgo`).
 */
export function claimFitsSendTime(
  silentForMs: number,
  sentAt: number,
  now: number,
  t: Pick<Timing, 'maxClockSkewMs'>,
): boolean {
  return silentForMs <= now - sentAt + t.maxClockSkewMs;
}

/** The silence (since the first read of a peer's renewal) after which its watcher reports a doubt. */
export function peerDoubtAfterMs(leaseMs: number): number {
  return Math.max(leaseMs / 2, leaseMs - PEER_DOUBT_LEAD_MS);
}

/** The first re-check of an overdue renewal comes this soon (it may just have landed late). */
export const OVERDUE_FIRST_RECHECK_MS = 100;

/**
 * Re-checks of a peer's overdue renewal: one soon, then one per retry interval, as many as the
 * peer's agent retries a lost renewal before its lease is at risk. After that the standby waits for
 * the lease (its expiry timer), reading only at its heartbeat.
 */
export const OVERDUE_RENEWAL_RECHECKS = 1 + TOLERATED_LOST_RENEWALS;

/**
 * When a peer's next renewal should be readable, on the peer's wall clock: the next tick of its
 * heartbeat after `lastSentWall`, counted from `anchorWall` (the send time of a periodic renewal:
 * its ticks keep their phase, a change report in between does not move them), plus the time the
 * write takes to land. It only says when to look (a clock that is off makes the look early or late,
 * never the silence proof wrong: that is measured from the look's own monotonic time).
 *
 *   anchor            anchor + H            anchor + 2H
 *     |── (a change) ─────|+landed: read           |
 */
export function nextRenewalReadableWall(
  anchorWall: number,
  lastSentWall: number,
  heartbeatIntervalMs: number,
  landingMs = RENEWAL_READABLE_AFTER_MS,
): number {
  const ticks = Math.max(1, Math.floor((lastSentWall - anchorWall) / heartbeatIntervalMs) + 1);
  return anchorWall + ticks * heartbeatIntervalMs + landingMs;
}

/**
 * The landing time to allow for a peer's next renewal, learnt from the last one: when it had to be
 * re-checked (it was not readable when due), about as long as it took to be seen (`seenAfterSendMs`,
 * read completion minus send); when it was seen at the first look, a tenth less each time, down to
 * RENEWAL_READABLE_AFTER_MS. Never more than half a heartbeat. Only moves when the standby looks.
 */
export function nextLandingMs(
  landingMs: number,
  rechecked: boolean,
  seenAfterSendMs: number,
  heartbeatIntervalMs: number,
): number {
  const learnt = rechecked ? seenAfterSendMs : landingMs * 0.9;
  return Math.round(Math.min(heartbeatIntervalMs / 2, Math.max(RENEWAL_READABLE_AFTER_MS, learnt)));
}

/**
 * Milliseconds from now until a renewal readable at `dueWall` (the peer's wall clock), never more
 * than a heartbeat and the landing time away, whatever that clock says.
 */
export function renewalReadInMs(dueWall: number, nowWall: number, heartbeatIntervalMs: number): number {
  return Math.min(heartbeatIntervalMs + RENEWAL_READABLE_AFTER_MS, Math.max(0, dueWall - nowWall));
}

/**
 * The next renewal is not looked for sooner than half a heartbeat after the current one was first
 * seen, whatever the peer's clock says (a clock far behind would otherwise call for a read, and its
 * re-checks, right after every renewal): milliseconds from now.
 */
export function nextLookNotBeforeMs(
  firstSeenMono: number,
  nowMono: number,
  heartbeatIntervalMs: number,
): number {
  return Math.max(0, firstSeenMono + heartbeatIntervalMs / 2 - nowMono);
}

/**
 * When to re-check an overdue renewal, in ms after the read that found it overdue (`misses` such
 * reads so far), or undefined once the re-checks are spent.
 */
export function overdueRecheckMs(
  misses: number,
  t: Pick<Timing, 'heartbeatIntervalMs' | 'heartbeatRetryMs'>,
): number | undefined {
  if (misses < 1 || misses > OVERDUE_RENEWAL_RECHECKS) return undefined;
  return misses === 1 ? OVERDUE_FIRST_RECHECK_MS : heartbeatRetryMs(t);
}

/** A read of the cluster at least once per heartbeat: half an interval after the renewal, when no peer's renewal is due sooner. */
export function fallbackReadDelayMs(t: Pick<Timing, 'heartbeatIntervalMs'>): number {
  return Math.floor(t.heartbeatIntervalMs / 2);
}
