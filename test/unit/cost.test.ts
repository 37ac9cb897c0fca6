/** The cost model's arithmetic, the price sheet's validation and `failoverctl cost`. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { costCommand } from '../../cli/commands/cost';
import type { Io } from '../../cli/context';
import {
  applyPriceOverrides,
  type CostLine,
  configRefreshMs,
  DEFAULT_COST_INPUT,
  DEFAULT_PRICES,
  estimate,
  heartbeatTable,
  type ModeEstimate,
  perTwoNodeCluster,
  provisionedUnits,
  readUnits,
  resolveCostInput,
  SECONDS_PER_MONTH,
  writeUnits,
} from '../../cli/cost';
import { main } from '../../cli/main';
import { InvalidRequestError } from '../../shared/base/errors';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../../shared/config/rules';

const lineOf = (m: ModeEstimate, what: string): CostLine => {
  const l = m.lines.find((x) => x.what.startsWith(what));
  if (!l) throw new Error(`no line "${what}" in ${m.lines.map((x) => x.what).join(' | ')}`);
  return l;
};

describe('defaults', () => {
  it('model the cluster definition default heartbeat', () => {
    expect(DEFAULT_COST_INPUT.heartbeatIntervalMs).toBe(DEFAULT_HEARTBEAT_INTERVAL_MS);
    expect(estimate().input.heartbeatIntervalMs).toBe(DEFAULT_HEARTBEAT_INTERVAL_MS);
  });
});

describe('request units', () => {
  it('rounds writes up to 1 KB and reads up to 4 KB, halving eventually consistent reads', () => {
    expect(writeUnits(1024)).toBe(1);
    expect(writeUnits(1536)).toBe(2);
    expect(writeUnits(10)).toBe(1);
    expect(readUnits(4096, true)).toBe(1);
    expect(readUnits(4097, true)).toBe(2);
    expect(readUnits(1024, false)).toBe(0.5);
  });

  it('re-reads the cluster definition every min(30 s, max(1 s, 10 x heartbeat)) like the agent', () => {
    expect(configRefreshMs(100)).toBe(1000);
    expect(configRefreshMs(1000)).toBe(10_000);
    expect(configRefreshMs(5000)).toBe(30_000);
  });
});

describe('estimate', () => {
  it('counts 5,256,000 heartbeat writes a month for 2 nodes at 1 s: $3.285 on demand', () => {
    const e = estimate({ clusters: 1, nodesPerCluster: 2, heartbeatIntervalMs: 1000 });
    expect(SECONDS_PER_MONTH).toBe(730 * 3600);
    const renewals = lineOf(e.onDemand, 'agent heartbeat renewals');
    expect(renewals.quantity).toBe(5_256_000);
    expect(renewals.usdPerMonth).toBeCloseTo(5.256 * 0.625, 9);
    // One BatchGetItem per tick of 1 group record + 1 peer heartbeat, eventually consistent: 1 RRU.
    expect(lineOf(e.onDemand, 'agent reads of group records').quantity).toBe(5_256_000);
    // Consistent GetItem of a 4 KB definition every 10 s per agent.
    expect(lineOf(e.onDemand, 'agent re-reads of the cluster definition').quantity).toBe(2 * 262_800);
  });

  it('charges a 1.5 KB heartbeat item 2 write units per renewal', () => {
    const e = estimate({ heartbeatIntervalMs: 1000, heartbeatItemBytes: 1536 });
    expect(lineOf(e.onDemand, 'agent heartbeat renewals').quantity).toBe(2 * 5_256_000);
  });

  it('provisions 2 WCU at a 2 s heartbeat: 2 x 730 x $0.00065 = $0.949', () => {
    const e = estimate({ heartbeatIntervalMs: 2000 });
    expect(e.provisioned.capacity?.steadyWcu).toBeGreaterThan(1);
    expect(e.provisioned.capacity?.wcu).toBe(2);
    const wcu = lineOf(e.provisioned, 'write capacity');
    expect(wcu.quantity).toBe(2 * 730);
    expect(wcu.usdPerMonth).toBeCloseTo(0.949, 9);
    // Provisioned mode has no per-request DynamoDB lines.
    expect(e.provisioned.lines.some((l) => l.priceKey === 'dynamodbOnDemandWrite')).toBe(false);
  });

  it('rounds provisioned capacity up after the headroom, with at least 1 unit', () => {
    expect(provisionedUnits(2, 0)).toBe(2);
    expect(provisionedUnits(0.1 + 0.2 + 1.7, 0)).toBe(2); // no 3 from floating-point dust
    expect(provisionedUnits(2.04, 0)).toBe(3);
    expect(provisionedUnits(0.8, 0.2)).toBe(1); // 0.96
    expect(provisionedUnits(0.84, 0.2)).toBe(2); // 1.008
    expect(provisionedUnits(0, 0.2)).toBe(1);
    const tight = estimate({ heartbeatIntervalMs: 5000, headroom: 0 });
    const roomy = estimate({ heartbeatIntervalMs: 5000, headroom: 2 });
    expect(tight.provisioned.capacity?.wcu).toBe(1);
    expect(roomy.provisioned.capacity?.wcu).toBe(Math.ceil((roomy.provisioned.capacity?.steadyWcu ?? 0) * 3));
  });

  it('reconciles every cluster in one scheduled invocation a minute', () => {
    const one = estimate({ clusters: 1, changesPerNodePerHour: 0 });
    const ten = estimate({ clusters: 10, changesPerNodePerHour: 0 });
    expect(lineOf(one.onDemand, 'requests').quantity).toBe(43_800);
    expect(lineOf(ten.onDemand, 'requests').quantity).toBe(43_800);
    // ... and a steady reconcile writes nothing (no lock taken): only reads, per cluster.
    expect(ten.onDemand.lines.some((l) => /lock/.test(l.what))).toBe(false);
    // definition 1 + group records 1 + 2 heartbeats 2 + facts and requests 2 = 6 per cluster.
    expect(lineOf(ten.onDemand, 'controller reads').quantity).toBe(10 * 43_800 * 6);
    // Duration: 300 ms + 9 x 50 ms per invocation at the schedule's 512 MB.
    expect(lineOf(ten.onDemand, 'duration').quantity).toBeCloseTo(43_800 * 0.75 * 0.5, 6);
    // Stream reconciles at the stream function's 1,769 MB come on top.
    const changes = estimate({ clusters: 1, changesPerNodePerHour: 4 });
    expect(lineOf(changes.onDemand, 'duration').quantity).toBeCloseTo(
      43_800 * 0.3 * 0.5 + 2 * 4 * 730 * 0.3 * (1769 / 1024),
      6,
    );
  });

  it('adds one stream-triggered reconcile per change report', () => {
    const e = estimate({ clusters: 1, nodesPerCluster: 2, changesPerNodePerHour: 4 });
    expect(lineOf(e.onDemand, 'agent reports on change').quantity).toBe(2 * 4 * 730);
    expect(lineOf(e.onDemand, 'requests').quantity).toBe(43_800 + 5_840);
    expect(lineOf(e.onDemand, 'stream reads').usdPerMonth).toBe(0);
  });

  it('makes every total the sum of its lines, and per cluster the total over clusters', () => {
    const e = estimate({ clusters: 7 });
    for (const m of [e.onDemand, e.provisioned]) {
      const sum = m.lines.reduce((a, l) => a + l.usdPerMonth, 0);
      expect(m.totalUsdPerMonth).toBeCloseTo(sum, 12);
      expect(m.perClusterUsdPerMonth).toBeCloseTo(sum / 7, 12);
      for (const l of m.lines) expect(l.usdPerMonth).toBeCloseTo((l.quantity / l.pricePer) * l.unitPrice, 12);
    }
  });

  it('gives the per two-node cluster figure: one cluster alone, other inputs as given', () => {
    const alone = estimate({ clusters: 1, nodesPerCluster: 2, heartbeatIntervalMs: 3000 });
    expect(alone.perTwoNodeCluster).toEqual({
      onDemand: alone.onDemand.totalUsdPerMonth,
      provisioned: alone.provisioned.totalUsdPerMonth,
    });
    const many = estimate({ clusters: 50, nodesPerCluster: 3, heartbeatIntervalMs: 3000 });
    expect(many.perTwoNodeCluster).toEqual(alone.perTwoNodeCluster);
  });

  it('shows storage and point-in-time recovery as negligible', () => {
    const e = estimate({ clusters: 100 });
    expect(lineOf(e.onDemand, 'table storage').usdPerMonth).toBeLessThan(0.01);
    expect(lineOf(e.onDemand, 'point-in-time recovery').usdPerMonth).toBeLessThan(0.01);
  });

  it('drops the KMS line for a table on the AWS owned key', () => {
    expect(estimate({}).onDemand.lines.some((l) => l.service === 'KMS')).toBe(true);
    expect(estimate({ tableKmsKey: false }).onDemand.lines.some((l) => l.service === 'KMS')).toBe(false);
  });

  it('rejects impossible inputs, naming each', () => {
    expect(() => resolveCostInput({ clusters: 0, heartbeatIntervalMs: 50 })).toThrow(
      /clusters must be a whole number from 1.*heartbeatIntervalMs must be a whole number from 100 to 60000 \(got 50\)/,
    );
  });

  it('evaluates the <= $1 target per two-node cluster over heartbeat intervals', () => {
    const rows = heartbeatTable({}, DEFAULT_PRICES, [1000, 5000]);
    expect(rows.map((r) => r.heartbeatIntervalMs)).toEqual([1000, 5000]);
    const alone = perTwoNodeCluster({ heartbeatIntervalMs: 1000 });
    expect(rows[0]?.alone).toEqual(alone);
    expect(rows[0]?.meets.onDemand).toBe(alone.onDemand <= 1);
    // Slower heartbeats are cheaper in both modes, and sharing a deployment is cheaper per cluster.
    expect(rows[1]!.alone.onDemand).toBeLessThan(rows[0]!.alone.onDemand);
    expect(rows[1]!.alone.provisioned).toBeLessThan(rows[0]!.alone.provisioned);
    expect(rows[1]!.shared.provisioned).toBeLessThan(rows[1]!.alone.provisioned);
  });
});

describe('price sheet', () => {
  it('has a source and a date for every default price', () => {
    for (const p of Object.values(DEFAULT_PRICES.prices)) {
      expect(p.source).toMatch(/^https:\/\//);
      expect(p.checked).toMatch(/^\d{4}-\d{2}-\d{2}/);
    }
    expect(DEFAULT_PRICES.prices.dynamodbOnDemandWrite.usd).toBe(0.625);
    expect(DEFAULT_PRICES.prices.dynamodbOnDemandRead.usd).toBe(0.125);
  });

  it('applies overrides, as numbers or with their own source, and marks them unverified', () => {
    const sheet = applyPriceOverrides(DEFAULT_PRICES, {
      region: 'eu-west-1',
      dynamodbOnDemandWrite: 0.7,
      snsPublish: { usd: 0.6, source: 'https://example.com/sns', checked: '2027-01-10' },
    });
    expect(sheet.region).toBe('eu-west-1');
    expect(sheet.prices.dynamodbOnDemandWrite).toMatchObject({
      usd: 0.7,
      verified: 'unverified',
      per: 1_000_000,
    });
    expect(sheet.prices.snsPublish).toMatchObject({
      usd: 0.6,
      source: 'https://example.com/sns',
      checked: '2027-01-10',
    });
    expect(DEFAULT_PRICES.prices.dynamodbOnDemandWrite.usd).toBe(0.625);
    const e = estimate({ heartbeatIntervalMs: 1000 }, sheet);
    expect(lineOf(e.onDemand, 'agent heartbeat renewals').usdPerMonth).toBeCloseTo(5.256 * 0.7, 9);
  });

  it('rejects a typo with the closest known price, and every other problem at once', () => {
    let error: unknown;
    try {
      applyPriceOverrides(DEFAULT_PRICES, {
        dynamodbOnDemandWrit: 0.7,
        lambdaRequests: -1,
        snsPublish: { usd: 0.5, sorce: 'x' },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    const message = (error as Error).message;
    expect(message).toContain('3 problems');
    expect(message).toContain('unknown price "dynamodbOnDemandWrit"; did you mean "dynamodbOnDemandWrite"?');
    expect(message).toContain('lambdaRequests: expected a price >= 0');
    expect(message).toContain('snsPublish.sorce: unknown key; did you mean "source"?');
    expect(() => applyPriceOverrides(DEFAULT_PRICES, [1, 2])).toThrow(/expected a JSON object of prices/);
  });
});

function io(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => stdout.push(t), err: (t) => stderr.push(t), env: {}, now: () => 0 };
}

describe('failoverctl cost', () => {
  it('prints both modes itemized, the per two-node cluster figure, the heartbeat table and the price sources', async () => {
    const x = io();
    expect(await main(['cost', '--heartbeat-ms', '1000'], x)).toBe(0);
    const text = x.stdout.join('\n');
    expect(text).toContain('On-demand capacity');
    expect(text).toContain('Provisioned capacity (3 WCU, 3 RCU for the whole table)');
    expect(text).toContain('5,256,000 write request units @ $0.625/1M');
    expect(text).toContain('Per two-node cluster-month');
    expect(text).toMatch(/Heartbeat interval -> \$ per two-node cluster-month/);
    expect(text).toMatch(/^ {2}0\.5 s/m);
    expect(text).toMatch(/^ {2}5 s/m);
    expect(text).toContain('free tier NOT counted');
    expect(text).toContain('https://aws.amazon.com/dynamodb/pricing/on-demand/');
    expect(x.stderr).toEqual([]);
  });

  it('prints JSON with the options applied and only the chosen mode', async () => {
    const x = io();
    const code = await main(
      [
        'cost',
        '--clusters',
        '3',
        '--nodes',
        '2',
        '--heartbeat-ms',
        '2000',
        '--capacity',
        'provisioned',
        '--json',
      ],
      x,
    );
    expect(code).toBe(0);
    const out = JSON.parse(x.stdout.join('\n'));
    expect(out.input).toMatchObject({ clusters: 3, nodesPerCluster: 2, heartbeatIntervalMs: 2000 });
    expect(out.onDemand).toBeUndefined();
    expect(out.provisioned.totalUsdPerMonth).toBeGreaterThan(0);
    expect(out.heartbeatTable.map((r: { heartbeatIntervalMs: number }) => r.heartbeatIntervalMs)).toEqual(
      expect.arrayContaining([500, 1000, 2000, 5000, DEFAULT_HEARTBEAT_INTERVAL_MS]),
    );
    expect(out.prices.prices.dynamodbOnDemandWrite.source).toMatch(/^https:/);
  });

  it('rejects a bad value with exit code 2, naming the value and the fix', async () => {
    const x = io();
    expect(await main(['cost', '--clusters', 'abc', '--capacity', 'ondemand'], x)).toBe(2);
    const err = x.stderr.join('\n');
    expect(err).toContain('--clusters "abc" is not valid: expected a whole number from 1');
    expect(err).toContain('e.g. --clusters 10');
    expect(err).toContain('--capacity "ondemand" is not valid');
    expect(err).toContain('did you mean "on-demand"?');
  });

  it('rejects a prices file with a typo, and an unreadable one, with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cost-'));
    const file = join(dir, 'prices.json');
    writeFileSync(file, JSON.stringify({ dynamodbProvisionedWcuHuor: 0.0007 }));
    const x = io();
    expect(await main(['cost', '--prices', file], x)).toBe(2);
    expect(x.stderr.join('\n')).toContain('did you mean "dynamodbProvisionedWcuHour"?');
    const y = io();
    expect(await main(['cost', '--prices', join(dir, 'missing.json')], y)).toBe(2);
    expect(y.stderr.join('\n')).toContain('ENOENT');
    writeFileSync(file, JSON.stringify({ dynamodbProvisionedWcuHour: 0.0013 }));
    const z = io();
    expect(await main(['cost', '--prices', file, '--heartbeat-ms', '2000', '--json'], z)).toBe(0);
    expect(JSON.parse(z.stdout.join('\n')).provisioned.lines[0].usdPerMonth).toBeCloseTo(2 * 730 * 0.0013, 9);
  });

  it('validates its option object strictly when called directly', async () => {
    await expect(costCommand(io(), { clusters: '1', heartbeatMS: '1000' } as never)).rejects.toThrow(
      /unknown option "heartbeatMS"; did you mean "heartbeatMs"\?/,
    );
  });

  it('runs from the binary without AWS credentials', () => {
    const r = spawnSync(
      process.execPath,
      ['bin/failoverctl.js', 'cost', '--heartbeat-ms', '5000', '--json'],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '' },
        timeout: 60_000,
      },
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).input.heartbeatIntervalMs).toBe(5000);
  }, 60_000);
});
