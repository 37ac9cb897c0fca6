/**
 * Cross-field rules of the cluster definition. They run on the raw input, defensively, even when the
 * schema found problems elsewhere: the user gets every problem in one run, not one per attempt.
 */
import type { ConfigIssue } from '../core/errors';
import { ipv4ToInt } from '../core/ipv4';

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Default fence margin: two heartbeats, but never more than a quarter of the lease. */
export function defaultFenceMarginMs(heartbeatIntervalMs: number, leaseMs: number): number {
  return Math.max(1, Math.min(2 * heartbeatIntervalMs, Math.floor(leaseMs / 4)));
}

export function crossFieldIssues(input: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  if (!isObject(input)) return issues;

  // --- timing ---
  const timing = isObject(input.timing) ? input.timing : {};
  const hb = num(timing.heartbeatIntervalMs) ?? 1000;
  const lease = num(timing.leaseMs) ?? 10_000;
  if (lease < 3 * hb) {
    add(
      'timing.leaseMs',
      `leaseMs (${lease}) must be at least 3 x heartbeatIntervalMs (${hb}) so that one lost heartbeat does not end the lease; write leaseMs: ${3 * hb} or more, or lower heartbeatIntervalMs`,
    );
  }
  const margin = num(timing.fenceMarginMs) ?? defaultFenceMarginMs(hb, lease);
  // Only once the lease itself is long enough: one root cause, one message.
  if (lease >= 3 * hb && lease - margin < 2 * hb) {
    add(
      timing.fenceMarginMs === undefined ? 'timing' : 'timing.fenceMarginMs',
      `the agent would fence itself ${lease - margin} ms after its last renewal, less than two heartbeats (${2 * hb} ms); write fenceMarginMs: ${Math.max(1, lease - 2 * hb)} or less, or raise leaseMs`,
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
