/** Wiring of `failover-agent status`: flags to readStatus() and formatStatus(). */
import { parseStatusArgs, STATUS_USAGE } from './cli';
import { systemClock } from './clock';
import { EXIT } from './errors';
import { formatStatus, readStatus, statusExitCode } from './status';

/** Prints the local agent's status; resolves with the exit code. */
export function statusMain(argv: string[]): number {
  const args = parseStatusArgs(argv, process.env);
  if (args.help) {
    process.stdout.write(`${STATUS_USAGE}\n`);
    return EXIT.ok;
  }
  const view = readStatus(args.stateDir, systemClock);
  process.stdout.write(args.json ? `${JSON.stringify(view, null, 2)}\n` : `${formatStatus(view)}\n`);
  return statusExitCode(view);
}
