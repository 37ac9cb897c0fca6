/**
 * `failoverctl cost`: the monthly AWS cost of N clusters x M nodes at a heartbeat interval, itemized,
 * on-demand and provisioned, from the cost model in cli/cost (pure; no AWS call, no credentials).
 */

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { closest } from '../../shared/base/did-you-mean';
import { InvalidRequestError } from '../../shared/base/errors';
import type { Io } from '../context';
import {
  applyPriceOverrides,
  type CapacityMode,
  type CostEstimate,
  type CostInput,
  type CostLine,
  DEFAULT_PRICES,
  estimate,
  formatUsd,
  HEARTBEAT_TABLE_MS,
  HOURS_PER_MONTH,
  heartbeatTable,
  type ModeEstimate,
  PRICE_KEYS,
  type PriceSheet,
  TARGET_USD_PER_TWO_NODE_CLUSTER,
} from '../cost';

/** The options as commander hands them over (strings; flags as booleans). */
const optionsSchema = z.strictObject({
  clusters: z.string().optional(),
  nodes: z.string().optional(),
  groups: z.string().optional(),
  heartbeatMs: z.string().optional(),
  itemBytes: z.string().optional(),
  capacity: z.string().optional(),
  reconcileMs: z.string().optional(),
  changesPerHour: z.string().optional(),
  transitions: z.string().optional(),
  headroom: z.string().optional(),
  metrics: z.string().optional(),
  prices: z.string().optional(),
  json: z.boolean().optional(),
});

export type CostOptions = z.input<typeof optionsSchema>;

const CAPACITIES = ['on-demand', 'provisioned', 'both'] as const;

const SHARED_CLUSTERS = 100;

export async function costCommand(io: Io, options: CostOptions): Promise<number> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys')
        return i.keys
          .map((k) => {
            const s = closest(k, Object.keys(optionsSchema.shape), { ignoreCase: true });
            return `unknown option "${k}"${s ? `; did you mean "${s}"?` : ''}`;
          })
          .join('; ');
      return `${i.path.join('.')}: ${i.message}`;
    });
    throw new InvalidRequestError(`cost: ${problems.join('; ')}`);
  }
  const o = parsed.data;
  const { input, capacity } = parseOptions(o);
  const prices = o.prices ? await loadPrices(o.prices) : DEFAULT_PRICES;
  const e = estimate(input, prices);
  const alone = e.perTwoNodeCluster;
  const table = heartbeatTable(
    input,
    prices,
    [...new Set([...HEARTBEAT_TABLE_MS, e.input.heartbeatIntervalMs])].sort((a, b) => a - b),
    SHARED_CLUSTERS,
  );
  const modes = capacity === 'both' ? (['on-demand', 'provisioned'] as const) : ([capacity] as const);

  if (o.json) {
    io.out(
      JSON.stringify(
        {
          input: e.input,
          region: e.region,
          month: { hours: HOURS_PER_MONTH },
          load: e.load,
          ...(modes.includes('on-demand') ? { onDemand: e.onDemand } : {}),
          ...(modes.includes('provisioned') ? { provisioned: e.provisioned } : {}),
          perTwoNodeClusterMonth: alone,
          target: { usdPerTwoNodeClusterMonth: TARGET_USD_PER_TWO_NODE_CLUSTER },
          heartbeatTable: table,
          notes: e.notes,
          prices,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  io.out(renderCost(e, prices, modes, alone, table));
  return 0;
}

function parseOptions(o: z.output<typeof optionsSchema>): {
  input: Partial<CostInput>;
  capacity: (typeof CAPACITIES)[number];
} {
  const problems: string[] = [];
  const input: Partial<CostInput> = {};
  const num = (
    flag: string,
    raw: string | undefined,
    key: keyof CostInput,
    opts: { min: number; max: number; integer: boolean; example: string },
  ) => {
    if (raw === undefined) return;
    const v = Number(raw);
    const kind = opts.integer ? 'a whole number' : 'a number';
    if (
      raw.trim() === '' ||
      !Number.isFinite(v) ||
      (opts.integer && !Number.isInteger(v)) ||
      v < opts.min ||
      v > opts.max
    )
      problems.push(
        `--${flag} "${raw}" is not valid: expected ${kind} from ${opts.min} to ${opts.max.toLocaleString('en-US')}, e.g. --${flag} ${opts.example}`,
      );
    else (input as Record<string, number>)[key] = v;
  };
  num('clusters', o.clusters, 'clusters', { min: 1, max: 1_000_000, integer: true, example: '10' });
  num('nodes', o.nodes, 'nodesPerCluster', { min: 1, max: 100, integer: true, example: '2' });
  num('groups', o.groups, 'groupsPerCluster', { min: 0, max: 100, integer: true, example: '1' });
  num('heartbeat-ms', o.heartbeatMs, 'heartbeatIntervalMs', {
    min: 100,
    max: 60_000,
    integer: true,
    example: '2000',
  });
  num('item-bytes', o.itemBytes, 'heartbeatItemBytes', {
    min: 1,
    max: 409_600,
    integer: true,
    example: '1024',
  });
  num('reconcile-ms', o.reconcileMs, 'reconcileMs', { min: 1, max: 900_000, integer: false, example: '300' });
  num('changes-per-hour', o.changesPerHour, 'changesPerNodePerHour', {
    min: 0,
    max: 3_600_000,
    integer: false,
    example: '4',
  });
  num('transitions', o.transitions, 'transitionsPerClusterPerMonth', {
    min: 0,
    max: 1_000_000,
    integer: false,
    example: '4',
  });
  num('headroom', o.headroom, 'headroom', { min: 0, max: 100, integer: false, example: '0.2' });
  if (o.metrics !== undefined) {
    if (o.metrics === 'detailed' || o.metrics === 'basic') input.detailedMetrics = o.metrics === 'detailed';
    else
      problems.push(
        `--metrics "${o.metrics}" is not valid: use detailed or basic (serverless.yml param metrics)`,
      );
  }
  const capacity = o.capacity ?? 'both';
  if (!(CAPACITIES as readonly string[]).includes(capacity)) {
    const s = closest(capacity, CAPACITIES, { ignoreCase: true });
    problems.push(
      `--capacity "${capacity}" is not valid: use ${CAPACITIES.join(', ')}${s ? ` (did you mean "${s}"?)` : ''}`,
    );
  }
  if (problems.length > 0) throw new InvalidRequestError(problems.join('\n'));
  return { input, capacity: capacity as (typeof CAPACITIES)[number] };
}

async function loadPrices(file: string): Promise<PriceSheet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InvalidRequestError(
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; pass a JSON file of prices with --prices <file>`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InvalidRequestError(
      `${file} is not valid JSON (${(e as Error).message}); expected e.g. { "dynamodbOnDemandWrite": 0.625 } with keys among: ${PRICE_KEYS.join(', ')}`,
    );
  }
  return applyPriceOverrides(DEFAULT_PRICES, json, file);
}

// ---------------------------------------------------------------------------------------------
// Text output

function renderCost(
  e: CostEstimate,
  prices: PriceSheet,
  modes: readonly CapacityMode[],
  alone: { onDemand: number; provisioned: number },
  table: ReturnType<typeof heartbeatTable>,
): string {
  const i = e.input;
  const out: string[] = [];
  out.push(
    `Monthly cost of ${i.clusters} cluster${i.clusters === 1 ? '' : 's'} x ${i.nodesPerCluster} node${i.nodesPerCluster === 1 ? '' : 's'} x ${i.groupsPerCluster} group${i.groupsPerCluster === 1 ? '' : 's'}, heartbeat every ${seconds(i.heartbeatIntervalMs)}, heartbeat item ${i.heartbeatItemBytes} bytes`,
    `(${e.region}, USD, ${HOURS_PER_MONTH}-hour month, list prices, free tier not applied)`,
  );
  for (const mode of modes) {
    const m = mode === 'on-demand' ? e.onDemand : e.provisioned;
    out.push('', ...renderMode(m, i.clusters));
    if (mode === 'provisioned') {
      out.push('  steady load behind the capacity (units per second):');
      for (const s of e.load)
        out.push(
          `    ${s.perSecond.toFixed(3).padStart(9)} ${s.kind === 'write' ? 'WCU' : 'RCU'}/s  ${s.what}`,
        );
    }
  }
  out.push(
    '',
    'Per two-node cluster-month (one cluster alone in its deployment, every fixed cost included):',
    `  ${modes.map((m) => `${m} ${formatUsd(m === 'on-demand' ? alone.onDemand : alone.provisioned)}`).join('   ')}   (target <= ${formatUsd(TARGET_USD_PER_TWO_NODE_CLUSTER)})`,
    '',
    `Heartbeat interval -> $ per two-node cluster-month (other settings as above):`,
  );
  const head = [
    'heartbeat',
    ...modes.map((m) => `${m} alone`),
    ...modes.map((m) => `${m}, ${SHARED_CLUSTERS} share`),
  ];
  const rows = table.map((r) => [
    seconds(r.heartbeatIntervalMs),
    ...modes.map((m) => {
      const v = m === 'on-demand' ? r.alone.onDemand : r.alone.provisioned;
      const ok = m === 'on-demand' ? r.meets.onDemand : r.meets.provisioned;
      return `${formatUsd(v)}${ok ? ' (<= $1)' : ''}`;
    }),
    ...modes.map((m) => formatUsd(m === 'on-demand' ? r.shared.onDemand : r.shared.provisioned)),
  ]);
  out.push(...columns([head, ...rows]).map((l) => `  ${l}`));
  for (const m of modes) {
    const ok = table.filter((r) => (m === 'on-demand' ? r.meets.onDemand : r.meets.provisioned));
    out.push(
      `  ${m}: ${ok.length > 0 ? `meets <= $1 at ${ok.map((r) => seconds(r.heartbeatIntervalMs)).join(', ')}` : `no interval here meets <= $1`}`,
    );
  }
  out.push('', 'Notes:', ...e.notes.map((n) => `  - ${n}`));
  out.push(
    '',
    `Prices (${prices.region}; override any with --prices file.json). verified: stated on an AWS page;`,
    '  secondary: the AWS page renders the number client-side, corroborated by third parties; unverified: not confirmed',
  );
  const used = new Set([...e.onDemand.lines, ...e.provisioned.lines].map((l) => l.priceKey));
  const priceRows = PRICE_KEYS.filter((k) => used.has(k)).map((k) => {
    const p = prices.prices[k];
    return [
      k,
      `${usd(p.usd)} per ${p.per === 1 ? singular(p.unit) : `${perLabel(p.per)}${p.unit}`}`,
      p.verified,
      p.checked || '(date not given)',
      p.source,
    ];
  });
  out.push(...columns(priceRows).map((l) => `  ${l}`));
  return out.join('\n');
}

function renderMode(m: ModeEstimate, clusters: number): string[] {
  const title =
    m.mode === 'on-demand'
      ? 'On-demand capacity (pay per request)'
      : `Provisioned capacity (${m.capacity?.wcu} WCU, ${m.capacity?.rcu} RCU for the whole table)`;
  const rows = m.lines.map((l) => [l.service, l.what, quantity(l), formatUsd(l.usdPerMonth)]);
  rows.push(['', 'total per month', '', formatUsd(m.totalUsdPerMonth)]);
  if (clusters > 1) rows.push(['', 'per cluster', '', formatUsd(m.perClusterUsdPerMonth)]);
  return [
    title,
    ...columns([['service', 'what', 'quantity @ unit price', '$/month'], ...rows], [3]).map((l) => `  ${l}`),
  ];
}

function quantity(l: CostLine): string {
  return `${count(l.quantity)} ${l.unit} @ ${usd(l.unitPrice)}${l.pricePer === 1 ? '' : `/${perLabel(l.pricePer).trim()}`}`;
}

/** Left-aligned columns, the ones in `right` right-aligned. */
function columns(rows: string[][], right: number[] = []): string[] {
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows.map((r) =>
    r
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

function count(q: number): string {
  if (q === 0) return '0';
  if (q >= 100) return Math.round(q).toLocaleString('en-US');
  if (q >= 1) return q.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return q.toPrecision(3);
}

function usd(x: number): string {
  if (x === 0) return '$0';
  return `$${x >= 0.01 ? x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 }) : x.toPrecision(6).replace(/0+$/, '')}`;
}

/** "WCU-hours" -> "WCU-hour", "GB-seconds (arm64)" -> "GB-second (arm64)". */
function singular(unit: string): string {
  return unit.replace(/s(?=( \(|$))/, '');
}

function perLabel(per: number): string {
  if (per === 1) return '';
  if (per === 1_000_000) return '1M ';
  return `${per.toLocaleString('en-US')} `;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toLocaleString('en-US', { maximumFractionDigits: 3 })} s`;
}
