/**
 * What the web console's server sends its page: one snapshot of every cluster in the table, as
 * plain JSON. Shared by the server (cli/console/snapshot.ts) and the page (cli/console/page/): no
 * imports, so that the page's own type check (DOM, no Node) can read it.
 */

export type Health = 'ok' | 'degraded' | 'critical';

export interface ConsoleView {
  /** Server clock (ms) when the snapshot was read: the page counts lease ages from it. */
  serverNow: number;
  table: string;
  readOnly: boolean;
  clusters: ClusterView[];
  /** Problems reading the table (credentials, region, throttling), shown as a banner. */
  error?: string;
}

export interface ClusterView {
  name: string;
  region: string;
  configVersion: number;
  appliedAt: number;
  leaseMs: number;
  maxClockSkewMs: number;
  heartbeatIntervalMs: number;
  /** The same verdict as `failoverctl status`'s exit code: 0 ok, 1 degraded, 2 critical. */
  health: Health;
  healthReasons: string[];
  groups: GroupView[];
  nodes: NodeView[];
  requests: RequestItem[];
  failovers: FailoverView[];
  /** When the entry points and instance states were last read (they are read less often). */
  observedAt: number | null;
  /** A read of this cluster failed; the rest of the view is the last good one. */
  error?: string;
}

export interface GroupView {
  name: string;
  owner: string | null;
  phase: string;
  epoch: number;
  mode: string;
  desired: string;
  /** Since when the group is in its phase (controller clock, ms). */
  since: number | null;
  /** The group's nodes in priority order. */
  nodes: string[];
  mayRun: string[];
  entryPoints: EntryPointView[];
  /** exec resources (the application), in activation order. */
  applications: {
    name: string;
    /** Nodes whose live agent reports it running. */
    runningOn: string[];
    /** Nodes whose lease has run out and whose last report said running (unknown now). */
    lastReportedOn: string[];
  }[];
  monitors: MonitorView[];
  lastError: string | null;
  lockedBy: string | null;
}

export interface EntryPointView {
  name: string;
  type: string;
  /** What it is: the VIP address, the EIP allocation, the record name. */
  address: string;
  /** ok / drift / error from the controller's own check; unknown while the group does not serve. */
  status: 'ok' | 'drift' | 'error' | 'unknown';
  /** Where it points, in the check's words, with node names beside ENIs and addresses. */
  detail: string;
}

export interface MonitorView {
  name: string;
  status: string;
  detail: string;
  /** The node that reported it (agent-side monitors), or null for the controller's. */
  node: string | null;
}

export interface NodeView {
  name: string;
  instanceId: string;
  az: string;
  privateIp: string;
  state: 'running' | 'leaving' | 'fenced' | 'expired' | 'unknown';
  /** Agent clock of the last renewal (ms), null before the first. */
  sentAt: number | null;
  leaseMs: number;
  isolated: boolean;
  watchdog: string;
  agentVersion: string | null;
  witnesses: { target: string; ok: boolean; detail?: string }[];
  /** EC2 state from DescribeInstances (null: not read yet or not readable). */
  instanceState: string | null;
  monitors: MonitorView[];
  groups: { name: string; state: string; epoch: number }[];
  spot?: string;
}

export interface RequestItem {
  id: string;
  kind: string;
  group: string;
  to?: string;
  by?: string;
  createdAt: number;
}

export interface FailoverPart {
  label: string;
  ms: number;
}

/** One change of owner (a failover, a move, a start), from the audit log. */
export interface FailoverView {
  group: string;
  epoch: number;
  kind: 'failover' | 'move' | 'start';
  from: string | null;
  to: string;
  reason: string;
  /** The decision (controller clock, ms). */
  startedAt: number;
  endedAt: number | null;
  outcome: 'completed' | 'failed' | 'superseded' | 'in progress';
  /** From the decision to online. */
  totalMs: number | null;
  /** detection, decision, demote, each entry point, application start. */
  parts: FailoverPart[];
}

/** What the page posts to /api/actions. */
export interface ActionRequest {
  cluster: string;
  kind: 'move' | 'start' | 'stop' | 'suspend' | 'resume' | 'cancel';
  group?: string;
  to?: string;
  /** For cancel. */
  id?: string;
}

export interface ActionResult {
  ok: boolean;
  /** done / rejected / cancelled / pending / refused (checked before it was recorded) / error. */
  outcome: string;
  message: string;
  requestIds: string[];
}
