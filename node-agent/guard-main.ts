/** Wiring of `failover-agent guard`: flags and environment to runGuard(). */

import { GUARD_USAGE, parseGuardArgs } from './cli';
import { systemClock } from './clock';
import { AgentError, EXIT } from './errors';
import { runGuard } from './guard';
import { withStoredCommand } from './guard-resource';
import { createVipOps } from './vip';

/** Parses the guard flags and runs it; resolves with the exit code. */
export async function guardMain(argv: string[]): Promise<number> {
  const args = parseGuardArgs(argv, process.env);
  if (args === 'help') {
    process.stdout.write(`${GUARD_USAGE}\n`);
    return EXIT.ok;
  }
  let resolved = args;
  try {
    resolved = await withStoredCommand(args, process.env);
  } catch (e) {
    if (!(e instanceof AgentError)) throw e;
    process.stderr.write(`failover-agent guard: ${e.message}\n`);
    return e.exitCode;
  }
  return runGuard(resolved, {
    env: process.env,
    clock: systemClock,
    vip: createVipOps(process.env),
    err: (line) => process.stderr.write(`${line}\n`),
  });
}
