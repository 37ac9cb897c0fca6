/**
 * failoverctl: operate failover clusters. Every command honours AWS_REGION, AWS_PROFILE and
 * AWS_ENDPOINT_URL, and --table / FAILOVER_TABLE (default: failover-state).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError } from '../shared/base/errors';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../shared/config/defaults';
import type { RequestKind } from '../shared/core/model';
import type { GlobalFlags } from './context';
import { describeError, EXIT, exitCodeFor } from './errors';
import { type Io, processIo } from './io';
import { CLI_VERSION } from './version';

/**
 * Each command's module is imported when the command runs, not at start: `--version`, `--help` and
 * a mistyped flag answer without loading the AWS SDK or the cluster schema, and in the compiled
 * bundle each command is a chunk of its own (scripts/build.mjs).
 */
const commands = {
  agent: () => import('./commands/agent'),
  apply: () => import('./commands/apply'),
  cancel: () => import('./commands/cancel'),
  console: () => import('./console/command'),
  cost: () => import('./commands/cost'),
  doctor: () => import('./commands/doctor'),
  events: () => import('./commands/events'),
  iamPolicy: () => import('./commands/iam-policy'),
  init: () => import('./commands/init'),
  plan: () => import('./commands/plan'),
  reconcile: () => import('./commands/reconcile'),
  request: () => import('./commands/request'),
  status: () => import('./commands/status'),
  validate: () => import('./commands/validate'),
};

export async function main(argv: string[], out: Io = processIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('failoverctl')
    .description('Operate serverless HA failover clusters on EC2')
    .option('--table <name>', 'state table (default: $FAILOVER_TABLE or failover-state)')
    .option('--region <region>', 'AWS region (default: $AWS_REGION, or the cluster definition)')
    .option('--endpoint <url>', 'AWS endpoint override (default: $AWS_ENDPOINT_URL)')
    .exitOverride()
    .version(CLI_VERSION, '-V, --version', 'print the version of failoverctl')
    .configureOutput({ writeOut: (s) => out.out(s.trimEnd()), writeErr: (s) => out.err(s.trimEnd()) })
    .showSuggestionAfterError(true);
  const globals = (): GlobalFlags => program.opts<GlobalFlags>();
  const run = (fn: () => Promise<number>) => async () => {
    code = await fn();
  };
  const positiveSecondsArg = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`expected a number of seconds above 0, got "${v}"`);
    return n;
  };

  program
    .command('validate')
    .description('check a cluster definition; prints every problem with its path and fix, writes nothing')
    .requiredOption('-f, --file <file>', 'cluster definition (YAML or JSON)')
    .option('--json', 'print the normalized definition as JSON')
    .action((opts) => run(async () => (await commands.validate()).validateCommand(out, opts))());

  const agent = program.command('agent').description('install and upgrade the node agent through AWS (SSM)');
  const releaseFlags = (cmd: Command) =>
    cmd
      .option('--release <dir>', 'release directory with manifest.json (default: dist/release/<version>)')
      .option(
        '--version <version>',
        'release version (with --sha256-linux and --sha256-windows instead of --release)',
      )
      .option('--sha256-linux <sum>', 'SHA-256 of the Linux archive')
      .option('--sha256-windows <sum>', 'SHA-256 of the Windows archive');
  releaseFlags(
    agent
      .command('install')
      .description(
        "install or upgrade the agent on a cluster's instances with the deployment's install document; reports per instance",
      )
      .option('--cluster <name>', 'cluster (default: the only one in the table)')
      .option('--node <name...>', 'only these nodes (default: every node of the cluster)')
      .option(
        '--document <name>',
        'install document (default: failover-agent-install-<stage> of the table failover-state-<stage>)',
      )
      .option('--watchdog <seconds>', 'Linux nodes: load softdog with this soft_margin and feed it')
      .option('--wait <seconds>', 'wait this long for every instance', positiveSecondsArg, 600),
  ).action((opts) => run(async () => (await commands.agent()).agentInstallCommand(out, globals(), opts))());
  releaseFlags(
    agent
      .command('user-data')
      .description('print a user-data snippet that installs the agent at the first boot of a new instance')
      .requiredOption('--platform <platform>', 'linux or windows')
      .requiredOption('--bucket <name>', "the deployment's agent bucket (stack output AgentBucketName)")
      .option('--cluster <name>', 'cluster (default: found from the instance id)')
      .option('--node <name>', 'node (default: found from the instance id)'),
  ).action((opts) => run(async () => (await commands.agent()).agentUserDataCommand(out, globals(), opts))());

  program
    .command('init')
    .description(
      'create the state table and the guard SSM documents where no deployment made them (for local runs)',
    )
    .action(() => run(async () => (await commands.init()).initCommand(out, globals()))());

  program
    .command('apply')
    .description('validate a cluster definition and store it as a new version; shows what changed')
    .requiredOption('-f, --file <file>', 'cluster definition (YAML or JSON)')
    .option('--expected-version <n>', 'refuse if the stored version is not this one', (v) =>
      Number.parseInt(v, 10),
    )
    .action((opts) => run(async () => (await commands.apply()).applyCommand(out, globals(), opts))());

  const seconds = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new InvalidArgumentError(`expected a number of seconds, got "${v}"`);
    return n;
  };
  const positiveSeconds = (v: string) => {
    const n = seconds(v);
    if (n <= 0) throw new InvalidArgumentError(`expected a number of seconds above 0, got "${v}"`);
    return n;
  };
  const port = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new InvalidArgumentError(`expected a TCP port (0-65535; 0 picks a free one), got "${v}"`);
    return n;
  };

  program
    .command('status')
    .description(
      'nodes (lease age, AZ, state, isolated), groups (owner, epoch, phase, resources) and monitors',
    )
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--json', 'machine-readable output')
    .option('-w, --watch', 'redraw every --interval seconds until Ctrl-C')
    .option('--interval <seconds>', 'refresh interval of --watch', positiveSeconds, 2)
    .addHelpText(
      'after',
      '\nExit status (for monitoring scripts, like crm_mon -s): 0 every group online, 1 degraded\n' +
        '(a node down, isolated or expired, a monitor warning or error, a group starting or stopping,\n' +
        'maintenance), 2 a group failed or offline; 3 not found, as every command.',
    )
    .action((opts) => run(async () => (await commands.status()).statusCommand(out, globals(), opts))());

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
      run(async () => (await commands.request()).requestCommand(out, globals(), name, group, opts))(),
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
    .command('cancel <request-id>')
    .description('withdraw a request reconcile has not processed yet (ids: "status" or the console)')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .action((id: string, opts) =>
      run(async () => (await commands.cancel()).cancelCommand(out, globals(), id, opts))(),
    );

  program
    .command('console')
    .description(
      'a live web console on this machine: clusters, groups, nodes, failovers; move, start, stop, suspend',
    )
    .option('--port <port>', 'TCP port (0: any free port)', port, 8080)
    .option(
      '--listen <address>',
      'listen on this address instead of 127.0.0.1 (anyone who reaches it sees the cluster)',
    )
    .option('--open', 'open the page in the default browser')
    .option('--read-only', 'show everything, change nothing (no action buttons, actions refused)')
    .option('--allow-host <name...>', 'also answer to these host names (besides IP addresses and localhost)')
    .option('--local', 'run reconcile here after each action (local runs without a deployed controller)')
    .action((opts) => run(async () => (await commands.console()).consoleCommand(out, globals(), opts))());

  program
    .command('events')
    .description('the audit log: every decision with the observations behind it')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--since <when>', 'duration (30s, 10m, 2h, 1d) or ISO date', '1h')
    .option('--group <name>', 'only this group')
    .option('-f, --follow', 'keep printing new events')
    .option('--json', 'one JSON object per line')
    .action((opts) => run(async () => (await commands.events()).eventsCommand(out, globals(), opts))());

  program
    .command('reconcile')
    .description('run the same reconcile as the Lambda, here, once (debugging and local runs)')
    .option('--once', 'one pass (the default and only mode)')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--timeout <seconds>', 'deadline of the pass', seconds, 30)
    .option('-v, --verbose', 'print every decision as a JSON line on stderr')
    .action((opts) => run(async () => (await commands.reconcile()).reconcileCommand(out, globals(), opts))());

  program
    .command('plan')
    .description('what reconcile would do now, doing nothing')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--json', 'machine-readable output')
    .action((opts) => run(async () => (await commands.plan()).planCommand(out, globals(), opts))());

  program
    .command('doctor')
    .description(
      "preflight check of an account before go-live: instances, ENIs, routes, EIPs, zones, the deployed role's permissions, tags, SSM registration",
    )
    .option('-f, --file <file>', 'check this definition instead of the stored one')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--role <name|arn>', "the controller's role (default: the deployment's, from the table name)")
    .option(
      '--managed-tag <value>',
      'the failover:managed value of the deployment (default: failover-controller-<stage>)',
    )
    .option('--document <name>', "the guard's SSM document (default: failover-guard-<stage>)")
    .option('--json', 'machine-readable output')
    .action((opts) => run(async () => (await commands.doctor()).doctorCommand(out, globals(), opts))());

  program
    .command('iam-policy')
    .description('print least-privilege IAM policies for the controller or the agents')
    .requiredOption('--role <role>', 'controller or agent')
    .option('-f, --file <file...>', 'cluster definitions (default: the stored one)')
    .option('--cluster <name>', 'cluster (default: the only one in the table)')
    .option('--account <id>', '12-digit account id for the ARNs')
    .option('--event-bus <name>', 'event bus name or ARN for transition events')
    .option('--topic-arn <arn>', 'SNS topic for alerts')
    .option('--document <name>', 'the guard SSM document (default: $FAILOVER_SSM_DOCUMENT or failover-guard)')
    .option(
      '--windows-document <name>',
      "the guard document's PowerShell variant for Windows nodes (default: $FAILOVER_SSM_DOCUMENT_WINDOWS or the guard document's name with -windows)",
    )
    .option(
      '--agent-bucket <name>',
      "agent: may read the agent's releases from this bucket (stack output AgentBucketName)",
    )
    .action((opts) => run(async () => (await commands.iamPolicy()).iamPolicyCommand(out, globals(), opts))());

  program
    .command('cost')
    .description('monthly AWS cost of N clusters x M nodes at a heartbeat interval, on-demand vs provisioned')
    .option('--clusters <n>', 'clusters in the deployment (default 1)')
    .option('--nodes <m>', 'nodes per cluster (default 2)')
    .option('--groups <g>', 'groups per cluster (default 1)')
    .option(
      '--heartbeat-ms <ms>',
      `agent heartbeat interval (default ${DEFAULT_HEARTBEAT_INTERVAL_MS}, the definition default)`,
    )
    .option('--item-bytes <bytes>', 'size of a heartbeat item (default 1024 = 1 write unit)')
    .option('--capacity <mode>', 'on-demand, provisioned or both (default both)')
    .option('--reconcile-ms <ms>', 'duration of one reconcile invocation (default 300)')
    .option('--changes-per-hour <n>', 'agent change reports per node per hour (default 4)')
    .option('--transitions <n>', 'transitions (failovers, alerts) per cluster per month (default 4)')
    .option('--headroom <fraction>', 'provisioned capacity above the steady load (default 0.2)')
    .option(
      '--metrics <level>',
      'detailed (per group and node, the default) or basic (serverless.yml param metrics)',
    )
    .option('--prices <file>', 'JSON file overriding prices, e.g. { "dynamodbOnDemandWrite": 0.625 }')
    .option('--json', 'machine-readable output')
    .action((opts) => run(async () => (await commands.cost()).costCommand(out, opts))());

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    }
    out.err(describeError(e, out.env));
    if (e instanceof ConfigError)
      out.err('nothing was written; fix the problems above and run the command again');
    return exitCodeFor(e);
  }
}
