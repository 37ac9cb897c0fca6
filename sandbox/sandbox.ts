/**
 * The local sandbox: a real failover on the emulator. One machine plays a whole AWS account with
 * two EC2 nodes:
 *
 *   moto server (AWS) ◀── controller (the real reconcile code, invoked as AWS would invoke it:
 *        ▲                 1-minute schedule — compressed here — DynamoDB stream, EC2 events)
 *        │ per-node TCP proxy (to cut a node off)
 *   node1: failover-agent process ── app process (started/stopped through the guard)
 *   node2: failover-agent process ── app process
 *
 * SSM commands that moto records are run here on behalf of the emulated instances (see
 * run-command.ts); EC2 state-change events that moto does not emit are sent by the sandbox when it
 * stops an instance; the stream is polled like Lambda's event source mapping (stream.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AttributeValue,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import {
  DescribeAddressesCommand,
  DescribeRouteTablesCommand,
  ReplaceRouteCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { ListResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import { GetDocumentCommand } from '@aws-sdk/client-ssm';
import { clientConfig } from '../controller/aws/clients';
import { addEmulatorDateCompat } from '../controller/aws/emulator-compat';
import { systemClock } from '../controller/reconcile/clock';
import { type ControllerDeps, handleEventBridge, handleStream } from '../controller/reconcile/entry';
import { createAwsClients, createAwsCloud } from '../controller/resources';
import { ensureGuardDocument } from '../controller/resources/guard-document';
import { DynamoStore } from '../controller/state/dynamo-store';
// @ts-expect-error plain ESM script without type declarations
import { buildAgent } from '../scripts/agent-build.mjs';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from '../scripts/emulator.mjs';
import type { AwsOptions } from '../shared/aws/options';
import type { ClusterConfig } from '../shared/config/load';
import { watchdogFits } from '../shared/config/timing';
import type { GroupState } from '../shared/core/model';
import type { Log, TransitionEvent } from '../shared/core/ports';
import { heartbeatKeys, keys } from '../shared/table/keys';
import { type FaultProxy, startFaultProxy } from '../testkit/fault-proxy';
import { clearFakeIp, fakeIpAddresses, writeFakeIp } from './fake-ip';
import {
  buildNetwork,
  FULL_GROUP,
  type GroupShape,
  type SandboxGroup,
  type SandboxNetwork,
  type SandboxTiming,
  sandboxConfig,
} from './network';
import { CuttableProxy } from './proxy';
import { type CommandDocument, type EmulatedInstance, LocalRunCommand } from './run-command';
import { StreamPoller } from './stream';
import { ControllerTrace } from './trace';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
/** moto accepts any credentials; the sandbox never needs (or uses) real ones. */
const SANDBOX_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'sandbox',
  AWS_SECRET_ACCESS_KEY: 'sandbox',
  AWS_REGION: 'us-east-1',
};
/** The guard's SSM document in the sandbox's account (a deployment's is failover-guard-<stage>). */
const SANDBOX_GUARD_DOCUMENT = 'failover-guard-sandbox';

/**
 * The nodes' softdog timeout unless told: 1 s. A feed must stay within the lease of the last
 * acknowledged renewal (it may come until send + lease - timeout, shared/config/timing.ts
 * leaseCoversFeed), so the shorter the timeout the later a slow acknowledgement may still feed it:
 * the largest timeout that fits (lease - fenceMargin) would leave a node only the fence margin
 * after each send, and on a loaded machine with a busy emulator it would be reset while healthy.
 */
const WATCHDOG_TIMEOUT_SEC = 1;

/** Per-attempt timeout of the sandbox's own AWS calls (not the controller's, not the agents'). */
const SETUP_REQUEST_TIMEOUT_MS = 20_000;

export interface SandboxOptions {
  timing?: SandboxTiming;
  /** The groups of the sandbox's cluster (network.ts); default: one group with everything. */
  groups?: readonly GroupShape[];
  /** The compressed stand-in for the 1-minute schedule; null: no schedule at all (benchmarks). */
  scheduleMs?: number | null;
  /** Progress lines (the demo prints them; tests collect them). */
  say?: (line: string) => void;
  /**
   * The controller's AWS calls go through a fault proxy (testkit/fault-proxy.ts) that answers this
   * share of its EC2 and Route 53 calls with AWS's throttling errors (RequestLimitExceeded,
   * Throttling), seeded: an account at its API rate limits. 0 still routes through the proxy, for a
   * like-for-like comparison.
   */
  throttle?: { share: number; seed?: number };
  /** A running emulator to use (`npm run chaos` runs several sandboxes on one); default: start one. */
  endpoint?: string;
  /** An agent bundle already built (scripts/agent-build.mjs) to run; default: build one. */
  agentScript?: string;
  /** The exec resource's commands (default: sandbox/app.mjs, an HTTP server) and its timeoutSec [20]. */
  app?: { start: string; stop: string; timeoutSec?: number };
  /** More environment for every process of a node: its agent and the SSM commands run there. */
  nodeEnv?: (node: string, dir: string) => Record<string, string>;
  /**
   * Every controller invocation passes through this before it runs (`run` starts it): `npm run
   * chaos` delays and duplicates events here, as EventBridge and the stream mapping may.
   */
  deliver?: (trigger: string, run: () => Promise<unknown>) => void;
  /** Wraps the controller's dependencies once built (chaos stalls a call after its fence). */
  wrapController?: (deps: ControllerDeps, clients: ReturnType<typeof createAwsClients>) => ControllerDeps;
  /** Time an invocation may run (Lambda's timeout), from which its lock's expiry follows [20000]. */
  invocationMs?: number;
  /**
   * The emulated softdog's soft_margin in whole seconds, published in the nodes' sysfs for the
   * agents to read; it must suit the lease (shared/config/timing.ts watchdogFits) [1].
   */
  watchdogTimeoutSec?: number;
  /** The agents' --log-level [warn]. */
  agentLogLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** The groups' stableAfterMs (recovery counters reset once healthy this long) [the product's 10 min]. */
  stableAfterMs?: number;
  /** Called after the emulated watchdog reset a node (everything of the node was killed). */
  onReset?: (node: SandboxNode, overdueMs: number) => void;
}

/** Where one group's entry points point, and where its node-side part runs. */
export interface EntryPoints {
  group: string;
  owner: string | null;
  epoch: number;
  phase: string;
  routes: (string | undefined)[];
  eip: string | undefined;
  dns: string[];
  /** Nodes whose application process for the group is alive. */
  apps: string[];
  /** Nodes holding the group's VIP on their interface. */
  addresses: string[];
}

/** One group's outcome in a scenario. */
export interface GroupResult {
  group: string;
  from: string;
  to: string;
  /** Seconds from the fault until the group was last seen switching to its final state. */
  seconds: number;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  name: string;
  fault: string;
  /** The node the fault hit (the owner of the sandbox's first group) and where that group went. */
  from: string;
  to: string;
  /** Seconds from the fault to every entry point and the application on the new owner, every group. */
  seconds: number;
  ok: boolean;
  detail: string;
  groups: GroupResult[];
}

export class SandboxNode implements EmulatedInstance {
  agent: ChildProcess | undefined;
  isUp = true;
  readonly dir: string;
  /**
   * The node's emulated watchdog device (softdog): a link to a pseudo-terminal, a character device
   * that watchdog-emulator.py reads, with its timeout in the sandbox's sysfs tree.
   */
  readonly watchdog: string;
  resets = 0;
  constructor(
    readonly name: 'node1' | 'node2',
    readonly instanceId: string,
    readonly eni: string,
    readonly privateIp: string,
    root: string,
    readonly proxy: CuttableProxy,
    private readonly base: Record<string, string>,
  ) {
    this.dir = join(root, name);
    mkdirSync(join(this.dir, 'state'), { recursive: true });
    this.watchdog = join(this.dir, 'watchdog');
    writeFakeIp(this.dir);
  }
  /** The node's interface addresses (what its fake `ip` holds). */
  addresses(): string[] {
    return fakeIpAddresses(this.dir);
  }
  /** The node is reset or halted: its interface addresses are gone with it. */
  clearAddresses(): void {
    clearFakeIp(this.dir);
  }
  /** Kills every application process of the node (the machine halts or resets). */
  killApps(): void {
    for (const pid of this.appPids()) process.kill(pid, 'SIGKILL');
  }
  /**
   * Kills every process of the node, whatever it is (agent, stop scripts, guards run by SSM,
   * applications, their children): each carries SANDBOX_NODE_DIR in its environment.
   */
  killEverything(): number[] {
    const marker = `SANDBOX_NODE_DIR=${this.dir}\0`;
    const killed: number[] = [];
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      try {
        if (`${readFileSync(`/proc/${pid}/environ`, 'latin1')}\0`.includes(marker)) {
          process.kill(pid, 'SIGKILL');
          killed.push(pid);
        }
      } catch {
        // gone meanwhile, or not ours to read
      }
    }
    return killed;
  }
  /** Up: not halted by the sandbox, and not reset by its watchdog (watchdog-emulator.py) since it booted. */
  up(): boolean {
    return this.isUp && !existsSync(join(this.dir, 'down'));
  }
  /**
   * The node crashes (power loss, kernel panic): down at once, every process killed, its addresses
   * and its watchdog gone with it; it stays down until it boots (startAgent). Returns the pids killed.
   */
  crash(): number[] {
    writeFileSync(join(this.dir, 'down'), String(Date.now()));
    this.isUp = false;
    this.agent?.kill('SIGKILL');
    const killed = this.killEverything();
    this.clearAddresses();
    return killed;
  }
  /** The node boots: whatever reset it is behind it. */
  boot(): void {
    rmSync(join(this.dir, 'down'), { force: true });
    this.isUp = true;
  }
  env(): Record<string, string> {
    return {
      ...this.base,
      AWS_ENDPOINT_URL: `http://127.0.0.1:${this.proxy.port}`,
      FAILOVER_AGENT_STATE_DIR: join(this.dir, 'state'),
      FAILOVER_AGENT_IP_COMMAND: join(this.dir, 'ip'),
      FAILOVER_AGENT_VIP_DEV: 'eth0',
      // The sandbox's sysfs tree: the agent reads its watchdog's timeout there (watchdog-emulator.py).
      FAILOVER_AGENT_SYSFS_WATCHDOG: join(dirname(this.dir), 'sysfs'),
      SANDBOX_NODE_DIR: this.dir,
      SANDBOX_NODE: this.name,
      // No instance metadata here: the agent's Spot poll must not leave loopback for 169.254.169.254.
      AWS_EC2_METADATA_DISABLED: 'true',
      ...this.extraEnv,
    };
  }
  /** More environment for the node's processes (SandboxOptions.nodeEnv). */
  extraEnv: Record<string, string> = {};

  /** A group's application pid while it runs (a zombie waiting to be reaped does not run). */
  appPid(group: string): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, `app-${group}.pid`), 'utf8').trim());
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return /^State:\s*Z/m.test(status) ? undefined : pid;
    } catch {
      return undefined;
    }
  }

  /** Every application process running on the node. */
  appPids(): number[] {
    let files: string[] = [];
    try {
      files = readdirSync(this.dir).filter((f) => /^app-.+\.pid$/.test(f));
    } catch {
      return [];
    }
    return files.flatMap((f) => {
      const pid = this.appPid(f.slice(4, -4));
      return pid === undefined ? [] : [pid];
    });
  }

  /** The node boots again: no application, no pid file, no address from before. */
  forgetApps(): void {
    for (const f of readdirSync(this.dir))
      if (/^app-.+\.pid$/.test(f)) rmSync(join(this.dir, f), { force: true });
  }
}

export class Sandbox {
  readonly say: (line: string) => void;
  readonly timing: SandboxTiming;
  readonly scheduleMs: number | null;
  readonly shapes: readonly GroupShape[];
  /** Everything the controller did, with times (see trace.ts). */
  readonly trace = new ControllerTrace();
  /**
   * EC2 states the emulator cannot hold (moto jumps from running to stopped): what the
   * controller's DescribeInstances shows for an instance while set.
   */
  readonly instanceStates = new Map<string, string>();
  private emulator: { endpoint: string; stop: () => Promise<void> } | undefined;
  /** In front of the emulator for the controller's calls when `throttle` is set. */
  private faultProxy: FaultProxy | undefined;
  private readonly throttle: { share: number; seed?: number } | undefined;
  private root = '';
  private aws!: AwsOptions;
  private clients!: ReturnType<typeof createAwsClients>;
  store!: DynamoStore;
  /** The controller's own store (its calls are counted in the trace). */
  private controllerStore!: DynamoStore;
  net!: SandboxNetwork;
  config!: ClusterConfig;
  private deps!: ControllerDeps;
  readonly nodes = new Map<string, SandboxNode>();
  private poller: StreamPoller | undefined;
  private schedule: NodeJS.Timeout | undefined;
  /** The nodes' softdogs (watchdog-emulator.py). */
  private watchdogs: ChildProcess | undefined;
  private runner!: LocalRunCommand;
  /** Every SSM command the sandbox ran for the controller, with its outcome. */
  get commands(): LocalRunCommand['history'] {
    return this.runner.history;
  }
  private agentScript = '';
  private invocations = 0;
  readonly transitions: TransitionEvent[] = [];
  private readonly pending = new Set<Promise<unknown>>();

  constructor(options: SandboxOptions = {}) {
    this.say = options.say ?? ((line) => console.log(line));
    this.timing = options.timing ?? { heartbeatIntervalMs: 500, leaseMs: 2000, maxClockSkewMs: 100 };
    this.scheduleMs = options.scheduleMs === undefined ? 5_000 : options.scheduleMs;
    this.shapes = options.groups ?? [FULL_GROUP];
    this.throttle = options.throttle;
    this.options = options;
  }

  /** Controller calls answered with a throttling error so far (the `throttle` option). */
  get throttledCalls(): number {
    return this.faultProxy?.throttled ?? 0;
  }
  private readonly options: SandboxOptions;
  /** The nodes' softdog timeout (checked against the lease when the sandbox starts). */
  get watchdogTimeoutSec(): number {
    return this.options.watchdogTimeoutSec ?? WATCHDOG_TIMEOUT_SEC;
  }
  /** The sandbox's sysfs tree (FAILOVER_AGENT_SYSFS_WATCHDOG), written by watchdog-emulator.py. */
  private get sysfs(): string {
    return join(this.root, 'sysfs');
  }

  /** The sandbox's first group: the one whose owner each fault hits. */
  get primary(): string {
    return this.shapes[0]!.name;
  }

  /**
   * The emulator, the agent bundle, the account and the cluster, the nodes and their agents, then
   * the controller: as a user would set it up, with the controller woken as AWS would wake it.
   */
  async start(): Promise<void> {
    this.root = mkdtempSync(join(tmpdir(), 'failover-sandbox-'));
    // An emulator handed over is the caller's to check and stop (a busy one may answer slowly).
    this.emulator = this.options.endpoint
      ? { endpoint: this.options.endpoint, stop: async () => undefined }
      : await startEmulator({
          endpoint: process.env.SANDBOX_EMULATOR_URL,
          log: (l: string) => this.say(`  ${l}`),
        });
    const endpoint = this.emulator!.endpoint;
    Object.assign(process.env, SANDBOX_CREDENTIALS);
    this.aws = { region: 'us-east-1', endpoint };
    // The sandbox's own calls (building the account, reading what the entry points say) wait for a
    // busy emulator on a loaded machine; the controller's and the agents' keep the product's timeouts.
    this.clients = createAwsClients({ ...this.aws, requestTimeoutMs: SETUP_REQUEST_TIMEOUT_MS });

    // The agent the nodes run is the one `npm run build:agent` ships: same build, same options.
    if (this.options.agentScript) this.agentScript = this.options.agentScript;
    else {
      this.say('building the agent bundle (npm run build:agent)...');
      this.agentScript = (await buildAgent(join(this.root, 'failover-agent.mjs'))).outfile;
      chmodSync(this.agentScript, 0o755);
    }

    await this.createAccount(Number(new URL(endpoint).port));
    await this.createNodes(Number(new URL(endpoint).port));
    if (this.throttle) {
      this.faultProxy = await startFaultProxy(endpoint);
      this.faultProxy.throttle(
        (_action, service) => service === 'ec2' || service === 'route53',
        this.throttle.share,
        this.throttle.seed ?? 1,
      );
      this.say(
        `the controller's EC2 and Route 53 calls go through a proxy that throttles ${Math.round(this.throttle.share * 100)} % of them`,
      );
    }
    this.createController();
    await this.startWatchdogs();
    // The agents first, the controller once both hold a lease: the first reconcile then sees both
    // nodes and starts each group on its first node in priority order (started the other way round,
    // whichever agent renewed first would get every group, correctly but not reproducibly).
    for (const n of this.nodes.values()) this.startAgent(n);
    for (const n of this.nodes.values()) await this.waitLive(n);
    await this.wakeController();
    this.say(
      `started 2 agents; ${this.scheduleMs === null ? 'no schedule (only the stream and events trigger reconcile)' : `the schedule runs every ${this.scheduleMs / 1000} s (1 minute in AWS)`}, the stream is polled every 250 ms`,
    );
  }

  /** The network, the state table and the cluster definition (witness: the emulator's port). */
  private async createAccount(motoPort: number): Promise<void> {
    this.say(
      `creating the account in the emulator: VPC, 2 subnets in 2 AZs, 2 instances, 2 route tables, a private hosted zone, and for ${this.shapes.length} group(s) their VIP routes and Elastic IPs...`,
    );
    this.net = await buildNetwork(this.clients.ec2, this.clients.route53, this.shapes);
    this.store = new DynamoStore(`failover-sandbox-${randomBytes(3).toString('hex')}`, {
      ...this.aws,
      requestTimeoutMs: SETUP_REQUEST_TIMEOUT_MS,
    });
    await this.store.createTable();
    this.config = sandboxConfig(
      this.net,
      this.timing,
      this.options.app ?? appCommands(),
      motoPort,
      this.options.stableAfterMs,
    );
    // The guard's SSM document, as the deployment creates it, for the agent bundle the nodes run.
    await ensureGuardDocument(this.clients.ssm, SANDBOX_GUARD_DOCUMENT, this.agentScript);
    await this.store.applyConfig(this.config, { now: Date.now(), by: 'sandbox' });
    // As stored: with the account apply recorded (the instances' ARNs key their heartbeats).
    this.config = (await this.store.getConfig('sandbox'))?.config ?? this.config;
    this.say(
      `applied cluster sandbox: lease ${this.config.timing.leaseMs} ms, heartbeat ${this.config.timing.heartbeatIntervalMs} ms, fence margin ${this.config.timing.fenceMarginMs} ms; ${this.net.groups.map(describeGroup).join('; ')}`,
    );
  }

  /** Each node: its directory, its fake `ip`, its watchdog device, and a proxy to cut it off. */
  private async createNodes(motoPort: number): Promise<void> {
    const base = {
      ...SANDBOX_CREDENTIALS,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      PATH: process.env.PATH ?? '',
    };
    for (const n of this.net.nodes) {
      const proxy = new CuttableProxy(motoPort);
      await proxy.start();
      const node = new SandboxNode(n.name, n.instanceId, n.eni, n.privateIp, this.root, proxy, base);
      node.extraEnv = this.options.nodeEnv?.(n.name, node.dir) ?? {};
      this.nodes.set(n.name, node);
    }
  }

  /**
   * The controller: the real handlers' code, with SSM commands run here for the emulated
   * instances. It has clients of its own, so that the trace counts its calls and nothing else.
   */
  private createController(): void {
    const controllerClients = createAwsClients(
      this.faultProxy ? { ...this.aws, endpoint: this.faultProxy.endpoint } : this.aws,
    );
    this.runner = new LocalRunCommand(
      new Map([...this.nodes.values()].map((n) => [n.instanceId, n])),
      async (name) =>
        JSON.parse(
          (await this.clients.ssm.send(new GetDocumentCommand({ Name: name }))).Content ?? '{}',
        ) as CommandDocument,
    );
    this.runner.attach(controllerClients.ssm);
    this.emulateInstanceStates(controllerClients.ec2);
    this.controllerStore = new DynamoStore(this.store.table, this.aws);
    this.trace.countCalls(this.controllerStore.client, 'dynamodb');
    this.trace.countCalls(controllerClients.ec2, 'ec2');
    this.trace.countCalls(controllerClients.route53, 'route53');
    this.trace.countCalls(controllerClients.ssm, 'ssm');
    this.trace.wrapAudit(this.controllerStore);
    const cloud = createAwsCloud(this.aws, { document: SANDBOX_GUARD_DOCUMENT }, controllerClients);
    this.trace.wrapDrivers(cloud);
    // SANDBOX_VERBOSE=1 prints every decision and action of the controller as well.
    const verbose = process.env.SANDBOX_VERBOSE === '1';
    const log: Log = {
      info: (m, a) => (verbose ? this.say(`  controller: ${m} ${JSON.stringify(a ?? {})}`) : undefined),
      warn: (m, a) => (verbose ? this.say(`  controller warn: ${m} ${JSON.stringify(a ?? {})}`) : undefined),
      error: (m, a) => this.say(`  controller error: ${m} ${JSON.stringify(a ?? {})}`),
    };
    this.deps = {
      store: this.controllerStore,
      cloud,
      notifier: {
        publish: async (e) => {
          this.transitions.push(e);
          this.say(`  [alert] ${e.kind}: ${e.message}`);
        },
      },
      clock: systemClock,
      log,
    };
    this.deps = this.options.wrapController?.(this.deps, controllerClients) ?? this.deps;
  }

  /** The stream mapping and the schedule start invoking the controller, and a first reconcile runs. */
  private async wakeController(): Promise<void> {
    const streams = new DynamoDBStreamsClient(clientConfig(this.aws));
    const dynamodb = new DynamoDBClient(clientConfig(this.aws));
    for (const client of [streams, dynamodb]) addEmulatorDateCompat(client);
    this.poller = new StreamPoller(dynamodb, streams, this.store.table, (records) =>
      this.invoke(
        'stream',
        (ctx) => handleStream(this.deps, { Records: records }, ctx),
        describeRecords(records),
      ),
    );
    await this.poller.start();
    if (this.scheduleMs !== null) {
      this.schedule = setInterval(
        () => void this.invoke('schedule', (ctx) => handleEventBridge(this.deps, scheduled(), ctx)),
        this.scheduleMs,
      );
    }
    void this.reconcileNow();
  }

  /** Waits until a node's agent has renewed its lease (running, fresh). */
  private async waitLive(node: SandboxNode, timeoutMs = 30_000): Promise<void> {
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
      const [hb] = Object.values(await this.store.getHeartbeats('sandbox', [node.name]));
      if (hb && hb.state === 'running' && Date.now() - hb.sentAt < this.timing.heartbeatIntervalMs * 2)
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `the agent of ${node.name} did not renew its lease within ${timeoutMs} ms; see ${node.dir}/agent.log`,
    );
  }

  /** The controller's DescribeInstances/DescribeInstanceStatus show `instanceStates` where set. */
  private emulateInstanceStates(ec2: ReturnType<typeof createAwsClients>['ec2']): void {
    ec2.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (this.instanceStates.size === 0) return result;
        const output = result.output as {
          Reservations?: { Instances?: { InstanceId?: string; State?: { Name?: string } }[] }[];
          InstanceStatuses?: { InstanceId?: string; InstanceState?: { Name?: string } }[];
        };
        if (context.commandName === 'DescribeInstancesCommand') {
          for (const i of (output.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
            const state = this.instanceStates.get(i.InstanceId ?? '');
            if (state) i.State = { ...i.State, Name: state };
          }
        }
        if (context.commandName === 'DescribeInstanceStatusCommand') {
          for (const i of output.InstanceStatuses ?? []) {
            const state = this.instanceStates.get(i.InstanceId ?? '');
            if (state) i.InstanceState = { ...i.InstanceState, Name: state };
          }
        }
        return result;
      },
      { step: 'initialize', name: 'sandboxInstanceStates' },
    );
  }

  /** One "Lambda invocation" of the real handler code. */
  private invoke(
    trigger: string,
    run: (ctx: { holder: string; deadline: number; account: string; region: string }) => Promise<unknown>,
    detail = '',
  ): Promise<unknown> {
    const once = () => {
      this.trace.invoked(trigger, detail);
      const ctx = {
        holder: `sandbox:${trigger}:${++this.invocations}`,
        deadline: Date.now() + (this.options.invocationMs ?? 20_000),
        account: '123456789012',
        region: 'us-east-1',
      };
      const p = run(ctx).catch((e) => this.say(`  ${trigger} invocation failed: ${(e as Error).message}`));
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
      return p;
    };
    const deliver = this.options.deliver;
    if (!deliver) return once();
    // Resolves with the first delivery (a duplicate is another invocation of its own, as a retry).
    return new Promise((resolve) =>
      deliver(trigger, () => {
        const p = once();
        void p.then(resolve);
        return p;
      }),
    );
  }

  /**
   * The emulated softdog of every node, in a process of its own at a raised priority (see
   * watchdog-emulator.py): a character device per node whose timeout the agent reads from the
   * sandbox's sysfs tree, as it reads softdog's; a reset comes the timeout after the last byte was
   * read, not when a busy sandbox gets round to it. Resolves once the devices exist.
   */
  private async startWatchdogs(): Promise<void> {
    const timeoutMs = this.watchdogTimeoutSec * 1000;
    if (!watchdogFits(timeoutMs, this.config.timing))
      throw new Error(
        `the sandbox's softdog (${this.watchdogTimeoutSec} s) does not suit lease ${this.config.timing.leaseMs} ms with fence margin ${this.config.timing.fenceMarginMs} ms: the agents would run unarmed`,
      );
    const spec = {
      timeoutMs,
      pollMs: 5,
      sysfs: this.sysfs,
      nodes: [...this.nodes.values()].map((n) => ({ name: n.name, dir: n.dir })),
    };
    const child = spawn(
      process.env.SANDBOX_PYTHON ?? 'python3',
      [join(REPO, 'sandbox', 'watchdog-emulator.py'), JSON.stringify(spec)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.watchdogs = child;
    let rest = '';
    let ready: (() => void) | undefined;
    const devices = new Promise<void>((resolve, reject) => {
      ready = resolve;
      child.once('error', reject);
      child.once('exit', (code) =>
        reject(new Error(`the watchdog emulator exited (${code}) before its devices were ready`)),
      );
    });
    child.stdout?.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const msg = JSON.parse(line) as
          | { ready: true }
          | { node: string; notFedMs: number; overdueMs: number; killed: number };
        if ('ready' in msg) {
          // Raised once it runs (the interpreter may be started through a shim that execs it).
          try {
            if (child.pid) setPriority(child.pid, -10);
          } catch {
            // Not root: the default priority.
          }
          ready?.();
          continue;
        }
        const n = this.nodes.get(msg.node);
        if (!n) continue;
        n.isUp = false;
        n.resets++;
        this.say(
          `  [watchdog] ${n.name} reset: not fed for ${msg.notFedMs} ms (timeout ${timeoutMs} ms), ${msg.killed} processes killed`,
        );
        this.options.onReset?.(n, msg.overdueMs);
      }
    });
    await devices;
  }

  startAgent(n: SandboxNode): void {
    n.boot();
    const args = [
      this.agentScript,
      '--cluster',
      'sandbox',
      '--node',
      n.name,
      '--table',
      this.store.table,
      '--region',
      'us-east-1',
      '--state-dir',
      join(n.dir, 'state'),
      '--log-level',
      this.options.agentLogLevel ?? 'warn',
      // No --watchdog-timeout-sec: the agent reads the device's timeout from sysfs, as on a node.
      '--watchdog-device',
      n.watchdog,
    ];
    const out = join(n.dir, 'agent.log');
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...n.env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stamp = () => new Date().toISOString().slice(11, 23);
    const append = (d: Buffer) => {
      try {
        writeFileSync(
          out,
          d.toString().replace(/^(?=.)/gm, () => `${stamp()} `),
          { flag: 'a' },
        );
      } catch {
        // The sandbox was stopped and its directory removed while the agent's last words arrived.
      }
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    n.agent = child;
  }

  /** Reads where every group's entry points point, who runs its application and holds its VIP. */
  async entryPoints(): Promise<EntryPoints[]> {
    const allocations = this.net.groups.flatMap((g) => (g.allocationId ? [g.allocationId] : []));
    const [groups, tables, addresses, records] = await Promise.all([
      this.store.listGroups('sandbox'),
      this.clients.ec2.send(
        new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [this.net.vpcId] }] }),
      ),
      allocations.length > 0
        ? this.clients.ec2.send(new DescribeAddressesCommand({ AllocationIds: allocations }))
        : Promise.resolve({ Addresses: [] }),
      this.clients.route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: this.net.hostedZoneId })),
    ]);
    const eniToNode = (eni: string | undefined) =>
      [...this.nodes.values()].find((n) => n.eni === eni)?.name ?? eni;
    const ipToNode = (ip: string | undefined) =>
      [...this.nodes.values()].find((n) => n.privateIp === ip)?.name ?? ip ?? '';
    const routes = (tables.RouteTables ?? []).flatMap((t) => t.Routes ?? []);
    return this.net.groups.map((g) => {
      const record = groups.find((r) => r.group === g.shape.name);
      const name = g.shape.name;
      return {
        group: name,
        owner: record?.owner ?? null,
        epoch: record?.epoch ?? 0,
        phase: record?.phase ?? 'Offline',
        routes: g.vip
          ? routes
              .filter((r) => r.DestinationCidrBlock === `${g.vip}/32`)
              .map((r) => eniToNode(r.NetworkInterfaceId))
          : [],
        eip: g.allocationId
          ? eniToNode(
              (addresses.Addresses ?? []).find((a) => a.AllocationId === g.allocationId)
                ?.NetworkInterfaceId || undefined,
            )
          : undefined,
        dns: g.record
          ? (records.ResourceRecordSets ?? [])
              .filter((r) => r.Name === g.record && r.Type === 'A')
              .flatMap((r) => (r.ResourceRecords ?? []).map((v) => ipToNode(v.Value)))
          : [],
        apps: [...this.nodes.values()].filter((n) => n.appPid(name) !== undefined).map((n) => n.name),
        addresses: g.vip
          ? [...this.nodes.values()].filter((n) => n.addresses().includes(g.vip!)).map((n) => n.name)
          : [],
      };
    });
  }

  /** Every part of the group is on `owner`: its record, each entry point, its application and VIP. */
  static consistent(e: EntryPoints, owner: string, shape: GroupShape): boolean {
    const only = (nodes: readonly (string | undefined)[]) =>
      nodes.length > 0 && nodes.every((n) => n === owner);
    return (
      e.owner === owner &&
      e.phase === 'Online' &&
      (!shape.vip || (only(e.routes) && e.addresses.length === 1 && e.addresses[0] === owner)) &&
      (!shape.eip || e.eip === owner) &&
      (!shape.dns || (e.dns.length === 1 && e.dns[0] === owner)) &&
      (!shape.exec || (e.apps.length === 1 && e.apps[0] === owner))
    );
  }

  static describe(e: EntryPoints): string {
    const parts = [`${e.group}: owner ${e.owner ?? '-'} (epoch ${e.epoch}, ${e.phase})`];
    if (e.routes.length > 0) parts.push(`route -> ${[...new Set(e.routes)].join('/')}`);
    if (e.routes.length > 0 || e.addresses.length > 0)
      parts.push(`VIP on ${e.addresses.join(', ') || 'no interface'}`);
    if (e.eip !== undefined) parts.push(`eip -> ${e.eip}`);
    if (e.dns.length > 0) parts.push(`dns -> ${e.dns.join('/')}`);
    parts.push(`app on ${e.apps.join(', ') || 'nothing'}`);
    return parts.join('; ');
  }

  static describeAll(all: readonly EntryPoints[]): string {
    return all.map(Sandbox.describe).join(' | ');
  }

  private shape(group: string): GroupShape {
    return this.shapes.find((s) => s.name === group)!;
  }

  /**
   * Waits until every group is wholly on its expected owner (all at once); checks after every poll
   * that no group's application runs, or its VIP sits, on two nodes. `at` has, per group, when it
   * was last seen becoming consistent (ms after the start of the wait).
   */
  async waitConsistent(
    expected: Readonly<Record<string, string>> | string,
    timeoutMs: number,
    /** Times are counted from here (the fault); default: the start of the wait. */
    started = Date.now(),
  ): Promise<{ ms: number; last: EntryPoints[]; at: Record<string, number>; doubleRun: string[] }> {
    const want: Record<string, string> =
      typeof expected === 'string'
        ? Object.fromEntries(this.shapes.map((s) => [s.name, expected]))
        : expected;
    const at: Record<string, number> = {};
    const doubleRun: string[] = [];
    let last = await this.entryPoints();
    while (Date.now() - started < timeoutMs) {
      last = await this.entryPoints();
      const now = Date.now() - started;
      let all = true;
      for (const e of last) {
        for (const [what, nodes] of [
          ['application', e.apps],
          ['VIP', e.addresses],
        ] as const) {
          const key = `${e.group} ${what}`;
          if (nodes.length > 1 && !doubleRun.includes(key)) {
            doubleRun.push(key);
            this.say(
              `  !! ${e.group}: ${what} on ${nodes.join(' and ')} at +${now} ms: ${Sandbox.describe(e)}`,
            );
          }
        }
        const ok = Sandbox.consistent(e, want[e.group]!, this.shape(e.group));
        if (ok && at[e.group] === undefined) at[e.group] = now;
        if (!ok) {
          delete at[e.group];
          all = false;
        }
      }
      if (all) return { ms: Math.max(0, ...Object.values(at)), last, at, doubleRun };
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ms: Number.NaN, last, at, doubleRun };
  }

  /** The owner of the first group (the node each fault hits) and the other node. */
  async current(): Promise<{ owner: SandboxNode; standby: SandboxNode; owners: Record<string, string> }> {
    const all = await this.entryPoints();
    const owners = Object.fromEntries(all.map((e) => [e.group, e.owner ?? '']));
    const owner = this.nodes.get(owners[this.primary] ?? '');
    if (!owner) throw new Error(`no owner: ${all.map(Sandbox.describe).join(' | ')}`);
    const standby = [...this.nodes.values()].find((n) => n !== owner)!;
    return { owner, standby, owners };
  }

  private async scenario(
    name: string,
    fault: string,
    inject: (owner: SandboxNode, standby: SandboxNode) => Promise<void>,
    expectOwner: 'standby' | 'owner',
    repair?: (owner: SandboxNode, standby: SandboxNode) => Promise<void>,
  ): Promise<ScenarioResult> {
    const { owner, standby, owners } = await this.current();
    // The groups on the node the fault hits move (or stay, for a fault the owner must repair);
    // the groups on the other node stay where they are.
    const expected: Record<string, string> = {};
    for (const [group, node] of Object.entries(owners))
      expected[group] = node === owner.name && expectOwner === 'standby' ? standby.name : node;
    this.say(`\n▶ ${name}: ${fault.replace('{owner}', owner.name)}`);
    const t0 = Date.now();
    await inject(owner, standby);
    const { ms, last, at, doubleRun } = await this.waitConsistent(expected, 60_000 - (Date.now() - t0), t0);
    const seconds = Number.isFinite(ms) ? ms / 1000 : Number.NaN;
    const ok = Number.isFinite(ms) && doubleRun.length === 0;
    for (const e of last) {
      const moved = owners[e.group] !== expected[e.group];
      this.say(
        `  ${ok ? '✓' : '✗'} ${Sandbox.describe(e)}${ok && moved ? ` — switched in ${((at[e.group] ?? 0) / 1000).toFixed(2)} s` : ''}`,
      );
    }
    if (doubleRun.length > 0) this.say(`  ✗ SEEN ON TWO NODES: ${doubleRun.join(', ')}`);
    if (repair) await repair(owner, standby);
    const target = expected[this.primary]!;
    return {
      name,
      fault: fault.replace('{owner}', owner.name),
      from: owner.name,
      to: target,
      seconds,
      ok,
      detail: last.map(Sandbox.describe).join(' | '),
      groups: last.map((e) => ({
        group: e.group,
        from: owners[e.group] ?? '',
        to: expected[e.group]!,
        seconds: at[e.group] !== undefined ? at[e.group]! / 1000 : Number.NaN,
        ok:
          Sandbox.consistent(e, expected[e.group]!, this.shape(e.group)) &&
          !doubleRun.some((d) => d.startsWith(`${e.group} `)),
        detail: Sandbox.describe(e),
      })),
    };
  }

  /** Kills the owner's agent and application: the node is gone without a word. */
  silentCrash(): Promise<ScenarioResult> {
    return this.scenario(
      'silent crash',
      'kill -9 the agent and the applications of the active node {owner}',
      async (owner) => {
        owner.isUp = false;
        owner.agent?.kill('SIGKILL');
        // The OS stays up: addresses stay on its interface until its watchdog resets it.
        owner.killApps();
      },
      'standby',
      async (owner) => {
        owner.forgetApps();
        this.startAgent(owner);
        await new Promise((r) => setTimeout(r, 2 * this.timing.heartbeatIntervalMs));
      },
    );
  }

  /**
   * StopInstances on the owner, in EC2's order: the state becomes `stopping` (EC2 sends its event),
   * the OS shuts down (systemd sends SIGTERM to the agent, which stops the application and writes
   * its leaving heartbeat), then the instance is `stopped`. moto jumps to `stopped` at once, so the
   * sandbox calls StopInstances only when its emulated OS has shut down.
   */
  instanceStop(): Promise<ScenarioResult> {
    return this.scenario(
      'instance stop',
      'StopInstances on the active node {owner} (EC2 state-change event, SIGTERM to its agent, then stopped)',
      async (owner) => {
        void this.invoke('ec2-event', (ctx) =>
          handleEventBridge(this.deps, stateChange(owner.instanceId, 'stopping'), ctx),
        );
        const exited = new Promise<void>((resolve) => owner.agent?.once('exit', () => resolve()));
        owner.agent?.kill('SIGTERM');
        void exited.then(async () => {
          // The OS halts: whatever still runs on the node dies with it, its addresses too.
          owner.isUp = false;
          owner.killApps();
          owner.clearAddresses();
          await this.clients.ec2.send(new StopInstancesCommand({ InstanceIds: [owner.instanceId] }));
          void this.invoke('ec2-event', (ctx) =>
            handleEventBridge(this.deps, stateChange(owner.instanceId, 'stopped'), ctx),
          );
        });
      },
      'standby',
      async (owner) => {
        await new Promise((r) => setTimeout(r, 500));
        await this.clients.ec2.send(new StartInstancesCommand({ InstanceIds: [owner.instanceId] }));
        owner.forgetApps();
        this.startAgent(owner);
        await new Promise((r) => setTimeout(r, 2 * this.timing.heartbeatIntervalMs));
      },
    );
  }

  /** Cuts the owner's agent off from DynamoDB: it must fence itself, the standby takes over. */
  partition(): Promise<ScenarioResult> {
    return this.scenario(
      'partition',
      'cut the active node {owner} off from DynamoDB and the AWS APIs',
      async (owner) => owner.proxy.cutOff(),
      'standby',
      async (owner) => {
        owner.proxy.heal();
        await new Promise((r) => setTimeout(r, 3 * this.timing.heartbeatIntervalMs));
      },
    );
  }

  /** SIGTERM to the active node's agent (the instance stays up): it stops the application and leaves. */
  cleanStop(): Promise<ScenarioResult> {
    return this.scenario(
      'clean stop',
      'SIGTERM to the agent of the active node {owner}: it stops the application and leaves',
      async (owner) => {
        owner.agent?.kill('SIGTERM');
      },
      'standby',
      async (owner) => {
        await new Promise<void>((resolve) => {
          if (!owner.agent || owner.agent.exitCode !== null) resolve();
          else owner.agent.once('exit', () => resolve());
        });
        this.startAgent(owner);
        await this.waitStandbyReady(owner);
      },
    );
  }

  /**
   * EC2 reports the active node `stopping`, `shutting-down` or `terminated`; the event reaches
   * reconcile. For stopping and shutting-down the node still runs (its OS has not shut the agent
   * down yet), so the controller demotes it through SSM; terminated means it is gone. The emulator
   * cannot hold these states: the controller's describe calls are shown them (instanceStates).
   */
  instanceStateEvent(state: 'stopping' | 'shutting-down' | 'terminated'): Promise<ScenarioResult> {
    return this.scenario(
      `EC2 ${state}`,
      `EC2 state-change event: instance of the active node {owner} is ${state}`,
      async (owner) => {
        if (state === 'terminated') {
          owner.isUp = false;
          owner.agent?.kill('SIGKILL');
          owner.killApps();
          owner.clearAddresses();
        }
        this.instanceStates.set(owner.instanceId, state);
        void this.invoke(
          'ec2-event',
          (ctx) => handleEventBridge(this.deps, stateChange(owner.instanceId, state), ctx),
          `${owner.instanceId} ${state}`,
        );
      },
      'standby',
      async (owner) => {
        this.instanceStates.delete(owner.instanceId);
        await this.clearFacts(owner.name);
        if (state === 'terminated') {
          owner.forgetApps();
          this.startAgent(owner);
        }
        await this.waitStandbyReady(owner);
      },
    );
  }

  /** A Spot interruption warning for the active node: a planned switchover within the 2 minutes. */
  spotWarning(): Promise<ScenarioResult> {
    return this.scenario(
      'Spot warning',
      'EC2 Spot interruption warning for the active node {owner}',
      async (owner) => {
        void this.invoke(
          'spot-event',
          (ctx) => handleEventBridge(this.deps, spotInterruption(owner.instanceId), ctx),
          `${owner.instanceId} spot warning`,
        );
      },
      'standby',
      async (owner) => {
        await this.clearFacts(owner.name);
        await this.waitStandbyReady(owner);
      },
    );
  }

  /** One reconcile as the 1-minute schedule would run it; resolves when it is done. */
  async reconcileNow(): Promise<void> {
    await this.invoke('schedule', (ctx) => handleEventBridge(this.deps, scheduled(), ctx));
  }

  /** Size of a node's heartbeat item as DynamoDB bills it (attribute names + values). */
  async heartbeatItemBytes(node: string): Promise<number> {
    const out = await this.store.client.send(
      new GetItemCommand({
        TableName: this.store.table,
        Key: marshallKey({ ...(heartbeatKeys(this.config).key(node) ?? keys.heartbeat('sandbox', node)) }),
        ConsistentRead: true,
      }),
    );
    return dynamoItemBytes(out.Item ?? {});
  }

  /** Removes the facts events recorded on a node (they keep it ineligible for 15 minutes). */
  async clearFacts(node: string): Promise<void> {
    for (const kind of ['instance-state', 'spot-interruption', 'rebalance', 'health']) {
      await this.store.client.send(
        new DeleteItemCommand({
          TableName: this.store.table,
          Key: marshallKey(keys.fact('sandbox', node, kind)),
        }),
      );
    }
  }

  /** Waits until a node's agent renews its lease again and reports nothing running. */
  async waitStandbyReady(node: SandboxNode, timeoutMs = 30_000): Promise<void> {
    await this.waitLive(node, timeoutMs);
    // Two more heartbeats of calm, so the next scenario starts from a settled cluster.
    await new Promise((r) => setTimeout(r, this.timing.heartbeatIntervalMs * 2));
  }

  /** Points the VIP route at the standby behind the controller's back: the route check puts it back. */
  tamperRoute(): Promise<ScenarioResult> {
    const vip = this.net.groups.find((g) => g.vip)?.vip;
    if (!vip) throw new Error('route tampering needs a group with a vip resource');
    return this.scenario(
      'route tampering',
      "ReplaceRoute of the VIP to the standby's ENI behind the controller's back (owner {owner})",
      async (_owner, standby) => {
        const tables = this.net.routeTables;
        await this.clients.ec2.send(
          new ReplaceRouteCommand({
            RouteTableId: tables[0]!,
            DestinationCidrBlock: `${vip}/32`,
            NetworkInterfaceId: standby.eni,
          }),
        );
      },
      'owner',
    );
  }

  /**
   * Sends one exec start/stop through the real SSM driver to a node at a given epoch, bypassing
   * reconcile (the epoch fence is skipped on purpose): shows what the node's guard does with it.
   */
  async sendExec(node: 'node1' | 'node2', action: 'start' | 'stop', epoch: number): Promise<string> {
    const resource = this.config.groups[0]!.resources.find((r) => r.type === 'exec')!;
    const req = {
      cluster: 'sandbox',
      group: this.primary,
      epoch,
      holder: 'sandbox:manual',
      signal: AbortSignal.timeout(30_000),
      beforeMutation: async () => undefined,
      cache: new Map(),
      resource,
      node: this.config.nodes.find((n) => n.name === node)!,
      config: this.config,
    };
    const driver = this.deps.cloud.resources.exec;
    return (await (action === 'start' ? driver.activate(req) : driver.deactivate(req))).detail;
  }

  /** The record of the sandbox's first group. */
  async status(): Promise<GroupState | undefined> {
    return this.store.getGroup('sandbox', this.primary);
  }

  async stop(): Promise<void> {
    if (this.schedule) clearInterval(this.schedule);
    this.watchdogs?.stdin?.end();
    this.watchdogs?.kill('SIGKILL');
    await this.poller?.stop();
    await Promise.allSettled([...this.pending]);
    for (const n of this.nodes.values()) {
      n.agent?.kill('SIGKILL');
      n.killApps();
      // Whatever else still runs there (a stop script, a guard, a writer whose pid file is gone).
      n.killEverything();
      await n.proxy.stop();
    }
    await this.faultProxy?.close();
    await this.emulator?.stop();
    if (this.root && existsSync(this.root) && !process.env.SANDBOX_KEEP)
      rmSync(this.root, { recursive: true, force: true });
  }

  get workDir(): string {
    return this.root;
  }
}

/** The default application: sandbox/app.mjs, one process per group, its pid in the node's directory. */
function appCommands(): { start: string; stop: string } {
  const app = join(REPO, 'sandbox', 'app.mjs');
  // One application process per group (FAILOVER_GROUP is set by the guard and the agent's stops).
  const pidFile = '"$SANDBOX_NODE_DIR/app-$FAILOVER_GROUP.pid"';
  const start = `(setsid nohup "${process.execPath}" "${app}" >>"$SANDBOX_NODE_DIR/app-$FAILOVER_GROUP.log" 2>&1 & echo $! > ${pidFile})`;
  // "Alive" means running: a zombie waiting for init to reap it (slow on some hosts) is gone.
  const alive = `[ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null`;
  const stop = `if [ -f ${pidFile} ]; then p=$(cat ${pidFile}); kill "$p" 2>/dev/null; for i in $(seq 50); do ${alive} || break; sleep 0.05; done; kill -9 "$p" 2>/dev/null; rm -f ${pidFile}; fi; true`;
  return { start, stop };
}

/** "db = vip 172.16.0.10 + eip 54.x + dns db.sandbox.internal. + exec" */
function describeGroup(g: SandboxGroup): string {
  const parts = [
    ...(g.vip ? [`vip ${g.vip}`] : []),
    ...(g.publicIp ? [`eip ${g.publicIp}`] : []),
    ...(g.record ? [`dns ${g.record}`] : []),
    ...(g.shape.exec ? ['exec'] : []),
  ];
  return `group ${g.shape.name} on ${g.shape.nodes.join(' > ')} = ${parts.join(' + ')}`;
}

/** The 1-minute schedule's event as EventBridge delivers it (the sandbox's stand-in, the benches). */
export function scheduled() {
  return {
    version: '0',
    id: randomBytes(8).toString('hex'),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [],
    detail: {},
  };
}

function spotInterruption(instanceId: string) {
  return ec2Event('EC2 Spot Instance Interruption Warning', instanceId, {
    'instance-id': instanceId,
    'instance-action': 'terminate',
  });
}

/** "HB#node1 change @1700000000123" per stream record: which write woke reconcile. */
function describeRecords(
  records: { dynamodb?: { NewImage?: Record<string, { S?: string; N?: string }> } }[],
) {
  return records
    .map((r) => {
      const image = r.dynamodb?.NewImage ?? {};
      return `${image.pk?.S ?? '?'}/${image.sk?.S ?? '?'} ${image.reason?.S ?? ''} @${image.sentAt?.N ?? ''}`.trim();
    })
    .join(', ');
}

/**
 * DynamoDB's item size: UTF-8 bytes of every attribute name plus its value; numbers about 1 byte
 * per 2 digits + 1; maps and lists 3 bytes + 1 per element on top of their contents.
 */
export function dynamoItemBytes(item: Record<string, AttributeValue>): number {
  const value = (v: AttributeValue): number => {
    if (v.S !== undefined) return Buffer.byteLength(v.S);
    if (v.N !== undefined) return Math.ceil(v.N.replace(/^-|\.|e.*$/gi, '').length / 2) + 1;
    if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
    if (v.B !== undefined) return v.B.length;
    if (v.M !== undefined)
      return 3 + Object.entries(v.M).reduce((n, [k, x]) => n + Buffer.byteLength(k) + value(x) + 1, 0);
    if (v.L !== undefined) return 3 + v.L.reduce((n, x) => n + value(x) + 1, 0);
    if (v.SS !== undefined) return v.SS.reduce((n, x) => n + Buffer.byteLength(x), 0);
    if (v.NS !== undefined) return v.NS.reduce((n, x) => n + Math.ceil(x.length / 2) + 1, 0);
    return 0;
  };
  return Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k) + value(v), 0);
}

function marshallKey(key: Record<string, string>) {
  return Object.fromEntries(Object.entries(key).map(([k, v]) => [k, { S: v }]));
}

function stateChange(instanceId: string, state: string) {
  return ec2Event('EC2 Instance State-change Notification', instanceId, { 'instance-id': instanceId, state });
}

/** An event of source aws.ec2 about one instance, as EventBridge delivers it. */
function ec2Event(detailType: string, instanceId: string, detail: Record<string, string>) {
  return {
    version: '0',
    id: randomBytes(8).toString('hex'),
    'detail-type': detailType,
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail,
  };
}
