/**
 * `npm run chaos [-- --runs 200] [--lanes 3] [--seed N] [--cover] [--keep] [--quiet]`: the nemesis on real processes in
 * the sandbox (sandbox/chaos/): random, seeded faults against two real agents of the shipped bundle,
 * the real controller code and the emulator, with a writer appending to a shared ledger as the
 * application; prints the runs, the faults by kind with failover times, the violations with their
 * seeds, and exits 1 on any violation.
 *
 * --minutes M: no new run is started M minutes after the session's start (the report says how many
 * of the runs asked for were played).
 *
 * --cover: run i's fault is the (i mod n)-th kind (a short session covers every kind); --quiet:
 * only violations and the closing report.
 *
 * `npm run chaos -- --replay SEED`: plays the run of that seed alone and prints its whole log
 * (the nemesis' actions, the controller's decisions, the agents' logs): the same plan (fault,
 * target role, timing, perturbations); the processes' interleaving is the machine's.
 *
 * `--mutant NAME` (sandbox/chaos/mutants.ts): the agents run a deliberate bug, so that one can see
 * the checker catch it; the exit status is still 1 on any violation.
 */
import { parseArgs } from 'node:util';
import { report, runChaos } from '../sandbox/chaos/nemesis';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    lanes: { type: 'string', default: '3' },
    seed: { type: 'string' },
    replay: { type: 'string' },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    cover: { type: 'boolean', default: false },
    mutant: { type: 'string' },
    minutes: { type: 'string' },
  },
});
const int = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name}: expected a whole number, got "${text}"`);
    process.exit(2);
  }
  return n;
};
const replay = int('replay', values.replay);
if (replay !== undefined) process.env.SANDBOX_VERBOSE = '1';
const seed = int('seed', values.seed) ?? (Date.now() ^ (process.pid << 16)) >>> 0;
const started = Date.now();
const stamp = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
const summary = await runChaos({
  runs: int('runs', values.runs) ?? 200,
  lanes: int('lanes', values.lanes) ?? 3,
  seed,
  ...(replay !== undefined ? { replay } : {}),
  keep: values.keep,
  cover: values.cover,
  ...(values.mutant !== undefined ? { mutant: values.mutant } : {}),
  ...(values.minutes !== undefined ? { budgetMs: (int('minutes', values.minutes) ?? 0) * 60_000 } : {}),
  say: (line) => console.log(`${stamp()} ${line}`),
  onRun: (r) => {
    const verdict = r.violations.length > 0 ? 'VIOLATION' : 'ok';
    const t = Number.isFinite(r.recoveredMs) ? `${(r.recoveredMs / 1000).toFixed(2)} s` : 'n/a';
    if (replay !== undefined || r.violations.length > 0 || !values.quiet)
      console.log(
        `${stamp()} run ${String(r.index).padStart(3)} seed ${String(r.seed).padStart(10)} lane ${r.lane} ${r.plan.fault.kind.padEnd(16)} ${r.from} -> ${r.to ?? '-'} ${t.padStart(8)} ${verdict}`,
      );
    for (const v of r.violations) console.log(`         ${v}`);
    if (replay !== undefined || r.violations.length > 0) console.log(r.log.map((l) => `    ${l}`).join('\n'));
  },
});
console.log(`\n${report(summary)}`);
if (values.keep) console.log(`work directory kept: ${summary.workDir}`);
process.exit(summary.runs.some((r) => r.violations.length > 0) ? 1 : 0);
