/**
 * Self-fencing, measured: the agent reaches DynamoDB through a TCP proxy; the test cuts the proxy
 * (a closed port, or a blackhole that accepts and never answers) while the application runs, and
 * measures when the stop script ran against the end of the lease as the controller sees it: the
 * last renewal in the table, sentAt + leaseMs.
 */

import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { breakStale, type LockHandle, readLockOwner, tryLock } from '../../node-agent/file-lock';
import { GroupStopper } from '../../node-agent/group-stopper';
import { bootId, LocalState } from '../../node-agent/local-state';
import { processStartTime } from '../../node-agent/process-util';
import { fakeIpAddresses, writeFakeIp } from '../../sandbox/fake-ip';
import type { ClusterInput } from '../../shared/config/schema';
import {
  type AgentProcess,
  type App,
  createCluster,
  heartbeat,
  makeApp,
  motoEndpoint,
  processAlive,
  REGION,
  recordDeadGuardStart,
  removeTempDirs,
  runGuard,
  setGroup,
  spawnGuard,
  startAgent,
  TcpProxy,
  tempDir,
  waitFor,
} from './support';

const agents: AgentProcess[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(() => removeTempDirs());

/** Until the agent of `stateDir` has written an acknowledged lease into agent.json. */
function waitForLease(stateDir: string) {
  return waitFor('an acknowledged lease in agent.json', () => {
    try {
      return JSON.parse(readFileSync(join(stateDir, 'agent.json'), 'utf8')).leaseUntilMono > 0;
    } catch {
      return false;
    }
  });
}

/** The two nodes of every cluster here. */
const NODES = [
  { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
  { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
];

const LEASE_MS = 2000;
const HEARTBEAT_MS = 250;

describe('renewal retries', () => {
  it('retries an unacknowledged renewal every heartbeatRetryMs, not a whole heartbeat later, and does not fence on 3 lost ones', async () => {
    // Slow heartbeat, fast retries: 3 lost renewals (1000 + 3 x 150 ms) fit in lease - margin = 2000 ms.
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 1000, heartbeatRetryMs: 150, leaseMs: 3000, fenceMarginMs: 1000 },
      nodes: NODES,
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: 'true', stop: 'true' }],
        },
      ],
    });
    const proxy = await TcpProxy.start(motoEndpoint());
    proxies.push(proxy);
    const agent = await startAgent({ f, node: 'node1', stateDir: tempDir('state'), endpoint: proxy.url });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await new Promise((r) => setTimeout(r, 1500)); // past the start-up changes

    // Steady state: about one write per heartbeat, no retries while renewals are acknowledged.
    const before = (await heartbeat(f, 'node1'))!;
    await new Promise((r) => setTimeout(r, 3000));
    const steady = (await heartbeat(f, 'node1'))!;
    const steadyRate = (steady.seq - before.seq) / ((steady.sentAt - before.sentAt) / 1000);

    // Cut right after a renewal landed, so the next heartbeat and 3 retries are lost; heal after that.
    const last = await waitFor(
      'a fresh renewal',
      async () => {
        const h = await heartbeat(f, 'node1');
        return h && h.seq > steady.seq ? h : undefined;
      },
      5000,
      5,
    );
    await proxy.setMode('refuse');
    const cutAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000 + 3 * 150 + 50 - (Date.now() - last.sentAt)));
    await proxy.setMode('forward');
    const healedAt = Date.now();
    const next = await waitFor(
      'the first renewal after the heal',
      async () => {
        const h = await heartbeat(f, 'node1');
        return h && h.seq > last.seq ? h : undefined;
      },
      5000,
      5,
    );
    const gap = next.sentAt - healedAt;
    console.log(
      `renewal retries: steady ${steadyRate.toFixed(2)} writes/s at a 1000 ms heartbeat; cut ${cutAt - last.sentAt} ms after a renewal for ${healedAt - cutAt} ms; first renewal after the heal sent ${gap} ms later (retry interval 150 ms); seq ${last.seq} -> ${next.seq}`,
    );
    expect(steadyRate).toBeLessThan(1.5);
    // Sent by a retry within about one retry interval of the heal, not at the next heartbeat.
    expect(gap).toBeLessThan(400);
    // Lost attempts used sequence numbers: the retries really were sent while cut off.
    expect(next.seq - last.seq).toBeGreaterThanOrEqual(3);
    expect(next.state).toBe('running');
    expect(agent.log()).not.toMatch(/self-fence/);
  }, 30_000);
});

describe('watchdog feeding', () => {
  it('feeds the watchdog every quarter of its timeout, however slow the heartbeat', async () => {
    // The defaults' slow heartbeat (1750 ms) against a 1 s watchdog: feeding on renewals alone
    // would let it expire between two of them and reset a healthy node.
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 1750, leaseMs: 3750 },
      nodes: NODES,
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: 'true', stop: 'true' }],
        },
      ],
    });
    const device = join(tempDir('wd'), 'watchdog');
    const agent = await startAgent({
      f,
      node: 'node1',
      stateDir: tempDir('state'),
      args: ['--watchdog-device', device, '--watchdog-timeout-sec', '1'],
    });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    // Sample the device's size: each feed is one byte.
    let last = statSync(device).size;
    let lastAt = Date.now();
    let longest = 0;
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      const size = statSync(device).size;
      if (size !== last) {
        longest = Math.max(longest, Date.now() - lastAt);
        last = size;
        lastAt = Date.now();
      }
    }
    longest = Math.max(longest, Date.now() - lastAt);
    console.log(`watchdog feeding: longest gap ${longest} ms over 4 s (timeout 1000 ms, heartbeat 1750 ms)`);
    expect(longest).toBeLessThan(600);
  }, 30_000);
});

type MonitorInput = NonNullable<NonNullable<ClusterInput['groups']>[number]['monitors']>[number];

/**
 * Group db on both nodes, its application `app` (started and stopped through the guard), at the
 * fast timing of this file; fenceMarginMs defaults to 1000 ms, at most lease / 3 (666 ms here).
 */
function appCluster(app: App, monitors: MonitorInput[] = []) {
  return createCluster({
    timing: { heartbeatIntervalMs: HEARTBEAT_MS, leaseMs: LEASE_MS },
    nodes: NODES,
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'exec', name: 'app', start: app.start, stop: app.stop, timeoutSec: 10 }],
        monitors,
      },
    ],
  });
}

describe('self-fencing', () => {
  it.each([
    ['a closed port', 'refuse'],
    ['a blackhole (connections hang)', 'blackhole'],
  ] as const)(
    'cut off from DynamoDB by %s, the agent stops the application before its lease ends',
    async (_label, mode) => {
      const app = makeApp(tempDir('app'));
      const f = await appCluster(app, [
        { type: 'pid', name: 'pidw', resource: 'app', pidFile: app.pidFile, intervalMs: 250 },
      ]);
      const margin = f.config.timing.fenceMarginMs;
      await setGroup(f, 'db', 'node1', 1);
      const proxy = await TcpProxy.start(motoEndpoint());
      proxies.push(proxy);
      const stateDir = tempDir('state');
      const agent = await startAgent({ f, node: 'node1', stateDir, endpoint: proxy.url });
      agents.push(agent);
      await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);

      // The controller starts the application through the guard (SSM would run exactly this).
      const guardEnv = { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION };
      const started = await runGuard(
        ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
        [app.start],
        guardEnv,
      );
      expect(started.code, started.stderr).toBe(0);
      expect(app.alive()).toBe(true);
      const appPid = app.pid()!;
      await waitFor('db running, pid monitor ok', async () => {
        const h = await heartbeat(f, 'node1');
        return h?.groups.db?.state === 'running' && h.monitors.pidw?.status === 'ok';
      });

      const cutAt = Date.now();
      await proxy.setMode(mode);
      const stop = await waitFor(
        'the stop script run by the fence',
        () => app.stops().find((s) => s.reason === 'fence'),
        10_000,
        5,
      );
      const last = (await heartbeat(f, 'node1'))!;
      const leaseEnd = last.sentAt + last.leaseMs;
      const measured = leaseEnd - stop.at;
      console.log(
        `self-fence (${mode}): last renewal in the table sent ${last.sentAt - cutAt} ms after the cut; stop script ran ${stop.at - last.sentAt} ms after it; lease (${LEASE_MS} ms) ends ${measured} ms after the stop script ran (configured fenceMargin ${margin} ms)`,
      );
      // Before the lease ends, with most of the margin to spare.
      expect(measured).toBeGreaterThan(margin / 2);
      expect(stop.at).toBeLessThan(leaseEnd);
      await waitFor('the application process gone', () => !app.alive() && !processAlive(appPid));
      expect(agent.log()).toMatch(/self-fence: no renewal acknowledged/);
      await waitFor('the fence recorded stopped', () =>
        agent.lines.some((l) => /stopped db at epoch 1 \(fence\)/.test(l)),
      );

      if (mode === 'refuse') {
        // Fenced: the guard refuses a start even though the record still names this node owner.
        const refused = await runGuard(
          ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
          [app.start],
          guardEnv,
        );
        expect(refused.code).toBe(4);
        expect(refused.stderr).toMatch(/fenced itself|lease ran out/);
        expect(app.alive()).toBe(false);
      }

      // DynamoDB comes back: the agent renews, reports the fence, then serves again.
      await proxy.setMode('forward');
      await agent.waitForLine(/lease renewed after the self-fence/, 10_000);
      const back = await waitFor('running again with db stopped', async () => {
        const h = await heartbeat(f, 'node1');
        return h && h.seq > last.seq && h.state === 'running' ? h : undefined;
      });
      expect(back.groups.db).toEqual({ epoch: 1, state: 'stopped' });
      // The controller restarts it through the guard at the current epoch.
      const again = await runGuard(
        ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
        [app.start],
        guardEnv,
      );
      expect(again.code, again.stderr).toBe(0);
      expect(app.alive()).toBe(true);
      await runGuard(
        ['--group', 'db', '--epoch', '1', '--action', 'stop', '--state-dir', stateDir],
        [app.stop],
        guardEnv,
      );
    },
  );
});

/**
 * A loopback HTTP proxy to moto that, while `hold` is on, forwards each DynamoDB GetItem at once
 * but keeps its answer until released: to the caller, a stall between its read (done in the table)
 * and whatever it does next.
 */
async function holdingProxy(target: string) {
  const held: (() => void)[] = [];
  let hold = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(target);
      const up = http.request(
        { host: u.hostname, port: u.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            const send = () => {
              res.writeHead(answer.statusCode ?? 500, answer.headers);
              res.end(Buffer.concat(body));
            };
            if (hold && String(req.headers['x-amz-target'] ?? '').endsWith('.GetItem')) held.push(send);
            else send();
          });
        },
      );
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held.length,
    setHold: (on: boolean) => {
      hold = on;
    },
    release: () => {
      for (const send of held.splice(0)) send();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A guard start of db at epoch 1 whose record read is done in the table and its answer held. */
async function guardWithHeldRead(slow: Awaited<ReturnType<typeof holdingProxy>>, stateDir: string, app: App) {
  slow.setHold(true);
  const guard = spawnGuard(['--group', 'db', '--epoch', '1', '--state-dir', stateDir], [app.start], {
    AWS_ENDPOINT_URL: slow.url,
    AWS_REGION: REGION,
  });
  await waitFor('the guard read the record', () => slow.held() > 0, 10_000, 5);
  return guard;
}

describe('a guard stalled between its record read and its lease check', () => {
  it('is killed by the self-fence, before the controller may take the group over: a record read before the fence never admits a start', async () => {
    // The window a review named: the guard reads the record (this node owns db at epoch 1) and
    // stalls; the node is cut off and fences, the controller takes db over (epoch 2 on node2), the
    // node renews again; then the guard would check a live lease against a record no longer
    // current. The fence stops every group that is not "stopped" locally, and the guard recorded
    // "starting" (with its pid) before its read: the fence kills it.
    const app = makeApp(tempDir('app'));
    const f = await appCluster(app);
    await setGroup(f, 'db', 'node1', 1);
    const proxy = await TcpProxy.start(motoEndpoint());
    proxies.push(proxy);
    const stateDir = tempDir('state');
    const agent = await startAgent({ f, node: 'node1', stateDir, endpoint: proxy.url });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await waitForLease(stateDir);

    const slow = await holdingProxy(motoEndpoint());
    try {
      // The guard's read is done in the table; its answer is held: the guard waits on it.
      const guard = await guardWithHeldRead(slow, stateDir, app);

      // The node is cut off: it fences by lease - fenceMargin.
      await proxy.setMode('refuse');
      await agent.waitForLine(/self-fence: no renewal acknowledged/, 10_000);
      const killed = await Promise.race([
        guard.done,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000)),
      ]);
      // After the lease and the skew the controller may take db over; it does, on node2.
      await new Promise((r) => setTimeout(r, LEASE_MS + f.config.timing.maxClockSkewMs));
      await setGroup(f, 'db', 'node2', 2);
      // The node is back and renews: its lease is live again.
      await proxy.setMode('forward');
      await agent.waitForLine(/lease renewed after the self-fence/, 10_000);
      // Only now does the guard get its (stale) answer, if it still lives.
      slow.release();
      const result = killed ?? (await guard.done);
      console.log(
        `stalled guard: ${killed ? 'killed by the fence' : 'outlived the fence'}; exit code ${result.code}; ${result.stderr.trim().split('\n').at(-1) ?? ''}`,
      );
      expect(killed, 'the fence kills the guard while its read is held').toBeDefined();
      expect(result.code).not.toBe(0);
      expect(app.started()).toEqual([]);
      expect(app.alive()).toBe(false);
    } finally {
      slow.release();
      await slow.close();
    }
  }, 60_000);
});

/**
 * Takes a guard's lock from under it, as a breaker that judged it gone would: moves the file
 * aside, then locks it for the test.
 */
function takeLock(stateDir: string, group: string): LockHandle {
  const file = join(stateDir, 'locks', `${group}.lock`);
  const owner = readLockOwner(file);
  expect(owner?.what, 'the guard holds the lock').toMatch(/^guard start/);
  breakStale(file, owner);
  const mine = tryLock(file, 'test: a breaker');
  if (!('release' in mine)) throw new Error(`could not take ${file}: ${JSON.stringify(mine)}`);
  return mine;
}

/** A running agent of node1 (owner of db at epoch 1) with a live lease in its state directory. */
async function ownerWithLease(app: App) {
  const f = await appCluster(app);
  await setGroup(f, 'db', 'node1', 1);
  const stateDir = tempDir('state');
  const agent = await startAgent({ f, node: 'node1', stateDir });
  agents.push(agent);
  await waitForLease(stateDir);
  return { f, stateDir };
}

describe('a guard whose lock is taken from it while it lives', () => {
  // A start that has lost its lock can record nothing: the node would report "stopped" (or the
  // taker's record) while it starts, and the controller may start the group elsewhere. Locks are
  // only broken once their owner is gone (killed by the fence, or dead), and a lock file always
  // names its owner; these tests break one anyway, to show the start never outlives its lock.
  it('starts nothing when the lock goes while it waits on its record read, even with the record and the lease in order', async () => {
    const app = makeApp(tempDir('app'));
    const { stateDir } = await ownerWithLease(app);
    const slow = await holdingProxy(motoEndpoint());
    let lock: LockHandle | undefined;
    try {
      const guard = await guardWithHeldRead(slow, stateDir, app);
      lock = takeLock(stateDir, 'db');
      slow.release();
      const result = await guard.done;
      expect(app.started(), result.stderr).toEqual([]);
      expect(app.alive()).toBe(false);
      expect(result.code).toBe(5);
      expect(result.stderr).toMatch(/lock .*db\.lock was taken/);
    } finally {
      lock?.release();
      slow.release();
      await slow.close();
    }
  }, 60_000);

  it('kills its command at once when the lock goes while the command runs', async () => {
    const app = makeApp(tempDir('app'));
    const { stateDir } = await ownerWithLease(app);
    let lock: LockHandle | undefined;
    try {
      // The start command takes a second before it starts the application.
      const guard = spawnGuard(
        ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
        [`sleep 1; ${app.start}`],
        { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION },
      );
      await waitFor('the command runs', () => {
        try {
          return JSON.parse(readFileSync(join(stateDir, 'groups', 'db.json'), 'utf8')).run?.cmdPid > 0;
        } catch {
          return false;
        }
      });
      // What tells the command from a later process with its pid: its start time and the boot.
      const recorded = JSON.parse(readFileSync(join(stateDir, 'groups', 'db.json'), 'utf8')).run;
      expect(recorded.cmdStart).toBe(processStartTime(recorded.cmdPid));
      expect(recorded.boot).toBe(bootId());
      lock = takeLock(stateDir, 'db');
      const result = await guard.done;
      // The guard watches its lock while the command runs: the command dies before it starts the
      // application (and were it started, it would be killed with the command's tree).
      expect(app.started(), result.stderr).toEqual([]);
      expect(app.alive()).toBe(false);
      expect(result.ms).toBeLessThan(1000 + 1500);
      expect(result.code).toBe(5);
      expect(result.stderr).toMatch(/lock .*db\.lock was taken/);
    } finally {
      lock?.release();
    }
  }, 60_000);
});

describe('a guard fenced while it puts its address on', () => {
  it('does not leave the address on: the fence kills the `ip addr add` under way with the guard, and takes the addresses off after', async () => {
    // The guard records the address, then runs `ip addr add`, which stalls (rtnl_lock on a loaded
    // host). The node is cut off and fences: it kills the guard and stops the group. Before, the
    // stalled `ip` (a process of its own) lived on and put the address on after the stop had found
    // none to take off: the node reported db stopped with its address on, for good.
    const app = makeApp(tempDir('app'));
    const f = await appCluster(app);
    await setGroup(f, 'db', 'node1', 1);
    const ipDir = tempDir('ip');
    const fake = writeFakeIp(ipDir);
    const slowIp = join(ipDir, 'slow-ip');
    writeFileSync(
      slowIp,
      `#!/bin/sh\ncase "$*" in "addr add"*) : > ${ipDir}/add-started; sleep 3;; esac\nexec ${fake} "$@"\n`,
    );
    chmodSync(slowIp, 0o755);
    const proxy = await TcpProxy.start(motoEndpoint());
    proxies.push(proxy);
    const stateDir = tempDir('state');
    const ipEnv = { FAILOVER_AGENT_IP_COMMAND: slowIp, FAILOVER_AGENT_VIP_DEV: 'eth0' };
    const agent = await startAgent({ f, node: 'node1', stateDir, endpoint: proxy.url, env: ipEnv });
    agents.push(agent);
    await waitForLease(stateDir);
    const VIP = '10.7.7.7';
    const guard = spawnGuard(
      ['--group', 'db', '--epoch', '1', '--state-dir', stateDir, '--vip', VIP, '--dev', 'eth0'],
      [app.start],
      { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION, ...ipEnv },
    );
    await waitFor('the add is under way', () => existsSync(join(ipDir, 'add-started')), 15_000, 5);
    await proxy.setMode('refuse');
    const result = await guard.done;
    const record = () => JSON.parse(readFileSync(join(stateDir, 'groups', 'db.json'), 'utf8'));
    await waitFor('the fence stopped db', () => record().state === 'stopped', 10_000);
    // Past the moment the stalled add would have landed.
    await new Promise((r) => setTimeout(r, 3500));
    expect(fakeIpAddresses(ipDir), agent.log()).toEqual([]);
    expect(record().state).toBe('stopped');
    expect(result.code).not.toBe(0);
    expect(app.started()).toEqual([]);
  }, 60_000);
});

/**
 * db owned by node1 at epoch 1, and a start whose guard died: its recorded run (a dead guard) and,
 * still going, `sh -c "sleep AFTER; start.sh"` with the run's marker. As the start's command (its
 * pid recorded as the run's command) or as a helper outside the command's process group.
 */
async function deadStart(app: App, afterSec: number, as: 'command' | 'helper') {
  const f = await appCluster(app);
  await setGroup(f, 'db', 'node1', 1);
  const stateDir = tempDir('state');
  const state = new LocalState(stateDir);
  state.ensure();
  const nonce = `dead-start-${as}`;
  const left = spawn('sh', ['-c', `sleep ${afterSec}; ${app.start}`], {
    env: { ...process.env, FAILOVER_GUARD_RUN: nonce },
    stdio: 'ignore',
    detached: true,
  });
  left.unref();
  const cmdStart = processStartTime(left.pid!);
  await recordDeadGuardStart(
    state,
    as === 'command' ? { nonce, cmdPid: left.pid!, ...(cmdStart ? { cmdStart } : {}) } : { nonce },
  );
  const stopArgs = ['--group', 'db', '--epoch', '1', '--action', 'stop', '--state-dir', stateDir].concat([
    '--cluster',
    f.cluster,
    '--node',
    'node1',
    '--table',
    f.table,
  ]);
  return { f, state, nonce, stopArgs, env: { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION } };
}

describe('a guard stop after a start whose guard died', () => {
  it('kills the start command the dead guard left going: it does not start the application after the stop', async () => {
    // SSM's timeout killed a guard start; its command (a process group of its own) lives on and
    // will start the application in a moment. The controller then stops the group through a guard
    // stop, which must not report "stopped" and leave that command to start it afterwards.
    const app = makeApp(tempDir('app'));
    const { state, stopArgs, env } = await deadStart(app, 1.5, 'command');
    // A stop command slower than the left start command: only killing that command before it
    // keeps the application from starting at all.
    const result = await runGuard(stopArgs, [`sleep 2.5; ${app.stop}`], env);
    expect(result.code, result.stderr).toBe(0);
    expect(state.readGroup('db')).toMatchObject({ state: 'stopped', epoch: 1 });
    // Past the moment the command would have started the application.
    await new Promise((r) => setTimeout(r, 2000));
    expect(app.started()).toEqual([]);
    expect(app.alive()).toBe(false);
  }, 30_000);
});

describe('a guard stop killed before it killed what a dead start left', () => {
  it("leaves the dead start's marker in the record: the agent's next stop kills what carries it", async () => {
    // A start's guard died; a helper of its start (outside its command's process group, with its
    // marker) will start the application in a few seconds. A guard stop takes the group over and
    // is itself killed (SSM's timeout) before it killed that helper. The agent's stop that follows
    // must still find the dead start's marker.
    const app = makeApp(tempDir('app'));
    const { f, state, nonce, stopArgs, env } = await deadStart(app, 4, 'helper');
    const stop = spawnGuard(stopArgs, ['sleep 30'], env);
    await waitFor(
      'the stop command runs',
      () => (state.readGroup('db')?.run?.cmdPid ?? 0) > 0 && state.readGroup('db')?.run?.action === 'stop',
      10_000,
    );
    expect(state.readGroup('db')?.left).toEqual([nonce]);
    // SSM's timeout: the guard and its command die.
    const cmd = state.readGroup('db')!.run!.cmdPid!;
    stop.child.kill('SIGKILL');
    process.kill(-cmd, 'SIGKILL');
    await stop.done;
    const stopper = new GroupStopper({
      state,
      log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      vip: { holders: async () => [], add: async () => undefined, remove: async () => undefined },
      env: process.env,
      onLocalChange: () => undefined,
      definition: (g) => f.config.groups.find((x) => x.name === g),
    });
    expect(await stopper.stop('db', 'orphan', { urgent: false })).toBe(true);
    expect(state.readGroup('db')).toMatchObject({ state: 'stopped' });
    // Past the moment the helper would have started the application.
    await new Promise((r) => setTimeout(r, 4000));
    expect(app.started()).toEqual([]);
  }, 30_000);
});
