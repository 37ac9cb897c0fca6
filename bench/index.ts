/**
 * `npm run bench`: every performance figure of the project from one run, printed as one table
 * (stdout, Markdown) with the keepalived and Pacemaker reference rows beside ours; progress goes to
 * stderr. Benchmarks print; they do not pass or fail the test suite.
 *
 *   npm run bench                       # everything (about 20 minutes on 2 cores)
 *   npm run bench -- --runs 7           # more failover runs per scenario
 *   npm run bench -- --only failover,cost
 *   npm run bench -- --only cli         # failoverctl start-up, from the sources and compiled
 *   npm run bench -- --out bench.md     # also write the table and the breakdowns to a file
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { estimate, formatUsd } from '../cli/cost';
import type { SandboxTiming } from '../sandbox/network';
import {
  defaultFenceMarginMs,
  defaultHeartbeatRetryMs,
  defaultTiming,
  renewalAfterLostMs,
  TOLERATED_LOST_RENEWALS,
} from '../shared/config/rules';
import { runAgentFootprintBench } from './agent-footprint';
import { runCliStartupBench } from './cli-startup';
import { runColdStartBench } from './cold-start';
import { runCostBench } from './cost';
import {
  breakdownLines,
  type FailoverBenchResult,
  failoverRows,
  runFailoverScenarios,
  timingFor,
} from './failover';
import { type BenchRow, renderTable, type Say, spread } from './report';
import { runScalingBench } from './scaling';

const SECTIONS = ['failover', 'tradeoff', 'scaling', 'cold-start', 'agent', 'cost', 'cli'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'tradeoff-runs': { type: 'string', default: '3' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
});
const only = values.only ? values.only.split(',') : [...SECTIONS];
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s)) {
    console.error(`--only: unknown section "${s}"; choose from ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
}
const want = (s: Section) => only.includes(s);
const runs = Number(values.runs);
const tradeoffRuns = Number(values['tradeoff-runs']);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(tradeoffRuns) || tradeoffRuns < 1) {
  console.error(
    `--runs and --tradeoff-runs take a whole number >= 1 (got ${values.runs}, ${values['tradeoff-runs']})`,
  );
  process.exit(2);
}

const started = Date.now();
const say: Say = (line) =>
  process.stderr.write(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)}s ${line}\n`);

/** What users compare us with: measured by the author on this kind of machine and emulator. */
const REFERENCE: BenchRow[] = [
  {
    section: 'reference',
    metric:
      'keepalived 2.2.7 (VRRP advert 1 s, notify_master aws ec2 replace-route): silent crash -> VIP route',
    value: '3.83 / 4.47 / 4.56 s (9 runs)',
    note: 'about 1.2 s of it is the AWS CLI starting; no fencing: a cut VRRP link gives two MASTERs',
  },
  {
    section: 'reference',
    metric: 'keepalived 2.2.7: clean stop (SIGTERM) -> VIP route',
    value: '1.57 / 1.74 / 2.10 s (9 runs)',
  },
  {
    section: 'reference',
    metric: 'Pacemaker 2 + corosync, aws-vpc-move-ip + fence_aws, default timeouts (token 3 s)',
    value: '9.0 to 9.9 s (median about 9.7 s)',
  },
  {
    section: 'reference',
    metric: 'Pacemaker 2 + corosync, AWS SAP timeouts (token 30 s, consensus 36 s)',
    value: '66 to 71 s',
  },
];

const rows: BenchRow[] = [...REFERENCE];
const details: string[] = [];
let heartbeatItemBytes: number | undefined;

/** The timing rows of the trade-off: the 3 s lease of the issue, the defaults, and longer leases. */
function tradeoffTimings(): { label: string; timing: SandboxTiming }[] {
  const d = defaultTiming();
  return [
    { label: '3 s lease', timing: timingFor({ leaseMs: 3000, heartbeatIntervalMs: 1000 }) },
    { label: 'defaults', timing: { ...d } },
    { label: '5 s lease', timing: timingFor({ leaseMs: 5000, heartbeatIntervalMs: 2500 }) },
    { label: '10 s lease', timing: timingFor({ leaseMs: 10_000, heartbeatIntervalMs: 5000 }) },
  ].map(({ label, timing }) => ({ label, timing: resolved(timing) }));
}

/** Fills the margin and retry the way the definition's loader does. */
function resolved(t: SandboxTiming): SandboxTiming {
  return {
    ...t,
    fenceMarginMs: t.fenceMarginMs ?? defaultFenceMarginMs(t.leaseMs),
    heartbeatRetryMs: t.heartbeatRetryMs ?? defaultHeartbeatRetryMs(t.heartbeatIntervalMs),
  };
}

async function failoverSection(): Promise<void> {
  const [threeSecond, defaults] = tradeoffTimings();
  say(`failover: default timing, ${runs} runs of each scenario (no schedule: stream and events only)`);
  const d = await runFailoverScenarios({ say, runs, timing: defaults!.timing, label: 'defaults' });
  heartbeatItemBytes = d.heartbeatItemBytes;
  rows.push(...failoverRows('defaults', defaults!.timing, d));
  details.push(...breakdownLines('defaults', d));
  say(`failover: 3 s lease, ${runs} silent crashes and clean stops`);
  const t = await runFailoverScenarios({
    say,
    runs,
    timing: threeSecond!.timing,
    label: '3 s lease',
    scenarios: ['silent-crash', 'clean-stop'],
  });
  rows.push(...failoverRows('3 s lease', threeSecond!.timing, t).filter((r) => !/calls/.test(r.metric)));
  details.push(...breakdownLines('3 s lease', t));
  tradeoffMeasured.set('3 s lease', t);
  tradeoffMeasured.set('defaults', d);
}

const tradeoffMeasured = new Map<string, FailoverBenchResult>();

async function tradeoffSection(): Promise<void> {
  const lines = [
    '| lease | heartbeat / retry / fence margin | silent crash -> switched (min / median / max) | DynamoDB latency tolerated: one renewal / after 3 lost | heartbeat writes per node | $ per two-node cluster-month, provisioned / on-demand (100 clusters per table) |',
    '|---|---|---|---|---|---|',
  ];
  for (const { label, timing } of tradeoffTimings()) {
    let measured = tradeoffMeasured.get(label);
    if (!measured) {
      say(`trade-off: ${label}, ${tradeoffRuns} silent crashes`);
      measured = await runFailoverScenarios({
        say,
        runs: tradeoffRuns,
        timing,
        label,
        scenarios: ['silent-crash'],
      });
    }
    const switched = spread(
      measured.runs['silent-crash'].map((r) => (r.breakdown?.switchedMs ?? Number.NaN) / 1000),
    );
    const window = timing.leaseMs - timing.fenceMarginMs!;
    const one = window - timing.heartbeatIntervalMs;
    const afterLost =
      window -
      renewalAfterLostMs(timing.heartbeatIntervalMs, timing.heartbeatRetryMs!, TOLERATED_LOST_RENEWALS);
    const cost = estimate({
      heartbeatIntervalMs: timing.heartbeatIntervalMs,
      clusters: 100,
      nodesPerCluster: 2,
      ...(heartbeatItemBytes ? { heartbeatItemBytes } : {}),
    });
    lines.push(
      `| ${timing.leaseMs / 1000} s${label === 'defaults' ? ' (default)' : ''} | ${timing.heartbeatIntervalMs} / ${timing.heartbeatRetryMs} / ${timing.fenceMarginMs} ms | ${switched.min.toFixed(2)} / ${switched.median.toFixed(2)} / ${switched.max.toFixed(2)} s (${switched.n} runs) | ${one} ms / ${afterLost} ms | ${(1000 / timing.heartbeatIntervalMs).toFixed(2)}/s | ${formatUsd(cost.provisioned.perClusterUsdPerMonth)} / ${formatUsd(cost.onDemand.perClusterUsdPerMonth)} |`,
    );
  }
  details.push('', 'Trade-off (measured in the sandbox; cost from the cost model):', '', ...lines);
}

try {
  if (want('failover')) await failoverSection();
  if (want('tradeoff')) await tradeoffSection();
  if (want('scaling')) rows.push(...(await runScalingBench({ say })));
  if (want('cold-start')) rows.push(...(await runColdStartBench({ say })));
  if (want('agent')) rows.push(...(await runAgentFootprintBench({ say })));
  if (want('cli')) rows.push(...(await runCliStartupBench({ say })));
  if (want('cost'))
    rows.push(
      ...(await runCostBench({
        say,
        heartbeatIntervalMs: defaultTiming().heartbeatIntervalMs,
        ...(heartbeatItemBytes ? { itemBytes: heartbeatItemBytes } : {}),
      })),
    );
} catch (e) {
  say(`bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
}

const output = [
  renderTable(rows),
  '',
  'Where the time goes (median run of each scenario, ms from the fault):',
  '',
  ...details.map((l) => (l.startsWith('|') || l === '' ? l : `- ${l}`)),
  '',
  `(${new Date().toISOString()}, ${((Date.now() - started) / 60_000).toFixed(1)} min)`,
].join('\n');
console.log(output);
if (values.out) writeFileSync(values.out, `${output}\n`);
