/**
 * failoverctl: operate failover clusters. Every command honours AWS_REGION, AWS_PROFILE and
 * AWS_ENDPOINT_URL, and --table / FAILOVER_TABLE (default: failover-state).
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../shared/core/errors';
import { applyCommand } from './commands/apply';
import { initCommand } from './commands/init';
import { validateCommand } from './commands/validate';
import { type GlobalFlags, type Io, processIo } from './context';
import { describeError, EXIT, exitCodeFor } from './errors';

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('failoverctl')
    .description('Operate serverless HA failover clusters on EC2')
    .option('--table <name>', 'state table (default: $FAILOVER_TABLE or failover-state)')
    .option('--region <region>', 'AWS region (default: $AWS_REGION, or the cluster definition)')
    .option('--endpoint <url>', 'AWS endpoint override (default: $AWS_ENDPOINT_URL)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showSuggestionAfterError(true);
  const globals = (): GlobalFlags => program.opts<GlobalFlags>();
  const run = (fn: () => Promise<number>) => async () => {
    code = await fn();
  };

  program
    .command('validate')
    .description('check a cluster definition; prints every problem with its path and fix, writes nothing')
    .requiredOption('-f, --file <file>', 'cluster definition (YAML or JSON)')
    .option('--json', 'print the normalized definition as JSON')
    .action((opts) => run(() => validateCommand(io, opts))());

  program
    .command('init')
    .description('create the state table where no deployment made it (for local runs)')
    .action(() => run(() => initCommand(io, globals()))());

  program
    .command('apply')
    .description('validate a cluster definition and store it as a new version; shows what changed')
    .requiredOption('-f, --file <file>', 'cluster definition (YAML or JSON)')
    .option('--expected-version <n>', 'refuse if the stored version is not this one', (v) =>
      Number.parseInt(v, 10),
    )
    .action((opts) => run(() => applyCommand(io, globals(), opts))());

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    }
    io.err(describeError(e));
    if (e instanceof ConfigError)
      io.err('nothing was written; fix the problems above and run the command again');
    return exitCodeFor(e);
  }
}
