/**
 * Processes: liveness by pid (with the start time, so a recycled pid is not mistaken for the old
 * process), commands run in their own process group (so a timeout or a fence kills the whole tree),
 * and the marker environment variable that finds what a killed guard left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Environment variable carried by every command a guard runs: `FAILOVER_GUARD_RUN=<nonce>`. */
export const GUARD_MARKER = 'FAILOVER_GUARD_RUN';

/**
 * True when a process with this pid exists and is not a zombie (EPERM: it exists but belongs to
 * someone else). A zombie has exited; it only waits for its parent (or an init that reaps late).
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** The state letter of /proc/<pid>/stat (R, S, D, T, t, Z, X...), or undefined without /proc. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  const state = procState(pid);
  return state === 'Z' || state === 'X';
}

/** The process is stopped by a signal (SIGSTOP) or traced: it runs no code until continued. */
export function processFrozen(pid: number): boolean {
  const state = procState(pid);
  return state === 'T' || state === 't';
}

/**
 * The kernel's start time of a process (field 22 of /proc/<pid>/stat, clock ticks since boot), or
 * undefined where /proc is not available. Together with the pid it names one process for good.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** The process that wrote a record is still the same, running process. */
export function sameProcessAlive(pid: number, start: string | undefined): boolean {
  if (!pidAlive(pid)) return false;
  if (start === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === start;
}

/** Sends a signal to a whole process group; false when it is already gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Sends a signal to one process; false when it is already gone. */
export function killPid(pid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs every process whose environment carries `FAILOVER_GUARD_RUN=<nonce>`: the descendants of
 * a guard run that the agent had to kill (a start interrupted by a fence). Linux only; returns the
 * pids signalled.
 */
export function killMarked(nonce: string): number[] {
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

/** argv for a command line: one string runs through `/bin/sh -c`, several run without a shell. */
export function commandArgv(command: readonly string[]): [string, string[]] {
  if (command.length === 1) return ['/bin/sh', ['-c', command[0]!]];
  return [command[0]!, command.slice(1)];
}

export interface RunOptions {
  argv: readonly string[];
  env?: Record<string, string | undefined>;
  /** Kill the process group after this long (SIGTERM, then SIGKILL after `killGraceMs`). */
  timeoutMs?: number;
  killGraceMs?: number;
  /** inherit: the caller's stdout/stderr (the guard, so SSM captures them); capture: keep a tail. */
  output: 'inherit' | 'capture' | 'ignore';
  /** Aborting kills the process group at once with SIGKILL. */
  signal?: AbortSignal;
  /** Called right after the spawn, with the pid (= process group id). */
  onSpawn?: (pid: number) => void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Last 4 KiB of stdout+stderr when captured. */
  output: string;
  /** Spawn failure (command not found, ...). */
  error?: string;
}

const OUTPUT_TAIL = 4096;

/**
 * Runs a command in its own process group and resolves when it exits. Never rejects: a spawn
 * failure is reported in `error` with code null.
 */
export function runCommand(options: RunOptions): Promise<RunResult> {
  const [file, args] = commandArgv(options.argv);
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        detached: true,
        stdio: [
          'ignore',
          options.output === 'capture' ? 'pipe' : options.output,
          options.output === 'capture' ? 'pipe' : options.output,
        ],
        env: (options.env ?? process.env) as NodeJS.ProcessEnv,
      });
    } catch (e) {
      resolve({ code: null, signal: null, timedOut: false, output: '', error: (e as Error).message });
      return;
    }
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timers: NodeJS.Timeout[] = [];
    const finish = (result: RunResult) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = () => {
      if (child.pid) killGroup(child.pid, 'SIGKILL');
    };
    child.on('error', (e) => finish({ code: null, signal: null, timedOut, output, error: e.message }));
    child.on('spawn', () => {
      if (child.pid) options.onSpawn?.(child.pid);
    });
    // 'close' comes once the output pipes are drained; a daemon started by the command may keep
    // them open for ever, so 'exit' plus a short grace also ends the wait.
    child.on('close', (code, signal) => finish({ code, signal, timedOut, output }));
    child.on('exit', (code, signal) => {
      timers.push(
        setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish({ code, signal, timedOut, output });
        }, 200),
      );
    });
    if (options.timeoutMs !== undefined) {
      timers.push(
        setTimeout(() => {
          timedOut = true;
          if (child.pid) killGroup(child.pid, 'SIGTERM');
          timers.push(
            setTimeout(() => {
              if (child.pid) killGroup(child.pid, 'SIGKILL');
            }, options.killGraceMs ?? 2000),
          );
        }, options.timeoutMs),
      );
    }
    if (options.signal) {
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

/** "exit 3", "signal SIGKILL", "timed out after 5000 ms", "spawn failed: ..." */
export function describeExit(result: RunResult, timeoutMs?: number): string {
  if (result.error) return `could not run: ${result.error}`;
  if (result.timedOut) return `timed out after ${timeoutMs ?? '?'} ms`;
  if (result.signal) return `killed by ${result.signal}`;
  return `exit ${result.code}`;
}
