/**
 * Failover speed end to end in the sandbox: real agents, the real controller code woken by what AWS
 * would deliver (the table's stream, EC2 events), the emulator, no schedule at all. For each
 * scenario: min / median / p95 / max over the runs (20 by default: the time of a silent crash depends
 * on where the crash falls in the heartbeat, so a few runs say little about its median or tail), a breakdown of one failover (detection, decision,
 * demote, each entry point, application start, from the controller's own timeline) and the AWS
 * calls it took.
 *
 *   npx tsx bench/failover.ts [--runs 20] [--lease-ms 3000 --heartbeat-ms 500 ...]
 */
import { parseArgs } from 'node:util';
import type { SandboxTiming } from '../sandbox/network';
import { Sandbox, type ScenarioResult } from '../sandbox/sandbox';
import type { TraceEvent } from '../sandbox/trace';
import { defaultTiming } from '../shared/config/rules';
import { type BenchRow, formatSpread, type Say, spread } from './report';

/** What one failover was made of, in ms from the fault (or from the event reaching reconcile). */
export interface Breakdown {
  scenario: string;
  /** Fault -> the invocation that decided the takeover started. */
  detectionMs: number;
  trigger: string;
  /** Invocation start -> first decision written. */
  decisionMs: number;
  /** Deactivations on the old node: first start -> last end (undefined when there were none). */
  demoteMs?: number;
  /** Per entry point: when its switch completed (from the fault) and how long the call took. */
  entryPoints: Record<string, { doneMs: number; tookMs: number }>;
  /** Fault -> every entry point on the new node. */
  switchedMs: number;
  /** Start of the application on the new node (through SSM and the guard): duration and end. */
  appStartMs?: number;
  appDoneMs?: number;
  /** AWS calls of the controller between the fault and the application start. */
  calls: { total: number; dynamodb: number; entryPointReads: number; mutating: string[]; ssmPolls: number };
}

export interface FailoverRun {
  result: ScenarioResult;
  breakdown: Breakdown | undefined;
  /** Fault -> the event reached reconcile (event scenarios). */
  eventAt?: number;
}

const ENTRY_TYPES = ['vip', 'eip', 'dns'];

/** Reads one failover out of the controller's timeline. */
export function breakdownOf(
  scenario: string,
  events: readonly TraceEvent[],
  t0: number,
  from: string,
  to: string,
): Breakdown | undefined {
  const after = events.filter((e) => e.at >= t0);
  const activations = after.filter(
    (e): e is Extract<TraceEvent, { kind: 'driver' }> =>
      e.kind === 'driver' && e.action === 'activate' && e.node === to && e.ok,
  );
  const entryPoints: Breakdown['entryPoints'] = {};
  for (const type of ENTRY_TYPES) {
    const a = activations.find((e) => e.type === type);
    if (a) entryPoints[type] = { doneMs: a.end - t0, tookMs: a.end - a.at };
  }
  if (Object.keys(entryPoints).length < ENTRY_TYPES.length) return undefined;
  const switchedMs = Math.max(...Object.values(entryPoints).map((e) => e.doneMs));
  const app = activations.find((e) => e.type === 'exec');
  const end = app ? app.end : t0 + switchedMs;
  const decisions = after.filter((e) => e.kind === 'audit' && e.auditKind === 'decision');
  const firstDecision = decisions[0];
  if (!firstDecision) return undefined;
  const invoke = [...events]
    .filter((e): e is Extract<TraceEvent, { kind: 'invoke' }> => e.kind === 'invoke')
    .filter((e) => e.at <= firstDecision.at)
    .at(-1);
  const demotes = after.filter(
    (e): e is Extract<TraceEvent, { kind: 'driver' }> =>
      e.kind === 'driver' && e.action === 'deactivate' && e.node === from && e.at <= end,
  );
  const calls = after.filter(
    (e): e is Extract<TraceEvent, { kind: 'aws' }> => e.kind === 'aws' && e.at <= end,
  );
  return {
    scenario,
    detectionMs: (invoke?.at ?? t0) - t0,
    trigger: invoke ? `${invoke.trigger}${invoke.detail ? ` (${invoke.detail})` : ''}` : 'none',
    decisionMs: firstDecision.at - (invoke?.at ?? t0),
    ...(demotes.length
      ? {
          demoteMs: Math.max(...demotes.map((d) => d.end)) - Math.min(...demotes.map((d) => d.at)),
        }
      : {}),
    entryPoints,
    switchedMs,
    ...(app ? { appStartMs: app.end - app.at, appDoneMs: app.end - t0 } : {}),
    calls: {
      total: calls.length,
      dynamodb: calls.filter((c) => c.service === 'dynamodb').length,
      entryPointReads: calls.filter((c) => c.service !== 'dynamodb' && !c.mutating).length,
      mutating: calls
        .filter((c) => c.service !== 'dynamodb' && c.mutating)
        .map((c) => `${c.service}:${c.op}`),
      ssmPolls: calls.filter((c) => c.op === 'GetCommandInvocation').length,
    },
  };
}

function traceLine(e: TraceEvent, t0: number): string {
  const t = `+${String(e.at - t0).padStart(5)}`;
  switch (e.kind) {
    case 'invoke':
      return `${t} invoke ${e.trigger} ${e.detail}`;
    case 'driver':
      return `${t} ${e.action} ${e.type} on ${e.node} (${e.end - e.at} ms${e.ok ? '' : ', failed'})`;
    case 'audit':
      return `${t} audit ${e.auditKind}: ${e.message.slice(0, 160)}`;
    case 'aws':
      return `${t} ${e.service}:${e.op} ${e.end - e.at} ms`;
  }
}

export function describeBreakdown(b: Breakdown): string {
  const ep = Object.entries(b.entryPoints)
    .map(([k, v]) => `${k} done +${v.doneMs} (call ${v.tookMs})`)
    .join(', ');
  return [
    `detection +${b.detectionMs} ms via ${b.trigger}`,
    `decision ${b.decisionMs} ms`,
    b.demoteMs === undefined ? 'no demote (nothing to stop)' : `demote ${b.demoteMs} ms`,
    ep,
    b.appStartMs === undefined ? '' : `app start ${b.appStartMs} ms (done +${b.appDoneMs})`,
    `calls: ${b.calls.total} (${b.calls.dynamodb} DynamoDB, ${b.calls.entryPointReads} EC2/R53/SSM reads of which ${b.calls.ssmPolls} SSM polls, mutating: ${b.calls.mutating.join(' ') || 'none'})`,
  ]
    .filter(Boolean)
    .join('; ');
}

export interface FailoverBenchOptions {
  say: Say;
  runs: number;
  timing: SandboxTiming;
  label: string;
  /** Scenarios to run (default: all). */
  scenarios?: readonly ScenarioName[];
  /** Runs of the scenarios other than the silent crash (default: `runs`): their spread is small. */
  eventRuns?: number;
  /** Share of the controller's EC2 and Route 53 calls throttled (sandbox `throttle`). */
  throttle?: { share: number; seed?: number };
}

export type ScenarioName =
  | 'silent-crash'
  | 'instance-stop'
  | 'clean-stop'
  | 'ec2-stopping'
  | 'ec2-shutting-down'
  | 'ec2-terminated'
  | 'spot';

export const ALL_SCENARIOS: readonly ScenarioName[] = [
  'silent-crash',
  'instance-stop',
  'clean-stop',
  'ec2-stopping',
  'ec2-shutting-down',
  'ec2-terminated',
  'spot',
];

export interface FailoverBenchResult {
  runs: Record<ScenarioName, FailoverRun[]>;
  /** Controller calls answered with a throttling error (the `throttle` option). */
  throttledCalls: number;
  steadyStateMutating: number;
  steadyStateCalls: number;
  routeTables: number;
  heartbeatItemBytes: number;
}

/** Runs the scenarios in one sandbox; every run must end with one owner and no double run. */
export async function runFailoverScenarios(o: FailoverBenchOptions): Promise<FailoverBenchResult> {
  const sandbox = new Sandbox({
    say: (l) => o.say(`  ${l}`),
    scheduleMs: null,
    timing: o.timing,
    ...(o.throttle ? { throttle: o.throttle } : {}),
  });
  const runs = Object.fromEntries(ALL_SCENARIOS.map((s) => [s, [] as FailoverRun[]])) as Record<
    ScenarioName,
    FailoverRun[]
  >;
  try {
    await sandbox.start();
    const first = await sandbox.waitConsistent('node1', 60_000);
    if (!Number.isFinite(first.ms)) throw new Error(`not online: ${Sandbox.describeAll(first.last)}`);
    await new Promise((r) => setTimeout(r, 2 * o.timing.heartbeatIntervalMs));

    // A steady-state reconcile (what the 1-minute schedule does when all is well).
    const steadyFrom = Date.now();
    await sandbox.reconcileNow();
    const steady = sandbox.trace
      .between(steadyFrom)
      .filter((e): e is Extract<TraceEvent, { kind: 'aws' }> => e.kind === 'aws');
    const heartbeatItemBytes = await sandbox.heartbeatItemBytes('node1');

    for (const name of o.scenarios ?? ALL_SCENARIOS.filter((n) => n !== 'instance-stop')) {
      const count = name === 'silent-crash' ? o.runs : (o.eventRuns ?? o.runs);
      for (let i = 0; i < count; i++) {
        const { owner, standby } = await sandbox.current();
        const t0 = Date.now();
        const result = await scenario(sandbox, name);
        const events = sandbox.trace.between(t0 - 10);
        const breakdown = breakdownOf(name, events, t0, owner.name, standby.name);
        const eventInvoke = events.find((e) => e.kind === 'invoke' && e.trigger !== 'stream');
        runs[name].push({
          result,
          breakdown,
          ...(eventInvoke ? { eventAt: eventInvoke.at - t0 } : {}),
        });
        o.say(
          `${o.label} ${name} #${i + 1}: ${result.ok ? 'ok' : 'FAILED'} ${breakdown ? describeBreakdown(breakdown) : result.detail}`,
        );
        if (process.env.BENCH_TRACE) for (const e of events) o.say(`    ${traceLine(e, t0)}`);
        if (!result.ok) throw new Error(`${name} failed: ${result.detail}`);
      }
    }
    return {
      runs,
      throttledCalls: sandbox.throttledCalls,
      steadyStateMutating: steady.filter((c) => c.mutating && c.service !== 'dynamodb').length,
      steadyStateCalls: steady.length,
      routeTables: sandbox.net.routeTables.length,
      heartbeatItemBytes,
    };
  } finally {
    await sandbox.stop();
  }
}

function scenario(sandbox: Sandbox, name: ScenarioName): Promise<ScenarioResult> {
  switch (name) {
    case 'silent-crash':
      return sandbox.silentCrash();
    case 'instance-stop':
      return sandbox.instanceStop();
    case 'clean-stop':
      return sandbox.cleanStop();
    case 'ec2-stopping':
      return sandbox.instanceStateEvent('stopping');
    case 'ec2-shutting-down':
      return sandbox.instanceStateEvent('shutting-down');
    case 'ec2-terminated':
      return sandbox.instanceStateEvent('terminated');
    case 'spot':
      return sandbox.spotWarning();
  }
}

const s = (ms: number[]) => spread(ms.map((x) => x / 1000));
const median = (xs: number[]) => spread(xs).median;

/** The rows of the summary table for one timing configuration. */
export function failoverRows(label: string, timing: SandboxTiming, r: FailoverBenchResult): BenchRow[] {
  const section = 'failover (sandbox)';
  const rows: BenchRow[] = [];
  const switched = (name: ScenarioName) =>
    r.runs[name].map((x) => x.breakdown?.switchedMs ?? Number.NaN).filter(Number.isFinite);
  const of = (name: ScenarioName) => r.runs[name].map((x) => x.breakdown).filter((b) => b !== undefined);
  const cfg = `lease ${timing.leaseMs / 1000} s, heartbeat ${timing.heartbeatIntervalMs} ms, fence margin ${timing.fenceMarginMs} ms`;

  if (r.runs['silent-crash'].length) {
    const v = s(switched('silent-crash'));
    // Issue 20: at the defaults a median of 3.8 s and a maximum of 4.6 s (below keepalived's median
    // on every run); at a 3 s lease a median of 3.2 s.
    const short = timing.leaseMs <= 3000;
    const target = short ? { median: 3.2 } : { median: 3.8, max: 4.6 };
    const bs = of('silent-crash');
    rows.push({
      section,
      metric: `silent crash (agent + app SIGKILLed) -> route+EIP+DNS on standby, ${label} (${cfg})`,
      value: formatSpread(v, 's'),
      target: `median <= ${target.median.toFixed(1)} s${target.max ? `, max <= ${target.max.toFixed(1)} s` : ''}`,
      met: v.median <= target.median && (target.max === undefined || v.max <= target.max),
      note: `lease wait + report: ${median(bs.map((b) => b.detectionMs))} ms, decision ${median(bs.map((b) => b.decisionMs))} ms, switch ${median(bs.map((b) => b.switchedMs - b.detectionMs - b.decisionMs))} ms (medians); app start ${median(bs.map((b) => b.appStartMs ?? Number.NaN))} ms more`,
    });
  }
  if (r.runs['clean-stop'].length) {
    const v = s(switched('clean-stop'));
    const bs = of('clean-stop');
    rows.push({
      section,
      metric: `clean stop (SIGTERM to the agent) -> switched, ${label}`,
      value: formatSpread(v, 's'),
      target: 'median <= 1.5 s',
      met: v.median <= 1.5,
      note: `agent stops app + leaving report ${median(bs.map((b) => b.detectionMs))} ms, decision ${median(bs.map((b) => b.decisionMs))} ms; app start ${median(bs.map((b) => b.appStartMs ?? Number.NaN))} ms more`,
    });
  }
  for (const name of ['ec2-stopping', 'ec2-shutting-down', 'ec2-terminated'] as const) {
    if (!r.runs[name].length) continue;
    const fromEvent = r.runs[name]
      .map((x) => (x.breakdown && x.eventAt !== undefined ? x.breakdown.switchedMs - x.eventAt : Number.NaN))
      .filter(Number.isFinite);
    const v = s(fromEvent);
    const bs = of(name);
    rows.push({
      section,
      metric: `EC2 ${name.slice(4)} event reaches reconcile -> switched, ${label}`,
      value: formatSpread(v, 's'),
      target: '<= 2 s',
      met: v.max <= 2,
      note: `${bs[0]?.demoteMs === undefined ? 'no demote (instance gone)' : `demote through SSM ${median(bs.map((b) => b.demoteMs ?? Number.NaN))} ms`}; app start shown apart: ${median(bs.map((b) => b.appStartMs ?? Number.NaN))} ms`,
    });
  }
  if (r.runs.spot.length) {
    const done = r.runs.spot.map((x) => x.breakdown?.appDoneMs ?? Number.NaN).filter(Number.isFinite);
    const v = s(done);
    rows.push({
      section,
      metric: `Spot interruption warning -> switchover completed (app running on the new node), ${label}`,
      value: formatSpread(v, 's'),
      target: '<= 10 s',
      met: v.max <= 10,
    });
  }
  const all = ALL_SCENARIOS.flatMap((n) => of(n).map((b) => ({ n, b })));
  const worstMutating = Math.max(...all.map((x) => x.b.calls.mutating.length));
  rows.push({
    section,
    metric: `EC2/Route 53/SSM mutating calls per failover (${r.routeTables} route tables)`,
    value: `${worstMutating} at most (${[...new Set(all.map((x) => x.b.calls.mutating.length))].sort().join(', ')} seen)`,
    target: `<= route tables + 4 = ${r.routeTables + 4}`,
    met: worstMutating <= r.routeTables + 4,
    note: `all calls per failover incl. DynamoDB and reads: ${spread(all.map((x) => x.b.calls.total)).median} median, SSM polls ${spread(all.map((x) => x.b.calls.ssmPolls)).median} median`,
  });
  rows.push({
    section,
    metric: 'mutating calls in a steady-state reconcile',
    value: `${r.steadyStateMutating} (of ${r.steadyStateCalls} calls)`,
    target: '0',
    met: r.steadyStateMutating === 0,
  });
  return rows;
}

/** min / median / p95 / max of a sample, in seconds. */
function distribution(ms: number[]): string {
  const v = ms.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return 'no successful run';
  const at = (q: number) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]! / 1000;
  return `${(v[0]! / 1000).toFixed(2)} / ${spread(v.map((x) => x / 1000)).median.toFixed(2)} / ${at(0.95).toFixed(2)} / ${(v.at(-1)! / 1000).toFixed(2)} s (${v.length} runs)`;
}

/**
 * Failovers with and without throttling side by side: each scenario's switch time (fault to every
 * entry point on the new node) unthrottled and with `share` of the controller's EC2 and Route 53
 * calls answered with throttling errors; the target is 2x the unthrottled median.
 */
export function throttledRows(
  share: number,
  plain: FailoverBenchResult,
  throttled: FailoverBenchResult & { throttledCalls: number },
): BenchRow[] {
  const section = 'failover under throttling (sandbox)';
  const rows: BenchRow[] = [];
  for (const name of ['silent-crash', 'instance-stop'] as const) {
    const base = plain.runs[name].map((x) => x.breakdown?.switchedMs ?? Number.NaN);
    const hit = throttled.runs[name].map((x) => x.breakdown?.switchedMs ?? Number.NaN);
    if (!base.some(Number.isFinite) || !hit.some(Number.isFinite)) continue;
    const baseMedian = spread(base).median;
    const hitMedian = spread(hit).median;
    rows.push({
      section,
      metric: `${name === 'silent-crash' ? 'silent crash' : 'instance stop (StopInstances: EC2 event, SIGTERM, stopped)'} -> switched: unthrottled | ${Math.round(share * 100)} % of EC2/Route 53 calls throttled (min / median / p95 / max)`,
      value: `${distribution(base)} | ${distribution(hit)}`,
      target: `throttled median <= 2x unthrottled (${((2 * baseMedian) / 1000).toFixed(2)} s)`,
      met: hitMedian <= 2 * baseMedian,
      note: `x${(hitMedian / baseMedian).toFixed(2)}; ${throttled.throttledCalls} calls throttled in the throttled runs (RequestLimitExceeded / Throttling, seeded), retried by the SDK within 100-200 ms and then by reconcile with backoff`,
    });
  }
  return rows;
}

/** The typical breakdown (the median run by switch time) of each scenario, as text lines. */
export function breakdownLines(label: string, r: FailoverBenchResult): string[] {
  const out: string[] = [];
  for (const name of ALL_SCENARIOS) {
    const bs = r.runs[name].map((x) => x.breakdown).filter((b) => b !== undefined);
    if (!bs.length) continue;
    const sorted = [...bs].sort((a, b) => a.switchedMs - b.switchedMs);
    const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
    out.push(`${label} ${name} (median run): ${describeBreakdown(mid)}`);
  }
  return out;
}

export function timingFor(overrides: Partial<SandboxTiming> = {}): SandboxTiming {
  const d = defaultTiming();
  return { ...d, ...overrides };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      'lease-ms': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'fence-margin-ms': { type: 'string' },
      scenarios: { type: 'string' },
    },
  });
  const overrides: Partial<SandboxTiming> = {};
  if (values['lease-ms']) overrides.leaseMs = Number(values['lease-ms']);
  if (values['heartbeat-ms']) overrides.heartbeatIntervalMs = Number(values['heartbeat-ms']);
  if (values['fence-margin-ms']) overrides.fenceMarginMs = Number(values['fence-margin-ms']);
  const timing = timingFor(overrides);
  const say: Say = (l) => process.stderr.write(`${l}\n`);
  const result = await runFailoverScenarios({
    say,
    runs: Number(values.runs),
    timing,
    label: 'custom',
    ...(values.scenarios ? { scenarios: values.scenarios.split(',') as ScenarioName[] } : {}),
  });
  for (const l of breakdownLines('custom', result)) console.log(l);
  for (const row of failoverRows('custom', timing, result))
    console.log(`${row.metric}: ${row.value} ${row.note ?? ''}`);
  process.exit(0);
}
