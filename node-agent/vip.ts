/**
 * The VIP on a local interface: `ip addr add|del <vip>/32 dev <iface>`, idempotent. The route
 * table /32 that sends the VIP's traffic to the active node is the controller's job; the address
 * on the interface is the node's, so that the kernel accepts the traffic.
 *
 * The `ip` binary can be replaced with FAILOVER_AGENT_IP_COMMAND (tests, unusual layouts).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { describeExit, runCommand } from './process-util';

export interface VipOps {
  /** Interfaces that hold `ip` now (usually zero or one). */
  holders(ip: string): string[];
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

/** VIP operations with the `ip` command (FAILOVER_AGENT_IP_COMMAND overrides it). */
export function createVipOps(env: Record<string, string | undefined>): VipOps {
  const ipCommand = env.FAILOVER_AGENT_IP_COMMAND ?? 'ip';
  const holders = (ip: string): string[] => {
    const out: string[] = [];
    for (const [name, addrs] of Object.entries(networkInterfaces())) {
      if (addrs?.some((a) => a.family === 'IPv4' && a.address === ip)) out.push(name);
    }
    return out;
  };
  const ipRun = async (args: string[]) => {
    const result = await runCommand({ argv: [ipCommand, ...args], output: 'capture', timeoutMs: 5000 });
    if (result.code !== 0) {
      throw new Error(
        `${ipCommand} ${args.join(' ')}: ${describeExit(result, 5000)} ${result.output.trim()}`.trim(),
      );
    }
  };
  return {
    holders,
    async add(ip, dev) {
      if (holders(ip).length > 0) return;
      const iface = dev ?? defaultInterface();
      if (!iface) {
        throw new Error(`no interface for VIP ${ip}: the node has no default route; pass --dev IFACE`);
      }
      await ipRun(['addr', 'add', `${ip}/32`, 'dev', iface]);
    },
    async remove(ip) {
      for (const iface of holders(ip)) {
        // Labels such as eth0:1 belong to their base device.
        await ipRun(['addr', 'del', `${ip}/32`, 'dev', iface.split(':')[0]!]);
      }
    },
  };
}
