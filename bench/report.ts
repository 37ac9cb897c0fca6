/**
 * The shape every benchmark returns, and the one table `npm run bench` prints. Benchmarks print
 * figures; they never decide pass/fail of the test suite (tests assert correctness, not timings).
 */

/** One printed figure. */
export interface BenchRow {
  /** Section heading, e.g. "failover (sandbox)", "reconcile scaling", "cold start", "agent", "cost". */
  section: string;
  /** What was measured, e.g. "silent crash, default timing -> route+EIP+DNS on standby". */
  metric: string;
  /** The measured value with its unit, e.g. "3.41 / 3.62 / 3.85 / 3.90 s (20 runs)" (min / median / p95 / max). */
  value: string;
  /** The target from the issue, e.g. "median <= 5.0 s"; empty for reference rows and plain facts. */
  target?: string;
  /** Whether the target was met; undefined when there is no target. */
  met?: boolean;
  /** Anything a reader needs to interpret the value (what dominates, what was excluded). */
  note?: string;
}

/** Progress output of a benchmark (stderr in `npm run bench`, so stdout is the table). */
export type Say = (line: string) => void;

export interface Spread {
  min: number;
  median: number;
  /** 95th percentile, nearest rank (with fewer than 20 values it is the maximum). */
  p95: number;
  max: number;
  n: number;
}

/**
 * min / median / p95 / max of finite values (median of an even count: the mean of the middle two;
 * p95 by nearest rank, the smallest value with at least 95 % of the values at or below it).
 */
export function spread(values: readonly number[]): Spread {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return { min: Number.NaN, median: Number.NaN, p95: Number.NaN, max: Number.NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { min: v[0]!, median, p95: percentile(v, 95), max: v[v.length - 1]!, n: v.length };
}

/** The p-th percentile of ascending `sorted` values by nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** "3.41 / 3.62 / 3.85 / 3.90 s (20 runs)": min / median / p95 / max. */
export function formatSpread(s: Spread, unit: string, digits = 2): string {
  if (s.n === 0) return 'no successful run';
  const f = (x: number) => x.toFixed(digits);
  return `${f(s.min)} / ${f(s.median)} / ${f(s.p95)} / ${f(s.max)} ${unit} (${s.n} run${s.n === 1 ? '' : 's'})`;
}

/** Renders rows as one Markdown table grouped by section (pasteable into the README). */
export function renderTable(rows: readonly BenchRow[]): string {
  const header = ['section', 'metric', 'value', 'target', 'met', 'note'];
  const cell = (s: string | undefined) => (s ?? '').replace(/\|/g, '\\|');
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const met = r.met === undefined ? '' : r.met ? 'yes' : 'NO';
    lines.push(`| ${[r.section, r.metric, r.value, r.target, met, r.note].map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}
