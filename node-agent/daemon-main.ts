/**
 * Wiring of the daemon: flags, region (flag, AWS_REGION, else IMDS), identity (flags or IMDS +
 * instance index), the watchdog, signals. SIGTERM and SIGINT start the planned shutdown.
 */

import { readFileSync } from 'node:fs';
import { DEFAULT_TABLE } from '../shared/table/keys';
import { Agent } from './agent';
import { DAEMON_USAGE, parseDaemonArgs, parseEnvFile } from './cli';
import { systemClock } from './clock';
import { AgentError, EXIT } from './errors';
import { resolveIdentity } from './identity';
import { Imds, imdsEndpointFromEnv } from './imds';
import { LocalState } from './local-state';
import { createLogger, errorText, parseLogLevel } from './log';
import { currentPlatform } from './platform';
import { statusRecord, watchdogStatus, writeStatus } from './status';
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

/** The Node.js major the agent is supported on; older ones run (Node 20) but are past their end of life. */
export const RECOMMENDED_NODE_MAJOR = 22;

/**
 * One line for the log when the runtime is older than the recommended LTS, or undefined. The AWS
 * SDK's own NodeVersionSupportWarning is not silenced: it says the same for SDK releases to come.
 */
export function runtimeAdvice(nodeVersion: string): string | undefined {
  const major = Number.parseInt(nodeVersion, 10);
  if (!Number.isFinite(major) || major >= RECOMMENDED_NODE_MAJOR) return undefined;
  return `Node.js ${nodeVersion} is past its end of life; the agent runs on it, but install Node.js ${RECOMMENDED_NODE_MAJOR} LTS (Amazon Linux 2023: dnf install nodejs${RECOMMENDED_NODE_MAJOR}; Windows: the Node.js ${RECOMMENDED_NODE_MAJOR} MSI) and run the installer again`;
}

/** Runs the daemon until SIGTERM/SIGINT; resolves with the exit code. */
export async function daemonMain(argv: string[]): Promise<number> {
  const env = process.env;
  const first = parseDaemonArgs(argv, env);
  if (first.settingsFile) {
    // Settings of the Windows service (no EnvironmentFile there): the file fills in what the
    // environment does not set, then the flags are read again with it.
    let text: string;
    try {
      text = readFileSync(first.settingsFile, 'utf8');
    } catch (e) {
      throw new AgentError(
        EXIT.usage,
        `--settings ${first.settingsFile}: ${(e as NodeJS.ErrnoException).code ?? errorText(e)}; write the settings there (KEY=VALUE lines) or drop the flag`,
      );
    }
    for (const [k, v] of Object.entries(parseEnvFile(text, first.settingsFile))) env[k] ??= v;
  }
  const args = first.settingsFile ? parseDaemonArgs(argv, env) : first;
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
  const runtime = runtimeAdvice(process.versions.node);
  if (runtime) log.warn(runtime);

  let watchdog: Watchdog | undefined;
  const platform = currentPlatform();
  if (args.watchdogDevice && !platform.watchdog.supported) {
    throw new AgentError(EXIT.usage, `--watchdog-device ${args.watchdogDevice}: ${platform.watchdog.reason}`);
  }
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

  const state = new LocalState(args.stateDir);
  const agent = new Agent({
    cluster: id.cluster,
    node: id.node,
    table,
    state,
    // `failover-agent status` reads what the last acknowledged renewal reported.
    onAcked: (ack) => {
      try {
        writeStatus(
          state,
          statusRecord(ack, {
            platform: platform.name,
            watchdog: watchdogStatus(watchdog, platform.watchdog),
            ackedMono: systemClock.mono(),
            ...(runtime ? { runtimeAdvice: runtime } : {}),
          }),
        );
      } catch (e) {
        log.debug(`cannot write ${args.stateDir}/status.json: ${errorText(e)}`);
      }
    },
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
  // SIGINT is also what a Windows service wrapper (WinSW) sends as Ctrl+C on a service stop or a
  // shutdown; SIGBREAK is Ctrl+Break.
  const signals: NodeJS.Signals[] =
    platform.name === 'windows' ? ['SIGINT', 'SIGBREAK', 'SIGTERM'] : ['SIGTERM', 'SIGINT'];
  for (const s of signals) process.on(s, onSignal);
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
    for (const s of signals) process.off(s, onSignal);
  }
}
