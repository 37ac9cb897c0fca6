/**
 * AWS in memory, implementing the same Cloud / ResourceDriver ports as shared/resources: entry points
 * (VIP route target, EIP association, DNS record) are plain fields; exec start/stop go "through SSM"
 * to the simulated node's guard. Every mutation checks, at the instant it lands, that the epoch it
 * was fenced at is still the group's current epoch: the invariant "no mutation without a
 * current-epoch check".
 */
import type { ResourceConfig } from '../../../shared/config/schema';
import { FailoverError } from '../../../shared/core/errors';
import type { CheckResult, InstanceView } from '../../../shared/core/model';
import type {
  ActionOutcome,
  Cloud,
  MutationContext,
  ResourceDriver,
  ResourceRequest,
} from '../../../shared/core/ports';
import { type MemoryStore, ThrottledError } from './memory-store';
import type { SimNode } from './sim-node';
import type { World } from './world';

export class MemoryCloud implements Cloud {
  /** group/resource -> node holding it (null: nowhere). */
  readonly entry = new Map<string, string | null>();
  throttle = 0;
  mutations = 0;
  readonly resources: Record<ResourceConfig['type'], ResourceDriver>;

  constructor(
    private readonly world: World,
    private readonly store: MemoryStore,
    private readonly nodes: Map<string, SimNode>,
  ) {
    const entryPoint: ResourceDriver = {
      activate: (req) => this.setEntry(req, req.node.name),
      deactivate: async (req) => {
        const key = `${req.group}/${req.resource.name}`;
        await this.rtt(req.signal);
        const current = this.entry.get(key) ?? null;
        // vip: the route stays (harmless); eip and dns are taken off only if they point here.
        if (req.resource.type === 'vip' || current !== req.node.name)
          return { changed: false, detail: 'nothing to do' };
        if (req.resource.type === 'dns' && !req.resource.deleteOnDeactivate)
          return { changed: false, detail: 'record kept' };
        return this.setEntry(req, null);
      },
      check: async (req): Promise<CheckResult> => {
        await this.rtt(req.signal);
        const current = this.entry.get(`${req.group}/${req.resource.name}`) ?? null;
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
    this.resources = { vip: entryPoint, eip: entryPoint, dns: entryPoint, exec };
  }

  private async rtt(signal: AbortSignal): Promise<void> {
    await this.world.delay(this.world.rng.int(5, 40), signal);
    if (this.world.rng.chance(this.throttle)) throw new ThrottledError();
  }

  /** The mutation lands now: verify it was fenced at the current epoch. */
  private land(ctx: MutationContext, what: string): void {
    this.mutations++;
    const current = this.store.currentEpoch(ctx.cluster, ctx.group);
    const rec = this.store.groups.get(`${ctx.cluster}/${ctx.group}`);
    if (current !== ctx.epoch)
      this.world.violation(`${what} landed at epoch ${ctx.epoch} but group ${ctx.group} is at ${current}`);
    if (rec?.lock?.holder !== ctx.holder)
      this.world.violation(`${what} landed while ${ctx.holder} no longer holds the lock of ${ctx.group}`);
    this.world.note(`cloud: ${what} (epoch ${ctx.epoch}, ${ctx.holder})`);
  }

  private async setEntry(req: ResourceRequest, target: string | null): Promise<ActionOutcome> {
    const key = `${req.group}/${req.resource.name}`;
    await this.rtt(req.signal);
    if ((this.entry.get(key) ?? null) === target)
      return { changed: false, detail: `already on ${target ?? 'nothing'}` };
    await req.beforeMutation();
    await this.world.delay(this.world.rng.int(5, 40), req.signal);
    this.land(req, `${req.resource.name} -> ${target ?? 'nothing'}`);
    this.entry.set(key, target);
    await this.world.delay(this.world.rng.int(5, 40));
    return { changed: true, detail: `moved to ${target ?? 'nothing'}` };
  }

  private async ssm(req: ResourceRequest, verb: 'start' | 'stop'): Promise<ActionOutcome> {
    const node = this.nodes.get(req.node.name);
    if (!node) throw new FailoverError('NODE_NOT_FOUND', req.node.name);
    await req.beforeMutation();
    await this.world.delay(this.world.rng.int(20, 80), req.signal);
    if (this.world.rng.chance(this.throttle)) throw new ThrottledError();
    this.land(req, `ssm ${verb} ${req.group}@${req.node.name}`);
    // The command now runs on the node whatever happens to this invocation (SSM delivered it).
    const result =
      verb === 'start' ? node.guardStart(req.group, req.epoch) : node.guardStop(req.group, req.epoch);
    const timeout = this.world.delay(5_000).then(() => 'timed out waiting for the command' as const);
    const error = await Promise.race([result, timeout]);
    if (req.signal.aborted) throw req.signal.reason;
    if (error) throw new FailoverError('EXEC_FAILED', `${verb} on ${req.node.name}: ${error}`);
    return { changed: true, detail: `${verb} succeeded` };
  }

  async describeInstances(
    ids: readonly string[],
    signal: AbortSignal,
  ): Promise<Record<string, InstanceView>> {
    await this.rtt(signal);
    const out: Record<string, InstanceView> = {};
    for (const n of this.nodes.values()) {
      if (ids.includes(n.instanceId())) out[n.instanceId()] = { state: n.instanceState };
    }
    return out;
  }

  async describeZones(zones: readonly string[], signal: AbortSignal): Promise<Record<string, string>> {
    await this.rtt(signal);
    return Object.fromEntries(zones.map((z) => [z, 'available']));
  }

  async stopInstance(instanceId: string, ctx: MutationContext): Promise<ActionOutcome> {
    const node = [...this.nodes.values()].find((n) => n.instanceId() === instanceId);
    if (!node) throw new FailoverError('INSTANCE_NOT_FOUND', instanceId);
    await ctx.beforeMutation();
    await this.world.delay(this.world.rng.int(20, 80), ctx.signal);
    this.land(ctx, `stop-instance ${instanceId}`);
    node.crash(undefined, true);
    return { changed: true, detail: 'stopping' };
  }
}
