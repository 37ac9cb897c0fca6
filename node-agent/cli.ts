/**
 * Command-line parsing for the daemon and the guard (node:util parseArgs: no dependency). Every
 * error names the flag, the bad value and what to write instead; usage errors exit with 2.
 */
import { parseArgs } from 'node:util';
import { AgentError, EXIT } from './errors';
import type { GuardArgs } from './guard';
import { DEFAULT_STATE_DIR } from './local-state';

/** `failover-agent --help`. */
export const DAEMON_USAGE = `usage: failover-agent [--cluster NAME --node NAME] [options]
       failover-agent guard --group G --epoch N [--action start|stop] [options] -- COMMAND [ARGS...]
       failover-agent status [--state-dir DIR] [--json]

The node agent: renews this node's lease in the state table, runs the local monitors and the
partition witnesses, fences itself when it loses its lease, and stops its groups on SIGTERM.
Without --node, the node is found from the instance id (IMDSv2).

options:
  --cluster NAME              cluster (env FAILOVER_CLUSTER)
  --node NAME                 this node's name in the cluster definition (env FAILOVER_NODE)
  --table NAME                state table (env FAILOVER_TABLE; default failover-state)
  --region REGION             AWS region (env AWS_REGION; on EC2 read from IMDS)
  --state-dir DIR             local state shared with the guard (env FAILOVER_AGENT_STATE_DIR;
                              default ${DEFAULT_STATE_DIR})
  --watchdog-device PATH      feed a watchdog device, e.g. /dev/watchdog (softdog)
  --watchdog-timeout-sec S    the device's timeout (softdog soft_margin), used only where
                              /sys/class/watchdog has no entry for the device
  --log-level LEVEL           debug, info, warn, error (env FAILOVER_AGENT_LOG_LEVEL; default info)
  --settings FILE             KEY=VALUE lines read into the environment first (the Windows
                              service's settings, %ProgramData%\\failover-agent\\agent.env)
  --version, --help

AWS_ENDPOINT_URL overrides the DynamoDB endpoint; credentials come from the instance profile.
Exit codes: 0 clean shutdown, 1 failure, 2 usage, 3 cluster/node/table not found.`;

/** `failover-agent status --help`. */
export const STATUS_USAGE = `usage: failover-agent status [--state-dir DIR] [--json]

What the local agent holds, from its state directory alone (no AWS access): the lease (age of the
last acknowledged renewal, time left before the self-fence), the groups running here and the
addresses they hold, the watchdog, the monitors and witnesses as last reported.

options:
  --state-dir DIR             the agent's (env FAILOVER_AGENT_STATE_DIR; default ${DEFAULT_STATE_DIR})
  --json                      the same as JSON

Exit codes: 0 the agent runs and holds its lease, 1 it does not, 2 usage.`;

export interface StatusArgs {
  stateDir: string;
  json: boolean;
  help: boolean;
}

/** `failover-agent status` flags; throws AgentError(2) naming the bad flag. */
export function parseStatusArgs(argv: string[], env: Record<string, string | undefined>): StatusArgs {
  const { values, positionals } = parse(
    argv,
    { 'state-dir': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    STATUS_USAGE,
  );
  if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`, STATUS_USAGE);
  const v = values as Record<string, string | boolean | undefined>;
  return {
    stateDir:
      (typeof v['state-dir'] === 'string' ? v['state-dir'] : undefined) ??
      env.FAILOVER_AGENT_STATE_DIR ??
      DEFAULT_STATE_DIR,
    json: v.json === true,
    help: v.help === true,
  };
}

/** `failover-agent guard --help`. */
export const GUARD_USAGE = `usage: failover-agent guard --group G --epoch N [--action start|stop] [options] -- COMMAND [ARGS...]
       failover-agent guard --group G --resource R --epoch N --action start|stop [options]

Runs COMMAND only if the state table names this node owner of G at epoch N (start) or G is at
epoch N (stop), and, for a start, the local agent holds a live lease. One COMMAND argument runs
through /bin/sh -c (PowerShell on Windows); several run without a shell.

options:
  --group G                   the group
  --epoch N                   the epoch the controller sent the command for
  --action start|stop         default start
  --vip IP [--dev IFACE]      put IP/32 on IFACE before a start (default: the interface of the
                              default route), take it off after a stop; repeat for several
  --cluster, --node, --table  default: those of the local agent (agent.json in the state dir)
  --region REGION             default: AWS_REGION, else the local agent's
  --state-dir DIR             as the agent's (env FAILOVER_AGENT_STATE_DIR)
  --lock-timeout-ms MS        wait this long for another start/stop of G (default 60000)
  --resource R                run the stored start/stop of exec resource R (no COMMAND)

Exit codes: 0 done, 1 failure (e.g. DynamoDB unreachable), 2 usage, 3 refused: stale epoch or not
the owner, 4 refused: no live lease, 5 busy / interrupted by a self-fence, 10 COMMAND failed.

With --resource R (what the controller's SSM documents run, on Linux and on Windows), COMMAND is the
start or stop of the exec resource R of G in the stored cluster definition (PowerShell text on a
Windows node), and the addresses are the group's.`;

export interface DaemonArgs {
  cluster?: string;
  node?: string;
  table?: string;
  region?: string;
  stateDir: string;
  watchdogDevice?: string;
  watchdogTimeoutSec?: number;
  logLevel?: string;
  /**
   * `--settings FILE`. Not `--env-file`: node itself looks for that flag anywhere in its argv, even
   * after the script, and exits 9 when the file is missing (nodejs/node#54232).
   */
  settingsFile?: string;
  help: boolean;
  version: boolean;
}

/**
 * KEY=VALUE lines (systemd's EnvironmentFile syntax, without its quoting rules): blank lines and
 * `#` comments are skipped; a value is everything after the first `=`, trimmed. Throws naming the
 * line that is neither.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (!m)
      throw new AgentError(
        EXIT.usage,
        `${file}:${i + 1}: "${line.slice(0, 60)}" is not KEY=VALUE; fix or remove the line`,
      );
    out[m[1]!] = m[2]!.trim();
  });
  return out;
}

function usageError(message: string, usage: string): AgentError {
  return new AgentError(EXIT.usage, `${message}\n\n${usage}`);
}

type ParseOptions = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

function parse(argv: string[], options: ParseOptions, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError((e as Error).message, usage);
  }
}

function positiveInt(flag: string, value: string | undefined, usage: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw usageError(`${flag} must be a whole number >= ${min}, got "${value}"`, usage);
  }
  return n;
}

/** Daemon flags (with FAILOVER_* environment fallbacks); throws AgentError(2) naming the bad flag. */
export function parseDaemonArgs(argv: string[], env: Record<string, string | undefined>): DaemonArgs {
  const { values, positionals } = parse(
    argv,
    {
      cluster: { type: 'string' },
      node: { type: 'string' },
      table: { type: 'string' },
      region: { type: 'string' },
      'state-dir': { type: 'string' },
      'watchdog-device': { type: 'string' },
      'watchdog-timeout-sec': { type: 'string' },
      'log-level': { type: 'string' },
      settings: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
    DAEMON_USAGE,
  );
  if (positionals.length > 0) {
    throw usageError(
      `unexpected argument "${positionals[0]}" (did you mean "failover-agent guard ..."?)`,
      DAEMON_USAGE,
    );
  }
  const v = values as Record<string, string | boolean | undefined>;
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const out: DaemonArgs = {
    stateDir: str('state-dir') ?? env.FAILOVER_AGENT_STATE_DIR ?? DEFAULT_STATE_DIR,
    help: v.help === true,
    version: v.version === true,
  };
  const cluster = str('cluster') ?? env.FAILOVER_CLUSTER;
  const node = str('node') ?? env.FAILOVER_NODE;
  if (cluster) out.cluster = cluster;
  if (node) out.node = node;
  if (str('table')) out.table = str('table')!;
  if (str('region')) out.region = str('region')!;
  if (str('watchdog-device')) out.watchdogDevice = str('watchdog-device')!;
  const wdt = positiveInt('--watchdog-timeout-sec', str('watchdog-timeout-sec'), DAEMON_USAGE, 1);
  if (wdt !== undefined) out.watchdogTimeoutSec = wdt;
  const level = str('log-level') ?? env.FAILOVER_AGENT_LOG_LEVEL;
  if (level) out.logLevel = level;
  if (str('settings')) out.settingsFile = str('settings')!;
  return out;
}

/** Guard flags and COMMAND (after `--`); 'help' for --help; throws AgentError(2) naming the bad flag. */
export function parseGuardArgs(argv: string[], env: Record<string, string | undefined>): GuardArgs | 'help' {
  const { values, positionals } = parse(
    argv,
    {
      group: { type: 'string' },
      epoch: { type: 'string' },
      action: { type: 'string' },
      cluster: { type: 'string' },
      node: { type: 'string' },
      table: { type: 'string' },
      region: { type: 'string' },
      'state-dir': { type: 'string' },
      vip: { type: 'string', multiple: true },
      dev: { type: 'string' },
      'lock-timeout-ms': { type: 'string' },
      resource: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    GUARD_USAGE,
  );
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help === true) return 'help';
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const group = str('group');
  if (!group) throw usageError('--group G is required', GUARD_USAGE);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(group)) {
    throw usageError(
      `--group "${group}" is not a group name (lowercase letters, digits, dashes)`,
      GUARD_USAGE,
    );
  }
  if (str('epoch') === undefined)
    throw usageError('--epoch N is required (the epoch the command was sent for)', GUARD_USAGE);
  const epoch = positiveInt('--epoch', str('epoch'), GUARD_USAGE, 0)!;
  const action = str('action') ?? 'start';
  if (action !== 'start' && action !== 'stop') {
    throw usageError(`--action must be start or stop, got "${action}"`, GUARD_USAGE);
  }
  const resource = str('resource');
  if (resource !== undefined) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(resource))
      throw usageError(
        `--resource "${resource}" is not a resource name (lowercase letters, digits, dashes)`,
        GUARD_USAGE,
      );
    if (positionals.length > 0)
      throw usageError(
        '--resource takes its command from the stored definition: give no COMMAND',
        GUARD_USAGE,
      );
  } else if (positionals.length === 0) {
    throw usageError(
      'COMMAND is missing: put it after "--", e.g. -- /opt/app/start.sh (or --resource R to run the stored one)',
      GUARD_USAGE,
    );
  }
  const vips = (values.vip as string[] | undefined) ?? [];
  for (const vip of vips) {
    if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(vip))
      throw usageError(`--vip must be an IPv4 address such as 172.16.0.10, got "${vip}"`, GUARD_USAGE);
  }
  if (str('dev') !== undefined && vips.length === 0) throw usageError('--dev needs --vip', GUARD_USAGE);
  const out: GuardArgs = {
    group,
    epoch,
    action,
    stateDir: str('state-dir') ?? env.FAILOVER_AGENT_STATE_DIR ?? DEFAULT_STATE_DIR,
    lockTimeoutMs: positiveInt('--lock-timeout-ms', str('lock-timeout-ms'), GUARD_USAGE, 0) ?? 60_000,
    vips,
    command: positionals,
  };
  if (resource !== undefined) out.resource = resource;
  for (const k of ['cluster', 'node', 'table', 'region', 'dev'] as const) {
    const value = str(k);
    if (value !== undefined) out[k] = value;
  }
  return out;
}
