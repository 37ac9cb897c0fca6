/**
 * The acceptance run's twin on the emulator (in `npm test`): every step of the live run but two.
 * The CloudFormation deploy is replaced by `failoverctl init` (the table and the guard documents)
 * and a bucket for the releases, with the Lambda functions built as serverless.yml builds them and
 * run in processes of their own behind an emulation of the stream mapping (sandbox/stream.ts) and
 * the schedule; the agents the instances would install from their user data are replaced by local
 * agent processes of the same release archive, one per emulated instance.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { CreatePolicyCommand, DeletePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { DeleteDocumentCommand, SSMClient } from '@aws-sdk/client-ssm';
import { clientConfig } from '../../controller/aws/clients';
import { addEmulatorDateCompat } from '../../controller/aws/emulator-compat';
import { clearFakeIp, writeFakeIp } from '../../sandbox/fake-ip';
import { scheduled } from '../../sandbox/sandbox';
import { StreamPoller } from '../../sandbox/stream';
import type { AwsOptions } from '../../shared/aws/options';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from '../emulator.mjs';
import { bundle, readServerless } from '../lambda-bundle';
import { failoverctl } from './failoverctl';
import { imageOfParameter } from './images';
import type { Ledger } from './ledger';
import type { AcceptanceNode } from './network';
import type { Deployment, Platform, Release } from './platform';
import { emptyAndDeleteBucket, s3Client } from './release-upload';

const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'acceptance', AWS_SECRET_ACCESS_KEY: 'acceptance' };
/** The functions a silent crash goes through: agent reports on the stream, and the schedule. */
const FUNCTIONS = ['reconcileStream', 'reconcileSchedule'] as const;
/** The Lambda timeout in serverless.yml. */
const LAMBDA_TIMEOUT_MS = 60_000;

/** One function's execution environment: its bundle in a process of its own (lambda-host.mjs). */
class LambdaHost {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  invocations = 0;
  readonly ready: Promise<void>;

  constructor(
    file: string,
    exportName: string,
    readonly name: string,
    env: Record<string, string>,
    log: WriteStream,
  ) {
    this.child = fork(
      path.join(import.meta.dirname, 'lambda-host.mjs'),
      [file, exportName, name, String(LAMBDA_TIMEOUT_MS)],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
      this.child.on(
        'message',
        (m: {
          ready?: boolean;
          id?: number;
          result?: unknown;
          error?: { name: string; message: string };
        }) => {
          if (m.ready) return resolve();
          const w = this.waiting.get(m.id ?? -1);
          if (!w) return;
          this.waiting.delete(m.id!);
          if (m.error) w.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
          else w.resolve(m.result);
        },
      );
    });
  }

  invoke(event: unknown): Promise<unknown> {
    const id = this.next++;
    this.invocations++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, event });
    });
  }

  close(): void {
    this.child.kill('SIGKILL');
    for (const w of this.waiting.values()) w.reject(new Error(`${this.name} was stopped`));
    this.waiting.clear();
  }
}

export interface EmulatorPlatformOptions {
  say: (line: string) => void;
  /** The schedule's period here (1 minute in AWS; a silent crash never waits for it). */
  scheduleMs?: number;
}

export class EmulatorPlatform implements Platform {
  readonly kind = 'emulator' as const;
  readonly region = 'us-east-1';
  readonly terminateTimeoutMs = 30_000;
  readonly agentWaitMs = 60_000;
  aws: AwsOptions = {};
  cliEnv: Record<string, string> = {};
  private emulator: { endpoint: string; stop: () => Promise<void> } | undefined;
  private readonly work = mkdtempSync(path.join(tmpdir(), 'failover-acceptance-'));
  private readonly hosts: LambdaHost[] = [];
  private poller: StreamPoller | undefined;
  private schedule: NodeJS.Timeout | undefined;
  private readonly agents = new Map<string, { child: ChildProcess; dir: string }>();
  private logs: WriteStream[] = [];

  constructor(private readonly options: EmulatorPlatformOptions) {}

  /** Starts (or finds, with AWS_ENDPOINT_URL / SANDBOX_EMULATOR_URL) the emulator. */
  async open(): Promise<void> {
    this.emulator = await startEmulator({
      endpoint: process.env.SANDBOX_EMULATOR_URL,
      log: (l: string) => this.options.say(`  ${l}`),
    });
    const endpoint = this.emulator!.endpoint;
    this.aws = { region: this.region, endpoint };
    this.cliEnv = {
      ...CREDENTIALS,
      AWS_REGION: this.region,
      AWS_ENDPOINT_URL: endpoint,
      // Nothing here may leave loopback: no instance metadata (the agents' Spot poll, the SDK's
      // credential chain).
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    // The run's own SDK clients (in this process) sign with the same credentials.
    Object.assign(process.env, CREDENTIALS);
  }

  /** Logs of the agents and the functions (printed by the run when something fails). */
  get workDir(): string {
    return this.work;
  }

  async deploy(stage: string, ledger: Ledger): Promise<Deployment> {
    const table = `failover-state-${stage}`;
    const document = `failover-guard-${stage}`;
    // What the stack would create for the controller: the table and the guard documents.
    const env = { ...this.cliEnv, FAILOVER_SSM_DOCUMENT: document };
    this.options.say(`  failoverctl init (the stack's table and guard documents)`);
    await failoverctl(['--table', table, 'init'], env);
    const dynamodb = new DynamoDBClient(clientConfig(this.aws));
    const ssm = new SSMClient(clientConfig(this.aws));
    ledger.add({ kind: 'DynamoDB table', id: table }, async () => {
      await dynamodb.send(new DeleteTableCommand({ TableName: table }));
    });
    ledger.add({ kind: 'SSM documents', id: `${document}, ${document}-windows` }, async () => {
      for (const name of [document, `${document}-windows`])
        await ssm.send(new DeleteDocumentCommand({ Name: name }));
    });
    const bucket = `failover-agent-${stage}-${randomBytes(3).toString('hex')}`;
    const s3 = s3Client(this.aws);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    ledger.add({ kind: 'S3 bucket', id: bucket }, () => emptyAndDeleteBucket(s3, bucket));

    // The functions as serverless.yml builds them, each in an environment of its own.
    const { esbuild, functions } = readServerless();
    const lambdaEnv = {
      ...this.cliEnv,
      FAILOVER_TABLE: table,
      FAILOVER_SSM_DOCUMENT: document,
      FAILOVER_SSM_DOCUMENT_WINDOWS: `${document}-windows`,
      FAILOVER_METRICS: 'detailed',
      POWERTOOLS_SERVICE_NAME: 'failover-controller',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    for (const name of FUNCTIONS) {
      const fn = functions.find((f) => f.name === name);
      if (!fn) throw new Error(`serverless.yml has no function ${name}`);
      const out = path.join(this.work, 'functions', `${name}${esbuild.extension}`);
      mkdirSync(path.dirname(out), { recursive: true });
      this.options.say(`  building ${name} as serverless.yml does (${fn.entry})`);
      await bundle(fn, esbuild, out, { external: esbuild.exclude, minify: esbuild.minify });
      const log = createWriteStream(path.join(this.work, `${name}.log`));
      this.logs.push(log);
      const host = new LambdaHost(out, fn.exportName, `${name}-${stage}`, lambdaEnv, log);
      this.hosts.push(host);
      await host.ready;
    }
    const [stream, schedule] = this.hosts;
    const dynamoForStream = new DynamoDBClient(clientConfig(this.aws));
    const streams = new DynamoDBStreamsClient(clientConfig(this.aws));
    for (const client of [dynamoForStream, streams]) addEmulatorDateCompat(client);
    this.poller = new StreamPoller(dynamoForStream, streams, table, (records) =>
      stream!
        .invoke({ Records: records })
        .catch((e: Error) => this.options.say(`  stream invocation failed: ${e.message}`)),
    );
    await this.poller.start();
    const scheduleMs = this.options.scheduleMs ?? 60_000;
    const tick = () =>
      void schedule!
        .invoke(scheduled())
        .catch((e: Error) => this.options.say(`  schedule invocation failed: ${e.message}`));
    this.schedule = setInterval(tick, scheduleMs);
    this.options.say(
      `  the stream mapping is emulated (polled every 250 ms, 3 batches in flight); the schedule runs every ${scheduleMs / 1000} s`,
    );
    // The stack's policy for the nodes' role that reads the releases (AgentArtifactsReadPolicy).
    // AWS's own AmazonSSMManagedInstanceCore is not in the emulator (moto loads AWS managed
    // policies only when asked to), and nothing here needs SSM on the nodes.
    const iam = new IAMClient(clientConfig(this.aws));
    const policyArn = (
      await iam.send(
        new CreatePolicyCommand({
          PolicyName: `failover-agent-artifacts-read-${stage}`,
          PolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/agent/*` },
            ],
          }),
        }),
      )
    ).Policy?.Arn;
    if (!policyArn) throw new Error('CreatePolicy returned no ARN');
    ledger.add({ kind: 'IAM policy', id: policyArn }, async () => {
      await iam.send(new DeletePolicyCommand({ PolicyArn: policyArn }));
    });
    return {
      stage,
      table,
      bucket,
      managedTag: `failover-controller-${stage}`,
      nodePolicies: [policyArn],
    };
  }

  async image(): Promise<{ imageId: string; instanceType: string }> {
    // moto answers the public parameter Amazon Linux publishes, as AWS does.
    return { imageId: await imageOfParameter(this.aws), instanceType: 't4g.micro' };
  }

  async startAgents(
    d: Deployment,
    cluster: string,
    nodes: readonly AcceptanceNode[],
    release: Release,
  ): Promise<void> {
    // The release archive the instances would download, unpacked once.
    const unpacked = path.join(this.work, 'release');
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['xzf', path.join(release.dir, release.linuxArchive), '-C', unpacked]);
    const script = path.join(unpacked, `failover-agent-${release.version}`, 'failover-agent.mjs');
    for (const n of nodes) {
      const dir = path.join(this.work, n.name);
      mkdirSync(path.join(dir, 'state'), { recursive: true });
      const ip = writeFakeIp(dir);
      const log = createWriteStream(path.join(dir, 'agent.log'));
      this.logs.push(log);
      const child = spawn(
        process.execPath,
        [
          script,
          '--cluster',
          cluster,
          '--node',
          n.name,
          '--table',
          d.table,
          '--region',
          this.region,
          '--state-dir',
          path.join(dir, 'state'),
        ],
        {
          env: {
            ...process.env,
            ...this.cliEnv,
            FAILOVER_AGENT_IP_COMMAND: ip,
            FAILOVER_AGENT_VIP_DEV: 'eth0',
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout?.pipe(log, { end: false });
      child.stderr?.pipe(log, { end: false });
      this.agents.set(n.instanceId, { child, dir });
      this.options.say(
        `  agent of ${n.name} (${n.instanceId}) started from the release archive, pid ${child.pid}`,
      );
    }
  }

  async crash(node: AcceptanceNode): Promise<number> {
    const agent = this.agents.get(node.instanceId);
    if (!agent) throw new Error(`no agent runs for ${node.name}`);
    // Power lost: the agent dies without a word and the node's addresses go with it.
    agent.child.kill('SIGKILL');
    const at = Date.now();
    clearFakeIp(agent.dir);
    return at;
  }

  invocations(): Record<string, number> {
    return Object.fromEntries(this.hosts.map((h) => [h.name, h.invocations]));
  }

  async close(): Promise<void> {
    if (this.schedule) clearInterval(this.schedule);
    await this.poller?.stop();
    for (const h of this.hosts.splice(0)) h.close();
    for (const a of this.agents.values()) a.child.kill('SIGKILL');
    this.agents.clear();
    for (const l of this.logs.splice(0)) l.end();
  }

  /** Stops the emulator (after the teardown, which needs it). */
  async shutdown(): Promise<void> {
    await this.emulator?.stop();
  }

  /** Removes the work directory (logs): after a run that passed. */
  removeWorkDir(): void {
    rmSync(this.work, { recursive: true, force: true });
  }
}
