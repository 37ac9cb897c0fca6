/**
 * A structural check of a stored cluster definition for readers without the schema library (the
 * node agent ships without zod). `failoverctl apply` validates a definition fully before storing
 * it; this catches what reaches the table some other way (a hand edit, another tool, a bug, a newer
 * schema) before an agent adopts it: the shape every agent code path relies on (lists that are
 * lists, names that become file names, known kinds, the commands and timeouts of stops) and the
 * timing ranges (a lease near 1e12 would overflow the agent's timers into a 1 ms loop).
 *
 * It checks a definition as stored, with every default already resolved.
 */
import { monitorKind, resourceKind } from './kinds';
import { TIMING_LIMITS } from './timing';

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const isName = (v: unknown): v is string => typeof v === 'string' && /^[a-z0-9][a-z0-9-]{0,62}$/.test(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const show = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
};

/** Every problem of a stored definition, each as "path: what is wrong"; empty when sound. */
export function storedDefinitionProblems(value: unknown): string[] {
  const out: string[] = [];
  const bad = (path: string, what: string) => out.push(`${path}: ${what}`);
  if (!isObject(value)) return ['definition: not an object'];
  if (!isText(value.cluster)) bad('cluster', `must be a name, not ${show(value.cluster)}`);

  if (!isObject(value.timing)) bad('timing', 'must be an object');
  else {
    const t = value.timing;
    for (const [field, { min, max }] of Object.entries(TIMING_LIMITS)) {
      const v = t[field];
      if (v === undefined && field === 'heartbeatRetryMs') continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        bad(`timing.${field}`, `must be an integer from ${min} to ${max} ms, not ${show(v)}`);
    }
    if (typeof t.fenceMarginMs === 'number' && typeof t.leaseMs === 'number' && t.fenceMarginMs >= t.leaseMs)
      bad('timing.fenceMarginMs', `must be shorter than leaseMs (${t.leaseMs})`);
  }

  if (!Array.isArray(value.nodes)) bad('nodes', `must be a list, not ${show(value.nodes)}`);
  else
    for (const [i, n] of value.nodes.entries()) {
      if (!isObject(n)) {
        bad(`nodes[${i}]`, 'must be an object');
        continue;
      }
      if (!isName(n.name)) bad(`nodes[${i}].name`, `must be a name, not ${show(n.name)}`);
      if (!isText(n.instanceId))
        bad(`nodes[${i}].instanceId`, `must be an instance id, not ${show(n.instanceId)}`);
    }

  if (value.witnesses !== undefined && !Array.isArray(value.witnesses))
    bad('witnesses', `must be a list, not ${show(value.witnesses)}`);

  if (!Array.isArray(value.groups)) bad('groups', `must be a list, not ${show(value.groups)}`);
  else for (const [i, g] of value.groups.entries()) groupProblems(g, `groups[${i}]`, bad);
  return out;
}

function groupProblems(g: unknown, path: string, bad: (path: string, what: string) => void): void {
  if (!isObject(g)) {
    bad(path, 'must be an object');
    return;
  }
  // Group names become file names in the agent's state directory.
  if (!isName(g.name)) bad(`${path}.name`, `must be a name (a-z, 0-9, -), not ${show(g.name)}`);
  if (!Array.isArray(g.nodes) || !g.nodes.every(isName))
    bad(`${path}.nodes`, `must be a list of node names, not ${show(g.nodes)}`);
  if (!Array.isArray(g.resources)) bad(`${path}.resources`, `must be a list, not ${show(g.resources)}`);
  else
    for (const [j, r] of g.resources.entries()) {
      const at = `${path}.resources[${j}]`;
      if (!isObject(r)) {
        bad(at, 'must be an object');
        continue;
      }
      if (!isName(r.name)) bad(`${at}.name`, `must be a name, not ${show(r.name)}`);
      if (typeof r.type !== 'string' || !resourceKind(r.type)) {
        bad(`${at}.type`, `unknown kind ${show(r.type)}`);
        continue;
      }
      if (r.type === 'exec') {
        if (!isText(r.start)) bad(`${at}.start`, `must be a command, not ${show(r.start)}`);
        if (!isText(r.stop)) bad(`${at}.stop`, `must be a command, not ${show(r.stop)}`);
        if (
          typeof r.timeoutSec !== 'number' ||
          !Number.isInteger(r.timeoutSec) ||
          r.timeoutSec < 1 ||
          r.timeoutSec > 172_800
        )
          bad(`${at}.timeoutSec`, `must be an integer from 1 to 172800, not ${show(r.timeoutSec)}`);
      }
      if ((r.type === 'vip' || r.type === 'secondaryIp') && typeof r.ip !== 'string')
        bad(`${at}.ip`, `must be an IPv4 address, not ${show(r.ip)}`);
    }
  if (!Array.isArray(g.monitors)) bad(`${path}.monitors`, `must be a list, not ${show(g.monitors)}`);
  else
    for (const [j, m] of g.monitors.entries()) {
      const at = `${path}.monitors[${j}]`;
      if (!isObject(m)) {
        bad(at, 'must be an object');
        continue;
      }
      if (!isText(m.name)) bad(`${at}.name`, `must be a name, not ${show(m.name)}`);
      if (typeof m.type !== 'string' || !monitorKind(m.type)) {
        bad(`${at}.type`, `unknown kind ${show(m.type)}`);
        continue;
      }
      for (const field of ['intervalMs', 'timeoutMs'] as const) {
        const v = m[field];
        if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 50 || v > 3_600_000))
          bad(`${at}.${field}`, `must be an integer from 50 to 3600000 ms, not ${show(v)}`);
      }
    }
}
