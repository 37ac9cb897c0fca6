/**
 * The agent's side of the safety findings of issue 15, on the real agent process and the emulator:
 *
 * - finding 2: the watchdog's timeout is read from the kernel (sysfs), never assumed; a device
 *   whose timeout does not suit the lease is left unarmed and reported so;
 * - finding 5: a stored definition is checked before it is adopted; a refused version is reported,
 *   the last good one stays in force, and the stop scripts still run at shutdown.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { LeaseRecord } from '../../node-agent/local-state';
import { keys } from '../../shared/table/keys';
import {
  type AgentProcess,
  createCluster,
  type Fixture,
  heartbeat,
  makeApp,
  motoEndpoint,
  REGION,
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

const nodes = [
  { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
  { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
];

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

function leaseFile(stateDir: string): LeaseRecord {
  return JSON.parse(readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as LeaseRecord;
}

describe('watchdog timeout (finding 2)', () => {
  it('reads the kernel’s timeout and stays unarmed when it does not suit the lease (softdog’s default 60 s)', async () => {
    // Lease 3 s, margin 1 s: a watchdog of at most 2 s suits it.
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 3000 },
      nodes,
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
      env: { FAILOVER_AGENT_SYSFS_WATCHDOG: fakeSysfs(60) },
    });
    agents.push(agent);
    const hb = await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    // Not relied on: the controller waits for the stop scripts' time as well.
    expect(hb.fence?.watchdogMs).toBeUndefined();
    expect(hb.fence?.maxStopMs).toBe(300_000);
    expect(agent.log()).toMatch(
      /resets after 60 s \(sysfs\), longer than lease 3000 ms - fenceMargin 1000 ms; load softdog with soft_margin=2/,
    );
    expect(leaseFile(stateDir).watchdog).toMatchObject({
      device: '/dev/null',
      timeoutMs: 60_000,
      source: 'sysfs',
      armed: false,
    });
  }, 30_000);

  it('arms a device whose kernel timeout suits the lease and reports the kernel’s value, not a declared one', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 3000 },
      nodes,
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
      args: ['--watchdog-device', '/dev/null', '--watchdog-timeout-sec', '1'],
      env: { FAILOVER_AGENT_SYSFS_WATCHDOG: fakeSysfs(2) },
    });
    agents.push(agent);
    const hb = await waitFor(
      'a heartbeat with the watchdog',
      async () => {
        const h = await heartbeat(f, 'node1');
        return h?.fence?.watchdogMs !== undefined ? h : undefined;
      },
      15_000,
    );
    expect(hb.fence?.watchdogMs).toBe(2000);
    expect(agent.log()).toMatch(/--watchdog-timeout-sec 1 differs from the kernel's 2 s/);
    expect(leaseFile(stateDir).watchdog).toMatchObject({ timeoutMs: 2000, source: 'sysfs', armed: true });
  }, 30_000);

  it('without a sysfs entry and without --watchdog-timeout-sec, refuses to guess', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 3000 },
      nodes,
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: 'true', stop: 'true' }],
        },
      ],
    });
    const device = path.join(tempDir('wd'), 'watchdog');
    writeFileSync(device, '');
    const agent = await startAgent({
      f,
      node: 'node1',
      stateDir: tempDir('state'),
      args: ['--watchdog-device', device],
    });
    agents.push(agent);
    const hb = await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    expect(hb.fence?.watchdogMs).toBeUndefined();
    expect(agent.log()).toMatch(/cannot tell the timeout of watchdog .*pass --watchdog-timeout-sec/);
    // Never opened, so never fed.
    expect(readFileSync(device, 'utf8')).toBe('');
  }, 30_000);
});

/** Writes a definition version straight into the table, as something other than failoverctl might. */
async function putRawConfig(f: Fixture, version: number, config: unknown): Promise<void> {
  await f.store.doc.send(
    new PutCommand({
      TableName: f.table,
      Item: { ...keys.config(f.cluster), version, hash: `raw-${version}`, appliedAt: Date.now(), config },
    }),
  );
}

describe('stored definitions (finding 5)', () => {
  it('refuses a malformed version, reports it, keeps the last good one, and still runs its stop scripts', async () => {
    const app = makeApp(tempDir('app'));
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes,
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: app.start, stop: app.stop, timeoutSec: 10 }],
        },
      ],
    });
    await setGroup(f, 'db', 'node1', 1);
    const stateDir = tempDir('state');
    const agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    const env = { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION };
    const started = await runGuard(
      ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
      [app.start],
      env,
    );
    expect(started.code).toBe(0);
    expect(app.alive()).toBe(true);

    // Version 2: `groups` written as a map; version 3: a lease that would overflow the timers.
    const good = f.config as unknown as Record<string, unknown>;
    await putRawConfig(f, 2, { ...good, groups: { db: f.config.groups[0] } });
    const hb2 = await waitFor(
      'version 2 refused',
      async () => {
        const h = await heartbeat(f, 'node1');
        return h?.rejectedConfig?.version === 2 ? h : undefined;
      },
      15_000,
    );
    expect(hb2.rejectedConfig?.problem).toMatch(/groups: must be a list/);
    expect(agent.log()).toMatch(
      /refusing cluster definition version 2: groups: must be a list.*keeping version 1/,
    );
    await putRawConfig(f, 3, { ...good, timing: { ...f.config.timing, leaseMs: 1e12 } });
    const hb3 = await waitFor(
      'version 3 refused',
      async () => {
        const h = await heartbeat(f, 'node1');
        return h?.rejectedConfig?.version === 3 ? h : undefined;
      },
      15_000,
    );
    expect(hb3.rejectedConfig?.problem).toMatch(
      /timing\.leaseMs: must be an integer from 300 to 600000 ms, not 1000000000000/,
    );
    expect(leaseFile(stateDir).rejectedConfig?.version).toBe(3);
    // The lease in force is still version 1's: renewals go on at 250 ms, no self-fence.
    expect(hb3.leaseMs).toBe(1500);
    expect(agent.log()).not.toMatch(/self-fence/);

    // A planned shutdown still stops the application with version 1's stop script.
    agent.signal('SIGTERM');
    const { code } = await agent.exited;
    expect(code).toBe(0);
    expect(app.alive()).toBe(false);
    expect(app.stops().map((s) => s.reason)).toContain('shutdown');
    expect(agent.log()).not.toMatch(/is not a function/);
  }, 60_000);
});
