/** Reconcile from the CLI: the same code as the Lambda, with this machine's credentials. */
import { hostname } from 'node:os';
import { controllerSettingsFromEnv, createControllerDeps } from '../controller/reconcile/controller';
import type { ControllerDeps } from '../controller/reconcile/entry';
import type { Log } from '../shared/core/ports';
import { resolveTableName } from '../shared/table/keys';
import { awsOptions, type GlobalFlags, type Io } from './context';

export function cliLog(io: Io, verbose: boolean): Log {
  const line = (level: string) => (message: string, attributes?: Record<string, unknown>) => {
    if (verbose || level !== 'info') io.err(JSON.stringify({ level, message, ...attributes }));
  };
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

export function cliController(
  io: Io,
  flags: GlobalFlags,
  region: string | undefined,
  verbose = false,
): ControllerDeps {
  const aws = awsOptions(io, flags);
  if (!aws.region && region) aws.region = region;
  const settings = controllerSettingsFromEnv(io.env, { table: resolveTableName(flags.table, io.env), aws });
  return createControllerDeps(settings, cliLog(io, verbose));
}

export function cliHolder(): string {
  return `cli:${hostname()}:${process.pid}:${Date.now().toString(36)}`;
}
