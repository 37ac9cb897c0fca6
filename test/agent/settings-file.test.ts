/**
 * `--settings FILE`: the settings of the Windows service (WinSW has no EnvironmentFile; the service runs
 * `failover-agent.mjs --settings %ProgramData%\failover-agent\agent.env`). A real agent process
 * with nothing but the file (CRLF line endings, as install.ps1 writes it on Windows) finds its
 * cluster, node, table and state directory there and renews; the environment wins over the file;
 * a missing file or a line that is not KEY=VALUE is a usage error (exit 2, which the unit does not
 * restart), naming the file, the line and the fix. The flag is not called --env-file: node claims
 * that one anywhere in its argv, even after the script, and exits 9 when the file is missing
 * (nodejs/node#54232; seen here on Node 20.20).
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  agentEnv,
  BIN,
  createCluster,
  heartbeat,
  motoEndpoint,
  REPO,
  removeTempDirs,
  tempDir,
  waitFor,
} from './support';

const kills: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(kills.splice(0).map((k) => k()));
});
afterAll(() => removeTempDirs());

/** The daemon with these arguments only; its output and exit. */
function daemon(args: string[], env: Record<string, string | undefined> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO,
    env: agentEnv(motoEndpoint(), env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c) => {
    out += c;
  });
  child.stderr.on('data', (c) => {
    out += c;
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  kills.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, exited, out: () => out };
}

describe('failover-agent --settings', () => {
  it('reads the identity, table and state directory from the file (CRLF), the environment first', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes: [
        { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
        { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
      ],
      groups: [],
    });
    const dir = tempDir('envfile');
    const stateDir = path.join(dir, 'state');
    const file = path.join(dir, 'agent.env');
    writeFileSync(
      file,
      [
        '# failover-agent settings (install.ps1)',
        '',
        `FAILOVER_CLUSTER=${f.cluster}`,
        'FAILOVER_NODE = node2',
        `FAILOVER_TABLE=${f.table}`,
        `FAILOVER_AGENT_STATE_DIR=${stateDir}`,
        'FAILOVER_AGENT_LOG_LEVEL=debug',
        '',
      ].join('\r\n'),
    );
    // The environment names node1 and level info: they win over the file's node2 and debug.
    const agent = daemon(['--settings', file], { FAILOVER_NODE: 'node1', FAILOVER_AGENT_LOG_LEVEL: 'info' });
    const hb = await waitFor(`a renewal of node1\n${agent.out()}`, () => heartbeat(f, 'node1'), 15_000);
    expect(hb.state).toBe('running');
    expect(await heartbeat(f, 'node2')).toBeUndefined();
    expect(existsSync(path.join(stateDir, 'agent.json'))).toBe(true);
    expect(agent.out()).not.toMatch(/ debug /);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }, 30_000);

  it('a missing file or a bad line is a usage error (exit 2) naming the file, the line and the fix', async () => {
    const dir = tempDir('envfile');
    const missing = daemon(['--settings', path.join(dir, 'nope.env')]);
    expect(await missing.exited).toBe(2);
    expect(missing.out()).toContain(`--settings ${path.join(dir, 'nope.env')}: ENOENT`);
    expect(missing.out()).toContain('write the settings there (KEY=VALUE lines) or drop the flag');

    const bad = path.join(dir, 'bad.env');
    writeFileSync(bad, 'FAILOVER_CLUSTER=orders\r\nFAILOVER_NODE node1\r\n');
    const badRun = daemon(['--settings', bad]);
    expect(await badRun.exited).toBe(2);
    expect(badRun.out()).toContain(
      `${bad}:2: "FAILOVER_NODE node1" is not KEY=VALUE; fix or remove the line`,
    );
  }, 30_000);
});
