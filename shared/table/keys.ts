/**
 * Item keys of the single state table (partition key `pk`, sort key `sk`, TTL attribute `expiresAt`).
 *
 * | item                      | pk                     | sk                      |
 * |---------------------------|------------------------|-------------------------|
 * | cluster config (current)  | CLUSTER#<c>            | CONFIG                  |
 * | cluster config (history)  | CLUSTER#<c>            | CONFIG#<version:8>      |
 * | group state               | CLUSTER#<c>            | GROUP#<g>               |
 * | request                   | CLUSTER#<c>            | REQUEST#<id>            |
 * | repair request (TTL)      | CLUSTER#<c>            | REPAIR#<g>              |
 * | fact from an event        | CLUSTER#<c>            | FACT#<node>#<kind>      |
 * | node heartbeat            | NODE#<c>#<node>        | HEARTBEAT               |
 * | audit event (TTL)         | AUDIT#<c>              | <iso time>#<suffix>     |
 * | cluster registry          | CLUSTERS               | <c>                     |
 * | instance -> cluster index | INSTANCE#<instanceId>  | INSTANCE                |
 *
 * A heartbeat has its own partition key per node so that an agent's IAM policy can allow writes to
 * its own item only (`dynamodb:LeadingKeys` = `NODE#<c>#<node>`).
 */

/** Default table name when neither `--table` nor FAILOVER_TABLE is given. */
export const DEFAULT_TABLE = 'failover-state';

/** The key of an item: partition key and sort key. */
export interface TableKey {
  pk: string;
  sk: string;
}

/** Partition of the cluster registry: one item per applied cluster (sort key: its name). */
export const CLUSTER_REGISTRY_PK = 'CLUSTERS';

export const keys = {
  config: (cluster: string) => ({ pk: `CLUSTER#${cluster}`, sk: 'CONFIG' }),
  configVersion: (cluster: string, version: number) => ({
    pk: `CLUSTER#${cluster}`,
    sk: `CONFIG#${String(version).padStart(8, '0')}`,
  }),
  group: (cluster: string, group: string) => ({ pk: `CLUSTER#${cluster}`, sk: `GROUP#${group}` }),
  request: (cluster: string, id: string) => ({ pk: `CLUSTER#${cluster}`, sk: `REQUEST#${id}` }),
  repair: (cluster: string, group: string) => ({ pk: `CLUSTER#${cluster}`, sk: `REPAIR#${group}` }),
  fact: (cluster: string, node: string, kind: string) => ({
    pk: `CLUSTER#${cluster}`,
    sk: `FACT#${node}#${kind}`,
  }),
  heartbeat: (cluster: string, node: string) => ({ pk: heartbeatPk(cluster, node), sk: 'HEARTBEAT' }),
  cluster: (cluster: string) => ({ pk: CLUSTER_REGISTRY_PK, sk: cluster }),
  instance: (instanceId: string) => ({ pk: `INSTANCE#${instanceId}`, sk: 'INSTANCE' }),
  auditPk: (cluster: string) => `AUDIT#${cluster}`,
  clusterPk: (cluster: string) => `CLUSTER#${cluster}`,
};

export function heartbeatPk(cluster: string, node: string): string {
  return `NODE#${cluster}#${node}`;
}

/** Table name from the flag, then FAILOVER_TABLE, then the default. */
export function resolveTableName(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env.FAILOVER_TABLE ?? DEFAULT_TABLE;
}
