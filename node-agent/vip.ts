/**
 * Floating addresses on a local interface: `ip addr add|del <ip>/32 dev <iface>`, idempotent, and
 * `ip -o -4 addr show` to see which interfaces hold one. The VPC side (the route table /32 of a
 * `vip`, the ENI assignment of a `secondaryIp`) is the controller's job; the address on the
 * interface is the node's, so that the kernel accepts the traffic.
 *
 * Reads and writes go through the same command, so that what the agent reports (the vip monitor,
 * the group's state) is what it changed. The read asks for one address only (`ip -o -4 addr show
 * to IP/32`): a host with many addresses must not overflow the captured output. The `ip` binary can
 * be replaced with FAILOVER_AGENT_IP_COMMAND (tests, the sandbox, unusual layouts); the replacement
 * must answer `-o -4 addr show to IP/32` in `ip`'s one-line format. The interface is, in order: the
 * one asked for (`guard --dev`), FAILOVER_AGENT_VIP_DEV, the interface of the default route.
 */
import { readFileSync } from 'node:fs';
import { describeExit, runCommand } from './process-util';

export interface VipOps {
  /** Interfaces that hold `ip` now (usually zero or one). */
  holders(ip: string): Promise<string[]>;
  add(ip: string, dev?: string): Promise<void>;
  remove(ip: string): Promise<void>;
}

/** Interface of the default route (/proc/net/route), e.g. ens5 on Nitro instances. */
export function defaultInterface(): string | undefined {
  try {
    const lines = readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [iface, destination] = line.trim().split(/\s+/);
      if (destination === '00000000' && iface) return iface;
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/**
 * Interfaces holding each IPv4 address, from `ip -o -4 addr show` lines such as
 * `2: ens5    inet 172.16.0.10/32 scope global ens5\       valid_lft forever ...`.
 */
export function parseIpAddrShow(output: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of output.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d{1,3}(?:\.\d{1,3}){3})\//.exec(line.trim());
    if (!m) continue;
    const [, iface, address] = m as unknown as [string, string, string];
    // `ip` prints "eth0@if5" for a veth peer: the device name is before the "@".
    const dev = iface.split('@')[0]!;
    out.set(address, [...(out.get(address) ?? []), dev]);
  }
  return out;
}

const IP_TIMEOUT_MS = 5000;

/** Address operations with the `ip` command (FAILOVER_AGENT_IP_COMMAND overrides it). */
export function createVipOps(env: Record<string, string | undefined>): VipOps {
  const ipCommand = env.FAILOVER_AGENT_IP_COMMAND ?? 'ip';
  const ipRun = async (args: string[]): Promise<string> => {
    const result = await runCommand({
      argv: [ipCommand, ...args],
      output: 'capture',
      timeoutMs: IP_TIMEOUT_MS,
    });
    if (result.code !== 0 || result.timedOut || result.error) {
      throw new Error(
        `${ipCommand} ${args.join(' ')}: ${describeExit(result, IP_TIMEOUT_MS)} ${result.output.trim()}`.trim(),
      );
    }
    return result.output;
  };
  const holders = async (ip: string): Promise<string[]> =>
    parseIpAddrShow(await ipRun(['-o', '-4', 'addr', 'show', 'to', `${ip}/32`])).get(ip) ?? [];
  return {
    holders,
    async add(ip, dev) {
      if ((await holders(ip)).length > 0) return;
      const iface = dev ?? env.FAILOVER_AGENT_VIP_DEV ?? defaultInterface();
      if (!iface) {
        throw new Error(
          `no interface for address ${ip}: the node has no default route; set FAILOVER_AGENT_VIP_DEV=IFACE in the agent's environment (or guard --dev IFACE)`,
        );
      }
      await ipRun(['addr', 'add', `${ip}/32`, 'dev', iface]);
    },
    async remove(ip) {
      for (const iface of await holders(ip)) {
        // Labels such as eth0:1 belong to their base device.
        await ipRun(['addr', 'del', `${ip}/32`, 'dev', iface.split(':')[0]!]);
      }
    },
  };
}
