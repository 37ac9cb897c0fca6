/**
 * What reconcile would do now, doing nothing: the same observe and decide as a real reconcile, but
 * no lock, no write, no AWS mutation (`failoverctl plan`).
 */

import { NotFoundError } from '../../shared/base/errors';
import { decide } from '../../shared/core/decide';
import { initialGroupState } from '../../shared/core/model';
import type { Plan } from '../../shared/core/plan';
import type { Clock, Cloud, StateStore } from '../../shared/core/ports';
import { observeGroup, ReconcileSnapshot } from './observe';

export async function planCluster(
  deps: { store: StateStore; cloud: Cloud; clock: Clock },
  cluster: string,
): Promise<Plan[]> {
  const stored = await deps.store.getConfig(cluster);
  if (!stored)
    throw new NotFoundError(
      'CLUSTER_NOT_FOUND',
      `cluster ${cluster} has no configuration in the state table; run "failoverctl apply -f cluster.yaml" first`,
    );
  const signal = AbortSignal.timeout(30_000);
  const snapshot = new ReconcileSnapshot(deps, stored, signal);
  return Promise.all(
    stored.config.groups.map(async (group) => {
      const state =
        (await deps.store.getGroup(cluster, group.name)) ?? initialGroupState(group, deps.clock.now());
      return decide(await observeGroup(deps, snapshot, group, state, () => deps.clock.now(), signal));
    }),
  );
}
