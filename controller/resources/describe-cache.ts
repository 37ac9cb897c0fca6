/** Memoized describe calls of one reconcile (the `cache` of ResourceRequest / CheckRequest). */
import type { DescribeCache } from '../../shared/core/ports';

/**
 * Returns the cached promise for `key`, or starts `load` and caches it. Concurrent callers share one
 * call. A failed call is dropped from the cache, so that a later step of the same reconcile asks
 * again instead of repeating a transient error.
 */
export function memo<T>(cache: DescribeCache, key: string, load: () => Promise<T>): Promise<T> {
  const hit = cache.get(key) as Promise<T> | undefined;
  if (hit) return hit;
  const p = load();
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
