/**
 * The group record as stored in the state table, shared by the controller's store
 * (controller/state/dynamo-store.ts) and the agent's (node-agent/store.ts). No AWS SDK here: the agent
 * bundle must not pull the SDK's DynamoDB client in through it.
 */
import type { ClusterConfig } from '../config/validate';
import { type GroupState, type Heartbeat, initialGroupState } from '../core/model';
import type { StoredConfig } from '../core/ports';

/** The fields of a group record (the lock is kept apart: only its holder writes it). */
export const GROUP_FIELDS = [
  'group',
  'epoch',
  'owner',
  'phase',
  'phaseSince',
  'mode',
  'desired',
  'mayRun',
  'restarts',
  'failovers',
  'restartedAt',
  'blocked',
  'stopFailures',
  'suspects',
  'lastOwner',
  'healthySince',
  'finalActionTaken',
  'lastError',
  'monitors',
  'kick',
  'updatedAt',
] as const satisfies readonly (keyof GroupState)[];

/** A group item as stored, with defaults for fields a newer version may have added. */
export function toGroupState(item: Record<string, unknown>): GroupState {
  const base = initialGroupState(
    { name: String(item.group), autoStart: true } as never,
    Number(item.updatedAt ?? 0),
  );
  const state = { ...base } as unknown as Record<string, unknown>;
  for (const field of GROUP_FIELDS) if (item[field] !== undefined) state[field] = item[field];
  if (item.lock) state.lock = item.lock;
  const s = state as unknown as GroupState;
  s.epoch = Number(s.epoch);
  s.kick = Number(s.kick);
  return s;
}

/** A heartbeat item as stored: the Heartbeat without its keys. */
export function toHeartbeat(item: Record<string, unknown>): Heartbeat {
  const { pk: _, sk: __, ...hb } = item;
  return hb as unknown as Heartbeat;
}

/**
 * Group records and heartbeats read together (one BatchGetItem), split by item kind. A heartbeat
 * belongs to the node whose key it was read at (`nodeOf`); one that names another node is dropped.
 */
export function toClusterState(
  items: readonly Record<string, unknown>[],
  nodeOf: (pk: string) => string | undefined,
): {
  groups: GroupState[];
  heartbeats: Record<string, Heartbeat>;
} {
  const out = { groups: [] as GroupState[], heartbeats: {} as Record<string, Heartbeat> };
  for (const item of items) {
    if (String(item.sk).startsWith('GROUP#')) out.groups.push(toGroupState(item));
    else if (item.sk === 'HEARTBEAT') {
      const node = nodeOf(String(item.pk));
      if (node !== undefined && item.node === node) out.heartbeats[node] = toHeartbeat(item);
    }
  }
  return out;
}

/**
 * The definition held by a config item, as stored (validated when it was applied): a map
 * (`config`), or, when large, gzipped JSON (`configGz`, binary; see the controller's store).
 * zlib is loaded only for a gzipped one.
 */
export async function decodeConfig(item: Record<string, unknown>): Promise<unknown> {
  const gz = item.configGz;
  if (gz instanceof Uint8Array) {
    const { gunzipSync } = await import('node:zlib');
    return JSON.parse(gunzipSync(gz).toString('utf8'));
  }
  return item.config;
}

/**
 * A config item as the StoredConfig both stores return; `parse` checks the definition again (the
 * controller and failoverctl pass the schema's parser), the agent takes it as stored.
 */
export async function toStoredConfig(
  item: Record<string, unknown>,
  parse: (raw: unknown) => ClusterConfig = (raw) => raw as ClusterConfig,
): Promise<StoredConfig> {
  return {
    config: parse(await decodeConfig(item)),
    version: Number(item.version),
    hash: String(item.hash),
    appliedAt: Number(item.appliedAt),
  };
}
