/**
 * Floating addresses on a local interface, through the platform: `ip addr add|del <ip>/32` on
 * Linux, New-NetIPAddress / Remove-NetIPAddress on Windows; idempotent. The VPC side (the route
 * table /32 of a `vip`, the ENI assignment of a `secondaryIp`) is the controller's job; the address
 * on the interface is the node's, so that the kernel accepts the traffic.
 *
 * On Linux the `ip` binary can be replaced with FAILOVER_AGENT_IP_COMMAND (tests, the sandbox,
 * unusual layouts); the replacement must answer `-o -4 addr show to IP/32` in `ip`'s one-line
 * format. The interface is, in order: the one asked for (`guard --dev`), FAILOVER_AGENT_VIP_DEV,
 * the interface of the default route.
 */
import { currentPlatform } from './platform';
import type { VipOps } from './platform/types';

export { defaultInterface, parseIpAddrShow } from './platform/linux';
export type { VipOps };

/** Address operations of this platform. */
export function createVipOps(env: Record<string, string | undefined>): VipOps {
  return currentPlatform().vipOps(env);
}
