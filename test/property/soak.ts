/**
 * Soak: many random fault schedules through the real decide/execute code on the in-memory cloud.
 *
 *   npm run soak                        # 10,000 schedules from a random seed, one process per core
 *   npm run soak -- --runs 500 --seed 123 --jobs 1
 *   npm run soak -- --replay 123:45     # replay schedule #45 of seed 123 with its event log
 *   npm run soak -- --groups-in-flight 1  # every invocation reconciles its groups one at a time
 *
 * Prints the count, the violations, and the seed to replay any failure. Exit code 1 on violations.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { runScenario, type Scenario, scenarioArb } from './sim/scenario';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    replay: { type: 'string' },
    jobs: { type: 'string' },
    /** Internal: run schedules [from, to) and print one JSON line. */
    slice: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    /** ReconcileOptions.groupsInFlight (1: the path of a zone outage, reconcileInWaves). */
    'groups-in-flight': { type: 'string' },
  },
});
const groupsInFlight =
  values['groups-in-flight'] === undefined ? undefined : Number(values['groups-in-flight']);
if (groupsInFlight !== undefined && !(Number.isInteger(groupsInFlight) && groupsInFlight >= 1)) {
  console.error(`--groups-in-flight takes a whole number >= 1 (got ${values['groups-in-flight']})`);
  process.exit(2);
}
const runOptions = groupsInFlight !== undefined ? { groupsInFlight } : {};

interface Totals {
  schedules: number;
  invocations: number;
  takeovers: number;
  mutations: number;
  fences: number;
  resets: number;
  failures: { index: number; violations: string[] }[];
}

function scenarioAt(seed: number, index: number): Scenario {
  return fc.sample(scenarioArb, { seed: seed + index, numRuns: 1 })[0]!;
}

async function runSlice(
  seed: number,
  from: number,
  to: number,
  progress: (done: number) => void,
): Promise<Totals> {
  const totals: Totals = {
    schedules: 0,
    invocations: 0,
    takeovers: 0,
    mutations: 0,
    fences: 0,
    resets: 0,
    failures: [],
  };
  for (let i = from; i < to; i++) {
    const result = await runScenario(scenarioAt(seed, i), runOptions);
    totals.schedules++;
    totals.invocations += result.invocations;
    totals.takeovers += result.takeovers;
    totals.mutations += result.mutations;
    totals.fences += result.fences;
    totals.resets += result.resets;
    if (result.violations.length > 0) totals.failures.push({ index: i, violations: result.violations });
    progress(totals.schedules);
  }
  return totals;
}

if (values.replay) {
  const [seed, index] = values.replay.split(':').map(Number);
  const scenario = scenarioAt(seed!, index!);
  console.log(JSON.stringify(scenario, null, 1));
  const result = await runScenario(scenario, { ...runOptions, keepLog: true });
  console.log(result.log.join('\n'));
  console.log(result.violations.length ? `VIOLATIONS:\n${result.violations.join('\n')}` : 'no violation');
  process.exit(result.violations.length ? 1 : 0);
}

const runs = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);

if (values.slice) {
  const [from, to] = values.slice.split(':').map(Number);
  const totals = await runSlice(seed, from!, to!, (done) => {
    if (done % 100 === 0) process.stderr.write(`progress ${done}\n`);
  });
  process.stdout.write(`${JSON.stringify(totals)}\n`);
  process.exit(0);
}

const jobs = Math.max(1, Math.min(Number(values.jobs ?? availableParallelism()), runs));
console.log(
  `soak: ${runs} fault schedules, seed ${seed}, ${jobs} process${jobs > 1 ? 'es' : ''}${groupsInFlight !== undefined ? `, ${groupsInFlight} group(s) in flight per invocation` : ''}`,
);
const started = Date.now();
const per = Math.ceil(runs / jobs);
let done = 0;
let lastPrinted = 0;
const slices = Array.from(
  { length: jobs },
  (_, j) => [j * per, Math.min(runs, (j + 1) * per)] as const,
).filter(([a, b]) => b > a);
const results = await Promise.all(
  slices.map(
    ([from, to]) =>
      new Promise<Totals>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            ...process.execArgv,
            fileURLToPath(import.meta.url),
            '--seed',
            String(seed),
            '--slice',
            `${from}:${to}`,
            ...(groupsInFlight !== undefined ? ['--groups-in-flight', String(groupsInFlight)] : []),
          ],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        let seen = 0;
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.stderr.on('data', (d: Buffer) => {
          for (const m of d.toString().matchAll(/progress (\d+)/g)) {
            done += Number(m[1]) - seen;
            seen = Number(m[1]);
          }
          if (!values.quiet && done - lastPrinted >= 500) {
            lastPrinted = done;
            console.log(`  ${done}/${runs} schedules, ${((Date.now() - started) / 1000).toFixed(0)} s`);
          }
        });
        child.on('close', (code) =>
          code === 0
            ? resolve(JSON.parse(out.trim().split('\n').pop()!))
            : reject(new Error(`slice ${from}:${to} exited ${code}`)),
        );
      }),
  ),
);
const t = results.reduce((a, b) => ({
  schedules: a.schedules + b.schedules,
  invocations: a.invocations + b.invocations,
  takeovers: a.takeovers + b.takeovers,
  mutations: a.mutations + b.mutations,
  fences: a.fences + b.fences,
  resets: a.resets + b.resets,
  failures: [...a.failures, ...b.failures],
}));
for (const f of t.failures)
  console.log(
    `VIOLATION in schedule #${f.index}: replay with npm run soak -- --replay ${seed}:${f.index}\n  ${f.violations.join('\n  ')}`,
  );
console.log(
  `soak done: ${t.schedules} schedules in ${((Date.now() - started) / 1000).toFixed(1)} s; violations: ${t.failures.length}; seed ${seed}\n` +
    `  simulated: ${t.invocations} reconcile invocations, ${t.takeovers} takeovers, ${t.mutations} AWS mutations, ${t.fences} self-fences, ${t.resets} watchdog resets`,
);
process.exit(t.failures.length > 0 ? 1 : 0);
