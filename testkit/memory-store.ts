/**
 * The state table in memory, with the same conditional-write semantics as controller/state's DynamoDB
 * store, plus simulated latency, throttling, lost responses and (for eventually consistent reads)
 * stale answers. Controller calls go through the StateStore port; simulated agents and the guard
 * use the `agent*` / `guard*` methods.
 */

import { HeartbeatSupersededError } from '../node-agent/store';
import { ConflictError, FailoverError, LockBusyError } from '../shared/base/errors';
import {
  type GroupLock,
  type GroupState,
  type Heartbeat,
  type NodeFact,
  type RequestView,
  sameLockAcquisition,
} from '../shared/core/model';
import type { GroupPatch, HeartbeatPin } from '../shared/core/plan';
import type { AuditEvent, StateStore, StoredConfig, WriteGuard } from '../shared/core/ports';
import type { World } from './world';

export interface NetFaults {
  /** Probability that a controller call is throttled (fails before it takes effect). */
  throttle: number;
  /** Probability that a call takes effect but its answer is lost (the caller sees a timeout). */
  lostResponse: number;
  /** Probability that an eventually consistent read returns an older version. */
  staleRead: number;
}

export class ThrottledError extends FailoverError {
  constructor() {
    super('THROTTLED', 'simulated throttling: ProvisionedThroughputExceededException', { retryable: true });
  }
}
export class TimeoutError extends FailoverError {
  constructor(what: string) {
    super('TIMEOUT', `simulated timeout: ${what}`, { retryable: true });
  }
}

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryStore implements StateStore {
  faults: NetFaults = { throttle: 0, lostResponse: 0, staleRead: 0 };
  readonly groups = new Map<string, GroupState>();
  /** Past versions, for stale reads by agents. */
  private readonly groupHistory = new Map<string, { t: number; state: GroupState }[]>();
  readonly heartbeats = new Map<string, Heartbeat>();
  /** Past heartbeats per node, for stale reads by agents (another replica, not yet updated). */
  private readonly heartbeatHistory = new Map<string, Heartbeat[]>();
  /**
   * Called after a fence succeeds, before its answer reaches the invocation: a non-zero result is
   * how long that invocation stalls there (GC, a suspended process), in the simulation's faults.
   */
  stallAfterFence: ((holder: string, group: string) => number) | undefined;
  /**
   * How much later than its round trip the answer of a controller call comes back, after the call
   * took effect (a throttled read the SDK retried, an attempt that timed out): a fault's hook.
   */
  slowAnswer: ((what: string) => number) | undefined;
  readonly requests = new Map<
    string,
    RequestView & { status: 'pending' | 'done' | 'rejected'; message?: string }
  >();
  readonly facts = new Map<string, NodeFact[]>();
  readonly audit: AuditEvent[] = [];
  /** Repair requests (store.requestRepair), and who listens for them (the simulated stream). */
  readonly repairs: { cluster: string; group: string; by: string; why: string; at: number }[] = [];
  onRepair: ((cluster: string, group: string) => void) | undefined;
  /** Largest epoch ever seen per group: epochs must never go back. */
  private readonly maxEpoch = new Map<string, number>();
  calls = 0;

  constructor(
    private readonly world: World,
    private readonly stored: StoredConfig,
  ) {}

  /** One round trip: request leg, atomic effect, answer leg. Faults as configured. */
  private async call<T>(what: string, effect: () => T, options: { faulty?: boolean } = {}): Promise<T> {
    this.calls++;
    const faulty = options.faulty ?? true;
    await this.world.delay(this.world.rng.int(1, 12));
    if (faulty && this.world.rng.chance(this.faults.throttle)) throw new ThrottledError();
    const result = effect();
    await this.world.delay(this.world.rng.int(1, 12) + (this.slowAnswer?.(what) ?? 0));
    if (faulty && this.world.rng.chance(this.faults.lostResponse)) {
      await this.world.delay(this.world.rng.int(200, 1500));
      throw new TimeoutError(what);
    }
    return result;
  }

  private key(cluster: string, group: string): string {
    return `${cluster}/${group}`;
  }

  private save(key: string, state: GroupState): void {
    const before = this.maxEpoch.get(key) ?? -1;
    if (state.epoch < before)
      this.world.violation(`epoch of ${key} went back from ${before} to ${state.epoch}`);
    this.maxEpoch.set(key, Math.max(before, state.epoch));
    this.groups.set(key, state);
    const history = this.groupHistory.get(key) ?? [];
    history.push({ t: this.world.t, state: clone(state) });
    if (history.length > 20) history.shift();
    this.groupHistory.set(key, history);
  }

  // ---- StateStore (controller) ----

  getConfig(): Promise<StoredConfig | undefined> {
    return this.call('getConfig', () => clone(this.stored));
  }

  getGroup(cluster: string, group: string): Promise<GroupState | undefined> {
    return this.call('getGroup', () => {
      const s = this.groups.get(this.key(cluster, group));
      return s ? clone(s) : undefined;
    });
  }

  listGroups(cluster: string): Promise<GroupState[]> {
    return this.call('listGroups', () =>
      [...this.groups.entries()].filter(([k]) => k.startsWith(`${cluster}/`)).map(([, s]) => clone(s)),
    );
  }

  acquireLock(cluster: string, initial: GroupState, lock: GroupLock, now: number): Promise<GroupState> {
    return this.call('acquireLock', () => {
      const key = this.key(cluster, initial.group);
      const existing = this.groups.get(key) ?? clone(initial);
      if (existing.lock && existing.lock.holder !== lock.holder && existing.lock.expiresAt > now) {
        throw new LockBusyError(initial.group, existing.lock.holder, existing.lock.expiresAt);
      }
      const next = { ...existing, lock: { ...lock } };
      this.save(key, next);
      return clone(next);
    });
  }

  releaseLock(cluster: string, group: string, lock: GroupLock, kickSeen: number): Promise<boolean> {
    return this.call('releaseLock', () => {
      const key = this.key(cluster, group);
      const s = this.groups.get(key);
      if (!s || !sameLockAcquisition(s.lock, lock)) return true;
      if (!Number.isNaN(kickSeen) && s.kick !== kickSeen) return false;
      const { lock: _, ...rest } = s;
      this.save(key, rest);
      return true;
    });
  }

  kick(cluster: string, group: string): Promise<void> {
    return this.call('kick', () => {
      const key = this.key(cluster, group);
      const s = this.groups.get(key);
      if (s) this.save(key, { ...s, kick: s.kick + 1 });
    });
  }

  private checkGuard(key: string, guard: WriteGuard): GroupState {
    const s = this.groups.get(key);
    if (!s || s.epoch !== guard.epoch || s.lock?.holder !== guard.holder || !(s.lock.expiresAt > guard.now)) {
      throw new ConflictError(
        `group ${key}: condition failed (epoch ${s?.epoch} vs ${guard.epoch}, lock ${s?.lock?.holder} vs ${guard.holder})`,
      );
    }
    return s;
  }

  updateGroup(
    cluster: string,
    group: string,
    guard: WriteGuard,
    patch: GroupPatch,
    bumpEpoch = false,
    pins: readonly HeartbeatPin[] = [],
  ): Promise<GroupState> {
    return this.call('updateGroup', () => {
      const key = this.key(cluster, group);
      const s = this.checkGuard(key, guard);
      // Checked in the same step as the write, as DynamoDB checks a transaction's items.
      for (const pin of pins) {
        const token = this.heartbeats.get(`${cluster}/${pin.node}`)?.token ?? null;
        if (token !== pin.token)
          throw new ConflictError(
            `group ${key}: ${pin.node} renewed since it was read (${pin.token ?? 'no renewal'} -> ${token})`,
          );
      }
      const next: GroupState = {
        ...s,
        ...clone(patch),
        epoch: bumpEpoch ? s.epoch + 1 : s.epoch,
        updatedAt: guard.now,
      };
      this.save(key, next);
      return clone(next);
    });
  }

  async fence(cluster: string, group: string, guard: WriteGuard): Promise<void> {
    await this.call('fence', () => {
      this.checkGuard(this.key(cluster, group), guard);
    });
    const stall = this.stallAfterFence?.(guard.holder, group) ?? 0;
    if (stall > 0) {
      this.world.note(`${guard.holder} stalls ${stall} ms after its fence of ${group}`);
      await this.world.delay(stall);
    }
  }

  getHeartbeats(cluster: string, nodes: readonly string[]): Promise<Record<string, Heartbeat>> {
    return this.call('getHeartbeats', () => {
      const out: Record<string, Heartbeat> = {};
      for (const n of nodes) {
        const hb = this.heartbeats.get(`${cluster}/${n}`);
        if (hb) out[n] = clone(hb);
      }
      return out;
    });
  }

  listRequests(): Promise<RequestView[]> {
    return this.call('listRequests', () =>
      [...this.requests.values()]
        .filter((r) => r.status === 'pending')
        .sort((a, b) => a.createdAt - b.createdAt)
        .map(({ status: _, message: __, ...view }) => clone(view)),
    );
  }

  completeRequest(
    _cluster: string,
    id: string,
    outcome: 'done' | 'rejected',
    message: string,
  ): Promise<boolean> {
    return this.call('completeRequest', () => {
      const r = this.requests.get(id);
      if (r?.status !== 'pending') return false;
      r.status = outcome;
      r.message = message;
      return true;
    });
  }

  getFacts(): Promise<Record<string, NodeFact[]>> {
    return this.call('getFacts', () => Object.fromEntries([...this.facts].map(([k, v]) => [k, clone(v)])));
  }

  requestRepair(cluster: string, group: string, by: string, why: string, now: number): Promise<void> {
    return this.call('requestRepair', () => {
      this.repairs.push({ cluster, group, by, why, at: now });
      this.onRepair?.(cluster, group);
    });
  }

  appendAudit(event: AuditEvent): Promise<void> {
    return this.call('appendAudit', () => {
      this.audit.push(event);
      if (this.audit.length > 500) this.audit.shift();
    });
  }

  // ---- simulated agents and guard (their own network path; the caller handles partitions) ----

  /** The agent's own heartbeat item (a put). */
  agentPut(hb: Heartbeat): Promise<void> {
    return this.call('agentPut', () => {
      const key = `${hb.cluster}/${hb.node}`;
      // As the agent's conditional PutItem (node-agent/store.ts): never over a newer renewal of the
      // same process (writes in flight may land out of order).
      const stored = this.heartbeats.get(key);
      if (stored && stored.incarnation === hb.incarnation && stored.seq >= hb.seq)
        throw new HeartbeatSupersededError(hb.token);
      this.heartbeats.set(key, clone(hb));
      const history = this.heartbeatHistory.get(key) ?? [];
      history.push(clone(hb));
      if (history.length > 8) history.shift();
      this.heartbeatHistory.set(key, history);
    });
  }

  /** Eventually consistent read of every group record (possibly an older version). */
  agentReadGroups(cluster: string): Promise<GroupState[]> {
    return this.call('agentReadGroups', () => {
      const out: GroupState[] = [];
      for (const [key, s] of this.groups) {
        if (!key.startsWith(`${cluster}/`)) continue;
        const history = this.groupHistory.get(key) ?? [];
        if (history.length > 1 && this.world.rng.chance(this.faults.staleRead)) {
          // An older version still visible on another replica.
          out.push(
            clone(history[this.world.rng.int(Math.max(0, history.length - 4), history.length - 2)]!.state),
          );
        } else out.push(clone(s));
      }
      return out;
    });
  }

  /**
   * Readers whose eventually consistent reads of heartbeats come from a replica that stopped
   * applying updates (a lagging replica): the heartbeats as they were when it fell behind.
   */
  private readonly laggingReplicas = new Map<string, Map<string, Heartbeat>>();

  /** `reader`'s heartbeat reads lag from now on (`false`: they catch up again). */
  lagReplicaFor(reader: string, lagging: boolean): void {
    if (lagging)
      this.laggingReplicas.set(reader, new Map([...this.heartbeats].map(([k, v]) => [k, clone(v)])));
    else this.laggingReplicas.delete(reader);
  }

  /** Eventually consistent read of the peers' heartbeats (possibly an older version of each). */
  agentReadHeartbeats(cluster: string, reader?: string): Promise<Heartbeat[]> {
    const replica = reader === undefined ? undefined : this.laggingReplicas.get(reader);
    return this.call('agentReadHeartbeats', () =>
      [...this.heartbeats.entries()]
        .filter(([k]) => k.startsWith(`${cluster}/`))
        .map(([k, v]) => {
          const lagging = replica?.get(k);
          if (lagging) return clone(lagging);
          const history = this.heartbeatHistory.get(k) ?? [];
          if (history.length > 1 && this.world.rng.chance(this.faults.staleRead))
            return clone(history[this.world.rng.int(Math.max(0, history.length - 4), history.length - 2)]!);
          return clone(v);
        }),
    );
  }

  /** The guard's strongly consistent read of one group. */
  guardReadGroup(cluster: string, group: string): Promise<GroupState | undefined> {
    return this.call('guardReadGroup', () => {
      const s = this.groups.get(this.key(cluster, group));
      return s ? clone(s) : undefined;
    });
  }

  currentEpoch(cluster: string, group: string): number | undefined {
    return this.groups.get(this.key(cluster, group))?.epoch;
  }
}
