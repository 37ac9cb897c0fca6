/**
 * The agent's footprint, from `scripts/agent-bench.ts` (the shipped bundle against the emulator at a
 * 1 s heartbeat with 5 monitors, 1 witness and 1 peer), run as its own process so that nothing of
 * this one is measured; it hands its figures over as JSON (`--json FILE`), which become rows of the
 * summary table.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchRow, Say } from './report';

const REPO = path.resolve(import.meta.dirname, '..');
const SECTION = 'agent';

export interface FootprintFigures {
  rssAvgMb: number;
  rssMaxMb: number;
  cpuPct: number;
  writesPerSecond: number;
}

export async function runAgentFootprintBench(opts: { say: Say; seconds?: number }): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? 60;
  opts.say(`agent footprint: the bundle for ${seconds} s after a 10 s warm-up`);
  const json = path.join(mkdtempSync(path.join(os.tmpdir(), 'agent-footprint-')), 'figures.json');
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'),
        path.join(REPO, 'scripts', 'agent-bench.ts'),
        '--seconds',
        String(seconds),
        '--warmup',
        '10',
        '--json',
        json,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`agent-bench exited ${code}:\n${out.slice(-2000)}`)),
    );
  });
  for (const line of output.trim().split('\n').slice(-4)) opts.say(`  ${line.trim()}`);
  let f: FootprintFigures;
  try {
    f = JSON.parse(readFileSync(json, 'utf8')) as FootprintFigures;
  } catch (e) {
    throw new Error(
      `agent-bench wrote no figures to ${json} (${(e as Error).message}):\n${output.slice(-2000)}`,
    );
  }
  return [
    {
      section: SECTION,
      metric: 'agent RSS at a 1 s heartbeat, 5 monitors, 1 witness, 1 peer (shipped bundle, unit-file flags)',
      value: `${f.rssAvgMb.toFixed(1)} MB average, ${f.rssMaxMb.toFixed(1)} MB max`,
      target: '<= 50 MB',
      met: f.rssMaxMb <= 50,
    },
    {
      section: SECTION,
      metric: 'agent CPU at a 1 s heartbeat, 5 monitors',
      value: `${f.cpuPct.toFixed(2)} % of one core (${f.writesPerSecond.toFixed(2)} renewals/s)`,
      target: '<= 1 %',
      met: f.cpuPct <= 1,
    },
  ];
}
