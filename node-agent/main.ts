/**
 * `failover-agent`: the daemon (default) or `failover-agent guard ...`. Returns the exit code; the
 * bin wrapper (bin/failover-agent.js, or the bundle's entry bin.ts) sets process.exitCode.
 */
import { AgentError, EXIT } from './errors';
import { errorText } from './log';

/** Entry point: `failover-agent [run] ...`, `failover-agent guard ...` or `failover-agent status`; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'status') {
      const { statusMain } = await import('./status-main');
      return statusMain(argv.slice(1));
    }
    if (argv[0] === 'guard') {
      const { guardMain } = await import('./guard-main');
      return await guardMain(argv.slice(1));
    }
    const { daemonMain } = await import('./daemon-main');
    return await daemonMain(argv[0] === 'run' ? argv.slice(1) : argv);
  } catch (e) {
    if (e instanceof AgentError) {
      process.stderr.write(`failover-agent: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`failover-agent: ${e instanceof Error ? (e.stack ?? e.message) : errorText(e)}\n`);
    return EXIT.failed;
  }
}
