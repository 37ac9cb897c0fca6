/**
 * The hash of a definition, without the schema: the node agent imports the store, which hashes on
 * apply, and must not pay for loading zod (about 7 MB of resident memory).
 */
import { createHash } from 'node:crypto';
import type { ClusterConfig } from './validate';

/** Stable hash of a validated definition (canonical JSON, sorted keys). */
export function configHash(config: ClusterConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
