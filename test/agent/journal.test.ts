/**
 * Log lines as journald receives them, from a real agent process: under systemd the agent's stderr
 * is the journal stream and JOURNAL_STREAM names its device and inode. Here stderr is a file and
 * JOURNAL_STREAM names that file, which is the same check the agent makes against a real journal
 * socket (these machines run no journald). Each line then carries its sd-daemon priority, so that
 * `journalctl -p warning` shows warnings and errors only; a warning that repeats (renewals failing
 * while DynamoDB is unreachable) is one line at warning, the repeats at debug. A process whose
 * stderr is something else but which inherited JOURNAL_STREAM (a guard's child, a pipe) writes
 * plain lines.
 */

import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  agentEnv,
  BIN,
  createCluster,
  heartbeat,
  motoEndpoint,
  REPO,
  removeTempDirs,
  startAgent,
  TcpProxy,
  tempDir,
  waitFor,
} from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => removeTempDirs());

const PRIORITY: Record<string, string> = { debug: '7', info: '6', warn: '4', error: '3' };

describe('journald priorities', () => {
  it('prefixes every line with its priority when stderr is the journal stream; a repeated warning is one line at warning', async () => {
    const f = await createCluster({
      // A long lease: the outage below is retried, never fenced.
      timing: { heartbeatIntervalMs: 250, leaseMs: 20_000 },
      nodes: [{ name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' }],
      groups: [],
    });
    const proxy = await TcpProxy.start(motoEndpoint());
    cleanups.push(() => proxy.close());
    const logFile = path.join(tempDir('journal'), 'stderr.log');
    const fd = openSync(logFile, 'w');
    const st = fstatSync(fd);
    const child = spawn(
      process.execPath,
      [BIN, '--cluster', f.cluster, '--node', 'node1', '--table', f.table, '--state-dir', tempDir('state')],
      {
        cwd: REPO,
        env: agentEnv(proxy.url, {
          JOURNAL_STREAM: `${st.dev}:${st.ino}`,
          FAILOVER_AGENT_LOG_LEVEL: 'debug',
        }),
        stdio: ['ignore', fd, fd],
      },
    );
    closeSync(fd);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const lines = () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean);

    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    const before = (await heartbeat(f, 'node1'))!;
    // DynamoDB unreachable for 3 s: every renewal and its retries fail.
    await proxy.setMode('refuse');
    await new Promise((r) => setTimeout(r, 3000));
    await proxy.setMode('forward');
    const after = await waitFor(
      'a renewal after the outage',
      async () => {
        const h = await heartbeat(f, 'node1');
        return h && h.seq > before.seq + 1 ? h : undefined;
      },
      10_000,
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    const all = lines();
    // Every line: <priority>prefix level message, the priority that of the level.
    for (const line of all) {
      const m = /^<(\d)>failover-agent\[node1\] (debug|info|warn|error) /.exec(line);
      expect(m, line).not.toBeNull();
      expect(m![1], line).toBe(PRIORITY[m![2]!]);
    }
    expect(all.some((l) => l.startsWith('<6>') && / info starting /.test(l))).toBe(true);
    const failed = all.filter((l) => / renewal \S+ failed \(\d+ in a row\)/.test(l));
    const failedAtWarning = failed.filter((l) => l.startsWith('<4>'));
    // What journalctl -p warning would show of this process.
    const warningOrWorse = all.filter((l) => /^<[0-4]>/.test(l));
    console.log(
      `journal: ${all.length} lines (${warningOrWorse.length} at warning or worse); renewals lost in a 3 s outage: ${after.seq - before.seq - 1}; failure lines: ${failed.length}, ${failedAtWarning.length} at warning`,
    );
    expect(failedAtWarning).toHaveLength(1);
    expect(failedAtWarning[0]).toMatch(/\(1 in a row\)/);
    // The repeats (every 10th failure) went to debug.
    for (const l of failed.slice(1)) expect(l.startsWith('<7>'), l).toBe(true);
    // The agent's final lines of the planned shutdown are info.
    expect(all.some((l) => l.startsWith('<6>') && /final heartbeat written: leaving/.test(l))).toBe(true);
  }, 60_000);

  it('writes plain lines when it only inherited JOURNAL_STREAM (stderr is a pipe)', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes: [{ name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' }],
      groups: [],
    });
    // The journal stream of some parent: a file this process's stderr is not.
    const parentFd = openSync(path.join(tempDir('journal'), 'parent.log'), 'w');
    const other = fstatSync(parentFd);
    closeSync(parentFd);
    const agent: AgentProcess = await startAgent({
      f,
      node: 'node1',
      stateDir: tempDir('state'),
      env: { JOURNAL_STREAM: `${other.dev}:${other.ino}` },
    });
    cleanups.push(() => agent.kill());
    const line = await agent.waitForLine(/ starting /);
    expect(line).toMatch(/^failover-agent\[node1\] info starting /);
    expect(agent.lines.every((l) => !/^<\d>/.test(l))).toBe(true);
  }, 30_000);
});
