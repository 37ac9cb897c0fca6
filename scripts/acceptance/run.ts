/**
 * One acceptance run, the same steps on AWS and on the emulator:
 *
 *   1. build the agent release (npm run release:agent)
 *   2. deploy the controller to a throwaway stage
 *   3. upload the release to the deployment's bucket
 *   4. the nodes' user data (failoverctl agent user-data)
 *   5. a VPC with a subnet in each of two AZs, a tagged route table, the nodes' role, two instances
 *   6. the smallest cluster users write, a floating IP and nothing else: validate, the agent policy
 *      from `failoverctl iam-policy --role agent` on the nodes' role, apply
 *   7. both agents renew their leases
 *   8. the group comes online: the record says Online and the VIP's /32 points at the owner's ENI
 *   9. the owner crashes without a word; the time until the route and the record name the other node
 *  10. everything removed again, newest first, and what could not be removed named
 *
 * and prints what it created and what the run cost (or, on the emulator, would cost on AWS).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { stringify } from 'yaml';
import { DEFAULT_PRICES, priceOf } from '../../cli/cost';
import { clientConfig } from '../../controller/aws/clients';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { releaseAgent } from '../agent-release';
import { failoverctl } from './failoverctl';
import { type CreatedResource, describe, Ledger, type Teardown } from './ledger';
import { type AcceptanceNode, createNetwork } from './network';
import type { Platform, Release } from './platform';
import { s3Client, uploadRelease } from './release-upload';

export const CLUSTER = 'acceptance';
const GROUP = 'vip';
/** The VPC the run creates; the VIP lies outside it, as a VIP must. */
const VPC_CIDR = '10.87.0.0/16';
const VIP = '192.168.87.10';
/**
 * us-east-1 on-demand list price (https://aws.amazon.com/ec2/pricing/on-demand/); not re-checked
 * from here (no internet): pass the run's length through your own prices if they differ.
 */
const T4G_MICRO_HOUR_USD = 0.0084;
/** A public IPv4 address, per hour, since 2024-02-01 (https://aws.amazon.com/vpc/pricing/). */
const PUBLIC_IPV4_HOUR_USD = 0.005;
/** The stream and event functions' memory in serverless.yml. */
const LAMBDA_MB = 1769;

export interface AcceptanceOptions {
  platform: Platform;
  say: (line: string) => void;
  /** The throwaway stage (default: at + 6 random hex digits). */
  stage?: string;
  /** Leave everything in place (for a look around); the printout says how to remove it. */
  keep?: boolean;
}

export interface FailoverMeasure {
  from: string;
  to: string;
  /** Crash (sent) → the VIP's route names the new owner's ENI. */
  routeSwitchedMs: number;
  /** Crash → the group record says Online on the new owner. */
  onlineMs: number;
  /** The crashed node's last lease renewal → the route switched (the lease is counted from there). */
  fromLastRenewalMs: number | undefined;
  leaseMs: number;
}

export interface AcceptanceResult {
  ok: boolean;
  stage: string;
  error?: string;
  failover?: FailoverMeasure;
  created: CreatedResource[];
  teardown?: Teardown;
  elapsedMs: number;
  cost: { usd: number; lines: string[] };
  invocations?: Record<string, number>;
}

interface Waited<T> {
  value: T;
  at: number;
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  pollMs: number,
  probe: () => Promise<T | undefined>,
): Promise<Waited<T>> {
  const started = Date.now();
  let lastError: string | undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return { value, at: Date.now() };
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (Date.now() - started > timeoutMs)
      throw new Error(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The cluster definition: the nodes the run created and one floating IP. */
function definition(region: string, vpcId: string, nodes: readonly AcceptanceNode[]): string {
  return stringify({
    cluster: CLUSTER,
    region,
    nodes: nodes.map((n) => ({
      name: n.name,
      instanceId: n.instanceId,
      eni: n.eni,
      az: n.az,
      privateIp: n.privateIp,
    })),
    groups: [
      {
        name: GROUP,
        nodes: nodes.map((n) => n.name),
        resources: [{ type: 'vip', name: 'acceptance-vip', ip: VIP, vpcId }],
      },
    ],
  });
}

export async function runAcceptance(o: AcceptanceOptions): Promise<AcceptanceResult> {
  const { platform, say } = o;
  const stage = o.stage ?? `at${randomBytes(3).toString('hex')}`;
  const ledger = new Ledger(say);
  const started = Date.now();
  const work = mkdtempSync(path.join(tmpdir(), 'failover-acceptance-run-'));
  const aws = { ...platform.aws, requestTimeoutMs: 30_000 };
  const ec2 = new EC2Client(clientConfig(aws));
  const iam = new IAMClient(clientConfig({ ...aws, region: 'us-east-1' }));
  const result: AcceptanceResult = {
    ok: false,
    stage,
    created: ledger.created,
    elapsedMs: 0,
    cost: { usd: 0, lines: [] },
  };
  let step = 0;
  const next = (what: string) => say(`[${++step}/10] ${what}`);
  let leaseMs = 0;
  let heartbeatMs = 0;
  try {
    next('build the agent release (npm run release:agent)');
    const manifest = await releaseAgent({ outDir: path.join(work, 'release') });
    const release: Release = {
      dir: manifest.dir,
      version: manifest.version,
      linuxArchive: manifest.linux.file,
    };
    say(`  ${manifest.linux.file}, sha256 ${manifest.linux.sha256.slice(0, 16)}…`);

    next(
      `deploy the controller to the throwaway stage ${stage} (${platform.kind === 'aws' ? `AWS, ${platform.region}` : 'emulator'})`,
    );
    const d = await platform.deploy(stage, ledger);
    const cli = (args: string[]) =>
      failoverctl(['--table', d.table, '--region', platform.region, ...args], platform.cliEnv);

    next(`upload the release to s3://${d.bucket}/${manifest.keyPrefix}`);
    const keys = await uploadRelease(s3Client(platform.aws), d.bucket, release.dir, manifest.keyPrefix);
    say(`  ${keys.length} files`);

    next("the nodes' user data (failoverctl agent user-data)");
    const userData = (
      await cli([
        'agent',
        'user-data',
        '--platform',
        'linux',
        '--bucket',
        d.bucket,
        '--cluster',
        CLUSTER,
        '--release',
        release.dir,
      ])
    ).stdout;
    say(`  ${userData.split('\n').length} lines: installs ${manifest.linux.file} with its sum checked`);

    next("a VPC with a subnet in each of two Availability Zones, the nodes' role, two instances");
    const image = await platform.image();
    const net = await createNetwork(ec2, iam, ledger, {
      prefix: `failover-${stage}`,
      managedTag: d.managedTag,
      cluster: CLUSTER,
      cidr: VPC_CIDR,
      vip: VIP,
      imageId: image.imageId,
      instanceType: image.instanceType,
      userData: () => userData,
      managedPolicies: d.nodePolicies,
      terminateTimeoutMs: platform.terminateTimeoutMs,
      say,
    });

    next(`the cluster ${CLUSTER}: a floating IP ${VIP} and nothing else; validate, agent policy, apply`);
    const file = path.join(work, 'cluster.yaml');
    writeFileSync(file, definition(platform.region, net.vpcId, net.nodes));
    await cli(['validate', '-f', file]);
    const policy = (await cli(['iam-policy', '--role', 'agent', '-f', file, '--agent-bucket', d.bucket]))
      .stdout;
    await iam.send(
      new PutRolePolicyCommand({ RoleName: net.role, PolicyName: 'failover-agent', PolicyDocument: policy }),
    );
    say(`  agent policy (${policy.length} characters) on role ${net.role}`);
    const applied = await cli(['apply', '-f', file]);
    say(`  ${applied.stdout.trim().split('\n')[0]}`);

    const store = new DynamoStore(d.table, aws);
    const config = (await store.getConfig(CLUSTER))?.config;
    if (!config) throw new Error(`cluster ${CLUSTER} is not in table ${d.table} after apply`);
    leaseMs = config.timing.leaseMs;
    heartbeatMs = config.timing.heartbeatIntervalMs;

    next(`the agents renew their leases (up to ${platform.agentWaitMs / 1000} s)`);
    await platform.startAgents(d, CLUSTER, net.nodes, release);
    const names = net.nodes.map((n) => n.name);
    await waitFor('both agents to renew their leases', platform.agentWaitMs, 1000, async () => {
      const hbs = await store.getHeartbeats(CLUSTER, names);
      const live = names.filter((n) => hbs[n]?.state === 'running' && Date.now() - hbs[n]!.sentAt < leaseMs);
      return live.length === names.length ? live : undefined;
    });
    say(
      `  ${names.join(' and ')} hold leases (lease ${leaseMs} ms, heartbeat ${config.timing.heartbeatIntervalMs} ms)`,
    );

    const routeTarget = async (): Promise<string | undefined> => {
      const table = (await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [net.routeTableId] })))
        .RouteTables?.[0];
      return table?.Routes?.find((r) => r.DestinationCidrBlock === `${VIP}/32`)?.NetworkInterfaceId;
    };
    const group = async () => (await store.listGroups(CLUSTER)).find((g) => g.group === GROUP);
    const nodeOfEni = (eni: string | undefined) => net.nodes.find((n) => n.eni === eni);

    next('the group comes online: its record and the VIP route name the same node');
    const online = await waitFor('the group online with its route', 120_000, 250, async () => {
      const [g, eni] = await Promise.all([group(), routeTarget()]);
      const owner = nodeOfEni(eni);
      return g?.phase === 'Online' && owner && g.owner === owner.name ? owner : undefined;
    });
    const owner = online.value;
    const standby = net.nodes.find((n) => n !== owner)!;
    say(`  online on ${owner.name}: ${VIP}/32 → ${owner.eni}`);
    // The standby must know the owner's lease before the crash, or it counts from its first read.
    await new Promise((r) => setTimeout(r, config.timing.heartbeatIntervalMs * 2));

    next(`crash the owner ${owner.name} without a word; measure until ${standby.name} has the VIP`);
    const crashedAt = await platform.crash(owner);
    let switchedAt: number | undefined;
    const done = await waitFor('the failover', 120_000, 100, async () => {
      const [g, eni] = await Promise.all([group(), routeTarget()]);
      if (eni === standby.eni) switchedAt ??= Date.now();
      else if (eni !== owner.eni) throw new Error(`the VIP route points at ${eni}, neither node's ENI`);
      if (g && g.owner !== owner.name && g.owner !== standby.name)
        throw new Error(`the group record names ${g.owner} as owner`);
      return switchedAt !== undefined && g?.phase === 'Online' && g.owner === standby.name ? g : undefined;
    });
    const last = (await store.getHeartbeats(CLUSTER, [owner.name]))[owner.name];
    result.failover = {
      from: owner.name,
      to: standby.name,
      routeSwitchedMs: switchedAt! - crashedAt,
      onlineMs: done.at - crashedAt,
      fromLastRenewalMs: last ? switchedAt! - last.sentAt : undefined,
      leaseMs,
    };
    say(
      `  the VIP moved ${owner.name} → ${standby.name} ${(result.failover.routeSwitchedMs / 1000).toFixed(2)} s after the crash (record Online after ${(result.failover.onlineMs / 1000).toFixed(2)} s; ${result.failover.fromLastRenewalMs === undefined ? '' : `${(result.failover.fromLastRenewalMs / 1000).toFixed(2)} s after ${owner.name}'s last renewal, `}lease ${leaseMs / 1000} s)`,
    );
    result.ok = true;
  } catch (e) {
    result.error = (e as Error).message;
    say(`FAILED: ${result.error}`);
  } finally {
    result.invocations = platform.invocations();
    await platform.close();
    if (o.keep) {
      say(`[${step + 1}/10] kept everything (--keep); remove it with the AWS console or CLI:`);
      for (const r of ledger.created) say(`  ${describe(r)}`);
    } else {
      next('remove everything, newest first');
      result.teardown = await ledger.teardown(
        platform.kind === 'aws' ? 6 : 2,
        platform.kind === 'aws' ? 10_000 : 200,
      );
      if (result.teardown.failed.length > 0) {
        result.ok = false;
        result.error ??= `${result.teardown.failed.length} resource(s) could not be removed`;
      }
    }
    rmSync(work, { recursive: true, force: true });
    result.elapsedMs = Date.now() - started;
    result.cost = runCost(result.elapsedMs, heartbeatMs, result.invocations);
  }
  return result;
}

/** What the run costs on AWS: instances and addresses for its length, and the controller's share. */
export function runCost(
  elapsedMs: number,
  /** 0 when the run ended before the agents ran. */
  heartbeatMs: number,
  invocations: Record<string, number> | undefined,
): { usd: number; lines: string[] } {
  const hours = Math.max(elapsedMs, 60_000) / 3_600_000;
  const instances = 2 * T4G_MICRO_HOUR_USD * hours;
  const addresses = 2 * PUBLIC_IPV4_HOUR_USD * hours;
  // Heartbeats: 2 nodes, one renewal (2 write units: items over 1 KB) per heartbeat interval, counted
  // over the whole run (the agents run for part of it).
  const renewals = heartbeatMs > 0 ? 2 * (elapsedMs / heartbeatMs) : 0;
  const dynamodb = priceOf(DEFAULT_PRICES.prices.dynamodbOnDemandWrite, renewals * 2);
  // Lambda: counted on the emulator; on AWS, one schedule a minute and a stream batch per change.
  const counted = invocations ? Object.values(invocations).reduce((a, b) => a + b, 0) : undefined;
  const calls = counted ?? Math.ceil(elapsedMs / 60_000) + 50;
  const lambda =
    priceOf(DEFAULT_PRICES.prices.lambdaRequests, calls) +
    priceOf(DEFAULT_PRICES.prices.lambdaGbSecondArm64, (calls * LAMBDA_MB) / 1024);
  const usd = instances + addresses + dynamodb + lambda;
  const f = (x: number) => `$${x.toFixed(4)}`;
  return {
    usd,
    lines: [
      `2 × t4g.micro for ${(hours * 60).toFixed(1)} min: ${f(instances)}`,
      `2 public IPv4 addresses: ${f(addresses)}`,
      `DynamoDB (about ${Math.round(renewals)} renewals, on-demand): ${f(dynamodb)}`,
      `Lambda (${calls} invocations${counted === undefined ? ', estimated' : ''}, ${LAMBDA_MB} MB, ≤ 1 s each): ${f(lambda)}`,
      'CloudFormation, IAM, the VPC, its subnets and route table: free; S3 and CloudWatch Logs: under $0.001',
    ],
  };
}
