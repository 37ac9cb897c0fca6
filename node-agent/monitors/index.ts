/** Builds the probe of each agent-side monitor type of the cluster definition. */
import {
  type AgentMonitorType,
  isAgentMonitor as agentSide,
  monitorKind,
  monitorTiming,
} from '../../shared/config/kinds';
import type { GroupConfig, MonitorConfig } from '../../shared/config/schema';
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

/** The monitors the kinds table (shared/config/kinds.ts) says run on the agent; each has a probe below. */
export type AgentMonitorConfig = Extract<MonitorConfig, { type: AgentMonitorType }>;

export function isAgentMonitor(m: MonitorConfig): m is AgentMonitorConfig {
  return agentSide(m);
}

export function monitorSpec(m: AgentMonitorConfig, group: string): MonitorSpec {
  return {
    name: m.name,
    type: m.type,
    group,
    intervalMs: m.intervalMs,
    timeoutMs: m.timeoutMs ?? defaultTimeoutMs(m.intervalMs),
    retries: m.retries,
    // A monitor that judges both ways (the vip monitor: present where active, absent elsewhere)
    // runs everywhere.
    timing: monitorKind(m.type)?.judgedEverywhere ? 'always' : monitorTiming(m),
    startWaitMs: m.startWaitMs,
  };
}

export interface ProbeDeps {
  vip: VipOps;
  localState: (group: string) => AgentGroupState;
  pingCommand?: string;
}

type ProbeBuilder<T extends AgentMonitorType> = (
  m: Extract<AgentMonitorConfig, { type: T }>,
  group: GroupConfig,
  deps: ProbeDeps,
) => Probe;

/** The probe of each agent-side monitor kind (a new kind of the table must add one: typed). */
const PROBES: { [T in AgentMonitorType]: ProbeBuilder<T> } = {
  ip: (m, _, deps) => pingProbe(m.host, deps.pingCommand),
  http: (m) => httpProbe(m.url, m.method, m.expectStatus),
  tcp: (m) => tcpProbe(m.host, m.port),
  pid: (m) =>
    pidProbe({
      ...(m.pidFile !== undefined ? { pidFile: m.pidFile } : {}),
      ...(m.processName !== undefined ? { processName: m.processName } : {}),
    }),
  disk: (m) => diskProbe(m.path, m.sizeBytes),
  command: (m) => commandProbe(m.command),
  dns: (m) => dnsProbe(m.hostname, m.expectIp),
  vip: (_, group, deps) => vipProbe(interfaceAddresses(group), () => deps.localState(group.name), deps.vip),
};

export function probeFor(m: AgentMonitorConfig, group: GroupConfig, deps: ProbeDeps): Probe {
  return (PROBES[m.type] as ProbeBuilder<typeof m.type>)(m as never, group, deps);
}
