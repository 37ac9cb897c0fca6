/**
 * `failover-agent status` against a running agent: what it holds (its lease, the group it runs and
 * the address that group holds), the age of its last acknowledged renewal, the watchdog and the
 * monitors, read from the state directory alone (no AWS endpoint, no credentials in the status
 * command's environment); and what it says once the agent is gone.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { StatusView } from '../../node-agent/status';
import { writeFakeIp } from '../../sandbox/fake-ip';
import {
  type AgentProcess,
  BIN,
  createCluster,
  heartbeat,
  makeApp,
  motoEndpoint,
  REGION,
  REPO,
  removeTempDirs,
  runGuard,
  setGroup,
  startAgent,
  tempDir,
  waitFor,
} from './support';

const agents: AgentProcess[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
});
afterAll(() => removeTempDirs());

/** `failover-agent status` with nothing of AWS in its environment. */
function status(stateDir: string, ...extra: string[]) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const r = spawnSync(process.execPath, [BIN, 'status', '--state-dir', stateDir, ...extra], {
    cwd: REPO,
    env,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A sysfs tree with one watchdog whose device number is /dev/null's (a harmless device to open). */
function fakeSysfs(timeoutSec: number): string {
  const root = tempDir('sysfs');
  const rdev = statSync('/dev/null').rdev;
  const dir = path.join(root, 'watchdog7');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'dev'), `${(rdev >>> 8) & 0xfff}:${rdev & 0xff}\n`);
  writeFileSync(path.join(dir, 'timeout'), `${timeoutSec}\n`);
  return root;
}

describe('failover-agent status', () => {
  it('shows the lease, the group held here with its address, the last acknowledged renewal, the watchdog and the monitors', async () => {
    const app = makeApp(tempDir('app'));
    const ipDir = tempDir('ip');
    // A 4 s lease: a loaded machine must not fence the agent while the test reads its status.
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 4000 },
      nodes: [
        { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
        { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
      ],
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: app.start, stop: app.stop }],
          monitors: [{ type: 'pid', name: 'apppid', resource: 'app', pidFile: app.pidFile, intervalMs: 300 }],
        },
      ],
    });
    const stateDir = tempDir('state');
    // The sandbox's stand-in for `ip`: the guard's --vip is exercised without root.
    const fakeIp = writeFakeIp(ipDir);
    const env = { FAILOVER_AGENT_IP_COMMAND: fakeIp };
    const agent = await startAgent({ f, node: 'node1', stateDir, env });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await setGroup(f, 'db', 'node1', 4);
    const started = await runGuard(
      ['--group', 'db', '--epoch', '4', '--state-dir', stateDir, '--vip', '172.16.0.10', '--dev', 'eth0'],
      [app.start],
      { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION, ...env },
    );
    expect(started.code, started.stderr).toBe(0);
    await waitFor('the pid monitor ok in a renewal', async () => {
      const s = status(stateDir, '--json');
      const view = JSON.parse(s.out) as StatusView;
      return view.status?.monitors.apppid?.status === 'ok' && view.status.groups.db?.state === 'running';
    });

    const text = status(stateDir);
    console.log(text.out);
    expect(text.code).toBe(0);
    expect(text.out).toContain(`${f.cluster}/node1: running (pid ${agent.pid})`);
    expect(text.out).toMatch(/lease: held; self-fence in \d+\.\d s unless renewed \(lease 4000 ms/);
    expect(text.out).toMatch(/last acknowledged renewal: #\d+ sent \d+\.\d s ago/);
    expect(text.out).toContain('group db: running at epoch 4, holds 172.16.0.10');
    expect(text.out).toMatch(/monitor apppid: ok/);
    expect(text.out).toMatch(/watchdog: none; silence proof = lease \+ stop scripts' time/);

    const view = JSON.parse(status(stateDir, '--json').out) as StatusView;
    expect(view.running).toBe(true);
    expect(view.leaseProblem).toBeUndefined();
    // The last acknowledged renewal is younger than the lease (the agent holds it).
    expect(view.leaseAgeMs).toBeGreaterThanOrEqual(0);
    expect(view.leaseAgeMs).toBeLessThan(4000);
    expect(view.status?.platform).toBe('linux');
    expect(view.status?.watchdog).toEqual({ state: 'none' });

    // The agent dies: status says so, without AWS, and exits 1.
    await agent.kill();
    const gone = status(stateDir);
    expect(gone.code).toBe(1);
    expect(gone.out).toContain(`NOT RUNNING (pid ${agent.pid} is gone)`);
    expect(gone.out).toMatch(/lease: NOT HELD: the local agent \(pid \d+\) is not running/);
    // The application it left is still recorded: the stop scripts run when the agent comes back.
    expect(gone.out).toContain('group db: running at epoch 4');
  });

  it.each([
    [
      'armed: its kernel timeout suits the lease',
      2,
      /watchdog: armed \/dev\/null timeout 2\.0 s \(sysfs\), fed [1-9]\d* times$/m,
    ],
    [
      'unarmed: its kernel timeout (softdog default) is longer than the lease allows, and the fix',
      60,
      /watchdog: unarmed \/dev\/null timeout 60\.0 s \(sysfs\), fed 0 times; watchdog \/dev\/null resets after 60 s \(sysfs\), longer than lease 3000 ms - fenceMargin 1000 ms; load softdog with soft_margin=2/,
    ],
  ] as const)(
    'shows the watchdog %s',
    async (_label, timeoutSec, line) => {
      const f = await createCluster({
        timing: { heartbeatIntervalMs: 250, leaseMs: 3000 },
        nodes: [
          { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
          { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
        ],
        groups: [
          {
            name: 'db',
            nodes: ['node1', 'node2'],
            resources: [{ type: 'exec', name: 'app', start: 'true', stop: 'true' }],
          },
        ],
      });
      const stateDir = tempDir('state');
      const agent = await startAgent({
        f,
        node: 'node1',
        stateDir,
        args: ['--watchdog-device', '/dev/null'],
        env: { FAILOVER_AGENT_SYSFS_WATCHDOG: fakeSysfs(timeoutSec) },
      });
      agents.push(agent);
      // The device is armed once the definition is read; a renewal after that reports it fed.
      const view = await waitFor(
        'a status with the watchdog',
        () => {
          const v = JSON.parse(status(stateDir, '--json').out) as StatusView;
          const wd = v.status?.watchdog;
          return wd && wd.state !== 'none' && wd.timeoutMs !== undefined && (timeoutSec > 2 || wd.feeds > 0)
            ? v
            : undefined;
        },
        15_000,
        200,
      );
      expect(view.status?.watchdog).toMatchObject({
        device: '/dev/null',
        timeoutMs: timeoutSec * 1000,
        source: 'sysfs',
        armed: timeoutSec === 2,
      });
      const text = status(stateDir);
      console.log(text.out);
      expect(text.code).toBe(0);
      expect(text.out).toMatch(line);
    },
    30_000,
  );

  it('says when no agent ever ran with a state directory, and names a bad flag', () => {
    const none = status(tempDir('empty'));
    expect(none.code).toBe(1);
    expect(none.out).toContain('no agent has run with state directory');
    const bad = status(tempDir('empty'), '--jsn');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Unknown option '--jsn'");
    expect(bad.err).toContain('usage: failover-agent status');
  });
});
