/**
 * Sharing calls between concurrent callers without ever handing one of them an older answer than
 * its own call would have got. Two primitives, both in-process and free of I/O:
 *
 * - {@link FreshReads}: callers asking for the same key while a load of it is being gathered share
 *   that load; a load that had already started when a caller asked is never shared with it (its
 *   answer may predate the caller's own writes). At most one load per key is in flight; callers
 *   arriving meanwhile are served by the next one, which starts when it ends.
 * - {@link GroupCommit}: operations submitted together are handed to `flush` in batches (group
 *   commit, as a database log does): the first operation goes out at once when nothing is in flight,
 *   those that arrive while batches are in flight go out together when one ends. Operations on the
 *   same key never travel in the same batch nor overtake each other.
 *
 * Both add no wait when a caller is alone (a single failover), and turn a burst of hundreds of
 * identical or similar calls (a zone outage moving hundreds of groups at once) into a few.
 */

interface Gathering<V> {
  promise: Promise<V>;
  resolve: (v: V) => void;
  reject: (e: unknown) => void;
}

function gathering<V>(): Gathering<V> {
  let resolve!: (v: V) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<V>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Runs `run` once the microtasks queued now, and those they queue up to GATHER_HOPS deep, have run:
 * callers reached by the same burst of promise continuations (Promise.all over many groups) join,
 * and the load still starts before any timer or I/O, at the moment it was asked for (a macrotask
 * hop would start it later, after whatever timers are due).
 */
const GATHER_HOPS = 16;
function afterMicrotasks(run: () => void, hops = GATHER_HOPS): void {
  if (hops === 0) run();
  else queueMicrotask(() => afterMicrotasks(run, hops - 1));
}

/** Loads shared by the callers of one key that asked before the load started (see the module). */
export class FreshReads {
  private readonly keys = new Map<
    string,
    { inFlight: boolean; next?: Gathering<unknown> & { load: () => Promise<unknown> } }
  >();
  /** Loads started, and calls served (for benchmarks: calls / loads is what sharing saved). */
  loads = 0;
  calls = 0;

  read<V>(key: string, load: () => Promise<V>): Promise<V> {
    this.calls++;
    let k = this.keys.get(key);
    if (!k) {
      k = { inFlight: false };
      this.keys.set(key, k);
    }
    if (!k.next) {
      const g = gathering<unknown>();
      k.next = { ...g, load };
      // Callers of this burst join it; it starts once the load in flight (if any) has ended.
      afterMicrotasks(() => this.start(key));
    }
    return k.next.promise as Promise<V>;
  }

  private start(key: string): void {
    const k = this.keys.get(key);
    if (!k?.next || k.inFlight) return;
    const { load, resolve, reject } = k.next;
    k.next = undefined;
    k.inFlight = true;
    this.loads++;
    let p: Promise<unknown>;
    try {
      p = load();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(resolve, reject).finally(() => {
      k.inFlight = false;
      if (k.next) afterMicrotasks(() => this.start(key));
      else this.keys.delete(key);
    });
  }
}

export interface GroupCommitOptions {
  /** Largest batch handed to `flush`. */
  maxBatch: number;
  /** Batches in flight at once. */
  maxInFlight: number;
}

/**
 * One operation's outcome as `flush` reports it: its result, or its own error (a failed condition
 * of one operation fails that operation alone).
 */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Pending<O, R> {
  key: string;
  op: O;
  done: Gathering<R>;
}

/** Batches of operations, group-committed (see the module). */
export class GroupCommit<O, R> {
  private readonly queue: Pending<O, R>[] = [];
  private readonly busyKeys = new Set<string>();
  private inFlight = 0;
  private scheduled = false;
  /** Batches flushed and operations carried (for benchmarks). */
  batches = 0;
  operations = 0;

  constructor(
    /** Sends one batch; answers one Settled per operation, in order. Throwing fails every one. */
    private readonly flush: (ops: O[]) => Promise<Settled<R>[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(key: string, op: O): Promise<R> {
    const done = gathering<R>();
    this.queue.push({ key, op, done });
    this.schedule();
    return done.promise;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Operations submitted in the same tick (Promise.all over many groups) travel together.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch: Pending<O, R>[] = [];
      const keys = new Set<string>();
      for (let i = 0; i < this.queue.length && batch.length < this.options.maxBatch; ) {
        const p = this.queue[i]!;
        // A key in flight or already in this batch waits: same-key operations keep their order.
        if (this.busyKeys.has(p.key) || keys.has(p.key)) {
          i++;
          continue;
        }
        keys.add(p.key);
        batch.push(p);
        this.queue.splice(i, 1);
      }
      if (batch.length === 0) return;
      for (const k of keys) this.busyKeys.add(k);
      this.inFlight++;
      this.batches++;
      this.operations += batch.length;
      void this.send(batch).finally(() => {
        this.inFlight--;
        for (const k of keys) this.busyKeys.delete(k);
        this.pump();
      });
    }
  }

  private async send(batch: Pending<O, R>[]): Promise<void> {
    let settled: Settled<R>[];
    try {
      settled = await this.flush(batch.map((p) => p.op));
    } catch (e) {
      for (const p of batch) p.done.reject(e);
      return;
    }
    batch.forEach((p, i) => {
      const s = settled[i];
      if (!s) p.done.reject(new Error('group commit: no outcome for an operation of the batch'));
      else if (s.ok) p.done.resolve(s.value);
      else p.done.reject(s.error);
    });
  }
}
