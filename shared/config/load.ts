/**
 * Parsing and validating a cluster definition. Pure (no file system): callers pass the text and a
 * source name used in messages. Every problem is collected and reported at once, each with its exact
 * path, its line and column in the file, and what to write instead.
 */
import { gzipSync } from 'node:zlib';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Node as YamlNode } from 'yaml';
import type { ConfigIssue } from '../base/errors';
import { CONFIG_GZ_MAX_BYTES, DEFINITION_MAX_BYTES, MAX_YAML_ALIASES } from './limits';
import { type ValidationResult, validateClusterConfig } from './validate';

export { canonicalJson, configHash } from './hash';
export {
  type ClusterConfig,
  parseClusterConfig,
  type ValidationResult,
  validateClusterConfig,
} from './validate';

/** YAML syntax errors reported at most (a file that is not YAML at all would give thousands). */
const MAX_SYNTAX_ISSUES = 10;

/** `line:col` of an offset in a text (1-based), without a YAML parse. */
function position(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

/**
 * Input that is no definition at all, refused in one line before it is parsed: larger than any
 * definition can be, or binary (a NUL, another control character, or bytes that are not UTF-8).
 */
function textProblem(text: string, source: string): ConfigIssue | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes > DEFINITION_MAX_BYTES)
    return {
      path: '',
      message: `the file is ${Math.round(bytes / 1024)} KB; a definition is at most ${DEFINITION_MAX_BYTES / 1024} KB (its stored form must fit a DynamoDB item): split the groups over several clusters`,
      location: source,
    };
  const badAt = firstBinary(text);
  if (badAt >= 0) {
    const { line, col } = position(text, badAt);
    const char = text.charCodeAt(badAt);
    const code =
      char === 0xfffd ? 'bytes that are not UTF-8' : `byte 0x${char.toString(16).padStart(2, '0')}`;
    return {
      path: '',
      message: `binary input, not a YAML or JSON text (${code}); give the cluster definition file`,
      location: `${source}:${line}:${col}`,
    };
  }
  return undefined;
}

/** Parses YAML or JSON text and validates it; issues carry `file:line:col`. */
export function loadClusterConfigText(text: string, source = 'cluster.yaml'): ValidationResult {
  const refused = textProblem(text, source);
  if (refused) return { ok: false, issues: [refused] };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.slice(0, MAX_SYNTAX_ISSUES).map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        path: '',
        message: `not valid YAML/JSON: ${e.message.split('\n')[0]}`,
        location: pos ? `${source}:${pos.line}:${pos.col}` : source,
      };
    });
    if (doc.errors.length > MAX_SYNTAX_ISSUES)
      issues.push({
        path: '',
        message: `and ${doc.errors.length - MAX_SYNTAX_ISSUES} more syntax errors`,
        location: source,
      });
    return { ok: false, issues };
  }
  // An alias bomb (aliases of aliases, expanding to billions of nodes) is refused where it starts.
  let aliases = 0;
  let firstAlias: number | undefined;
  visit(doc, {
    Alias(_, node) {
      aliases++;
      firstAlias ??= node.range?.[0];
    },
  });
  let value: unknown;
  try {
    if (aliases > MAX_YAML_ALIASES) throw new Error('too many aliases');
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch {
    const { line, col } = lineCounter.linePos(firstAlias ?? 0);
    return {
      ok: false,
      issues: [
        {
          path: '',
          message: `YAML aliases expand too far (${aliases} aliases; an alias bomb?): write the values out, a definition needs no more than ${MAX_YAML_ALIASES}`,
          location: `${source}:${line}:${col}`,
        },
      ],
    };
  }
  const result = validateClusterConfig(value);
  if (result.ok) {
    const stored = gzipSync(JSON.stringify(result.config)).length;
    if (stored > CONFIG_GZ_MAX_BYTES)
      return {
        ok: false,
        issues: [
          {
            path: '',
            message: `the definition is ${Math.round(stored / 1024)} KB even compressed; a DynamoDB item holds at most ${CONFIG_GZ_MAX_BYTES / 1024} KB of it: split the groups over several clusters`,
            location: source,
          },
        ],
      };
    return result;
  }
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

/**
 * The index of the first character no text definition holds (a control character other than tab,
 * line feed and carriage return, or the replacement character of bytes that are not UTF-8), or -1.
 */
function firstBinary(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0xfffd) return i;
  }
  return -1;
}
