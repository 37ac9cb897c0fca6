/**
 * A small in-memory cloud for tests that exercise reconcile against the real state table: entry
 * points are fields, and exec start/stop run a guard that reads the state table the way the node
 * agent does (owner and epoch, strongly consistent). Every mutation records the epoch it was fenced
 * at, so tests can assert that none landed at a stale epoch.
 */
import type { ResourceConfig } from '../../shared/config/schema';
import { FailoverError } from '../../shared/core/errors';
import type { InstanceView } from '../../shared/core/model';
import type {
  ActionOutcome,
  Cloud,
  ResourceDriver,
  ResourceRequest,
  StateStore,
} from '../../shared/core/ports';

export class InMemoryCloud implements Cloud {
  readonly entry = new Map<string, string | null>();
  /** group -> node -> epoch the application was started at. */
  readonly running = new Map<string, Map<string, number>>();
  readonly instances = new Map<string, InstanceView>();
  readonly mutations: { what: string; epoch: number; current: number | undefined }[] = [];
  readonly resources: Record<ResourceConfig['type'], ResourceDriver>;

  constructor(private readonly store: StateStore) {
    const entryPoint: ResourceDriver = {
      activate: (req) => this.move(req, req.node.name),
      deactivate: async (req) => {
        const current = this.entry.get(`${req.group}/${req.resource.name}`) ?? null;
        if (req.resource.type === 'vip' || current !== req.node.name)
          return { changed: false, detail: 'nothing to do' };
        return this.move(req, null);
      },
      check: async (req) => {
        const current = this.entry.get(`${req.group}/${req.resource.name}`) ?? null;
        return current === req.node.name
          ? { status: 'ok', detail: 'ok' }
          : { status: 'drift', detail: `on ${current}` };
      },
    };
    const exec: ResourceDriver = {
      activate: (req) => this.guard(req, 'start'),
      deactivate: (req) => this.guard(req, 'stop'),
      check: async () => ({ status: 'ok', detail: 'n/a' }),
    };
    this.resources = { vip: entryPoint, eip: entryPoint, dns: entryPoint, exec };
  }

  runners(group: string): string[] {
    return [...(this.running.get(group)?.keys() ?? [])];
  }

  private async record(req: ResourceRequest, what: string): Promise<void> {
    await req.beforeMutation();
    const current = (await this.store.getGroup(req.cluster, req.group))?.epoch;
    this.mutations.push({ what, epoch: req.epoch, current });
  }

  private async move(req: ResourceRequest, target: string | null): Promise<ActionOutcome> {
    const key = `${req.group}/${req.resource.name}`;
    if ((this.entry.get(key) ?? null) === target) return { changed: false, detail: 'already there' };
    await this.record(req, `${key} -> ${target}`);
    this.entry.set(key, target);
    return { changed: true, detail: `moved to ${target}` };
  }

  private async guard(req: ResourceRequest, action: 'start' | 'stop'): Promise<ActionOutcome> {
    await this.record(req, `${action} ${req.group}@${req.node.name}`);
    const rec = await this.store.getGroup(req.cluster, req.group);
    const runners = this.running.get(req.group) ?? new Map<string, number>();
    this.running.set(req.group, runners);
    if (action === 'start') {
      if (rec?.owner !== req.node.name || rec.epoch !== req.epoch)
        throw new FailoverError('EXEC_FAILED', `guard refused start at epoch ${req.epoch}`);
      runners.set(req.node.name, req.epoch);
    } else {
      if (rec?.epoch !== req.epoch)
        throw new FailoverError('EXEC_FAILED', `guard refused stop at stale epoch ${req.epoch}`);
      runners.delete(req.node.name);
    }
    return { changed: true, detail: `${action} ok` };
  }

  async describeInstances(ids: readonly string[]): Promise<Record<string, InstanceView>> {
    return Object.fromEntries(ids.map((id) => [id, this.instances.get(id) ?? { state: 'running' as const }]));
  }

  async describeZones(zones: readonly string[]): Promise<Record<string, string>> {
    return Object.fromEntries(zones.map((z) => [z, 'available']));
  }

  async stopInstance(instanceId: string, ctx: Parameters<Cloud['stopInstance']>[1]): Promise<ActionOutcome> {
    await ctx.beforeMutation();
    this.instances.set(instanceId, { state: 'stopped' });
    return { changed: true, detail: 'stopped' };
  }
}
