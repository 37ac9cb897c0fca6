/**
 * The DynamoDB stream → Lambda event source mapping, for the emulator (moto runs none): poll the
 * state table's stream four times a second, keep the records that the deployment's filter keeps
 * (serverless.yml: agent changes, new requests) and hand each batch to the real stream handler.
 *
 * Like a mapping with a parallelization factor, at most `maxInFlight` batches are handled at once:
 * a batch waiting on a lease does not hold up the next, and records that arrive while every slot
 * is busy are handed over together, in order, when one frees (unbounded concurrency would swamp
 * the emulator, whose DynamoDB answers one request at a time, and starve the agents' renewals).
 *
 * Like a mapping with ReportBatchItemFailures, a batch answered with `batchItemFailures` is handed
 * over again from the first failed record on, at once, up to `maxRetries` times; then its records
 * are dropped (the deployment sends them to the dead-letter queue) and `dropped` counts them.
 */
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';

type StreamRecord = {
  eventName?: string;
  dynamodb?: {
    Keys?: Record<string, { S?: string }>;
    NewImage?: Record<string, { S?: string }>;
    SequenceNumber?: string;
  };
};

/** What the handler answered (ReportBatchItemFailures). */
export type BatchAnswer = { batchItemFailures?: { itemIdentifier: string }[] } | undefined;

/** The same filter as the deployed event source mapping (see serverless.yml). */
export function passesStreamFilter(r: StreamRecord): boolean {
  const reason = r.dynamodb?.NewImage?.reason?.S;
  if ((r.eventName === 'INSERT' || r.eventName === 'MODIFY') && reason === 'change') return true;
  return r.eventName === 'INSERT' && (r.dynamodb?.Keys?.sk?.S ?? '').startsWith('REQUEST#');
}

export class StreamPoller {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private inFlight = 0;
  private readonly queued: StreamRecord[] = [];
  /** Retries so far of a record handed over again after a batch item failure, by sequence number. */
  private readonly attempts = new Map<string, number>();
  invocations = 0;
  filteredOut = 0;
  /** Records handed over again after a batch item failure. */
  retried = 0;
  /** Records dropped after `maxRetries` retries. */
  dropped = 0;

  constructor(
    private readonly dynamodb: DynamoDBClient,
    private readonly streams: DynamoDBStreamsClient,
    private readonly table: string,
    private readonly deliver: (records: StreamRecord[]) => Promise<unknown>,
    private readonly pollMs = 250,
    private readonly maxInFlight = 3,
    private readonly maxRetries = 3,
  ) {}

  /** Hands the queued records over as one batch when a slot is free. */
  private dispatch(): void {
    if (this.stopped || this.inFlight >= this.maxInFlight || this.queued.length === 0) return;
    const batch = this.queued.splice(0, this.queued.length);
    this.inFlight++;
    this.invocations++;
    void this.deliver(batch)
      .then((answer) => this.retryFailed(batch, answer as BatchAnswer))
      .catch(() => undefined)
      .finally(() => {
        this.inFlight--;
        this.dispatch();
      });
  }

  /** Hands the batch over again from its first failed record on, as the mapping does. */
  private retryFailed(batch: StreamRecord[], answer: BatchAnswer): void {
    const failed = new Set((answer?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    const from = batch.findIndex((r) => failed.has(r.dynamodb?.SequenceNumber ?? ''));
    if (from < 0) return;
    const again: StreamRecord[] = [];
    for (const r of batch.slice(from)) {
      const seq = r.dynamodb?.SequenceNumber ?? '';
      const n = (this.attempts.get(seq) ?? 0) + 1;
      if (n > this.maxRetries) {
        this.dropped++;
        this.attempts.delete(seq);
        continue;
      }
      this.attempts.set(seq, n);
      again.push(r);
    }
    this.retried += again.length;
    this.queued.unshift(...again);
  }

  async start(): Promise<void> {
    const arn = (await this.dynamodb.send(new DescribeTableCommand({ TableName: this.table }))).Table
      ?.LatestStreamArn;
    if (!arn) throw new Error(`table ${this.table} has no stream`);
    const shards =
      (await this.streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription?.Shards ??
      [];
    const iterators = new Map<string, string | undefined>();
    for (const s of shards) {
      const it = await this.streams.send(
        new GetShardIteratorCommand({ StreamArn: arn, ShardId: s.ShardId!, ShardIteratorType: 'LATEST' }),
      );
      iterators.set(s.ShardId!, it.ShardIterator);
    }
    this.loop = (async () => {
      while (!this.stopped) {
        for (const [shard, iterator] of iterators) {
          if (!iterator) continue;
          try {
            const out = await this.streams.send(
              new GetRecordsCommand({ ShardIterator: iterator, Limit: 100 }),
            );
            iterators.set(shard, out.NextShardIterator);
            const records = (out.Records ?? []) as StreamRecord[];
            const kept = records.filter(passesStreamFilter);
            this.filteredOut += records.length - kept.length;
            this.queued.push(...kept);
            this.dispatch();
          } catch {
            // The emulator restarting or a transient error: poll again.
          }
        }
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
