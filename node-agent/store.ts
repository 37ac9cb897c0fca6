/**
 * The state table as the agent and the guard use it: the reads and the one write they make, with
 * per-call timeouts derived from the lease. Same items, keys, consistency, error mapping and
 * results as the project's DynamoStore (controller/state/dynamo-store.ts), on the agent's small
 * DynamoDB client (dynamodb.ts) instead of the AWS SDK's DynamoDB clients.
 *
 * The daemon makes one attempt per call (a renewal that failed is not worth retrying: the next
 * tick sends a fresh one, with a fresher send time) and cuts each attempt at a third of
 * `lease - fenceMargin`, at most 3 s. The fence never waits for these calls anyway (fence-timer.ts);
 * the short timeouts keep hung connections from piling up.
 */

import { type AwsOptions, awsOptionsFromEnv, DEFAULT_AWS_OPTIONS } from '../shared/aws/options';
import { ConflictError, FailoverError, NotFoundError } from '../shared/base/errors';
import { daemonCallTimeouts, type Timing } from '../shared/config/timing';
import type { GroupState, Heartbeat } from '../shared/core/model';
import type { StoredConfig } from '../shared/core/ports';
import { tableError } from '../shared/table/errors';
import { toGroupState, toStoredConfig } from '../shared/table/items';
import { CLUSTER_REGISTRY_PK, heartbeatKeys, keys, type TableKey } from '../shared/table/keys';
import { type BatchGetRound, KeyScopes, readClusterState } from '../shared/table/reads';
import { HEARTBEAT_SUPERSEDED } from './core/heartbeat-writer';
import {
  type AttributeValue,
  type CallOptions,
  DynamoDbClient,
  type Item,
  marshallItem,
  toAttr,
  unmarshallItem,
} from './dynamodb';
import { AGENT_VERSION } from './version';

export { daemonCallTimeouts } from '../shared/config/timing';

/** AWS options of the daemon (environment, region, one attempt, lease-derived timeouts). */
export function daemonAwsOptions(
  env: Record<string, string | undefined>,
  region: string | undefined,
  timing?: Pick<Timing, 'leaseMs' | 'fenceMarginMs'>,
): AwsOptions {
  return awsOptionsFromEnv(env, {
    ...(region ? { region } : {}),
    maxAttempts: 1,
    ...daemonCallTimeouts(timing),
  });
}

/** The guard is a one-shot command: a few attempts, each short. */
export function guardAwsOptions(
  env: Record<string, string | undefined>,
  region: string | undefined,
  endpoint: string | undefined,
): AwsOptions {
  return awsOptionsFromEnv(env, {
    ...(region ? { region } : {}),
    ...(endpoint && !env.AWS_ENDPOINT_URL ? { endpoint } : {}),
    maxAttempts: 3,
    connectionTimeoutMs: 1000,
    requestTimeoutMs: 2000,
  });
}

/** What the agent and the guard read and write in the state table. */
export interface AgentStore {
  readonly table: string;
  getConfig(cluster: string): Promise<StoredConfig | undefined>;
  listClusters(): Promise<string[]>;
  /** Which cluster and node an instance belongs to, by the instance's ARN (its own: IAM allows no other). */
  findInstance(instanceArn: string): Promise<{ cluster: string; node: string } | undefined>;
  getGroup(cluster: string, group: string): Promise<GroupState | undefined>;
  readClusterState(
    cluster: string,
    groups: readonly string[],
    nodes: readonly string[],
  ): Promise<{ groups: GroupState[]; heartbeats: Record<string, Heartbeat> }>;
  putHeartbeat(hb: Heartbeat): Promise<void>;
}

/** One client per region and endpoint in the process: its connections and credentials are shared. */
const clients = new Map<string, DynamoDbClient>();
function clientFor(options: AwsOptions, env: Record<string, string | undefined>): DynamoDbClient {
  const key = `${options.region ?? ''}|${options.endpoint ?? ''}`;
  let client = clients.get(key);
  if (!client) {
    client = new DynamoDbClient({
      ...(options.region ? { region: options.region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      env,
      userAgent: `failover-agent/${AGENT_VERSION}`,
    });
    clients.set(key, client);
  }
  return client;
}

/** The agent's store on the table, with the given (short) per-call timeouts and attempts. */
export function openStore(
  table: string,
  options: AwsOptions,
  env: Record<string, string | undefined> = process.env,
): AgentStore {
  return new TableStore(table, clientFor(options, env), {
    maxAttempts: options.maxAttempts ?? DEFAULT_AWS_OPTIONS.maxAttempts,
    connectionTimeoutMs: options.connectionTimeoutMs ?? DEFAULT_AWS_OPTIONS.connectionTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_AWS_OPTIONS.requestTimeoutMs,
  });
}

/**
 * The definitions read lately, per table (the daemon opens a new store when its timeouts change):
 * where each node's heartbeat lives.
 */
const scopesByTable = new Map<string, KeyScopes>();

/**
 * A renewal that landed after a newer one of the same agent process (writes in flight arrived out
 * of order): the newer one stays. Not a failure of the renewal: the newer one holds the lease.
 */
export class HeartbeatSupersededError extends FailoverError {
  constructor(token: string) {
    super(
      HEARTBEAT_SUPERSEDED,
      `renewal ${token} arrived after a newer one of this agent, which stays stored`,
    );
  }
}

const keyOf = (k: TableKey): Record<string, AttributeValue> => ({
  pk: { S: k.pk },
  sk: { S: k.sk },
});

class TableStore implements AgentStore {
  private readonly scopes: KeyScopes;
  constructor(
    readonly table: string,
    private readonly client: DynamoDbClient,
    private readonly call: CallOptions,
  ) {
    const scopes = scopesByTable.get(table) ?? new KeyScopes();
    scopesByTable.set(table, scopes);
    this.scopes = scopes;
  }

  /** Where a cluster's heartbeats live: the definition read lately, or read now. */
  private async scope(cluster: string) {
    const known = this.scopes.get(cluster);
    if (known) return known;
    return (await this.getConfig(cluster))?.config ?? { cluster, region: '', nodes: [] };
  }

  /** Calls DynamoDB, turning its errors into domain errors that name the table and what to do. */
  private async send<T>(action: string, input: Record<string, unknown>): Promise<T> {
    try {
      return await this.client.call<T>(action, input, this.call);
    } catch (e) {
      throw tableError(e, this.table, action);
    }
  }

  private async getItem(key: TableKey, consistent: boolean): Promise<Item | undefined> {
    const out = await this.send<{ Item?: Record<string, AttributeValue> }>('GetItem', {
      TableName: this.table,
      Key: keyOf(key),
      ...(consistent ? { ConsistentRead: true } : {}),
    });
    return out.Item ? unmarshallItem(out.Item) : undefined;
  }

  /**
   * The stored definition of a cluster, as stored (it was validated when applied; the schema would
   * cost the agent about 7 MB of memory).
   */
  async getConfig(cluster: string): Promise<StoredConfig | undefined> {
    const item = await this.getItem(keys.config(cluster), true);
    if (!item) return undefined;
    const stored = await toStoredConfig(item);
    this.scopes.learn(stored.config);
    return stored;
  }

  async listClusters(): Promise<string[]> {
    const items: Item[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out: {
        Items?: Record<string, AttributeValue>[];
        LastEvaluatedKey?: Record<string, AttributeValue>;
      } = await this.send('Query', {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': toAttr(CLUSTER_REGISTRY_PK) },
        ...(start ? { ExclusiveStartKey: start } : {}),
      });
      for (const i of out.Items ?? []) items.push(unmarshallItem(i));
      start = out.LastEvaluatedKey;
    } while (start);
    return items.map((i) => String(i.sk));
  }

  /** Which cluster and node an instance belongs to. */
  async findInstance(instanceArn: string): Promise<{ cluster: string; node: string } | undefined> {
    const item = await this.getItem(keys.instance(instanceArn), false);
    return item ? { cluster: String(item.cluster), node: String(item.node) } : undefined;
  }

  /** A group record, strongly consistent. */
  async getGroup(cluster: string, group: string): Promise<GroupState | undefined> {
    const item = await this.getItem(keys.group(cluster, group), true);
    return item ? toGroupState(item) : undefined;
  }

  /** Writes this node's heartbeat at its own key: the ARN of its instance (the only key IAM lets it write). */
  async putHeartbeat(hb: Heartbeat): Promise<void> {
    const key = heartbeatKeys(await this.scope(hb.cluster)).key(hb.node);
    if (!key)
      throw new NotFoundError(
        'NODE_NOT_FOUND',
        `node ${hb.node} is not in the definition of cluster ${hb.cluster}`,
      );
    // Up to three renewals may be in flight at once (a slow one is not waited for), and they can
    // land out of order: an older one landing last would put back what the newer one replaced (a
    // monitor error reported by a change, then overwritten by the tick sent just before it, with
    // the controller reading the tick and later ticks not passing the stream filter). A renewal
    // is stored only over an older one of the same agent process, or over another process's.
    try {
      await this.send('PutItem', {
        TableName: this.table,
        Item: marshallItem({ ...key, ...hb }),
        ConditionExpression: 'attribute_not_exists(#seq) OR #incarnation <> :incarnation OR #seq < :seq',
        ExpressionAttributeNames: { '#seq': 'seq', '#incarnation': 'incarnation' },
        ExpressionAttributeValues: { ':seq': { N: String(hb.seq) }, ':incarnation': { S: hb.incarnation } },
      });
    } catch (e) {
      if (e instanceof ConflictError) throw new HeartbeatSupersededError(hb.token);
      throw e;
    }
  }

  /** Group records and nodes' heartbeats of a cluster in one BatchGetItem, eventually consistent. */
  async readClusterState(
    cluster: string,
    groups: readonly string[],
    nodes: readonly string[],
  ): Promise<{ groups: GroupState[]; heartbeats: Record<string, Heartbeat> }> {
    return readClusterState(this.batchRound, await this.scope(cluster), groups, nodes);
  }

  /** One BatchGetItem call on the table (shared/table/reads.ts does the chunking and retries). */
  private readonly batchRound: BatchGetRound = async (batch, consistent) => {
    const res: {
      Responses?: Record<string, Record<string, AttributeValue>[]>;
      UnprocessedKeys?: Record<string, { Keys?: Record<string, AttributeValue>[] }>;
    } = await this.send('BatchGetItem', {
      RequestItems: { [this.table]: { Keys: batch.map(keyOf), ConsistentRead: consistent } },
    });
    return {
      items: (res.Responses?.[this.table] ?? []).map(unmarshallItem),
      unprocessed: (res.UnprocessedKeys?.[this.table]?.Keys ?? []).map(
        (k) => unmarshallItem(k) as unknown as TableKey,
      ),
    };
  };
}
