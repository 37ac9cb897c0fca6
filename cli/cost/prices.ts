/**
 * Price sheet for the cost model (cli/cost/model.ts): every price the model multiplies by, with
 * where it comes from and when it was checked. Pure data and validation, no I/O.
 *
 * Default: us-east-1 (US East, N. Virginia), USD, list prices, free tier NOT applied. Prices change:
 * pass your own with `failoverctl cost --prices prices.json` (any subset of the keys below; see
 * {@link applyPriceOverrides}), e.g. `{ "dynamodbOnDemandWrite": 0.7 }` or
 * `{ "dynamodbOnDemandWrite": { "usd": 0.7, "source": "https://...", "checked": "2027-01-10" } }`.
 *
 * How each default was checked (2026-11-23, with the stored public pages the project's search tool
 * holds; no live AWS pricing API was reachable):
 * - `verified`: an AWS page (pricing page, developer guide, CloudFormation reference) states it.
 * - `secondary`: AWS pricing pages render their numbers client-side, so the stored copies hold the
 *   text around the price but not the number; the figure is corroborated by several independent
 *   third-party pages or repositories quoting AWS. Check it on the AWS page before relying on it.
 * - `unverified`: taken from the brief of this change; nothing found to confirm or contradict it.
 */

import { closest } from '../../shared/base/did-you-mean';
import { InvalidRequestError } from '../../shared/base/errors';

/** How far a default price was confirmed (see the module comment). */
export type Verification = 'verified' | 'secondary' | 'unverified';

export interface Price {
  /** US dollars per `per` units of `unit`. */
  usd: number;
  /** How many units `usd` buys, e.g. 1_000_000 for "per million requests". */
  per: number;
  /** The billed unit, e.g. "write request units" or "WCU-hours". */
  unit: string;
  /** Where the price is published (or, for `secondary`, where it was corroborated). */
  source: string;
  /** When it was checked or published (ISO date), with a word on which. */
  checked: string;
  verified: Verification;
  note?: string;
}

/** Every price the model uses. Zero-priced entries are kept so the output shows *why* they are free. */
export const PRICE_KEYS = [
  'dynamodbOnDemandWrite',
  'dynamodbOnDemandRead',
  'dynamodbProvisionedWcuHour',
  'dynamodbProvisionedRcuHour',
  'dynamodbStorageGbMonth',
  'dynamodbPitrGbMonth',
  'dynamodbStreamsReadByLambda',
  'lambdaRequests',
  'lambdaGbSecondArm64',
  'lambdaGbSecondX86',
  'eventbridgeAwsAndScheduledEvents',
  'eventbridgeCustomEvents',
  'snsPublish',
  'snsEmailDelivery',
  'cloudwatchLogsIngestGb',
  'cloudwatchAlarmMonth',
  'cloudwatchCustomMetricMonth',
  'cloudwatchDashboardMonth',
  'kmsRequests',
] as const;

export type PriceKey = (typeof PRICE_KEYS)[number];

export interface PriceSheet {
  region: string;
  currency: 'USD';
  prices: Record<PriceKey, Price>;
}

const DDB_ON_DEMAND = 'https://aws.amazon.com/dynamodb/pricing/on-demand/';
const DDB_PROVISIONED = 'https://aws.amazon.com/dynamodb/pricing/provisioned/';
const LAMBDA = 'https://aws.amazon.com/lambda/pricing/';
const EVENTBRIDGE = 'https://aws.amazon.com/eventbridge/pricing/';
const SNS = 'https://aws.amazon.com/sns/pricing/';
const CLOUDWATCH = 'https://aws.amazon.com/cloudwatch/pricing/';
const KMS = 'https://aws.amazon.com/kms/pricing/';
const CHECKED = '2026-11-23';

/** us-east-1 list prices (see the module comment for what `verified` means for each). */
export const DEFAULT_PRICES: PriceSheet = {
  region: 'us-east-1',
  currency: 'USD',
  prices: {
    dynamodbOnDemandWrite: {
      usd: 0.625,
      per: 1_000_000,
      unit: 'write request units',
      source: DDB_ON_DEMAND,
      checked: `${CHECKED} (in effect since the 50% on-demand price cut of 2024-11-01)`,
      verified: 'secondary',
      note: 'AWS page text found without the number; $0.625 and the 2024-11-01 cut are quoted by several third parties',
    },
    dynamodbOnDemandRead: {
      usd: 0.125,
      per: 1_000_000,
      unit: 'read request units',
      source: DDB_ON_DEMAND,
      checked: `${CHECKED} (in effect since 2024-11-01)`,
      verified: 'secondary',
      note: 'as for writes',
    },
    dynamodbProvisionedWcuHour: {
      usd: 0.00065,
      per: 1,
      unit: 'WCU-hours',
      source: DDB_PROVISIONED,
      checked: CHECKED,
      verified: 'secondary',
      note: 'not changed by the 2024-11-01 cut; quoted by many third-party sources, AWS page number not readable',
    },
    dynamodbProvisionedRcuHour: {
      usd: 0.00013,
      per: 1,
      unit: 'RCU-hours',
      source: DDB_PROVISIONED,
      checked: CHECKED,
      verified: 'secondary',
      note: 'as for WCU-hours',
    },
    dynamodbStorageGbMonth: {
      usd: 0.25,
      per: 1,
      unit: 'GB-months',
      source: DDB_ON_DEMAND,
      checked: CHECKED,
      verified: 'secondary',
      note: 'Standard table class; first 25 GB free (free tier, not applied)',
    },
    dynamodbPitrGbMonth: {
      usd: 0.2,
      per: 1,
      unit: 'GB-months',
      source: DDB_ON_DEMAND,
      checked: CHECKED,
      verified: 'unverified',
      note: 'continuous backups (point-in-time recovery) of the table size; one third-party source agrees',
    },
    dynamodbStreamsReadByLambda: {
      usd: 0,
      per: 1,
      unit: 'GetRecords calls',
      source:
        'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CostOptimization_StreamsUsage.html',
      checked: CHECKED,
      verified: 'verified',
      note: 'read requests made by AWS Lambda-based consumers of DynamoDB Streams are free',
    },
    lambdaRequests: {
      usd: 0.2,
      per: 1_000_000,
      unit: 'requests',
      source: LAMBDA,
      checked: CHECKED,
      verified: 'secondary',
      note: 'same for x86 and arm64',
    },
    lambdaGbSecondArm64: {
      usd: 0.0000133334,
      per: 1,
      unit: 'GB-seconds (arm64)',
      source: LAMBDA,
      checked: CHECKED,
      verified: 'secondary',
      note: 'first tier (up to 7.5 billion GB-s a month); serverless.yml deploys arm64',
    },
    lambdaGbSecondX86: {
      usd: 0.0000166667,
      per: 1,
      unit: 'GB-seconds (x86_64)',
      source: LAMBDA,
      checked: CHECKED,
      verified: 'secondary',
      note: 'first tier (up to 6 billion GB-s a month)',
    },
    eventbridgeAwsAndScheduledEvents: {
      usd: 0,
      per: 1,
      unit: 'events',
      source: EVENTBRIDGE,
      checked: CHECKED,
      verified: 'secondary',
      note: 'AWS management events on the default bus are free (AWS page); that scheduled rules are free too is from the brief and third parties',
    },
    eventbridgeCustomEvents: {
      usd: 1,
      per: 1_000_000,
      unit: 'custom events (64 KB chunks)',
      source: EVENTBRIDGE,
      checked: CHECKED,
      verified: 'secondary',
      note: 'each 64 KB chunk of a payload is billed as one event (AWS page); $1.00 per million from third parties',
    },
    snsPublish: {
      usd: 0.5,
      per: 1_000_000,
      unit: 'publishes (64 KB chunks)',
      source: SNS,
      checked: CHECKED,
      verified: 'secondary',
      note: 'standard topics; first million a month free (free tier, not applied)',
    },
    snsEmailDelivery: {
      usd: 2,
      per: 100_000,
      unit: 'e-mail deliveries',
      source: SNS,
      checked: CHECKED,
      verified: 'secondary',
      note: 'first 1,000 a month free (free tier, not applied)',
    },
    cloudwatchLogsIngestGb: {
      usd: 0.5,
      per: 1,
      unit: 'GB ingested',
      source: CLOUDWATCH,
      checked: CHECKED,
      verified: 'secondary',
      note: 'Standard log class; storage ($0.03/GB-month, 30-day retention) left out: about 6% of this line',
    },
    cloudwatchAlarmMonth: {
      usd: 0.1,
      per: 1,
      unit: 'alarm-months',
      source: CLOUDWATCH,
      checked: CHECKED,
      verified: 'unverified',
      note: 'standard-resolution metric alarm; the AWS page confirms 10 free alarms (free tier, not applied)',
    },
    cloudwatchCustomMetricMonth: {
      usd: 0.3,
      per: 1,
      unit: 'metric-months',
      source: CLOUDWATCH,
      checked: CHECKED,
      verified: 'unverified',
      note: 'first 10,000 custom metrics (a metric is a name with one set of dimension values), prorated by the hour; EMF ingestion is in the Logs line',
    },
    cloudwatchDashboardMonth: {
      usd: 3,
      per: 1,
      unit: 'dashboard-months',
      source: CLOUDWATCH,
      checked: CHECKED,
      verified: 'unverified',
      note: 'the first 3 dashboards of an account are free (free tier, not applied)',
    },
    kmsRequests: {
      usd: 0.03,
      per: 10_000,
      unit: 'requests',
      source: KMS,
      checked: CHECKED,
      verified: 'secondary',
      note: 'AWS managed keys have no monthly fee but their requests are charged (AWS page); 20,000 free a month (not applied)',
    },
  },
};

/** USD for `quantity` units at `price`. */
export function priceOf(price: Price, quantity: number): number {
  return (quantity / price.per) * price.usd;
}

const OVERRIDE_KEYS = ['usd', 'source', 'checked', 'note'] as const;

/**
 * A price sheet with `input` (parsed JSON) applied over `base`. `input` is an object whose keys are
 * price keys (or `region`); each value is a number (USD per the same `per` and unit as the default)
 * or `{ usd, source?, checked?, note? }`. Validated strictly: every problem is reported at once,
 * unknown keys with the closest known one. Overridden prices are marked `verified: 'unverified'`
 * unless they carry their own `source`.
 */
export function applyPriceOverrides(base: PriceSheet, input: unknown, origin = 'prices file'): PriceSheet {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidRequestError(
      `${origin}: expected a JSON object of prices, e.g. { "dynamodbOnDemandWrite": 0.625 }`,
    );
  }
  const prices = { ...base.prices };
  let region = base.region;
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (key === 'region') {
      if (typeof value === 'string' && value.length > 0) region = value;
      else problems.push(`region: expected a region name such as "eu-west-1" (got ${JSON.stringify(value)})`);
      continue;
    }
    if (!(PRICE_KEYS as readonly string[]).includes(key)) {
      const suggestion = closest(key, [...PRICE_KEYS, 'region'], { ignoreCase: true });
      problems.push(
        suggestion
          ? `unknown price "${key}"; did you mean "${suggestion}"?`
          : `unknown price "${key}"; known prices: ${PRICE_KEYS.join(', ')}`,
      );
      continue;
    }
    const current = prices[key as PriceKey];
    const unitText = `USD per ${current.per === 1 ? '' : `${current.per.toLocaleString('en-US')} `}${current.unit}`;
    if (typeof value === 'number') {
      if (!Number.isFinite(value) || value < 0)
        problems.push(`${key}: expected a price >= 0 in ${unitText} (got ${value})`);
      else prices[key as PriceKey] = { ...current, usd: value, ...overridden(origin) };
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(
        `${key}: expected a number (${unitText}) or { "usd": n, "source": "...", "checked": "..." }`,
      );
      continue;
    }
    const entry = value as Record<string, unknown>;
    for (const k of Object.keys(entry)) {
      if (!(OVERRIDE_KEYS as readonly string[]).includes(k)) {
        const suggestion = closest(k, OVERRIDE_KEYS, { ignoreCase: true });
        problems.push(
          `${key}.${k}: unknown key${suggestion ? `; did you mean "${suggestion}"?` : `; allowed: ${OVERRIDE_KEYS.join(', ')}`}`,
        );
      }
    }
    const usd = entry.usd;
    if (typeof usd !== 'number' || !Number.isFinite(usd) || usd < 0) {
      problems.push(`${key}.usd: expected a price >= 0 in ${unitText} (got ${JSON.stringify(usd)})`);
      continue;
    }
    for (const k of ['source', 'checked', 'note'] as const) {
      if (entry[k] !== undefined && typeof entry[k] !== 'string')
        problems.push(`${key}.${k}: expected a string (got ${JSON.stringify(entry[k])})`);
    }
    const source = typeof entry.source === 'string' ? entry.source : undefined;
    prices[key as PriceKey] = {
      ...current,
      usd,
      ...(source ? { source, verified: 'unverified' as const, checked: '' } : overridden(origin)),
      ...(typeof entry.checked === 'string' ? { checked: entry.checked } : {}),
      ...(typeof entry.note === 'string' ? { note: entry.note } : {}),
    };
  }
  if (problems.length > 0) {
    throw new InvalidRequestError(
      [
        `${origin}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
        ...problems.map((p) => `  - ${p}`),
      ].join('\n'),
    );
  }
  return { region, currency: 'USD', prices };
}

function overridden(origin: string): Pick<Price, 'source' | 'checked' | 'verified'> {
  return { source: origin, checked: '', verified: 'unverified' };
}
