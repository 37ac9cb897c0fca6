/**
 * `failoverctl console`: a live web console on this machine. It reads the state table with the
 * operator's own credentials (nothing to deploy) and serves one page that updates itself; actions
 * go through the same request path as `failoverctl move/start/stop/suspend/resume/cancel`.
 */
import { spawn } from 'node:child_process';
import { hostname, userInfo } from 'node:os';
import { reconcileCluster } from '../../controller/reconcile/reconcile';
import { createAwsCloud } from '../../controller/resources';
import { LOCAL_GUARD_DOCUMENT } from '../../controller/resources/guard-document';
import { DynamoStore } from '../../controller/state/dynamo-store';
import type { AwsOptions } from '../../shared/aws/options';
import { parseClusterConfig } from '../../shared/config/load';
import { resolveTableName } from '../../shared/table/keys';
import { awsOptions, type GlobalFlags, type Io } from '../context';
import { cliController, cliHolder } from '../controller';
import { type ConsoleServer, startConsole } from './server';
import { ConsoleSource } from './snapshot';

export interface ConsoleCommandOptions {
  port: number;
  listen?: string;
  open?: boolean;
  readOnly?: boolean;
  local?: boolean;
  allowHost?: string[];
  /** Stops the server (tests); default: Ctrl-C or SIGTERM. */
  signal?: AbortSignal;
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach them. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export interface LaunchOptions {
  table: string;
  aws: AwsOptions;
  host?: string;
  port?: number;
  readOnly?: boolean;
  allowedHosts?: string[];
  /** Runs reconcile here after each action. */
  reconcileNow?: (cluster: string) => Promise<void>;
  log?: (line: string) => void;
}

/** Starts a console on a table (the command, and `npm run demo -- --console` on the sandbox's table). */
export async function launchConsole(options: LaunchOptions): Promise<ConsoleServer> {
  const store = new DynamoStore(options.table, options.aws, undefined, {
    validateConfig: parseClusterConfig,
  });
  const cloud = createAwsCloud(options.aws, {
    document: process.env.FAILOVER_SSM_DOCUMENT ?? LOCAL_GUARD_DOCUMENT,
    ...(process.env.FAILOVER_SSM_DOCUMENT_WINDOWS
      ? { windowsDocument: process.env.FAILOVER_SSM_DOCUMENT_WINDOWS }
      : {}),
  });
  const source = new ConsoleSource({ store, cloud, readOnly: options.readOnly ?? false });
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return startConsole({
    source,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8080,
    readOnly: options.readOnly ?? false,
    by: `console:${user}@${hostname()}`,
    ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
    ...(options.reconcileNow ? { reconcileNow: options.reconcileNow } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

export async function consoleCommand(
  io: Io,
  flags: GlobalFlags,
  options: ConsoleCommandOptions,
): Promise<number> {
  // Before anything starts: a Ctrl-C or SIGTERM during start-up must stop the console cleanly.
  const signal = options.signal ?? interruptSignal();
  const host = options.listen ?? '127.0.0.1';
  const aws = awsOptions(io, flags);
  const table = resolveTableName(flags.table, io.env);
  const server = await launchConsole({
    table,
    aws,
    host,
    port: options.port,
    readOnly: options.readOnly ?? false,
    ...(options.allowHost ? { allowedHosts: options.allowHost } : {}),
    ...(options.local
      ? {
          reconcileNow: async (cluster: string) => {
            const deps = cliController(io, flags, undefined);
            await reconcileCluster({ ...deps, holder: cliHolder() }, cluster, {
              deadline: io.now() + 30_000,
            });
          },
        }
      : {}),
    log: (line) => io.err(line),
  });
  if (!isLoopback(host))
    io.err(
      `warning: listening on ${host}, not loopback: anyone who can reach this address sees every cluster of table ${table}${options.readOnly ? '' : ' and, with the page, can move, start and stop groups'}; prefer an SSH tunnel to 127.0.0.1`,
    );
  io.out(
    `failover console on ${server.url} (table ${table}${options.readOnly ? ', read-only' : ''}); Ctrl-C to stop`,
  );
  if (options.open) openBrowser(server.url, io);

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  return 0;
}

function openBrowser(url: string, io: Io): void {
  const command =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => io.err(`could not start ${command}; open ${url} yourself`));
    child.unref();
  } catch {
    io.err(`could not start ${command}; open ${url} yourself`);
  }
}

function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}
