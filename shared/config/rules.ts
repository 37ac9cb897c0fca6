/**
 * Cross-field rules of the cluster definition. They run on the raw input, defensively, even when the
 * schema found problems elsewhere: the user gets every problem in one run, not one per attempt.
 */
import type { ConfigIssue } from '../base/errors';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MONITOR_INTERVAL_MS,
} from './defaults';
import { type CheckContext, monitorKind, RESOURCE_KINDS, resourceKind } from './kinds';
import {
  defaultFenceMarginMs,
  defaultHeartbeatRetryMs,
  heartbeatRetryMs,
  lostRenewalsProblem,
  TOLERATED_LOST_RENEWALS,
} from './timing';

type Raw = Record<string, unknown>;

export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MONITOR_INTERVAL_MS,
} from './defaults';

export { TOLERATED_LOST_RENEWALS } from './timing';

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export { defaultFenceMarginMs, defaultHeartbeatRetryMs, renewalAfterLostMs } from './timing';

/** The timing a cluster gets when its definition says nothing (every default resolved). */
export function defaultTiming(): {
  heartbeatIntervalMs: number;
  leaseMs: number;
  maxClockSkewMs: number;
  fenceMarginMs: number;
  heartbeatRetryMs: number;
} {
  const heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  const leaseMs = DEFAULT_LEASE_MS;
  return {
    heartbeatIntervalMs,
    leaseMs,
    maxClockSkewMs: DEFAULT_MAX_CLOCK_SKEW_MS,
    fenceMarginMs: defaultFenceMarginMs(leaseMs),
    heartbeatRetryMs: defaultHeartbeatRetryMs(heartbeatIntervalMs),
  };
}

/** The resource types that put an address on the owner's interface, for messages ("vip or ..."). */
function addressTypes(): string {
  return RESOURCE_KINDS.filter((k) => resourceKind(k.type)?.onNode === 'address')
    .map((k) => k.type)
    .join(' or ');
}

type Add = (path: string, message: string) => void;

/**
 * Every problem of a raw definition that the schema alone cannot see, each with its path and what to
 * write instead. Runs on whatever was written, defensively, so that one run lists every problem.
 */
export function crossFieldIssues(input: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add: Add = (path, message) => issues.push({ path, message });
  if (!isObject(input)) return issues;
  timingIssues(isObject(input.timing) ? input.timing : {}, add);
  const nodeByName = nodeIssues(input, add);
  groupIssues(input, nodeByName, add);
  return issues;
}

/** The lease must hold a heartbeat and TOLERATED_LOST_RENEWALS retries before the agent fences. */
function timingIssues(timing: Raw, add: Add): void {
  const hb = num(timing.heartbeatIntervalMs) ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const lease = num(timing.leaseMs) ?? DEFAULT_LEASE_MS;
  const explicitMargin = num(timing.fenceMarginMs);
  const margin = explicitMargin ?? defaultFenceMarginMs(lease);
  const explicitRetry = num(timing.heartbeatRetryMs);
  const retry = heartbeatRetryMs({
    heartbeatIntervalMs: hb,
    ...(explicitRetry !== undefined ? { heartbeatRetryMs: explicitRetry } : {}),
  });
  if (retry > hb) {
    add(
      'timing.heartbeatRetryMs',
      `heartbeatRetryMs (${retry}) must not exceed heartbeatIntervalMs (${hb}): it is how soon an unacknowledged renewal is retried; write heartbeatRetryMs: ${defaultHeartbeatRetryMs(hb)}`,
    );
    return;
  }
  // The agent fences itself (lease - margin) after the send of its last acknowledged renewal; the
  // renewal that follows TOLERATED_LOST_RENEWALS lost ones must still fit in that window.
  const problem = lostRenewalsProblem(
    {
      heartbeatIntervalMs: hb,
      leaseMs: lease,
      fenceMarginMs: margin,
      maxClockSkewMs: 0,
      heartbeatRetryMs: retry,
    },
    explicitMargin !== undefined,
  );
  if (problem) {
    add(
      timing.leaseMs === undefined ? 'timing' : 'timing.leaseMs',
      `the agent would fence itself ${problem.fenceAfterMs} ms after its last renewal (leaseMs ${lease} minus fenceMarginMs ${margin}), but ${TOLERATED_LOST_RENEWALS} lost renewals in a row (the next heartbeat after ${hb} ms, then retries every ${retry} ms) take ${problem.neededMs} ms; write leaseMs: ${problem.minLeaseMs} or more, or lower heartbeatIntervalMs`,
    );
  }
}

/** Unique names, instances and ENIs; zones of the definition's region. Returns the nodes by name. */
function nodeIssues(input: Raw, add: Add): Map<string, Raw> {
  const region = str(input.region);
  const nodeByName = new Map<string, Raw>();
  const seen = {
    name: new Map<string, number>(),
    instanceId: new Map<string, number>(),
    eni: new Map<string, number>(),
  };
  list(input.nodes).forEach((node, i) => {
    if (!isObject(node)) return;
    for (const key of ['name', 'instanceId', 'eni'] as const) {
      const value = str(node[key]);
      if (value === undefined) continue;
      const first = seen[key].get(value);
      if (first !== undefined)
        add(
          `nodes[${i}].${key}`,
          `${key} "${value}" is already used by nodes[${first}]; each node needs its own`,
        );
      else seen[key].set(value, i);
    }
    const name = str(node.name);
    if (name && !nodeByName.has(name)) nodeByName.set(name, node);
    const az = str(node.az);
    if (region && az && !az.startsWith(`${region}`)) {
      add(
        `nodes[${i}].az`,
        `az "${az}" is not in region ${region}; write an Availability Zone of ${region}, e.g. ${region}a`,
      );
    }
  });
  return nodeByName;
}

/** Names seen so far in the definition (they must be unique across the cluster). */
interface Seen {
  groups: Map<string, number>;
  resources: Map<string, string>;
  monitors: Map<string, string>;
  /** Values no two resources may share, per kind and field (the VIP's ip, the EIP's allocation). */
  uniques: Map<string, string>;
}

/** Unique group, resource and monitor names; what each kind of the table checks. */
function groupIssues(input: Raw, nodeByName: Map<string, Raw>, add: Add): void {
  const seen: Seen = { groups: new Map(), resources: new Map(), monitors: new Map(), uniques: new Map() };
  list(input.groups).forEach((group, g) => {
    if (!isObject(group)) return;
    const gp = `groups[${g}]`;
    const gname = str(group.name);
    if (gname !== undefined) {
      const first = seen.groups.get(gname);
      if (first !== undefined)
        add(
          `${gp}.name`,
          `group name "${gname}" is already used by groups[${first}]; group names must be unique`,
        );
      else seen.groups.set(gname, g);
    }
    const members = memberIssues(group, gp, nodeByName, add);
    const groupResources = new Map<string, string>();
    const ctx = (path: string): CheckContext => ({
      path,
      group: gname ?? String(g),
      members,
      nodes: nodeByName,
      nodeList: list(input.nodes),
      groupResources,
      add,
    });
    list(group.resources).forEach((res, r) => {
      if (isObject(res)) resourceIssues(res, ctx(`${gp}.resources[${r}]`), seen);
    });
    list(group.monitors).forEach((mon, m) => {
      if (isObject(mon)) monitorIssues(mon, ctx(`${gp}.monitors[${m}]`), seen);
    });
  });
}

/** The group's nodes must be defined, each listed once; returns them in priority order. */
function memberIssues(group: Raw, gp: string, nodeByName: Map<string, Raw>, add: Add): string[] {
  const members: string[] = [];
  list(group.nodes).forEach((n, k) => {
    const name = str(n);
    if (name === undefined) return;
    if (!nodeByName.has(name)) {
      add(
        `${gp}.nodes[${k}]`,
        `node "${name}" is not defined under nodes; use one of: ${[...nodeByName.keys()].join(', ') || '(none defined)'}`,
      );
    } else if (members.includes(name)) {
      add(`${gp}.nodes[${k}]`, `node "${name}" is listed twice; list each node once, in priority order`);
    } else members.push(name);
  });
  return members;
}

/** A unique name; what its kind needs (ENIs, per-node maps of members, unique values, its checks). */
function resourceIssues(res: Raw, ctx: CheckContext, seen: Seen): void {
  const { path: rp, add, members } = ctx;
  const rname = str(res.name);
  const type = str(res.type);
  if (rname !== undefined) {
    const first = seen.resources.get(rname);
    if (first !== undefined)
      add(
        `${rp}.name`,
        `resource name "${rname}" is already used by ${first}; resource names must be unique in the cluster`,
      );
    else seen.resources.set(rname, rp);
    if (type) (ctx.groupResources as Map<string, string>).set(rname, type);
  }
  const kind = type ? resourceKind(type) : undefined;
  if (!kind) return; // the schema names the known types
  if (kind.needsEni) {
    const perNode = isObject(res.eni) ? res.eni : {};
    for (const member of members) {
      if (str(perNode[member]) === undefined && str(ctx.nodes.get(member)?.eni) === undefined) {
        add(
          rp,
          `${type} resource "${rname ?? '?'}" needs an ENI for node "${member}": set eni on that node, or eni: { ${member}: eni-... } on this resource`,
        );
      }
    }
  }
  for (const key of kind.perNodeFields ?? []) {
    if (!isObject(res[key])) continue;
    for (const n of Object.keys(res[key])) {
      if (!members.includes(n))
        add(
          `${rp}.${key}.${n}`,
          `"${n}" is not a node of group ${ctx.group}; use one of: ${members.join(', ')}`,
        );
    }
  }
  const unique = kind.unique;
  const value = unique ? str(res[unique.field]) : undefined;
  if (unique && value !== undefined) {
    const key = `${type}.${unique.field}=${value}`;
    const other = seen.uniques.get(key);
    if (other)
      add(`${rp}.${unique.field}`, `${unique.what} ${value} is already used by ${other}; ${unique.hint}`);
    else seen.uniques.set(key, rp);
  }
  kind.check?.(res, ctx);
}

/** A name unique among monitors and resources; its resource in the group; its kind's checks. */
function monitorIssues(mon: Raw, ctx: CheckContext, seen: Seen): void {
  const { path: mp, add, groupResources } = ctx;
  const mname = str(mon.name);
  const type = str(mon.type);
  if (mname !== undefined) {
    const first = seen.monitors.get(mname) ?? seen.resources.get(mname);
    if (first !== undefined)
      add(
        `${mp}.name`,
        `name "${mname}" is already used by ${first}; monitor names must be unique in the cluster and differ from resource names`,
      );
    else seen.monitors.set(mname, mp);
  }
  const target = str(mon.resource);
  if (target !== undefined && !groupResources.has(target)) {
    add(
      `${mp}.resource`,
      `resource "${target}" is not a resource of group ${ctx.group}; use one of: ${[...groupResources.keys()].join(', ') || '(none defined)'}`,
    );
  }
  const kind = type ? monitorKind(type) : undefined;
  if (kind?.needsAddress && ![...groupResources.values()].some((t) => resourceKind(t)?.onNode === 'address'))
    add(
      `${mp}.type`,
      `monitor type ${type} needs a ${addressTypes()} resource in group ${ctx.group} (an address on the owner's interface to check); add one or remove this monitor`,
    );
  kind?.check?.(mon, ctx);
  const interval = num(mon.intervalMs) ?? DEFAULT_MONITOR_INTERVAL_MS;
  const timeout = num(mon.timeoutMs);
  if (timeout !== undefined && timeout >= interval) {
    add(
      `${mp}.timeoutMs`,
      `timeoutMs (${timeout}) must be shorter than intervalMs (${interval}); write timeoutMs: ${Math.max(50, Math.floor(interval / 2))}`,
    );
  }
}
