/**
 * ICMP echo through the system `ping` (Node has no raw sockets, and the agent does not run with
 * CAP_NET_RAW of its own). One packet, waiting at most the probe timeout.
 */
import { currentPlatform } from '../platform';
import { describeExit, runCommand } from '../process-util';
import { fail, ok, type Probe } from './probe';

export function pingProbe(host: string, pingCommand = 'ping'): Probe {
  return async (signal, timeoutMs) => {
    const result = await runCommand({
      argv: currentPlatform().pingArgv(pingCommand, host, timeoutMs),
      output: 'capture',
      timeoutMs: timeoutMs + 200,
      killGraceMs: 200,
      signal,
    });
    if (result.error?.includes('ENOENT')) {
      return fail(`"${pingCommand}" not found on PATH; install iputils-ping (or use a tcp check instead)`);
    }
    if (result.code === 0) return ok(`${host} answered`);
    const line = result.output.trim().split('\n').pop() ?? '';
    return fail(`${host} did not answer (${describeExit(result, timeoutMs)})${line ? `: ${line}` : ''}`);
  };
}
