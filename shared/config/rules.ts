/**
 * Cross-field rules of the cluster definition. They run on the raw input, defensively, even when the
 * schema found problems elsewhere: the user gets every problem in one run, not one per attempt.
 */
import type { ConfigIssue } from '../core/errors';
import { ipv4ToInt } from '../core/ipv4';
import { defaultHeartbeatRetryMs } from '../core/timing';

type Raw = Record<string, unknown>;

/**
 * Defaults of `timing`, set from `npm run bench` (README "Performance"): a silent crash is taken
 * over in about lease + 0.8 s (4.6 s), the agent fences itself 1 s before its lease ends, 3 lost
 * renewals in a row do not fence it (1750 + 3 x 250 = 2500 <= 3750 - 1000, 250 ms to spare), and
 * heartbeats cost 1.14 writes per second per two-node cluster (about $0.9 a month provisioned).
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1750;
export const DEFAULT_LEASE_MS = 3750;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 500;
/** Renewals lost in a row that a valid timing must survive without the agent fencing itself. */
export const TOLERATED_LOST_RENEWALS = 3;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Default fence margin: 1 s for the stop scripts to finish before the lease ends, but never more
 * than a third of the lease. (`heartbeatIntervalMs` is unused since the margin stopped depending on
 * it; kept so that callers need not change.)
 */
export function defaultFenceMarginMs(_heartbeatIntervalMs: number, leaseMs: number): number {
  return Math.max(1, Math.min(1000, Math.floor(leaseMs / 3)));
}

export { defaultHeartbeatRetryMs } from '../core/timing';

/**
 * Time from the last acknowledged renewal until the renewal after `lost` lost ones is sent: the
 * next heartbeat, then one retry per lost renewal after the first.
 */
export function renewalAfterLostMs(heartbeatIntervalMs: number, retryMs: number, lost: number): number {
  return heartbeatIntervalMs + lost * retryMs;
}

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
    fenceMarginMs: defaultFenceMarginMs(heartbeatIntervalMs, leaseMs),
    heartbeatRetryMs: defaultHeartbeatRetryMs(heartbeatIntervalMs),
  };
}

export function crossFieldIssues(input: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  if (!isObject(input)) return issues;

  // --- timing ---
  const timing = isObject(input.timing) ? input.timing : {};
  const hb = num(timing.heartbeatIntervalMs) ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const lease = num(timing.leaseMs) ?? DEFAULT_LEASE_MS;
  const explicitMargin = num(timing.fenceMarginMs);
  const margin = explicitMargin ?? defaultFenceMarginMs(hb, lease);
  const retry = num(timing.heartbeatRetryMs) ?? defaultHeartbeatRetryMs(hb);
  if (retry > hb) {
    add(
      'timing.heartbeatRetryMs',
      `heartbeatRetryMs (${retry}) must not exceed heartbeatIntervalMs (${hb}): it is how soon an unacknowledged renewal is retried; write heartbeatRetryMs: ${defaultHeartbeatRetryMs(hb)}`,
    );
  }
  // The agent fences itself (lease - margin) after the send of its last acknowledged renewal; the
  // renewal that follows TOLERATED_LOST_RENEWALS lost ones must still fit in that window.
  const needed = renewalAfterLostMs(hb, retry, TOLERATED_LOST_RENEWALS);
  if (retry <= hb && lease - margin < needed) {
    const minLease =
      explicitMargin !== undefined
        ? needed + explicitMargin
        : needed + 1000 >= 3000
          ? needed + 1000
          : Math.ceil(needed * 1.5);
    add(
      timing.leaseMs === undefined ? 'timing' : 'timing.leaseMs',
      `the agent would fence itself ${lease - margin} ms after its last renewal (leaseMs ${lease} - fenceMarginMs ${margin}), but ${TOLERATED_LOST_RENEWALS} lost renewals in a row (the next heartbeat after ${hb} ms, then retries every ${retry} ms) take ${needed} ms; write leaseMs: ${minLease} or more, or lower heartbeatIntervalMs`,
    );
  }

  // --- nodes ---
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
  const nodeNames = [...nodeByName.keys()];

  // --- groups ---
  const groupNames = new Map<string, number>();
  const resourceNames = new Map<string, string>();
  const monitorNames = new Map<string, string>();
  const vips = new Map<string, string>();
  const allocations = new Map<string, string>();
  list(input.groups).forEach((group, g) => {
    if (!isObject(group)) return;
    const gp = `groups[${g}]`;
    const gname = str(group.name);
    if (gname !== undefined) {
      const first = groupNames.get(gname);
      if (first !== undefined)
        add(
          `${gp}.name`,
          `group name "${gname}" is already used by groups[${first}]; group names must be unique`,
        );
      else groupNames.set(gname, g);
    }

    const members: string[] = [];
    list(group.nodes).forEach((n, k) => {
      const name = str(n);
      if (name === undefined) return;
      if (!nodeByName.has(name)) {
        add(
          `${gp}.nodes[${k}]`,
          `node "${name}" is not defined under nodes; use one of: ${nodeNames.join(', ') || '(none defined)'}`,
        );
      } else if (members.includes(name)) {
        add(`${gp}.nodes[${k}]`, `node "${name}" is listed twice; list each node once, in priority order`);
      } else members.push(name);
    });

    const resources = list(group.resources);
    const groupResources = new Map<string, string>();
    let hasVip = false;
    resources.forEach((res, r) => {
      if (!isObject(res)) return;
      const rp = `${gp}.resources[${r}]`;
      const rname = str(res.name);
      const type = str(res.type);
      if (rname !== undefined) {
        const first = resourceNames.get(rname);
        if (first !== undefined)
          add(
            `${rp}.name`,
            `resource name "${rname}" is already used by ${first}; resource names must be unique in the cluster`,
          );
        else resourceNames.set(rname, rp);
        if (type) groupResources.set(rname, type);
      }
      if (type === 'vip') hasVip = true;
      if (type === 'vip' || type === 'eip') {
        const perNode = isObject(res.eni) ? res.eni : {};
        for (const member of members) {
          if (str(perNode[member]) === undefined && str(nodeByName.get(member)?.eni) === undefined) {
            add(
              `${rp}`,
              `${type} resource "${rname ?? '?'}" needs an ENI for node "${member}": set eni on that node, or eni: { ${member}: eni-... } on this resource`,
            );
          }
        }
        for (const key of ['eni', 'privateIp'] as const) {
          if (!isObject(res[key])) continue;
          for (const n of Object.keys(res[key])) {
            if (!members.includes(n))
              add(
                `${rp}.${key}.${n}`,
                `"${n}" is not a node of group ${gname ?? g}; use one of: ${members.join(', ')}`,
              );
          }
        }
      }
      if (type === 'vip') {
        const ip = str(res.ip);
        if (ip) {
          const other = vips.get(ip);
          if (other)
            add(`${rp}.ip`, `VIP ${ip} is already used by ${other}; each VIP belongs to one resource`);
          else vips.set(ip, rp);
          const n = ipv4ToInt(ip);
          if (
            n !== undefined &&
            (n >>> 24 === 0 || n >>> 24 === 127 || n >>> 28 === 14 || n >>> 28 === 15 || n >>> 16 === 0xa9fe)
          ) {
            add(
              `${rp}.ip`,
              `VIP ${ip} is a reserved address (0/8, loopback, link-local or multicast); choose an unused private address outside the VPC CIDR, e.g. 172.16.0.10`,
            );
          }
          list(input.nodes).forEach((node, i) => {
            if (isObject(node) && str(node.privateIp) === ip)
              add(
                `${rp}.ip`,
                `VIP ${ip} is the privateIp of nodes[${i}]; choose an address outside the VPC CIDR`,
              );
          });
        }
      }
      if (type === 'eip') {
        const alloc = str(res.allocationId);
        if (alloc) {
          const other = allocations.get(alloc);
          if (other)
            add(
              `${rp}.allocationId`,
              `allocation ${alloc} is already used by ${other}; an Elastic IP can serve only one resource`,
            );
          else allocations.set(alloc, rp);
        }
      }
      if (type === 'dns' && res.ip === undefined) {
        for (const member of members) {
          if (str(nodeByName.get(member)?.privateIp) === undefined) {
            add(
              `${rp}`,
              `dns resource "${rname ?? '?'}" publishes the active node's privateIp, but node "${member}" has none: set privateIp on that node, or ip: <address> on this resource`,
            );
          }
        }
      }
    });

    list(group.monitors).forEach((mon, m) => {
      if (!isObject(mon)) return;
      const mp = `${gp}.monitors[${m}]`;
      const mname = str(mon.name);
      const type = str(mon.type);
      if (mname !== undefined) {
        const first = monitorNames.get(mname) ?? resourceNames.get(mname);
        if (first !== undefined)
          add(
            `${mp}.name`,
            `name "${mname}" is already used by ${first}; monitor names must be unique in the cluster and differ from resource names`,
          );
        else monitorNames.set(mname, mp);
      }
      const target = str(mon.resource);
      if (target !== undefined && !groupResources.has(target)) {
        add(
          `${mp}.resource`,
          `resource "${target}" is not a resource of group ${gname ?? g}; use one of: ${[...groupResources.keys()].join(', ') || '(none defined)'}`,
        );
      }
      if (type === 'resource') {
        if (target === undefined)
          add(
            `${mp}.resource`,
            'a monitor of type resource must name the vip, eip or dns resource whose check it configures',
          );
        else if (groupResources.has(target) && !['vip', 'eip', 'dns'].includes(groupResources.get(target)!)) {
          add(
            `${mp}.resource`,
            `resource "${target}" is of type ${groupResources.get(target)}; a monitor of type resource configures the check of a vip, eip or dns resource`,
          );
        }
      }
      if (type === 'vip' && !hasVip)
        add(
          `${mp}.type`,
          `monitor type vip needs a vip resource in group ${gname ?? g}; add one or remove this monitor`,
        );
      if (type === 'pid' && mon.pidFile === undefined && mon.processName === undefined) {
        add(mp, 'a pid monitor needs pidFile: /run/app.pid or processName: <name>');
      }
      const interval = num(mon.intervalMs) ?? 3000;
      const timeout = num(mon.timeoutMs);
      if (timeout !== undefined && timeout >= interval) {
        add(
          `${mp}.timeoutMs`,
          `timeoutMs (${timeout}) must be shorter than intervalMs (${interval}); write timeoutMs: ${Math.max(50, Math.floor(interval / 2))}`,
        );
      }
    });
  });
  return issues;
}
