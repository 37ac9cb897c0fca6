/**
 * Reconcile scaling: 1, 10, 100 and 1,000 groups in one cluster of two nodes, on the in-memory cloud
 * (in-memory state table too: what the controller's own code costs) and on the moto server (the real
 * AWS SDK clients, the real DynamoDB store and resource drivers). For each size: apply the
 * definition, seed the steady state directly (bench/scaling-seed.ts: every group's record Online on
 * node1 at epoch 1, its VIP route, Elastic IP and DNS record on node1), write both nodes' heartbeats
 * as their agents would (node1 reports every group running at epoch 1, node2 stopped), check that
 * the first reconcile after seeding finds nothing to do (an empty plan for every group, no mutating
 * call: otherwise the run stops, since a benchmark of a wrong steady state is worthless), then time
 * a few steady-state reconciles (the 1-minute schedule: reconcileCluster over all groups) and count
 * their calls by service and operation. One more moto run puts the largest size in two clusters, to
 * show that DynamoDB reads grow with clusters, not groups.
 *
 *   npx tsx bench/scaling.ts                       # starts its own moto server
 *   AWS_ENDPOINT_URL=http://127.0.0.1:5000 npx tsx bench/scaling.ts
 *   npx tsx bench/scaling.ts --groups 1,10 --runs 3
 *   npx tsx bench/scaling.ts --in-memory           # seconds: the in-memory half only
 *
 * Bringing 2,000 groups Online through reconcile on the emulator took about 45 minutes; seeding
 * takes seconds, so the run's time is now mostly the measured reconciles themselves.
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { CreateRouteTableCommand, EC2Client } from '@aws-sdk/client-ec2';
import { Route53Client } from '@aws-sdk/client-route-53';
import { clientConfig } from '../controller/aws/clients';
import { systemClock } from '../controller/reconcile/clock';
import { type ClusterOutcome, reconcileCluster } from '../controller/reconcile/reconcile';
import { createAwsClients, createAwsCloud } from '../controller/resources';
import { DynamoStore } from '../controller/state/dynamo-store';
import type { AwsOptions } from '../shared/aws/options';
import { type ClusterConfig, configHash, parseClusterConfig } from '../shared/config/load';
import type { ClusterInput } from '../shared/config/schema';
import type { GroupState, Heartbeat } from '../shared/core/model';
import type { Cloud, Log, ResourceDriver, StateStore, StoredConfig } from '../shared/core/ports';
import { allocateAddress, bareZoneId, buildTwoNodeNetwork, NODE_NAMES } from '../testkit/emulator-network';
import { MemoryCloud, StoreWorld } from '../testkit/memory-cloud';
import { MemoryStore } from '../testkit/memory-store';
import { countSdkCalls } from '../testkit/sdk-calls';
import { World } from '../testkit/world';
import { type BenchRow, formatSpread, type Say, type Spread, spread } from './report';
import { recordDifferences, seedEntryPoints, steadyGroupState, writeGroupRecords } from './scaling-seed';

const SECTION = 'reconcile scaling';
const DEFAULT_SIZES = [1, 10, 100, 1000] as const;
const DEFAULT_RUNS = 3;
/** The schedule's Lambda runs 60 s; reconcile gets what is left after LAMBDA_RESERVE_MS. */
const DEADLINE_MS = 57_000;
const TARGET_S = 5;
const LEASE_MS = 10_000;
/** The node every group is seeded Online on (the first in each group's priority list). */
const OWNER = 'node1';
/** Warnings and errors the controller logged during the current reconcile; nothing else is kept. */
const logged: string[] = [];
const silent: Log = {
  info: () => undefined,
  warn: (message, attributes) => {
    if (logged.length < 200) logged.push(`warn ${message} ${JSON.stringify(attributes ?? {}).slice(0, 300)}`);
  },
  error: (message, attributes) => {
    if (logged.length < 200)
      logged.push(`error ${message} ${JSON.stringify(attributes ?? {}).slice(0, 300)}`);
  },
};

export interface ScalingOptions {
  say: Say;
  /** A running moto server; else one is started (and stopped) here. */
  endpoint?: string;
  /** Group counts (default 1, 10, 100, 1000). */
  sizes?: readonly number[];
  /** Measured steady-state reconciles per size (default 3). */
  runs?: number;
  /** Skip the moto half (in-memory figures only). */
  skipMoto?: boolean;
}

// ------------------------------------------------------------------------------------------------
// Counting calls

type Kind = 'read' | 'write' | 'describe' | 'check' | 'mutating' | 'other';

/** Calls of one measured reconcile: per `service:Operation`, how many, how many attempts, time spent. */
class Tally {
  readonly ops = new Map<string, { calls: number; attempts: number; ms: number; maxMs: number }>();
  enabled = true;

  private op(name: string) {
    let o = this.ops.get(name);
    if (!o) {
      o = { calls: 0, attempts: 0, ms: 0, maxMs: 0 };
      this.ops.set(name, o);
    }
    return o;
  }

  call(name: string, ms: number): void {
    if (!this.enabled) return;
    const o = this.op(name);
    o.calls++;
    o.ms += ms;
    o.maxMs = Math.max(o.maxMs, ms);
  }

  attempt(name: string): void {
    if (this.enabled) this.op(name).attempts++;
  }

  /** When each port method was first called and last answered, ms after reset(). */
  readonly spans = new Map<string, Span>();
  private origin = performance.now();

  span(name: string, started: number, ended: number): void {
    if (!this.enabled) return;
    const s = this.spans.get(name);
    const from = started - this.origin;
    const to = ended - this.origin;
    if (!s) this.spans.set(name, { first: from, last: to, n: 1 });
    else {
      s.first = Math.min(s.first, from);
      s.last = Math.max(s.last, to);
      s.n++;
    }
  }

  reset(): void {
    this.ops.clear();
    this.spans.clear();
    this.origin = performance.now();
  }

  snapshot(): Map<string, { calls: number; attempts: number; ms: number; maxMs: number }> {
    return new Map([...this.ops].map(([k, v]) => [k, { ...v }]));
  }
}

interface Span {
  first: number;
  last: number;
  n: number;
}

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
/** The state store's port methods, by the DynamoDB operation behind each. */
const STORE_OPS: Record<string, string> = {
  getConfig: 'GetItem',
  getGroup: 'GetItem',
  listGroups: 'Query',
  getHeartbeats: 'BatchGetItem',
  listRequests: 'Query',
  getFacts: 'Query',
  acquireLock: 'UpdateItem',
  releaseLock: 'UpdateItem',
  kick: 'UpdateItem',
  updateGroup: 'UpdateItem',
  fence: 'UpdateItem',
  completeRequest: 'UpdateItem',
  appendAudit: 'PutItem',
};

function kindOf(name: string): Kind {
  const [service = '', op = ''] = name.split(':');
  if (service === 'dynamodb' || service === 'store') {
    const ddb = service === 'store' ? (STORE_OPS[op] ?? '') : op;
    if (READS.has(ddb)) return 'read';
    if (WRITES.has(ddb)) return 'write';
    return 'other';
  }
  if (service === 'cloud') {
    if (op.startsWith('describe')) return 'describe';
    if (op.startsWith('check')) return 'check';
    return 'mutating';
  }
  if (/^(Describe|List|Get)/.test(op)) return 'describe';
  return 'mutating';
}

/** Counts every call of an SDK client (once per call, and per attempt under the retry layer). */
function countClient(client: unknown, service: string, tally: Tally): void {
  countSdkCalls(client, service, {
    call: (c) => tally.call(`${service}:${c.op}`, c.end - c.at),
    attempt: (_, op) => tally.attempt(`${service}:${op}`),
  });
}

/** The same counting for port-level fakes: every method call of `target` is a call `prefix:method`. */
function countMethods<T extends object>(target: T, prefix: string, tally: Tally): T {
  return new Proxy(target, {
    get(t, p, receiver) {
      const v = Reflect.get(t, p, receiver);
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        const started = performance.now();
        try {
          return await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
        } finally {
          tally.call(`${prefix}:${String(p)}`, performance.now() - started);
          tally.span(String(p), started, performance.now());
        }
      };
    },
  });
}

/** Records when the store's lock and read methods ran (the SDK middleware counts the calls). */
function spanMethods<T extends object>(target: T, tally: Tally): T {
  const watched = new Set(['getConfig', 'listGroups', 'acquireLock', 'getHeartbeats', 'releaseLock']);
  return new Proxy(target, {
    get(t, p, receiver) {
      const v = Reflect.get(t, p, receiver);
      if (typeof v !== 'function' || !watched.has(String(p))) return v;
      return async (...args: unknown[]) => {
        const started = performance.now();
        try {
          return await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
        } finally {
          tally.span(String(p), started, performance.now());
        }
      };
    },
  });
}

/** The in-memory cloud with its port calls counted; mutations are counted by the cloud itself. */
function countedCloud(cloud: MemoryCloud, tally: Tally): Cloud {
  const driver = (type: string, d: ResourceDriver): ResourceDriver => ({
    activate: (req) => d.activate(req),
    deactivate: (req) => d.deactivate(req),
    check: async (req) => {
      const started = performance.now();
      try {
        return await d.check(req);
      } finally {
        tally.call(`cloud:check-${type}`, performance.now() - started);
      }
    },
  });
  const resources = Object.fromEntries(
    Object.entries(cloud.resources).map(([type, d]) => [type, driver(type, d)]),
  ) as Cloud['resources'];
  return {
    resources,
    describeInstances: async (ids, signal) => {
      const started = performance.now();
      try {
        return await cloud.describeInstances(ids, signal);
      } finally {
        tally.call('cloud:describeInstances', performance.now() - started);
      }
    },
    describeZones: async (zones, signal) => {
      const started = performance.now();
      try {
        return await cloud.describeZones(zones, signal);
      } finally {
        tally.call('cloud:describeZones', performance.now() - started);
      }
    },
    stopInstance: (id, ctx) => cloud.stopInstance(id, ctx),
    mutationWorstCaseMs: cloud.mutationWorstCaseMs,
  };
}

// ------------------------------------------------------------------------------------------------
// Definitions and heartbeats

interface Network {
  vpcId: string;
  routeTableId: string;
  hostedZoneId: string;
  zoneName: string;
  allocations: string[];
  nodes: { name: 'node1' | 'node2'; instanceId: string; eni: string; az: string; privateIp: string }[];
}

/** Groups with a realistic mix: every group a VIP route, a DNS record and an application; every tenth an Elastic IP. */
export function scalingDefinition(cluster: string, groups: number, net: Network): ClusterConfig {
  const input: ClusterInput = {
    cluster,
    region: 'us-east-1',
    timing: { leaseMs: LEASE_MS },
    nodes: net.nodes.map(({ name, instanceId, eni, az, privateIp }) => ({
      name,
      instanceId,
      eni,
      az,
      privateIp,
    })),
    groups: Array.from({ length: groups }, (_, i) => {
      const g = `g${String(i).padStart(4, '0')}`;
      const eip = i % 10 === 0 ? net.allocations[i / 10] : undefined;
      return {
        name: g,
        nodes: ['node1', 'node2'],
        resources: [
          {
            type: 'vip' as const,
            name: `${g}-vip`,
            ip: `172.16.${Math.floor(i / 250)}.${(i % 250) + 1}`,
            vpcId: net.vpcId,
            routeTableIds: [net.routeTableId],
          },
          ...(eip ? [{ type: 'eip' as const, name: `${g}-eip`, allocationId: eip }] : []),
          {
            type: 'dns' as const,
            name: `${g}-dns`,
            hostedZoneId: net.hostedZoneId,
            recordName: `${g}.${net.zoneName}`,
            ttl: 60,
          },
          { type: 'exec' as const, name: `${g}-app`, start: '/bin/true', stop: '/bin/true' },
        ],
      };
    }),
  };
  return parseClusterConfig(input, `bench ${cluster}`);
}

/** A fake network for the in-memory cloud (nothing checks the ids). */
function fakeNetwork(groups: number): Network {
  const hex = (n: number) => n.toString(16).padStart(17, '0');
  return {
    vpcId: `vpc-${hex(1)}`,
    routeTableId: `rtb-${hex(1)}`,
    hostedZoneId: 'Z0BENCH0000000000000',
    zoneName: 'bench.internal',
    allocations: Array.from({ length: Math.ceil(groups / 10) }, (_, i) => `eipalloc-${hex(i + 1)}`),
    nodes: [
      {
        name: 'node1',
        instanceId: `i-${hex(1)}`,
        eni: `eni-${hex(1)}`,
        az: 'us-east-1a',
        privateIp: '10.0.1.10',
      },
      {
        name: 'node2',
        instanceId: `i-${hex(2)}`,
        eni: `eni-${hex(2)}`,
        az: 'us-east-1b',
        privateIp: '10.0.2.10',
      },
    ],
  };
}

/**
 * What each node's agent writes: a fresh renewal, the group report (node1 runs every group at
 * its epoch, node2 runs none) and the peer it watches, renewing as it should.
 */
function agentHeartbeats(config: ClusterConfig, groups: readonly GroupState[], seq: number): Heartbeat[] {
  return config.nodes.map((n) => {
    const peer = config.nodes.find((p) => p.name !== n.name)?.name ?? '';
    return {
      cluster: config.cluster,
      node: n.name,
      token: `${n.name}-bench/${seq}`,
      seq,
      incarnation: `${n.name}-bench`,
      sentAt: Date.now(),
      leaseMs: config.timing.leaseMs,
      agentVersion: 'bench',
      state: 'running',
      reason: 'periodic',
      monitors: {},
      isolated: false,
      groups: Object.fromEntries(
        groups.map((g) => [
          g.group,
          { epoch: g.epoch, state: g.owner === n.name ? ('running' as const) : ('stopped' as const) },
        ]),
      ),
      peers: { [peer]: { token: `${peer}-bench/${seq}`, silentForMs: 900 } },
      fence: { maxStopMs: 30_000, watchdogMs: 8_000 },
    };
  });
}

// ------------------------------------------------------------------------------------------------
// One measured size

interface SizeResult {
  where: 'in-memory' | 'moto';
  clusters: number;
  groups: number;
  /** Wall time per steady-state reconcile, ms. */
  ms: number[];
  /** Calls of each measured reconcile. */
  tallies: Map<string, { calls: number; attempts: number; ms: number; maxMs: number }>[];
  /** When the lock, read and release calls of each measured reconcile ran. */
  spans: Map<string, Span>[];
  /** Groups not converged without actions in some measured run after the first (should be none). */
  unsteady: string[];
  /** Network, apply, seeding and its read-back, ms (not the reconciles). */
  setupMs: number;
  /** Wall time of the first reconcile after seeding (the check; not among the measured runs), ms. */
  checkMs: number;
  /** What the groups hold, e.g. "1000 VIP routes, 100 Elastic IPs, 1000 DNS records, 1000 exec ...". */
  holds: string;
  /** Warnings and errors the controller logged in the check and the measured runs (run: message). */
  warnings: string[];
}

interface Harness {
  clusters: string[];
  /** Reconcile of all clusters, as the schedule's invocation does (clusters in parallel). */
  reconcile(holder: string, counted: boolean): Promise<ClusterOutcome[]>;
  /** Writes one cluster's steady state directly: its entry points on OWNER, then these records. */
  seed(cluster: string, states: readonly GroupState[]): Promise<void>;
  /** Group records of a cluster as the store reads them (not counted). */
  groups(cluster: string): Promise<GroupState[]>;
  putHeartbeat(hb: Heartbeat): Promise<void>;
  config(cluster: string): ClusterConfig;
  tally: Tally;
  /** Mutations the in-memory cloud made (moto: counted as calls). */
  mutations(): number;
}

const holderId = (what: string) => `bench-${what}-${randomBytes(3).toString('hex')}`;

/** What the groups of these definitions hold, by resource type. */
function holdsOf(configs: readonly ClusterConfig[]): string {
  const count: Record<string, number> = { vip: 0, eip: 0, dns: 0, exec: 0 };
  for (const c of configs)
    for (const g of c.groups) for (const r of g.resources) count[r.type] = (count[r.type] ?? 0) + 1;
  const n = (k: string, one: string) => `${count[k]} ${one}${count[k] === 1 ? '' : 's'}`;
  return `${n('vip', 'VIP route')}, ${n('eip', 'Elastic IP')}, ${n('dns', 'DNS record')}, ${n('exec', 'exec application')} (reported running by the owner's agent; reconcile does not check them)`;
}

/**
 * Seeds every group Online on OWNER, checks the records read back as written, starts the agents,
 * checks that the first reconcile finds the steady state, then measures steady-state reconciles.
 * `started`: when the size's setup began (network and apply included in setupMs).
 */
async function measure(
  h: Harness,
  runs: number,
  say: Say,
  label: string,
  started: number,
): Promise<Omit<SizeResult, 'where'>> {
  const at = Date.now();
  const seeded = new Map<string, GroupState[]>();
  for (const c of h.clusters) {
    const states = h.config(c).groups.map((g) => steadyGroupState(g, OWNER, at));
    await h.seed(c, states);
    const wrong = recordDifferences(states, await h.groups(c));
    if (wrong.length > 0)
      throw new Error(
        `${label}: ${wrong.length} seeded group records of ${c} do not read back as written: ${wrong.slice(0, 3).join('; ')}`,
      );
    seeded.set(c, states);
  }

  // The agents: both nodes renew at the definition's heartbeat interval for the whole measurement
  // (a slow reconcile on the emulator can outlast a lease). node1 reports every group running at
  // epoch 1. Each renewal carries the report of every group (at 1,000 groups an item of about 40 KB)
  // and is written on the emulator's one-at-a-time DynamoDB beside the controller's requests.
  const interval = Math.min(...h.clusters.map((c) => h.config(c).timing.heartbeatIntervalMs));
  let seq = 1;
  const beat = async () => {
    for (const c of h.clusters)
      for (const hb of agentHeartbeats(h.config(c), seeded.get(c) ?? [], seq)) await h.putHeartbeat(hb);
    seq++;
  };
  await beat();
  let renewing = true;
  const agents = (async () => {
    while (renewing) {
      await new Promise((r) => setTimeout(r, interval));
      await beat().catch((e) => say(`  ${label}: heartbeat failed: ${String(e)}`));
    }
  })();
  try {
    return await measureSteady(h, runs, say, label, Date.now() - started);
  } finally {
    renewing = false;
    await agents;
  }
}

interface SteadyRun {
  ms: number;
  outcomes: ClusterOutcome[];
  /** What the controller logged as a warning or an error. */
  warnings: string[];
  calls: Map<string, { calls: number; attempts: number; ms: number; maxMs: number }>;
  spans: Map<string, Span>;
}

/** One counted reconcile of every cluster. */
async function steadyRun(h: Harness, holder: string): Promise<SteadyRun> {
  const mutationsBefore = h.mutations();
  logged.length = 0;
  h.tally.reset();
  const t = performance.now();
  const outcomes = await h.reconcile(holder, true);
  const ms = performance.now() - t;
  const calls = h.tally.snapshot();
  const mutations = h.mutations() - mutationsBefore;
  if (mutations > 0) calls.set('cloud:mutation', { calls: mutations, attempts: mutations, ms: 0, maxMs: 0 });
  return {
    ms,
    outcomes,
    calls,
    warnings: [...logged],
    spans: new Map([...h.tally.spans].map(([k, v]) => [k, { ...v }])),
  };
}

/**
 * Why a reconcile of the seeded state was not steady: mutating calls, and every group that did not
 * decide an empty plan at once (converged, no action, one round) or is not Online on OWNER at epoch 1.
 */
function steadyProblems(h: Harness, run: SteadyRun): string[] {
  const out: string[] = [];
  const mutating = [...run.calls].filter(([n, o]) => kindOf(n) === 'mutating' && o.calls > 0);
  if (mutating.length > 0)
    out.push(`mutating calls: ${mutating.map(([n, o]) => `${n} ${o.calls}`).join(', ')}`);
  for (const o of run.outcomes) {
    const expected = h.config(o.cluster).groups.length;
    if (o.groups.length !== expected)
      out.push(`${o.cluster}: ${o.groups.length} of ${expected} groups reported`);
    for (const g of o.groups) {
      if (
        g.status === 'converged' &&
        g.actions === 0 &&
        g.rounds <= 1 &&
        g.phase === 'Online' &&
        g.owner === OWNER &&
        g.epoch === 1
      )
        continue;
      out.push(
        `${o.cluster}/${g.group}: ${g.status}, ${g.actions} actions in ${g.rounds} rounds, ${g.phase} on ${g.owner} at epoch ${g.epoch}${g.error ? `, ${g.error.code}: ${g.error.message}` : ''}`,
      );
    }
  }
  return out;
}

function notSteadyError(label: string, which: string, run: SteadyRun, problems: string[]): Error {
  return new Error(
    `${label}: the ${which} reconcile of the seeded state was not steady (${problems.length} problems; the seeding does not match what reconcile expects):\n  ${problems.slice(0, 8).join('\n  ')}${run.warnings.length ? `\ncontroller log:\n  ${run.warnings.slice(0, 10).join('\n  ')}` : ''}`,
  );
}

/** The controller's warnings of a run, for the progress output. */
function warningNote(run: SteadyRun): string {
  if (run.warnings.length === 0) return '';
  return `; controller logged ${run.warnings.length} warnings/errors, first: ${run.warnings[0]}`;
}

async function measureSteady(
  h: Harness,
  runs: number,
  say: Say,
  label: string,
  setupMs: number,
): Promise<Omit<SizeResult, 'where'>> {
  say(`  ${label}: setup ${(setupMs / 1000).toFixed(1)} s`);
  // The first reconcile after seeding checks the seeding (and warms connections and the JIT): it
  // must decide an empty plan for every group and make no mutating call. Not among the measured runs.
  const check = await steadyRun(h, holderId('check'));
  const problems = steadyProblems(h, check);
  if (problems.length > 0) throw notSteadyError(label, 'first', check, problems);
  say(
    `  ${label}: first reconcile after seeding (check): ${check.ms.toFixed(1)} ms, every group converged with an empty plan, ${summarizeCalls(check.calls)}${warningNote(check)}`,
  );
  const warnings = new Set(check.warnings.map((w) => `check: ${w}`));

  const ms: number[] = [];
  const tallies: SizeResult['tallies'] = [];
  const spans: SizeResult['spans'] = [];
  const unsteady = new Set<string>();
  for (let run = 0; run < runs; run++) {
    const r = await steadyRun(h, holderId(`steady${run}`));
    const wrong = steadyProblems(h, r);
    // The first measured run is held to the same standard; a later one that is not steady (a
    // transient API error, say) is reported in its row instead of discarding the whole bench.
    if (run === 0 && wrong.length > 0) throw notSteadyError(label, 'first measured', r, wrong);
    for (const w of wrong) unsteady.add(w);
    for (const w of r.warnings) warnings.add(`run ${run + 1}: ${w}`);
    ms.push(r.ms);
    tallies.push(r.calls);
    spans.push(r.spans);
    say(
      `  ${label}: steady reconcile ${run + 1}/${runs}: ${r.ms.toFixed(1)} ms, ${summarizeCalls(r.calls)}${warningNote(r)}`,
    );
  }
  const configs = h.clusters.map((c) => h.config(c));
  const groups = configs.reduce((n, c) => n + c.groups.length, 0);
  return {
    clusters: h.clusters.length,
    groups,
    ms,
    tallies,
    spans,
    unsteady: [...unsteady],
    setupMs,
    checkMs: check.ms,
    holds: holdsOf(configs),
    warnings: [...warnings],
  };
}

// ------------------------------------------------------------------------------------------------
// In-memory

/** The simulation's state table without its simulated latency: every call completes at once. */
class InstantWorld extends World {
  override delay(): Promise<void> {
    return Promise.resolve();
  }
}

async function inMemory(groups: number, runs: number, say: Say): Promise<SizeResult> {
  const started = Date.now();
  const config = scalingDefinition('bench', groups, fakeNetwork(groups));
  const stored: StoredConfig = { config, version: 1, hash: configHash(config), appliedAt: Date.now() };
  const memory = new MemoryStore(new InstantWorld(1), stored);
  const tally = new Tally();
  // The controller validates the stored definition on every read; so does this store.
  const validating = new Proxy(memory, {
    get(t, p, receiver) {
      if (p === 'getConfig')
        return async () => {
          const s = await t.getConfig();
          return s && { ...s, config: parseClusterConfig(s.config, 'bench') };
        };
      return Reflect.get(t, p, receiver);
    },
  });
  const store: StateStore = countMethods(validating as StateStore, 'store', tally);
  const world = new StoreWorld(memory);
  const cloud = new MemoryCloud(world);
  const counted = countedCloud(cloud, tally);
  const h: Harness = {
    clusters: ['bench'],
    tally,
    config: () => config,
    // The records as the store keeps them (`cluster/group`), as reconcile's acquireLock finds them.
    seed: async (c, states) => {
      for (const s of states) memory.groups.set(`${c}/${s.group}`, structuredClone(s));
      for (const g of config.groups) {
        for (const r of g.resources) if (r.type !== 'exec') cloud.entry.set(`${g.name}/${r.name}`, OWNER);
        world.running.set(g.name, new Map([[OWNER, 1]]));
      }
    },
    groups: async () => [...memory.groups.values()],
    putHeartbeat: (hb) => memory.agentPut(hb),
    mutations: () => cloud.mutations.length,
    reconcile: async (holder, isCounted) => {
      tally.enabled = isCounted;
      try {
        return [
          await reconcileCluster(
            {
              store,
              cloud: counted,
              notifier: { publish: async () => undefined },
              clock: systemClock,
              log: silent,
              holder,
            },
            'bench',
            { deadline: Date.now() + DEADLINE_MS },
          ),
        ];
      } finally {
        tally.enabled = true;
      }
    },
  };
  const result = await measure(h, runs, say, `in-memory ${groups}`, started);
  return { where: 'in-memory', ...result };
}

// ------------------------------------------------------------------------------------------------
// moto

/** The test kit's two nodes, a route table for the VIPs, a private hosted zone and the Elastic IPs. */
async function createNetwork(
  ec2: EC2Client,
  route53: Route53Client,
  index: number,
  groups: number,
): Promise<Network> {
  const prefix = `10.${60 + index}`;
  const zoneName = `c${index}-${randomBytes(4).toString('hex')}.bench.internal`;
  const base = await buildTwoNodeNetwork(ec2, route53, {
    cidr: `${prefix}.0.0/16`,
    subnets: { node1: `${prefix}.1.0/24`, node2: `${prefix}.2.0/24` },
    zoneName,
    zoneReference: randomBytes(8).toString('hex'),
  });
  const routeTableId = (await ec2.send(new CreateRouteTableCommand({ VpcId: base.vpcId }))).RouteTable
    ?.RouteTableId;
  if (!routeTableId) throw new Error('CreateRouteTable returned no id');
  const allocations: string[] = [];
  for (let i = 0; i < Math.ceil(groups / 10); i++)
    allocations.push((await allocateAddress(ec2)).allocationId);
  const nodes = NODE_NAMES.map((name) => {
    const { instanceId, eni, az, privateIp } = base.nodes[name];
    return { name, instanceId, eni, az, privateIp };
  });
  return {
    vpcId: base.vpcId,
    routeTableId,
    hostedZoneId: bareZoneId(base.hostedZoneId),
    zoneName,
    allocations,
    nodes,
  };
}

let networkIndex = 0;

async function onMoto(
  endpoint: string,
  clusters: number,
  groupsEach: number,
  runs: number,
  say: Say,
): Promise<SizeResult> {
  const started = Date.now();
  const label = clusters === 1 ? `moto ${groupsEach}` : `moto ${clusters}x${groupsEach}`;
  const aws: AwsOptions = { region: 'us-east-1', endpoint };
  const setup = clientConfig(aws);
  const ec2 = new EC2Client(setup);
  const route53 = new Route53Client({ ...setup, region: 'us-east-1' });
  const table = `bench-scaling-${randomBytes(4).toString('hex')}`;
  // The agents' and the operator's store (not counted), and the controller's (counted, validating).
  const admin = new DynamoStore(table, aws);
  await admin.createTable();
  const tally = new Tally();
  const store = new DynamoStore(table, aws, undefined, { validateConfig: parseClusterConfig });
  countClient(store.client, 'dynamodb', tally);
  const clients = createAwsClients(aws);
  countClient(clients.ec2, 'ec2', tally);
  countClient(clients.route53, 'route53', tally);
  countClient(clients.ssm, 'ssm', tally);
  const cloud = createAwsCloud(aws, { document: 'failover-guard' }, clients);
  const spanned = spanMethods(store, tally);

  const configs = new Map<string, ClusterConfig>();
  for (let c = 0; c < clusters; c++) {
    const name = `bench${c + 1}-${randomBytes(2).toString('hex')}`;
    const net = await createNetwork(ec2, route53, networkIndex++ % 150, groupsEach);
    const config = scalingDefinition(name, groupsEach, net);
    await admin.applyConfig(config, { now: Date.now(), by: 'bench' });
    configs.set(name, config);
  }
  say(`  ${label}: network and definition${clusters > 1 ? 's' : ''} in ${Date.now() - started} ms`);
  const names = [...configs.keys()];
  const h: Harness = {
    clusters: names,
    tally,
    config: (c) => configs.get(c) as ClusterConfig,
    seed: async (c, states) => {
      const config = configs.get(c) as ClusterConfig;
      const owner = config.nodes.find((n) => n.name === OWNER);
      if (!owner) throw new Error(`${c} has no node ${OWNER}`);
      const t = Date.now();
      const entry = await seedEntryPoints(ec2, route53, config, owner);
      const t2 = Date.now();
      const requests = await writeGroupRecords(admin, c, states);
      say(
        `  ${label}: seeded ${c}: ${entry.routes} routes, ${entry.addresses} EIP associations and ${entry.records} DNS records on ${OWNER} in ${entry.calls} calls (${t2 - t} ms), ${states.length} group records in ${requests} BatchWriteItem (${Date.now() - t2} ms)`,
      );
    },
    groups: (c) => admin.listGroups(c),
    putHeartbeat: (hb) => admin.putHeartbeat(hb),
    mutations: () => 0,
    reconcile: async (holder, isCounted) => {
      tally.enabled = isCounted;
      try {
        const deps = {
          store: spanned,
          cloud,
          notifier: { publish: async () => undefined },
          clock: systemClock,
          log: silent,
          holder,
        };
        const settled = await Promise.allSettled(
          names.map((c) => reconcileCluster(deps, c, { deadline: Date.now() + DEADLINE_MS })),
        );
        return settled.map((s, i) => {
          if (s.status === 'rejected')
            throw new Error(`reconcile of ${names[i]} failed: ${String(s.reason)}`);
          return s.value;
        });
      } finally {
        tally.enabled = true;
      }
    },
  };
  const result = await measure(h, runs, say, label, started);
  return { where: 'moto', ...result };
}

// ------------------------------------------------------------------------------------------------
// Report

/** Median over runs of each operation's call count. */
function medianCalls(r: SizeResult): Map<string, number> {
  const names = new Set(r.tallies.flatMap((t) => [...t.keys()]));
  return new Map(
    [...names].sort().map((n) => [n, spread(r.tallies.map((t) => t.get(n)?.calls ?? 0)).median] as const),
  );
}

function kindTotals(calls: Map<string, number>): Record<Kind, number> {
  const out: Record<Kind, number> = { read: 0, write: 0, describe: 0, check: 0, mutating: 0, other: 0 };
  for (const [n, c] of calls) out[kindOf(n)] += c;
  return out;
}

function list(calls: Map<string, number>, kind: Kind): string {
  const parts = [...calls]
    .filter(([n, c]) => kindOf(n) === kind && c > 0)
    .map(([n, c]) => `${n.split(':')[1]} ${c}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function summarizeCalls(t: Map<string, { calls: number }>): string {
  const calls = new Map([...t].map(([k, v]) => [k, v.calls]));
  const k = kindTotals(calls);
  return `reads ${k.read}${list(calls, 'read')}, writes ${k.write}${list(calls, 'write')}, describes ${k.describe}${list(calls, 'describe')}${k.check ? `, checks ${k.check}${list(calls, 'check')}` : ''}, mutating ${k.mutating}${list(calls, 'mutating')}`;
}

/** Where the time of the median run went: the operations with the most summed latency. */
/** The run with the median wall time. */
function medianRun(r: SizeResult): number {
  const order = r.ms.map((ms, i) => [ms, i] as const).sort((a, b) => a[0] - b[0]);
  return order[Math.floor((order.length - 1) / 2)]?.[1] ?? 0;
}

/**
 * Where the time of the median run went: when the last lock was taken (reconcile waits for every
 * lock before reading), when the shared reads were done, when the last lock was released; and the
 * requests that spent the most time in flight (on the emulator that includes waiting for its
 * DynamoDB lock: it runs one DynamoDB request at a time).
 */
function timeNote(r: SizeResult): string {
  const i = medianRun(r);
  const run = r.tallies[i];
  const spans = r.spans[i];
  if (!run || !spans) return '';
  const at = (name: string) => {
    const s = spans.get(name);
    return s ? `${(s.last / 1000).toFixed(2)} s` : 'n/a';
  };
  const parts = [
    ...(spans.has('listGroups') ? [`group records listed at ${at('listGroups')}`] : []),
    `${spans.get('acquireLock')?.n ?? 0} locks taken${spans.has('acquireLock') ? ` (the last at ${at('acquireLock')})` : ''}`,
    `shared reads done at ${at('getHeartbeats')}`,
    `${spans.get('releaseLock')?.n ?? 0} releases${spans.has('releaseLock') ? ` (the last at ${at('releaseLock')})` : ''}`,
  ];
  const phases = parts.join(', ');
  if (r.where === 'in-memory') return `${phases} (controller CPU only: the store and cloud answer at once)`;
  const top = [...run]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 2)
    .map(([n, o]) => `${n} ${o.calls} x ${(o.ms / Math.max(1, o.calls)).toFixed(0)} ms`);
  const retries = [...run]
    .filter(([, o]) => o.attempts > o.calls)
    .map(([n, o]) => `${n} ${o.attempts - o.calls}`);
  return `${phases}; most time in flight: ${top.join(', ')}${retries.length ? `; retried attempts: ${retries.join(', ')}` : ''}`;
}

/** The runs' DynamoDB reads and writes when they differ (the median would hide an odd run). */
function perRunNote(r: SizeResult): string {
  const totals = r.tallies.map((t) => kindTotals(new Map([...t].map(([k, v]) => [k, v.calls]))));
  const parts = (['read', 'write'] as const)
    .filter((kind) => new Set(totals.map((t) => t[kind])).size > 1)
    .map((kind) => `${kind}s ${totals.map((t) => t[kind]).join(' / ')}`);
  return parts.length ? `; per run: ${parts.join(', ')}` : '';
}

function rowsFor(r: SizeResult): BenchRow[] {
  const who = r.where === 'moto' ? 'moto' : 'in-memory';
  const shape =
    r.clusters === 1
      ? `${r.groups} group${r.groups === 1 ? '' : 's'}`
      : `${r.clusters} clusters x ${r.groups / r.clusters} groups`;
  const calls = medianCalls(r);
  const k = kindTotals(calls);
  const rows: BenchRow[] = [
    {
      section: SECTION,
      metric: `${shape}, ${who}: steady-state reconcile wall time`,
      value: formatSpread(spread(r.ms), 'ms', 1),
      note: `${timeNote(r)}; the groups hold ${r.holds}, all on ${OWNER}; setup (${r.where === 'moto' ? 'network, apply, ' : ''}seeding, read-back) ${(r.setupMs / 1000).toFixed(1)} s; first reconcile after seeding (the check, not measured) ${r.checkMs.toFixed(1)} ms${r.warnings.length ? `; controller warnings: ${r.warnings.slice(0, 2).join('; ')}` : ''}${r.unsteady.length ? `; NOT STEADY: ${r.unsteady.slice(0, 3).join('; ')}` : ''}`,
    },
    {
      section: SECTION,
      metric: `${shape}, ${who}: calls per reconcile`,
      value:
        `DynamoDB reads ${k.read}${list(calls, 'read')} · writes ${k.write}${list(calls, 'write')} · ` +
        `describes ${k.describe}${list(calls, 'describe')} · ${k.check ? `entry-point checks ${k.check}${list(calls, 'check')} · ` : ''}mutating ${k.mutating}${list(calls, 'mutating')}`,
      note: `${
        r.where === 'in-memory'
          ? 'state-store and cloud port calls (in memory: no I/O); median of the runs'
          : 'SDK calls counted by middleware; median of the runs'
      }${perRunNote(r)}`,
    },
  ];
  return rows;
}

function targetRows(results: SizeResult[]): BenchRow[] {
  const rows: BenchRow[] = [];
  const single = (where: SizeResult['where']) => results.filter((r) => r.where === where && r.clusters === 1);
  for (const where of ['in-memory', 'moto'] as const) {
    const largest = single(where).sort((a, b) => b.groups - a.groups)[0];
    if (!largest) continue;
    const s: Spread = spread(largest.ms.map((x) => x / 1000));
    rows.push({
      section: SECTION,
      metric: `${largest.groups.toLocaleString('en-US')} groups <= ${TARGET_S} s per reconcile (${where})`,
      value: formatSpread(s, 's', 3),
      target: `median <= ${TARGET_S} s`,
      met: s.n > 0 && s.median <= TARGET_S && largest.unsteady.length === 0,
      note:
        where === 'in-memory'
          ? 'controller CPU only (this machine; a 256 MB Lambda has a fraction of a vCPU)'
          : timeNote(largest),
    });
  }

  const moto = single('moto').sort((a, b) => a.groups - b.groups);
  if (moto.length > 0) {
    const reads = moto.map((r) => kindTotals(medianCalls(r)).read);
    const two = results.find((r) => r.where === 'moto' && r.clusters > 1);
    const twoReads = two ? kindTotals(medianCalls(two)).read : undefined;
    const flat = reads.every((x) => x === reads[0]);
    rows.push({
      section: SECTION,
      metric: 'DynamoDB reads per reconcile independent of groups',
      value: `${moto.map((r, i) => `${r.groups} group${r.groups === 1 ? '' : 's'}: ${reads[i]}`).join(', ')}${two && twoReads !== undefined ? `; ${two.clusters} clusters x ${two.groups / two.clusters}: ${twoReads}` : ''}`,
      target: 'same count for every group count; grows with clusters',
      met: flat && (twoReads === undefined || twoReads === (reads[0] ?? 0) * (two?.clusters ?? 1)),
      note: 'moto, GetItem + BatchGetItem + Query per steady-state reconcile (median)',
    });

    // Per cluster and kind, the largest count over the sizes, against what one call per kind means:
    // a single call, except a listing that pages (Route 53 returns at most 300 records a page).
    const perKind = new Map<string, { calls: number; allowed: number; groups: number }>();
    for (const r of [...moto, ...(two ? [two] : [])]) {
      const groups = r.groups / r.clusters;
      for (const [n, c] of medianCalls(r)) {
        if (kindOf(n) !== 'describe') continue;
        const calls = c / r.clusters;
        const allowed = n === 'route53:ListResourceRecordSets' ? Math.max(1, Math.ceil(groups / 300)) : 1;
        const seen = perKind.get(n);
        if (!seen || calls > seen.calls) perKind.set(n, { calls, allowed, groups });
      }
    }
    const over = [...perKind].filter(([, k]) => k.calls > k.allowed);
    rows.push({
      section: SECTION,
      metric: 'one describe call per kind',
      value:
        [...perKind]
          .map(
            ([n, k]) =>
              `${n.split(':')[1]} ${k.calls}${k.allowed > 1 ? ` (${k.groups} records: ${k.allowed} pages)` : ''}`,
          )
          .join(', ') || 'none',
      target: 'one call per kind per cluster (a listing: its pages of 300 records)',
      met: over.length === 0,
      note: 'largest count per cluster over every moto size; before this change ListResourceRecordSets was one call per dns resource (1,000 at 1,000 groups)',
    });
  }

  const mutating = results.map((r) => ({
    r,
    n: spread(r.tallies.map((t) => kindTotals(new Map([...t].map(([k, v]) => [k, v.calls]))).mutating)).max,
  }));
  rows.push({
    section: SECTION,
    metric: '0 mutating calls in steady state',
    value: mutating
      .map(
        ({ r, n }) =>
          `${r.where} ${r.clusters > 1 ? `${r.clusters}x${r.groups / r.clusters}` : r.groups}: ${n}`,
      )
      .join(', '),
    target: '0 in every steady-state reconcile',
    met: mutating.every(({ n }) => n === 0) && results.every((r) => r.unsteady.length === 0),
    note: 'EC2/Route 53/SSM calls other than Describe/List/Get (in memory: the cloud’s mutations); every group converged with 0 actions',
  });
  return rows;
}

export async function runScalingBench(opts: ScalingOptions): Promise<BenchRow[]> {
  const { say } = opts;
  const started = Date.now();
  const sizes = opts.sizes ?? DEFAULT_SIZES;
  const runs = opts.runs ?? DEFAULT_RUNS;
  const results: SizeResult[] = [];
  let outcome = 'failed';
  try {
    for (const g of sizes) {
      say(`reconcile scaling: in-memory, ${g} groups`);
      results.push(await inMemory(g, runs, say));
    }

    if (!opts.skipMoto) {
      process.env.AWS_ACCESS_KEY_ID ??= 'testing';
      process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
      // @ts-expect-error plain ESM script without type declarations
      const { startEmulator } = await import('../scripts/emulator.mjs');
      const emulator: { endpoint: string; stop: () => Promise<void> } = await startEmulator({
        log: say,
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      });
      try {
        for (const g of sizes) {
          say(`reconcile scaling: moto, ${g} groups`);
          results.push(await onMoto(emulator.endpoint, 1, g, runs, say));
        }
        const half = Math.floor(Math.max(...sizes) / 2);
        if (half >= 1) {
          say(`reconcile scaling: moto, 2 clusters x ${half} groups`);
          results.push(await onMoto(emulator.endpoint, 2, half, runs, say));
        }
      } finally {
        await emulator.stop();
      }
    }
    outcome = 'done';
  } finally {
    say(`reconcile scaling: ${outcome}, total wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  return [...results.flatMap(rowsFor), ...targetRows(results)];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (flag: string) => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const sizes = arg('--groups')
    ?.split(',')
    .map((s) => Number(s.replace(/_/g, '')));
  const runs = arg('--runs');
  const { renderTable } = await import('./report');
  const rows = await runScalingBench({
    say: (line) => process.stderr.write(`${line}\n`),
    ...(process.env.AWS_ENDPOINT_URL ? { endpoint: process.env.AWS_ENDPOINT_URL } : {}),
    ...(sizes ? { sizes } : {}),
    ...(runs ? { runs: Number(runs) } : {}),
    ...(process.argv.includes('--in-memory') ? { skipMoto: true } : {}),
  });
  process.stdout.write(`${renderTable(rows)}\n`);
}
