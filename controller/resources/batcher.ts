/**
 * Mutations of many groups at once, batched per target: Route 53 changes per hosted zone (one
 * ChangeResourceRecordSets holds hundreds), SSM commands per instance (one SendCommand runs the
 * guard of several groups). Built on the group commit of shared/base/coalesce.ts: a change alone
 * goes out at once, as before; changes that arrive while the target's batch is in flight go out
 * together when it ends (one batch in flight per target: Route 53 refuses a zone's change while its
 * previous one is pending, and one command per node keeps its guard runs together).
 *
 * Safety is each item's own, as for a call of its own: each item brings its group's fence (the
 * epoch check and the lock-outlasts-the-call check, `beforeMutation`), and the batcher runs it right
 * before the batch is sent, not when the item is queued (an item may wait for the batch in flight,
 * and the fence only covers a call that starts at once). An item whose fence fails, or whose
 * invocation's deadline has passed, is left out with that error; and the batch's call is aborted
 * when the deadline of any item in it passes, so that nothing lands after it.
 */
import { GroupCommit, type Settled } from '../../shared/base/coalesce';

/** One item of a batch, with the abort signal (the invocation's deadline) of its caller. */
export interface Batched<T> {
  item: T;
  signal: AbortSignal;
  /** The item's fence, run right before its batch is sent (ResourceRequest.beforeMutation). */
  fence: () => Promise<void>;
  /**
   * Its lock check once every item's fence is done (MutationContext.assertMayStart): a fast fence
   * covers a call that starts then, not one held back by a slow fence of another item.
   */
  recheck?: () => void;
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

  /**
   * `key` names what the item changes: two items with one key never share a batch. `fence` is run
   * right before the batch that carries the item is sent; the item is left out if it throws.
   */
  submit(
    target: string,
    key: string,
    item: T,
    signal: AbortSignal,
    fence: () => Promise<void>,
    recheck?: () => void,
  ): Promise<R> {
    if (signal.aborted) return Promise.reject(signal.reason);
    let commit = this.targets.get(target);
    if (!commit) {
      commit = new GroupCommit((batch) => this.flush(target, batch), {
        maxBatch: this.options.maxBatch,
        maxInFlight: 1,
      });
      this.targets.set(target, commit);
    }
    return commit.submit(key, { item, signal, fence, ...(recheck ? { recheck } : {}) });
  }

  private async flush(target: string, batch: Batched<T>[]): Promise<Settled<R>[]> {
    const out: Settled<R>[] = batch.map((b) => ({ ok: false, error: b.signal.reason }));
    // Each item's fence, right before the call (all at once: they are independent conditional writes).
    const fenced = await Promise.all(
      batch.map((b, j) =>
        b.signal.aborted
          ? false
          : b.fence().then(
              () => true,
              (error: unknown) => {
                out[j] = { ok: false, error };
                return false;
              },
            ),
      ),
    );
    // A fence may have been slow: an item whose deadline passed meanwhile, or whose lock would no
    // longer outlast a call starting now, is left out too.
    for (const [j, b] of batch.entries()) {
      if (!fenced[j]) continue;
      if (b.signal.aborted) {
        out[j] = { ok: false, error: b.signal.reason };
        fenced[j] = false;
        continue;
      }
      try {
        b.recheck?.();
      } catch (error) {
        out[j] = { ok: false, error };
        fenced[j] = false;
      }
    }
    const live = batch.filter((_, j) => fenced[j]);
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
