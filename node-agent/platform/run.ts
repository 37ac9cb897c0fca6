/**
 * Running a command and waiting for it, the same on every OS: a timeout (a gentle signal, then a
 * hard one after a grace), an abort signal, the output kept or passed through. How a command's
 * whole tree is killed is the platform's (`kill`).
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface RunOptions {
  /** One element: a command text for the platform's shell; several: a program and its arguments. */
  argv: readonly string[];
  env?: Record<string, string | undefined>;
  /** Kill the command's tree after this long (SIGTERM, then SIGKILL after `killGraceMs`). */
  timeoutMs?: number;
  killGraceMs?: number;
  /** inherit: the caller's stdout/stderr (the guard, so SSM captures them); capture: keep a tail. */
  output: 'inherit' | 'capture' | 'ignore';
  /** Aborting kills the command's tree at once with SIGKILL. */
  signal?: AbortSignal;
  /** Called right after the spawn, with the pid (= process group id on Linux). */
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

/** What runProcess needs of the platform. */
export interface RunPlatform {
  shellArgv(command: string): [string, string[]];
  killTree(pid: number, signal: NodeJS.Signals): boolean;
}

/** argv for a command line: one string runs through the platform's shell, several without one. */
export function commandArgvOn(
  platform: Pick<RunPlatform, 'shellArgv'>,
  command: readonly string[],
): [string, string[]] {
  if (command.length === 1) return platform.shellArgv(command[0]!);
  return [command[0]!, command.slice(1)];
}

/**
 * Runs a command in a process group of its own (detached: a timeout or a fence kills its whole
 * tree) and resolves when it exits. Never rejects: a spawn failure is reported in `error` with code
 * null.
 */
export function runProcess(options: RunOptions, platform: RunPlatform): Promise<RunResult> {
  const [file, args] = commandArgvOn(platform, options.argv);
  const kill = (pid: number, signal: NodeJS.Signals) => platform.killTree(pid, signal);
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        detached: true,
        // Windows: no console window for a service's commands.
        windowsHide: true,
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
      if (child.pid) kill(child.pid, 'SIGKILL');
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
          if (child.pid) kill(child.pid, 'SIGTERM');
          timers.push(
            setTimeout(() => {
              if (child.pid) kill(child.pid, 'SIGKILL');
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
