/**
 * Cost model: the monthly AWS bill of N clusters x M nodes x G groups at a heartbeat interval, in both
 * DynamoDB capacity modes, itemized. Pure: no I/O, no clock; prices come from a {@link PriceSheet}.
 *
 * Month = 730 hours (2,628,000 s). Free tier NOT applied (it is listed in the notes). List prices.
 *
 * The load, read off the code (change the code, change this model):
 *
 * Agents (node-agent/agent.ts, node-agent/heartbeat.ts, controller/state/dynamo-store.ts), each node:
 * - every heartbeatIntervalMs: one PutItem of its heartbeat item (`putHeartbeat`; WRU = ceil(item
 *   bytes / 1 KB)) and one BatchGetItem, eventually consistent, of the cluster's G group records and
 *   the M-1 peers' heartbeats (`followCluster` -> `readClusterState`; 0.5 RRU per item <= 4 KB, each
 *   item rounded up to 4 KB on its own as BatchGetItem does);
 * - the standby's reads are timed to its peers' renewals (node-agent/core/peers.ts `PeerReads`): one
 *   read right after each peer's renewal is due, so one per heartbeat with one peer (as before) and
 *   M-1 with several (their renewals rarely fall together), plus a re-check of a renewal not yet
 *   readable when due (a share of them, `renewalRecheckShare`); a peer that stops renewing adds a
 *   few re-checks once (OVERDUE_RENEWAL_RECHECKS), within the transition allowance;
 * - reports on change (`reason: change`, written at once besides the periodic renewals): a rate
 *   parameter, a few an hour in steady state;
 * - retries of an unacknowledged renewal (`renew`, every heartbeatRetryMs) happen only while a write
 *   goes unanswered: none in steady state, not counted;
 * - the cluster definition, re-read with a consistent GetItem every min(30 s, max(1 s, 10 x
 *   heartbeat)) (`configRefreshMs` -> `getConfig`).
 *
 * Controller (functions/reconcile-schedule.ts -> controller/reconcile/entry.ts `handleEventBridge`):
 * - rate(1 minute) (serverless.yml): ONE invocation lists the clusters (`listClusters`, a Query of
 *   the registry partition, eventually consistent) and reconciles all of them concurrently
 *   (`reconcileAll`), so the invocation count does not grow with N but its duration does;
 * - per cluster (controller/reconcile/reconcile.ts `reconcileCluster`): `getConfig` (consistent
 *   GetItem), `listGroups` (one consistent Query of the G group records) and, shared by every
 *   group (controller/reconcile/observe.ts `ReconcileSnapshot.clusterState`), one `getHeartbeats`
 *   (BatchGetItem of the M heartbeats, consistent), one `getFacts` and one `listRequests`
 *   (consistent Queries, usually empty or nearly: modelled at the 1-unit minimum each). In a steady
 *   state that read-only pass finds nothing to do and writes nothing (no lock is taken); a group
 *   with work takes its lock and reads again, which the per-transition allowance covers;
 * - the DynamoDB stream (functions/reconcile-stream.ts) is filtered in serverless.yml: only
 *   `reason = change` heartbeats and new requests invoke Lambda (filtered records are not billed as
 *   invocations; GetRecords by a Lambda trigger is free); each change is modelled as one invocation
 *   reconciling its cluster (an upper bound: simultaneous changes share a batch);
 * - Lambda: arm64, the schedule at 512 MB and the stream function at 1,769 MB (serverless.yml); duration is a parameter (300 ms per reconcile by default,
 *   plus a per-extra-cluster increment for the schedule) - pass measured values when you have them;
 * - transitions (failovers, stops, alerts): one PutEvents to the custom bus and one SNS publish each
 *   (controller/notify/notifier.ts), plus a stated allowance of table writes and reads.
 *
 * Also counted, because serverless.yml creates them: CloudWatch Logs ingestion of the controller's
 * log lines, the CloudWatch alarms and dashboard, the custom metrics the functions publish (one per
 * metric name and dimension values: per group GroupOnline, per node LeaseAge and NodeIsolated,
 * plus a few without dimensions; those of failovers exist only in the hours they are published and
 * are left out), KMS requests for the table's AWS managed key
 * (`SSESpecification.SSEEnabled: true`: DynamoDB calls KMS about once per 5 minutes per caller with
 * traffic), table storage and point-in-time recovery.
 */

import { InvalidRequestError } from '../../shared/base/errors';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../../shared/config/rules';
import { DEFAULT_PRICES, type PriceKey, type PriceSheet, priceOf } from './prices';

export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
/** serverless.yml: `rate(1 minute)`. */
export const SCHEDULE_INTERVAL_S = 60;
/** DynamoDB refreshes a table's KMS data key about every 5 minutes per caller with traffic. */
const KMS_REQUESTS_PER_CALLER_HOUR = 12;
const KB = 1024;
const GB = 1024 ** 3;
/**
 * Metrics published every minute whatever the clusters (controller/reconcile/metrics.ts):
 * GroupsNotOnline, ReconcileErrors, ReconcileOutcome for `converged` and `waiting`.
 */
const DEPLOYMENT_METRICS = 4;
/** LeaseAge and NodeIsolated. */
const METRICS_PER_NODE = 2;

export interface CostInput {
  /** Clusters served by one deployment (one table, one set of functions). */
  clusters: number;
  nodesPerCluster: number;
  groupsPerCluster: number;
  /** Agent renewal period (cluster definition `timing.heartbeatIntervalMs`; default: the definition's). */
  heartbeatIntervalMs: number;
  /** Size of one heartbeat item as DynamoDB counts it. 1 KB by default (a typical one is ~0.5 KB). */
  heartbeatItemBytes: number;
  /** Size of one group record (owner, epoch, counters, lock). */
  groupItemBytes: number;
  /** Size of the stored cluster definition item. */
  configItemBytes: number;
  /** `reason: change` reports per node per hour (monitor flaps, peers' state changes, ...). */
  changesPerNodePerHour: number;
  /** Transitions (failovers, stops, monitor alerts) per cluster per month. */
  transitionsPerClusterPerMonth: number;
  /** Table writes (WRU) per transition: audit events, fence, group updates (an allowance). */
  writesPerTransition: number;
  /** Table reads (RRU) per transition beyond the plain reconcile (an allowance). */
  readsPerTransition: number;
  /**
   * Share of peers' renewals not yet readable when the standby reads them right after they are due
   * (a write that lands late, an eventually consistent read that lags): each costs one re-check.
   */
  renewalRecheckShare: number;
  /** Duration of one reconcile invocation of one cluster (ms). A parameter: pass a measured one. */
  reconcileMs: number;
  /** What each further cluster adds to the scheduled invocation (ms; clusters run concurrently). */
  reconcileMsPerExtraCluster: number;
  /** Memory of the stream function (and the other event functions) in serverless.yml. */
  lambdaMemoryMb: number;
  /** Memory of the schedule function in serverless.yml. */
  scheduleMemoryMb: number;
  lambdaArchitecture: 'arm64' | 'x86_64';
  /**
   * Provisioned mode: capacity = ceil(steady load x (1 + headroom)), per table, at least 1 unit.
   * See {@link provisionedUnits} for why headroom matters.
   */
  headroom: number;
  /** Log bytes per Lambda invocation (platform START/END/REPORT lines, "reconcile finished"). */
  logBytesPerInvocation: number;
  /** Log bytes per group per reconcile (the "decision" line). */
  logBytesPerGroupReconcile: number;
  /** Whether the table is encrypted with the AWS managed KMS key (serverless.yml: SSEEnabled: true). */
  tableKmsKey: boolean;
  /** Principals of the controller calling DynamoDB (the schedule/event role and the stream role). */
  kmsControllerCallers: number;
  /** CloudWatch alarms in serverless.yml. */
  alarms: number;
  /** CloudWatch dashboards in serverless.yml. */
  dashboards: number;
  /**
   * Per-group and per-node metrics (serverless.yml param `metrics: detailed`, the default); false:
   * `metrics: basic`, only the deployment-wide ones the alarms use.
   */
  detailedMetrics: boolean;
  /** E-mail subscribers of the alert topic. */
  emailSubscribers: number;
  /** Stored versions of each cluster definition (history items, kept). */
  configVersionsKept: number;
  /** Audit events per transition (30-day TTL) and their size. */
  auditItemsPerTransition: number;
  auditItemBytes: number;
}

export const DEFAULT_COST_INPUT: CostInput = {
  clusters: 1,
  nodesPerCluster: 2,
  groupsPerCluster: 1,
  heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
  heartbeatItemBytes: 1024,
  groupItemBytes: 1024,
  configItemBytes: 4096,
  changesPerNodePerHour: 4,
  transitionsPerClusterPerMonth: 4,
  writesPerTransition: 20,
  readsPerTransition: 20,
  renewalRecheckShare: 0.05,
  reconcileMs: 300,
  reconcileMsPerExtraCluster: 50,
  lambdaMemoryMb: 1769,
  scheduleMemoryMb: 512,
  lambdaArchitecture: 'arm64',
  headroom: 0.2,
  logBytesPerInvocation: 800,
  logBytesPerGroupReconcile: 800,
  tableKmsKey: true,
  kmsControllerCallers: 2,
  alarms: 8,
  dashboards: 1,
  detailedMetrics: true,
  emailSubscribers: 1,
  configVersionsKept: 10,
  auditItemsPerTransition: 4,
  auditItemBytes: 1500,
};

export type CapacityMode = 'on-demand' | 'provisioned';

/** One line of the bill. `usdPerMonth` = quantity / price.per x price.usd. */
export interface CostLine {
  service: 'DynamoDB' | 'Lambda' | 'EventBridge' | 'SNS' | 'CloudWatch' | 'KMS';
  what: string;
  /** Units per month. */
  quantity: number;
  unit: string;
  priceKey: PriceKey;
  /** USD per `pricePer` units. */
  unitPrice: number;
  pricePer: number;
  usdPerMonth: number;
}

/** One source of table traffic: monthly units and the steady per-second rate they make. */
export interface LoadSource {
  what: string;
  kind: 'write' | 'read';
  /** Request units per month (WRU or RRU). */
  unitsPerMonth: number;
  /** The same as a steady rate (capacity units per second). */
  perSecond: number;
}

export interface ModeEstimate {
  mode: CapacityMode;
  lines: CostLine[];
  totalUsdPerMonth: number;
  /** total / clusters. */
  perClusterUsdPerMonth: number;
  /** Provisioned mode: the table's capacity and the steady load it covers. */
  capacity?: { steadyWcu: number; steadyRcu: number; wcu: number; rcu: number; headroom: number };
}

export interface CostEstimate {
  input: CostInput;
  region: string;
  load: LoadSource[];
  onDemand: ModeEstimate;
  provisioned: ModeEstimate;
  /**
   * Total of ONE two-node cluster alone in its deployment (fixed costs such as the alarms included),
   * with every other input as given: what the <= $1 target is checked on.
   */
  perTwoNodeCluster: { onDemand: number; provisioned: number };
  notes: string[];
}

/** Write request units for one write of an item of `bytes` (1 KB each, rounded up). */
export function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / KB));
}

/** Read units for one read of an item of `bytes`: 4 KB each, rounded up; half when eventually consistent. */
export function readUnits(bytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(bytes / (4 * KB)));
  return consistent ? units : units / 2;
}

/** How often an agent re-reads the cluster definition (node-agent/agent.ts `configRefreshMs`). */
export function configRefreshMs(heartbeatIntervalMs: number): number {
  return Math.min(30_000, Math.max(1000, 10 * heartbeatIntervalMs));
}

/**
 * Provisioned capacity for a steady load: ceil(steady x (1 + headroom)), at least 1.
 *
 * Why headroom: a provisioned table throttles requests beyond its capacity, and the heartbeats are
 * leases: a renewal throttled long enough makes a healthy node fence itself and fail over. The load
 * is not flat: a failover adds dozens of reads and writes (audit, fence, group updates) in a few seconds while both
 * agents report changes. DynamoDB absorbs short bursts from *burst capacity*: up to 300 s of unused
 * capacity is retained, best effort (it may be spent on background maintenance and must not be
 * planned on). A table provisioned at exactly its average has no unused capacity to retain, so its
 * first burst throttles; headroom is what keeps that pool filled (e.g. 1 unused WCU/s retains up to
 * 300 writes). A small tolerance avoids rounding 2.0000000001 up to 3.
 */
export function provisionedUnits(steadyPerSecond: number, headroom: number): number {
  return Math.max(1, Math.ceil(steadyPerSecond * (1 + headroom) - 1e-9));
}

/** Validates and completes an input; throws InvalidRequestError naming every bad field. */
export function resolveCostInput(partial: Partial<CostInput> = {}): CostInput {
  const input = { ...DEFAULT_COST_INPUT, ...partial };
  const problems: string[] = [];
  const whole = (k: keyof CostInput, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = input[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      problems.push(`${k} must be a whole number from ${min} to ${max} (got ${String(v)})`);
  };
  const real = (k: keyof CostInput, min: number, max = Number.MAX_VALUE) => {
    const v = input[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
      problems.push(`${k} must be a number from ${min} to ${max} (got ${String(v)})`);
  };
  whole('clusters', 1);
  whole('nodesPerCluster', 1, 100);
  whole('groupsPerCluster', 0, 100);
  whole('heartbeatIntervalMs', 100, 60_000);
  whole('heartbeatItemBytes', 1, 400 * KB);
  whole('groupItemBytes', 1, 400 * KB);
  whole('configItemBytes', 1, 400 * KB);
  real('changesPerNodePerHour', 0);
  real('transitionsPerClusterPerMonth', 0);
  real('writesPerTransition', 0);
  real('readsPerTransition', 0);
  real('renewalRecheckShare', 0, 1);
  real('reconcileMs', 1, 900_000);
  real('reconcileMsPerExtraCluster', 0, 900_000);
  whole('lambdaMemoryMb', 128, 10_240);
  whole('scheduleMemoryMb', 128, 10_240);
  real('headroom', 0, 100);
  real('logBytesPerInvocation', 0);
  real('logBytesPerGroupReconcile', 0);
  whole('kmsControllerCallers', 0);
  whole('alarms', 0);
  whole('dashboards', 0);
  whole('emailSubscribers', 0);
  whole('configVersionsKept', 0);
  real('auditItemsPerTransition', 0);
  whole('auditItemBytes', 1, 400 * KB);
  if (input.lambdaArchitecture !== 'arm64' && input.lambdaArchitecture !== 'x86_64')
    problems.push(`lambdaArchitecture must be arm64 or x86_64 (got ${String(input.lambdaArchitecture)})`);
  if (typeof input.detailedMetrics !== 'boolean')
    problems.push(`detailedMetrics must be true or false (got ${String(input.detailedMetrics)})`);
  if (typeof input.tableKmsKey !== 'boolean')
    problems.push(`tableKmsKey must be true or false (got ${String(input.tableKmsKey)})`);
  if (problems.length > 0) throw new InvalidRequestError(`invalid cost input: ${problems.join('; ')}`);
  return input;
}

/** The table traffic of a deployment, source by source (see the module comment). */
export function tableLoad(input: CostInput): LoadSource[] {
  const { clusters: n, nodesPerCluster: m, groupsPerCluster: g } = input;
  const agents = n * m;
  const ticks = SECONDS_PER_MONTH / (input.heartbeatIntervalMs / 1000);
  const hbWru = writeUnits(input.heartbeatItemBytes);
  const changes = agents * input.changesPerNodePerHour * HOURS_PER_MONTH;
  const followRru =
    g * readUnits(input.groupItemBytes, false) + (m - 1) * readUnits(input.heartbeatItemBytes, false);
  const configReads = SECONDS_PER_MONTH / (configRefreshMs(input.heartbeatIntervalMs) / 1000);
  const scheduled = SECONDS_PER_MONTH / SCHEDULE_INTERVAL_S;
  const reconciles = scheduled * n + changes;
  const perReconcileRru =
    g === 0
      ? readUnits(input.configItemBytes, true)
      : readUnits(input.configItemBytes, true) +
        readUnits(g * input.groupItemBytes, true) +
        m * readUnits(input.heartbeatItemBytes, true) +
        2;
  const transitions = n * input.transitionsPerClusterPerMonth;
  const registryRru = readUnits(n * 64, false);
  const sources: Omit<LoadSource, 'perSecond'>[] = [
    { what: 'agent heartbeat renewals (PutItem)', kind: 'write', unitsPerMonth: agents * ticks * hbWru },
    {
      what: 'agent reports on change (PutItem, reason=change)',
      kind: 'write',
      unitsPerMonth: changes * hbWru,
    },
    {
      what: 'transitions (audit, fence, group updates)',
      kind: 'write',
      unitsPerMonth: transitions * input.writesPerTransition,
    },
    {
      what: 'agent reads of group records + peer heartbeats (BatchGetItem, eventually consistent)',
      kind: 'read',
      unitsPerMonth: agents * ticks * followRru,
    },
    {
      what: `agent reads timed to peers' renewals: re-checks of ${(input.renewalRecheckShare * 100).toFixed(0)}% not readable when due${m > 2 ? `, ${m - 2} more per heartbeat (one per peer)` : ''}`,
      kind: 'read',
      unitsPerMonth:
        agents * ticks * (Math.max(0, m - 2) + input.renewalRecheckShare * Math.max(0, m - 1)) * followRru,
    },
    {
      what: 'agent re-reads of the cluster definition (GetItem, consistent)',
      kind: 'read',
      unitsPerMonth: agents * configReads * readUnits(input.configItemBytes, true),
    },
    {
      what: 'controller reads (definition, group records, heartbeats, facts, requests per cluster; consistent)',
      kind: 'read',
      unitsPerMonth: reconciles * perReconcileRru,
    },
    {
      what: 'controller cluster registry (Query per schedule)',
      kind: 'read',
      unitsPerMonth: scheduled * registryRru,
    },
    {
      what: 'transitions (extra reads)',
      kind: 'read',
      unitsPerMonth: transitions * input.readsPerTransition,
    },
  ];
  return sources.map((s) => ({ ...s, perSecond: s.unitsPerMonth / SECONDS_PER_MONTH }));
}

/** Itemized monthly cost of `input` in both capacity modes. */
export function estimate(
  partial: Partial<CostInput> = {},
  prices: PriceSheet = DEFAULT_PRICES,
): CostEstimate {
  const input = resolveCostInput(partial);
  const p = prices.prices;
  const line = (
    service: CostLine['service'],
    what: string,
    quantity: number,
    priceKey: PriceKey,
  ): CostLine => ({
    service,
    what,
    quantity,
    unit: p[priceKey].unit,
    priceKey,
    unitPrice: p[priceKey].usd,
    pricePer: p[priceKey].per,
    usdPerMonth: priceOf(p[priceKey], quantity),
  });

  const { clusters: n, nodesPerCluster: m, groupsPerCluster: g } = input;
  const agents = n * m;
  const load = tableLoad(input);
  const changes = agents * input.changesPerNodePerHour * HOURS_PER_MONTH;
  const scheduled = SECONDS_PER_MONTH / SCHEDULE_INTERVAL_S;
  const streamInvocations = changes;
  const transitions = n * input.transitionsPerClusterPerMonth;
  const scheduleMs = input.reconcileMs + (n - 1) * input.reconcileMsPerExtraCluster;
  const gbSeconds =
    ((scheduled * scheduleMs) / 1000) * (input.scheduleMemoryMb / 1024) +
    ((streamInvocations * input.reconcileMs) / 1000) * (input.lambdaMemoryMb / 1024);
  const logBytes =
    scheduled * (input.logBytesPerInvocation + n * g * input.logBytesPerGroupReconcile) +
    streamInvocations * (input.logBytesPerInvocation + g * input.logBytesPerGroupReconcile);
  const kmsCallers = agents + input.kmsControllerCallers;
  const items =
    n *
    (1 +
      input.configVersionsKept +
      g +
      2 * m +
      1 +
      input.transitionsPerClusterPerMonth * input.auditItemsPerTransition);
  const tableBytes =
    n *
      ((1 + input.configVersionsKept) * input.configItemBytes +
        g * input.groupItemBytes +
        m * (input.heartbeatItemBytes + 100) +
        64 +
        input.transitionsPerClusterPerMonth * input.auditItemsPerTransition * input.auditItemBytes) +
    items * 100;
  const tableGb = tableBytes / GB;
  const interval = `${fmtSeconds(input.heartbeatIntervalMs)}`;
  const lambdaPrice: PriceKey =
    input.lambdaArchitecture === 'arm64' ? 'lambdaGbSecondArm64' : 'lambdaGbSecondX86';

  const common: CostLine[] = [
    line('DynamoDB', `table storage (~${Math.round(items)} items)`, tableGb, 'dynamodbStorageGbMonth'),
    line('DynamoDB', 'point-in-time recovery (continuous backups)', tableGb, 'dynamodbPitrGbMonth'),
    line(
      'DynamoDB',
      'stream reads by the Lambda trigger (filtered: changes and requests only)',
      streamInvocations,
      'dynamodbStreamsReadByLambda',
    ),
    line(
      'Lambda',
      `requests (schedule every ${SCHEDULE_INTERVAL_S} s + stream-triggered reconciles)`,
      scheduled + streamInvocations,
      'lambdaRequests',
    ),
    line(
      'Lambda',
      `duration (${input.lambdaArchitecture}; ${fmt(scheduleMs)} ms per schedule at ${input.scheduleMemoryMb} MB, ${fmt(input.reconcileMs)} ms per stream reconcile at ${input.lambdaMemoryMb} MB)`,
      gbSeconds,
      lambdaPrice,
    ),
    line(
      'EventBridge',
      'schedule rule + EC2/Health events on the default bus',
      scheduled,
      'eventbridgeAwsAndScheduledEvents',
    ),
    line(
      'EventBridge',
      'transition events (PutEvents to the failover bus)',
      transitions,
      'eventbridgeCustomEvents',
    ),
    line('SNS', 'alert publishes (one per transition)', transitions, 'snsPublish'),
    line(
      'SNS',
      `alert e-mails (${input.emailSubscribers} subscriber${input.emailSubscribers === 1 ? '' : 's'})`,
      transitions * input.emailSubscribers,
      'snsEmailDelivery',
    ),
    line('CloudWatch', 'Logs ingestion (controller log lines)', logBytes / GB, 'cloudwatchLogsIngestGb'),
    line('CloudWatch', `alarms (${input.alarms})`, input.alarms, 'cloudwatchAlarmMonth'),
    line('CloudWatch', `dashboard (${input.dashboards})`, input.dashboards, 'cloudwatchDashboardMonth'),
    line(
      'CloudWatch',
      `custom metrics (${input.detailedMetrics ? `${DEPLOYMENT_METRICS} + per group 1 + per node 2` : `${DEPLOYMENT_METRICS}, metrics: basic`})`,
      DEPLOYMENT_METRICS +
        (input.detailedMetrics
          ? input.clusters * (input.groupsPerCluster + METRICS_PER_NODE * input.nodesPerCluster)
          : 0),
      'cloudwatchCustomMetricMonth',
    ),
  ];
  if (input.tableKmsKey) {
    common.push(
      line(
        'KMS',
        `table key requests (AWS managed key; ${kmsCallers} callers x ${KMS_REQUESTS_PER_CALLER_HOUR}/h)`,
        kmsCallers * KMS_REQUESTS_PER_CALLER_HOUR * HOURS_PER_MONTH,
        'kmsRequests',
      ),
    );
  }

  const requestLines = load.map((s) =>
    s.kind === 'write'
      ? line('DynamoDB', s.what, s.unitsPerMonth, 'dynamodbOnDemandWrite')
      : line('DynamoDB', s.what, s.unitsPerMonth, 'dynamodbOnDemandRead'),
  );
  const steadyWcu = sum(load.filter((s) => s.kind === 'write').map((s) => s.perSecond));
  const steadyRcu = sum(load.filter((s) => s.kind === 'read').map((s) => s.perSecond));
  const wcu = provisionedUnits(steadyWcu, input.headroom);
  const rcu = provisionedUnits(steadyRcu, input.headroom);
  const headroomPct = `${fmt(input.headroom * 100)}%`;
  const capacityLines = [
    line(
      'DynamoDB',
      `write capacity: ${wcu} WCU x ${HOURS_PER_MONTH} h (steady ${steadyWcu.toFixed(3)} WCU/s + ${headroomPct} headroom, rounded up)`,
      wcu * HOURS_PER_MONTH,
      'dynamodbProvisionedWcuHour',
    ),
    line(
      'DynamoDB',
      `read capacity: ${rcu} RCU x ${HOURS_PER_MONTH} h (steady ${steadyRcu.toFixed(3)} RCU/s + ${headroomPct} headroom, rounded up)`,
      rcu * HOURS_PER_MONTH,
      'dynamodbProvisionedRcuHour',
    ),
  ];
  const mode = (name: CapacityMode, lines: CostLine[]): ModeEstimate => {
    const total = sum(lines.map((l) => l.usdPerMonth));
    return {
      mode: name,
      lines,
      totalUsdPerMonth: total,
      perClusterUsdPerMonth: total / n,
      ...(name === 'provisioned'
        ? { capacity: { steadyWcu, steadyRcu, wcu, rcu, headroom: input.headroom } }
        : {}),
    };
  };

  const notes = [
    `heartbeat every ${interval}: ${fmt(SECONDS_PER_MONTH / (input.heartbeatIntervalMs / 1000))} renewals per node per month; cluster definition re-read every ${fmtSeconds(configRefreshMs(input.heartbeatIntervalMs))}`,
    'free tier NOT counted: DynamoDB 25 provisioned WCU + 25 RCU + 25 GB, Lambda 1M requests + 400,000 GB-s, SNS 1M publishes + 1,000 e-mails, KMS 20,000 requests, CloudWatch 10 alarms + 10 custom metrics + 3 dashboards + 5 GB logs a month (a small provisioned table fits in the DynamoDB free tier)',
    'provisioned mode needs BillingMode PROVISIONED with these capacities on the state table (serverless.yml creates it PAY_PER_REQUEST); headroom keeps burst capacity for reconcile bursts and failovers, whose throttled heartbeats would delay lease renewals',
    'not counted: EC2, Route 53 and SSM API calls (no charge), SQS dead-letter queue (only on failures), data transfer within the region; agents that reach DynamoDB through a NAT gateway pay its per-GB processing for every renewal (a DynamoDB gateway VPC endpoint has no charge)',
  ];
  if (input.tableKmsKey)
    notes.push(
      'KMS line: the table uses the AWS managed key (SSEEnabled: true); an AWS owned key (SSEEnabled: false) costs nothing',
    );
  const onDemand = mode('on-demand', [...requestLines, ...common]);
  const provisioned = mode('provisioned', [...capacityLines, ...common]);
  return {
    input,
    region: prices.region,
    load,
    onDemand,
    provisioned,
    perTwoNodeCluster:
      n === 1 && m === 2
        ? { onDemand: onDemand.totalUsdPerMonth, provisioned: provisioned.totalUsdPerMonth }
        : perTwoNodeCluster(input, prices),
    notes,
  };
}

/** Monthly cost of ONE two-node cluster alone in its deployment (all fixed costs included). */
export function perTwoNodeCluster(
  partial: Partial<CostInput> = {},
  prices: PriceSheet = DEFAULT_PRICES,
): { onDemand: number; provisioned: number } {
  return estimate({ ...partial, clusters: 1, nodesPerCluster: 2 }, prices).perTwoNodeCluster;
}

/** The target of the issue: at most this many USD per two-node cluster-month. */
export const TARGET_USD_PER_TWO_NODE_CLUSTER = 1;

/** Heartbeat intervals compared by default: the issue's 0.5, 1, 2 and 5 s, 3 s and the definition default. */
export const HEARTBEAT_TABLE_MS: readonly number[] = [
  ...new Set([500, 1000, 2000, 3000, 5000, DEFAULT_HEARTBEAT_INTERVAL_MS]),
].sort((a, b) => a - b);

/** One row of {@link heartbeatTable}. */
export interface HeartbeatRow {
  heartbeatIntervalMs: number;
  /** One two-node cluster alone in its deployment (what the target is checked on). */
  alone: { onDemand: number; provisioned: number };
  /** Per cluster when `sharedClusters` two-node clusters share one deployment. */
  shared: { onDemand: number; provisioned: number };
  meets: { onDemand: boolean; provisioned: boolean };
}

/** Cost per two-node cluster-month at several heartbeat intervals, and whether it meets the target. */
export function heartbeatTable(
  partial: Partial<CostInput> = {},
  prices: PriceSheet = DEFAULT_PRICES,
  intervalsMs: readonly number[] = HEARTBEAT_TABLE_MS,
  sharedClusters = 100,
): HeartbeatRow[] {
  return intervalsMs.map((heartbeatIntervalMs) => {
    const alone = perTwoNodeCluster({ ...partial, heartbeatIntervalMs }, prices);
    const many = estimate(
      { ...partial, heartbeatIntervalMs, clusters: sharedClusters, nodesPerCluster: 2 },
      prices,
    );
    return {
      heartbeatIntervalMs,
      alone,
      shared: {
        onDemand: many.onDemand.perClusterUsdPerMonth,
        provisioned: many.provisioned.perClusterUsdPerMonth,
      },
      meets: {
        onDemand: alone.onDemand <= TARGET_USD_PER_TWO_NODE_CLUSTER,
        provisioned: alone.provisioned <= TARGET_USD_PER_TWO_NODE_CLUSTER,
      },
    };
  });
}

/** "$1.234" (3 decimals below $10, 2 above). */
export function formatUsd(usd: number): string {
  return `$${usd < 10 ? usd.toFixed(3) : usd.toFixed(2)}`;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function fmt(x: number): string {
  return Number.isInteger(x)
    ? x.toLocaleString('en-US')
    : x.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function fmtSeconds(ms: number): string {
  return `${fmt(ms / 1000)} s`;
}
