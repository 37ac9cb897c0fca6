/**
 * Mutations of many groups at once, batched per target: Route 53 changes per hosted zone (one
 * ChangeResourceRecordSets holds hundreds), SSM commands per instance (one SendCommand runs the
 * guard of several groups). Built on the group commit of shared/base/coalesce.ts: a change alone
 * goes out at once, as before; changes that arrive while the target's batch is in flight go out
 * together when it ends (one batch in flight per target: Route 53 refuses a zone's change while its
 * previous one is pending, and one command per node keeps its guard runs together).
 *
 * Safety is each item's own, as for a call of its own: the caller fences its group (the epoch
 * check, `beforeMutation`) *before* it submits, so every group of a batch has its fence when the
 * batch is sent; an item whose invocation's deadline has passed by then is left out (its lock may
 * be taken over after the deadline); and the batch's call is aborted when the deadline of any item
 * in it passes, so that nothing lands after it.
 */
import { GroupCommit, type Settled } from '../../shared/base/coalesce';

/** One item of a batch, with the abort signal (the invocation's deadline) of its caller. */
export interface Batched<T> {
  item: T;
  signal: AbortSignal;
}

export interface TargetBatcherOptions {
  /** Largest batch (the API's limit, or what its answer can report). */
  maxBatch: number;
}

export class TargetBatcher<T, R> {
  private readonly targets = new Map<string, GroupCommit<Batched<T>, R>>();
  /** Calls made and items carried (for benchmarks). */
  calls = 0;
  items = 0;

  constructor(
    /** Sends one batch of a target under `signal`; answers one Settled per item, in order. */
    private readonly send: (target: string, batch: T[], signal: AbortSignal) => Promise<Settled<R>[]>,
    private readonly options: TargetBatcherOptions,
  ) {}

  /** `key` names what the item changes: two items with one key never share a batch. */
  submit(target: string, key: string, item: T, signal: AbortSignal): Promise<R> {
    if (signal.aborted) return Promise.reject(signal.reason);
    let commit = this.targets.get(target);
    if (!commit) {
      commit = new GroupCommit((batch) => this.flush(target, batch), {
        maxBatch: this.options.maxBatch,
        maxInFlight: 1,
      });
      this.targets.set(target, commit);
    }
    return commit.submit(key, { item, signal });
  }

  private async flush(target: string, batch: Batched<T>[]): Promise<Settled<R>[]> {
    const live = batch.filter((b) => !b.signal.aborted);
    const out: Settled<R>[] = batch.map((b) => ({ ok: false, error: b.signal.reason }));
    if (live.length === 0) return out;
    this.calls++;
    this.items += live.length;
    const signal = live.length === 1 ? live[0]!.signal : AbortSignal.any(live.map((b) => b.signal));
    const settled = await this.send(
      target,
      live.map((b) => b.item),
      signal,
    );
    const sent = new Set(live);
    let i = 0;
    batch.forEach((b, j) => {
      if (sent.has(b))
        out[j] = settled[i++] ?? { ok: false, error: new Error('no outcome for a batched item') };
    });
    return out;
  }
}
