/**
 * failoverctl end to end against the moto server: init, apply (idempotent, with a diff), status,
 * plan, reconcile --once, requests with --local, events, doctor (on a good and a broken account),
 * iam-policy. Everything goes through main(argv) exactly as the binary runs it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModifyNetworkInterfaceAttributeCommand } from '@aws-sdk/client-ec2';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Io } from '../../cli/context';
import { main } from '../../cli/main';
import { clientConfig } from '../../controller/aws/clients';
import { DynamoStore } from '../../controller/state/dynamo-store';
import type { Heartbeat } from '../../shared/core/model';
import { createFixture, type Fixture } from './resources/fixture';
import { aws, uniqueName } from './support';

function io(
  extra: Record<string, string> = {},
): Io & { stdout: string[]; stderr: string[]; text: () => string } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    text: () => [...stdout, ...stderr].join('\n'),
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    env: {
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: aws().endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      USER: 'tester',
      ...extra,
    },
    now: () => Date.now(),
  };
}

describe('failoverctl against the emulator', () => {
  let fx: Fixture;
  let table: string;
  let file: string;
  let store: DynamoStore;
  const run = async (args: string[], extra?: Record<string, string>) => {
    const x = io(extra);
    const code = await main(['--table', table, ...args], x);
    return { code, ...x };
  };
  const heartbeat = (node: string): Heartbeat => ({
    cluster: fx.cluster,
    node,
    token: `${node}/1`,
    seq: 1,
    incarnation: node,
    sentAt: Date.now(),
    leaseMs: fx.config.timing.leaseMs,
    agentVersion: 'test',
    state: 'running',
    reason: 'periodic',
    monitors: { disk: { status: 'ok' } },
    isolated: false,
    groups: {},
    peers: {},
  });

  beforeAll(async () => {
    fx = await createFixture({ initialOwner: 'none' });
    table = uniqueName('ctl');
    store = new DynamoStore(table, aws());
    file = join(mkdtempSync(join(tmpdir(), 'ctl-')), 'cluster.yaml');
    writeFileSync(file, stringify(fx.config));
  });

  it('init creates the table once', async () => {
    const first = await run(['init']);
    expect(first.code).toBe(0);
    expect(first.stdout.join('\n')).toMatch(`created state table ${table}`);
    // The guard documents the exec driver sends (Linux, and the PowerShell variant for Windows nodes).
    expect(first.stdout.join('\n')).toMatch(/guard document failover-guard (\(linux|is up to date)/);
    expect(first.stdout.join('\n')).toMatch(/guard document failover-guard-windows\b/);
    const again = await run(['init']);
    expect(again.stdout.join('\n')).toMatch('already exists; nothing to do');
    expect(again.stdout.join('\n')).toMatch(
      'guard document failover-guard-windows is up to date; nothing to do',
    );
  });

  it('apply stores a version, says what changed, and changes nothing the second time', async () => {
    const first = await run(['apply', '-f', file]);
    expect(first.code).toBe(0);
    expect(first.stdout.join('\n')).toMatch(new RegExp(`applied cluster ${fx.cluster} as version 1`));
    const again = await run(['apply', '-f', file]);
    expect(again.stdout.join('\n')).toMatch('already at version 1 with this definition; nothing changed');
    const changed = structuredClone(fx.config);
    changed.timing.leaseMs = changed.timing.leaseMs + 1000;
    const file2 = `${file}.v2.yaml`;
    writeFileSync(file2, stringify(changed));
    const second = await run(['apply', '-f', file2]);
    expect(second.stdout.join('\n')).toMatch(/as version 2[\s\S]*~ timing/);
    // Two operators: the one who reviewed version 1 is refused.
    const stale = await run(['apply', '-f', file, '--expected-version', '1']);
    expect(stale.code).toBe(4);
    expect(stale.text()).toMatch(/CONFLICT/);
    await run(['apply', '-f', file]);
    expect((await store.listAudit(fx.cluster)).some((e) => e.kind === 'config.applied')).toBe(true);
  });

  it('plan shows what reconcile would do without doing it; reconcile --once does it', async () => {
    await store.putHeartbeat(heartbeat('node1'));
    await store.putHeartbeat(heartbeat('node2'));
    const plan = await run(['plan']);
    expect(plan.code).toBe(0);
    // A first start on one read: the takeover records node1 in mayRun, and the start follows.
    expect(plan.stdout.join('\n')).toMatch(
      /group web \(epoch 0\): 8 actions\n {2}- takeover\(node1\): starting on node1/,
    );
    expect(plan.stdout.join('\n')).toMatch(/activate\(web-app@node1\)/);
    expect(await store.getGroup(fx.cluster, 'web')).toBeUndefined();

    const once = await run(['reconcile', '--once']);
    expect(once.code).toBe(0);
    expect(once.stdout.join('\n')).toMatch(/web: converged, owner node1 \(Online, epoch 1\)/);

    const status = await run(['status']);
    expect(status.stdout.join('\n')).toMatch(/node1 +running +\d+\.\d s/);
    expect(status.stdout.join('\n')).toMatch(/web +node1 +Online +1 +auto/);
    const json = JSON.parse((await run(['status', '--json'])).stdout.join('\n'));
    expect(json.groups[0]).toMatchObject({
      name: 'web',
      owner: 'node1',
      phase: 'Online',
      epoch: 1,
      mayRun: ['node1'],
    });
    expect(json.nodes.map((n: { name: string; state: string }) => `${n.name}:${n.state}`)).toEqual([
      'node1:running',
      'node2:running',
    ]);
  });

  it('move --local moves the group and waits for the outcome; a bad target is refused with the reason', async () => {
    await store.putHeartbeat(heartbeat('node1'));
    await store.putHeartbeat(heartbeat('node2'));
    const moved = await run(['move', 'web', '--to', 'node2', '--local', '--wait', '20']);
    expect(moved.code, moved.text()).toBe(0);
    expect(moved.stdout.join('\n')).toMatch('web: done: group web is moving to node2 from node1');
    expect(await store.getGroup(fx.cluster, 'web')).toMatchObject({ owner: 'node2', phase: 'Online' });

    const bad = await run(['move', 'web', '--to', 'node9']);
    expect(bad.code).toBe(2);
    expect(bad.text()).toMatch('node node9 is not a node of group web; use one of: node1, node2');

    // node1 is isolated: the controller refuses and says why.
    await store.putHeartbeat({ ...heartbeat('node1'), isolated: true });
    await store.putHeartbeat(heartbeat('node2'));
    const refused = await run(['move', 'web', '--to', 'node1', '--local', '--wait', '20']);
    expect(refused.code).toBe(5);
    expect(refused.stdout.join('\n')).toMatch('web: rejected: cannot move web to node1: node1 is isolated');
  });

  it('suspend and resume every group, and the audit log tells the story', async () => {
    await store.putHeartbeat(heartbeat('node1'));
    await store.putHeartbeat(heartbeat('node2'));
    expect((await run(['suspend', '--local', '--wait', '20'])).code).toBe(0);
    expect((await store.getGroup(fx.cluster, 'web'))?.mode).toBe('maintenance');
    expect((await run(['resume', '--local', '--wait', '20'])).code).toBe(0);
    expect((await store.getGroup(fx.cluster, 'web'))?.mode).toBe('auto');
    const events = await run(['events', '--since', '10m']);
    const text = events.stdout.join('\n');
    expect(text).toMatch(/web +e0 +decision +takeover\(node1\)/);
    expect(text).toMatch(/request\.done +group web is moving to node2 from node1/);
    expect(text).toMatch(/request\.rejected +cannot move web to node1/);
    expect(text).toMatch(/request\.done +group web suspended/);
    expect((await run(['events', '--since', 'yesterday'])).code).toBe(2);
  });

  it('status exits 0 when every group is online, 1 when degraded, 2 when a group is offline', async () => {
    await store.putHeartbeat(heartbeat('node1'));
    await store.putHeartbeat(heartbeat('node2'));
    const ok = await run(['status']);
    expect(ok.code, ok.text()).toBe(0);
    expect(ok.stdout.join('\n')).toMatch(/\nok: every group online$/);
    await store.putHeartbeat({ ...heartbeat('node2'), sentAt: Date.now() - 120_000 });
    const degraded = await run(['status']);
    expect(degraded.code).toBe(1);
    expect(degraded.stdout.join('\n')).toMatch(/degraded: node node2 is expired/);
    expect(JSON.parse((await run(['status', '--json'])).stdout.join('\n'))).toMatchObject({
      health: 'degraded',
      healthReasons: ['node node2 is expired'],
    });
    // Both alive again (a silent owner would have to fence itself first), then stopped.
    await store.putHeartbeat(heartbeat('node1'));
    await store.putHeartbeat(heartbeat('node2'));
    expect((await run(['stop', 'web', '--local', '--wait', '20'])).code).toBe(0);
    const critical = await run(['status']);
    expect(critical.code, critical.text()).toBe(2);
    expect(critical.stdout.join('\n')).toMatch(/critical: group web is Offline/);
    await store.putHeartbeat(heartbeat('node1'));
    await store.putHeartbeat(heartbeat('node2'));
    expect((await run(['start', 'web', '--local', '--wait', '20'])).code).toBe(0);
    expect((await run(['status'])).code).toBe(0);
  });

  it('status --watch redraws until interrupted', async () => {
    const { statusCommand } = await import('../../cli/commands/status');
    const x = io();
    const signal = AbortSignal.timeout(2_500);
    const code = await statusCommand(x, { table }, { watch: true, interval: 1, signal });
    expect(code).toBeLessThanOrEqual(1);
    const draws = x.stdout.filter((l) => l.startsWith('cluster '));
    expect(draws.length).toBeGreaterThanOrEqual(2);
    expect(x.stdout.filter((l) => l === '\x1b[2J\x1b[H').length).toBe(draws.length);
  });

  it('a move whose wait ends says what is still pending, when it expires and how to cancel it', async () => {
    // Before: the request stayed pending, and a later reconcile carried it out.
    const timedOut = await run(['move', 'web', '--to', 'node2', '--wait', '1']);
    expect(timedOut.code).toBe(1);
    const id = /move request (\S+) recorded/.exec(timedOut.text())![1]!;
    expect(timedOut.text()).toMatch(
      new RegExp(
        `request ${id} \\(move web to node2\\) is still pending after 1 s: .* it expires at \\S+ \\(5 minutes after it was recorded\\) and nothing is done; to withdraw it now: "failoverctl cancel ${id}"`,
      ),
    );
    expect((await run(['cancel', id])).code).toBe(0);
    const tooLong = await run(['move', 'web', '--to', 'node2', '--wait', '301']);
    expect(tooLong.code).toBe(2);
    expect(tooLong.text()).toMatch('--wait 301 is longer than a request lives');
  });

  it('cancel withdraws a pending request once; a processed or unknown one is refused', async () => {
    const sent = await run(['move', 'web', '--to', 'node2', '--wait', '0']);
    expect(sent.code).toBe(0);
    const id = /move request (\S+) recorded/.exec(sent.text())![1]!;
    expect((await run(['status'])).stdout.join('\n')).toMatch(
      `pending request ${id}: move web --to node2 by tester`,
    );
    const cancelled = await run(['cancel', id]);
    expect(cancelled.code, cancelled.text()).toBe(0);
    expect(cancelled.stdout.join('\n')).toBe(`web: move request ${id} cancelled`);
    expect(await store.listRequests(fx.cluster)).toEqual([]);
    const again = await run(['cancel', id]);
    expect(again.code).toBe(4);
    expect(again.text()).toMatch(
      `request ${id} (move web) was already processed: cancelled: cancelled by tester`,
    );
    const unknown = await run(['cancel', '000000000-deadbeef']);
    expect(unknown.code).toBe(3);
    expect(unknown.text()).toMatch(/REQUEST_NOT_FOUND/);
    // Reconcile never acts on it: it stays cancelled.
    await run(['reconcile', '--once']);
    expect((await store.getRequest(fx.cluster, id))?.status).toBe('cancelled');
  });

  it('--version prints the version; errors without a region or credentials say what to set', async () => {
    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.join('')).toMatch(/^\d+\.\d+\.\d+/);
    const noRegion = io();
    delete noRegion.env.AWS_REGION;
    const saved = { region: process.env.AWS_REGION, def: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      expect(await main(['--table', table, 'status'], noRegion)).toBe(1);
    } finally {
      if (saved.region) process.env.AWS_REGION = saved.region;
      if (saved.def) process.env.AWS_DEFAULT_REGION = saved.def;
    }
    expect(noRegion.text()).toMatch(/error \[NO_REGION\]: no AWS region .*set AWS_REGION .*--region/);
  });

  it('doctor passes on a good account and names the fix on a broken one', async () => {
    const good = await run(['doctor']);
    expect(good.code, good.text()).toBe(0);
    expect(good.stdout.join('\n')).toMatch(/✓ web\/web-vip VIP .* outside the CIDR blocks/);
    expect(good.stdout.join('\n')).toMatch(
      // doctor no longer sends DryRun calls to an emulator (main's 70a6a9d); this expectation followed.
      /! web\/web-vip permission ec2:ReplaceRoute: not probed: the emulator checks no permission/,
    );
    expect(good.stdout.join('\n')).toMatch(
      /! agent on node1: renewing without a watchdog: .*run softdog \(--watchdog-device\) or set fencing: stop-instance/,
    );

    await fx.ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: fx.nodes.node2.eni,
        SourceDestCheck: { Value: true },
      }),
    );
    const broken = structuredClone(fx.config);
    broken.nodes[0]!.az = 'us-east-1q';
    const vip = broken.groups[0]!.resources.find((r) => r.type === 'vip')!;
    if (vip.type === 'vip') vip.ip = '10.40.9.9';
    const brokenFile = `${file}.broken.yaml`;
    writeFileSync(brokenFile, stringify(broken));
    const bad = await run(['doctor', '-f', brokenFile]);
    expect(bad.code).toBe(1);
    const text = bad.stdout.join('\n');
    expect(text).toMatch('✗ az us-east-1q (node1): no such Availability Zone in us-east-1');
    expect(text).toMatch(
      new RegExp(
        `✗ web/web-vip ENI ${fx.nodes.node2.eni} \\(node2\\): source/destination check is enabled.*--no-source-dest-check`,
      ),
    );
    expect(text).toMatch(/✗ web\/web-vip VIP 10\.40\.9\.9: inside 10\.40\.0\.0\/16/);
    expect(text).toMatch(/\d+ checks: [1-9]\d* failed/);
    await fx.ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: fx.nodes.node2.eni,
        SourceDestCheck: { Value: false },
      }),
    );
  });

  it('doctor --role simulates the deployed role on the emulator and names a fix for each gap (an under-privileged role)', async () => {
    const iam = new IAMClient(clientConfig(aws()));
    const role = uniqueName('weak-reconcile');
    await iam.send(
      new CreateRoleCommand({
        RoleName: role,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    );
    // Reads and the old free shell, but no entry-point changes and not the guard document.
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: role,
        PolicyName: 'weak',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: ['ec2:Describe*', 'dynamodb:GetItem', 'dynamodb:Query'],
              Resource: '*',
            },
            { Effect: 'Allow', Action: ['ssm:SendCommand'], Resource: '*' },
          ],
        }),
      }),
    );
    const weak = await run(['doctor', '--role', role]);
    const failed = weak.stdout.filter((l) => l.startsWith('✗'));
    console.log(
      `doctor --role on an under-privileged emulator role (${failed.length} failed):\n${failed.join('\n')}`,
    );
    expect(weak.code).toBe(1);
    const text = failed.join('\n');
    expect(text).toMatch(/AWS-RunShellScript/);
    expect(text).toMatch(/AWS-RunPowerShellScript/);
    expect(text).toMatch(/ec2:ReplaceRoute|ec2:AssociateAddress/);
    expect(text).toMatch(/failover:managed/);
  });

  it('iam-policy prints the controller and agent policies, and checks its flags', async () => {
    const controller = await run(['iam-policy', '--role', 'controller', '--account', '111122223333']);
    expect(controller.code).toBe(0);
    const doc = JSON.parse(controller.stdout.join('\n'));
    expect(doc.Statement.map((s: { Sid: string }) => s.Sid)).toEqual(
      expect.arrayContaining(['StateTable', 'VipRoutesInVpc', 'ElasticIps', 'RunCommand']),
    );
    const agent = await run(['iam-policy', '--role', 'agent', '-f', file]);
    expect(
      JSON.parse(agent.stdout.join('\n')).Statement[0].Condition['ForAllValues:StringEquals'][
        'dynamodb:LeadingKeys'
      ],
    ).toEqual([`NODE#${fx.cluster}#\${ec2:SourceInstanceARN}`]);
    expect(agent.text()).toMatch(/note: \d+ of the 6144 characters of a managed policy/);
    expect((await run(['iam-policy', '--role', 'admin'])).code).toBe(2);
    expect((await run(['iam-policy', '--role', 'agent', '--account', '42'])).text()).toMatch(
      '--account must be a 12-digit AWS account id (got "42")',
    );
  });

  it('says which clusters exist when none is named and several share the table', async () => {
    const other = structuredClone(fx.config);
    other.cluster = `${fx.cluster}-b`;
    const otherFile = `${file}.other.yaml`;
    writeFileSync(otherFile, stringify(other));
    await run(['apply', '-f', otherFile]);
    const ambiguous = await run(['status']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.text()).toMatch(
      `holds several clusters (${fx.cluster}, ${fx.cluster}-b); choose one with --cluster NAME`,
    );
    const chosen = await run(['status', '--cluster', fx.cluster]);
    expect(chosen.stdout[0]).toMatch(`cluster ${fx.cluster} `);
  });
});
