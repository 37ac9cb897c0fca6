/**
 * The domain model shared by the controller, the agent and the CLI. Plain data, no behaviour.
 *
 * Who writes what (one DynamoDB table, see controller/state):
 * - GroupState: reconcile only, under the per-group lock, every write conditional on the epoch.
 * - Heartbeat: the node's own agent only.
 * - Request: failoverctl; reconcile marks it done once.
 */
import type { ClusterConfig } from '../config/load';
import type { GroupConfig, NodeConfig } from '../config/schema';

export type Phase = 'Offline' | 'Starting' | 'Online' | 'Stopping' | 'Failed';
/** auto: reconcile acts; maintenance: reconcile observes and reports but changes nothing. */
export type GroupMode = 'auto' | 'maintenance';

export interface GroupLock {
  /** Invocation that holds the lock (Lambda request id or CLI run id). */
  holder: string;
  /** Controller wall clock (ms). The holder aborts in-flight calls before this. */
  expiresAt: number;
  /**
   * Which of the holder's acquisitions this is. A holder may take its lock again (a retry inside
   * its invocation); the release of an earlier acquisition that was given up on but still lands
   * must not remove the later one. Absent in locks of older controller versions.
   */
  acquisition?: string;
}

/** `current` is the very acquisition `mine` of the lock (same holder, same acquisition). */
export function sameLockAcquisition(current: GroupLock | undefined, mine: GroupLock): boolean {
  return current?.holder === mine.holder && current.acquisition === mine.acquisition;
}

/** What a node that may be dead was last seen doing, recorded by reconcile (controller clock). */
export interface Suspect {
  token: string;
  firstSeenAt: number;
}

export interface GroupState {
  group: string;
  /** Bumped by every change of owner. Every action carries it; a stale epoch is refused everywhere. */
  epoch: number;
  /** The node that runs (or is becoming active for) the group; null when the group is stopped. */
  owner: string | null;
  phase: Phase;
  phaseSince: number;
  mode: GroupMode;
  /** Whether the operator (or autoStart) wants the group running. */
  desired: 'online' | 'offline';
  /**
   * Nodes that may still be running the group's resources: a node is added *before* anything is
   * started there and removed only on evidence that it stopped. Promotion of a new owner waits until
   * this holds no other node: demote before promote.
   */
  mayRun: string[];
  /** Restart and failover counters per monitor (and per resource activation: `activate:<res>`). */
  restarts: Record<string, number>;
  failovers: Record<string, number>;
  /** When a resource was last restarted because of a monitor (ignore that monitor's errors briefly). */
  restartedAt: Record<string, number>;
  /** Nodes this group must not use for a while (repeated failures there); expire after stableAfterMs. */
  blocked: Record<string, { reason: string; at: number }>;
  /** Failed stop attempts per node (a failed stop is an error, never "not running"). */
  stopFailures: Record<string, number>;
  suspects: Record<string, Suspect>;
  /** Last owner, so that stopping the group can take its entry points off it. */
  lastOwner: string | null;
  /** Online and without errors since (controller clock); resets counters after stableAfterMs. */
  healthySince: number | null;
  /** Final action already taken for this incident (no repeat until the group is healthy again). */
  finalActionTaken: boolean;
  lastError: string | null;
  /** Last status per monitor, so that alerts fire on transitions only. */
  monitors: Record<string, { status: MonitorStatus; detail: string; since: number }>;
  /** Per-group lock; absent when free. */
  lock?: GroupLock;
  /** Bumped by invocations that found the lock busy: the holder re-reads before it lets go. */
  kick: number;
  updatedAt: number;
}

export type MonitorStatus = 'ok' | 'warn' | 'error' | 'unknown';

export interface MonitorReport {
  status: MonitorStatus;
  detail?: string;
  /** Consecutive failures. */
  failures?: number;
  /** Agent wall clock of the last status change. */
  since?: number;
}

export type AgentGroupState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** One node's lease renewal and report, written by its agent only. */
export interface Heartbeat {
  cluster: string;
  node: string;
  /** Identifies this renewal: `<incarnation>/<seq>`. Changes with every write. */
  token: string;
  seq: number;
  incarnation: string;
  /** Agent wall clock when the renewal was sent. */
  sentAt: number;
  leaseMs: number;
  agentVersion: string;
  /**
   * running: normal; fenced: lost its lease and stops everything; leaving: planned shutdown under
   * way (done once every group it reports is stopped).
   */
  state: 'running' | 'fenced' | 'leaving';
  /** Why this write happened; plain periodic renewals do not invoke reconcile (stream filter). */
  reason: 'periodic' | 'change';
  monitors: Record<string, MonitorReport>;
  /** All witnesses failed: this node is probably cut off. */
  isolated: boolean;
  witnesses?: { target: string; ok: boolean; detail?: string }[];
  /** Per group: the epoch the agent last saw and what runs there. */
  groups: Record<string, { epoch: number; state: AgentGroupState }>;
  /**
   * Peers' renewals this agent has watched: how long (its monotonic clock) the peer's token has
   * stayed the same since this agent first read it. Clock-skew free evidence of a silent peer.
   */
  peers: Record<string, { token: string; silentForMs: number }>;
  spot?: { action: string; time: string };
  rebalance?: { noticeTime: string };
  /**
   * What this node's silence guarantees (shared/core/liveness.ts): with `watchdogMs`, an armed
   * watchdog resets the node by the end of its lease if something still runs; otherwise its
   * self-fence may take up to `maxStopMs` after the fence starts.
   */
  fence?: { maxStopMs: number; watchdogMs?: number };
  /**
   * A stored definition version this agent refused to adopt (it runs on the last good one) and
   * why: a definition written to the table without `failoverctl apply`'s validation.
   */
  rejectedConfig?: { version: number; problem: string };
}

export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

/** An instance as EC2 describes it. */
export interface InstanceStatus {
  state: InstanceState;
  /** EC2 status checks: false when impaired, undefined when unknown. */
  statusOk?: boolean;
}

/** An instance as one reconcile saw it, and when. */
export interface InstanceView extends InstanceStatus {
  /**
   * Controller-clock time just before the describe call was sent. A stopped instance may be started
   * again after it: a `stopped` state proves nothing about a renewal sent later (liveness.ts).
   */
  describedAt: number;
}

/** A fact carried by an event (Spot interruption, rebalance, Health), stored until it expires. */
export interface NodeFact {
  kind: 'spot-interruption' | 'rebalance' | 'instance-state' | 'health';
  at: number;
  detail: string;
  /** instance-state: the state EC2 reported (stopping, stopped, shutting-down, terminated). */
  state?: string;
}

export type CheckStatus = 'ok' | 'drift' | 'error';

/** Result of a controller-side check of an entry point or an AWS-side condition. */
export interface CheckResult {
  status: CheckStatus;
  detail: string;
  /** A typed error code when status is `error` (an API failure, not a wrong answer). */
  code?: string;
}

export type RequestKind = 'move' | 'start' | 'stop' | 'suspend' | 'resume';

export interface RequestView {
  id: string;
  kind: RequestKind;
  group: string;
  to?: string;
  createdAt: number;
  by?: string;
}

export interface NodeObservation {
  config: NodeConfig;
  /**
   * The longest the node's self-fence may take by the definition (the stop budgets of the groups it
   * may run): what its silence must cover when its heartbeat does not say (older agents).
   */
  stopBudgetMs: number;
  heartbeat?: Heartbeat;
  /** undefined: unknown (the describe call failed or was not made). */
  instance?: InstanceView;
  azState?: string;
  facts: NodeFact[];
}

/** Everything decide() looks at for one group, read fresh by reconcile. */
export interface GroupObservation {
  /** When the decision is made (controller clock): first sights, liveness, what to wait for. */
  now: number;
  /**
   * When the read of the heartbeats this observation holds was sent (controller clock, at or before
   * `now`). What the read shows held at some moment after it, not at `now`: a renewal may land
   * while the rest of the observation is still coming back (a throttled read retried, a slow
   * describe), so a proof that a renewal is still the current one is taken at this time, never later.
   */
  readAt: number;
  /**
   * When that read came back (between `readAt` and `now`). Liveness is judged at this time: a node
   * whose renewal was recent then is not taken for dead because another read of the observation
   * was slow. (A wrong "alive" is safe: its stop goes through its guard, and a failed stop counts.)
   */
  heardAt: number;
  config: ClusterConfig;
  group: GroupConfig;
  state: GroupState;
  nodes: Record<string, NodeObservation>;
  /** Pending requests for this group, oldest first. */
  requests: RequestView[];
  /** Checks of entry-point resources on the owner (only while it should be serving). */
  checks: Record<string, CheckResult>;
  /** API failures of the shared describe calls, by kind (`instance`, `az`). */
  apiErrors: Partial<Record<'instance' | 'az', string>>;
}

/** A fresh group record for a group reconcile has never touched. */
export function initialGroupState(group: GroupConfig, now: number): GroupState {
  return {
    group: group.name,
    epoch: 0,
    owner: null,
    phase: 'Offline',
    phaseSince: now,
    mode: 'auto',
    desired: group.autoStart ? 'online' : 'offline',
    mayRun: [],
    restarts: {},
    failovers: {},
    restartedAt: {},
    blocked: {},
    stopFailures: {},
    suspects: {},
    lastOwner: null,
    healthySince: null,
    finalActionTaken: false,
    lastError: null,
    monitors: {},
    kick: 0,
    updatedAt: now,
  };
}
