/**
 * Ours beside keepalived, from one run: the rows of the summary table and a side-by-side table with
 * the ratio. keepalived moves a VIP route only, so the ratio is given twice: on what each switches
 * (ours: route + Elastic IP + DNS record) and on the VIP route alone (ours: the vip activation's end).
 * Where keepalived could not run, its figures quoted from an earlier measurement stand in, and every
 * row says so.
 */
import type { FailoverBenchResult, ScenarioName } from './failover';
import type { KeepalivedFallback, KeepalivedResult } from './keepalived';
import { type BenchRow, formatSpread, type Spread, spread } from './report';

const SECTION = 'keepalived (same run)';

/** keepalived 2.2.7 as measured by the issue's author (9 runs, notify with the AWS CLI): the fallback. */
export const QUOTED_KEEPALIVED = {
  crash: '3.83 / 4.47 / 4.56 s (min / median / max, 9 runs)',
  stop: '1.57 / 1.74 / 2.10 s (min / median / max, 9 runs)',
  crashMedianS: 4.47,
  stopMedianS: 1.74,
};

type Measured = KeepalivedResult;
const isMeasured = (k: KeepalivedResult | KeepalivedFallback): k is Measured => !('fallback' in k);

const seconds = (ms: readonly number[]) => spread(ms.map((x) => x / 1000));

function ours(d: FailoverBenchResult, scenario: ScenarioName): { all: Spread; vip: Spread } {
  const bs = d.runs[scenario].map((r) => r.breakdown).filter((b) => b !== undefined);
  return {
    all: seconds(bs.map((b) => b.switchedMs)),
    vip: seconds(bs.map((b) => b.entryPoints.vip?.doneMs ?? Number.NaN)),
  };
}

const ratio = (a: number, b: number) => (Number.isFinite(a) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');

/** The keepalived rows of the summary table (measured, or quoted and marked as the fallback). */
export function peerRows(d: FailoverBenchResult, k: KeepalivedResult | KeepalivedFallback): BenchRow[] {
  const crash = ours(d, 'silent-crash');
  const stop = ours(d, 'clean-stop');
  if (!isMeasured(k)) {
    return [
      {
        section: SECTION,
        metric:
          'keepalived 2.2.7 (VRRP advert 1 s, notify_master aws ec2 replace-route): silent crash -> VIP route',
        value: `${QUOTED_KEEPALIVED.crash}: QUOTED, not measured`,
        note: `fallback: ${k.fallback}; ours/keepalived median ${ratio(crash.all.median, QUOTED_KEEPALIVED.crashMedianS)}`,
      },
      {
        section: SECTION,
        metric: 'keepalived 2.2.7: clean stop (SIGTERM) -> VIP route',
        value: `${QUOTED_KEEPALIVED.stop}: QUOTED, not measured`,
        note: `fallback: ${k.fallback}; ours/keepalived median ${ratio(stop.all.median, QUOTED_KEEPALIVED.stopMedianS)}`,
      },
    ];
  }
  const kc = seconds(k.crash);
  const ks = seconds(k.stop);
  const how = `${k.version}, two namespaces, VRRP unicast over a veth pair, advert 1 s, nopreempt; notify_master: Node.js + AWS SDK ReplaceRoute in ${k.routeTables} route tables on the same emulator`;
  const script = `notify script (median): started ${k.notify.startMs.median} ms after keepalived ran it, SDK loaded ${k.notify.sdkMs.median} ms later, routes replaced in ${k.notify.callsMs.median} ms (${k.notify.totalMs.median} ms in all; the AWS CLI's own start is about 1.2 s)`;
  return [
    {
      section: SECTION,
      metric: `keepalived silent crash (SIGKILL of the master) -> VIP route on the backup (${how})`,
      value: formatSpread(kc, 's'),
      target: 'ours below keepalived: median and max',
      met: crash.all.median < kc.median && crash.all.max < kc.max,
      note: `ours (route + EIP + DNS) ${formatSpread(crash.all, 's')}: ${ratio(crash.all.median, kc.median)} of keepalived's median; VIP route alone ${ratio(crash.vip.median, kc.median)}. No fencing: a cut VRRP link makes two masters. ${script}`,
    },
    {
      section: SECTION,
      metric: 'keepalived clean stop (SIGTERM to the master) -> VIP route on the backup',
      value: formatSpread(ks, 's'),
      target: 'ours below keepalived (median)',
      met: stop.all.median < ks.median,
      note: `ours (route + EIP + DNS) ${formatSpread(stop.all, 's')}: ${ratio(stop.all.median, ks.median)} of keepalived's median; VIP route alone ${ratio(stop.vip.median, ks.median)}`,
    },
  ];
}

/** The side-by-side table (Markdown lines) for the breakdown part of the output. */
export function peerComparison(d: FailoverBenchResult, k: KeepalivedResult | KeepalivedFallback): string[] {
  const measured = isMeasured(k);
  const lines = [
    `Ours beside keepalived (${measured ? `${k.version}, measured in this run on the same emulator` : `keepalived QUOTED, not measured: ${k.fallback}`}; min / median / p95 / max):`,
    '',
    '| scenario | ours: route + EIP + DNS | ours: VIP route alone | keepalived: VIP route | ours / keepalived (median, all / route alone) | ours / keepalived (max, all) |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, scenario, kMs, quoted, quotedMedian] of [
    [
      'silent crash',
      'silent-crash',
      measured ? k.crash : [],
      QUOTED_KEEPALIVED.crash,
      QUOTED_KEEPALIVED.crashMedianS,
    ],
    [
      'clean stop',
      'clean-stop',
      measured ? k.stop : [],
      QUOTED_KEEPALIVED.stop,
      QUOTED_KEEPALIVED.stopMedianS,
    ],
  ] as const) {
    const o = ours(d, scenario);
    const ks = seconds(kMs);
    const kMedian = measured ? ks.median : quotedMedian;
    lines.push(
      `| ${name} | ${formatSpread(o.all, 's')} | ${formatSpread(o.vip, 's')} | ${measured ? formatSpread(ks, 's') : `${quoted} (quoted)`} | ${ratio(o.all.median, kMedian)} / ${ratio(o.vip.median, kMedian)} | ${measured ? ratio(o.all.max, ks.max) : 'n/a'} |`,
    );
  }
  return lines;
}
