/** Wiring of `failover-agent guard`: flags and environment to runGuard(). */

import { GUARD_USAGE, parseGuardArgs } from './cli';
import { systemClock } from './clock';
import { EXIT } from './errors';
import { runGuard } from './guard';
import { createVipOps } from './vip';

/** Parses the guard flags and runs it; resolves with the exit code. */
export async function guardMain(argv: string[]): Promise<number> {
  const args = parseGuardArgs(argv, process.env);
  if (args === 'help') {
    process.stdout.write(`${GUARD_USAGE}\n`);
    return EXIT.ok;
  }
  return runGuard(args, {
    env: process.env,
    clock: systemClock,
    vip: createVipOps(process.env),
    err: (line) => process.stderr.write(`${line}\n`),
  });
}
