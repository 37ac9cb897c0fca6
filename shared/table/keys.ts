/**
 * Item keys of the single state table (partition key `pk`, sort key `sk`, TTL attribute `expiresAt`).
 *
 * | item                      | pk                            | sk                      |
 * |---------------------------|-------------------------------|-------------------------|
 * | cluster config (current)  | CONFIG#<c>                    | CONFIG                  |
 * | cluster config (history)  | CONFIG#<c>                    | CONFIG#<version:8>      |
 * | group state               | CLUSTER#<c>                   | GROUP#<g>               |
 * | request                   | CLUSTER#<c>                   | REQUEST#<id>            |
 * | repair request (TTL)      | CLUSTER#<c>                   | REPAIR#<g>              |
 * | fact from an event        | CLUSTER#<c>                   | FACT#<node>#<kind>      |
 * | node heartbeat            | NODE#<c>#<instance ARN>       | HEARTBEAT               |
 * | audit event (TTL)         | AUDIT#<c>                     | <iso time>#<suffix>     |
 * | cluster registry          | CLUSTERS                      | <c>                     |
 * | instance -> cluster index | INSTANCE#<instance ARN>       | INSTANCE                |
 *
 * Two rules of IAM shape these keys (`failoverctl iam-policy`, serverless.yml):
 *
 * - A heartbeat's partition key ends with the ARN of the node's instance, which is what IAM's policy
 *   variable `${ec2:SourceInstanceARN}` names for a request signed with that instance's role
 *   session: one statement (`dynamodb:LeadingKeys` = `NODE#<c>#${ec2:SourceInstanceARN}`) lets every
 *   node of any size of cluster write its own heartbeat and no other; the instance index likewise
 *   lets an agent read its own entry only.
 * - What only `failoverctl apply` writes (the definition, the registry, the instance index) lives in
 *   partitions of its own (`CONFIG#`, `CLUSTERS`, `INSTANCE#`), so that the controller's role can be
 *   denied writing them: the definition holds the commands the nodes' guard runs.
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

/** Where the keys of a cluster's heartbeats come from: its definition (region, account, nodes). */
export interface HeartbeatKeyScope {
  cluster: string;
  region: string;
  /** The account of the nodes' instances (recorded by `failoverctl apply`). */
  account?: string | undefined;
  nodes: readonly { name: string; instanceId: string }[];
}

export const keys = {
  config: (cluster: string) => ({ pk: configPk(cluster), sk: 'CONFIG' }),
  configVersion: (cluster: string, version: number) => ({
    pk: configPk(cluster),
    sk: `CONFIG#${String(version).padStart(8, '0')}`,
  }),
  group: (cluster: string, group: string) => ({ pk: `CLUSTER#${cluster}`, sk: `GROUP#${group}` }),
  request: (cluster: string, id: string) => ({ pk: `CLUSTER#${cluster}`, sk: `REQUEST#${id}` }),
  repair: (cluster: string, group: string) => ({ pk: `CLUSTER#${cluster}`, sk: `REPAIR#${group}` }),
  fact: (cluster: string, node: string, kind: string) => ({
    pk: `CLUSTER#${cluster}`,
    sk: `FACT#${node}#${kind}`,
  }),
  /** A node's heartbeat, by the ARN of its instance (see `instanceArn`). */
  heartbeat: (cluster: string, arn: string) => ({ pk: heartbeatPk(cluster, arn), sk: 'HEARTBEAT' }),
  cluster: (cluster: string) => ({ pk: CLUSTER_REGISTRY_PK, sk: cluster }),
  /** The instance index entry, by the ARN of the instance. */
  instance: (arn: string) => ({ pk: `INSTANCE#${arn}`, sk: 'INSTANCE' }),
  auditPk: (cluster: string) => `AUDIT#${cluster}`,
  clusterPk: (cluster: string) => `CLUSTER#${cluster}`,
  configPk: (cluster: string) => configPk(cluster),
};

function configPk(cluster: string): string {
  return `CONFIG#${cluster}`;
}

/** The AWS partition of a region: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f. */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('eu-isoe-')) return 'aws-iso-e';
  if (region.startsWith('us-isof-')) return 'aws-iso-f';
  return 'aws';
}

/**
 * The ARN of an instance, as IAM's `ec2:SourceInstanceARN` names it. Without an account (a
 * definition stored before accounts were recorded) the account field stays empty: such keys work
 * with no IAM in the way (the emulator), and `failoverctl doctor` says to apply the definition again.
 */
export function instanceArn(
  scope: { region: string; account?: string | undefined },
  instanceId: string,
): string {
  return `arn:${partitionOf(scope.region)}:ec2:${scope.region}:${scope.account ?? ''}:instance/${instanceId}`;
}

export function heartbeatPk(cluster: string, arn: string): string {
  return `NODE#${cluster}#${arn}`;
}

/** `NODE#<cluster>#arn:<partition>:ec2:<region>:<account>:instance/<id>`, taken apart; undefined otherwise. */
export function parseHeartbeatPk(
  pk: string,
): { cluster: string; instanceArn: string; instanceId: string } | undefined {
  const m =
    /^NODE#([a-z0-9][a-z0-9-]{0,62})#(arn:aws[a-z-]*:ec2:[a-z0-9-]+:(?:\d{12})?:instance\/(i-[0-9a-f]{8,17}))$/.exec(
      pk,
    );
  return m ? { cluster: m[1]!, instanceArn: m[2]!, instanceId: m[3]! } : undefined;
}

/** Each node's heartbeat key of a definition, and back from a key to its node. */
export function heartbeatKeys(scope: HeartbeatKeyScope): {
  key: (node: string) => TableKey | undefined;
  nodeOf: (pk: string) => string | undefined;
} {
  const byNode = new Map<string, TableKey>();
  const byPk = new Map<string, string>();
  for (const n of scope.nodes) {
    const key = keys.heartbeat(scope.cluster, instanceArn(scope, n.instanceId));
    byNode.set(n.name, key);
    byPk.set(key.pk, n.name);
  }
  return { key: (node) => byNode.get(node), nodeOf: (pk) => byPk.get(pk) };
}

/** Table name from the flag, then FAILOVER_TABLE, then the default. */
export function resolveTableName(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env.FAILOVER_TABLE ?? DEFAULT_TABLE;
}
