/**
 * The agent's state directory, shared with the guard processes (default /var/lib/failover-agent):
 *
 *   agent.json          the daemon's identity and lease: who it is, until when (CLOCK_MONOTONIC) it
 *                       holds its lease, fenced / leaving. The guard refuses to start anything
 *                       unless this shows a live lease.
 *   agent.lock          one daemon per state directory
 *   groups/<g>.json     what runs here for group g: starting | running | stopping | stopped | failed,
 *                       the epoch, and the guard run in progress (its pid and its command's pid)
 *   locks/<g>.lock      serializes starts and stops of g between the daemon and guards
 *   config.json         the last cluster definition seen, so that the stop scripts of a running
 *                       group are known even when DynamoDB cannot be read at start
 *
 * Every write is a whole-file replace (write a temporary file, rename it over), so a reader sees the
 * old or the new record, never half of one. Reads and writes are synchronous on purpose: they are
 * small local files, and the libuv thread pool may be busy with a hung EFS probe.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterConfig } from '../shared/config/load';
import type { AgentGroupState } from '../shared/core/model';
import { currentPlatform } from './platform';
import { killGroup, processStartTime } from './process-util';

/**
 * Default state directory (/var/lib/failover-agent, %ProgramData%\failover-agent on Windows);
 * `--state-dir` or FAILOVER_AGENT_STATE_DIR override it.
 */
export const DEFAULT_STATE_DIR = currentPlatform().defaultStateDir;

/** This process's start time, stamped into the group records it writes. */
const OWN_START = processStartTime(process.pid);

/** A guard run in progress (or interrupted) for a group. */
export interface GuardRun {
  action: 'start' | 'stop';
  /** Random id, also exported to the command as FAILOVER_GUARD_RUN. */
  nonce: string;
  guardPid: number;
  guardStart?: string;
  /** The command's pid, which is also its process group id. */
  cmdPid?: number;
  /** The command's start time and the boot it ran in: a pid recorded before a reboot, or reused since, is not it. */
  cmdStart?: string;
  boot?: string;
}

/**
 * Kills the process group of a guard run's command, only while it can still be that command's:
 * same boot, and a leader that is either gone (its group, if any remains, keeps its id from reuse)
 * or the very process that was started. True when signalled.
 */
export function killRunCommand(run: GuardRun, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (!run.cmdPid) return false;
  const boot = bootId();
  if (run.boot !== undefined && boot !== undefined && run.boot !== boot) return false;
  if (run.cmdStart !== undefined) {
    const now = processStartTime(run.cmdPid);
    if (now !== undefined && now !== run.cmdStart) return false;
  }
  return killGroup(run.cmdPid, signal);
}

/** What runs locally for one group. Written by the guard and by the daemon, under the group lock. */
export interface LocalGroupRecord {
  group: string;
  state: AgentGroupState;
  /** The epoch the state belongs to (the guard's --epoch, or the epoch it was stopped at). */
  epoch: number;
  /** Writer pid and wall time. */
  pid: number;
  /**
   * The writer's start time (stamped by writeGroup for the writing process): a "starting" or
   * "stopping" record whose writer's pid was reused since (an agent restart, a reboot) is not
   * taken for one still under way.
   */
  pidStart?: string;
  at: number;
  run?: GuardRun;
  /** VIPs a guard put on a local interface for this group (removed again by any stop). */
  vips?: string[];
  /**
   * Markers of interrupted guard runs whose processes nobody has killed yet (a dead start found by
   * a guard stop or a later start), newest first: kept until a stop has killed them, so that whoever
   * stops the group next still finds them if this run dies too.
   */
  left?: string[];
  detail?: string;
}

/** The daemon's lease as the guard sees it. */
export interface LeaseRecord {
  pid: number;
  pidStart?: string;
  incarnation: string;
  /** Kernel boot id: CLOCK_MONOTONIC values of another boot mean nothing. */
  bootId?: string;
  cluster: string;
  node: string;
  table: string;
  region?: string;
  endpoint?: string;
  /**
   * CLOCK_MONOTONIC ms until which a start may be admitted: the fence deadline of this process's
   * own last acknowledged renewal (send + lease - margin); 0 before its first (FenceTimer.admitUntil).
   */
  leaseUntilMono: number;
  /**
   * CLOCK_MONOTONIC ms at which the fence deadline passes, a restored one included: what a restarted
   * agent keeps fencing by (absent in files of older agents: leaseUntilMono then).
   */
  fenceUntilMono?: number;
  fenced: boolean;
  leaving: boolean;
  leaseMs: number;
  fenceMarginMs: number;
  /**
   * CLOCK_MONOTONIC ms: the latest reset an idle watchdog feed (made while nothing ran here) may
   * have pushed the node to, announced BEFORE the feed (node-agent/core/watchdog-feeder.ts). The
   * guard admits no start this could outlive. Absent without a watchdog.
   */
  idleFeedResetBy?: number;
  /** The watchdog as the agent found it (for `failover-agent status` and the logs). */
  watchdog?: {
    device: string;
    timeoutMs?: number;
    source?: 'sysfs' | 'declared';
    armed: boolean;
    problem?: string;
  };
  /** A stored definition version the agent refused, and why (it keeps the last good one). */
  rejectedConfig?: { version: number; problem: string };
  at: number;
}

const GROUP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Group names become file names: only the names the cluster schema allows. */
export function checkGroupName(group: string): string {
  if (!GROUP_NAME.test(group)) {
    throw new Error(
      `invalid group name "${group}": use 1-63 lowercase letters, digits and dashes, as in the cluster definition`,
    );
  }
  return group;
}

/** The boot id (CLOCK_MONOTONIC values are comparable within one boot only). */
export function bootId(): string | undefined {
  return currentPlatform().bootId();
}

function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    // Never produced by our own whole-file writes (rename over). A damaged record must not read as
    // "nothing runs here": that would let the controller start the group elsewhere.
    throw new Error(
      `${file} is not valid JSON (${(e as Error).message}); fix or remove it once the application is stopped`,
    );
  }
}

let tmpCounter = 0;

/** Replaces a file atomically (rename over it). */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  try {
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // best effort
    }
    throw e;
  }
}

/** The state directory: group records, the lease file, locks and the definition cache. */
export class LocalState {
  readonly groupsDir: string;
  readonly locksDir: string;

  constructor(readonly dir: string) {
    this.groupsDir = path.join(dir, 'groups');
    this.locksDir = path.join(dir, 'locks');
  }

  /** Creates the directories (owner-only: the guard runs as root through SSM, like the daemon). */
  ensure(): void {
    for (const d of [this.dir, this.groupsDir, this.locksDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  groupFile(group: string): string {
    return path.join(this.groupsDir, `${checkGroupName(group)}.json`);
  }

  lockFile(group: string): string {
    return path.join(this.locksDir, `${checkGroupName(group)}.lock`);
  }

  get agentLockFile(): string {
    return path.join(this.dir, 'agent.lock');
  }

  readGroup(group: string): LocalGroupRecord | undefined {
    return readJson<LocalGroupRecord>(this.groupFile(group));
  }

  writeGroup(record: LocalGroupRecord): void {
    const stamped =
      record.pid === process.pid && record.pidStart === undefined && OWN_START !== undefined
        ? { ...record, pidStart: OWN_START }
        : record;
    writeJsonAtomic(this.groupFile(record.group), stamped);
  }

  /**
   * Every group with a record, running or not. Throws when the records cannot be read (only a
   * missing directory means "none"): callers must then assume something may run here.
   */
  listGroups(): LocalGroupRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.groupsDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: LocalGroupRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const rec = readJson<LocalGroupRecord>(path.join(this.groupsDir, name));
      if (rec && GROUP_NAME.test(rec.group)) out.push(rec);
    }
    return out;
  }

  readLease(): LeaseRecord | undefined {
    return readJson<LeaseRecord>(path.join(this.dir, 'agent.json'));
  }

  writeLease(record: LeaseRecord): void {
    writeJsonAtomic(path.join(this.dir, 'agent.json'), record);
  }

  readConfigCache(): { version: number; config: ClusterConfig } | undefined {
    return readJson(path.join(this.dir, 'config.json'));
  }

  writeConfigCache(version: number, config: ClusterConfig): void {
    writeJsonAtomic(path.join(this.dir, 'config.json'), { version, config });
  }
}
