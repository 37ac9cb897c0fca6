/**
 * Cost benchmark: figures from the cost model (cli/cost), no AWS call. A two-node cluster at the
 * given heartbeat in both capacity modes, 100 two-node clusters sharing a deployment, and the issue's
 * target of <= $1 per two-node cluster-month (checked on one cluster alone in its deployment, every
 * fixed cost included, in its cheaper capacity mode).
 */
import {
  type CostInput,
  type CostLine,
  estimate,
  formatUsd,
  heartbeatTable,
  type ModeEstimate,
  TARGET_USD_PER_TWO_NODE_CLUSTER,
} from '../cli/cost';
import type { BenchRow } from './report';

const SECTION = 'cost';

export async function runCostBench(opts: {
  say: (l: string) => void;
  heartbeatIntervalMs: number;
  itemBytes?: number;
  reconcileMs?: number;
}): Promise<BenchRow[]> {
  const base: Partial<CostInput> = {
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    ...(opts.itemBytes !== undefined ? { heartbeatItemBytes: opts.itemBytes } : {}),
    ...(opts.reconcileMs !== undefined ? { reconcileMs: opts.reconcileMs } : {}),
  };
  const hb = `${opts.heartbeatIntervalMs / 1000} s`;
  opts.say(`cost: modelling a two-node cluster and 100 clusters at heartbeat ${hb}`);
  const one = estimate({ ...base, clusters: 1, nodesPerCluster: 2 });
  const many = estimate({ ...base, clusters: 100, nodesPerCluster: 2 });
  const table = heartbeatTable(base);

  const rows: BenchRow[] = [
    {
      section: SECTION,
      metric: `two-node cluster, heartbeat ${hb}, on-demand`,
      value: `${formatUsd(one.onDemand.totalUsdPerMonth)} per month`,
      note: `largest: ${largest(one.onDemand)}; alone in its deployment (alarms, KMS included)`,
    },
    {
      section: SECTION,
      metric: `two-node cluster, heartbeat ${hb}, provisioned`,
      value: `${formatUsd(one.provisioned.totalUsdPerMonth)} per month`,
      note: `${one.provisioned.capacity?.wcu} WCU / ${one.provisioned.capacity?.rcu} RCU (steady ${one.provisioned.capacity?.steadyWcu.toFixed(2)} / ${one.provisioned.capacity?.steadyRcu.toFixed(2)} + ${(one.input.headroom * 100).toFixed(0)}% headroom); largest: ${largest(one.provisioned)}`,
    },
    {
      section: SECTION,
      metric: `100 clusters x 2 nodes, heartbeat ${hb}`,
      value: `on-demand ${formatUsd(many.onDemand.totalUsdPerMonth)} / provisioned ${formatUsd(many.provisioned.totalUsdPerMonth)} per month`,
      note: `per cluster ${formatUsd(many.onDemand.perClusterUsdPerMonth)} / ${formatUsd(many.provisioned.perClusterUsdPerMonth)}; provisioned ${many.provisioned.capacity?.wcu} WCU / ${many.provisioned.capacity?.rcu} RCU`,
    },
    {
      section: SECTION,
      metric: `two-node cluster-month in a deployment of 100 clusters (shared table, fixed costs shared), heartbeat ${hb}, provisioned`,
      value: formatUsd(many.provisioned.perClusterUsdPerMonth),
      target: `<= ${formatUsd(TARGET_USD_PER_TWO_NODE_CLUSTER)} per two-node cluster-month`,
      met: many.provisioned.perClusterUsdPerMonth <= TARGET_USD_PER_TWO_NODE_CLUSTER,
      note: 'the same target checked where a table and its fixed costs serve many clusters (the row below: one cluster alone)',
    },
  ];
  const cheapest = Math.min(one.onDemand.totalUsdPerMonth, one.provisioned.totalUsdPerMonth);
  const cheaperMode = cheapest === one.provisioned.totalUsdPerMonth ? 'provisioned' : 'on-demand';
  const meeting = (mode: 'onDemand' | 'provisioned') =>
    table
      .filter((r) => r.meets[mode])
      .map((r) => `${r.heartbeatIntervalMs / 1000} s`)
      .join(', ') || 'none';
  rows.push({
    section: SECTION,
    metric: `two-node cluster-month, heartbeat ${hb}, cheaper mode (${cheaperMode})`,
    value: formatUsd(cheapest),
    target: `<= ${formatUsd(TARGET_USD_PER_TWO_NODE_CLUSTER)} per two-node cluster-month`,
    met: cheapest <= TARGET_USD_PER_TWO_NODE_CLUSTER,
    note: `intervals meeting it (of ${table.map((r) => r.heartbeatIntervalMs / 1000).join(', ')} s): provisioned ${meeting('provisioned')}; on-demand ${meeting('onDemand')}`,
  });
  for (const r of rows) opts.say(`cost: ${r.metric}: ${r.value}`);
  return rows;
}

/** "agent heartbeat renewals (PutItem) $3.285 (5,256,000 write request units)" */
function largest(m: ModeEstimate): string {
  const top = [...m.lines].sort((a, b) => b.usdPerMonth - a.usdPerMonth)[0] as CostLine;
  return `${top.what} ${formatUsd(top.usdPerMonth)} (${Math.round(top.quantity).toLocaleString('en-US')} ${top.unit})`;
}
