/**
 * failoverctl: operate failover clusters. Every command honours AWS_REGION, AWS_PROFILE and
 * AWS_ENDPOINT_URL, and --table / FAILOVER_TABLE (default: failover-state).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError } from '../shared/base/errors';
import type { RequestKind } from '../shared/core/model';
import { applyCommand } from './commands/apply';
import { costCommand } from './commands/cost';
import { doctorCommand } from './commands/doctor';
import { eventsCommand } from './commands/events';
import { iamPolicyCommand } from './commands/iam-policy';
import { initCommand } from './commands/init';
import { planCommand } from './commands/plan';
import { reconcileCommand } from './commands/reconcile';
import { requestCommand } from './commands/request';
import { statusCommand } from './commands/status';
import { validateCommand } from './commands/validate';
import { type GlobalFlags, type Io, processIo } from './context';
import { DEFAULT_COST_INPUT } from './cost';
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

  program
    .command('status')
    .description(
      'nodes (lease age, AZ, state, isolated), groups (owner, epoch, phase, resources) and monitors',
    )
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--json', 'machine-readable output')
    .action((opts) => run(() => statusCommand(io, globals(), opts))());

  const seconds = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new InvalidArgumentError(`expected a number of seconds, got "${v}"`);
    return n;
  };
  const request = (name: RequestKind, description: string, groupArg: string) => {
    const cmd = program
      .command(`${name} ${groupArg}`)
      .description(description)
      .option('--cluster <name>', 'cluster (default: the only one in the table)')
      .option(
        '--wait <seconds>',
        'wait this long for reconcile to process the request (0: do not wait)',
        seconds,
        60,
      )
      .option('--local', 'run reconcile here right away (local runs without a deployed controller)');
    if (name === 'move') cmd.requiredOption('--to <node>', 'target node');
    if (name === 'start') cmd.option('--to <node>', 'start on this node instead of the first eligible one');
    cmd.action((group: string | undefined, opts) =>
      run(() => requestCommand(io, globals(), name, group, opts))(),
    );
  };
  request('move', 'move a group to another node (the old owner is stopped first)', '<group>');
  request('start', 'start a stopped group (clears nodes set aside after failures)', '<group>');
  request('stop', 'stop a group and take its entry points down', '<group>');
  request(
    'suspend',
    'maintenance mode: reconcile observes but changes nothing (all groups when none given)',
    '[group]',
  );
  request('resume', 'leave maintenance mode (all groups when none given)', '[group]');

  program
    .command('events')
    .description('the audit log: every decision with the observations behind it')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--since <when>', 'duration (30s, 10m, 2h, 1d) or ISO date', '1h')
    .option('--group <name>', 'only this group')
    .option('-f, --follow', 'keep printing new events')
    .option('--json', 'one JSON object per line')
    .action((opts) => run(() => eventsCommand(io, globals(), opts))());

  program
    .command('reconcile')
    .description('run the same reconcile as the Lambda, here, once (debugging and local runs)')
    .option('--once', 'one pass (the default and only mode)')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--timeout <seconds>', 'deadline of the pass', seconds, 30)
    .option('-v, --verbose', 'print every decision as a JSON line on stderr')
    .action((opts) => run(() => reconcileCommand(io, globals(), opts))());

  program
    .command('plan')
    .description('what reconcile would do now, doing nothing')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--json', 'machine-readable output')
    .action((opts) => run(() => planCommand(io, globals(), opts))());

  program
    .command('doctor')
    .description(
      'preflight check of an account before go-live: instances, ENIs, routes, EIPs, zones, permissions',
    )
    .option('-f, --file <file>', 'check this definition instead of the stored one')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--json', 'machine-readable output')
    .action((opts) => run(() => doctorCommand(io, globals(), opts))());

  program
    .command('iam-policy')
    .description('print least-privilege IAM policies for the controller or the agents')
    .requiredOption('--role <role>', 'controller or agent')
    .option('-f, --file <file...>', 'cluster definitions (default: the stored one)')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--account <id>', '12-digit account id for the ARNs')
    .option('--event-bus <name>', 'event bus name or ARN for transition events')
    .option('--topic-arn <arn>', 'SNS topic for alerts')
    .action((opts) => run(() => iamPolicyCommand(io, globals(), opts))());

  program
    .command('cost')
    .description('monthly AWS cost of N clusters x M nodes at a heartbeat interval, on-demand vs provisioned')
    .option('--clusters <n>', 'clusters in the deployment (default 1)')
    .option('--nodes <m>', 'nodes per cluster (default 2)')
    .option('--groups <g>', 'groups per cluster (default 1)')
    .option(
      '--heartbeat-ms <ms>',
      `agent heartbeat interval (default ${DEFAULT_COST_INPUT.heartbeatIntervalMs}, the definition default)`,
    )
    .option('--item-bytes <bytes>', 'size of a heartbeat item (default 1024 = 1 write unit)')
    .option('--capacity <mode>', 'on-demand, provisioned or both (default both)')
    .option('--reconcile-ms <ms>', 'duration of one reconcile invocation (default 300)')
    .option('--changes-per-hour <n>', 'agent change reports per node per hour (default 4)')
    .option('--transitions <n>', 'transitions (failovers, alerts) per cluster per month (default 4)')
    .option('--headroom <fraction>', 'provisioned capacity above the steady load (default 0.2)')
    .option('--prices <file>', 'JSON file overriding prices, e.g. { "dynamodbOnDemandWrite": 0.625 }')
    .option('--json', 'machine-readable output')
    .action((opts) => run(() => costCommand(io, opts))());

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
