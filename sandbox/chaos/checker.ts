/**
 * The checker of `npm run chaos`: reads the shared ledger the writers append to (writer.mjs: node,
 * epoch, sequence, CLOCK_MONOTONIC ns, pid) and proves that no two nodes wrote in overlapping
 * intervals. Per (node, epoch) the interval is [first, last] entry; an interval of one node that
 * overlaps an interval of another node is a split brain, whatever the epochs. Two writers of one
 * node at once (a double start on one node) are reported too, as anomalies.
 *
 * The ledger is read incrementally (each run reads what was appended since the last), and the
 * intervals are kept for the whole session, so an overlap with an interval of an earlier run is
 * found as well.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

export interface Interval {
  node: string;
  epoch: string;
  /** CLOCK_MONOTONIC ns of the first and last line. */
  first: bigint;
  last: bigint;
  lines: number;
  pids: Set<number>;
  /** The run in which the interval began and the one of its last line. */
  firstRun: number;
  lastRun: number;
}

export interface Overlap {
  a: Interval;
  b: Interval;
  /** How long both wrote, ms. */
  ms: number;
  /** The run in which it was found. */
  run: number;
  kind: 'two-nodes' | 'one-node-two-writers';
}

const ms = (ns: bigint) => Number(ns) / 1e6;

export class LedgerChecker {
  private offset = 0;
  private rest = '';
  readonly intervals = new Map<string, Interval>();
  /** Per writer process: its own interval (two writers of one node at once). */
  private readonly writers = new Map<number, Interval>();
  private readonly reported = new Set<string>();
  private readonly touched = new Set<Interval>();
  lines = 0;
  /** Lines that do not parse (a torn write would show here). */
  malformed = 0;

  constructor(readonly file: string) {}

  /** Reads what was appended since the last call; returns the overlaps found new. */
  check(run: number): Overlap[] {
    this.touched.clear();
    this.read(run);
    const found: Overlap[] = [];
    const all = [...this.intervals.values()];
    // Only an interval that grew in this read can overlap anew.
    for (const a of this.touched) {
      for (const b of all) {
        if (a.node === b.node) continue;
        const lo = a.first > b.first ? a.first : b.first;
        const hi = a.last < b.last ? a.last : b.last;
        if (lo > hi) continue;
        const key = [`${a.node}|${a.epoch}`, `${b.node}|${b.epoch}`].sort().join('|');
        if (this.reported.has(key)) continue;
        this.reported.add(key);
        found.push({ a, b, ms: ms(hi - lo), run, kind: 'two-nodes' });
      }
    }
    const byNode = [...this.writers.entries()];
    for (let i = 0; i < byNode.length; i++) {
      for (let j = i + 1; j < byNode.length; j++) {
        const [pa, a] = byNode[i]!;
        const [pb, b] = byNode[j]!;
        if (a.node !== b.node || a.first > b.last || b.first > a.last) continue;
        const key = `pid|${pa}|${pb}`;
        if (this.reported.has(key)) continue;
        this.reported.add(key);
        const hi = a.last < b.last ? a.last : b.last;
        const lo = a.first > b.first ? a.first : b.first;
        found.push({ a, b, ms: ms(hi - lo), run, kind: 'one-node-two-writers' });
      }
    }
    return found;
  }

  /** Who wrote last, and when (for the run's log). */
  lastWriter(): Interval | undefined {
    let last: Interval | undefined;
    for (const i of this.intervals.values()) if (!last || i.last > last.last) last = i;
    return last;
  }

  private read(run: number): void {
    let size = 0;
    try {
      size = statSync(this.file).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const fd = openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.rest + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) this.add(line, run);
    } finally {
      closeSync(fd);
    }
  }

  private add(line: string, run: number): void {
    const m = /^(\S+) (\S+) (\d+) (\d+) (\d+)$/.exec(line);
    if (!m) {
      if (line.trim()) this.malformed++;
      return;
    }
    this.lines++;
    const [, node, epoch, , monoText, pidText] = m;
    const mono = BigInt(monoText!);
    const pid = Number(pidText);
    const key = `${node}|${epoch}`;
    const i = this.intervals.get(key);
    if (!i) {
      const fresh: Interval = {
        node: node!,
        epoch: epoch!,
        first: mono,
        last: mono,
        lines: 1,
        pids: new Set([pid]),
        firstRun: run,
        lastRun: run,
      };
      this.intervals.set(key, fresh);
      this.touched.add(fresh);
    } else {
      this.touched.add(i);
      if (mono < i.first) i.first = mono;
      if (mono > i.last) i.last = mono;
      i.lines++;
      i.pids.add(pid);
      i.lastRun = run;
    }
    const w = this.writers.get(pid);
    if (!w)
      this.writers.set(pid, {
        node: node!,
        epoch: epoch!,
        first: mono,
        last: mono,
        lines: 1,
        pids: new Set([pid]),
        firstRun: run,
        lastRun: run,
      });
    else {
      if (mono < w.first) w.first = mono;
      if (mono > w.last) w.last = mono;
      w.lines++;
      w.lastRun = run;
    }
  }
}

/** "node1@5 [+12.345 s .. +15.678 s, 210 lines, pid 123]" relative to `origin`. */
export function describeInterval(i: Interval, origin: bigint): string {
  const rel = (ns: bigint) => `${((Number(ns - origin) / 1e9) as number).toFixed(3)} s`;
  return `${i.node}@${i.epoch} [${rel(i.first)} .. ${rel(i.last)}, ${i.lines} lines, pid ${[...i.pids].join('/')}]`;
}
