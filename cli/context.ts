/** What every command needs: output streams, the environment, the table and AWS options. */
import { DynamoStore } from '../controller/state/dynamo-store';
import { type AwsOptions, awsOptionsFromEnv } from '../shared/aws/options';
import { parseClusterConfig } from '../shared/config/load';
import { resolveTableName } from '../shared/table/keys';
import type { Io } from './io';

export { type Io, processIo } from './io';

export interface GlobalFlags {
  table?: string;
  region?: string;
  endpoint?: string;
}

export function awsOptions(io: Io, flags: GlobalFlags): AwsOptions {
  return awsOptionsFromEnv(io.env, {
    ...(flags.region ? { region: flags.region } : {}),
    ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
  });
}

export function openStore(io: Io, flags: GlobalFlags, regionFallback?: string): DynamoStore {
  const options = awsOptions(io, flags);
  if (!options.region && regionFallback) options.region = regionFallback;
  return new DynamoStore(resolveTableName(flags.table, io.env), options, undefined, {
    validateConfig: parseClusterConfig,
  });
}
