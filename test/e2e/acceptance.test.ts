/**
 * `npm run test:aws`, the live acceptance run, on the emulator: the script itself as users start
 * it (`--emulator`), every step but the CloudFormation deploy and the instances' own agents. Then,
 * independently of what the script reports, the emulator is searched for anything the run left
 * behind. And without credentials the live run is skipped, with exit code 0 and a reason.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, GetPolicyCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AcceptanceResult } from '../../scripts/acceptance/run';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from '../../scripts/emulator.mjs';

const REPO = join(import.meta.dirname, '..', '..');

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'scripts/test-aws.ts', ...args],
      {
        cwd: REPO,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

let emulator: { endpoint: string; stop: () => Promise<void> };
beforeAll(async () => {
  emulator = await startEmulator({ endpoint: process.env.SANDBOX_EMULATOR_URL, log: () => undefined });
}, 120_000);
afterAll(async () => {
  await emulator?.stop();
});

describe('npm run test:aws', () => {
  it('on the emulator: deploys, builds two nodes in two AZs, fails the owner over, and removes everything it made', async () => {
    const json = join(mkdtempSync(join(tmpdir(), 'acceptance-test-')), 'result.json');
    const { code, output } = await run(['--emulator', '--json', json], {
      ...process.env,
      SANDBOX_EMULATOR_URL: emulator.endpoint,
    });
    console.log(
      output
        .split('\n')
        .filter((l) => !/ (created|removed) /.test(l))
        .join('\n'),
    );
    expect(code, output).toBe(0);
    const r = JSON.parse(readFileSync(json, 'utf8')) as AcceptanceResult & { kind: string };
    expect(r.kind).toBe('emulator');
    expect(r.ok).toBe(true);
    // The failover, measured from the crash: a 3.75 s lease, plus the stream and the switch (a
    // loaded 2-core machine gets a generous bound; the bench measures the speed).
    expect(r.failover?.from).toBe('node1');
    expect(r.failover?.to).toBe('node2');
    expect(r.failover!.routeSwitchedMs).toBeGreaterThan(0);
    expect(r.failover!.routeSwitchedMs).toBeLessThan(20_000);
    expect(r.failover!.fromLastRenewalMs!).toBeGreaterThanOrEqual(r.failover!.leaseMs);
    // The path of the deployed functions: the stream function carried the failover.
    const stream = Object.entries(r.invocations ?? {}).find(([name]) => name.startsWith('reconcileStream-'));
    expect(stream?.[1]).toBeGreaterThan(0);
    // What it created, all of it removed.
    const kinds = r.created.map((c) => c.kind);
    for (const kind of [
      'DynamoDB table',
      'S3 bucket',
      'VPC',
      'subnet',
      'route table',
      'IAM role',
      'instance',
    ])
      expect(kinds).toContain(kind);
    expect(kinds.filter((k) => k === 'instance')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'subnet')).toHaveLength(2);
    expect(r.teardown?.failed).toEqual([]);
    expect(r.teardown?.removed).toHaveLength(r.created.length);
    expect(r.cost.usd).toBeGreaterThan(0);
    expect(r.cost.usd).toBeLessThan(0.05);
    expect(output).toContain(`acceptance run, stage ${r.stage}, emulator: PASSED`);
    expect(output).toMatch(/cost of this run had it run on AWS \([\d.]+ min\): \$0\.\d{4}/);

    // Nothing left in the account, each resource looked up by its id rather than taken from the
    // script's word.
    const aws = {
      region: 'us-east-1',
      endpoint: emulator.endpoint,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    };
    const ids = (kind: string) => r.created.filter((c) => c.kind === kind).map((c) => c.id);
    const gone = async (what: string, lookup: () => Promise<unknown>, notFound: RegExp) => {
      const error = await lookup().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.name, `${what} is still there`).toMatch(notFound);
    };
    const ec2 = new EC2Client(aws);
    for (const id of ids('VPC'))
      await gone(id, () => ec2.send(new DescribeVpcsCommand({ VpcIds: [id] })), /InvalidVpcID\.NotFound/);
    for (const id of ids('subnet'))
      await gone(
        id,
        () => ec2.send(new DescribeSubnetsCommand({ SubnetIds: [id] })),
        /InvalidSubnetID\.NotFound/,
      );
    for (const id of ids('route table'))
      await gone(
        id,
        () => ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [id] })),
        /InvalidRouteTableID\.NotFound/,
      );
    const states = (
      await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids('instance') }))
    ).Reservations?.flatMap((x) => x.Instances ?? []).map((i) => i.State?.Name);
    expect(states).toEqual(['terminated', 'terminated']);
    const dynamodb = new DynamoDBClient(aws);
    for (const id of ids('DynamoDB table'))
      await gone(
        id,
        () => dynamodb.send(new DescribeTableCommand({ TableName: id })),
        /ResourceNotFoundException/,
      );
    const iam = new IAMClient(aws);
    for (const id of ids('IAM role'))
      await gone(id, () => iam.send(new GetRoleCommand({ RoleName: id })), /NoSuchEntity/);
    for (const id of ids('instance profile'))
      await gone(
        id,
        () => iam.send(new GetInstanceProfileCommand({ InstanceProfileName: id })),
        /NoSuchEntity/,
      );
    for (const id of ids('IAM policy'))
      await gone(id, () => iam.send(new GetPolicyCommand({ PolicyArn: id })), /NoSuchEntity/);
    const s3 = new S3Client({ ...aws, forcePathStyle: true });
    for (const id of ids('S3 bucket'))
      await gone(id, () => s3.send(new HeadBucketCommand({ Bucket: id })), /NotFound/);
  }, 300_000);

  it('without AWS credentials: skipped with the reason, exit code 0, nothing called', async () => {
    const home = mkdtempSync(join(tmpdir(), 'no-credentials-'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
      // No instance metadata either: nothing may leave loopback.
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const { code, output } = await run([], env);
    expect(output).toMatch(/^test:aws skipped: no usable AWS credentials \(.+\)\./m);
    expect(output).toContain('npm test runs the same steps on the emulator');
    expect(output).not.toMatch(/deploying|created/);
    expect(code).toBe(0);
  }, 60_000);
});
