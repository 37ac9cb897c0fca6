/**
 * Processes, through the platform (platform/): liveness by pid (with the start time where the OS
 * gives one, so a recycled pid is not mistaken for the old process), commands run in a tree of
 * their own (so a timeout or a fence kills the whole tree), and the marker environment variable that
 * finds what a killed guard left behind.
 */
import { sleep } from './clock';
import { currentPlatform } from './platform';
import { GUARD_MARKER } from './platform/linux';
import { commandArgvOn, describeExit, type RunOptions, type RunResult, runProcess } from './platform/run';

export { describeExit, GUARD_MARKER, type RunOptions, type RunResult };

/** True when a process with this pid exists (and, on Linux, is not a zombie). */
export function pidAlive(pid: number): boolean {
  return currentPlatform().pidAlive(pid);
}

/**
 * The process is stopped by a signal (SIGSTOP) or traced: it runs no code until continued (Linux;
 * Windows tells no such state without a native module, so never there).
 */
export function processFrozen(pid: number): boolean {
  return currentPlatform().processFrozen(pid);
}

/** What tells this process from a later one with the same pid, or undefined where unknown. */
export function processStartTime(pid: number): string | undefined {
  return currentPlatform().processStartTime(pid);
}

/** The process that wrote a record is still the same, running process. */
export function sameProcessAlive(pid: number, start: string | undefined): boolean {
  if (!pidAlive(pid)) return false;
  if (start === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === start;
}

/** Signals a command's whole tree (its process group on Linux); false when it is already gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  return currentPlatform().killTree(pgid, signal);
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
 * Kills every process whose environment carries `FAILOVER_GUARD_RUN=<nonce>`: the descendants of
 * a guard run that the agent had to kill (a start interrupted by a fence). Linux only (Windows
 * shows no process another's environment); returns the pids signalled.
 */
export function killMarked(nonce: string): number[] {
  return currentPlatform().killMarked(nonce);
}

/** argv for a command line: one string runs through the platform's shell, several without one. */
export function commandArgv(command: readonly string[]): [string, string[]] {
  return commandArgvOn(currentPlatform(), command);
}

/** Runs a command in a tree of its own and resolves when it exits; never rejects. */
export function runCommand(options: RunOptions): Promise<RunResult> {
  return runProcess(options, currentPlatform());
}

/**
 * Kills what carries any of the markers (the newest first), pass after pass until one finds none
 * (a process forked during a scan escapes it), waiting each time up to `waitMs` for the killed to
 * be gone (a process killed inside a kernel call, `ip addr add` waiting for rtnl_lock, finishes the
 * call first). Every marker is scanned in every pass: one marker's stuck survivor does not delay
 * the kill of another's. `survivors` are the killed still there at the end, and, when no pass came
 * back empty, whatever one more scan still finds: what they do may land.
 */
export async function killMarkedUntilGone(
  markers: readonly string[],
  passes = 5,
  waitMs = 2000,
): Promise<{ killed: number[]; survivors: number[] }> {
  const all: number[] = [];
  let last: number[] = [];
  let clean = markers.length === 0;
  for (let pass = 0; pass < passes && !clean; pass++) {
    last = markers.flatMap((marker) => killMarked(marker));
    clean = last.length === 0;
    all.push(...last);
    const until = Date.now() + waitMs;
    while (last.some((pid) => pidAlive(pid)) && Date.now() < until) await sleep(20);
  }
  const survivors = last.filter((pid) => pidAlive(pid));
  // Every pass found something: what the last one found may have forked children since. Without
  // a pass that found none, nothing is known gone: one more scan, and whatever it finds counts.
  if (!clean)
    for (const pid of markers.flatMap((marker) => killMarked(marker)))
      if (!survivors.includes(pid)) survivors.push(pid);
  return { killed: all, survivors };
}
