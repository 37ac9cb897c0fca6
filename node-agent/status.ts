/**
 * `failover-agent status`: what this node's agent holds, read from the state directory alone (no
 * AWS access, no credentials): the lease (age of the last acknowledged renewal, time left before
 * the self-fence), the groups that run here and the addresses they hold, the watchdog, the monitors
 * and witnesses as last reported.
 *
 * The daemon writes `status.json` after every acknowledged renewal (what that renewal reported);
 * `agent.json` (the lease, read by the guard) and `groups/<g>.json` (what runs here) are read as
 * they are. Times are measured on CLOCK_MONOTONIC, like the guard does, so a skewed wall clock does
 * not change the answer.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Heartbeat } from '../shared/core/model';
import type { Clock } from './clock';
import type { Ack } from './core/heartbeat-writer';
import { leaseProblem } from './lease-check';
import { type LeaseRecord, type LocalGroupRecord, LocalState, writeJsonAtomic } from './local-state';
import type { PlatformName, WatchdogSupport } from './platform/types';
import { sameProcessAlive } from './process-util';
import type { WatchdogStatus as DeviceStatus, Watchdog } from './watchdog';

/** The file the daemon writes for `failover-agent status`. */
export const STATUS_FILE = 'status.json';

/**
 * The watchdog as the daemon sees it: the device as watchdog.ts found it (its real timeout and where
 * that came from, armed or why not) and how often it was fed; or none, and why on this platform.
 * `unarmed`: the device is not open (no definition yet, or a timeout that does not suit the lease:
 * `problem` says which); `closed`: it was fed, then closed by a clean shutdown.
 */
export type WatchdogStatus =
  | (DeviceStatus & { state: 'armed' | 'unarmed' | 'closed'; feeds: number })
  | { state: 'none'; reason?: string };

/** What the daemon writes after each acknowledged renewal. */
export interface StatusRecord {
  pid: number;
  platform: PlatformName;
  agentVersion: string;
  nodeVersion: string;
  /** The last acknowledged renewal: its number, token, when it was sent (monotonic and wall). */
  lastAck: { seq: number; token: string; sentMono: number; sentAt: number; ackedMono: number };
  state: Heartbeat['state'];
  leaseMs: number;
  fenceMarginMs: number;
  heartbeatIntervalMs: number;
  watchdog: WatchdogStatus;
  fence?: Heartbeat['fence'];
  monitors: Heartbeat['monitors'];
  isolated: boolean;
  witnesses?: Heartbeat['witnesses'];
  groups: Heartbeat['groups'];
  peers: Heartbeat['peers'];
  spot?: Heartbeat['spot'];
  rebalance?: Heartbeat['rebalance'];
  runtimeAdvice?: string;
}

/** The status record of an acknowledged renewal. */
export function statusRecord(
  ack: Ack,
  extra: { platform: PlatformName; watchdog: WatchdogStatus; ackedMono: number; runtimeAdvice?: string },
): StatusRecord {
  const hb = ack.heartbeat;
  return {
    pid: process.pid,
    platform: extra.platform,
    agentVersion: hb.agentVersion,
    nodeVersion: process.versions.node,
    lastAck: {
      seq: ack.seq,
      token: hb.token,
      sentMono: ack.sentMono,
      sentAt: hb.sentAt,
      ackedMono: extra.ackedMono,
    },
    state: hb.state,
    leaseMs: ack.timing.leaseMs,
    fenceMarginMs: ack.timing.fenceMarginMs,
    heartbeatIntervalMs: ack.timing.heartbeatIntervalMs,
    watchdog: extra.watchdog,
    ...(hb.fence ? { fence: hb.fence } : {}),
    monitors: hb.monitors,
    isolated: hb.isolated,
    ...(hb.witnesses ? { witnesses: hb.witnesses } : {}),
    groups: hb.groups,
    peers: hb.peers,
    ...(hb.spot ? { spot: hb.spot } : {}),
    ...(hb.rebalance ? { rebalance: hb.rebalance } : {}),
    ...(extra.runtimeAdvice ? { runtimeAdvice: extra.runtimeAdvice } : {}),
  };
}

/** Writes the status file (whole-file replace, like every file of the state directory). */
export function writeStatus(state: LocalState, record: StatusRecord): void {
  writeJsonAtomic(path.join(state.dir, STATUS_FILE), record);
}

/** The watchdog's state for the status file. */
export function watchdogStatus(
  watchdog: Pick<Watchdog, 'status' | 'feeds'> | undefined,
  support: WatchdogSupport,
): WatchdogStatus {
  if (!watchdog) return support.supported ? { state: 'none' } : { state: 'none', reason: support.reason };
  const device = watchdog.status;
  return {
    ...device,
    state: device.armed ? 'armed' : watchdog.feeds > 0 ? 'closed' : 'unarmed',
    feeds: watchdog.feeds,
  };
}

/** Everything `failover-agent status` shows, computed at one moment. */
export interface StatusView {
  stateDir: string;
  /** Whether the daemon that wrote agent.json still runs. */
  running: boolean;
  /** Why the agent holds no live lease (the guard's own words), or undefined when it holds one. */
  leaseProblem?: string;
  lease?: LeaseRecord;
  /** Milliseconds left before the self-fence (negative: past). */
  fenceInMs?: number;
  /** Age of the last acknowledged renewal: now - its send time. */
  leaseAgeMs?: number;
  status?: StatusRecord;
  groups: LocalGroupRecord[];
}

function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Reads the state directory and computes the view (no AWS call). */
export function readStatus(stateDir: string, clock: Clock): StatusView {
  const state = new LocalState(stateDir);
  const lease = state.readLease();
  const status = readJsonFile<StatusRecord>(path.join(stateDir, STATUS_FILE));
  const now = clock.mono();
  const view: StatusView = {
    stateDir,
    running: lease ? sameProcessAlive(lease.pid, lease.pidStart) : false,
    groups: state.listGroups(),
  };
  if (lease) {
    view.lease = lease;
    const fenceAt = lease.fenceUntilMono ?? lease.leaseUntilMono;
    if (fenceAt > 0) view.fenceInMs = Math.round(fenceAt - now);
    const problem = leaseProblem(lease, { cluster: lease.cluster, node: lease.node, stateDir }, clock);
    if (problem) view.leaseProblem = problem;
  } else {
    view.leaseProblem = leaseProblem(undefined, { cluster: '', node: '', stateDir }, clock);
  }
  // A status file of an older daemon (another pid) says nothing about this one's renewals.
  if (status && (!lease || status.pid === lease.pid)) {
    view.status = status;
    view.leaseAgeMs = Math.round(now - status.lastAck.sentMono);
  }
  return view;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The view as text for a person at the node's console. */
export function formatStatus(view: StatusView): string {
  const out: string[] = [];
  const { lease, status } = view;
  if (!lease) {
    out.push(`failover-agent: no agent has run with state directory ${view.stateDir}`);
    if (view.leaseProblem) out.push(`  ${view.leaseProblem}`);
    return out.join('\n');
  }
  out.push(
    `failover-agent ${status?.agentVersion ?? ''} ${lease.cluster}/${lease.node}: ${view.running ? `running (pid ${lease.pid})` : `NOT RUNNING (pid ${lease.pid} is gone)`}`.replace(
      /\s+/,
      ' ',
    ),
  );
  out.push(
    `  table ${lease.table}${lease.region ? ` in ${lease.region}` : ''}, state directory ${view.stateDir}`,
  );
  const leaseLine = view.leaseProblem
    ? `  lease: NOT HELD: ${view.leaseProblem}`
    : `  lease: held; self-fence in ${seconds(view.fenceInMs ?? 0)} unless renewed (lease ${lease.leaseMs} ms, fence margin ${lease.fenceMarginMs} ms)`;
  out.push(leaseLine);
  if (lease.rejectedConfig)
    out.push(
      `  definition version ${lease.rejectedConfig.version} REFUSED (the last good one stays): ${lease.rejectedConfig.problem}`,
    );
  if (status) {
    out.push(
      `  last acknowledged renewal: #${status.lastAck.seq} sent ${seconds(view.leaseAgeMs ?? 0)} ago (${new Date(status.lastAck.sentAt).toISOString()} by the node's clock), reported ${status.state}`,
    );
    const wd = status.watchdog;
    out.push(
      wd.state === 'none'
        ? `  watchdog: none${wd.reason ? ` (${wd.reason})` : ''}; silence proof = lease + stop scripts' time (${seconds(status.fence?.maxStopMs ?? 0)})`
        : `  watchdog: ${wd.state} ${wd.device}${wd.timeoutMs !== undefined ? ` timeout ${seconds(wd.timeoutMs)} (${wd.source})` : ''}, fed ${wd.feeds} times${wd.problem ? `; ${wd.problem}` : ''}`,
    );
    if (status.runtimeAdvice) out.push(`  runtime: ${status.runtimeAdvice}`);
  } else {
    out.push('  last acknowledged renewal: none recorded yet (status.json is written after the first one)');
  }
  if (view.groups.length === 0) out.push('  groups here: none');
  for (const g of view.groups) {
    out.push(
      `  group ${g.group}: ${g.state} at epoch ${g.epoch}${g.vips?.length ? `, holds ${g.vips.join(', ')}` : ''}${g.run ? `, ${g.run.action} in progress (guard pid ${g.run.guardPid})` : ''}${g.detail ? ` (${g.detail})` : ''}`,
    );
  }
  if (status) {
    const monitors = Object.entries(status.monitors);
    if (monitors.length === 0) out.push('  monitors: none');
    for (const [name, m] of monitors)
      out.push(`  monitor ${name}: ${m.status}${m.detail ? ` - ${m.detail}` : ''}`);
    for (const w of status.witnesses ?? [])
      out.push(`  witness ${w.target}: ${w.ok ? 'ok' : 'FAILING'}${w.detail ? ` - ${w.detail}` : ''}`);
    if (status.isolated) out.push('  ISOLATED: every witness fails');
    for (const [peer, p] of Object.entries(status.peers))
      out.push(`  peer ${peer}: renewal unchanged for ${seconds(p.silentForMs)}`);
    if (status.spot) out.push(`  Spot interruption notice: ${status.spot.action} at ${status.spot.time}`);
    if (status.rebalance) out.push(`  rebalance recommendation at ${status.rebalance.noticeTime}`);
  }
  return out.join('\n');
}

/** Exit code of `failover-agent status`: 0 running with a live lease, 1 otherwise. */
export function statusExitCode(view: StatusView): number {
  return view.running && !view.leaseProblem ? 0 : 1;
}
