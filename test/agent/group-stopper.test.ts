/**
 * The agent's local stop (node-agent/group-stopper.ts) with real processes and files: a guard
 * process that holds the group's lock, the stop script of the group's exec resource, the lock file.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GroupStopper } from '../../node-agent/group-stopper';
import { runGuard } from '../../node-agent/guard';
import { LocalState } from '../../node-agent/local-state';
import type { Logger } from '../../node-agent/log';
import { processStartTime } from '../../node-agent/process-util';
import { createVipOps, type VipOps } from '../../node-agent/vip';
import { fakeIpAddresses, writeFakeIp } from '../../sandbox/fake-ip';
import { parseClusterConfig } from '../../shared/config/load';
import {
  type App,
  makeApp,
  processAlive,
  recordDeadGuardStart,
  removeTempDirs,
  tempDir,
  waitFor,
} from './support';

afterAll(() => removeTempDirs());

const noAddresses: VipOps = {
  holders: async () => [],
  add: async (ip) => {
    throw new Error(`no address was expected, got ${ip}`);
  },
  remove: async (ip) => {
    throw new Error(`no address was expected, got ${ip}`);
  },
};

describe('the agent stopping a group', () => {
  it('a waiting stop that the fence upgrades stops whatever it finds, even when a newer start changed the record', async () => {
    // A demote waits for the lock (only if the record is still "running" at epoch 1) while a
    // guard starts db at epoch 2; the node then fences. The fence must stop the group whatever the
    // record says: before, the upgraded stop killed the guard, saw "starting at 2" and returned
    // without stopping, and the fence tried again only 5 s later.
    const app = makeApp(tempDir('app'));
    const { state, lines, stopper } = stopperFor(app);

    // The guard: a live process holding the lock, recorded as starting db at epoch 2.
    const { pid, start, nonce } = liveGuard(state, 2);
    writeFileSync(
      state.lockFile('db'),
      JSON.stringify({
        pid,
        ...(start ? { start } : {}),
        nonce,
        what: 'guard start epoch 2',
        at: Date.now(),
      }),
    );

    const demote = stopper.stop('db', 'demote', {
      urgent: false,
      expect: { epoch: 1, state: 'running' },
      lockWaitMs: 10_000,
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(processAlive(pid), 'the demote waits for the guard').toBe(true);
    const fence = stopper.stop('db', 'fence', { urgent: true });
    const [demoted, fenced] = await Promise.all([demote, fence]);

    await waitFor('the guard is killed', () => !processAlive(pid), 5_000);
    expect(fenced, lines.join('\n')).toBe(true);
    expect(demoted).toBe(true);
    expect(app.stops().map((s) => s.reason)).toEqual(['demote']); // the stop it was asked for first
    expect(state.readGroup('db')).toMatchObject({ state: 'stopped', epoch: 2 });
  }, 30_000);
});

/** A live process standing for a guard, recorded as starting db at `epoch`. */
function liveGuard(state: LocalState, epoch: number) {
  const guard = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = guard.pid!;
  const start = processStartTime(pid);
  const nonce = randomBytes(8).toString('hex');
  state.writeGroup({
    group: 'db',
    state: 'starting',
    epoch,
    pid,
    at: Date.now(),
    run: { action: 'start', nonce, guardPid: pid, ...(start ? { guardStart: start } : {}) },
  });
  return { pid, start, nonce };
}

/** A state directory, a log and a stopper for group db (the app's exec) and fip (one address). */
function stopperFor(
  app: App,
  vip: VipOps = noAddresses,
  startInProcess?: (group: string) => Promise<unknown> | undefined,
) {
  const state = new LocalState(tempDir('state'));
  state.ensure();
  const lines: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(m),
    error: (m) => lines.push(m),
  };
  const definition = parseClusterConfig({
    cluster: 'c',
    region: 'us-east-1',
    nodes: [
      { name: 'node1', instanceId: 'i-01', az: 'us-east-1a', eni: 'eni-01' },
      { name: 'node2', instanceId: 'i-02', az: 'us-east-1b', eni: 'eni-02' },
    ],
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'exec', name: 'app', start: app.start, stop: app.stop, timeoutSec: 10 }],
      },
      {
        name: 'fip',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'vip', name: 'vip', ip: '10.9.9.9', vpcId: 'vpc-0abc' }],
      },
    ],
  });
  const stopper = new GroupStopper({
    state,
    log,
    vip,
    env: process.env,
    onLocalChange: () => undefined,
    definition: (group) => definition.groups.find((g) => g.name === group),
    ...(startInProcess ? { startInProcess } : {}),
  });
  return { state, lines, stopper };
}

describe('the agent stopping a group it cannot lock', () => {
  it('a fence stops the group even when the lock cannot be written (a full disk, a broken state directory), killing the guard it finds; another stop reports it and waits', async () => {
    const app = makeApp(tempDir('app'));
    const { state, lines, stopper } = stopperFor(app);
    // A guard is starting db (its lock file is beyond reach, its record names it).
    const { pid } = liveGuard(state, 1);
    // Nothing can be created where the locks go.
    rmSync(state.locksDir, { recursive: true, force: true });
    writeFileSync(state.locksDir, 'not a directory');

    expect(await stopper.stop('db', 'demote', { urgent: false, lockWaitMs: 100 })).toBe(false);
    expect(app.stops()).toEqual([]);
    expect(processAlive(pid)).toBe(true);
    expect(lines.join('\n')).toMatch(/stop of db \(demote\) failed: .*will try again/);

    expect(await stopper.stop('db', 'fence', { urgent: true }), lines.join('\n')).toBe(true);
    expect(app.stops().map((s) => s.reason)).toEqual(['fence']);
    expect(state.readGroup('db')).toMatchObject({ state: 'stopped', epoch: 1 });
    expect(lines.join('\n')).toMatch(/cannot take the lock of db .*stopping it without/);
    await waitFor('the guard is killed', () => !processAlive(pid), 5_000);
  });

  it('a fence stops the group when its local record cannot be read, and writes it anew', async () => {
    const app = makeApp(tempDir('app'));
    const { state, lines, stopper } = stopperFor(app);
    writeFileSync(state.groupFile('db'), '{"group": "db", "sta');
    expect(await stopper.stop('db', 'orphan', { urgent: false })).toBe(false);
    expect(app.stops()).toEqual([]);
    expect(await stopper.stop('db', 'fence', { urgent: true }), lines.join('\n')).toBe(true);
    expect(app.stops().map((s) => s.reason)).toEqual(['fence']);
    // Stopped at an epoch nobody runs (0): no proof for the controller at the group's epoch.
    expect(state.readGroup('db')).toMatchObject({ state: 'stopped', epoch: 0 });
  });
});

describe('a recorded command that is no longer the one started', () => {
  it.each([
    ['its pid now belongs to another process', { cmdStart: 'started-at-another-time' }],
    ['it was recorded in another boot', { boot: 'another-boot-id' }],
  ])('is not killed when %s', async (_label, identity) => {
    // A record left by a guard that died long ago (or before a reboot): its command's pid may now
    // be anyone's, and the agent runs as root.
    const app = makeApp(tempDir('app'));
    const { state, lines, stopper } = stopperFor(app);
    const bystander = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
    bystander.unref();
    await recordDeadGuardStart(state, { nonce: 'old-run', cmdPid: bystander.pid!, ...identity });
    try {
      expect(await stopper.stop('db', 'startup', { urgent: false }), lines.join('\n')).toBe(true);
      expect(app.stops().map((s) => s.reason)).toEqual(['startup']);
      expect(processAlive(bystander.pid!), 'the bystander lives').toBe(true);
    } finally {
      bystander.kill('SIGKILL');
    }
  });
});

describe('what an interrupted guard run left', () => {
  it('is stopped by the stop scripts first, cleanly, and killed only after them', async () => {
    // A start whose guard died (SSM's timeout) after its command launched the application: the
    // application carries the run's marker. The agent's stop must let the stop script stop it
    // (a database flushes, hands off) and kill what is left only after.
    const dir = tempDir('app');
    const seen = join(dir, 'seen-by-stop');
    const app = makeApp(dir);
    const { state, lines, stopper } = stopperFor(app);
    // The stop script notes whether the daemon still runs, and the record as it is meanwhile.
    const during = join(dir, 'record-during-stop');
    writeFileSync(
      app.stop,
      `#!/bin/sh\nif kill -0 $(cat ${app.pidFile}) 2>/dev/null; then echo alive > ${seen}; else echo dead > ${seen}; fi\ncp ${state.groupFile('db')} ${during}\nkill $(cat ${app.pidFile}) 2>/dev/null\nexit 0\n`,
    );
    const nonce = randomBytes(8).toString('hex');
    // The application as the start command left it: a daemon in a process group of its own (out of
    // the command's, which is gone), with the run's marker.
    const daemon = spawn('sleep', ['1000'], {
      env: { ...process.env, FAILOVER_GUARD_RUN: nonce },
      stdio: 'ignore',
      detached: true,
    });
    daemon.unref();
    writeFileSync(app.pidFile, String(daemon.pid));
    await waitFor('the application runs', () => app.alive(), 5_000);
    await recordDeadGuardStart(state, { nonce });
    expect(await stopper.stop('db', 'orphan', { urgent: false }), lines.join('\n')).toBe(true);
    expect(readFileSync(seen, 'utf8').trim()).toBe('alive');
    expect(app.alive()).toBe(false);
    // While the stop ran, its record kept the interrupted run's marker: had the agent died then,
    // the next stop would still have found the daemon.
    expect(JSON.parse(readFileSync(during, 'utf8'))).toMatchObject({ state: 'stopping', left: [nonce] });
    expect(state.readGroup('db')).toMatchObject({ state: 'stopped' });
    expect(state.readGroup('db')?.left).toBeUndefined();
  });
});

describe("the agent's own start of an address and the fence", () => {
  it('never reports the group stopped while the address of a start under way may still land, and takes it off', async () => {
    // `ip addr add` stalls (rtnl_lock on a loaded host) and the fence (same process, so it kills
    // nothing) stops fip meanwhile, finding no address to take off; the add then lands and reports
    // a failure (its timeout) a while later. The fence waits for the start to end (it finds its lock
    // gone and takes off what it added, failed add included) before it records "stopped".
    const ipDir = tempDir('ip');
    const fake = writeFakeIp(ipDir);
    const slowIp = join(ipDir, 'slow-ip');
    writeFileSync(
      slowIp,
      `#!/bin/sh\ncase "$*" in "addr add"*) : > ${ipDir}/add-started; sleep 0.5; ${fake} "$@"; sleep 0.5; exit 1;; esac\nexec ${fake} "$@"\n`,
    );
    chmodSync(slowIp, 0o755);
    const vip = createVipOps({ FAILOVER_AGENT_IP_COMMAND: slowIp, FAILOVER_AGENT_VIP_DEV: 'eth0' });
    let started: Promise<number> | undefined;
    const { state, lines, stopper } = stopperFor(makeApp(tempDir('app')), vip, () => started);
    state.writeLease({
      pid: process.pid,
      incarnation: 'test',
      cluster: 'c',
      node: 'node1',
      table: 't',
      leaseUntilMono: Number.MAX_SAFE_INTEGER,
      fenced: false,
      leaving: false,
      leaseMs: 2000,
      fenceMarginMs: 500,
      at: Date.now(),
    } as Parameters<LocalState['writeLease']>[0]);
    started = runGuard(
      {
        group: 'fip',
        epoch: 1,
        action: 'start',
        cluster: 'c',
        node: 'node1',
        table: 't',
        stateDir: state.dir,
        vips: ['10.9.9.9'],
        lockTimeoutMs: 0,
        command: [],
      },
      {
        env: process.env,
        clock: { mono: () => 0, wall: Date.now },
        vip,
        err: (l) => lines.push(l),
        // The record read (DynamoDB in the agent) says this node owns fip at epoch 1.
        store: { getGroup: async () => ({ owner: 'node1', epoch: 1, mayRun: ['node1'] }) } as never,
      },
    );
    await waitFor('the add is under way', () => existsAdd(ipDir), 10_000, 5);
    // What the heartbeat would report, sampled every 10 ms while the fence runs.
    const seen: string[] = [];
    const sample = setInterval(() => {
      const on = fakeIpAddresses(ipDir).length > 0;
      const rec = state.readGroup('fip');
      if (on && rec?.state === 'stopped') seen.push(`stopped at epoch ${rec.epoch} with the address on`);
    }, 10);
    const fenced = await stopper.stop('fip', 'fence', { urgent: true });
    const code = await started;
    clearInterval(sample);
    expect(fenced, lines.join('\n')).toBe(true);
    expect(seen.slice(0, 1)).toEqual([]);
    expect(code).toBe(5);
    expect(fakeIpAddresses(ipDir), lines.join('\n')).toEqual([]);
    expect(state.readGroup('fip')).toMatchObject({ state: 'stopped' });
  });
});

describe('a fence and an own start that does not end', () => {
  it('takes the addresses off at once, and records failed (not stopped) when the start has not ended in time', async () => {
    // The agent's own start is stuck in its record read (DynamoDB stopped answering: that is what
    // fired the fence). The fence must not keep the address on while it waits, nor wait for ever.
    const ipDir = tempDir('ip');
    const ip = writeFakeIp(ipDir);
    const vip = createVipOps({ FAILOVER_AGENT_IP_COMMAND: ip, FAILOVER_AGENT_VIP_DEV: 'eth0' });
    await vip.add('10.9.9.9', 'eth0');
    const { state, lines, stopper } = stopperFor(
      makeApp(tempDir('app')),
      vip,
      () => new Promise(() => undefined),
    );
    state.writeGroup({
      group: 'fip',
      state: 'running',
      epoch: 1,
      pid: process.pid,
      at: Date.now(),
      vips: ['10.9.9.9'],
    });
    const t0 = Date.now();
    const fence = stopper.stop('fip', 'fence', { urgent: true });
    await waitFor('the address is off', () => fakeIpAddresses(ipDir).length === 0, 2_000, 10);
    const offAfter = Date.now() - t0;
    expect(await fence, lines.join('\n')).toBe(false);
    const took = Date.now() - t0;
    console.log(`address off after ${offAfter} ms; fence ended after ${took} ms`);
    expect(offAfter).toBeLessThan(1000);
    expect(took).toBeLessThan(8000 + 2000);
    expect(state.readGroup('fip')).toMatchObject({ state: 'failed' });
    expect(state.readGroup('fip')?.detail).toMatch(/own start of fip has not ended/);
  }, 20_000);
});

function existsAdd(ipDir: string): boolean {
  try {
    return statSync(join(ipDir, 'add-started')).isFile();
  } catch {
    return false;
  }
}
