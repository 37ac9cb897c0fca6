/** `failoverctl apply -f cluster.yaml`: validate, store a new version, show what changed. Idempotent. */

import { createNotifier } from '../../controller/notify/notifier';
import type { ClusterConfig } from '../../shared/config/load';
import { awsOptions, type GlobalFlags, type Io, openStore } from '../context';
import { loadDefinitionFile, summarizeConfig } from './validate';

export async function applyCommand(
  io: Io,
  flags: GlobalFlags,
  options: { file: string; expectedVersion?: number },
): Promise<number> {
  const config = await loadDefinitionFile(options.file);
  const store = openStore(io, flags, config.region);
  const result = await store.applyConfig(config, {
    now: io.now(),
    by: io.env.USER ?? 'failoverctl',
    ...(options.expectedVersion !== undefined ? { expectedVersion: options.expectedVersion } : {}),
  });
  if (!result.changed) {
    io.out(
      `cluster ${config.cluster} is already at version ${result.version} with this definition; nothing changed`,
    );
    return 0;
  }
  io.out(`applied cluster ${config.cluster} as version ${result.version} (table ${store.table})`);
  const changes = result.previous ? diffConfigs(result.previous.config, config) : ['new cluster'];
  for (const line of changes) io.out(`  ${line}`);
  const event = {
    at: io.now(),
    cluster: config.cluster,
    kind: 'config.applied' as const,
    message: `version ${result.version} applied by ${io.env.USER ?? 'failoverctl'}: ${changes.join('; ')}`,
  };
  await store.appendAudit(event);
  const eventBus = io.env.FAILOVER_EVENT_BUS;
  const topicArn = io.env.FAILOVER_ALERT_TOPIC_ARN;
  if (eventBus || topicArn) {
    // Announced like every transition; a publishing failure is reported, the apply stands.
    await createNotifier(
      { ...(eventBus ? { eventBus } : {}), ...(topicArn ? { topicArn } : {}) },
      awsOptions(io, flags),
    )
      .publish(event)
      .catch((e) =>
        io.err(`warning: the version is stored, but announcing it failed: ${(e as Error).message}`),
      );
  }
  io.out(summarizeConfig(config));
  return 0;
}

/** A short, human list of what differs between two definitions (by top-level entity). */
export function diffConfigs(before: ClusterConfig, after: ClusterConfig): string[] {
  const out: string[] = [];
  const byName = <T extends { name: string }>(items: readonly T[]) => new Map(items.map((i) => [i.name, i]));
  const compare = <T extends { name: string }>(kind: string, a: readonly T[], b: readonly T[]) => {
    const ma = byName(a);
    const mb = byName(b);
    for (const [name, item] of mb) {
      if (!ma.has(name)) out.push(`+ ${kind} ${name}`);
      else if (JSON.stringify(ma.get(name)) !== JSON.stringify(item)) out.push(`~ ${kind} ${name}`);
    }
    for (const name of ma.keys()) if (!mb.has(name)) out.push(`- ${kind} ${name}`);
  };
  if (JSON.stringify(before.timing) !== JSON.stringify(after.timing))
    out.push(`~ timing ${JSON.stringify(before.timing)} -> ${JSON.stringify(after.timing)}`);
  if (JSON.stringify(before.witnesses) !== JSON.stringify(after.witnesses)) out.push('~ witnesses');
  compare('node', before.nodes, after.nodes);
  compare('group', before.groups, after.groups);
  return out.length > 0 ? out : ['(only formatting or defaults changed)'];
}
