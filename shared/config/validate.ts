/**
 * Validating a cluster definition that is already a JS value (from YAML, JSON or the state table).
 * Pure. Kept apart from `load.ts` (which parses YAML text) so that what only validates, such as the
 * Lambda handlers reading definitions from the state table, does not bundle the YAML parser.
 */
import type { z } from 'zod';
import { closest } from '../base/did-you-mean';
import { ConfigError, type ConfigIssue } from '../base/errors';
import { crossFieldIssues, defaultFenceMarginMs, defaultHeartbeatRetryMs } from './rules';
import { type ClusterConfigParsed, clusterSchema } from './schema';

/** A validated cluster definition with every default filled in. */
export type ClusterConfig = Omit<ClusterConfigParsed, 'timing'> & {
  timing: Required<ClusterConfigParsed['timing']>;
};

/** Validates a JS value (from YAML, JSON or the state table); throws ConfigError with every problem. */
export function parseClusterConfig(input: unknown, source?: string): ClusterConfig {
  const result = validateClusterConfig(input);
  if (!result.ok) throw new ConfigError(result.issues, source);
  return result.config;
}

export type ValidationResult = { ok: true; config: ClusterConfig } | { ok: false; issues: ConfigIssue[] };

export function validateClusterConfig(input: unknown): ValidationResult {
  const parsed = clusterSchema.safeParse(input, { reportInput: true });
  const issues: ConfigIssue[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push(...toConfigIssues(issue));
  }
  const seen = new Set(issues.map((i) => `${i.path}\u0000${i.message}`));
  for (const issue of crossFieldIssues(input)) {
    if (!seen.has(`${issue.path}\u0000${issue.message}`)) issues.push(issue);
  }
  if (issues.length > 0 || !parsed.success) return { ok: false, issues };
  const data = parsed.data;
  const timing = {
    ...data.timing,
    fenceMarginMs: data.timing.fenceMarginMs ?? defaultFenceMarginMs(data.timing.leaseMs),
    heartbeatRetryMs:
      data.timing.heartbeatRetryMs ?? defaultHeartbeatRetryMs(data.timing.heartbeatIntervalMs),
  };
  return { ok: true, config: { ...data, timing } };
}

// ---------------------------------------------------------------------------------------------
// zod issue -> ConfigIssue

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function toConfigIssues(issue: z.core.$ZodIssue): ConfigIssue[] {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const suggestion = closest(key, KNOWN_KEYS);
      const full = path ? `${path}.${key}` : key;
      return {
        path: full,
        message: suggestion
          ? `unknown key "${key}"; did you mean "${suggestion}"?`
          : `unknown key "${key}"; remove it (see cluster.schema.json for the keys allowed here)`,
      };
    });
  }
  const input = (issue as { input?: unknown }).input;
  if (issue.code === 'invalid_type' && input === undefined)
    return [{ path, message: `missing; ${issue.message}` }];
  const shown = ['string', 'number', 'boolean'].includes(typeof input)
    ? ` (got ${JSON.stringify(input)})`
    : '';
  return [{ path, message: `${issue.message}${shown}` }];
}

/** Every key the schema knows, for "did you mean" suggestions on typos. */
const KNOWN_KEYS: readonly string[] = collectKeys(clusterSchema);

function collectKeys(schema: z.ZodType): string[] {
  const keys = new Set<string>();
  const seen = new Set<unknown>();
  const walk = (s: unknown): void => {
    if (!s || typeof s !== 'object' || seen.has(s)) return;
    seen.add(s);
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return;
    if (def.type === 'object') {
      for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
        keys.add(k);
        walk(v);
      }
    }
    for (const field of ['innerType', 'element', 'valueType', 'in', 'out']) walk(def[field]);
    if (Array.isArray(def.options)) for (const o of def.options) walk(o);
  };
  walk(schema);
  return [...keys];
}
