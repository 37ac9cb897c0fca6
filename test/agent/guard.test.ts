/**
 * The guard (`failover-agent guard`) and the agent's own stops, as real processes against moto:
 * stale epochs and non-owners are refused without running the command, no live lease means no
 * start, stops are serialized with starts, a stale owner demotes itself, a restarted agent keeps
 * only what it can verify, and a start left behind by a dead guard is stopped.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LocalState } from '../../node-agent/local-state';
import {
  type AgentProcess,
  createCluster,
  type Fixture,
  heartbeat,
  makeApp,
  motoEndpoint,
  processAlive,
  REGION,
  removeTempDirs,
  runGuard,
  setGroup,
  spawnGuard,
  startAgent,
  tempDir,
  waitFor,
} from './support';

const nodes = [
  { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
  { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
];
const guardEnv = { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION };

const agents: AgentProcess[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
});
afterAll(() => removeTempDirs());

async function setup(
  extraStart = '',
  timing = { heartbeatIntervalMs: 250, leaseMs: 1500 },
  more: (app: ReturnType<typeof makeApp>) => { name: string; start: string; stop: string }[] = () => [],
) {
  const app = makeApp(tempDir('app'));
  let start = app.start;
  if (extraStart) {
    start = path.join(app.dir, 'start-slow.sh');
    writeFileSync(start, `#!/bin/sh\n${extraStart}\nexec ${app.start}\n`, { mode: 0o755 });
  }
  const f = await createCluster({
    timing,
    nodes,
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [
          { type: 'exec', name: 'app', start, stop: app.stop, timeoutSec: 20 },
          ...more(app).map((r) => ({ type: 'exec' as const, timeoutSec: 20, ...r })),
        ],
      },
    ],
  });
  const stateDir = tempDir('state');
  return { app, f, stateDir, start };
}

const guard = (
  stateDir: string,
  epoch: number,
  action: 'start' | 'stop',
  command: string[],
  extra: string[] = [],
) =>
  runGuard(
    ['--group', 'db', '--epoch', String(epoch), '--action', action, '--state-dir', stateDir, ...extra],
    command,
    guardEnv,
  );

async function dbReport(f: Fixture) {
  return (await heartbeat(f, 'node1'))?.groups.db;
}

describe('guard', () => {
  it('refuses a stale epoch, a node that is not the owner, and a node without a live lease; the command never runs', async () => {
    const { f, stateDir } = await setup();
    const marker = path.join(tempDir('marker'), 'ran');
    const command = [`touch ${marker}`];

    // No agent has ever run here.
    await setGroup(f, 'db', 'node1', 2);
    const noAgent = await runGuard(
      [
        '--group',
        'db',
        '--epoch',
        '2',
        '--cluster',
        f.cluster,
        '--node',
        'node1',
        '--table',
        f.table,
        '--state-dir',
        stateDir,
      ],
      command,
      guardEnv,
    );
    expect(noAgent.code).toBe(4);
    expect(noAgent.stderr).toContain('no failover-agent has run with state directory');

    const agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);

    const stale = await guard(stateDir, 1, 'start', command);
    console.log(`guard with a stale epoch: exit ${stale.code} in ${stale.ms} ms: ${stale.stderr.trim()}`);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toContain('refused to start db at epoch 1: the record names node1 at epoch 2');

    await setGroup(f, 'db', 'node2', 3);
    const notOwner = await guard(stateDir, 3, 'start', command);
    expect(notOwner.code).toBe(3);
    expect(notOwner.stderr).toContain('the record names node2 at epoch 3, not node1 at epoch 3');
    expect(existsSync(marker)).toBe(false);
    // The refused starts leave the local state as it was ("starting" is reported only while a
    // guard checks the record, so a heartbeat written meanwhile may show it briefly).
    await waitFor('reported stopped again', async () => (await dbReport(f))?.state === 'stopped');

    // The agent dies: its lease is gone with it.
    await setGroup(f, 'db', 'node1', 4);
    await agent.kill();
    const dead = await guard(stateDir, 4, 'start', command);
    expect(dead.code).toBe(4);
    expect(dead.stderr).toMatch(/local agent \(pid \d+\) is not running/);
    expect(existsSync(marker)).toBe(false);
  });

  it('--resource runs the stored start and stop of the exec resource (what the SSM document sends), and nothing else', async () => {
    const { app, f, stateDir } = await setup();
    agents.push(await startAgent({ f, node: 'node1', stateDir }));
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await setGroup(f, 'db', 'node1', 2);
    // No cluster, node, table or command from the caller: the local agent's, and the definition's.
    const byResource = (action: 'start' | 'stop', resource = 'app') =>
      runGuard(
        [
          '--group',
          'db',
          '--resource',
          resource,
          '--epoch',
          '2',
          '--action',
          action,
          '--state-dir',
          stateDir,
        ],
        [],
        guardEnv,
      );
    const started = await byResource('start');
    expect(started.code, started.stderr).toBe(0);
    expect(app.alive()).toBe(true);
    const unknown = await byResource('stop', 'other');
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/has no exec resource other in group db; nothing was run/);
    expect(app.alive()).toBe(true);
    const stopped = await byResource('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(app.alive()).toBe(false);
    // A command and --resource together are refused: the command can only come from the definition.
    const both = await runGuard(
      ['--group', 'db', '--resource', 'app', '--epoch', '2', '--state-dir', stateDir],
      ['id'],
      guardEnv,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--resource takes its command from the stored definition: give no COMMAND');
  });

  it('starts at the current epoch, reports it, refuses a stop from an older epoch, stops at the current one', async () => {
    const { app, f, stateDir } = await setup();
    agents.push(await startAgent({ f, node: 'node1', stateDir }));
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);

    // The controller restarted the group on this node at epoch 2 (its copy of epoch 1 is gone).
    await setGroup(f, 'db', 'node1', 2);
    const started = await guard(stateDir, 2, 'start', [app.start]);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain('app started'); // COMMAND's output reaches the caller (SSM)
    expect(app.alive()).toBe(true);
    expect(
      await waitFor('running at 2', async () =>
        (await dbReport(f))?.state === 'running' ? dbReport(f) : undefined,
      ),
    ).toEqual({
      epoch: 2,
      state: 'running',
    });

    // A stop sent for epoch 1 arrives late: it must not stop the copy of epoch 2.
    const late = await guard(stateDir, 1, 'stop', [app.stop]);
    expect(late.code).toBe(3);
    expect(late.stderr).toContain('a stop from an older epoch must not stop a copy started since');
    expect(app.alive()).toBe(true);
    expect(app.stops()).toHaveLength(0);

    const stopped = await guard(stateDir, 2, 'stop', [app.stop]);
    expect(stopped.code, stopped.stderr).toBe(0);
    await waitFor('the app gone', () => !app.alive(), 2000);
    await waitFor('stopped at 2', async () => {
      const r = await dbReport(f);
      return r?.state === 'stopped' && r.epoch === 2;
    });
  });

  it('--resource runs the stored text as written (quotes, expansions) after the same checks, its exit code deciding', async () => {
    // What a Windows node's PowerShell guard document runs too: the text comes from the stored
    // definition and reaches the platform's shell unchanged (/bin/sh here, powershell.exe there).
    // A 4 s lease: this is not about timing, and a loaded machine must not fence the agent meanwhile.
    const { app, f, stateDir } = await setup('', { heartbeatIntervalMs: 250, leaseMs: 4000 }, (a) => [
      { name: 'text', start: `${a.start} && echo "it's $((6 * 7))"`, stop: a.stop },
      { name: 'fails', start: 'exit 7', stop: 'true' },
    ]);
    agents.push(await startAgent({ f, node: 'node1', stateDir }));
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await setGroup(f, 'db', 'node1', 2);
    const byResource = (epoch: number, action: 'start' | 'stop', resource: string) =>
      guard(stateDir, epoch, action, [], ['--resource', resource]);

    const stale = await byResource(1, 'start', 'text');
    expect(stale.code).toBe(3);
    expect(app.alive()).toBe(false);

    const started = await byResource(2, 'start', 'text');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toContain("it's 42");
    expect(app.alive()).toBe(true);
    await waitFor('running at 2', async () => (await dbReport(f))?.state === 'running');

    // The text's own exit code decides (10: COMMAND failed).
    const failed = await byResource(2, 'start', 'fails');
    expect(failed.code).toBe(10);

    const stopped = await byResource(2, 'stop', 'text');
    expect(stopped.code, stopped.stderr).toBe(0);
    await waitFor('the app gone', () => !app.alive(), 2000);
  });

  it('reports "starting" while a start is under way, and a stop waits for it', async () => {
    const { app, f, stateDir, start } = await setup('sleep 1.5');
    await setGroup(f, 'db', 'node1', 1);
    agents.push(await startAgent({ f, node: 'node1', stateDir }));
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);

    const starting = spawnGuard(
      ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
      [start],
      guardEnv,
    );
    await waitFor('starting reported', async () => (await dbReport(f))?.state === 'starting');
    const stopping = runGuard(
      ['--group', 'db', '--epoch', '1', '--action', 'stop', '--state-dir', stateDir],
      [app.stop],
      guardEnv,
    );
    const s1 = await starting.done;
    expect(s1.code, s1.stderr).toBe(0);
    const startedPid = app.started().at(-1);
    const s2 = await stopping;
    expect(s2.code, s2.stderr).toBe(0);
    // The stop ran after the start had finished: the app it started is gone.
    expect(startedPid).toBeDefined();
    await waitFor('the started app gone', () => !processAlive(startedPid!), 2000);
    expect(app.stops()).toHaveLength(1);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'puts the VIP on the loopback device before a start and takes it off after a stop',
    async () => {
      const { app, f, stateDir } = await setup();
      await setGroup(f, 'db', 'node1', 1);
      agents.push(await startAgent({ f, node: 'node1', stateDir }));
      await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
      const vip = `127.0.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}`;
      const onLo = () => networkInterfaces().lo?.some((a) => a.address === vip) ?? false;
      try {
        const s = await guard(stateDir, 1, 'start', [app.start], ['--vip', vip, '--dev', 'lo']);
        expect(s.code, s.stderr).toBe(0);
        expect(onLo()).toBe(true);
        const again = await guard(stateDir, 1, 'start', [app.start], ['--vip', vip, '--dev', 'lo']);
        expect(again.code, again.stderr).toBe(0); // idempotent
        const t = await guard(stateDir, 1, 'stop', [app.stop], ['--vip', vip]);
        expect(t.code, t.stderr).toBe(0);
        expect(onLo()).toBe(false);
      } finally {
        spawnSync('ip', ['addr', 'del', `${vip}/32`, 'dev', 'lo']);
      }
    },
  );
});

describe('agent-side stops', () => {
  it('a stale owner stops the group at once when the record names another owner', async () => {
    const { app, f, stateDir } = await setup();
    await setGroup(f, 'db', 'node1', 1);
    const agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    expect((await guard(stateDir, 1, 'start', [app.start])).code).toBe(0);

    await setGroup(f, 'db', 'node2', 2);
    const changed = Date.now();
    const stop = await waitFor(
      'the stop script (demote)',
      () => app.stops().find((s) => s.reason === 'demote'),
      5000,
      10,
    );
    console.log(
      `stale owner stopped its copy ${stop.at - changed} ms after the record changed (heartbeat 250 ms)`,
    );
    expect(stop.at - changed).toBeLessThan(1500);
    await waitFor('the app gone', () => !app.alive());
    // The report that lets the controller promote node2: stopped, at the new epoch.
    await waitFor('stopped at epoch 2', async () => {
      const r = await dbReport(f);
      return r?.state === 'stopped' && r.epoch === 2;
    });
  });

  it('after a restart the agent keeps a group it still owns at that epoch, and stops one it does not', async () => {
    // A restarted agent inherits its predecessor's fence deadline (it must not extend that lease):
    // the lease must outlast an agent start through tsx on a loaded machine (over a second).
    const { app, f, stateDir } = await setup('', { heartbeatIntervalMs: 1000, leaseMs: 6000 });
    await setGroup(f, 'db', 'node1', 1);
    let agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    expect((await guard(stateDir, 1, 'start', [app.start])).code).toBe(0);

    // Crash and restart at once: still owner at epoch 1, within the old lease: kept.
    await agent.kill();
    agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await agent.waitForLine(/keeps db: still owner at epoch 1/);
    await waitFor('renewed by the new incarnation', async () => {
      const h = await heartbeat(f, 'node1');
      return h?.state === 'running' && h.groups.db?.state === 'running' && h.incarnation !== undefined;
    });
    expect(app.alive()).toBe(true);
    expect(app.stops()).toHaveLength(0);

    // Crash; meanwhile the controller moved the group; restart: stopped at start.
    await agent.kill();
    await setGroup(f, 'db', 'node2', 2);
    agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('the stop at start', () => app.stops().length === 1);
    await waitFor('the app gone', () => !app.alive());
    // Stopped at start by the record check, or, when the first renewal is slow to be acknowledged
    // (a loaded machine), by the self-fence that comes first: stopped once either way.
    expect(agent.log()).toMatch(
      /db was running at epoch 1 before this start; record names node2 at epoch 2: stopping it|stopping db at epoch 1 \(fence\)/,
    );
    expect(app.stops()).toHaveLength(1);
  });

  it('takes a "stopping" record whose writer pid another process has since for interrupted, and stops the group', async () => {
    // The process that wrote "stopping" died (a crash, a reboot); its pid now belongs to someone
    // else. By pid alone the stop would look under way for good: the group never stopped, the
    // node reporting "stopping" and the group unable to move.
    const { app, f, stateDir } = await setup('', { heartbeatIntervalMs: 1000, leaseMs: 6000 });
    await setGroup(f, 'db', 'node1', 1);
    const agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
    bystander.unref();
    try {
      const state = new LocalState(stateDir);
      state.writeGroup({
        group: 'db',
        state: 'stopping',
        epoch: 1,
        pid: bystander.pid!,
        pidStart: 'the-start-time-of-a-process-long-gone',
        at: Date.now(),
      });
      await waitFor('the stop of the interrupted stop', () => app.stops().length === 1, 15_000);
      expect(app.stops().map((s) => s.reason)).toEqual(['orphan']);
      await waitFor('stopped locally', () => state.readGroup('db')?.state === 'stopped', 10_000);
      expect(processAlive(bystander.pid!), 'the bystander is left alone').toBe(true);
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  it('a restarted agent admits no start until a renewal of its own is acknowledged (its predecessor may have left)', async () => {
    // The predecessor's deadline is restored for fencing only: a predecessor that reported
    // "everything stopped, leaving" let the controller hand the group on at once, and only this
    // process's first renewal (a new token) tells the controller the node is back.
    const { app, f, stateDir } = await setup('', { heartbeatIntervalMs: 1000, leaseMs: 6000 });
    await setGroup(f, 'db', 'node1', 1);
    let agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    const leaseFile = () => JSON.parse(readFileSync(path.join(stateDir, 'agent.json'), 'utf8'));
    // The predecessor holds a lease: its renewal acknowledged and written to agent.json (the item
    // landing in the table comes a moment before the agent hears of it).
    await waitFor('a lease acknowledged', () => leaseFile().leaseUntilMono > 0, 15_000);
    await agent.kill();
    // Restarted while DynamoDB cannot be reached: its renewals are never acknowledged.
    agent = await startAgent({ f, node: 'node1', stateDir, endpoint: 'http://127.0.0.1:9' });
    agents.push(agent);
    const lease = leaseFile();
    expect(lease.leaseUntilMono).toBe(0);
    expect(lease.fenceUntilMono).toBeGreaterThan(0);
    const refused = await guard(stateDir, 1, 'start', [app.start]);
    expect(refused.code).toBe(4);
    expect(refused.stderr + refused.stdout).toMatch(/no acknowledged renewal yet/);
    expect(app.alive()).toBe(false);
    // Back in reach: once its own renewal is acknowledged, the same start is admitted.
    await agent.kill();
    agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('admitted after its own renewal', () => leaseFile().leaseUntilMono > 0, 15_000);
    expect((await guard(stateDir, 1, 'start', [app.start])).code).toBe(0);
    await waitFor('the app runs', () => app.alive());
  });

  it('stops a start left behind by a guard that died, and kills what its command was still doing', async () => {
    const { app, f, stateDir, start } = await setup('sleep 2');
    await setGroup(f, 'db', 'node1', 1);
    const agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);

    const g = spawnGuard(['--group', 'db', '--epoch', '1', '--state-dir', stateDir], [start], guardEnv);
    await waitFor('starting', async () => (await dbReport(f))?.state === 'starting');
    const local = JSON.parse(readFileSync(path.join(stateDir, 'groups', 'db.json'), 'utf8'));
    await waitFor(
      'the command spawned',
      () => JSON.parse(readFileSync(path.join(stateDir, 'groups', 'db.json'), 'utf8')).run?.cmdPid,
    );
    const cmdPid: number = JSON.parse(readFileSync(path.join(stateDir, 'groups', 'db.json'), 'utf8')).run
      .cmdPid;
    expect(local.state).toBe('starting');
    g.child.kill('SIGKILL'); // SSM gave up on it, say
    await g.done;
    await agent.waitForLine(/the start at epoch 1 was interrupted/);
    await waitFor('stopped', async () => (await dbReport(f))?.state === 'stopped');
    await waitFor('the start command killed', () => !processAlive(cmdPid), 2000);
    expect(agent.log()).toContain('left by a dead guard');
    // The interrupted start never got to start the app.
    await new Promise((r) => setTimeout(r, 2500));
    expect(app.alive()).toBe(false);
  });
});
