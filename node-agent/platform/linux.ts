/**
 * Linux: /proc for processes and the boot id, process groups for command trees, `ip` for
 * addresses, softdog for the watchdog, journald priorities on log lines, systemd for the service.
 */
import { fstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describeExit, runProcess } from './run';
import type { LogLevel, Platform, VipOps } from './types';

/** Environment variable carried by every command a guard runs: `FAILOVER_GUARD_RUN=<nonce>`. */
export const GUARD_MARKER = 'FAILOVER_GUARD_RUN';

function readStat(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces or parentheses). */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A zombie has exited; it only waits for its parent (or an init that reaps late).
  const stat = readStat(pid);
  const state = stat === undefined ? undefined : statFields(stat)[0];
  return state !== 'Z' && state !== 'X';
}

function killPid(pid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A command runs as the leader of its own process group (spawned detached): kill the group. */
function killTree(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs every process whose environment carries `FAILOVER_GUARD_RUN=<nonce>`. */
function killMarked(nonce: string): number[] {
  const needle = Buffer.from(`${GUARD_MARKER}=${nonce}\0`);
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return killed;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`);
      if (environ.indexOf(needle) >= 0 && killPid(pid, 'SIGKILL')) killed.push(pid);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return killed;
}

/** First pid whose comm or argv[0] base name is `name`. */
export function findProcessInProc(name: string, procDir = '/proc'): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync(procDir);
  } catch {
    return undefined;
  }
  // comm is cut to 15 characters by the kernel.
  const comm = name.slice(0, 15);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`${procDir}/${entry}/comm`, 'utf8').trim() === comm) {
        if (name.length <= 15) return Number(entry);
        const argv0 = readFileSync(`${procDir}/${entry}/cmdline`, 'utf8').split('\0')[0] ?? '';
        if (path.basename(argv0) === name) return Number(entry);
      }
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

/** Interface of the default route (/proc/net/route), e.g. ens5 on Nitro instances. */
export function defaultInterface(routeFile = '/proc/net/route'): string | undefined {
  try {
    const lines = readFileSync(routeFile, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [iface, destination] = line.trim().split(/\s+/);
      if (destination === '00000000' && iface) return iface;
    }
  } catch {
    // no /proc/net/route
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

/**
 * Address operations with the `ip` command (FAILOVER_AGENT_IP_COMMAND overrides it: tests, the
 * sandbox). Reads and writes go through the same command, so that what the agent reports (the vip
 * monitor, the group's state) is what it changed. The read asks for one address only (`ip -o -4
 * addr show to IP/32`): a host with many addresses must not overflow the captured output. The
 * interface is, in order: the one asked for (`guard --dev`), FAILOVER_AGENT_VIP_DEV, the interface
 * of the default route.
 */
function linuxVipOps(env: Record<string, string | undefined>): VipOps {
  const ipCommand = env.FAILOVER_AGENT_IP_COMMAND ?? 'ip';
  const ipRun = async (args: string[]): Promise<string> => {
    const result = await runProcess(
      { argv: [ipCommand, ...args], output: 'capture', timeoutMs: IP_TIMEOUT_MS },
      linux,
    );
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

/** sd-daemon(3) priorities: journald files each line under the priority its prefix gives. */
const JOURNAL_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/**
 * Whether stderr is the journal stream systemd connected: JOURNAL_STREAM is `<device>:<inode>` of
 * that stream, and it is inherited by children whose stderr may be a pipe elsewhere (sd_journal_stream_fd(3)
 * says to compare it with stderr's own), so both must match.
 */
export function stderrIsJournal(
  journalStream: string | undefined,
  stat: () => { dev: number; ino: number } | undefined = () => {
    try {
      return fstatSync(2);
    } catch {
      return undefined;
    }
  },
): boolean {
  const m = /^(\d+):(\d+)$/.exec(journalStream ?? '');
  if (!m) return false;
  const st = stat();
  return st !== undefined && st.dev === Number(m[1]) && st.ino === Number(m[2]);
}

let journal: { stream: string | undefined; is: boolean } | undefined;

/**
 * A log line for journald: `<N>` in front when stderr is the journal (see stderrIsJournal), so that
 * `journalctl -p warning` shows warnings and errors only. Elsewhere (a terminal, a pipe, a test) the
 * line stays as it is.
 */
export function journalLine(
  level: LogLevel,
  line: string,
  env: Record<string, string | undefined>,
  isJournal: (stream: string | undefined) => boolean = (stream) => {
    if (journal === undefined || journal.stream !== stream) journal = { stream, is: stderrIsJournal(stream) };
    return journal.is;
  },
): string {
  return isJournal(env.JOURNAL_STREAM) ? `<${JOURNAL_PRIORITY[level]}>${line}` : line;
}

/** The Linux platform. */
export const linux: Platform = {
  name: 'linux',
  defaultStateDir: '/var/lib/failover-agent',
  shellArgv: (command) => ['/bin/sh', ['-c', command]],
  pidAlive,
  processFrozen(pid) {
    const stat = readStat(pid);
    const state = stat === undefined ? undefined : statFields(stat)[0];
    return state === 'T' || state === 't';
  },
  processStartTime(pid) {
    // Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot.
    const stat = readStat(pid);
    return stat === undefined ? undefined : statFields(stat)[19];
  },
  bootId() {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  killTree,
  killMarked,
  findProcessByName: async (name) => findProcessInProc(name),
  vipOps: linuxVipOps,
  watchdog: { supported: true, device: '/dev/watchdog' },
  formatLogLine: journalLine,
  pingArgv: (pingCommand, host, waitMs) => [
    pingCommand,
    '-n',
    '-c',
    '1',
    '-W',
    String(Math.max(1, Math.ceil(waitMs / 1000))),
    host,
  ],
  hints: { start: 'systemctl start failover-agent', logs: 'journalctl -u failover-agent' },
};
