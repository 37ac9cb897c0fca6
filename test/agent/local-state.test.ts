/**
 * Local state the agent cannot read must never be reported as "stopped": the controller would take
 * that as proof that the application is down and start it elsewhere. A damaged group record (here:
 * not JSON) is reported as `failed`, which the controller counts as running.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  createCluster,
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

describe('unreadable local state', () => {
  it('is reported as failed, never as stopped', async () => {
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
    const agent = await startAgent({ f, node: 'node1', stateDir });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    const started = await runGuard(['--group', 'db', '--epoch', '1', '--state-dir', stateDir], [app.start], {
      AWS_ENDPOINT_URL: motoEndpoint(),
      AWS_REGION: REGION,
    });
    expect(started.code, started.stderr).toBe(0);
    await waitFor('running', async () => (await heartbeat(f, 'node1'))?.groups.db?.state === 'running');

    // The record is damaged while the application runs.
    writeFileSync(path.join(stateDir, 'groups', 'db.json'), '{ not json');
    await waitFor(
      'reported failed',
      async () => (await heartbeat(f, 'node1'))?.groups.db?.state === 'failed',
      10_000,
    );
    // And it stays that way: never "stopped" while the state is unreadable.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 250));
      expect((await heartbeat(f, 'node1'))?.groups.db?.state).toBe('failed');
    }
    expect(app.alive()).toBe(true);
    expect(agent.log()).toMatch(/cannot read the local group states/);
  }, 60_000);
});
