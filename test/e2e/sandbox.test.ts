/**
 * The sandbox scenarios as end-to-end tests: real agent processes, the real controller code driven
 * by the events AWS would deliver, the emulator, and faults injected one after another. Each must
 * end with exactly one owner holding every entry point, the application never seen on two nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, type ScenarioResult } from '../../sandbox/sandbox';

const lines: string[] = [];
const sandbox = new Sandbox({ say: (line) => lines.push(line) });
const results: ScenarioResult[] = [];

beforeAll(async () => {
  await sandbox.start();
  const first = await sandbox.waitConsistent('node1', 60_000);
  expect(first.ms, lines.join('\n')).not.toBeNaN();
}, 120_000);

afterAll(async () => {
  await sandbox.stop();
  const t = sandbox.timing;
  console.log(
    `sandbox timeline (lease ${t.leaseMs} ms, heartbeat ${t.heartbeatIntervalMs} ms, schedule stand-in ${sandbox.scheduleMs} ms):\n` +
      results
        .map(
          (r) =>
            `  ${r.ok ? 'ok ' : 'BAD'} ${r.name.padEnd(16)} ${r.from} -> ${r.to} ${r.seconds.toFixed(2)} s`,
        )
        .join('\n'),
  );
}, 60_000);

describe('sandbox failover scenarios', () => {
  const check = (r: ScenarioResult, bound: number) => {
    results.push(r);
    expect(r.ok, `${r.detail}\n${lines.slice(-40).join('\n')}`).toBe(true);
    expect(r.seconds).toBeLessThan(bound);
  };

  it('silent crash of the active node: the standby takes over after the lease', async () => {
    const r = await sandbox.silentCrash();
    check(r, 10);
    // It cannot be faster than the lease: the dead node may have been serving until then.
    expect(r.seconds).toBeGreaterThanOrEqual(sandbox.timing.leaseMs / 1000);
  }, 90_000);

  it('instance stop: the planned shutdown hands over without waiting for the lease', async () => {
    check(await sandbox.instanceStop(), 10);
  }, 90_000);

  it('partition from DynamoDB: the cut-off owner fences itself and the standby takes over', async () => {
    check(await sandbox.partition(), 10);
  }, 90_000);

  it("a start sent at a stale epoch is refused by the node's guard and surfaces as EXEC_FAILED with the output", async () => {
    const group = await sandbox.status();
    const standby = group?.owner === 'node1' ? 'node2' : 'node1';
    const error = await sandbox.sendExec(standby, 'start', (group?.epoch ?? 1) - 1).catch((e) => e);
    expect(error.code).toBe('EXEC_FAILED');
    expect(error.message).toMatch(
      /start of app on instance i-[0-9a-f]+ \(node[12]\) ended Failed with exit code 3 .*refused to start db at epoch/,
    );
    const after = await sandbox.entryPoints();
    expect(after.apps).toEqual([group?.owner]);
  }, 60_000);

  it('a tampered VIP route is put back on the owner by the route check', async () => {
    check(await sandbox.tamperRoute(), (sandbox.scheduleMs ?? 0) / 1000 + 5);
    expect(sandbox.transitions.some((t) => t.kind === 'resource.restarted')).toBe(true);
  }, 90_000);
});
