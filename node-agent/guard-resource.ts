/**
 * `failover-agent guard --resource R`: what the controller's SSM document runs. The command is not
 * sent by the controller: it is the start or stop of exec resource R of the group in the stored
 * cluster definition (read strongly consistent, as `failoverctl apply` wrote it), and the addresses
 * put on the interface are the group's. Cluster, table and region are the local agent's (its
 * agent.json), so nothing the controller sends can point the guard at another table or cluster.
 */
import { interfaceAddresses } from '../shared/core/node-side';
import { DEFAULT_TABLE } from '../shared/table/keys';
import { AgentError, EXIT } from './errors';
import type { GuardArgs } from './guard';
import { LocalState } from './local-state';
import { errorText } from './log';
import { type AgentStore, guardAwsOptions, openStore } from './store';

/** The guard's arguments with the stored command and addresses of `args.resource`; throws AgentError. */
export async function withStoredCommand(
  args: GuardArgs,
  env: Record<string, string | undefined>,
  storeFor?: (table: string, region: string | undefined, endpoint: string | undefined) => AgentStore,
): Promise<GuardArgs> {
  const name = args.resource;
  if (name === undefined) return args;
  const lease = new LocalState(args.stateDir).readLease();
  const cluster = args.cluster ?? env.FAILOVER_CLUSTER ?? lease?.cluster;
  if (!cluster)
    throw new AgentError(
      EXIT.usage,
      `cannot tell the cluster: no agent.json in ${args.stateDir}; is failover-agent installed and running here?`,
    );
  const table = args.table ?? env.FAILOVER_TABLE ?? lease?.table ?? DEFAULT_TABLE;
  const region = args.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? lease?.region;
  const store = storeFor
    ? storeFor(table, region, lease?.endpoint)
    : openStore(table, guardAwsOptions(env, region, lease?.endpoint));
  let stored: Awaited<ReturnType<AgentStore['getConfig']>>;
  try {
    stored = await store.getConfig(cluster);
  } catch (e) {
    throw new AgentError(
      EXIT.failed,
      `cannot read the definition of cluster ${cluster}: ${errorText(e)}; nothing was run`,
    );
  }
  const group = stored?.config.groups.find((g) => g.name === args.group);
  const resource = group?.resources.find((r) => r.name === name);
  if (!group || !resource || resource.type !== 'exec')
    throw new AgentError(
      EXIT.stale,
      `refused: the stored definition of cluster ${cluster} (version ${stored?.version ?? 'none'}) has no exec resource ${name} in group ${args.group}; nothing was run`,
    );
  return {
    ...args,
    cluster,
    table,
    command: [args.action === 'start' ? resource.start : resource.stop],
    vips: [...new Set([...args.vips, ...interfaceAddresses(group)])],
  };
}
