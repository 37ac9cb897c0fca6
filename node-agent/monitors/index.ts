/** Builds the probe of each agent-side monitor type of the cluster definition. */
import type { GroupConfig, MonitorConfig } from '../../shared/config/schema';
import { monitorTiming } from '../../shared/core/decide';
import type { AgentGroupState } from '../../shared/core/model';
import { interfaceAddresses } from '../../shared/core/node-side';
import type { VipOps } from '../vip';
import { commandProbe } from './command';
import { diskProbe } from './disk';
import { dnsProbe } from './dns';
import { httpProbe } from './http';
import { pidProbe } from './pid';
import { pingProbe } from './ping';
import type { Probe } from './probe';
import { defaultTimeoutMs, type MonitorSpec } from './runner';
import { tcpProbe } from './tcp';
import { vipProbe } from './vip';

export type AgentMonitorConfig = Extract<
  MonitorConfig,
  { type: 'pid' | 'disk' | 'ip' | 'http' | 'tcp' | 'command' | 'dns' | 'vip' }
>;

const AGENT_TYPES: ReadonlySet<string> = new Set([
  'pid',
  'disk',
  'ip',
  'http',
  'tcp',
  'command',
  'dns',
  'vip',
]);

export function isAgentMonitor(m: MonitorConfig): m is AgentMonitorConfig {
  return AGENT_TYPES.has(m.type);
}

export function monitorSpec(m: AgentMonitorConfig, group: string): MonitorSpec {
  return {
    name: m.name,
    type: m.type,
    group,
    intervalMs: m.intervalMs,
    timeoutMs: m.timeoutMs ?? defaultTimeoutMs(m.intervalMs),
    retries: m.retries,
    // The vip monitor judges both ways (present where active, absent elsewhere): it always runs.
    timing: m.type === 'vip' ? 'always' : monitorTiming(m),
    startWaitMs: m.startWaitMs,
  };
}

export interface ProbeDeps {
  vip: VipOps;
  localState: (group: string) => AgentGroupState;
  pingCommand?: string;
}

export function probeFor(m: AgentMonitorConfig, group: GroupConfig, deps: ProbeDeps): Probe {
  switch (m.type) {
    case 'ip':
      return pingProbe(m.host, deps.pingCommand);
    case 'http':
      return httpProbe(m.url, m.method, m.expectStatus);
    case 'tcp':
      return tcpProbe(m.host, m.port);
    case 'pid':
      return pidProbe({
        ...(m.pidFile !== undefined ? { pidFile: m.pidFile } : {}),
        ...(m.processName !== undefined ? { processName: m.processName } : {}),
      });
    case 'disk':
      return diskProbe(m.path, m.sizeBytes);
    case 'command':
      return commandProbe(m.command);
    case 'dns':
      return dnsProbe(m.hostname, m.expectIp);
    case 'vip': {
      return vipProbe(interfaceAddresses(group), () => deps.localState(group.name), deps.vip);
    }
  }
}
