/**
 * One fault schedule run end to end: three simulated nodes with agents, the in-memory state table
 * and cloud, and the *real* reconcile/decide code invoked the way AWS would invoke it (1-minute
 * schedule, stream records of agent changes and requests, EC2 state changes), with duplicated,
 * delayed, reordered and lost triggers, concurrent invocations, throttling, lost answers, stale
 * reads, crashes, partitions, paused agents, clock skew and jumps.
 *
 * Invariants are checked after every simulated event:
 *   - never two nodes running one group's application;
 *   - epochs never go back (MemoryStore) and every mutation lands at the current epoch, under the
 *     lock of the invocation that fenced it (SimCloud);
 * and once faults stop (all nodes healthy), convergence to exactly one Online owner that runs the
 * application and holds every entry point.
 */
import fc from 'fast-check';
import { reconcileCluster } from '../../../controller/reconcile/reconcile';
import { parseClusterConfig } from '../../../shared/config/load';
import type { RequestKind } from '../../../shared/core/model';
import { hasApplication, nodeStopBudgets } from '../../../shared/core/node-side';
import type { Log } from '../../../shared/core/ports';
import { MemoryStore } from '../../../testkit/memory-store';
import { World } from '../../../testkit/world';
import { SimCloud } from './sim-cloud';
import { SimNode } from './sim-node';

export const NODES = ['node1', 'node2', 'node3'] as const;
type NodeName = (typeof NODES)[number];

export type Fault =
  | { kind: 'crash'; node: NodeName; at: number; downFor: number; instanceStopped: boolean }
  | { kind: 'kill-agent'; node: NodeName; at: number; restartAfter: number | null }
  | { kind: 'partition'; node: NodeName; at: number; duration: number }
  | { kind: 'pause'; node: NodeName; at: number; duration: number }
  | { kind: 'clock'; node: NodeName; at: number; offset: number }
  | { kind: 'throttle'; at: number; duration: number; p: number }
  | { kind: 'lost-responses'; at: number; duration: number; p: number }
  | { kind: 'stale-reads'; at: number; duration: number; p: number }
  | { kind: 'events'; at: number; duration: number; lose: number; duplicate: number; maxDelay: number }
  | { kind: 'burst'; at: number; count: number }
  | { kind: 'request'; at: number; request: RequestKind; to?: NodeName }
  | { kind: 'tamper'; at: number; group: string; resource: string; node: NodeName };

export interface Scenario {
  seed: number;
  faults: Fault[];
  /** Agents' wall clocks may be off by more than maxClockSkewMs (safety must hold anyway). */
  wildClocks: boolean;
  /**
   * Nodes run an armed watchdog. Without one, a node whose agent dies or freezes while its
   * application runs is not covered (documented): those faults are left out of such schedules.
   */
  watchdog: boolean;
}

export const FAULT_WINDOW_MS = 90_000;
const HEAL_AT_MS = 100_000;
const CONVERGE_BY_MS = HEAL_AT_MS + 200_000;

const node = fc.constantFrom(...NODES);
const at = fc.integer({ min: 0, max: FAULT_WINDOW_MS });

export const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({
    kind: fc.constant('crash' as const),
    node,
    at,
    downFor: fc.integer({ min: 1_000, max: 60_000 }),
    instanceStopped: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('kill-agent' as const),
    node,
    at,
    restartAfter: fc.option(fc.integer({ min: 500, max: 30_000 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('partition' as const),
    node,
    at,
    duration: fc.integer({ min: 200, max: 30_000 }),
  }),
  fc.record({
    kind: fc.constant('pause' as const),
    node,
    at,
    duration: fc.integer({ min: 100, max: 10_000 }),
  }),
  fc.record({
    kind: fc.constant('clock' as const),
    node,
    at,
    offset: fc.integer({ min: -30_000, max: 30_000 }),
  }),
  fc.record({
    kind: fc.constant('throttle' as const),
    at,
    duration: fc.integer({ min: 500, max: 20_000 }),
    p: fc.double({ min: 0.05, max: 0.6, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('lost-responses' as const),
    at,
    duration: fc.integer({ min: 500, max: 20_000 }),
    p: fc.double({ min: 0.05, max: 0.4, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('stale-reads' as const),
    at,
    duration: fc.integer({ min: 500, max: 30_000 }),
    p: fc.double({ min: 0.1, max: 0.9, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('events' as const),
    at,
    duration: fc.integer({ min: 1_000, max: 40_000 }),
    lose: fc.double({ min: 0, max: 0.9, noNaN: true }),
    duplicate: fc.double({ min: 0, max: 0.5, noNaN: true }),
    maxDelay: fc.integer({ min: 10, max: 5_000 }),
  }),
  fc.record({ kind: fc.constant('burst' as const), at, count: fc.integer({ min: 2, max: 5 }) }),
  fc.record({
    kind: fc.constant('request' as const),
    at,
    request: fc.constantFrom<RequestKind>('move', 'stop', 'start', 'move'),
    to: node,
  }),
  fc.record({
    kind: fc.constant('tamper' as const),
    at,
    group: fc.constantFrom('db', 'web'),
    resource: fc.constantFrom('vip', 'eip', 'dns'),
    node,
  }),
);

export const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
    faults: fc.array(faultArb, { minLength: 1, maxLength: 14 }),
    wildClocks: fc.boolean(),
    watchdog: fc.boolean(),
  })
  .map((s) =>
    s.watchdog ? s : { ...s, faults: s.faults.filter((f) => f.kind !== 'kill-agent' && f.kind !== 'pause') },
  );

const CONFIG = parseClusterConfig({
  cluster: 'sim',
  region: 'us-east-1',
  timing: { heartbeatIntervalMs: 500, leaseMs: 2000, maxClockSkewMs: 200, fenceMarginMs: 500 },
  nodes: NODES.map((name, i) => ({
    name,
    instanceId: `i-${i + 1}`,
    eni: `eni-${i + 1}`,
    az: `us-east-1${'abc'[i]}`,
    privateIp: `10.0.${i + 1}.10`,
  })),
  groups: [
    {
      name: 'db',
      nodes: ['node1', 'node2', 'node3'],
      stableAfterMs: 20_000,
      resources: [
        { type: 'vip', name: 'db-vip', ip: '172.16.0.10', vpcId: 'vpc-1' },
        { type: 'eip', name: 'db-eip', allocationId: 'eipalloc-1' },
        {
          type: 'dns',
          name: 'db-dns',
          hostedZoneId: 'Z1',
          recordName: 'db.sim.internal',
          deleteOnDeactivate: true,
        },
        { type: 'exec', name: 'db-app', start: '/opt/db/start', stop: '/opt/db/stop', timeoutSec: 5 },
      ],
    },
    {
      name: 'web',
      nodes: ['node2', 'node3'],
      stableAfterMs: 20_000,
      resources: [
        { type: 'vip', name: 'web-vip', ip: '172.16.0.20', vpcId: 'vpc-1' },
        { type: 'exec', name: 'web-app', start: '/opt/web/start', stop: '/opt/web/stop', timeoutSec: 5 },
      ],
    },
    {
      // A floating IP without application: its agent brings it up (addresses on the interface).
      name: 'fip',
      nodes: ['node3', 'node1'],
      stableAfterMs: 20_000,
      resources: [
        { type: 'vip', name: 'fip-vip', ip: '172.16.0.30', vpcId: 'vpc-1' },
        { type: 'eip', name: 'fip-eip', allocationId: 'eipalloc-3' },
      ],
    },
  ],
});

export interface ScenarioResult {
  violations: string[];
  invocations: number;
  takeovers: number;
  mutations: number;
  fences: number;
  resets: number;
  log: string[];
}

const silent: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface RunOptions {
  keepLog?: boolean;
  log?: Log;
  /** Break the agent on purpose, to show the invariants catch it. */
  mutant?: 'no-self-fence' | 'understated-stop-time';
}

export async function runScenario(scenario: Scenario, options: RunOptions = {}): Promise<ScenarioResult> {
  const world = new World(scenario.seed, { keepLog: options.keepLog ?? false });
  const rng = world.rng;
  const stored = { config: CONFIG, version: 1, hash: 'sim', appliedAt: 0 };
  const store = new MemoryStore(world, stored);
  const nodes = new Map<string, SimNode>();
  const cloud = new SimCloud(world, store, nodes);
  const timing = CONFIG.timing;
  let invocations = 0;
  let requestCount = 0;
  const eventFaults = { lose: 0, duplicate: 0, maxDelay: 300 };

  const invoke = (why: string) => {
    const n = ++invocations;
    const offset = rng.int(-timing.maxClockSkewMs / 2, timing.maxClockSkewMs / 2);
    const clock = {
      now: () => world.t + offset,
      sleep: (ms: number, signal?: AbortSignal) => world.delay(ms, signal),
    };
    world.note(`invoke #${n} (${why})`);
    const deps = {
      store,
      cloud,
      notifier: { publish: async () => undefined },
      clock,
      log: options.log ?? silent,
      holder: `inv-${n}`,
    };
    reconcileCluster(deps, 'sim', { deadline: clock.now() + 10_000 }).then(
      (outcome) =>
        world.note(
          `invoke #${n} done: ${outcome.groups.map((g) => `${g.group}:${g.status}/${g.owner}@${g.epoch}`).join(' ')}`,
        ),
      (e) => world.note(`invoke #${n} failed: ${(e as Error).message}`),
    );
  };
  /** An event delivered the way EventBridge / DynamoDB Streams would: maybe late, twice, or never. */
  const trigger = (why: string) => {
    if (rng.chance(eventFaults.lose)) return;
    const copies = rng.chance(eventFaults.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) world.after(rng.int(20, eventFaults.maxDelay), () => invoke(why));
  };

  for (const name of NODES) {
    nodes.set(
      name,
      new SimNode(world, store, {
        cluster: 'sim',
        name,
        instanceId: CONFIG.nodes.find((n) => n.name === name)!.instanceId,
        groups: CONFIG.groups.filter((g) => g.nodes.includes(name)).map((g) => g.name),
        selfStarted: CONFIG.groups
          .filter((g) => g.nodes.includes(name) && !hasApplication(g))
          .map((g) => g.name),
        timing,
        onChange: (n) => trigger(`stream: ${n} changed`),
        selfFence: options.mutant !== 'no-self-fence',
        watchdog: scenario.watchdog,
        ...(options.mutant === 'understated-stop-time' ? { reportedStopMs: 0 } : {}),
        maxStopMs: nodeStopBudgets(CONFIG).get(name) ?? 0,
      }),
    );
  }
  const sim = (name: string) => nodes.get(name)!;

  // The 1-minute schedule, reliable, with a first run soon after start.
  world.after(3_000, () => invoke('schedule'));
  world.every(60_000, () => {
    invoke('schedule');
    return true;
  });

  const submit = (kind: RequestKind, to?: string) => {
    const id = `r${++requestCount}`;
    for (const g of CONFIG.groups.map((x) => x.name)) {
      store.requests.set(`${id}-${g}`, {
        id: `${id}-${g}`,
        kind,
        group: g,
        ...(to ? { to } : {}),
        createdAt: world.t,
        by: 'sim',
        status: 'pending',
      });
    }
    world.note(`request ${id}: ${kind}${to ? ` ${to}` : ''}`);
    trigger('stream: request');
  };

  for (const f of scenario.faults) {
    world.at(f.at, () => {
      world.note(`FAULT ${JSON.stringify(f)}`);
      switch (f.kind) {
        case 'crash':
          sim(f.node).crash(f.downFor, f.instanceStopped);
          if (f.instanceStopped) trigger('ec2: instance stopped');
          break;
        case 'kill-agent':
          sim(f.node).killAgent(f.restartAfter ?? undefined);
          break;
        case 'partition':
          sim(f.node).partitioned = true;
          world.after(f.duration, () => {
            sim(f.node).partitioned = false;
          });
          break;
        case 'pause':
          sim(f.node).paused = true;
          world.after(f.duration, () => {
            sim(f.node).paused = false;
          });
          break;
        case 'clock': {
          // A jump of the agent's wall clock; only wall-clock-free rules may keep us safe.
          const bound = scenario.wildClocks ? Math.abs(f.offset) : timing.maxClockSkewMs / 2;
          sim(f.node).wallOffset = Math.max(-bound, Math.min(bound, f.offset));
          break;
        }
        case 'throttle':
          store.faults.throttle = f.p;
          cloud.throttle = f.p;
          world.after(f.duration, () => {
            store.faults.throttle = 0;
            cloud.throttle = 0;
          });
          break;
        case 'lost-responses':
          store.faults.lostResponse = f.p;
          world.after(f.duration, () => {
            store.faults.lostResponse = 0;
          });
          break;
        case 'stale-reads':
          store.faults.staleRead = f.p;
          world.after(f.duration, () => {
            store.faults.staleRead = 0;
          });
          break;
        case 'events':
          Object.assign(eventFaults, { lose: f.lose, duplicate: f.duplicate, maxDelay: f.maxDelay });
          world.after(f.duration, () => Object.assign(eventFaults, { lose: 0, duplicate: 0, maxDelay: 300 }));
          break;
        case 'burst':
          for (let i = 0; i < f.count; i++) invoke('burst');
          break;
        case 'request':
          submit(
            f.request,
            f.request === 'move' || (f.request === 'start' && rng.chance(0.3)) ? f.to : undefined,
          );
          break;
        case 'tamper': {
          const key = `${f.group}/${f.group}-${f.resource}`;
          if (cloud.entry.has(key)) cloud.entry.set(key, f.node);
          break;
        }
      }
    });
  }

  // Heal: every node up with a live agent, no partition, clocks back within bounds, faults off.
  world.at(HEAL_AT_MS, () => {
    world.note('HEAL');
    Object.assign(store.faults, { throttle: 0, lostResponse: 0, staleRead: 0 });
    cloud.throttle = 0;
    Object.assign(eventFaults, { lose: 0, duplicate: 0, maxDelay: 300 });
    for (const n of nodes.values()) {
      n.partitioned = false;
      n.paused = false;
      n.wallOffset = rng.int(-timing.maxClockSkewMs / 4, timing.maxClockSkewMs / 4);
      if (!n.up) n.boot();
      else if (!n.agentAlive) n.restartAgent();
    }
    // An operator who stopped a group starts it again; a start of a running group changes nothing.
    submit('start');
  });

  const safety = () => {
    for (const g of CONFIG.groups) {
      const runners = [...nodes.values()]
        .filter((n) => n.up && n.running.has(g.name))
        .map((n) => `${n.name}@${n.running.get(g.name)}`);
      if (runners.length > 1)
        world.violation(`split brain: group ${g.name} runs on ${runners.join(' and ')}`);
    }
  };
  await world.runUntil(CONVERGE_BY_MS, safety);

  if (world.violations.length === 0) {
    for (const g of CONFIG.groups) {
      const rec = store.groups.get(`sim/${g.name}`);
      const runners = [...nodes.values()].filter((n) => n.running.has(g.name)).map((n) => n.name);
      const problems: string[] = [];
      if (!rec) problems.push('no group record');
      else {
        if (rec.phase !== 'Online') problems.push(`phase ${rec.phase} (${rec.lastError ?? ''})`);
        if (runners.length !== 1 || runners[0] !== rec.owner)
          problems.push(`owner ${rec.owner} but running on [${runners.join(', ')}]`);
        if (rec.mayRun.length !== 1 || rec.mayRun[0] !== rec.owner)
          problems.push(`mayRun [${rec.mayRun.join(', ')}]`);
        for (const r of g.resources) {
          if (r.type === 'exec') continue;
          const holder = cloud.entry.get(`${g.name}/${r.name}`) ?? null;
          if (holder !== rec.owner) problems.push(`${r.name} on ${holder} instead of ${rec.owner}`);
        }
      }
      if (problems.length > 0)
        world.violation(`no convergence for ${g.name} by ${CONVERGE_BY_MS} ms: ${problems.join('; ')}`);
    }
  }
  world.stop();
  return {
    violations: world.violations,
    invocations,
    takeovers: Math.max(0, ...[...store.groups.values()].map((g) => g.epoch)),
    mutations: cloud.mutations.length,
    fences: [...nodes.values()].reduce((a, n) => a + n.fences, 0),
    resets: [...nodes.values()].reduce((a, n) => a + n.resets, 0),
    log: world.log,
  };
}
