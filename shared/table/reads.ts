/**
 * Reads of the state table that the controller's store (controller/state/dynamo-store.ts, AWS SDK)
 * and the agent's (node-agent/store.ts, its own small client) make alike, over whichever client
 * they have: keys and items are plain objects here; each store (un)marshals for its transport.
 */
import { FailoverError } from '../base/errors';
import type { GroupState, Heartbeat } from '../core/model';
import { toClusterState } from './items';
import { type HeartbeatKeyScope, heartbeatKeys, keys, type TableKey } from './keys';

/** One BatchGetItem round on one table: the items it returned and the keys it left unprocessed. */
export type BatchGetRound = (
  keys: readonly TableKey[],
  consistent: boolean,
) => Promise<{ items: Record<string, unknown>[]; unprocessed: TableKey[] }>;

/** BatchGetItem takes at most this many keys per call. */
export const BATCH_GET_MAX_KEYS = 100;
/** Rounds per chunk for keys DynamoDB left unprocessed (throttled partitions) before giving up. */
const UNPROCESSED_ROUNDS = 5;
/** Backoff before round n of unprocessed keys: BACKOFF_MS × 2^n. */
const BACKOFF_MS = 20;

/**
 * BatchGetItem of any number of keys, retrying unprocessed ones with a short backoff. Throws when
 * keys are still unprocessed after the last round: a missing item would read as "no such item" (a
 * node that never renewed, a group without a record), and decisions are made on what is absent.
 */
export async function batchGetAll(
  round: BatchGetRound,
  all: readonly TableKey[],
  consistent: boolean,
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < all.length; i += BATCH_GET_MAX_KEYS) {
    let pending: readonly TableKey[] = all.slice(i, i + BATCH_GET_MAX_KEYS);
    for (let attempt = 0; pending.length > 0 && attempt < UNPROCESSED_ROUNDS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, BACKOFF_MS * 2 ** (attempt - 1)));
      const res = await round(pending, consistent);
      out.push(...res.items);
      pending = res.unprocessed;
    }
    if (pending.length > 0) {
      throw new FailoverError(
        'THROTTLED',
        `DynamoDB left ${pending.length} of ${all.length} keys unprocessed after ${UNPROCESSED_ROUNDS} BatchGetItem rounds (throttled); the read is not used partially, it is retried`,
        { retryable: true },
      );
    }
  }
  return out;
}

/**
 * Nodes' heartbeats, by node name. Each is read at its node's key (the ARN of the node's instance,
 * keys.ts) and mapped to the node by that key, never by what the item says: an agent can write only
 * its own key (IAM), so an item claiming another node's name there is a forgery and is dropped.
 */
export async function readHeartbeats(
  round: BatchGetRound,
  scope: HeartbeatKeyScope,
  nodes: readonly string[],
  consistent: boolean,
): Promise<Record<string, Heartbeat>> {
  const hk = heartbeatKeys(scope);
  const items = await batchGetAll(
    round,
    nodes.flatMap((n) => hk.key(n) ?? []),
    consistent,
  );
  return toClusterState(items, hk.nodeOf).heartbeats;
}

/**
 * Group records and nodes' heartbeats of a cluster in one BatchGetItem, eventually consistent: what
 * an agent reads every heartbeat. It only ever needs "at least this recent": an older version
 * delays a decision, never makes it unsafe (shared/core/liveness.ts).
 */
export async function readClusterState(
  round: BatchGetRound,
  scope: HeartbeatKeyScope,
  groups: readonly string[],
  nodes: readonly string[],
): Promise<{ groups: GroupState[]; heartbeats: Record<string, Heartbeat> }> {
  const hk = heartbeatKeys(scope);
  const items = await batchGetAll(
    round,
    [...groups.map((g) => keys.group(scope.cluster, g)), ...nodes.flatMap((n) => hk.key(n) ?? [])],
    false,
  );
  return toClusterState(items, hk.nodeOf);
}

/** The definitions a store has read lately, by cluster: where each node's heartbeat lives. */
export class KeyScopes {
  private readonly scopes = new Map<string, HeartbeatKeyScope>();
  /** Remembers a definition just read or applied. */
  learn(config: HeartbeatKeyScope): void {
    this.scopes.set(config.cluster, config);
  }
  get(cluster: string): HeartbeatKeyScope | undefined {
    return this.scopes.get(cluster);
  }
}
