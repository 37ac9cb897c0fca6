/**
 * Finding 6 of issue 15: the timing arithmetic that safety rests on has one owner,
 * shared/config/timing.ts. Every other file of what ships (the definition's rules, the controller,
 * the agent, the CLI) calls its functions instead of adding and subtracting leases, margins and
 * skews itself; the simulation does the same. This test reads the source: a new `leaseMs - x`
 * anywhere else fails it with the file and line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  fenceDeadlineMono,
  idleFeedAllowed,
  idleFeedBound,
  leaseCoversFeed,
  leaseEndMono,
  requiredSilenceMs,
  watchdogFits,
  watchdogProblem,
} from '../../shared/config/timing';

const REPO = path.resolve(import.meta.dirname, '../..');
/** What ships, and the simulation's model of the node (its fault generator, scenario.ts, sets ranges). */
const SHIPPED = ['shared', 'node-agent', 'controller', 'functions', 'cli', 'test/property/sim/sim-node.ts'];
const OWNER = 'shared/config/timing.ts';
/** Arithmetic on a lease, a fence margin or a clock skew (messages inside template text too). */
const ARITHMETIC =
  /\bleaseMs\s*[-+*/]\s*[\w(]|[-+*/]\s*[\w.()]*\bleaseMs\b|\bfenceMarginMs\s*[-+]\s*[\w(]|[-+]\s*[\w.()]*\bfenceMarginMs\b|\bmaxClockSkewMs\s*[-+]\s*[\w(]|[-+]\s*[\w.()]*\bmaxClockSkewMs\b/;

function files(dir: string): string[] {
  if (dir.endsWith('.ts')) return [dir];
  const out: string[] = [];
  for (const name of readdirSync(path.join(REPO, dir))) {
    const rel = path.join(dir, name);
    if (statSync(path.join(REPO, rel)).isDirectory()) out.push(...files(rel));
    else if (rel.endsWith('.ts') && !rel.endsWith('.test.ts')) out.push(rel);
  }
  return out;
}

describe('the timing the safety argument rests on (finding 6)', () => {
  it('is derived in shared/config/timing.ts only', () => {
    const offenders: string[] = [];
    for (const file of SHIPPED.flatMap(files)) {
      if (file === OWNER) continue;
      readFileSync(path.join(REPO, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (!line.trim().startsWith('*') && !line.trim().startsWith('//') && ARITHMETIC.test(line))
            offenders.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });

  it('keeps its intervals in the order the argument needs, for any timing', () => {
    // Lease 300 ms to 10 min, margin 1 ms to lease/3, watchdog up to lease - margin.
    for (let i = 0; i < 2000; i++) {
      const leaseMs = 300 + Math.floor(Math.random() * 600_000);
      const fenceMarginMs = 1 + Math.floor(Math.random() * Math.floor(leaseMs / 3));
      const t = { leaseMs, fenceMarginMs };
      const sentMono = Math.random() * 1e9;
      const r = { sentMono, ...t };
      // The fence comes before the lease ends; the controller's wait is never shorter than a lease.
      expect(fenceDeadlineMono(r)).toBeLessThan(leaseEndMono(r));
      expect(requiredSilenceMs({ maxStopMs: 0, watchdogMs: leaseMs - fenceMarginMs }, leaseMs, t, 0)).toBe(
        leaseMs,
      );
      expect(requiredSilenceMs({ maxStopMs: 7 }, leaseMs, t, 0)).toBe(leaseMs + 7);
      // An unsuitable watchdog is not relied on.
      expect(watchdogFits(leaseMs, t)).toBe(false);
      expect(requiredSilenceMs({ maxStopMs: 7, watchdogMs: leaseMs }, leaseMs, t, 0)).toBe(leaseMs + 7);
      // A lease feed at any admitted time resets the node by the lease end at the latest.
      const s = 1 + Math.floor(Math.random() * (leaseMs - fenceMarginMs));
      const feedAt = sentMono + Math.random() * leaseMs;
      if (leaseCoversFeed(feedAt, s, leaseEndMono(r)))
        expect(feedAt + s).toBeLessThanOrEqual(leaseEndMono(r));
      // An idle feed made within its announcement resets by the announced bound; a guard that
      // admits a start checks that bound against the lease end.
      const bound = idleFeedBound(feedAt, s);
      expect(idleFeedAllowed(feedAt, s, bound)).toBe(true);
      const lease = { leaseUntilMono: fenceDeadlineMono(r), fenceMarginMs, idleFeedResetBy: bound };
      expect(watchdogProblem(lease) === undefined).toBe(bound <= leaseEndMono(r));
    }
  });
});
