/**
 * The parts of `npm run chaos` (sandbox/chaos/) that need no process: a run's plan is drawn from its
 * seed alone (what `--replay SEED` plays is what the session played), the checker finds two writers
 * that overlap and only those, and the deliberate bugs still apply to the code they break.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LedgerChecker } from '../../sandbox/chaos/checker';
import { FAULT_KINDS, planRun, sessionPlan } from '../../sandbox/chaos/faults';
import { AGENT_MUTANTS } from '../../sandbox/chaos/mutants';

const TIMING = { leaseMs: 3000, heartbeatIntervalMs: 1000, stopTimeoutSec: 6 };
const dir = mkdtempSync(path.join(tmpdir(), 'chaos-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('chaos plans', () => {
  it('replay: the plan of a session run is the plan of its seed alone', () => {
    for (const cover of [false, true])
      for (let i = 0; i < 60; i++) {
        const plan = sessionPlan(424242, i, TIMING, cover);
        expect(planRun(plan.seed, TIMING)).toEqual(plan);
        if (cover) expect(plan.fault.kind).toBe(FAULT_KINDS[i % FAULT_KINDS.length]);
      }
  });
});

describe('the ledger checker', () => {
  const line = (node: string, epoch: number, ms: number, pid: number) =>
    `${node} ${epoch} 0 ${BigInt(ms) * 1_000_000n} ${pid}\n`;

  it('reports two nodes whose writes overlap, with how long, and nothing for a clean handover', () => {
    const file = path.join(dir, 'ledger');
    appendFileSync(file, '');
    const c = new LedgerChecker(file);
    // node1 writes 1000..2000 ms, node2 from 2010 ms: a clean handover.
    for (let t = 1000; t <= 2000; t += 15) appendFileSync(file, line('node1', 1, t, 11));
    for (let t = 2010; t <= 2500; t += 15) appendFileSync(file, line('node2', 2, t, 22));
    expect(c.check(0)).toEqual([]);
    // node1 comes back at its old epoch while node2 still writes: 2400..2600 overlaps 2010..2500+.
    for (let t = 2400; t <= 2600; t += 15) appendFileSync(file, line('node1', 1, t, 33));
    for (let t = 2515; t <= 2700; t += 15) appendFileSync(file, line('node2', 2, t, 22));
    const found = c.check(1);
    expect(found.some((o) => o.kind === 'two-nodes' && o.ms > 0)).toBe(true);
  });
});

describe('agent mutants (npm run chaos -- --mutant)', () => {
  it.each(AGENT_MUTANTS.map((m) => [m.name, m] as const))('%s still applies to its file', (_name, m) => {
    const text = readFileSync(path.resolve(import.meta.dirname, '../..', m.file), 'utf8');
    for (const e of m.edits) expect(text.includes(e.find), e.find).toBe(true);
  });
});
