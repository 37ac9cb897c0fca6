/**
 * AWS in memory, behind the same Cloud / ResourceDriver ports as controller/resources: entry points
 * (VIP route target, Elastic IP association, DNS record) are plain fields, `exec` start and stop go
 * "through SSM" to the node's guard, instances have a state. Read before write, like the real
 * drivers: an entry point already in place changes nothing.
 *
 * What a test needs around it comes from its `world`: the property simulation adds network delays,
 * throttling and a check, at the instant each mutation lands, that it was fenced at the group's
 * current epoch by the lock's holder; the integration tests and the scaling benchmark record the
 * mutations and let a guard read the real state table.
 */
import { FailoverError } from '../shared/base/errors';
import { RESOURCE_KINDS, resourceKind } from '../shared/config/kinds';
import type { ResourceConfig } from '../shared/config/schema';
import type { CheckResult, InstanceStatus } from '../shared/core/model';
import type {
  ActionOutcome,
  Cloud,
  MutationContext,
  ResourceDriver,
  ResourceRequest,
  StateStore,
} from '../shared/core/ports';

export interface MemoryCloudWorld {
  /** One AWS call's round trip; may throw (throttling). Default: none. */
  rtt?(signal: AbortSignal): Promise<void>;
  /** A mutation fenced at `ctx.epoch` lands now: record it, or check it. */
  /** Before the caller's checks (its lock time, then its fence): a stall there is caught by them. */
  beforeChecks?(ctx: MutationContext): Promise<void>;
  /** Between the fence and the call (a stall there is what the lock checks cannot prevent). */
  afterFence?(ctx: MutationContext, what: string): Promise<void>;
  /** A mutation lands (`key`: the entry point it moves, group/resource). */
  land?(ctx: MutationContext, what: string, key?: string): void | Promise<void>;
  /** `exec` start / stop on the node: its guard. Resolves undefined when done, else why it refused. */
  guard(req: ResourceRequest, verb: 'start' | 'stop'): Promise<string | undefined>;
  /** The way back of a describe's answer, after AWS read the states it carries (a slow network). */
  describeAnswered?(signal: AbortSignal): Promise<void>;
  /** State of an instance (default: running). */
  instanceState?(instanceId: string): InstanceStatus['state'] | undefined;
  /** The hard fence: StopInstances on it. */
  stopInstance?(instanceId: string): void;
}

/** One mutation as it landed. */
export interface LandedMutation {
  what: string;
  epoch: number;
  holder: string;
}

/** A signal that never aborts: a request already on the wire reaches AWS whatever the caller does. */
const NEVER = new AbortController().signal;

export class MemoryCloud implements Cloud {
  /** group/resource -> node holding it (null: nowhere). */
  readonly entry = new Map<string, string | null>();
  readonly mutations: LandedMutation[] = [];
  /** Instance states set by the test (or a hard fence), over the world's. */
  readonly instances = new Map<string, InstanceStatus>();
  readonly resources: Record<ResourceConfig['type'], ResourceDriver>;
  /** A simulated call takes tens of milliseconds; its worst case (every attempt lost) is this. */
  readonly mutationWorstCaseMs = 2_000;

  constructor(private readonly world: MemoryCloudWorld) {
    const entryPoint: ResourceDriver = {
      activate: (req) => this.setEntry(req, req.node.name),
      deactivate: async (req) => {
        await this.rtt(req.signal);
        const current = this.entry.get(this.key(req)) ?? null;
        // vip: the route stays (harmless); eip and dns are taken off only if they point here.
        if (req.resource.type === 'vip' || current !== req.node.name)
          return { changed: false, detail: 'nothing to do' };
        if (req.resource.type === 'dns' && !req.resource.deleteOnDeactivate)
          return { changed: false, detail: 'record kept' };
        return this.setEntry(req, null);
      },
      check: async (req): Promise<CheckResult> => {
        await this.rtt(req.signal);
        const current = this.entry.get(this.key(req)) ?? null;
        return current === req.node.name
          ? { status: 'ok', detail: `on ${current}` }
          : { status: 'drift', detail: `points to ${current ?? 'nothing'} instead of ${req.node.name}` };
      },
    };
    const exec: ResourceDriver = {
      activate: (req) => this.ssm(req, 'start'),
      deactivate: (req) => this.ssm(req, 'stop'),
      check: async () => ({ status: 'ok', detail: 'n/a' }),
    };
    // Every kind of the table: entry points are fields, applications go through the guard.
    this.resources = Object.fromEntries(
      RESOURCE_KINDS.map((k) => [k.type, resourceKind(k.type)?.entryPoint ? entryPoint : exec]),
    ) as Record<ResourceConfig['type'], ResourceDriver>;
  }

  private key(req: Pick<ResourceRequest, 'group' | 'resource'>): string {
    return `${req.group}/${req.resource.name}`;
  }

  private async rtt(signal: AbortSignal): Promise<void> {
    await this.world.rtt?.(signal);
  }

  /** The caller's checks before a mutating call (a process may pause right before them). */
  private async checks(ctx: MutationContext): Promise<void> {
    await this.world.beforeChecks?.(ctx);
    await ctx.beforeMutation();
  }

  /**
   * The request of a mutating call: refused before it leaves if the caller already gave up (the
   * SDK checks its abort signal), but once sent it reaches AWS whatever the caller does next.
   */
  private async send(ctx: MutationContext, what: string): Promise<void> {
    await this.world.afterFence?.(ctx, what);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    await this.rtt(NEVER);
  }

  /** The answer's way back, which the caller may give up on. */
  private async answer(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason;
  }

  private async land(ctx: MutationContext, what: string, key?: string): Promise<void> {
    this.mutations.push({ what, epoch: ctx.epoch, holder: ctx.holder });
    await this.world.land?.(ctx, what, key);
  }

  private async setEntry(req: ResourceRequest, target: string | null): Promise<ActionOutcome> {
    const key = this.key(req);
    await this.rtt(req.signal);
    if ((this.entry.get(key) ?? null) === target)
      return { changed: false, detail: `already on ${target ?? 'nothing'}` };
    const what = `${key} -> ${target ?? 'nothing'}`;
    await this.checks(req);
    await this.send(req, what);
    await this.land(req, what, key);
    this.entry.set(key, target);
    await this.answer(req.signal);
    return { changed: true, detail: `moved to ${target ?? 'nothing'}` };
  }

  private async ssm(req: ResourceRequest, verb: 'start' | 'stop'): Promise<ActionOutcome> {
    const what = `ssm ${verb} ${req.group}@${req.node.name}`;
    await this.checks(req);
    await this.send(req, what);
    await this.land(req, what);
    // The command now runs on the node whatever happens to this invocation (SSM delivered it).
    const error = await this.world.guard(req, verb);
    if (req.signal.aborted) throw req.signal.reason;
    if (error) throw new FailoverError('EXEC_FAILED', `${verb} on ${req.node.name}: ${error}`);
    return { changed: true, detail: `${verb} succeeded` };
  }

  async describeInstances(
    ids: readonly string[],
    signal: AbortSignal,
  ): Promise<Record<string, InstanceStatus>> {
    await this.rtt(signal);
    const out: Record<string, InstanceStatus> = {};
    for (const id of ids) {
      const state = this.instances.get(id)?.state ?? this.world.instanceState?.(id) ?? 'running';
      out[id] = { state };
    }
    await this.world.describeAnswered?.(signal);
    return out;
  }

  async describeZones(zones: readonly string[], signal: AbortSignal): Promise<Record<string, string>> {
    await this.rtt(signal);
    return Object.fromEntries(zones.map((z) => [z, 'available']));
  }

  async stopInstance(instanceId: string, ctx: MutationContext): Promise<ActionOutcome> {
    const what = `stop-instance ${instanceId}`;
    await this.checks(ctx);
    await this.send(ctx, what);
    await this.land(ctx, what);
    if (this.world.stopInstance) this.world.stopInstance(instanceId);
    else this.instances.set(instanceId, { state: 'stopped' });
    return { changed: true, detail: 'stopping' };
  }
}

/**
 * The world of tests whose nodes are only names: a guard that reads the real state table as the
 * node's guard does (owner, epoch and mayRun on a start; the epoch on a stop), what runs where, and
 * every mutation with the group's epoch in the table at the moment it landed.
 */
export class StoreWorld implements MemoryCloudWorld {
  /** group -> node -> epoch the application was started at. */
  readonly running = new Map<string, Map<string, number>>();
  readonly landed: { what: string; epoch: number; current: number | undefined }[] = [];

  constructor(private readonly store: StateStore) {}

  readonly land = async (ctx: MutationContext, what: string): Promise<void> => {
    const current = (await this.store.getGroup(ctx.cluster, ctx.group))?.epoch;
    this.landed.push({ what, epoch: ctx.epoch, current });
  };

  readonly guard = async (req: ResourceRequest, verb: 'start' | 'stop'): Promise<string | undefined> => {
    const rec = await this.store.getGroup(req.cluster, req.group);
    const runners = this.running.get(req.group) ?? new Map<string, number>();
    this.running.set(req.group, runners);
    if (verb === 'start') {
      if (rec?.owner !== req.node.name || rec.epoch !== req.epoch || !rec.mayRun.includes(req.node.name))
        return `guard refused start at epoch ${req.epoch}`;
      runners.set(req.node.name, req.epoch);
    } else {
      if (rec?.epoch !== req.epoch) return `guard refused stop at stale epoch ${req.epoch}`;
      runners.delete(req.node.name);
    }
    return undefined;
  };

  runners(group: string): string[] {
    return [...(this.running.get(group)?.keys() ?? [])];
  }
}
