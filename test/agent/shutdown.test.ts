/**
 * Planned shutdown: SIGTERM (systemd stop, instance stop) or SIGINT (what WinSW's Ctrl+C is to node
 * on a Windows service stop or shutdown) stops the application, then writes the final `leaving`
 * heartbeat, then exits 0; the watchdog device (a regular file here) was fed and is
 * disarmed with the magic 'V'.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  createCluster,
  heartbeat,
  makeApp,
  motoEndpoint,
  processAlive,
  REGION,
  removeTempDirs,
  runGuard,
  setGroup,
  sleep,
  startAgent,
  tempDir,
  waitFor,
} from './support';

const agents: AgentProcess[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
});
afterAll(() => removeTempDirs());

describe('planned shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s stops the application, then writes the leaving heartbeat, then exits 0',
    async (sig) => {
      const app = makeApp(tempDir('app'));
      const f = await createCluster({
        timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
        nodes: [
          { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
          { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
        ],
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
      const watchdog = path.join(tempDir('wd'), 'watchdog');
      const agent = await startAgent({
        f,
        node: 'node1',
        stateDir,
        args: ['--watchdog-device', watchdog, '--watchdog-timeout-sec', '1'],
      });
      agents.push(agent);
      await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
      const env = { AWS_ENDPOINT_URL: motoEndpoint(), AWS_REGION: REGION };
      const started = await runGuard(
        ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
        [app.start],
        env,
      );
      expect(started.code, started.stderr).toBe(0);
      const appPid = app.pid()!;
      await waitFor('running', async () => (await heartbeat(f, 'node1'))?.groups.db?.state === 'running');
      await sleep(1000);

      const termAt = Date.now();
      agent.signal(sig);
      const exit = await agent.exited;
      const exitAt = Date.now();
      expect(exit.code, agent.log()).toBe(0);
      const stop = app.stops().find((s) => s.reason === 'shutdown');
      expect(stop, agent.log()).toBeDefined();
      expect(processAlive(appPid)).toBe(false);
      const last = (await heartbeat(f, 'node1'))!;
      console.log(
        `${sig}: stop script ran after ${stop!.at - termAt} ms, leaving heartbeat sent after ${last.sentAt - termAt} ms, exit after ${exitAt - termAt} ms`,
      );
      expect(last).toMatchObject({
        state: 'leaving',
        reason: 'change',
        groups: { db: { epoch: 1, state: 'stopped' } },
      });
      // Stop first, then the report that lets reconcile promote the standby without waiting for the lease.
      expect(last.sentAt).toBeGreaterThanOrEqual(stop!.at);

      // The watchdog got a byte per renewal, and the magic close at the end.
      const fed = readFileSync(watchdog, 'utf8');
      console.log(`watchdog: ${fed.length - 1} feeds, then ${JSON.stringify(fed.slice(-1))}`);
      expect(fed).toMatch(/^1{4,}V$/);

      // Gone: no start gets through the guard any more.
      const refused = await runGuard(
        ['--group', 'db', '--epoch', '1', '--state-dir', stateDir],
        [app.start],
        env,
      );
      expect(refused.code).toBe(4);
      expect(refused.stderr).toMatch(/shutting down|is not running/);
      expect(app.alive()).toBe(false);
    },
  );
});
