/** Memoized describe calls of one reconcile (the `cache` of ResourceRequest / CheckRequest). */
import type { FreshReads } from '../../shared/base/coalesce';
import type { DescribeCache } from '../../shared/core/ports';

/**
 * A plan's (or a round's) own describe memo whose misses are shared with the other groups of the
 * same reconcile that ask for the same thing at the same moment: hundreds of groups switching at
 * once read their route tables, ENIs and addresses in a few calls instead of one each, and each
 * still gets an answer read after it asked (FreshReads). Keys name what they read (a VPC, the
 * cluster's ENIs), so one reconcile's groups can share them.
 */
export class SharedDescribeCache extends Map<string, Promise<unknown>> {
  constructor(readonly reads: FreshReads) {
    super();
  }
}

/**
 * Returns the cached promise for `key`, or starts `load` and caches it. Concurrent callers share one
 * call. A failed call is dropped from the cache, so that a later step of the same reconcile asks
 * again instead of repeating a transient error.
 */
export function memo<T>(cache: DescribeCache, key: string, load: () => Promise<T>): Promise<T> {
  const hit = cache.get(key) as Promise<T> | undefined;
  if (hit) return hit;
  const p = cache instanceof SharedDescribeCache ? cache.reads.read(key, load) : load();
  cache.set(key, p);
  p.catch(() => {
    if (cache.get(key) === p) cache.delete(key);
  });
  return p;
}

/** Drops every cached call whose key starts with `prefix` (after a mutation made them stale). */
export function forget(cache: DescribeCache, prefix: string): void {
  for (const key of [...cache.keys()]) if (key.startsWith(prefix)) cache.delete(key);
}
