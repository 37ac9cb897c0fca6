/**
 * Wiring of the daemon: flags, region (flag, AWS_REGION, else IMDS), identity (flags or IMDS +
 * instance index), the watchdog, signals. SIGTERM and SIGINT start the planned shutdown.
 */
import { DEFAULT_TABLE } from '../shared/table/keys';
import { Agent } from './agent';
import { DAEMON_USAGE, parseDaemonArgs } from './cli';
import { systemClock } from './clock';
import { AgentError, EXIT } from './errors';
import { resolveIdentity } from './identity';
import { Imds, imdsEndpointFromEnv } from './imds';
import { LocalState } from './local-state';
import { createLogger, errorText, parseLogLevel } from './log';
import { daemonAwsOptions, openStore } from './store';
import { AGENT_VERSION } from './version';
import { createVipOps } from './vip';
import { SYSFS_WATCHDOG, Watchdog } from './watchdog';

/**
 * A full garbage collection this often when node runs with --expose-gc (the unit's flags). The
 * agent's garbage is mostly short-lived, but what outlives two young-generation collections (1 MB
 * semi-spaces) piles up in the old generation, which V8 lets grow by about 2 MB past the live heap
 * before collecting it: resident memory then saws between about 48 and 51 MB. A collection every
 * 30 s keeps it near the live heap for about 12 ms of CPU each (0.04 % of a core).
 */
const HEAP_TRIM_MS = 30_000;

/** Runs the daemon until SIGTERM/SIGINT; resolves with the exit code. */
export async function daemonMain(argv: string[]): Promise<number> {
  const env = process.env;
  const args = parseDaemonArgs(argv, env);
  if (args.help) {
    process.stdout.write(`${DAEMON_USAGE}\n`);
    return EXIT.ok;
  }
  if (args.version) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return EXIT.ok;
  }
  let level: ReturnType<typeof parseLogLevel>;
  try {
    level = parseLogLevel(args.logLevel);
  } catch (e) {
    throw new AgentError(EXIT.usage, errorText(e));
  }
  const table = args.table ?? env.FAILOVER_TABLE ?? DEFAULT_TABLE;
  const imdsEndpoint = imdsEndpointFromEnv(env);
  const imds = imdsEndpoint ? new Imds(imdsEndpoint, systemClock) : undefined;

  let region = args.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region && imds) {
    region = await imds.region().catch(() => undefined);
  }
  if (!region) {
    throw new AgentError(
      EXIT.usage,
      'no AWS region: set AWS_REGION (e.g. in the systemd unit) or pass --region',
    );
  }
  const identityStore = openStore(table, daemonAwsOptions(env, region));
  const id = await resolveIdentity({
    ...(args.cluster ? { cluster: args.cluster } : {}),
    ...(args.node ? { node: args.node } : {}),
    store: identityStore,
    imds,
  });
  const log = createLogger(`failover-agent[${id.node}]`, level);

  let watchdog: Watchdog | undefined;
  if (args.watchdogDevice) {
    // The timeout is read from sysfs (--watchdog-timeout-sec only where sysfs has no entry); the
    // device is opened once the definition's lease is known, and only if the timeout suits it.
    watchdog = new Watchdog(
      args.watchdogDevice,
      args.watchdogTimeoutSec !== undefined ? args.watchdogTimeoutSec * 1000 : undefined,
      log,
      env.FAILOVER_AGENT_SYSFS_WATCHDOG || SYSFS_WATCHDOG,
    );
  }

  const agent = new Agent({
    cluster: id.cluster,
    node: id.node,
    table,
    state: new LocalState(args.stateDir),
    storeFor: (timing) => openStore(table, daemonAwsOptions(env, region, timing)),
    clock: systemClock,
    log,
    env,
    vip: createVipOps(env),
    agentVersion: AGENT_VERSION,
    region,
    ...(env.AWS_ENDPOINT_URL ? { endpoint: env.AWS_ENDPOINT_URL } : {}),
    ...(imds ? { imds } : {}),
    ...(watchdog ? { watchdog } : {}),
    ...(env.FAILOVER_AGENT_SPOT_POLL_MS ? { spotPollMs: Number(env.FAILOVER_AGENT_SPOT_POLL_MS) } : {}),
  });
  const onSignal = (signal: NodeJS.Signals) => {
    void agent.shutdown(signal).catch((e) => log.error(`shutdown failed: ${errorText(e)}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const gc = (globalThis as { gc?: () => void }).gc;
  const heapTrim = typeof gc === 'function' ? setInterval(() => gc(), HEAP_TRIM_MS) : undefined;
  heapTrim?.unref();
  try {
    const code = await agent.run();
    // Done: a probe that still hangs (an NFS write, say) must not keep the process alive until
    // systemd's stop timeout. Give the last log lines a moment, then exit.
    setTimeout(() => process.exit(code), 500).unref();
    return code;
  } finally {
    clearInterval(heapTrim);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
