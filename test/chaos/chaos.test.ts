/**
 * A short `npm run chaos` as part of `npm test`: a run of every fault kind (sandbox/chaos/faults.ts)
 * on real processes — two real agents of the shipped bundle per lane, the real controller code, the
 * emulator — each checked by the ledger of the writer application: no two nodes ever wrote at once,
 * and every entry point ended on the owner. The seed is fixed (CHAOS_SEED overrides it), so that a
 * failure names a run that `npm run chaos -- --replay SEED` plays again with its whole log.
 */
import { expect, it } from 'vitest';
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
