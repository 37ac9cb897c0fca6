/**
 * Soak: many random fault schedules through the real decide/execute code on the in-memory cloud.
 *
 *   npm run soak                      # 10,000 schedules from a random seed
 *   npm run soak -- --runs 500 --seed 123
 *   npm run soak -- --replay 123:45   # replay schedule #45 of seed 123 with its event log
 *
 * Prints the count, the violations, and the seed to replay any failure. Exit code 1 on violations.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { runScenario, type Scenario, scenarioArb } from './sim/scenario';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    replay: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

function scenarioAt(seed: number, index: number): Scenario {
  return fc.sample(scenarioArb, { seed: seed + index, numRuns: 1 })[0]!;
}

if (values.replay) {
  const [seed, index] = values.replay.split(':').map(Number);
  const scenario = scenarioAt(seed!, index!);
  console.log(JSON.stringify(scenario, null, 1));
  const result = await runScenario(scenario, { keepLog: true });
  console.log(result.log.join('\n'));
  console.log(result.violations.length ? `VIOLATIONS:\n${result.violations.join('\n')}` : 'no violation');
  process.exit(result.violations.length ? 1 : 0);
}

const runs = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
console.log(`soak: ${runs} fault schedules, seed ${seed} (${cpus().length} cores; one process)`);
const started = Date.now();
const totals = { invocations: 0, takeovers: 0, mutations: 0, fences: 0, resets: 0 };
const failures: { index: number; violations: string[] }[] = [];
for (let i = 0; i < runs; i++) {
  const result = await runScenario(scenarioAt(seed, i));
  totals.invocations += result.invocations;
  totals.takeovers += result.takeovers;
  totals.mutations += result.mutations;
  totals.fences += result.fences;
  totals.resets += result.resets;
  if (result.violations.length > 0) {
    failures.push({ index: i, violations: result.violations });
    console.log(
      `VIOLATION in schedule #${i}: replay with npm run soak -- --replay ${seed}:${i}\n  ${result.violations.join('\n  ')}`,
    );
  }
  if (!values.quiet && (i + 1) % 500 === 0) {
    console.log(
      `  ${i + 1}/${runs} schedules, ${failures.length} with violations, ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
  }
}
const seconds = (Date.now() - started) / 1000;
console.log(
  `soak done: ${runs} schedules in ${seconds.toFixed(1)} s; violations: ${failures.length}; seed ${seed}\n` +
    `  simulated: ${totals.invocations} reconcile invocations, ${totals.takeovers} takeovers, ${totals.mutations} AWS mutations, ${totals.fences} self-fences, ${totals.resets} watchdog resets`,
);
process.exit(failures.length > 0 ? 1 : 0);
