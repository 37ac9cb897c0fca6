/**
 * The agent's local stop (node-agent/group-stopper.ts) with real processes and files: a guard
 * process that holds the group's lock, the stop script of the group's exec resource, the lock file.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { GroupStopper } from '../../node-agent/group-stopper';
import { LocalState } from '../../node-agent/local-state';
import type { Logger } from '../../node-agent/log';
import { processStartTime } from '../../node-agent/process-util';
import type { VipOps } from '../../node-agent/vip';
import { parseClusterConfig } from '../../shared/config/load';
import { makeApp, processAlive, removeTempDirs, tempDir, waitFor } from './support';

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
        { name: 'node1', instanceId: 'i-01', az: 'us-east-1a' },
        { name: 'node2', instanceId: 'i-02', az: 'us-east-1b' },
      ],
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: app.start, stop: app.stop, timeoutSec: 10 }],
        },
      ],
    });
    const stopper = new GroupStopper({
      state,
      log,
      vip: noAddresses,
      env: process.env,
      onLocalChange: () => undefined,
      definition: (group) => definition.groups.find((g) => g.name === group),
    });

    // The guard: a live process holding the lock, recorded as starting db at epoch 2.
    const guard = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = guard.pid!;
    const start = processStartTime(pid);
    const nonce = randomBytes(8).toString('hex');
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
    state.writeGroup({
      group: 'db',
      state: 'starting',
      epoch: 2,
      pid,
      at: Date.now(),
      run: { action: 'start', nonce, guardPid: pid, ...(start ? { guardStart: start } : {}) },
    });

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
