/**
 * `npm run demo`: the local sandbox. Starts the emulator, builds a two-node account in it, runs two
 * real agents and the real controller code, then injects faults one after another and prints a
 * timeline with the time from each fault to the switched entry point. Exit code 0 only when every
 * scenario ends with exactly one owner and every entry point on it.
 *
 * `npm run demo -- --console [--port 8080] [--open]`: the same, with the web console on the sandbox's
 * table from the start; after the scenarios the sandbox keeps running (Ctrl-C stops it), so that
 * the console can be watched and a move clicked.
 */
import { parseArgs } from 'node:util';
import { buildStatus, renderStatus } from '../cli/commands/status';
import { DEMO_SHAPES } from '../sandbox/network';
import { Sandbox, type ScenarioResult } from '../sandbox/sandbox';

const { values } = parseArgs({
  options: {
    'schedule-ms': { type: 'string' },
    keep: { type: 'boolean', default: false },
    console: { type: 'boolean', default: false },
    port: { type: 'string', default: '8080' },
    open: { type: 'boolean', default: false },
  },
});
const started = Date.now();
const stamp = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
const sandbox = new Sandbox({
  groups: DEMO_SHAPES,
  say: (line) => console.log(`${stamp()} ${line}`),
  ...(values['schedule-ms'] ? { scheduleMs: Number(values['schedule-ms']) } : {}),
});
if (values.keep) process.env.SANDBOX_KEEP = '1';

async function printStatus(): Promise<void> {
  const stored = await sandbox.store.getConfig('sandbox');
  const cfg = stored!.config;
  const [hbs, groups] = await Promise.all([
    sandbox.store.getHeartbeats(
      'sandbox',
      cfg.nodes.map((n) => n.name),
    ),
    sandbox.store.listGroups('sandbox'),
  ]);
  const now = Date.now();
  console.log(`\n${renderStatus(buildStatus(stored!, hbs, groups, now, sandbox.store.table), now)}\n`);
}

/** The web console on the sandbox's table, with the emulator's endpoint (cli/console). */
async function openConsole(): Promise<{ close: () => Promise<void> }> {
  const { launchConsole } = await import('../cli/console/command');
  const endpoint = await sandbox.store.client.config.endpoint?.();
  const aws = {
    region: 'us-east-1',
    ...(endpoint ? { endpoint: `${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}` } : {}),
  };
  const server = await launchConsole({ table: sandbox.store.table, aws, port: Number(values.port) });
  console.log(`${stamp()} web console: ${server.url} (watch the failovers below happen there)`);
  if (values.open) {
    const { spawn } = await import('node:child_process');
    spawn('xdg-open', [server.url], { stdio: 'ignore', detached: true })
      .on('error', () => undefined)
      .unref();
  }
  return server;
}

let code = 1;
let web: { close: () => Promise<void> } | undefined;
try {
  await sandbox.start();
  if (values.console) web = await openConsole();
  console.log(`${stamp()} waiting for the groups to come online on node1...`);
  const first = await sandbox.waitConsistent('node1', 60_000);
  if (!Number.isFinite(first.ms))
    throw new Error(`the groups did not come online: ${Sandbox.describeAll(first.last)}`);
  for (const e of first.last) console.log(`${stamp()} online on node1: ${Sandbox.describe(e)}`);
  await printStatus();

  const results: ScenarioResult[] = [];
  for (const run of [
    () => sandbox.silentCrash(),
    () => sandbox.instanceStop(),
    () => sandbox.partition(),
    () => sandbox.tamperRoute(),
  ]) {
    results.push(await run());
    await printStatus();
  }

  const t = sandbox.timing;
  console.log(
    `timeline (lease ${t.leaseMs} ms, heartbeat ${t.heartbeatIntervalMs} ms, stand-in schedule ${(sandbox.scheduleMs ?? 0) / 1000} s):`,
  );
  const secs = (s: number) => (Number.isFinite(s) ? `${s.toFixed(2)} s` : 'did not switch');
  for (const r of results) {
    console.log(`  ${r.ok ? '✓' : '✗'} ${r.name.padEnd(16)} ${r.from} -> ${r.to}   (${r.fault})`);
    for (const g of r.groups)
      console.log(`      ${g.ok ? '✓' : '✗'} ${g.group.padEnd(6)} ${g.from} -> ${g.to}  ${secs(g.seconds)}`);
  }
  code = results.every((r) => r.ok) ? 0 : 1;
  console.log(
    code === 0
      ? 'every scenario ended with exactly one owner per group and every entry point, VIP and application on it'
      : 'SOME SCENARIOS FAILED',
  );
  if (web) {
    console.log(
      `${stamp()} the sandbox keeps running for the console: click a move there, or kill an agent (kill -9 <pid>) to see a failover; Ctrl-C stops everything`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  }
} catch (e) {
  console.error(`sandbox failed: ${(e as Error).stack ?? e}`);
  code = 1;
} finally {
  await web?.close();
  if (values.keep) console.log(`work directory kept: ${sandbox.workDir}`);
  await sandbox.stop();
}
process.exit(code);
