/** `failoverctl validate -f cluster.yaml`: every problem at once, with its path, line and fix. Writes nothing. */
import { readFile, stat } from 'node:fs/promises';
import { ConfigError, InvalidRequestError } from '../../shared/base/errors';
import { DEFINITION_MAX_BYTES } from '../../shared/config/limits';
import { type ClusterConfig, loadClusterConfigText } from '../../shared/config/load';
import { platformNotes } from '../../shared/core/platform-notes';
import type { Io } from '../context';

/** Reads and validates a definition file; throws ConfigError listing every problem. */
export async function loadDefinitionFile(file: string): Promise<ClusterConfig> {
  let text: string;
  try {
    // A file far larger than any definition is not read at all.
    const { size } = await stat(file);
    if (size > DEFINITION_MAX_BYTES)
      throw new ConfigError(
        [
          {
            path: '',
            message: `the file is ${Math.round(size / 1024)} KB; a definition is at most ${DEFINITION_MAX_BYTES / 1024} KB (its stored form must fit a DynamoDB item): split the groups over several clusters`,
            location: file,
          },
        ],
        file,
      );
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new InvalidRequestError(
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; pass the cluster definition with -f <file>`,
    );
  }
  const result = loadClusterConfigText(text, file);
  if (!result.ok) throw new ConfigError(result.issues, file);
  return result.config;
}

export function summarizeConfig(config: ClusterConfig): string {
  const groups = config.groups.map(
    (g) =>
      `${g.name} on [${g.nodes.join(', ')}]: ${g.resources.length} resources, ${g.monitors.length} monitors`,
  );
  return [
    `cluster ${config.cluster} (${config.region}): ${config.nodes.length} nodes, ${config.witnesses.length} witnesses, ${config.groups.length} groups`,
    `  lease ${config.timing.leaseMs} ms, heartbeat every ${config.timing.heartbeatIntervalMs} ms, agents fence ${config.timing.fenceMarginMs} ms before the lease ends`,
    ...groups.map((g) => `  group ${g}`),
  ].join('\n');
}

export async function validateCommand(io: Io, options: { file: string; json?: boolean }): Promise<number> {
  const config = await loadDefinitionFile(options.file);
  if (options.json) io.out(JSON.stringify(config, null, 2));
  else {
    io.out(`${options.file} is valid\n${summarizeConfig(config)}`);
    for (const note of platformNotes(config)) io.out(`note: ${note.path}: ${note.message}`);
  }
  return 0;
}
