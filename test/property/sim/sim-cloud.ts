/**
 * The simulation's AWS: the test kit's in-memory cloud in the simulated world. Every call takes a
 * random round trip and may be throttled; every mutation is checked at the instant it lands: it
 * must have been fenced at the group's current epoch by the invocation that still holds the lock
 * (the invariant "no mutation without a current-epoch check"); `exec` goes to the simulated node's
 * guard, a hard fence stops its instance.
 */
import type { MutationContext } from '../../../shared/core/ports';
import { MemoryCloud } from '../../../testkit/memory-cloud';
import { type MemoryStore, ThrottledError } from '../../../testkit/memory-store';
import type { World } from '../../../testkit/world';
import type { SimNode } from './sim-node';

/** How long the controller waits for a node's guard before it reports the command timed out. */
const COMMAND_WAIT_MS = 5_000;

export class SimCloud extends MemoryCloud {
  /** Probability that a call is throttled (a fault of the schedule). */
  throttle = 0;
  /** How long a describe's answer takes to come back after EC2 read the states (a fault). */
  slowDescribeMs = 0;

  constructor(
    world: World,
    store: MemoryStore,
    nodes: Map<string, SimNode>,
    stale: {
      /** The invocation stalled after its fence of this group: a late change of it is expected (and counted). */
      expectStale: (holder: string, group: string) => boolean;
      onStale: (what: string, key: string) => void;
      /**
       * How long an invocation stalls (0: not at all) right before its checks of a mutating call,
       * or between its fence and the call (`what`: the call, e.g. `ssm start db@node2`).
       */
      stallMs?: (holder: string, group: string, where: 'checks' | 'call', what?: string) => number;
    } = { expectStale: () => false, onStale: () => undefined },
  ) {
    const byInstance = (id: string) => [...nodes.values()].find((n) => n.instanceId() === id);
    // GC, a suspended process: the invocation's timers (its deadline's abort) run late too.
    const stall = async (ctx: MutationContext, where: 'checks' | 'call', when: string, what?: string) => {
      const ms = stale.stallMs?.(ctx.holder, ctx.group, where, what) ?? 0;
      if (ms === 0) return;
      world.note(`${ctx.holder} stalls ${ms} ms ${when} (${what ?? ctx.group})`);
      await world.delay(ms);
    };
    super({
      rtt: async (signal) => {
        await world.delay(world.rng.int(5, 40), signal);
        if (world.rng.chance(this.throttle)) throw new ThrottledError();
      },
      describeAnswered: async (signal) => {
        if (this.slowDescribeMs === 0) return;
        world.note(`cloud: a describe's answer takes ${this.slowDescribeMs} ms to come back`);
        await world.delay(this.slowDescribeMs, signal);
      },
      beforeChecks: (ctx: MutationContext) => stall(ctx, 'checks', 'before its checks'),
      afterFence: (ctx: MutationContext, what: string) =>
        stall(ctx, 'call', 'between its fence and its call', what),
      land: (ctx: MutationContext, what: string, key?: string) => {
        const current = store.currentEpoch(ctx.cluster, ctx.group);
        const rec = store.groups.get(`${ctx.cluster}/${ctx.group}`);
        const late = current !== ctx.epoch || rec?.lock?.holder !== ctx.holder;
        if (late && stale.expectStale(ctx.holder, ctx.group)) {
          // AWS cannot refuse it: a change of an invocation that stalled past its lock.
          world.note(`cloud: STALE ${what} (epoch ${ctx.epoch}, ${ctx.holder}; group at ${current})`);
          if (key) stale.onStale(what, key);
          return;
        }
        if (current !== ctx.epoch)
          world.violation(`${what} landed at epoch ${ctx.epoch} but group ${ctx.group} is at ${current}`);
        if (rec?.lock?.holder !== ctx.holder)
          world.violation(`${what} landed while ${ctx.holder} no longer holds the lock of ${ctx.group}`);
        world.note(`cloud: ${what} (epoch ${ctx.epoch}, ${ctx.holder})`);
      },
      guard: async (req, verb) => {
        const node = nodes.get(req.node.name);
        if (!node) return `node ${req.node.name} does not exist`;
        const result =
          verb === 'start' ? node.guardStart(req.group, req.epoch) : node.guardStop(req.group, req.epoch);
        const timeout = world.delay(COMMAND_WAIT_MS).then(() => 'timed out waiting for the command');
        return Promise.race([result, timeout]);
      },
      instanceState: (id) => byInstance(id)?.instanceState,
      stopInstance: (id) => byInstance(id)?.stopInstance(),
    });
  }
}
