import { describeExit, runCommand } from '../process-util';
import { fail, ok, type Probe } from './probe';

/** A custom check: the command (run with /bin/sh -c, PowerShell on Windows) exits 0. Killed with its children at the timeout. */
export function commandProbe(command: string): Probe {
  return async (signal, timeoutMs) => {
    const result = await runCommand({
      argv: [command],
      output: 'capture',
      timeoutMs,
      killGraceMs: 500,
      signal,
    });
    const tail = result.output.trim().split('\n').pop()?.slice(0, 200) ?? '';
    if (result.code === 0 && !result.timedOut) return ok(tail || 'exit 0');
    return fail(`${describeExit(result, timeoutMs)}${tail ? `: ${tail}` : ''}`);
  };
}
