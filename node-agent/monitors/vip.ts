/**
 * The group's floating addresses are on a local interface while the group runs here, and on none
 * otherwise (an address left on a standby would answer traffic meant for the active node). While a
 * start or a stop is under way, either is fine.
 */
import type { AgentGroupState } from '../../shared/core/model';
import type { VipOps } from '../vip';
import { fail, ok, type Probe } from './probe';

export function vipProbe(ips: readonly string[], localState: () => AgentGroupState, vip: VipOps): Probe {
  return async () => {
    const state = localState();
    if (ips.length === 0) return fail('the group has no vip resource to check');
    const held = await Promise.all(ips.map(async (ip) => (await vip.holders(ip)).length > 0));
    const present = ips.filter((_, i) => held[i]);
    if (state === 'running') {
      const missing = ips.filter((ip) => !present.includes(ip));
      return missing.length === 0
        ? ok(`${ips.join(', ')} on a local interface`)
        : fail(`group runs here but ${missing.join(', ')} is on no local interface`);
    }
    if (state === 'stopped') {
      return present.length === 0
        ? ok(`${ips.join(', ')} absent (group does not run here)`)
        : fail(`group does not run here but ${present.join(', ')} is on a local interface`);
    }
    return ok(`group is ${state}; not judged`);
  };
}
