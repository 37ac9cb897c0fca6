/**
 * The state table on DynamoDB. Takeover, lock, apply and request completion are conditional writes;
 * a lost race surfaces as ConflictError (or LockBusyError), never as a silent overwrite. Every read
 * that a safety decision depends on is strongly consistent.
 */

import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { awsErrorCode, toDomainError } from '../../shared/aws/errors';
import { ConflictError, InvalidRequestError, LockBusyError, NotFoundError } from '../../shared/base/errors';
import { configHash } from '../../shared/config/hash';
import type { ClusterConfig } from '../../shared/config/load';
import type {
  GroupLock,
  GroupState,
  Heartbeat,
  NodeFact,
  RequestKind,
  RequestView,
} from '../../shared/core/model';
import type { GroupPatch } from '../../shared/core/plan';
import type { AuditEvent, StateStore, StoredConfig, WriteGuard } from '../../shared/core/ports';
import { tableError } from '../../shared/table/errors';
import { GROUP_FIELDS, toGroupState, toStoredConfig } from '../../shared/table/items';
import { CLUSTER_REGISTRY_PK, keys, type TableKey } from '../../shared/table/keys';
import { type BatchGetRound, readHeartbeats } from '../../shared/table/reads';
import { type AwsOptions, clientConfig } from '../aws/clients';

/** Audit events and completed requests are kept this long (DynamoDB TTL). */
export const AUDIT_RETENTION_DAYS = 30;
const COMPLETED_REQUEST_RETENTION_DAYS = 7;
/** A repair request only has to invoke reconcile once; TTL removes it later. */
const REPAIR_RETENTION_S = 3600;
const DAY_S = 86_400;

/**
 * A definition whose JSON is larger than this is stored gzipped (`configGz`, a binary attribute)
 * instead of as a map (`config`): DynamoDB items hold at most 400 KB, about 650 groups of vip + dns
 * + exec as a map, while such a definition compresses about 30 times. Smaller ones stay readable
 * maps in the console. Readers accept both.
 */
export const CONFIG_INLINE_MAX_BYTES = 256 * 1024;
/** Largest gzipped definition stored (room left for the item's other attributes). */
const CONFIG_GZ_MAX_BYTES = 350 * 1024;

/** The attribute(s) that hold a definition in its config items. */
function configAttributes(config: ClusterConfig): { config: ClusterConfig } | { configGz: Uint8Array } {
  const json = JSON.stringify(config);
  if (Buffer.byteLength(json) <= CONFIG_INLINE_MAX_BYTES) return { config };
  const configGz = gzipSync(json);
  if (configGz.length > CONFIG_GZ_MAX_BYTES)
    throw new InvalidRequestError(
      `the definition of cluster ${config.cluster} is ${Math.round(configGz.length / 1024)} KB even compressed (at most ${CONFIG_GZ_MAX_BYTES / 1024} KB fit in a DynamoDB item); split its groups over several clusters`,
      'CONFIG_TOO_LARGE',
    );
  return { configGz: new Uint8Array(configGz) };
}

/** Every write of a group record is made by the lock holder at the epoch it read. */
const GUARD_CONDITION = '#epoch = :epoch AND #lock.#holder = :holder AND #lock.#exp > :now';
const GUARD_NAMES = { '#lock': 'lock', '#exp': 'expiresAt', '#holder': 'holder', '#epoch': 'epoch' };
const guardValues = (g: WriteGuard): Record<string, unknown> => ({
  ':epoch': g.epoch,
  ':holder': g.holder,
  ':now': g.now,
});

export interface StoredRequest extends RequestView {
  /** cancelled: withdrawn by an operator before reconcile processed it (`failoverctl cancel`). */
  status: 'pending' | 'done' | 'rejected' | 'cancelled';
  message?: string;
  completedAt?: number;
}

export interface DynamoStoreOptions {
  /** Checks a stored definition when it is read (e.g. parseClusterConfig); none: trusted as stored. */
  validateConfig?: (raw: unknown, source: string) => ClusterConfig;
  /** Requests of this store in flight at once (default DEFAULT_MAX_IN_FLIGHT); the rest wait their turn. */
  maxInFlight?: number;
}

/**
 * A reconcile of 1,000 groups starts thousands of requests at once. The SDK's per-attempt timeout
 * (controller/aws/clients.ts) starts when a request is created, also while it waits for one of the
 * client's 50 sockets and while the service queues it, so an unbounded burst times out requests
 * that were never slow (and their retries add to the burst). Requests beyond this many wait here,
 * before their timeout starts.
 */
export const DEFAULT_MAX_IN_FLIGHT = 16;

/** At most `limit` tasks at a time, started in call order. */
class InFlight {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export interface ApplyResult {
  changed: boolean;
  version: number;
  hash: string;
  previous?: StoredConfig;
}

export class DynamoStore implements StateStore {
  readonly doc: DynamoDBDocumentClient;
  readonly client: DynamoDBClient;
  private readonly inFlight: InFlight;

  constructor(
    readonly table: string,
    aws: AwsOptions = {},
    client?: DynamoDBClient,
    private readonly options: DynamoStoreOptions = {},
  ) {
    this.client = client ?? new DynamoDBClient(clientConfig(aws));
    this.doc = DynamoDBDocumentClient.from(this.client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
    this.inFlight = new InFlight(Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT));
  }

  /** Every item request of the store goes through here (bounded, see DEFAULT_MAX_IN_FLIGHT). */
  private request<T>(command: object): Promise<T> {
    return this.inFlight.run(() => this.doc.send(command as never) as Promise<T>);
  }

  /** Sends a command, turning SDK errors into domain errors that name the table and what to do. */
  private async send<T>(action: string, command: object): Promise<T> {
    try {
      return await this.request<T>(command);
    } catch (e) {
      throw tableError(e, this.table, action);
    }
  }

  /**
   * A conditional UpdateItem. A failed condition (a lost race) is handed to `onLostRace`, which says
   * what it means for the caller; any other failure becomes a domain error naming `what`.
   */
  private async conditionalUpdate<T>(
    key: Record<string, string>,
    what: string,
    input: Omit<UpdateCommandInput, 'TableName' | 'Key'>,
    onLostRace: (e: unknown) => Promise<T> | T,
  ): Promise<{ updated: Record<string, unknown> | undefined } | { lost: T }> {
    try {
      const out = await this.request<{ Attributes?: Record<string, unknown> }>(
        new UpdateCommand({ ...input, TableName: this.table, Key: key }),
      );
      return { updated: out.Attributes };
    } catch (e) {
      if (awsErrorCode(e) === 'ConditionalCheckFailedException') return { lost: await onLostRace(e) };
      throw toDomainError(e, { action: 'dynamodb:UpdateItem', resource: `${what} in table ${this.table}` });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Table

  /** Creates the table (for local runs without a deployment); idempotent. */
  async createTable(): Promise<{ created: boolean }> {
    const input: CreateTableCommandInput = {
      TableName: this.table,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
    };
    let created = true;
    try {
      await this.client.send(new CreateTableCommand(input));
    } catch (e) {
      if (!(e instanceof ResourceInUseException))
        throw toDomainError(e, { action: 'dynamodb:CreateTable', resource: `table ${this.table}` });
      created = false;
    }
    await waitUntilTableExists({ client: this.client, maxWaitTime: 60 }, { TableName: this.table });
    if (created) {
      await this.client.send(
        new UpdateTimeToLiveCommand({
          TableName: this.table,
          TimeToLiveSpecification: { Enabled: true, AttributeName: 'expiresAt' },
        }),
      );
    }
    return { created };
  }

  async describeTable() {
    try {
      return (await this.client.send(new DescribeTableCommand({ TableName: this.table }))).Table;
    } catch (e) {
      if (awsErrorCode(e) === 'ResourceNotFoundException') return undefined;
      throw toDomainError(e, { action: 'dynamodb:DescribeTable', resource: `table ${this.table}` });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Config

  /**
   * The stored definition of a cluster. It was validated when applied; with `validateConfig` (the
   * controller and failoverctl pass the schema's parser) it is checked again, which catches a
   * hand-edited item. The node agent does not: the schema costs it about 7 MB of memory.
   */
  async getConfig(cluster: string): Promise<StoredConfig | undefined> {
    const out = await this.send<{ Item?: Record<string, unknown> }>(
      'GetItem',
      new GetCommand({ TableName: this.table, Key: keys.config(cluster), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const source = `state table ${this.table}, cluster ${cluster}`;
    const validate = this.options.validateConfig;
    return toStoredConfig(out.Item, validate ? (raw) => validate(raw, source) : undefined);
  }

  /**
   * Stores a new version of a cluster's definition. Idempotent: the same definition again changes
   * nothing. `expectedVersion` guards against two operators applying at once.
   */
  async applyConfig(
    config: ClusterConfig,
    options: { now: number; by?: string; expectedVersion?: number },
  ): Promise<ApplyResult> {
    const hash = configHash(config);
    const previous = await this.getConfig(config.cluster);
    if (previous && previous.hash === hash)
      return { changed: false, version: previous.version, hash, previous };
    if (options.expectedVersion !== undefined && (previous?.version ?? 0) !== options.expectedVersion) {
      throw new ConflictError(
        `cluster ${config.cluster} is at version ${previous?.version ?? 0}, not ${options.expectedVersion}; review "failoverctl status" and apply again`,
      );
    }
    const version = (previous?.version ?? 0) + 1;
    const item = {
      ...configAttributes(config),
      version,
      hash,
      appliedAt: options.now,
      appliedBy: options.by ?? 'unknown',
    };
    const removedInstances = (previous?.config.nodes ?? [])
      .filter((n) => !config.nodes.some((m) => m.instanceId === n.instanceId))
      .map((n) => n.instanceId);
    try {
      await this.request(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: { ...keys.config(config.cluster), ...item },
                ConditionExpression: previous ? 'version = :prev' : 'attribute_not_exists(pk)',
                ...(previous ? { ExpressionAttributeValues: { ':prev': previous.version } } : {}),
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: { ...keys.configVersion(config.cluster, version), ...item },
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: { ...keys.cluster(config.cluster), cluster: config.cluster, version },
              },
            },
            ...config.nodes.map((n) => ({
              Put: {
                TableName: this.table,
                Item: { ...keys.instance(n.instanceId), cluster: config.cluster, node: n.name },
              },
            })),
            ...removedInstances.map((id) => ({ Delete: { TableName: this.table, Key: keys.instance(id) } })),
          ],
        }),
      );
    } catch (e) {
      const domain = toDomainError(e, {
        action: 'dynamodb:TransactWriteItems',
        resource: `table ${this.table}`,
      });
      if (domain instanceof ConflictError) {
        throw new ConflictError(
          `another apply of cluster ${config.cluster} landed first; run apply again to review the difference`,
          { cause: e },
        );
      }
      throw domain;
    }
    return { changed: true, version, hash, ...(previous ? { previous } : {}) };
  }

  async listClusters(): Promise<string[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': CLUSTER_REGISTRY_PK },
    });
    return items.map((i) => String(i.sk));
  }

  /** Every cluster of the table with the version of its definition (one query of the registry). */
  async listClusterVersions(): Promise<{ cluster: string; version: number }[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': CLUSTER_REGISTRY_PK },
    });
    return items.map((i) => ({ cluster: String(i.sk), version: Number(i.version ?? 0) }));
  }

  /** Which cluster and node an instance belongs to (for EC2 events). */
  async findInstance(instanceId: string): Promise<{ cluster: string; node: string } | undefined> {
    const out = await this.send<{ Item?: Record<string, unknown> }>(
      'GetItem',
      new GetCommand({ TableName: this.table, Key: keys.instance(instanceId) }),
    );
    return out.Item ? { cluster: String(out.Item.cluster), node: String(out.Item.node) } : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Groups and the per-group lock

  async getGroup(cluster: string, group: string): Promise<GroupState | undefined> {
    const out = await this.send<{ Item?: Record<string, unknown> }>(
      'GetItem',
      new GetCommand({ TableName: this.table, Key: keys.group(cluster, group), ConsistentRead: true }),
    );
    return out.Item ? toGroupState(out.Item) : undefined;
  }

  async listGroups(cluster: string): Promise<GroupState[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': keys.clusterPk(cluster), ':p': 'GROUP#' },
      ConsistentRead: true,
    });
    return items.map(toGroupState);
  }

  async acquireLock(cluster: string, initial: GroupState, lock: GroupLock, now: number): Promise<GroupState> {
    const names: Record<string, string> = { '#lock': 'lock', '#exp': 'expiresAt', '#holder': 'holder' };
    const values: Record<string, unknown> = { ':lock': lock, ':now': now, ':holder': lock.holder };
    const sets = ['#lock = :lock'];
    GROUP_FIELDS.forEach((field, i) => {
      names[`#f${i}`] = field;
      values[`:i${i}`] = initial[field];
      sets.push(`#f${i} = if_not_exists(#f${i}, :i${i})`);
    });
    const result = await this.conditionalUpdate(
      keys.group(cluster, initial.group),
      `group ${cluster}/${initial.group}`,
      {
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression:
          'attribute_not_exists(pk) OR attribute_not_exists(#lock) OR #lock.#exp <= :now OR #lock.#holder = :holder',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      },
      async (e) => {
        const current = await this.getGroup(cluster, initial.group);
        if (current?.lock)
          throw new LockBusyError(initial.group, current.lock.holder, current.lock.expiresAt);
        throw new ConflictError(`lock of group ${initial.group} changed while taking it`, { cause: e });
      },
    );
    return toGroupState(('updated' in result && result.updated) || {});
  }

  async releaseLock(cluster: string, group: string, holder: string, kickSeen: number): Promise<boolean> {
    const checkKick = !Number.isNaN(kickSeen);
    const result = await this.conditionalUpdate(
      keys.group(cluster, group),
      `group ${cluster}/${group}`,
      {
        UpdateExpression: 'REMOVE #lock',
        ConditionExpression: `#lock.#holder = :holder${checkKick ? ' AND kick = :kick' : ''}`,
        ExpressionAttributeNames: { '#lock': 'lock', '#holder': 'holder' },
        ExpressionAttributeValues: { ':holder': holder, ...(checkKick ? { ':kick': kickSeen } : {}) },
      },
      // Not ours any more: nothing to release. Ours but kicked: the caller looks once more.
      async () => (await this.getGroup(cluster, group))?.lock?.holder !== holder,
    );
    return 'lost' in result ? result.lost : true;
  }

  async kick(cluster: string, group: string): Promise<void> {
    // A group without a record has no holder to tell.
    await this.conditionalUpdate(
      keys.group(cluster, group),
      `group ${cluster}/${group}`,
      {
        UpdateExpression: 'ADD kick :one',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':one': 1 },
      },
      () => undefined,
    );
  }

  async updateGroup(
    cluster: string,
    group: string,
    guard: WriteGuard,
    patch: GroupPatch,
    bumpEpoch = false,
  ): Promise<GroupState> {
    const names: Record<string, string> = { ...GUARD_NAMES, '#u': 'updatedAt' };
    const values: Record<string, unknown> = guardValues(guard);
    const sets = ['#u = :now'];
    Object.entries(patch).forEach(([field, value], i) => {
      if (value === undefined) return;
      names[`#p${i}`] = field;
      values[`:p${i}`] = value;
      sets.push(`#p${i} = :p${i}`);
    });
    if (bumpEpoch) {
      values[':one'] = 1;
      sets.push('#epoch = #epoch + :one');
    }
    const result = await this.conditionalUpdate(
      keys.group(cluster, group),
      `group ${cluster}/${group}`,
      {
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: GUARD_CONDITION,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      },
      (e) => {
        throw new ConflictError(
          `group ${cluster}/${group} is no longer at epoch ${guard.epoch} under the lock of ${guard.holder}`,
          { cause: e },
        );
      },
    );
    return toGroupState(('updated' in result && result.updated) || {});
  }

  async fence(cluster: string, group: string, guard: WriteGuard): Promise<void> {
    await this.conditionalUpdate(
      keys.group(cluster, group),
      `group ${cluster}/${group}`,
      {
        UpdateExpression: 'SET fencedAt = :now',
        ConditionExpression: GUARD_CONDITION,
        ExpressionAttributeNames: GUARD_NAMES,
        ExpressionAttributeValues: guardValues(guard),
      },
      (e) => {
        throw new ConflictError(
          `refusing a change to group ${cluster}/${group}: epoch ${guard.epoch} is no longer current or the lock of ${guard.holder} expired`,
          { cause: e },
        );
      },
    );
  }

  // ------------------------------------------------------------------------------------------
  // Heartbeats

  async putHeartbeat(hb: Heartbeat): Promise<void> {
    await this.send(
      'PutItem',
      new PutCommand({ TableName: this.table, Item: { ...keys.heartbeat(hb.cluster, hb.node), ...hb } }),
    );
  }

  async getHeartbeats(cluster: string, nodes: readonly string[]): Promise<Record<string, Heartbeat>> {
    return readHeartbeats(this.batchRound, cluster, nodes, true);
  }

  /** One BatchGetItem call on the table (shared/table/reads.ts does the chunking and retries). */
  private readonly batchRound: BatchGetRound = async (batch, consistent) => {
    const res = await this.send<{
      Responses?: Record<string, Record<string, unknown>[]>;
      UnprocessedKeys?: Record<string, { Keys?: TableKey[] }>;
    }>(
      'BatchGetItem',
      new BatchGetCommand({
        RequestItems: { [this.table]: { Keys: [...batch], ConsistentRead: consistent } },
      }),
    );
    return {
      items: res.Responses?.[this.table] ?? [],
      unprocessed: res.UnprocessedKeys?.[this.table]?.Keys ?? [],
    };
  };

  // ------------------------------------------------------------------------------------------
  // Requests

  /** Records an operator request; reconcile processes it once. */
  async putRequest(
    cluster: string,
    request: { kind: RequestKind; group: string; to?: string; by?: string },
    now: number,
  ): Promise<StoredRequest> {
    const id = `${now.toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
    const item: StoredRequest = { id, ...request, createdAt: now, status: 'pending' };
    await this.send(
      'PutItem',
      new PutCommand({
        TableName: this.table,
        Item: { ...keys.request(cluster, id), ...item },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return item;
  }

  async getRequest(cluster: string, id: string): Promise<StoredRequest | undefined> {
    const out = await this.send<{ Item?: Record<string, unknown> }>(
      'GetItem',
      new GetCommand({ TableName: this.table, Key: keys.request(cluster, id), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const { pk: _, sk: __, expiresAt: ___, ...rest } = out.Item;
    return rest as unknown as StoredRequest;
  }

  async listRequests(cluster: string): Promise<RequestView[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      FilterExpression: '#status = :pending',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':pk': keys.clusterPk(cluster), ':p': 'REQUEST#', ':pending': 'pending' },
      ConsistentRead: true,
    });
    return items
      .map((i) => ({
        id: String(i.id),
        kind: i.kind as RequestKind,
        group: String(i.group),
        createdAt: Number(i.createdAt),
        ...(i.to !== undefined ? { to: String(i.to) } : {}),
        ...(i.by !== undefined ? { by: String(i.by) } : {}),
      }))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async completeRequest(
    cluster: string,
    id: string,
    outcome: 'done' | 'rejected',
    message: string,
    now: number,
  ): Promise<boolean> {
    const result = await this.conditionalUpdate(
      keys.request(cluster, id),
      `request ${id}`,
      {
        UpdateExpression: 'SET #status = :outcome, message = :message, completedAt = :now, expiresAt = :ttl',
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':outcome': outcome,
          ':message': message,
          ':now': now,
          ':pending': 'pending',
          ':ttl': Math.floor(now / 1000) + COMPLETED_REQUEST_RETENTION_DAYS * DAY_S,
        },
      },
      // Already completed (by another invocation): processed once.
      () => false,
    );
    return !('lost' in result);
  }

  /**
   * Withdraws a pending request (conditional: only while it is pending, so a request reconcile has
   * processed keeps its outcome). Throws NotFoundError for an unknown id and ConflictError, with the
   * outcome, for a request that is no longer pending.
   */
  async cancelRequest(cluster: string, id: string, by: string, now: number): Promise<StoredRequest> {
    const result = await this.conditionalUpdate(
      keys.request(cluster, id),
      `request ${id}`,
      {
        UpdateExpression:
          'SET #status = :cancelled, message = :message, completedAt = :now, expiresAt = :ttl',
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':cancelled': 'cancelled',
          ':message': `cancelled by ${by}`,
          ':now': now,
          ':pending': 'pending',
          ':ttl': Math.floor(now / 1000) + COMPLETED_REQUEST_RETENTION_DAYS * DAY_S,
        },
        ReturnValues: 'ALL_NEW',
      },
      async () => {
        const current = await this.getRequest(cluster, id);
        if (!current)
          throw new NotFoundError(
            'REQUEST_NOT_FOUND',
            `request ${id} is not in cluster ${cluster}; "failoverctl status" lists the pending requests`,
          );
        return current;
      },
    );
    if ('lost' in result) {
      const r = result.lost;
      throw new ConflictError(
        `request ${id} (${r.kind} ${r.group}) was already processed: ${r.status}${r.message ? `: ${r.message}` : ''}`,
      );
    }
    const { pk: _, sk: __, expiresAt: ___, ...rest } = result.updated ?? {};
    return rest as unknown as StoredRequest;
  }

  // ------------------------------------------------------------------------------------------
  // Facts from events

  async putFact(cluster: string, node: string, fact: NodeFact, ttlMs: number): Promise<void> {
    await this.send(
      'PutItem',
      new PutCommand({
        TableName: this.table,
        Item: {
          ...keys.fact(cluster, node, fact.kind),
          node,
          ...fact,
          expiresAt: Math.floor((fact.at + ttlMs) / 1000),
        },
      }),
    );
  }

  async getFacts(cluster: string): Promise<Record<string, NodeFact[]>> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': keys.clusterPk(cluster), ':p': 'FACT#' },
      ConsistentRead: true,
    });
    const out: Record<string, NodeFact[]> = {};
    for (const i of items) {
      const facts = out[String(i.node)] ?? [];
      facts.push({ kind: i.kind as NodeFact['kind'], at: Number(i.at), detail: String(i.detail) });
      out[String(i.node)] = facts;
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Audit

  /**
   * One item per group, overwritten: its `reason: change` passes the stream filter, so the write
   * invokes reconcile (controller/reconcile/triggers.ts clustersFromStream). Kept an hour.
   */
  async requestRepair(cluster: string, group: string, by: string, why: string, now: number): Promise<void> {
    await this.send(
      'PutItem',
      new PutCommand({
        TableName: this.table,
        Item: {
          ...keys.repair(cluster, group),
          reason: 'change',
          at: now,
          by,
          why,
          expiresAt: Math.floor(now / 1000) + REPAIR_RETENTION_S,
        },
      }),
    );
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await this.send(
      'PutItem',
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: keys.auditPk(event.cluster),
          sk: `${new Date(event.at).toISOString()}#${randomBytes(3).toString('hex')}`,
          ...event,
          expiresAt: Math.floor(event.at / 1000) + AUDIT_RETENTION_DAYS * DAY_S,
        },
      }),
    );
  }

  /**
   * Audit events, oldest first: from `since` (ms, inclusive), or strictly after the event id `after`
   * (the cursor `events --follow` keeps).
   */
  async listAudit(
    cluster: string,
    options: { since?: number; after?: string; limit?: number } = {},
  ): Promise<(AuditEvent & { id: string })[]> {
    const out = await this.send<{ Items?: Record<string, unknown>[] }>(
      'Query',
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression:
          options.after !== undefined ? 'pk = :pk AND sk > :from' : 'pk = :pk AND sk >= :from',
        ExpressionAttributeValues: {
          ':pk': keys.auditPk(cluster),
          ':from': options.after ?? new Date(options.since ?? 0).toISOString(),
        },
        ...(options.limit ? { Limit: options.limit } : {}),
      }),
    );
    return (out.Items ?? []).map((i) => {
      const { pk: _, sk, expiresAt: __, ...rest } = i;
      return { ...(rest as unknown as AuditEvent), id: String(sk) };
    });
  }

  private async queryAll(
    input: Omit<ConstructorParameters<typeof QueryCommand>[0], 'TableName'>,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out: { Items?: Record<string, unknown>[]; LastEvaluatedKey?: Record<string, unknown> } =
        await this.send(
          'Query',
          new QueryCommand({
            ...input,
            TableName: this.table,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
