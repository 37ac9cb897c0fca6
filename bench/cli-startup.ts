/**
 * failoverctl's start-up time, as an operator feels it: the whole process, from `node` to exit, for
 * commands that need no AWS call (`--version`, `--help`, `validate -f examples/cluster.yaml`), run
 * from the TypeScript sources through tsx (how failoverctl ran before it shipped compiled) and from
 * the compiled bundle (dist/cli). Each command runs `runs` times after one warm-up; prints
 * min / median / p95 / max.
 *
 *   npx tsx bench/cli-startup.ts [--runs 15] [--before-bin OTHER_CHECKOUT/bin/failoverctl.js]
 *   npm run bench -- --only cli
 *
 * `--before-bin` times another checkout's failoverctl as "before" (e.g. the commit before the
 * compiled CLI, whose sources also loaded every command at start); without it, "before" is this
 * checkout's sources through tsx. `node -e 0` is printed too: Node's own start is the floor.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchRow, Say } from './report';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(REPO, 'bin', 'failoverctl.js');
const COMMANDS: [string, string[]][] = [
  ['--version', ['--version']],
  ['--help', ['--help']],
  ['validate -f examples/cluster.yaml', ['validate', '-f', join(REPO, 'examples', 'cluster.yaml')]],
];
/** The target for a start. */
export const TARGET_START_MS = 500;

export interface Quantiles {
  min: number;
  median: number;
  p95: number;
  max: number;
  n: number;
}

/** Nearest-rank quantiles of the samples. */
export function quantiles(samples: readonly number[]): Quantiles {
  const v = [...samples].sort((a, b) => a - b);
  const rank = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
  return { min: v[0]!, median: rank(0.5), p95: rank(0.95), max: v[v.length - 1]!, n: v.length };
}

function timeRuns(args: string[], fromSource: boolean, runs: number, bin = BIN): number[] {
  const env = { ...process.env, FAILOVERCTL_FROM_SOURCE: fromSource ? '1' : '0' };
  const once = () => {
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, bin ? [bin, ...args] : args, { env, stdio: 'ignore' });
    // The commit before the compiled CLI had no --version: it exits 2 (unknown option) after loading
    // everything, which is the start-up being measured.
    if (r.status !== 0 && !(bin !== BIN && r.status === 2))
      throw new Error(`failoverctl ${args.join(' ')} exited ${r.status}`);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  once(); // warm-up: the file system cache, tsx's compile cache
  return Array.from({ length: runs }, once);
}

const fmt = (q: Quantiles) =>
  `${q.min.toFixed(0)} / ${q.median.toFixed(0)} / ${q.p95.toFixed(0)} / ${q.max.toFixed(0)} ms`;

export async function runCliStartupBench(options: {
  say: Say;
  runs?: number;
  beforeBin?: string;
}): Promise<BenchRow[]> {
  const runs = options.runs ?? 15;
  const { buildCli } = (await import(pathToFileURL(join(REPO, 'scripts', 'build.mjs')).href)) as {
    buildCli: () => Promise<unknown>;
  };
  options.say('cli: building dist/cli (the compiled failoverctl)...');
  await buildCli();
  const rows: BenchRow[] = [];
  options.say(`cli: node -e 0, ${runs} runs...`);
  rows.push({
    section: 'cli start-up',
    metric: 'node -e 0 (Node.js itself, the floor)',
    value: `${fmt(quantiles(timeRuns(['-e', '0'], false, runs, '')))} (min / median / p95 / max, ${runs} runs)`,
  });
  const before = options.beforeBin
    ? `before (${options.beforeBin}, sources through tsx)`
    : 'before (TypeScript sources through tsx)';
  for (const [name, args] of COMMANDS) {
    for (const fromSource of [true, false]) {
      options.say(
        `cli: failoverctl ${name}, ${fromSource ? 'sources through tsx' : 'compiled'}, ${runs} runs...`,
      );
      const q = quantiles(timeRuns(args, fromSource, runs, fromSource ? (options.beforeBin ?? BIN) : BIN));
      rows.push({
        section: 'cli start-up',
        metric: `failoverctl ${name}: ${fromSource ? before : 'after (compiled dist/cli)'}`,
        value: `${fmt(q)} (min / median / p95 / max, ${q.n} runs)`,
        ...(fromSource ? {} : { target: `median < ${TARGET_START_MS} ms`, met: q.median < TARGET_START_MS }),
        note: 'whole process, node start to exit, no AWS call',
      });
    }
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '15' }, 'before-bin': { type: 'string' } },
  });
  const rows = await runCliStartupBench({
    say: (l) => process.stderr.write(`${l}\n`),
    runs: Number(values.runs),
    ...(values['before-bin'] ? { beforeBin: values['before-bin'] } : {}),
  });
  for (const r of rows)
    console.log(
      `${r.metric.padEnd(90)} ${r.value}${r.met === undefined ? '' : r.met ? '  (target met)' : '  (TARGET MISSED)'}`,
    );
}
