/**
 * The interfaces reconcile depends on. Adapters implement them for AWS (controller/state,
 * controller/resources, shared/aws, controller/notify) and tests implement them in memory.
 */
import type { ClusterConfig } from '../config/load';
import type { GroupConfig, NodeConfig, ResourceConfig } from '../config/schema';
import type {
  CheckResult,
  GroupLock,
  GroupState,
  Heartbeat,
  InstanceStatus,
  NodeFact,
  RequestView,
} from './model';
import type { AlertKind, GroupPatch, HeartbeatPin } from './plan';

export interface Clock {
  /** Wall clock, ms since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface Log {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

export interface StoredConfig {
  config: ClusterConfig;
  version: number;
  hash: string;
  appliedAt: number;
}

/** Identifies the writer of a group record: only the lock holder writes, at a known epoch. */
export interface WriteGuard {
  holder: string;
  epoch: number;
  /** Controller clock at the time of the write; the lock must not have expired by then. */
  now: number;
}

export interface AuditEvent {
  at: number;
  cluster: string;
  group?: string;
  node?: string;
  epoch?: number;
  kind: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface StateStore {
  getConfig(cluster: string): Promise<StoredConfig | undefined>;
  /** Strongly consistent. */
  getGroup(cluster: string, group: string): Promise<GroupState | undefined>;
  /** Every group record of the cluster, strongly consistent (one paged query). */
  listGroups(cluster: string): Promise<GroupState[]>;
  /**
   * Takes the per-group lock (creating the record from `initial` when missing). Throws
   * LockBusyError when another holder's lock has not expired.
   */
  acquireLock(cluster: string, initial: GroupState, lock: GroupLock, now: number): Promise<GroupState>;
  /**
   * Lets go of the lock unless the record was kicked since `kickSeen`; returns false when kicked
   * (the caller should decide once more) and true when released (or no longer ours: another
   * holder's, or another acquisition of the same holder).
   */
  releaseLock(cluster: string, group: string, lock: GroupLock, kickSeen: number): Promise<boolean>;
  /** Tells the current lock holder that something changed and it should look again. */
  kick(cluster: string, group: string): Promise<void>;
  /**
   * Conditional update at `guard.epoch` by the lock holder; `bumpEpoch` makes it a takeover.
   * `pins`: atomically with it, each node's heartbeat item must still hold the pinned renewal;
   * otherwise nothing is written and ConflictError is thrown (decide again on fresh state).
   */
  updateGroup(
    cluster: string,
    group: string,
    guard: WriteGuard,
    patch: GroupPatch,
    bumpEpoch?: boolean,
    pins?: readonly HeartbeatPin[],
  ): Promise<GroupState>;
  /** The conditional epoch check made immediately before every mutation of AWS. */
  fence(cluster: string, group: string, guard: WriteGuard): Promise<void>;
  /** Strongly consistent reads of the nodes' heartbeat items. */
  getHeartbeats(cluster: string, nodes: readonly string[]): Promise<Record<string, Heartbeat>>;
  /** Pending requests, oldest first. */
  listRequests(cluster: string): Promise<RequestView[]>;
  /** Marks a pending request done or rejected; false if it was already completed. */
  completeRequest(
    cluster: string,
    id: string,
    outcome: 'done' | 'rejected',
    message: string,
    now: number,
  ): Promise<boolean>;
  getFacts(cluster: string): Promise<Record<string, NodeFact[]>>;
  appendAudit(event: AuditEvent): Promise<void>;
  /**
   * Asks for a reconcile of the group soon (an item the stream passes on): written by an invocation
   * whose change may have landed after it lost the lock, so that a fresh one checks the entry
   * points and repairs a stale change at once rather than at the next schedule.
   */
  requestRepair(cluster: string, group: string, by: string, why: string, now: number): Promise<void>;
}

export interface MutationContext {
  cluster: string;
  group: string;
  epoch: number;
  /** The invocation holding the group lock (shown in SSM comments and audit). */
  holder: string;
  /** Must be awaited immediately before every call that changes AWS; throws when the epoch is stale. */
  beforeMutation(): Promise<void>;
  /**
   * For a call that starts some time after its `beforeMutation` (a batched one waits for the other
   * items' fences): throws unless a call starting now is still covered (deadline not passed, the
   * lock outlasting the call's worst case). Absent: the caller's contexts never delay a call.
   */
  assertMayStart?(): void;
  signal: AbortSignal;
}

export interface ResourceRequest extends MutationContext {
  cache: DescribeCache;
  resource: ResourceConfig;
  node: NodeConfig;
  config: ClusterConfig;
}

export interface ActionOutcome {
  /** False when the resource was already in the wanted state (no mutating call was made). */
  changed: boolean;
  detail: string;
}

/** Memo of describe calls for one reconcile, shared by all groups (one call per kind). */
export type DescribeCache = Map<string, Promise<unknown>>;

export interface CheckRequest {
  cache: DescribeCache;
  /**
   * True when `cache` is shared by every group of the reconcile (their first round): a driver may
   * then read what all of them need in one call (e.g. the cluster's records of a hosted zone)
   * instead of one call per resource.
   */
  shared?: boolean;
  cluster: string;
  group: string;
  resource: ResourceConfig;
  /** The node that should hold the resource. */
  node: NodeConfig;
  config: ClusterConfig;
  signal: AbortSignal;
}

export interface ResourceDriver {
  activate(req: ResourceRequest): Promise<ActionOutcome>;
  deactivate(req: ResourceRequest): Promise<ActionOutcome>;
  check(req: CheckRequest): Promise<CheckResult>;
  /** `failoverctl doctor`: whether the account is ready for this resource (read-only, DryRun). */
  preflight?(ctx: PreflightContext): Promise<void>;
}

/** What a driver's preflight looks at and reports to (`failoverctl doctor`). */
export interface PreflightContext {
  config: ClusterConfig;
  group: GroupConfig;
  resource: ResourceConfig;
  /** The group's nodes, in priority order. */
  members: NodeConfig[];
  /** "<group>/<resource>", the start of every check's name. */
  label: string;
  cache: DescribeCache;
  signal: AbortSignal;
  /** One finding: what was looked at, and, when it failed, what to do. */
  report(status: 'ok' | 'warn' | 'fail', check: string, detail: string): void;
  /** Whether the role in use may make this call (sent with DryRun). */
  dryRun(check: string, call: () => Promise<unknown>): Promise<void>;
}

export interface Cloud {
  resources: Record<ResourceConfig['type'], ResourceDriver>;
  /** One call for all instances of a reconcile. Missing ids are unknown. */
  describeInstances(
    instanceIds: readonly string[],
    signal: AbortSignal,
  ): Promise<Record<string, InstanceStatus>>;
  /** One call for all zones of a reconcile. */
  describeZones(zones: readonly string[], signal: AbortSignal): Promise<Record<string, string>>;
  /** Hard fence (StopInstances with force). */
  stopInstance(instanceId: string, ctx: MutationContext): Promise<ActionOutcome>;
  /**
   * The longest one mutating call may take, every attempt timing out (shared/config/timing.ts
   * mutationWorstCaseMs): reconcile starts none unless its lock outlasts it.
   */
  readonly mutationWorstCaseMs: number;
}

/** A transition reconcile announces (EventBridge, SNS, the audit log); schema/transition-event.schema.json. */
export interface TransitionEvent {
  kind: AlertKind;
  cluster: string;
  group?: string;
  epoch?: number;
  message: string;
  /** Controller clock (ms) of the transition. */
  at: number;
  /** The node it concerns: the new owner of a failover, the fenced node, the node a monitor blames. */
  node?: string;
  /** The owner before a change of owner. */
  previousOwner?: string;
  /** EC2 instance of `node`. */
  instanceId?: string;
  /** Why, in the controller's words (the takeover's reason, the request's outcome). */
  reason?: string;
  /** For failover.completed: when the failover started (the takeover), so its duration is known. */
  startedAt?: number;
}

export interface Notifier {
  publish(event: TransitionEvent): Promise<void>;
}
