/**
 * `npm run chaos`: the nemesis. Starts one emulator, builds the agent bundle once, starts `lanes`
 * sandbox clusters on that emulator, and hands runs to whichever lane is free; each run draws its
 * plan from its own seed (faults.ts), injects it on real processes, heals it, waits until one owner
 * holds every entry point, and checks the shared ledger (checker.ts).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain ESM script without type declarations
import { buildAgent } from '../../scripts/agent-build.mjs';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from '../../scripts/emulator.mjs';
// @ts-expect-error plain ESM script without type declarations
import { ensureFaketime } from '../../scripts/install-faketime.mjs';
import {
  FAULT_KINDS,
  type FaultKind,
  PERTURBATION_KINDS,
  planRun,
  type RunPlan,
  sessionPlan,
} from './faults';
import { ChaosLane, PLAN_TIMING, type RunResult } from './lane';
import { type AgentMutant, agentMutant, mutantPlugin } from './mutants';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ChaosOptions {
  runs: number;
  lanes: number;
  /** The session's seed: run i plays the plan of runSeed(seed, i). */
  seed: number;
  /** Play only the run with this seed (its full log is printed). */
  replay?: number;
  /** Play these plans (tests that need one fault exactly; `runs` and `seed` are then ignored). */
  plans?: readonly RunPlan[];
  /** Run an agent with this deliberate bug (mutants.ts): the checker must catch it. */
  mutant?: string;
  /** Progress lines. */
  say: (line: string) => void;
  /** Called as each run ends. */
  onRun?: (r: RunResult) => void;
  /** Keep the work directory (agent logs, ledgers). */
  keep?: boolean;
  /** Run i's fault is the (i mod n)-th kind, so that a short session covers every kind. */
  cover?: boolean;
  /** Hand out no new run after this many ms from the start (runs under way finish). */
  budgetMs?: number;
}

export interface ChaosSummary {
  runs: RunResult[];
  /** Runs asked for (more than `runs` when the time budget ran out). */
  planned: number;
  wallMs: number;
  lanes: number;
  seed: number;
  /** Whether wall clocks could jump (libfaketime found). */
  faketime: boolean;
  /** Worst lateness of an emulated watchdog reset, ms. */
  maxResetLateMs: number;
  workDir: string;
  /** The agents ran this deliberate bug (mutants.ts). */
  mutant?: AgentMutant;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosSummary> {
  const started = Date.now();
  // Every decision and action of the controllers goes into the run's log (printed for a violation).
  process.env.SANDBOX_VERBOSE = '1';
  const root = mkdtempSync(join(tmpdir(), 'failover-chaos-'));
  let faketime: string | undefined;
  try {
    faketime = ensureFaketime({ log: (l: string) => o.say(l) });
  } catch (e) {
    o.say(`libfaketime could not be installed: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!faketime) o.say('without libfaketime the clock-jump fault injects nothing (counted, not skipped)');
  const emulator = await startEmulator({
    endpoint: process.env.SANDBOX_EMULATOR_URL,
    log: (l: string) => o.say(l),
  });
  o.say('building the agent bundle once (npm run build:agent)...');
  const mutant = o.mutant === undefined ? undefined : agentMutant(o.mutant);
  if (mutant) o.say(`the agents run a DELIBERATE BUG, mutant ${mutant.name}: ${mutant.breaks}`);
  const agentScript = (
    await buildAgent(join(root, 'failover-agent.mjs'), {
      plugins: mutant ? [mutantPlugin(mutant, REPO)] : [],
    })
  ).outfile as string;
  // SSM runs it as the failover-agent command.
  chmodSync(agentScript, 0o755);

  const plans: RunPlan[] =
    o.replay !== undefined
      ? [planRun(o.replay, PLAN_TIMING)]
      : o.plans !== undefined
        ? [...o.plans]
        : Array.from({ length: o.runs }, (_, i) => sessionPlan(o.seed, i, PLAN_TIMING, o.cover));
  const laneCount = Math.max(1, Math.min(o.lanes, plans.length));
  const lanes: ChaosLane[] = [];
  const results: RunResult[] = [];
  try {
    // One after another: each builds its account in the emulator and waits for its agents.
    for (let i = 0; i < laneCount; i++) {
      const lane = new ChaosLane({
        index: i + 1,
        endpoint: emulator.endpoint,
        agentScript,
        faketime,
        root,
        say: o.say,
        verbose: o.replay !== undefined,
      });
      try {
        await lane.start();
        lanes.push(lane);
      } catch (e) {
        // A loaded machine may keep a lane from starting; the others take its runs.
        o.say(`lane ${i + 1} left out: ${(e as Error).message.split('\n')[0]}`);
        await lane.stop().catch(() => undefined);
        if (i === laneCount - 1 && lanes.length === 0) throw e;
      }
    }
    if (lanes.length === 0) throw new Error('no lane started');
    let next = 0;
    const within = () => o.budgetMs === undefined || Date.now() - started < o.budgetMs;
    await Promise.all(
      lanes.map(async (lane) => {
        while (next < plans.length && within()) {
          const index = next++;
          const r = await lane.run(index, plans[index]!);
          results.push(r);
          o.onRun?.(r);
        }
      }),
    );
  } finally {
    await Promise.allSettled(lanes.map((l) => l.stop()));
    await emulator.stop();
    if (!o.keep) rmSync(root, { recursive: true, force: true });
  }
  results.sort((a, b) => a.index - b.index);
  if (results.length < plans.length)
    o.say(`time budget spent: ${results.length} of ${plans.length} runs played`);
  return {
    planned: plans.length,
    runs: results,
    wallMs: Date.now() - started,
    lanes: lanes.length,
    seed: o.seed,
    faketime: faketime !== undefined,
    maxResetLateMs: Math.max(0, ...lanes.map((l) => l.maxResetLateMs)),
    workDir: root,
    ...(mutant ? { mutant } : {}),
  };
}

/** min / median / p95 / max of a list (nearest rank). */
export function spread(values: readonly number[]): { min: number; median: number; p95: number; max: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
  return { min: v[0]!, median: at(0.5), p95: at(0.95), max: v[v.length - 1]! };
}

/** The closing report: runs, faults by kind with recovery times, violations with their seeds. */
export function report(s: ChaosSummary): string {
  const out: string[] = [];
  const bad = s.runs.filter((r) => r.violations.length > 0);
  if (s.mutant) out.push(`DELIBERATE BUG in the agents, mutant ${s.mutant.name}: ${s.mutant.breaks}`);
  out.push(
    `chaos: ${s.runs.length}${s.planned > s.runs.length ? ` of ${s.planned} (time budget spent)` : ''} runs on ${s.lanes} lane(s) in ${(s.wallMs / 1000).toFixed(0)} s (session seed ${s.seed}), ${bad.length} with violations`,
  );
  out.push('');
  out.push(
    '| fault | runs | service disrupted | owner moved | service back, s: min | median | p95 | max | violations |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|');
  const row = (name: string, runs: RunResult[]) => {
    const times = runs
      .filter((r) => r.disrupted)
      .map((r) => r.recoveredMs / 1000)
      .filter(Number.isFinite);
    const t = times.length > 0 ? spread(times) : undefined;
    const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));
    const moved = runs.filter((r) => r.to !== null && r.to !== r.from).length;
    out.push(
      `| ${name} | ${runs.length} | ${runs.filter((r) => r.disrupted).length} | ${moved} | ${f(t?.min)} | ${f(t?.median)} | ${f(t?.p95)} | ${f(t?.max)} | ${runs.filter((r) => r.violations.length > 0).length} |`,
    );
  };
  for (const kind of FAULT_KINDS as readonly FaultKind[]) {
    const runs = s.runs.filter((r) => r.plan.fault.kind === kind);
    if (runs.length > 0) row(kind, runs);
  }
  for (const kind of PERTURBATION_KINDS) {
    const runs = s.runs.filter((r) => r.plan.perturbations.some((p) => p.kind === kind));
    if (runs.length > 0) row(`+ ${kind}`, runs);
  }
  row('all', s.runs);
  out.push('');
  const sum = (f: (r: RunResult) => number) => s.runs.reduce((a, r) => a + f(r), 0);
  out.push(
    `runs ${s.runs.length}; takeovers (owner moved) ${s.runs.filter((r) => r.to !== null && r.to !== r.from).length}; overlaps: two nodes writing at once ${sum((r) => r.overlaps.twoNodes)}, two writers on one node ${sum((r) => r.overlaps.oneNode)}; runs not converged ${s.runs.filter((r) => r.stuck).length}; session seed ${s.seed}`,
  );
  out.push('');
  out.push(
    'Service back: from the fault to the moment one owner held the record (Online), every entry point (both routes, the EIP, the record), the VIP on its interface and the only running writer, for good (the run ends once that and both agents renewing held for a heartbeat), over the runs whose service was seen disrupted (polled every 200 ms). "+" rows are runs that had that event perturbation on top of their fault.',
  );
  if (!s.faketime) out.push('libfaketime was missing: clock-jump runs injected nothing.');
  out.push(
    `Worst lateness of an emulated watchdog reset (its 5 ms polling, and the machine): ${s.maxResetLateMs.toFixed(0)} ms.`,
  );
  if (bad.length > 0) {
    out.push('');
    out.push(`VIOLATIONS (${bad.length} runs; replay one with npm run chaos -- --replay SEED):`);
    for (const r of bad) {
      out.push(`  run ${r.index} seed ${r.seed} (${r.plan.fault.kind}):`);
      for (const v of r.violations) out.push(`    - ${v}`);
    }
  }
  const noted = s.runs.filter((r) => r.notes.length > 0);
  if (noted.length > 0) {
    out.push('');
    out.push('notes:');
    for (const r of noted) for (const n of r.notes) out.push(`  run ${r.index} seed ${r.seed}: ${n}`);
  }
  return out.join('\n');
}
