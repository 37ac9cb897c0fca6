/**
 * Parsing and validating a cluster definition. Pure (no file system): callers pass the text and a
 * source name used in messages. Every problem is collected and reported at once, each with its exact
 * path, its line and column in the file, and what to write instead.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { ConfigIssue } from '../base/errors';
import { type ValidationResult, validateClusterConfig } from './validate';

export { canonicalJson, configHash } from './hash';
export {
  type ClusterConfig,
  parseClusterConfig,
  type ValidationResult,
  validateClusterConfig,
} from './validate';

/** Parses YAML or JSON text and validates it; issues carry `file:line:col`. */
export function loadClusterConfigText(text: string, source = 'cluster.yaml'): ValidationResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          path: '',
          message: `not valid YAML/JSON: ${e.message.split('\n')[0]}`,
          location: pos ? `${source}:${pos.line}:${pos.col}` : source,
        };
      }),
    };
  }
  const value: unknown = doc.toJS();
  const result = validateClusterConfig(value);
  if (result.ok) return result;
  const offsets = new Map<ConfigIssue, number>();
  for (const issue of result.issues) {
    const pos = locate(doc.contents, issue.path);
    offsets.set(issue, pos ?? 0);
    if (pos !== undefined) {
      const { line, col } = lineCounter.linePos(pos);
      issue.location = `${source}:${line}:${col}`;
    } else issue.location = source;
  }
  // File order reads best: the user fixes them top to bottom.
  result.issues.sort((a, b) => offsets.get(a)! - offsets.get(b)!);
  return result;
}

// ---------------------------------------------------------------------------------------------
// path -> offset in the YAML text

function parsePath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

function locate(root: unknown, path: string): number | undefined {
  let node = root as YamlNode | null | undefined;
  let best: number | undefined = (node as YamlNode | undefined)?.range?.[0];
  for (const seg of parsePath(path)) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) return best;
      best = (pair.key as YamlNode | undefined)?.range?.[0] ?? best;
      node = pair.value as YamlNode | null;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg] as YamlNode | undefined;
      if (!node) return best;
      best = node.range?.[0] ?? best;
    } else return best;
  }
  return best;
}
