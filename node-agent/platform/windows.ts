/**
 * Windows Server: PowerShell for commands and addresses (New-NetIPAddress / Remove-NetIPAddress),
 * taskkill for command trees, tasklist for the pid monitor's process names, the registry's boot id,
 * state under %ProgramData%, the Application event log for warnings and errors, WinSW for the
 * service (node-agent/windows/). No watchdog: Windows has no softdog, so a Windows node proves its
 * silence with its stop scripts' time, or its group uses `fencing: stop-instance`.
 *
 * Everything here is built so that it can be checked on Linux: the PowerShell text and the argv
 * are pure functions (unit tests pin them), and the processes they would start are reached through
 * `WindowsDeps`, which the tests replace. What only a real Windows host can show is listed in the
 * README (Windows nodes: what is not tested on a real Windows host).
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { encodePowerShell, psQuote } from '../../shared/base/powershell';
import { describeExit, type RunOptions, type RunResult, runProcess } from './run';
import type { LogLevel, Platform, VipOps } from './types';

/** The processes the Windows platform starts; tests replace them. */
export interface WindowsDeps {
  /** Runs a program to its end (short tools: reg, taskkill, tasklist). */
  runSync(file: string, args: string[]): { status: number | null; stdout: string; stderr: string };
  /** Runs a command asynchronously (PowerShell for the addresses). */
  run(options: RunOptions): Promise<RunResult>;
  /** Starts a program and forgets it (eventcreate for the event log). */
  fire(file: string, args: string[]): void;
  env: Record<string, string | undefined>;
}

/** powershell.exe: Windows PowerShell 5.1 is on every Windows Server the agent supports. */
export const POWERSHELL = 'powershell.exe';

/**
 * The script a command text runs in: its own exit code when it sets one (`exit N`, or a native
 * program's `$LASTEXITCODE`), 1 when it throws a terminating error, else 0. Without the wrapper
 * powershell.exe turns every failure into 1 and a failed cmdlet of a stop script could pass
 * unnoticed.
 */
export function wrapScript(command: string): string {
  return [
    '$global:LASTEXITCODE = 0',
    'try {',
    command,
    '} catch { [Console]::Error.WriteLine(($_ | Out-String)); exit 1 }',
    'if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }',
    'exit 0',
  ].join('\n');
}

/** argv that runs a PowerShell command text, encoded so that no layer between re-quotes it. */
export function powershellArgv(command: string): [string, string[]] {
  return [
    POWERSHELL,
    [
      '-NoLogo',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
      encodePowerShell(wrapScript(command)),
    ],
  ];
}

/** State directory: %ProgramData%\failover-agent (C:\ProgramData\failover-agent). */
export function windowsStateDir(env: Record<string, string | undefined>): string {
  return path.win32.join(env.ProgramData ?? env.PROGRAMDATA ?? 'C:\\ProgramData', 'failover-agent');
}

/** The registry value Windows increments at every boot. */
export const BOOT_ID_KEY =
  'HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management\\PrefetchParameters';

/** `reg query <key> /v BootId` output to the boot id ("BootId    REG_DWORD    0x1a" -> "26"). */
export function parseRegBootId(output: string): string | undefined {
  const m = /BootId\s+REG_DWORD\s+0x([0-9a-fA-F]+)/.exec(output);
  return m ? String(Number.parseInt(m[1]!, 16)) : undefined;
}

/** tasklist's image name for a process name: `sqlservr` -> `sqlservr.exe`. */
export function imageName(name: string): string {
  return /\.[A-Za-z0-9]+$/.test(name) ? name : `${name}.exe`;
}

/** argv of `tasklist` listing the processes of one image name, as CSV without a header. */
export function tasklistArgv(name: string): string[] {
  return ['/FI', `IMAGENAME eq ${imageName(name)}`, '/FO', 'CSV', '/NH'];
}

/**
 * The first pid of `tasklist /FO CSV /NH` output (`"sqlservr.exe","1234","Services","0","9,000 K"`),
 * or undefined when it lists none ("INFO: No tasks are running which match ...").
 */
export function parseTasklistCsv(output: string, name: string): number | undefined {
  const want = imageName(name).toLowerCase();
  for (const line of output.split(/\r?\n/)) {
    const m = /^"([^"]*)","(\d+)"/.exec(line.trim());
    if (m && m[1]!.toLowerCase() === want) return Number(m[2]);
  }
  return undefined;
}

/** argv of `taskkill` for a command's whole tree. Windows has no gentle signal for a console program. */
export function taskkillArgv(pid: number): string[] {
  return ['/PID', String(pid), '/T', '/F'];
}

/** PowerShell that prints the interface alias of every interface holding `ip`, one a line. */
export function vipHoldersScript(ip: string): string {
  return `Get-NetIPAddress -AddressFamily IPv4 -IPAddress ${psQuote(ip)} -ErrorAction SilentlyContinue | ForEach-Object { $_.InterfaceAlias }`;
}

/**
 * PowerShell that puts `ip`/32 on an interface: the one named, else the interface of the default
 * route. In the active store only: after a reboot the address must not come back by itself (the
 * agent decides who holds it). SkipAsSource: the node's own connections keep its primary address.
 */
export function vipAddScript(ip: string, iface: string | undefined): string {
  const alias =
    iface !== undefined
      ? `$alias = ${psQuote(iface)}`
      : [
          "$route = Get-NetRoute -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -ErrorAction SilentlyContinue | Sort-Object -Property RouteMetric, InterfaceMetric | Select-Object -First 1",
          `if (-not $route) { throw ${psQuote(`no interface for address ${ip}: the node has no default route; set FAILOVER_AGENT_VIP_DEV to the interface alias (e.g. Ethernet) in the service's environment, or guard --dev ALIAS`)} }`,
          '$alias = $route.InterfaceAlias',
        ].join('\n');
  return [
    alias,
    `if (-not (Get-NetIPAddress -AddressFamily IPv4 -IPAddress ${psQuote(ip)} -ErrorAction SilentlyContinue)) {`,
    `  New-NetIPAddress -IPAddress ${psQuote(ip)} -PrefixLength 32 -InterfaceAlias $alias -SkipAsSource $true -PolicyStore ActiveStore -ErrorAction Stop | Out-Null`,
    '}',
  ].join('\n');
}

/** PowerShell that takes `ip` off every interface (both stores); nothing to do when none holds it. */
export function vipRemoveScript(ip: string): string {
  return [
    `$held = Get-NetIPAddress -AddressFamily IPv4 -IPAddress ${psQuote(ip)} -ErrorAction SilentlyContinue`,
    'if ($held) { $held | Remove-NetIPAddress -Confirm:$false -ErrorAction Stop }',
  ].join('\n');
}

/** argv of eventcreate for one line in the Application event log (source failover-agent). */
export function eventLogArgv(level: LogLevel, line: string): string[] {
  // eventcreate takes ERROR, WARNING, INFORMATION, SUCCESS; an ID between 1 and 1000.
  const type = level === 'error' ? 'ERROR' : level === 'warn' ? 'WARNING' : 'INFORMATION';
  const id = level === 'error' ? '3' : level === 'warn' ? '2' : '1';
  return ['/L', 'APPLICATION', '/T', type, '/SO', 'failover-agent', '/ID', id, '/D', line.slice(0, 2000)];
}

const VIP_TIMEOUT_MS = 15_000;

function windowsVipOps(deps: WindowsDeps, env: Record<string, string | undefined>): VipOps {
  const ps = async (script: string): Promise<string> => {
    const result = await deps.run({ argv: [script], output: 'capture', timeoutMs: VIP_TIMEOUT_MS });
    if (result.code !== 0 || result.timedOut || result.error) {
      throw new Error(
        `PowerShell ${script.split('\n').pop()?.trim().slice(0, 120)}: ${describeExit(result, VIP_TIMEOUT_MS)} ${result.output.trim()}`.trim(),
      );
    }
    return result.output;
  };
  return {
    async holders(ip) {
      return (await ps(vipHoldersScript(ip)))
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter(Boolean);
    },
    async add(ip, dev) {
      await ps(vipAddScript(ip, dev ?? env.FAILOVER_AGENT_VIP_DEV));
    },
    async remove(ip) {
      await ps(vipRemoveScript(ip));
    },
  };
}

const defaultDeps = (env: Record<string, string | undefined>): WindowsDeps => ({
  runSync(file, args) {
    const r = spawnSync(file, args, { encoding: 'utf8', windowsHide: true, timeout: 10_000 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  },
  run: (options) => runProcess(options, { shellArgv: powershellArgv, killTree: (pid) => taskkill(pid) }),
  fire(file, args) {
    try {
      spawn(file, args, { stdio: 'ignore', windowsHide: true, detached: true })
        .on('error', () => undefined)
        .unref();
    } catch {
      // the event log is a copy of what the service log already has
    }
  },
  env,
});

function taskkill(pid: number): boolean {
  const r = spawnSync('taskkill.exe', taskkillArgv(pid), { windowsHide: true, timeout: 10_000 });
  return r.status === 0;
}

/** The Windows platform with its processes reached through `deps` (tests pass their own). */
export function createWindowsPlatform(deps: WindowsDeps = defaultDeps(process.env)): Platform {
  let boot: string | undefined | null = null;
  return {
    name: 'windows',
    defaultStateDir: windowsStateDir(deps.env),
    shellArgv: powershellArgv,
    pidAlive(pid) {
      if (!Number.isInteger(pid) || pid <= 0) return false;
      try {
        process.kill(pid, 0);
        return true;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    // A suspended process is not visible without a native module: never reported frozen.
    processFrozen: () => false,
    // No cheap way to read a process's creation time without a native module: the pid alone
    // (Windows recycles pids less eagerly than Linux, but it does). See the README.
    processStartTime: () => undefined,
    bootId() {
      if (boot === null) {
        const r = deps.runSync('reg.exe', ['query', BOOT_ID_KEY, '/v', 'BootId']);
        boot = r.status === 0 ? parseRegBootId(r.stdout) : undefined;
      }
      return boot;
    },
    killTree(pid) {
      if (!Number.isInteger(pid) || pid <= 4) return false;
      return deps.runSync('taskkill.exe', taskkillArgv(pid)).status === 0;
    },
    // Windows does not let one process read another's environment: what an interrupted guard run
    // left behind is reached through its tree (killTree) only.
    killMarked: () => [],
    async findProcessByName(name) {
      const r = deps.runSync('tasklist.exe', tasklistArgv(name));
      return r.status === 0 ? parseTasklistCsv(r.stdout, name) : undefined;
    },
    vipOps: (env) => windowsVipOps(deps, env),
    watchdog: {
      supported: false,
      reason:
        "Windows has no softdog: a Windows node proves its silence with its stop scripts' time (exec timeoutSec) after the lease, or its groups use fencing: stop-instance",
    },
    formatLogLine(level, line) {
      if (level === 'warn' || level === 'error') deps.fire('eventcreate.exe', eventLogArgv(level, line));
      return line;
    },
    pingArgv: (pingCommand, host, waitMs) => [
      pingCommand,
      '-n',
      '1',
      '-w',
      String(Math.max(1, waitMs)),
      host,
    ],
    hints: {
      start: 'Start-Service failover-agent',
      logs: '%ProgramData%\\failover-agent\\logs and the Application event log (source failover-agent)',
    },
  };
}
