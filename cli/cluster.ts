/** Which cluster a command is about: --cluster, or the only one in the table. */

import type { DynamoStore } from '../controller/state/dynamo-store';
import { InvalidRequestError, NotFoundError } from '../shared/base/errors';
import type { StoredConfig } from '../shared/core/ports';

export async function resolveCluster(store: DynamoStore, flag: string | undefined): Promise<string> {
  if (flag) return flag;
  const clusters = await store.listClusters();
  if (clusters.length === 1) return clusters[0]!;
  if (clusters.length === 0) {
    throw new NotFoundError(
      'CLUSTER_NOT_FOUND',
      `no cluster in table ${store.table}; run "failoverctl apply -f cluster.yaml" (or pass --table)`,
    );
  }
  throw new InvalidRequestError(
    `table ${store.table} holds several clusters (${clusters.join(', ')}); choose one with --cluster NAME`,
  );
}

export async function loadCluster(store: DynamoStore, flag: string | undefined): Promise<StoredConfig> {
  const cluster = await resolveCluster(store, flag);
  const stored = await store.getConfig(cluster);
  if (!stored) {
    throw new NotFoundError(
      'CLUSTER_NOT_FOUND',
      `cluster ${cluster} is not in table ${store.table}; known: ${(await store.listClusters()).join(', ') || '(none)'}`,
    );
  }
  return stored;
}
