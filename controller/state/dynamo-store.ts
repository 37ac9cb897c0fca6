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
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { awsErrorCode, toDomainError } from '../../shared/aws/errors';
import { FreshReads, GroupCommit, type Settled } from '../../shared/base/coalesce';
import { ConflictError, InvalidRequestError, LockBusyError, NotFoundError } from '../../shared/base/errors';
import { InFlight } from '../../shared/base/in-flight';
import { configHash } from '../../shared/config/hash';
import { CONFIG_GZ_MAX_BYTES, CONFIG_INLINE_MAX_BYTES } from '../../shared/config/limits';
import type { ClusterConfig } from '../../shared/config/load';
import {
  type GroupLock,
  type GroupState,
  type Heartbeat,
  type NodeFact,
  type RequestKind,
  type RequestView,
  sameLockAcquisition,
} from '../../shared/core/model';
import type { GroupPatch, HeartbeatPin } from '../../shared/core/plan';
import type { AuditEvent, StateStore, StoredConfig, WriteGuard } from '../../shared/core/ports';
import { tableError } from '../../shared/table/errors';
import { GROUP_FIELDS, toGroupState, toStoredConfig } from '../../shared/table/items';
import {
  CLUSTER_REGISTRY_PK,
  heartbeatKeys,
  instanceArn,
  keys,
  type TableKey,
} from '../../shared/table/keys';
import { type BatchGetRound, batchGetAll, KeyScopes, readHeartbeats } from '../../shared/table/reads';
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
export { CONFIG_INLINE_MAX_BYTES };

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

/** DynamoDB's largest transaction. */
const TRANSACTION_MAX_ITEMS = 100;

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

export interface ApplyResult {
  changed: boolean;
  version: number;
  hash: string;
  previous?: StoredConfig;
}

/** BatchWriteItem takes at most this many items per call. */
const BATCH_WRITE_MAX_ITEMS = 25;
/** Rounds for items a BatchWriteItem left unprocessed before giving up on them. */
const UNPROCESSED_WRITE_ROUNDS = 5;

/**
 * Concurrent calls travel together (shared/base/coalesce.ts), which a reconcile of hundreds of
 * groups at once (a zone outage) needs, and which changes nothing for a single group: strongly
 * consistent group reads in one BatchGetItem (up to 100 keys), audit events in one BatchWriteItem
 * (up to 25), identical cluster reads (heartbeats, facts, requests) and identical fences of one group
 * shared by the callers that asked before they were sent. Every caller still gets an answer read
 * (or a check made) after its own call.
 */
const BATCHES_IN_FLIGHT = 4;
/** Conditional group writes in flight at once (each its own UpdateItem). */
const GROUP_WRITES_IN_FLIGHT = 64;

export class DynamoStore implements StateStore {
  readonly doc: DynamoDBDocumentClient;
  readonly client: DynamoDBClient;
  private readonly inFlight: InFlight;
  /** The definitions read or applied lately: where each node's heartbeat lives (keys.ts). */
  private readonly scopes = new KeyScopes();
  private readonly shared = new FreshReads();
  private readonly groupReads = new GroupCommit<TableKey, Record<string, unknown> | undefined>(
    (batch) => this.readGroupItems(batch),
    { maxBatch: 100, maxInFlight: BATCHES_IN_FLIGHT },
  );
  private readonly auditWrites = new GroupCommit<Record<string, unknown>, void>(
    (batch) => this.writeAuditItems(batch),
    { maxBatch: BATCH_WRITE_MAX_ITEMS, maxInFlight: BATCHES_IN_FLIGHT },
  );
  /** The latest `now` of the callers of a fence being gathered (the strictest lock check). */
  private readonly fenceNow = new Map<string, number>();
  /**
   * Conditional writes of group records (lock, release, kick, update, fence): each goes out alone,
   * as one UpdateItem, at once (up to GROUP_WRITES_IN_FLIGHT of them). Gathered into one
   * TransactWriteItems with a read-back (the first cut of issue 20), they made every round of a
   * planned hand-over of seven groups take about 3 s on the emulator (instance stop 17-27 s in the
   * sandbox instead of about 9 s) and left a 1,000-group AZ outage with no group online after 140 s.
   */
  private readonly groupWrites = new GroupCommit<ConditionalWrite, WriteOutcome>(
    (batch) => this.writeGroupItems(batch),
    { maxBatch: 1, maxInFlight: GROUP_WRITES_IN_FLIGHT },
  );

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
   * what it means for the caller; any other failure becomes a domain error naming `what`. Group
   * records (`grouped`) travel with the other groups' writes of the moment (writeGroupItems).
   */
  private async conditionalUpdate<T>(
    key: TableKey,
    what: string,
    input: Omit<UpdateCommandInput, 'TableName' | 'Key'>,
    onLostRace: (e: unknown) => Promise<T> | T,
    grouped = false,
  ): Promise<{ updated: Record<string, unknown> | undefined } | { lost: T }> {
    let outcome: WriteOutcome;
    try {
      outcome = grouped
        ? await this.groupWrites.submit(`${key.pk}|${key.sk}`, { key, input })
        : await this.updateOne({ key, input });
    } catch (e) {
      throw toDomainError(e, { action: 'dynamodb:UpdateItem', resource: `${what} in table ${this.table}` });
    }
    if ('lost' in outcome) return { lost: await onLostRace(outcome.lost) };
    return outcome;
  }

  /** One conditional UpdateItem; a failed condition is an outcome, not an error. */
  private async updateOne(w: ConditionalWrite): Promise<WriteOutcome> {
    try {
      const out = await this.request<{ Attributes?: Record<string, unknown> }>(
        new UpdateCommand({ ...w.input, TableName: this.table, Key: w.key }),
      );
      return { updated: out.Attributes };
    } catch (e) {
      if (awsErrorCode(e) === 'ConditionalCheckFailedException') return { lost: e };
      throw e;
    }
  }

  /** Each write of the batch as its own UpdateItem (the group commit sends them one at a time). */
  private writeGroupItems(batch: ConditionalWrite[]): Promise<Settled<WriteOutcome>[]> {
    return Promise.all(
      batch.map((w) =>
        this.updateOne(w).then(
          (value): Settled<WriteOutcome> => ({ ok: true, value }),
          (error: unknown): Settled<WriteOutcome> => ({ ok: false, error }),
        ),
      ),
    );
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
    const stored = await toStoredConfig(out.Item, validate ? (raw) => validate(raw, source) : undefined);
    this.scopes.learn(stored.config);
    return stored;
  }

  /**
   * The account of the table (from its ARN): the account of the nodes' instances, whose ARNs key
   * their heartbeats and the instance index (keys.ts). One DescribeTable per apply.
   */
  private async tableAccount(): Promise<string | undefined> {
    const arn = (await this.describeTable())?.TableArn;
    return arn?.split(':')[4] || undefined;
  }

  /**
   * Stores a new version of a cluster's definition. Idempotent: the same definition again changes
   * nothing. `expectedVersion` guards against two operators applying at once.
   */
  async applyConfig(
    config: ClusterConfig,
    options: { now: number; by?: string; expectedVersion?: number },
  ): Promise<ApplyResult> {
    config = await this.withAccount(config);
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
    const arnOf = (c: ClusterConfig, id: string) => instanceArn(c, id);
    const kept = new Set(config.nodes.map((n) => arnOf(config, n.instanceId)));
    const removedInstances = previous
      ? previous.config.nodes.map((n) => arnOf(previous.config, n.instanceId)).filter((a) => !kept.has(a))
      : [];
    const core = [
      {
        Put: {
          TableName: this.table,
          Item: { ...keys.config(config.cluster), ...item },
          ConditionExpression: previous ? 'version = :prev' : 'attribute_not_exists(pk)',
          ...(previous ? { ExpressionAttributeValues: { ':prev': previous.version } } : {}),
        },
      },
      { Put: { TableName: this.table, Item: { ...keys.configVersion(config.cluster, version), ...item } } },
      {
        Put: {
          TableName: this.table,
          Item: { ...keys.cluster(config.cluster), cluster: config.cluster, version },
        },
      },
    ];
    const indexPuts = config.nodes.map((n) => ({
      ...keys.instance(arnOf(config, n.instanceId)),
      cluster: config.cluster,
      node: n.name,
    }));
    const indexDeletes = removedInstances.map((arn) => keys.instance(arn));
    // One transaction when it fits (DynamoDB: 100 items); a larger cluster's instance index is
    // written before (new entries) and after (removals) the definition's own transaction.
    const atomic = core.length + indexPuts.length + indexDeletes.length <= TRANSACTION_MAX_ITEMS;
    try {
      if (!atomic) await this.batchWrite(indexPuts.map((Item) => ({ PutRequest: { Item } })));
      await this.request(
        new TransactWriteCommand({
          TransactItems: [
            ...core,
            ...(atomic
              ? [
                  ...indexPuts.map((Item) => ({ Put: { TableName: this.table, Item } })),
                  ...indexDeletes.map((Key) => ({ Delete: { TableName: this.table, Key } })),
                ]
              : []),
          ],
        }),
      );
      if (!atomic) await this.batchWrite(indexDeletes.map((Key) => ({ DeleteRequest: { Key } })));
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
    this.scopes.learn(config);
    return { changed: true, version, hash, ...(previous ? { previous } : {}) };
  }

  /** BatchWriteItem in chunks of 25, retrying what DynamoDB left unprocessed. */
  private async batchWrite(requests: Record<string, unknown>[]): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending = requests.slice(i, i + 25);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt >= 5)
          throw new InvalidRequestError(
            `table ${this.table} kept refusing part of the instance index; apply again`,
          );
        if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        const out = await this.request<{ UnprocessedItems?: Record<string, Record<string, unknown>[]> }>(
          new BatchWriteCommand({ RequestItems: { [this.table]: pending } }),
        );
        pending = out.UnprocessedItems?.[this.table] ?? [];
      }
    }
  }

  /**
   * The definition with the account of its instances: as written, or the table's. A definition
   * naming another account than the table's is refused: the controller of this table acts in its
   * own account only.
   */
  private async withAccount(config: ClusterConfig): Promise<ClusterConfig> {
    const table = await this.tableAccount();
    if (config.account && table && config.account !== table) {
      throw new InvalidRequestError(
        `cluster ${config.cluster} names account ${config.account}, but table ${this.table} is in account ${table}; apply it to a table of account ${config.account}, or fix account: in the definition`,
        'ACCOUNT_MISMATCH',
      );
    }
    const account = config.account ?? table;
    return account ? { ...config, account } : config;
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

  /** Which cluster and node an instance belongs to (for EC2 events), by the instance's ARN. */
  async findInstance(arn: string): Promise<{ cluster: string; node: string } | undefined> {
    const out = await this.send<{ Item?: Record<string, unknown> }>(
      'GetItem',
      new GetCommand({ TableName: this.table, Key: keys.instance(arn) }),
    );
    return out.Item ? { cluster: String(out.Item.cluster), node: String(out.Item.node) } : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Groups and the per-group lock

  async getGroup(cluster: string, group: string): Promise<GroupState | undefined> {
    const key = keys.group(cluster, group);
    const item = await this.groupReads.submit(`${key.pk}|${key.sk}`, key);
    return item ? toGroupState(item) : undefined;
  }

  /** Group records read together: one GetItem alone, else one strongly consistent BatchGetItem. */
  private async readGroupItems(batch: TableKey[]): Promise<Settled<Record<string, unknown> | undefined>[]> {
    if (batch.length === 1) {
      const out = await this.send<{ Item?: Record<string, unknown> }>(
        'GetItem',
        new GetCommand({ TableName: this.table, Key: batch[0], ConsistentRead: true }),
      );
      return [{ ok: true, value: out.Item }];
    }
    const items = await batchGetAll(this.batchRound, batch, true);
    const byKey = new Map(items.map((i) => [`${i.pk}|${i.sk}`, i] as const));
    return batch.map((k) => ({ ok: true, value: byKey.get(`${k.pk}|${k.sk}`) }));
  }

  async listGroups(cluster: string): Promise<GroupState[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': keys.clusterPk(cluster), ':p': 'GROUP#' },
      ConsistentRead: true,
    });
    return items.map(toGroupState);
  }

  /**
   * Takes the group's lock. A group that has a record (every group after its first lock) is locked
   * with `SET #lock` alone, under the same lock condition plus `attribute_exists(pk)`; only when
   * that fails on a missing record is it created with every field (`if_not_exists`). The short form
   * is the same decision on the same item: on the emulator it costs a third of the long one (moto
   * validates an update expression in time that grows faster than its clauses: 22 of them took
   * about 25-35 ms of the serialized DynamoDB's time, `SET #lock` alone about 8 ms), and a zone
   * outage sends thousands of them, most of which lose to another invocation. The short form fills
   * in no field the record lacks: a field added to GROUP_FIELDS later needs its own migration of
   * existing records (today a record is only ever created by the long form below, with every field).
   */
  async acquireLock(cluster: string, initial: GroupState, lock: GroupLock, now: number): Promise<GroupState> {
    const names: Record<string, string> = { '#lock': 'lock', '#exp': 'expiresAt', '#holder': 'holder' };
    const values: Record<string, unknown> = { ':lock': lock, ':now': now, ':holder': lock.holder };
    const lockFree = 'attribute_not_exists(#lock) OR #lock.#exp <= :now OR #lock.#holder = :holder';
    const busyOrConflict = async (e: unknown, current: GroupState | undefined): Promise<never> => {
      if (current?.lock) throw new LockBusyError(initial.group, current.lock.holder, current.lock.expiresAt);
      throw new ConflictError(`lock of group ${initial.group} changed while taking it`, { cause: e });
    };
    const existing = await this.conditionalUpdate(
      keys.group(cluster, initial.group),
      `group ${cluster}/${initial.group}`,
      {
        UpdateExpression: 'SET #lock = :lock',
        ConditionExpression: `attribute_exists(pk) AND (${lockFree})`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      },
      async (e) => {
        const current = await this.getGroup(cluster, initial.group);
        // No record yet: create it below. A record: the lock is busy (or changed meanwhile).
        return current === undefined ? ('missing' as const) : busyOrConflict(e, current);
      },
      true,
    );
    if ('updated' in existing) return toGroupState(existing.updated ?? {});
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
        ConditionExpression: `attribute_not_exists(pk) OR ${lockFree}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      },
      async (e) => busyOrConflict(e, await this.getGroup(cluster, initial.group)),
      true,
    );
    return toGroupState(('updated' in result && result.updated) || {});
  }

  async releaseLock(cluster: string, group: string, lock: GroupLock, kickSeen: number): Promise<boolean> {
    const checkKick = !Number.isNaN(kickSeen);
    const { holder, acquisition } = lock;
    const conditions = ['#lock.#holder = :holder'];
    const names: Record<string, string> = { '#lock': 'lock', '#holder': 'holder' };
    const values: Record<string, unknown> = { ':holder': holder };
    if (acquisition !== undefined) {
      conditions.push('#lock.#acq = :acq');
      names['#acq'] = 'acquisition';
      values[':acq'] = acquisition;
    }
    if (checkKick) {
      conditions.push('kick = :kick');
      values[':kick'] = kickSeen;
    }
    const result = await this.conditionalUpdate(
      keys.group(cluster, group),
      `group ${cluster}/${group}`,
      {
        UpdateExpression: 'REMOVE #lock',
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      // Not ours any more: nothing to release. Ours but kicked: the caller looks once more.
      async () => !sameLockAcquisition((await this.getGroup(cluster, group))?.lock, lock),
      true,
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
      true,
    );
  }

  async updateGroup(
    cluster: string,
    group: string,
    guard: WriteGuard,
    patch: GroupPatch,
    bumpEpoch = false,
    pins: readonly HeartbeatPin[] = [],
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
    if (pins.length > 0) {
      return this.pinnedUpdate(cluster, group, guard, pins, {
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: GUARD_CONDITION,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
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
      true,
    );
    return toGroupState(('updated' in result && result.updated) || {});
  }

  /**
   * The group's update and a ConditionCheck of each pinned heartbeat item in one transaction (a
   * takeover that confirms stops on the read it was decided on: shared/core/decide.ts). A
   * transaction returns no item, so the record is read back, strongly consistent.
   */
  private async pinnedUpdate(
    cluster: string,
    group: string,
    guard: WriteGuard,
    pins: readonly HeartbeatPin[],
    update: {
      UpdateExpression: string;
      ConditionExpression: string;
      ExpressionAttributeNames: Record<string, string>;
      ExpressionAttributeValues: Record<string, unknown>;
    },
  ): Promise<GroupState> {
    const where = heartbeatKeys(await this.scope(cluster));
    const checks = [];
    for (const pin of pins) {
      const key = where.key(pin.node);
      if (!key) {
        // No item where the heartbeats are read: the observation saw none, or it saw another scope.
        if (pin.token === null) continue;
        throw new ConflictError(`node ${pin.node} is no longer in cluster ${cluster}'s definition`);
      }
      checks.push({
        ConditionCheck: {
          TableName: this.table,
          Key: key,
          ...(pin.token === null
            ? {
                ConditionExpression: 'attribute_not_exists(#token)',
                ExpressionAttributeNames: { '#token': 'token' },
              }
            : {
                ConditionExpression: '#token = :token',
                ExpressionAttributeNames: { '#token': 'token' },
                ExpressionAttributeValues: { ':token': pin.token },
              }),
        },
      });
    }
    try {
      await this.request(
        new TransactWriteCommand({
          TransactItems: [
            { Update: { ...update, TableName: this.table, Key: keys.group(cluster, group) } },
            ...checks,
          ],
        }),
      );
    } catch (e) {
      const domain = toDomainError(e, {
        action: 'dynamodb:TransactWriteItems',
        resource: `group ${cluster}/${group} in table ${this.table}`,
      });
      if (domain instanceof ConflictError)
        throw new ConflictError(
          `group ${cluster}/${group} is no longer at epoch ${guard.epoch} under the lock of ${guard.holder}, or one of ${pins.map((p) => p.node).join(', ')} renewed since it was read`,
          { cause: e },
        );
      throw domain;
    }
    const state = await this.getGroup(cluster, group);
    if (!state) throw new ConflictError(`group ${cluster}/${group} disappeared right after its update`);
    return state;
  }

  async fence(cluster: string, group: string, guard: WriteGuard): Promise<void> {
    // Entry points switched at once each fence right before their change: the fences of one group
    // at one epoch asked together are one conditional write, made after every one of them asked,
    // with the latest of their clocks (the strictest check of the lock's expiry).
    const key = `fence|${cluster}|${group}|${guard.epoch}|${guard.holder}`;
    this.fenceNow.set(key, Math.max(this.fenceNow.get(key) ?? guard.now, guard.now));
    await this.shared.read(key, () => {
      const now = this.fenceNow.get(key) ?? guard.now;
      this.fenceNow.delete(key);
      return this.fenceOnce(cluster, group, { ...guard, now });
    });
  }

  private async fenceOnce(cluster: string, group: string, guard: WriteGuard): Promise<void> {
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
      true,
    );
  }

  // ------------------------------------------------------------------------------------------
  // Heartbeats

  /** Writes a heartbeat at its node's key (tests and tools; agents write their own). */
  async putHeartbeat(hb: Heartbeat): Promise<void> {
    const key = heartbeatKeys(await this.scope(hb.cluster)).key(hb.node);
    if (!key)
      throw new NotFoundError(
        'NODE_NOT_FOUND',
        `node ${hb.node} is not in the definition of cluster ${hb.cluster}`,
      );
    await this.send('PutItem', new PutCommand({ TableName: this.table, Item: { ...key, ...hb } }));
  }

  async getHeartbeats(cluster: string, nodes: readonly string[]): Promise<Record<string, Heartbeat>> {
    return this.shared.read(`heartbeats|${cluster}|${nodes.join(',')}`, async () =>
      readHeartbeats(this.batchRound, await this.scope(cluster), nodes, true),
    );
  }

  /** Where a cluster's heartbeats live: the definition read lately, or read now. */
  private async scope(cluster: string) {
    const known = this.scopes.get(cluster);
    if (known) return known;
    return (await this.getConfig(cluster))?.config ?? { cluster, region: '', nodes: [] };
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
    return this.shared.read(`requests|${cluster}`, () => this.queryRequests(cluster));
  }

  private async queryRequests(cluster: string): Promise<RequestView[]> {
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
    return this.shared.read(`facts|${cluster}`, () => this.queryFacts(cluster));
  }

  private async queryFacts(cluster: string): Promise<Record<string, NodeFact[]>> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': keys.clusterPk(cluster), ':p': 'FACT#' },
      ConsistentRead: true,
    });
    const out: Record<string, NodeFact[]> = {};
    for (const i of items) {
      const facts = out[String(i.node)] ?? [];
      facts.push({
        kind: i.kind as NodeFact['kind'],
        at: Number(i.at),
        detail: String(i.detail),
        ...(typeof i.state === 'string' ? { state: i.state } : {}),
      });
      out[String(i.node)] = facts;
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Audit

  /**
   * One item per group, overwritten: its `reason: change` passes the stream filter, so the write
   * invokes reconcile (controller/reconcile/triggers.ts parseStreamBatch). Kept an hour.
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
    const item = {
      pk: keys.auditPk(event.cluster),
      sk: `${new Date(event.at).toISOString()}#${randomBytes(3).toString('hex')}`,
      ...event,
      expiresAt: Math.floor(event.at / 1000) + AUDIT_RETENTION_DAYS * DAY_S,
    };
    await this.auditWrites.submit(`${item.pk}|${item.sk}`, item);
  }

  /** Audit events written together: one PutItem alone, else one BatchWriteItem (unprocessed ones again). */
  private async writeAuditItems(items: Record<string, unknown>[]): Promise<Settled<void>[]> {
    if (items.length === 1) {
      await this.send('PutItem', new PutCommand({ TableName: this.table, Item: items[0] }));
      return [{ ok: true, value: undefined }];
    }
    let pending: Record<string, unknown>[] = items.map((Item) => ({ PutRequest: { Item } }));
    for (let round = 0; pending.length > 0; round++) {
      if (round >= UNPROCESSED_WRITE_ROUNDS)
        throw tableError(
          new Error(`${pending.length} audit events left unprocessed after ${round} rounds`),
          this.table,
          'BatchWriteItem',
        );
      if (round > 0) await new Promise((r) => setTimeout(r, 20 * 2 ** round));
      const out = await this.send<{ UnprocessedItems?: Record<string, Record<string, unknown>[]> }>(
        'BatchWriteItem',
        new BatchWriteCommand({ RequestItems: { [this.table]: pending as never } }),
      );
      pending = out.UnprocessedItems?.[this.table] ?? [];
    }
    return items.map(() => ({ ok: true, value: undefined }));
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

/** One conditional UpdateItem of a group record, as the group commit carries it. */
interface ConditionalWrite {
  key: TableKey;
  input: Omit<UpdateCommandInput, 'TableName' | 'Key'>;
}

/** What the write did: the item as written (when asked for), or the failed condition. */
type WriteOutcome = { updated: Record<string, unknown> | undefined } | { lost: unknown };
