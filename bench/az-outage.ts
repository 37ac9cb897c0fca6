/**
 * An Availability Zone outage at scale, on the emulator: 1,000 groups across two AZs in one cluster
 * (and 100 clusters x 10 groups), half of the owners in us-east-1a. At t0 that zone fails: its
 * agents go silent and DescribeAvailabilityZones reports it impaired. Every group owned there must
 * come online in us-east-1b — its VIP route, Elastic IP, DNS record and application moved by the
 * real controller code (reconcile over the real SDK clients, store and drivers) on the moto server.
 *
 * What plays the rest of AWS:
 * - the agents are simulated, but with the agent's own parts: every node renews its lease at the
 *   definition's heartbeat with the agent's HeartbeatWriter and its conditional write (node-agent/
 *   store.ts: a renewal landing after a newer one of the same agent is refused, as the writer keeps
 *   up to three in flight), reports the groups it runs, and watches its peer with node-agent/core/
 *   peers.ts (PeerWatcher, PeerReads): it reads the peer's item right after the peer's renewal is
 *   due (the phase of its send times), counts the silence from the first read of the last renewal
 *   and reports it by a timer the moment a lease has passed since, as agent.ts watchPeers does. A
 *   read returns the peer's newest renewal the table has acknowledged to its writer (never sooner
 *   than a real read could see it). A survivor writes a `change` report when its peer's silence
 *   crosses the lease, and when a group starts on it (the SSM start command reached it);
 * - the stream: every `change` report is handed to the real stream handler (handleStream), the
 *   records of 250 ms in one batch, at most 3 batches at once, as the event source mapping does
 *   (moto's own stream also carries every controller write, which the filter drops; reading all of
 *   it would only measure the poller);
 * - SSM: moto records SendCommand and reports Success at once; the simulated agent takes each start
 *   command it receives as the guard's start (the group runs there from then on);
 * - the zone's impairment: the controller's DescribeAvailabilityZones answer, from t0.
 *
 * Printed: groups moved, time from t0 until each was online on the survivor (p50 / p95 / last), AWS
 * calls by kind, throttled attempts, and the checks that no group was left behind (record Online on
 * the survivor at a new epoch, `mayRun` only the survivor, every entry point on it) and that no group
 * was ever started on a second node while the first could still run it.
 *
 *   npx tsx bench/az-outage.ts [--shapes 1x1000,100x10] [--keep-emulator]
 *   AZ_OUTAGE_TRACE=/tmp/az.log npx tsx bench/az-outage.ts ...   # the controller's log, by time
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  AllocateAddressCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeAddressesCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateHostedZoneCommand,
  ListResourceRecordSetsCommand,
  type ResourceRecordSet,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { clientConfig } from '../controller/aws/clients';
import { systemClock } from '../controller/reconcile/clock';
import { type ControllerDeps, handleEventBridge, handleStream } from '../controller/reconcile/entry';
import { isThrottle } from '../controller/reconcile/metrics';
import { createAwsClients, createAwsCloud } from '../controller/resources';
import { ensureGuardDocument } from '../controller/resources/guard-document';
import { DynamoStore } from '../controller/state/dynamo-store';
import { fencePromise } from '../node-agent/core/claims';
import type { Clock, Scheduler } from '../node-agent/core/clock';
import { HEARTBEAT_SUPERSEDED, HeartbeatWriter, type ReportParts } from '../node-agent/core/heartbeat-writer';
import { PeerReads, PeerWatcher } from '../node-agent/core/peers';
import { type AgentStore, openStore } from '../node-agent/store';
import { scheduled } from '../sandbox/sandbox';
import type { AwsOptions } from '../shared/aws/options';
import { type ClusterConfig, parseClusterConfig } from '../shared/config/load';
import type { ClusterInput, GroupConfig } from '../shared/config/schema';
import type { GroupState, Heartbeat } from '../shared/core/model';
import type { Cloud, Log, ResourceDriver } from '../shared/core/ports';
import { heartbeatPk, instanceArn } from '../shared/table/keys';
import { anyImage, bareZoneId } from '../testkit/emulator-network';
import { countSdkCalls } from '../testkit/sdk-calls';
import { type BenchRow, percentile, type Say } from './report';
import { seedEntryPoints, steadyGroupState, writeGroupRecords } from './scaling-seed';

/** The guard's SSM document in the bench's account (a deployment's is failover-guard-<stage>). */
const BENCH_GUARD_DOCUMENT = 'failover-guard-bench';

const SECTION = 'AZ outage (emulator)';
const FAILED_AZ = 'us-east-1a';
const SURVIVING_AZ = 'us-east-1b';
/** Issue 20: every affected group online in the other zone within a minute. */
const TARGET_S = 60;
/** Give up waiting after this long (the figures say how far it got). */
const GIVE_UP_MS = 240_000;
/** The Lambda timeout (serverless.yml) minus LAMBDA_RESERVE_MS. */
const INVOCATION_MS = 57_000;
const STREAM_BATCH_MS = 250;
const STREAM_IN_FLIGHT = 3;
const SCHEDULE_MS = 60_000;

export interface AzShape {
  clusters: number;
  groupsEach: number;
}

export const DEFAULT_SHAPES: readonly AzShape[] = [
  { clusters: 1, groupsEach: 1000 },
  { clusters: 100, groupsEach: 10 },
];

export interface AzOutageOptions {
  say: Say;
  shapes?: readonly AzShape[];
  /** A running moto server; else one is started (and stopped) here. */
  endpoint?: string;
}

interface NodeInfo {
  name: 'node1' | 'node2';
  instanceId: string;
  eni: string;
  privateIp: string;
  az: string;
}

interface Account {
  vpcId: string;
  routeTableId: string;
  hostedZoneId: string;
  zoneName: string;
  /** Per cluster, its two nodes (node1 in the failing zone, node2 in the surviving one). */
  nodes: NodeInfo[][];
  allocations: string[];
}

export interface AzOutageResult {
  shape: AzShape;
  groups: number;
  affected: number;
  /** Per affected group, seconds from t0 until everything it has was activated on the survivor. */
  switchedS: number[];
  leftBehind: string[];
  doubleRun: string[];
  /** Calls of the controller from t0 to the end, per service:operation (attempts in brackets). */
  calls: Map<string, { calls: number; attempts: number; throttled: number; ms: number }>;
  invocations: number;
  setupS: number;
  /** Per survivor, seconds from t0 until its report of the peer's silence was acknowledged. */
  detectionS: number[];
  /** The simulated agents' change reports, renewals refused as superseded, failed writes. */
  agentWrites: { changes: number; superseded: number; failed: number };
  errors: string[];
}

// ------------------------------------------------------------------------------------------------
// The account

async function buildAccount(
  ec2: EC2Client,
  route53: Route53Client,
  shape: AzShape,
  say: Say,
): Promise<Account> {
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.80.0.0/16' }))).Vpc?.VpcId;
  if (!vpcId) throw new Error('CreateVpc returned no id');
  const imageId = await anyImage(ec2);
  const perAz: NodeInfo[][] = [];
  for (const [i, az] of [FAILED_AZ, SURVIVING_AZ].entries()) {
    const subnetId = (
      await ec2.send(
        new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.80.${i * 16}.0/20`, AvailabilityZone: az }),
      )
    ).Subnet?.SubnetId;
    if (!subnetId) throw new Error('CreateSubnet returned no id');
    const instances =
      (
        await ec2.send(
          new RunInstancesCommand({
            ImageId: imageId,
            InstanceType: 't3.micro',
            MinCount: shape.clusters,
            MaxCount: shape.clusters,
            SubnetId: subnetId,
          }),
        )
      ).Instances ?? [];
    if (instances.length !== shape.clusters) throw new Error(`RunInstances started ${instances.length}`);
    perAz.push(
      instances.map((inst) => ({
        name: i === 0 ? 'node1' : 'node2',
        instanceId: inst.InstanceId!,
        eni: inst.NetworkInterfaces![0]!.NetworkInterfaceId!,
        privateIp: inst.PrivateIpAddress!,
        az,
      })),
    );
  }
  const nodes = perAz[0]!.map((n1, c) => [n1, perAz[1]![c]!]);
  // A VIP routed to an ENI only arrives if the ENI accepts traffic for other addresses.
  await pool(
    nodes.flat(),
    8,
    async (n) =>
      void (await ec2.send(
        new ModifyNetworkInterfaceAttributeCommand({
          NetworkInterfaceId: n.eni,
          SourceDestCheck: { Value: false },
        }),
      )),
  );
  const routeTableId = (await ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable
    ?.RouteTableId;
  if (!routeTableId) throw new Error('CreateRouteTable returned no id');
  const zoneName = `az-${randomBytes(3).toString('hex')}.bench.internal`;
  const zone = await route53.send(
    new CreateHostedZoneCommand({
      Name: zoneName,
      CallerReference: randomBytes(8).toString('hex'),
      VPC: { VPCRegion: 'us-east-1', VPCId: vpcId },
      HostedZoneConfig: { PrivateZone: true, Comment: 'AZ outage bench' },
    }),
  );
  const total = shape.clusters * shape.groupsEach;
  const allocations: string[] = [];
  for (let i = 0; i < Math.ceil(total / 10); i++) {
    const a = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    allocations.push(a.AllocationId!);
  }
  say(
    `  AZ outage: account: VPC ${vpcId}, ${nodes.length * 2} instances in ${FAILED_AZ} and ${SURVIVING_AZ}, 1 route table, 1 private zone, ${allocations.length} Elastic IPs`,
  );
  return {
    vpcId,
    routeTableId,
    hostedZoneId: bareZoneId(zone.HostedZone!.Id!),
    zoneName,
    nodes,
    allocations,
  };
}

/**
 * One cluster's definition: every group a VIP route, a DNS record and an application, every tenth an
 * Elastic IP (the mix of the scaling bench); the groups alternate their preferred node, so that half
 * of the owners are in each zone. Default timing (lease 3.75 s, heartbeat 1.75 s).
 */
function definition(name: string, c: number, shape: AzShape, account: Account): ClusterConfig {
  const nodes = account.nodes[c]!;
  const input: ClusterInput = {
    cluster: name,
    region: 'us-east-1',
    nodes: nodes.map(({ name, instanceId, eni, az, privateIp }) => ({
      name,
      instanceId,
      eni,
      az,
      privateIp,
    })),
    groups: Array.from({ length: shape.groupsEach }, (_, i) => {
      const global = c * shape.groupsEach + i;
      const g = `g${String(i).padStart(4, '0')}`;
      const eip = global % 10 === 0 ? account.allocations[global / 10] : undefined;
      return {
        name: g,
        nodes: i % 2 === 0 ? ['node1', 'node2'] : ['node2', 'node1'],
        resources: [
          {
            type: 'vip' as const,
            name: `${g}-vip`,
            ip: `172.16.${Math.floor(global / 250)}.${(global % 250) + 1}`,
            vpcId: account.vpcId,
            routeTableIds: [account.routeTableId],
          },
          ...(eip ? [{ type: 'eip' as const, name: `${g}-eip`, allocationId: eip }] : []),
          {
            type: 'dns' as const,
            name: `${g}-dns`,
            hostedZoneId: account.hostedZoneId,
            recordName: `${name}-${g}.${account.zoneName}`,
            ttl: 60,
          },
          { type: 'exec' as const, name: `${g}-app`, start: '/bin/true', stop: '/bin/true' },
        ],
      };
    }),
  };
  return parseClusterConfig(input, `az-outage ${name}`);
}

// ------------------------------------------------------------------------------------------------
// The agents

/**
 * The node's clocks as the agent core takes them (node-agent/core/clock.ts): the bench runs in one
 * process, so every simulated node reads the same monotonic clock.
 */
const simClock: Clock = { mono: () => performance.now(), wall: () => Date.now() };

interface SimNode {
  cluster: string;
  name: string;
  peer: string;
  /** Its renewals and reads stop at the outage. */
  failed: boolean;
  /** Phase of its heartbeat within the interval (agents do not renew in step). */
  offsetMs: number;
  /** group -> epoch it runs at (stopped groups report their last epoch). */
  groups: Map<string, { epoch: number; running: boolean }>;
  /** The agent's own parts (node-agent/core): renewals and reports, the peer's lease, when to read. */
  writer: HeartbeatWriter;
  watcher: PeerWatcher;
  reads: PeerReads;
  /** The agent's timer that reports the peer's lease expiry the moment it happens (agent.ts watchPeers). */
  expiryTimer?: NodeJS.Timeout;
  /** The newest renewal of this node the table acknowledged: what a read of its item returns. */
  stored?: Heartbeat;
}

class SimAgents {
  readonly nodes = new Map<string, SimNode>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private readonly writes = new Set<Promise<unknown>>();
  /**
   * Per surviving node: when its first report of the peer's silence (silentForMs >= lease) after the
   * outage was acknowledged.
   */
  readonly silenceReportedAt = new Map<string, number>();
  private failedAt = Number.POSITIVE_INFINITY;
  changes = 0;
  writeErrors = 0;
  superseded = 0;

  constructor(
    private readonly store: AgentStore,
    private readonly configs: Map<string, ClusterConfig>,
    private readonly onChange: (cluster: string, node: string) => void,
  ) {
    const scheduler: Scheduler = {
      after: (ms, fn) => {
        const t = setTimeout(
          () => {
            if (!this.stopped) fn();
          },
          Math.max(0, ms),
        );
        return () => clearTimeout(t);
      },
      soon: (fn) =>
        void setImmediate(() => {
          if (!this.stopped) fn();
        }),
    };
    for (const config of configs.values()) {
      for (const n of config.nodes) {
        const peer = config.nodes.find((p) => p.name !== n.name)!.name;
        const groups = new Map<string, { epoch: number; running: boolean }>();
        for (const g of config.groups) groups.set(g.name, { epoch: 1, running: g.nodes[0] === n.name });
        const watcher = new PeerWatcher();
        const timing = () => config.timing;
        const node = {
          cluster: config.cluster,
          name: n.name,
          peer,
          failed: false,
          groups,
          watcher,
        } as SimNode;
        node.offsetMs = Math.floor(Math.random() * config.timing.heartbeatIntervalMs);
        node.writer = new HeartbeatWriter({
          cluster: config.cluster,
          node: n.name,
          incarnation: `${n.name}-${randomBytes(3).toString('hex')}`,
          agentVersion: 'az-outage-bench',
          clock: simClock,
          scheduler,
          put: (hb) => this.put(hb),
          build: () => this.build(node),
          timing,
          onAck: ({ heartbeat }) => this.acked(node, heartbeat),
          onError: () => {
            this.writeErrors++;
          },
        });
        node.reads = new PeerReads(watcher, {
          clock: simClock,
          scheduler,
          timing,
          read: () => this.read(node),
        });
        this.nodes.set(`${config.cluster}/${n.name}`, node);
      }
    }
  }

  private timing(cluster: string) {
    return this.configs.get(cluster)!.timing;
  }

  /**
   * What the agent reports (agent.ts report()): its groups, its peer's renewal token and silence,
   * the peers past their lease, and an armed watchdog (the sandbox's nodes run one, production
   * nodes should): the silence a node needs before another may start its groups is the lease.
   */
  private build(n: SimNode): ReportParts {
    const t = this.timing(n.cluster);
    const now = simClock.mono();
    return {
      state: 'running',
      groups: Object.fromEntries(
        [...n.groups].map(([g, s]) => [g, { epoch: s.epoch, state: s.running ? 'running' : 'stopped' }]),
      ) as Heartbeat['groups'],
      monitors: {},
      isolated: false,
      peers: n.watcher.report(now),
      expiredPeers: n.watcher.expired(now, t.leaseMs),
      fence: fencePromise([], { armed: true, timeoutMs: t.leaseMs - t.fenceMarginMs }),
    };
  }

  /**
   * The agent's own conditional write (node-agent/store.ts putHeartbeat): a renewal that lands after
   * a newer one of the same process is refused (HEARTBEAT_SUPERSEDED) and the newer one stays, as
   * the writer keeps up to three writes in flight.
   */
  private put(hb: Heartbeat): Promise<void> {
    const p = this.store.putHeartbeat(hb).catch((e) => {
      if ((e as { code?: unknown } | undefined)?.code === HEARTBEAT_SUPERSEDED) this.superseded++;
      throw e;
    });
    const tracked = p.catch(() => undefined);
    this.writes.add(tracked);
    void tracked.finally(() => this.writes.delete(tracked));
    return p;
  }

  private acked(n: SimNode, hb: Heartbeat): void {
    if (!n.stored || hb.seq > n.stored.seq) n.stored = hb;
    if (hb.reason !== 'change') return;
    this.changes++;
    const key = `${n.cluster}/${n.name}`;
    const lease = this.timing(n.cluster).leaseMs;
    if (
      !n.failed &&
      Date.now() >= this.failedAt &&
      !this.silenceReportedAt.has(key) &&
      (hb.peers[n.peer]?.silentForMs ?? 0) >= lease
    )
      this.silenceReportedAt.set(key, Date.now());
    this.onChange(n.cluster, n.name);
  }

  /**
   * One read of the peer's item, as the agent's followCluster and watchPeers do it: the renewal the
   * table has acknowledged (a write is readable here only once its writer has the answer, never
   * sooner than a real read could see it), first-read times on the monotonic clock when the read
   * completes, the expiry timer re-armed, a change written if the report differs, and the next
   * read planned by PeerReads (right after the peer's next renewal is due).
   */
  private read(n: SimNode): void {
    if (this.stopped || n.failed) return;
    const t = this.timing(n.cluster);
    const peer = this.nodes.get(`${n.cluster}/${n.peer}`)!;
    const readDone = simClock.mono();
    n.watcher.observe(peer.stored ? { [n.peer]: peer.stored } : {}, readDone, [n.peer], {
      wall: simClock.wall(),
      heartbeatIntervalMs: t.heartbeatIntervalMs,
    });
    const next = n.watcher.nextExpiryInMs(readDone, t.leaseMs);
    if (n.expiryTimer) clearTimeout(n.expiryTimer);
    n.expiryTimer = undefined;
    // Report the peer's lease expiry the moment it happens, not at the next read.
    if (next !== undefined)
      n.expiryTimer = setTimeout(() => {
        if (!this.stopped && !n.failed) n.writer.changed();
      }, Math.ceil(next) + 1);
    n.writer.changed();
    n.reads.afterRead();
  }

  start(): void {
    for (const n of this.nodes.values()) {
      const t = this.timing(n.cluster);
      // The agent's tick (agent.ts tick()): a renewal, then the reads planned.
      const tick = () => {
        if (this.stopped || n.failed) return;
        void n.writer.tick();
        n.reads.onTick();
      };
      const first = setTimeout(() => {
        tick();
        this.timers.push(setInterval(tick, t.heartbeatIntervalMs));
      }, n.offsetMs);
      this.timers.push(first);
    }
  }

  /** The guard started `group` at `epoch` on this node: it runs there, reported at once. */
  started(cluster: string, node: string, group: string, epoch: number): boolean {
    const n = this.nodes.get(`${cluster}/${node}`);
    if (!n || n.failed) return false;
    n.groups.set(group, { epoch, running: true });
    n.writer.changed();
    return true;
  }

  failZone(az: string): void {
    this.failedAt = Date.now();
    for (const config of this.configs.values())
      for (const node of config.nodes)
        if (node.az === az) {
          const n = this.nodes.get(`${config.cluster}/${node.name}`)!;
          n.failed = true;
          n.reads.stop();
          if (n.expiryTimer) clearTimeout(n.expiryTimer);
        }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    for (const n of this.nodes.values()) {
      n.reads.stop();
      if (n.expiryTimer) clearTimeout(n.expiryTimer);
    }
    await Promise.allSettled([...this.writes]);
  }
}

// ------------------------------------------------------------------------------------------------
// One shape

export async function runShape(endpoint: string, shape: AzShape, say: Say): Promise<AzOutageResult> {
  const started = Date.now();
  const aws: AwsOptions = { region: 'us-east-1', endpoint };
  // Setup is not measured: patient clients (a loaded emulator answers a 1,000-route listing slowly).
  const setup = clientConfig({ ...aws, requestTimeoutMs: 60_000, maxAttempts: 5 });
  const ec2 = new EC2Client(setup);
  const route53 = new Route53Client({ ...setup, region: 'us-east-1' });
  const account = await buildAccount(ec2, route53, shape, say);
  const table = `bench-az-${randomBytes(4).toString('hex')}`;
  const admin = new DynamoStore(table, { ...aws, requestTimeoutMs: 60_000, maxAttempts: 5 });
  await admin.createTable();

  const configs = new Map<string, ClusterConfig>();
  for (let c = 0; c < shape.clusters; c++) {
    const name = `az${c}-${randomBytes(2).toString('hex')}`;
    const config = definition(name, c, shape, account);
    await admin.applyConfig(config, { now: Date.now(), by: 'bench' });
    configs.set(name, config);
  }
  const seededAt = Date.now();
  for (const config of configs.values()) {
    const ownerOf = (g: GroupConfig) => config.nodes.find((n) => n.name === g.nodes[0]);
    await seedEntryPoints(ec2, route53, config, ownerOf, 8);
    await writeGroupRecords(
      admin,
      config.cluster,
      config.groups.map((g) => steadyGroupState(g, g.nodes[0]!, seededAt)),
    );
  }
  const groups = shape.clusters * shape.groupsEach;
  say(
    `  AZ outage: ${shape.clusters} x ${shape.groupsEach}: ${groups} groups seeded online, half in each zone`,
  );

  // The controller: its own clients, counted.
  const calls = new Map<string, { calls: number; attempts: number; throttled: number; ms: number }>();
  let counting = false;
  const tally = (name: string) => {
    const t = calls.get(name) ?? { calls: 0, attempts: 0, throttled: 0, ms: 0 };
    calls.set(name, t);
    return t;
  };
  const store = new DynamoStore(table, aws, undefined, { validateConfig: parseClusterConfig });
  const clients = createAwsClients(aws);
  for (const [client, service] of [
    [store.client, 'dynamodb'],
    [clients.ec2, 'ec2'],
    [clients.route53, 'route53'],
    [clients.ssm, 'ssm'],
  ] as const) {
    countSdkCalls(client, service, {
      call: (c) => {
        if (!counting) return;
        const t = tally(`${service}:${c.op}`);
        t.calls++;
        t.ms += c.end - c.at;
      },
      attempt: (s, op) => {
        if (counting) tally(`${s}:${op}`).attempts++;
      },
    });
    (client.middlewareStack.add as (mw: unknown, options: unknown) => void)(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          try {
            return await next(args);
          } catch (e) {
            const code = (e as { name?: string }).name;
            if (counting && isThrottle(code))
              tally(`${service}:${(context.commandName ?? '?').replace(/Command$/, '')}`).throttled++;
            throw e;
          }
        },
      { step: 'deserialize', name: 'benchThrottles' },
    );
  }
  // AZ_OUTAGE_CALLS=<file>: every call of the controller (seconds since the outage, ms, operation,
  // outcome, the item key, condition and update expression or the number of DNS changes).
  const diagFile = process.env.AZ_OUTAGE_CALLS;
  if (diagFile)
    for (const [client, service] of [
      [store.client, 'dynamodb'],
      [clients.ec2, 'ec2'],
      [clients.route53, 'route53'],
    ] as const)
      (client.middlewareStack.add as (mw: unknown, options: unknown) => void)(
        (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
          async (args: unknown) => {
            const at = Date.now();
            const rawBody = (args as { request?: { body?: unknown } }).request?.body;
            const body = rawBody instanceof Uint8Array ? Buffer.from(rawBody).toString('utf8') : rawBody;
            let input: Record<string, unknown> = {};
            try {
              if (typeof body === 'string' && body.startsWith('{')) input = JSON.parse(body);
            } catch {}
            const key = input.Key as Record<string, { S?: string }> | undefined;
            const what = {
              sk: key?.sk?.S,
              cond:
                typeof input.ConditionExpression === 'string'
                  ? input.ConditionExpression.slice(0, 40)
                  : undefined,
              expr:
                typeof input.UpdateExpression === 'string' ? input.UpdateExpression.slice(0, 60) : undefined,
              n:
                typeof body === 'string' && body.includes('<Change>')
                  ? body.split('<Change>').length - 1
                  : undefined,
            };
            let outcome = 'ok';
            try {
              return await next(args);
            } catch (e) {
              outcome = (e as { name?: string }).name ?? 'error';
              throw e;
            } finally {
              if (counting)
                appendFileSync(
                  diagFile,
                  `${((at - t0) / 1000).toFixed(2)} ${Date.now() - at} ${service}:${(context.commandName ?? '?').replace(/Command$/, '')} ${outcome} ${JSON.stringify(what)}\n`,
                );
            }
          },
        { step: 'build', name: 'benchDiag' },
      );

  // Activations on the survivor, by cluster/group: when each resource came up there.
  const activated = new Map<string, Map<string, number>>();
  const errors: string[] = [];
  let t0 = Number.POSITIVE_INFINITY;
  // The guard's SSM document, as a deployment creates it (moto refuses an unknown document).
  await ensureGuardDocument(clients.ssm, BENCH_GUARD_DOCUMENT, '/usr/local/bin/failover-agent');
  const base = createAwsCloud(aws, { document: BENCH_GUARD_DOCUMENT }, clients);
  const watch = (d: ResourceDriver): ResourceDriver => ({
    ...d,
    activate: async (req) => {
      const out = await d.activate(req);
      if (Date.now() >= t0 && req.node.az === SURVIVING_AZ) {
        const key = `${req.cluster}/${req.group}`;
        const m = activated.get(key) ?? new Map<string, number>();
        m.set(req.resource.name, Date.now());
        activated.set(key, m);
      }
      return out;
    },
  });
  const cloud: Cloud = {
    ...base,
    resources: Object.fromEntries(
      Object.entries(base.resources).map(([k, d]) => [k, watch(d)]),
    ) as Cloud['resources'],
    // The zone's impairment, as DescribeAvailabilityZones would report it once AWS knows.
    describeZones: async (zones, signal) => {
      const states = await base.describeZones(zones, signal);
      if (Date.now() >= t0 && FAILED_AZ in states) states[FAILED_AZ] = 'impaired';
      return states;
    },
  };
  // AZ_OUTAGE_TRACE=<file>: every line the controller logs, with seconds since the outage (where the time goes).
  const traceFile = process.env.AZ_OUTAGE_TRACE;
  const trace = (level: string, m: string, a: unknown) => {
    if (traceFile)
      appendFileSync(
        traceFile,
        `${((Date.now() - t0) / 1000).toFixed(2)} ${level} ${m} ${JSON.stringify(a ?? {})}\n`,
      );
  };
  const log: Log = {
    info: (m, a) => trace('info', m, a),
    warn: (m, a) => {
      trace('warn', m, a);
      if (errors.length < 50) errors.push(`warn ${m} ${JSON.stringify(a ?? {}).slice(0, 300)}`);
    },
    error: (m, a) => {
      trace('error', m, a);
      if (errors.length < 50) errors.push(`error ${m} ${JSON.stringify(a ?? {}).slice(0, 300)}`);
    },
  };
  const deps: ControllerDeps = {
    store,
    cloud,
    notifier: { publish: async () => undefined },
    clock: systemClock,
    log,
  };

  // The stream: change reports, batched as the event source mapping delivers them.
  let invocations = 0;
  const pending = new Set<Promise<unknown>>();
  const invoke = (trigger: string, run: (ctx: { holder: string; deadline: number }) => Promise<unknown>) => {
    invocations++;
    const ctx = { holder: `bench:${trigger}:${invocations}`, deadline: Date.now() + INVOCATION_MS };
    const p = run(ctx).catch((e) => errors.push(`${trigger} invocation failed: ${String(e)}`));
    pending.add(p);
    void p.finally(() => pending.delete(p));
    return p;
  };
  const queued: { cluster: string; node: string }[] = [];
  let inFlight = 0;
  let sequence = 0;
  // The node's heartbeat key, as the table holds it (by its instance's ARN, shared/table/keys.ts).
  const heartbeatPkOf = (cluster: string, node: string) => {
    const config = configs.get(cluster)!;
    const instanceId = config.nodes.find((n) => n.name === node)!.instanceId;
    return heartbeatPk(cluster, instanceArn(config, instanceId));
  };
  const dispatch = () => {
    if (inFlight >= STREAM_IN_FLIGHT || queued.length === 0) return;
    const batch = queued.splice(0, 100);
    inFlight++;
    const records = batch.map(({ cluster, node }) => ({
      eventName: 'MODIFY',
      dynamodb: {
        SequenceNumber: String(++sequence),
        Keys: { pk: { S: heartbeatPkOf(cluster, node) }, sk: { S: 'HEARTBEAT' } },
        NewImage: { reason: { S: 'change' } },
      },
    }));
    void invoke('stream', (ctx) => handleStream(deps, { Records: records }, ctx)).finally(() => {
      inFlight--;
      dispatch();
    });
  };
  const streamTimer = setInterval(dispatch, STREAM_BATCH_MS);
  // The agents write with the agent's own store (its conditional renewal), patient like setup.
  const agentStore = openStore(table, {
    ...aws,
    requestTimeoutMs: 60_000,
    connectionTimeoutMs: 10_000,
    maxAttempts: 5,
  });
  const agents = new SimAgents(agentStore, configs, (cluster, node) => {
    if (Date.now() >= t0) queued.push({ cluster, node });
  });

  // SSM: each start command that reaches a live node is the guard's start there. The guard
  // document's parameters name the group, epoch and action; the instance names the node.
  const doubleRun: string[] = [];
  const byInstance = new Map<string, { cluster: string; node: string }>();
  for (const c of configs.values())
    for (const n of c.nodes) byInstance.set(n.instanceId, { cluster: c.cluster, node: n.name });
  clients.ssm.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const input = (args as { input?: { InstanceIds?: string[]; Parameters?: Record<string, string[]> } })
        .input;
      const p = input?.Parameters;
      if (p?.action?.[0] === 'start' && p.group?.[0] && p.epoch?.[0]) {
        const group = p.group[0];
        const epoch = Number(p.epoch[0]);
        for (const id of input?.InstanceIds ?? []) {
          const where = byInstance.get(id);
          if (!where) continue;
          const { cluster, node } = where;
          const other = agents.nodes.get(`${cluster}/${node === 'node1' ? 'node2' : 'node1'}`);
          const otherRuns = other?.groups.get(group);
          // The other node may run it only if it is gone (silent past its lease) or stopped it.
          if (otherRuns?.running && !other?.failed)
            doubleRun.push(`${cluster}/${group}: started on ${node} while ${other?.name} runs it`);
          agents.started(cluster, node, group, epoch);
        }
      }
      return result;
    },
    { step: 'initialize', name: 'benchSimulatedGuard' },
  );

  agents.start();
  // Two heartbeats of calm: every node renewed and read its peer.
  const interval = Math.max(...[...configs.values()].map((c) => c.timing.heartbeatIntervalMs));
  await new Promise((r) => setTimeout(r, 2 * interval + 500));
  const setupS = (Date.now() - started) / 1000;

  say(`  AZ outage: ${FAILED_AZ} fails now (its agents go silent, the zone reports impaired)`);
  counting = true;
  t0 = Date.now();
  agents.failZone(FAILED_AZ);
  const schedule = setInterval(
    () => void invoke('schedule', (ctx) => handleEventBridge(deps, scheduled(), ctx)),
    SCHEDULE_MS,
  );

  // Which groups must move, and what each holds.
  const affected = new Map<string, GroupConfig>();
  for (const config of configs.values())
    for (const g of config.groups) if (g.nodes[0] === 'node1') affected.set(`${config.cluster}/${g.name}`, g);
  const done = () =>
    [...affected].every(([key, g]) => {
      const m = activated.get(key);
      return m !== undefined && g.resources.every((r) => m.has(r.name));
    });
  let lastReport = Date.now();
  while (!done() && Date.now() - t0 < GIVE_UP_MS) {
    await new Promise((r) => setTimeout(r, 100));
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      const n = [...affected].filter(([key, g]) =>
        g.resources.every((r) => activated.get(key)?.has(r.name)),
      ).length;
      const some = [...activated.values()].reduce((a, m) => a + m.size, 0);
      say(
        `  AZ outage: +${((Date.now() - t0) / 1000).toFixed(0)} s: ${n} of ${affected.size} groups online in ${SURVIVING_AZ} (${some} activations), ${invocations} invocations; calls so far: ${callsLine(calls)}${errors.length ? `; ${errors.length} errors, last: ${errors.at(-1)}` : ''}`,
      );
    }
  }
  counting = false;
  const switchedS: number[] = [];
  // When each survivor's report of its peer's silence was acknowledged (the stream took it from there).
  const detectionS = [...agents.silenceReportedAt.values()]
    .map((at) => (at - t0) / 1000)
    .sort((a, b) => a - b);
  for (const [key, g] of affected) {
    const m = activated.get(key);
    if (m && g.resources.every((r) => m.has(r.name)))
      switchedS.push((Math.max(...[...m.values()]) - t0) / 1000);
  }
  clearInterval(schedule);
  clearInterval(streamTimer);
  // The invocations still under way finish first, while the agents still renew: stopped agents
  // would look dead to them (every group failed or stopped, and counted "left behind").
  await Promise.allSettled([...pending]);
  await agents.stop();

  const leftBehind = await verify(ec2, route53, admin, configs, account, affected);
  return {
    shape,
    groups,
    affected: affected.size,
    switchedS,
    leftBehind,
    doubleRun,
    calls,
    invocations,
    setupS,
    detectionS,
    agentWrites: { changes: agents.changes, superseded: agents.superseded, failed: agents.writeErrors },
    errors,
  };
}

/**
 * The end state, read from the emulator: every group Online on the node it should be on (the
 * survivor for the moved ones, at a new epoch; the others untouched), `mayRun` that node alone, its
 * VIP route, Elastic IP and record on it.
 */
async function verify(
  ec2: EC2Client,
  route53: Route53Client,
  store: DynamoStore,
  configs: Map<string, ClusterConfig>,
  account: Account,
  affected: Map<string, GroupConfig>,
): Promise<string[]> {
  const wrong: string[] = [];
  const tables = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [account.routeTableId] }));
  const routes = new Map(
    (tables.RouteTables?.[0]?.Routes ?? []).map((r) => [r.DestinationCidrBlock, r.NetworkInterfaceId]),
  );
  const addresses = new Map(
    (
      (await ec2.send(new DescribeAddressesCommand({ AllocationIds: account.allocations }))).Addresses ?? []
    ).map((a) => [a.AllocationId, a.NetworkInterfaceId]),
  );
  const records = new Map<string, string | undefined>();
  let next: { name?: string; type?: string } = {};
  for (;;) {
    const page = await route53.send(
      new ListResourceRecordSetsCommand({
        HostedZoneId: account.hostedZoneId,
        ...(next.name ? { StartRecordName: next.name } : {}),
        ...(next.type ? { StartRecordType: next.type as ResourceRecordSet['Type'] } : {}),
      }),
    );
    for (const r of page.ResourceRecordSets ?? [])
      if (r.Type === 'A') records.set(r.Name!.toLowerCase(), r.ResourceRecords?.[0]?.Value);
    if (!page.IsTruncated) break;
    next = { name: page.NextRecordName!, type: page.NextRecordType! };
  }
  for (const config of configs.values()) {
    const states = new Map((await store.listGroups(config.cluster)).map((s) => [s.group, s] as const));
    for (const g of config.groups) {
      const key = `${config.cluster}/${g.name}`;
      const moved = affected.has(key);
      const want = moved ? 'node2' : g.nodes[0]!;
      const node = config.nodes.find((n) => n.name === want)!;
      const s: GroupState | undefined = states.get(g.name);
      const problems: string[] = [];
      if (!s || s.owner !== want || s.phase !== 'Online') problems.push(`record ${s?.phase} on ${s?.owner}`);
      if (s && (s.mayRun.length !== 1 || s.mayRun[0] !== want)) problems.push(`mayRun ${s.mayRun.join(',')}`);
      if (s && moved && s.epoch < 2) problems.push(`epoch ${s.epoch}`);
      for (const r of g.resources) {
        if (r.type === 'vip' && routes.get(`${r.ip}/32`) !== node.eni) problems.push(`route ${r.ip}`);
        if (r.type === 'eip' && addresses.get(r.allocationId) !== node.eni)
          problems.push(`eip ${r.allocationId}`);
        if (r.type === 'dns' && records.get(r.recordName) !== node.privateIp)
          problems.push(`record ${r.recordName}`);
      }
      if (problems.length) wrong.push(`${key} (${moved ? 'moved' : 'stayed'}): ${problems.join(', ')}`);
    }
  }
  return wrong;
}

async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ------------------------------------------------------------------------------------------------
// Report

function callsLine(calls: AzOutageResult['calls']): string {
  const byService = new Map<string, string[]>();
  let throttled = 0;
  for (const [name, t] of [...calls].sort()) {
    const [service = '', op = ''] = name.split(':');
    byService.set(service, [
      ...(byService.get(service) ?? []),
      `${op} ${t.calls}${t.attempts > t.calls ? ` (${t.attempts} attempts)` : ''}`,
    ]);
    throttled += t.throttled;
  }
  const slowest = [...calls]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 3)
    .map(
      ([n, t]) =>
        `${n} ${(t.ms / 1000).toFixed(1)} s in flight (${(t.ms / Math.max(1, t.calls)).toFixed(0)} ms each)`,
    );
  return `${[...byService].map(([s, ops]) => `${s}: ${ops.join(', ')}`).join('; ')}; throttled attempts ${throttled}; most time in flight: ${slowest.join(', ')}`;
}

/** When the survivors reported their peers silent, and how the simulated agents' writes fared. */
function detectionLine(r: AzOutageResult): string {
  const d = r.detectionS;
  const when = d.length
    ? `survivors reported the silence after ${percentile(d, 50).toFixed(2)} s median, ${d.at(-1)!.toFixed(2)} s max (${d.length} of ${r.shape.clusters})`
    : 'no survivor reported the silence';
  const w = r.agentWrites;
  return `${when}; agents: ${w.changes} change reports, ${w.superseded} renewals superseded, ${w.failed} writes failed`;
}

export function azRows(r: AzOutageResult): BenchRow[] {
  const sorted = [...r.switchedS].sort((a, b) => a - b);
  const shape =
    r.shape.clusters === 1
      ? `${r.groups.toLocaleString('en-US')} groups in 1 cluster`
      : `${r.shape.clusters} clusters x ${r.shape.groupsEach} groups (${r.groups.toLocaleString('en-US')} groups)`;
  const last = sorted.at(-1) ?? Number.NaN;
  const all = sorted.length === r.affected;
  return [
    {
      section: SECTION,
      metric: `${shape}, ${FAILED_AZ} fails (${r.affected} owners there): every affected group online in ${SURVIVING_AZ}`,
      value: all
        ? `p50 ${percentile(sorted, 50).toFixed(1)} s / p95 ${percentile(sorted, 95).toFixed(1)} s / last ${last.toFixed(1)} s`
        : `${sorted.length} of ${r.affected} after ${(GIVE_UP_MS / 1000).toFixed(0)} s (p50 ${percentile(sorted, 50).toFixed(1)} s)`,
      target: `all within ${TARGET_S} s, none left behind, no double owner`,
      met: all && last <= TARGET_S && r.leftBehind.length === 0 && r.doubleRun.length === 0,
      note: `${r.leftBehind.length} groups left behind or wrong${r.leftBehind.length ? ` (${r.leftBehind.slice(0, 3).join('; ')})` : ''}, ${r.doubleRun.length} started while the other node ran them; ${r.invocations} invocations; controller errors/warnings: ${r.errors.length}${r.errors.length ? ` (first: ${r.errors[0]})` : ''}; ${detectionLine(r)}; setup ${r.setupS.toFixed(0)} s`,
    },
    {
      section: SECTION,
      metric: `${shape}: AWS calls of the controller from the outage to the last group online`,
      value: callsLine(r.calls),
    },
  ];
}

export async function runAzOutageBench(o: AzOutageOptions): Promise<BenchRow[]> {
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  // @ts-expect-error plain ESM script without type declarations
  const { startEmulator } = await import('../scripts/emulator.mjs');
  const rows: BenchRow[] = [];
  for (const shape of o.shapes ?? DEFAULT_SHAPES) {
    // A fresh emulator per shape: moto keeps every item of the previous one in memory.
    const emulator: { endpoint: string; stop: () => Promise<void> } = await startEmulator({
      log: o.say,
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    });
    try {
      o.say(`AZ outage: ${shape.clusters} cluster(s) x ${shape.groupsEach} groups`);
      const r = await runShape(emulator.endpoint, shape, o.say);
      const rs = azRows(r);
      for (const row of rs) o.say(`  ${row.metric}: ${row.value}`);
      rows.push(...rs);
    } finally {
      await emulator.stop();
    }
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (flag: string) => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const shapes = arg('--shapes')
    ?.split(',')
    .map((s) => {
      const [c, g] = s.split('x').map(Number);
      return { clusters: c!, groupsEach: g! };
    });
  const { renderTable } = await import('./report');
  const rows = await runAzOutageBench({
    say: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
    ...(shapes ? { shapes } : {}),
    ...(process.env.AWS_ENDPOINT_URL ? { endpoint: process.env.AWS_ENDPOINT_URL } : {}),
  });
  process.stdout.write(`${renderTable(rows)}\n`);
}
