/**
 * Helpers for the agent tests: real agent processes (the bin, through tsx) against the moto server
 * that test/integration/global-setup.ts starts, a TCP proxy in front of moto to cut an agent off
 * from DynamoDB, an IMDS server on loopback, and an "application" (a real child process with a pid
 * file) started and stopped by shell scripts. Everything listens on 127.0.0.1 only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { DynamoStore } from '../../controller/state/dynamo-store';
import type { GuardRun, LocalState } from '../../node-agent/local-state';
import { type ClusterConfig, parseClusterConfig } from '../../shared/config/load';
import type { ClusterInput } from '../../shared/config/schema';
import { type GroupState, type Heartbeat, initialGroupState } from '../../shared/core/model';
import { keys } from '../../shared/table/keys';

// moto accepts any credentials; real ones must never be needed (or used) by the tests.
process.env.AWS_ACCESS_KEY_ID = 'testing';
process.env.AWS_SECRET_ACCESS_KEY = 'testing';
delete process.env.AWS_PROFILE;

export const REPO = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(REPO, 'bin/failover-agent.js');
export const REGION = 'us-east-1';

export function motoEndpoint(): string {
  return inject('awsEndpoint');
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

const tempDirs: string[] = [];
/** The pid of a process that has exited (a guard that died). */
export async function deadPid(): Promise<number> {
  const gone = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => gone.on('exit', r));
  return gone.pid!;
}

/**
 * Records db as "starting" at epoch 1 by a guard run whose guard is dead (SSM's timeout, a crash);
 * its command's pid is the dead guard's unless `run` names one. Returns the dead guard's pid.
 */
export async function recordDeadGuardStart(
  state: LocalState,
  run: { nonce: string } & Partial<Omit<GuardRun, 'action' | 'guardPid'>>,
): Promise<number> {
  const pid = await deadPid();
  state.writeGroup({
    group: 'db',
    state: 'starting',
    epoch: 1,
    pid,
    at: Date.now(),
    run: { action: 'start', guardPid: pid, cmdPid: pid, ...run },
  });
  return pid;
}

export function tempDir(prefix = 'agent'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `fa-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `fn` returns a value other than undefined/false, or fails with `what`. */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ------------------------------------------------------------------------------------------------
// The state table

export interface Fixture {
  store: DynamoStore;
  table: string;
  cluster: string;
  config: ClusterConfig;
}

/** A fresh table holding one cluster definition. */
/** The account of the emulator's resources (moto's default). */
export const MOTO_ACCOUNT = '123456789012';

export async function createCluster(input: Omit<ClusterInput, 'cluster' | 'region'>): Promise<Fixture> {
  const table = uniqueName('agent');
  const cluster = uniqueName('c');
  const store = new DynamoStore(table, { region: REGION, endpoint: motoEndpoint() });
  await store.createTable();
  // moto's account, which apply would record anyway: the stored definition equals `config`.
  const config = parseClusterConfig({ cluster, region: REGION, account: MOTO_ACCOUNT, ...input });
  await store.applyConfig(config, { now: Date.now(), by: 'test' });
  return { store, table, cluster, config };
}

export async function applyConfig(
  f: Fixture,
  input: Omit<ClusterInput, 'cluster' | 'region'>,
): Promise<void> {
  f.config = parseClusterConfig({ cluster: f.cluster, region: REGION, account: MOTO_ACCOUNT, ...input });
  await f.store.applyConfig(f.config, { now: Date.now(), by: 'test' });
}

/** Writes a group record as reconcile would have left it (owner, epoch). */
export async function setGroup(
  f: Fixture,
  group: string,
  owner: string | null,
  epoch: number,
): Promise<void> {
  const g = f.config.groups.find((x) => x.name === group)!;
  const state: GroupState = {
    ...initialGroupState(g, Date.now()),
    owner,
    epoch,
    phase: owner ? 'Online' : 'Offline',
    mayRun: owner ? [owner] : [],
  };
  await f.store.doc.send(
    new PutCommand({ TableName: f.table, Item: { ...keys.group(f.cluster, group), ...state } }),
  );
}

export async function heartbeat(f: Fixture, node: string): Promise<Heartbeat | undefined> {
  return (await f.store.getHeartbeats(f.cluster, [node]))[node];
}

// ------------------------------------------------------------------------------------------------
// Agent processes

export interface AgentStart {
  f: Fixture;
  node: string;
  stateDir: string;
  /** DynamoDB endpoint the agent uses (default: moto itself). */
  endpoint?: string;
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Omit --node (IMDS discovery). */
  noNode?: boolean;
}

export class AgentProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(opts: AgentStart) {
    const args = [
      BIN,
      '--cluster',
      opts.f.cluster,
      ...(opts.noNode ? [] : ['--node', opts.node]),
      '--table',
      opts.f.table,
      '--state-dir',
      opts.stateDir,
      ...(opts.args ?? []),
    ];
    this.child = spawn(process.execPath, args, {
      cwd: REPO,
      env: agentEnv(opts.endpoint ?? motoEndpoint(), opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const onData = (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        if (process.env.AGENT_TEST_VERBOSE) console.log(`[${opts.node}] ${line}`);
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Waits for a log line matching `re`; returns it. */
  waitForLine(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(
      `agent log line ${re}\n--- log so far:\n${this.lines.join('\n')}`,
      () => this.lines.find((l) => re.test(l)),
      timeoutMs,
    );
  }

  /** Stops the process for good (SIGKILL) unless it already exited. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  log(): string {
    return this.lines.join('\n');
  }
}

export function agentEnv(
  endpoint: string,
  extra: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    FAILOVER_AGENT_LOG_LEVEL: 'info',
    ...extra,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export async function startAgent(opts: AgentStart): Promise<AgentProcess> {
  const agent = new AgentProcess(opts);
  await agent.waitForLine(/ starting /, 20_000);
  return agent;
}

/** Starts `failover-agent guard ...`; `done` resolves with its exit code and output. */
export function spawnGuard(
  args: string[],
  command: string[],
  env: Record<string, string | undefined>,
): {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>;
} {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'guard', ...args, '--', ...command], {
    cwd: REPO,
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
    } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })),
  );
  return { child, done };
}

/** Runs `failover-agent guard ...`; resolves with its exit code and output. */
export function runGuard(
  args: string[],
  command: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return spawnGuard(args, command, env).done;
}

// ------------------------------------------------------------------------------------------------
// The "application": a real process with a pid file, started and stopped by shell scripts.

export interface App {
  dir: string;
  pidFile: string;
  /** Lines "<epoch ms> <reason>" appended by every run of the stop script. */
  stopLog: string;
  start: string;
  stop: string;
  pid(): number | undefined;
  /** Pids of every start, in order (the pid file is removed by a stop; this log is not). */
  started(): number[];
  alive(): boolean;
  stops(): { at: number; reason: string }[];
}

export function makeApp(dir: string): App {
  const pidFile = path.join(dir, 'app.pid');
  const stopLog = path.join(dir, 'stops.log');
  const startScript = path.join(dir, 'start.sh');
  const stopScript = path.join(dir, 'stop.sh');
  // The app detaches from the start command (as a daemon would) and records its pid.
  writeFileSync(
    startScript,
    `#!/bin/sh\nsleep 1000 </dev/null >/dev/null 2>&1 &\necho $! > ${pidFile}\necho $! >> ${pidFile}.log\necho "app started, pid $(cat ${pidFile})"\n`,
    { mode: 0o755 },
  );
  writeFileSync(
    stopScript,
    `#!/bin/sh\necho "$(date +%s%3N) \${FAILOVER_STOP_REASON:-guard}" >> ${stopLog}\nif [ -f ${pidFile} ]; then kill $(cat ${pidFile}) 2>/dev/null; rm -f ${pidFile}; fi\nexit 0\n`,
    { mode: 0o755 },
  );
  const pid = () => {
    try {
      const n = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
      return Number.isInteger(n) ? n : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    dir,
    pidFile,
    stopLog,
    start: startScript,
    stop: stopScript,
    pid,
    started: () => {
      try {
        return readFileSync(`${pidFile}.log`, 'utf8').trim().split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    },
    alive: () => {
      const p = pid();
      return p !== undefined && processAlive(p);
    },
    stops: () => {
      try {
        return readFileSync(stopLog, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [at, reason] = l.split(' ');
            return { at: Number(at), reason: reason ?? '' };
          });
      } catch {
        return [];
      }
    },
  };
}

/** The process exists and is not a zombie (PID 1 here may reap late). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------
// A TCP proxy in front of moto: forward, refuse (closed port) or blackhole (accepts, never answers).

export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export class TcpProxy {
  private server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  mode: ProxyMode = 'forward';

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    this.server = this.makeServer();
  }

  static async start(targetUrl: string): Promise<TcpProxy> {
    const u = new URL(targetUrl);
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)),
    );
    await new Promise<void>((r) => probe.close(() => r()));
    const proxy = new TcpProxy(port, { host: u.hostname, port: Number(u.port) });
    await proxy.listen();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private makeServer(): net.Server {
    return net.createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.mode === 'blackhole') return; // accepted, never answered
      const upstream = net.connect(this.target.port, this.target.host);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private dropConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async setMode(mode: ProxyMode): Promise<void> {
    if (mode === this.mode) return;
    const was = this.mode;
    this.mode = mode;
    if (mode === 'refuse') {
      await new Promise<void>((r) => {
        this.server.close(() => r());
        this.dropConnections();
      });
      return;
    }
    if (mode === 'blackhole') this.dropConnections();
    if (was === 'refuse') {
      this.server = this.makeServer();
      await this.listen();
    }
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

// ------------------------------------------------------------------------------------------------
// An IMDSv2 server on loopback

export interface ImdsServer {
  url: string;
  tokenPuts: number;
  gets: Record<string, number>;
  spot?: { action: string; time: string };
  rebalance?: { noticeTime: string };
  close(): Promise<void>;
}

export async function startImds(instanceId: string): Promise<ImdsServer> {
  const token = randomBytes(8).toString('hex');
  const state: ImdsServer = {
    url: '',
    tokenPuts: 0,
    gets: {},
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (req.method === 'PUT' && url === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) {
        res.writeHead(400).end();
        return;
      }
      state.tokenPuts++;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
      return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== token) {
      res.writeHead(401).end();
      return;
    }
    state.gets[url] = (state.gets[url] ?? 0) + 1;
    const send = (body: string | undefined) => {
      if (body === undefined) res.writeHead(404).end();
      else res.writeHead(200).end(body);
    };
    if (url === '/latest/meta-data/instance-id') send(instanceId);
    else if (url === '/latest/meta-data/placement/region') send(REGION);
    else if (url === '/latest/dynamic/instance-identity/document')
      // moto's account: the table's, which `apply` records in the definition.
      send(JSON.stringify({ accountId: '123456789012', region: REGION, instanceId }));
    else if (url === '/latest/meta-data/spot/instance-action') send(state.spot && JSON.stringify(state.spot));
    else if (url === '/latest/meta-data/events/recommendations/rebalance')
      send(state.rebalance && JSON.stringify(state.rebalance));
    else send(undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  state.close = () => new Promise((r) => server.close(() => r()));
  return state;
}
