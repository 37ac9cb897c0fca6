/**
 * A short `npm run chaos` as part of `npm test`: a run of every fault kind (sandbox/chaos/faults.ts)
 * on real processes — two real agents of the shipped bundle per lane, the real controller code, the
 * emulator — each checked by the ledger of the writer application: no two nodes ever wrote at once,
 * and every entry point ended on the owner. The seed is fixed (CHAOS_SEED overrides it), so that a
 * failure names a run that `npm run chaos -- --replay SEED` plays again with its whole log.
 *
 * Then the checker is shown to fail when it should: the same nemesis against agents with a
 * deliberate bug (sandbox/chaos/mutants.ts, built into a bundle of its own) must report the overlap.
 */
import { expect, it } from 'vitest';
import type { RunPlan } from '../../sandbox/chaos/faults';
import { report, runChaos } from '../../sandbox/chaos/nemesis';

const SEED = Number(process.env.CHAOS_SEED ?? 20261201);
const RUNS = Number(process.env.CHAOS_RUNS ?? 10);

it(`${RUNS} chaos runs (every fault kind, seed ${SEED}) end without a violation`, async () => {
  const summary = await runChaos({
    runs: RUNS,
    lanes: 2,
    seed: SEED,
    cover: true,
    say: () => undefined,
  });
  const text = report(summary);
  console.log(text);
  const bad = summary.runs.filter((r) => r.violations.length > 0);
  expect(
    bad.map((r) => `run ${r.index} seed ${r.seed}: ${r.violations.join('; ')}\n${r.log.join('\n')}`),
    text,
  ).toEqual([]);
  expect(summary.runs).toHaveLength(RUNS);
});

it('an agent that never fences (a deliberate bug) is caught as two writers at once', async () => {
  // The owner cut off for five leases: the controller moves the group once the lease has passed;
  // the buggy agent neither fences nor lets its watchdog fire, so its writer keeps writing.
  const plan: RunPlan = {
    seed: 0,
    fault: { kind: 'partition', target: 'owner', offsetMs: 500, holdMs: 15_000 },
    perturbations: [],
  };
  const summary = await runChaos({
    runs: 1,
    lanes: 1,
    seed: 0,
    plans: [plan],
    mutant: 'agent-never-fences',
    say: () => undefined,
  });
  const text = report(summary);
  console.log(text);
  expect(summary.runs).toHaveLength(1);
  expect(summary.runs[0]!.violations.join('\n'), text).toMatch(/SPLIT BRAIN: two nodes wrote at once/);
});
