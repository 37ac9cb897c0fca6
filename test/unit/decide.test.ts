/** The pure decision core: one observation in, one plan out (no I/O, time is a parameter). */
import { describe, expect, it } from 'vitest';
import { monitorTiming } from '../../shared/config/kinds';
import { type ClusterConfig, parseClusterConfig } from '../../shared/config/load';
import {
  decide,
  EVENT_TIME_RESOLUTION_MS,
  MAX_ACTIVATION_ATTEMPTS,
  patchForFailedAction,
} from '../../shared/core/decide';
import { isLive, stopEvidence } from '../../shared/core/liveness';
import {
  type GroupObservation,
  type GroupState,
  type Heartbeat,
  initialGroupState,
  type NodeObservation,
} from '../../shared/core/model';
import { nodeStopBudgets } from '../../shared/core/node-side';
import type { Action, GroupPatch, Plan } from '../../shared/core/plan';

const NOW = 1_000_000;

function config(groupExtra: Record<string, unknown> = {}): ClusterConfig {
  return parseClusterConfig({
    cluster: 'orders',
    region: 'us-east-1',
    timing: { heartbeatIntervalMs: 1000, leaseMs: 10_000, maxClockSkewMs: 500 },
    nodes: [
      { name: 'node1', instanceId: 'i-1', eni: 'eni-1', az: 'us-east-1a', privateIp: '10.0.1.10' },
      { name: 'node2', instanceId: 'i-2', eni: 'eni-2', az: 'us-east-1b', privateIp: '10.0.2.10' },
      { name: 'node3', instanceId: 'i-3', eni: 'eni-3', az: 'us-east-1c', privateIp: '10.0.3.10' },
    ],
    groups: [
      {
        name: 'db',
        nodes: ['node1', 'node2'],
        resources: [
          { type: 'vip', name: 'vip', ip: '172.16.0.10', vpcId: 'vpc-1' },
          { type: 'eip', name: 'eip', allocationId: 'eipalloc-1' },
          { type: 'exec', name: 'app', start: '/start', stop: '/stop' },
        ],
        monitors: [
          {
            type: 'pid',
            name: 'pid',
            resource: 'app',
            pidFile: '/run/app.pid',
            recovery: { restarts: 2, failovers: 1, finalAction: 'stop-group' },
          },
        ],
        ...groupExtra,
      },
    ],
  });
}

function hb(node: string, over: Partial<Heartbeat> = {}, now = NOW): Heartbeat {
  return {
    cluster: 'orders',
    node,
    token: `${node}/1`,
    seq: 1,
    incarnation: 'a',
    sentAt: now - 500,
    leaseMs: 10_000,
    agentVersion: 't',
    state: 'running',
    reason: 'periodic',
    monitors: {},
    isolated: false,
    groups: {},
    peers: {},
    // The recommended setup: an armed watchdog, so silence for a lease proves the node is stopped.
    fence: { maxStopMs: 300_000, watchdogMs: 8_000 },
    ...over,
  };
}

interface Setup {
  cfg?: ClusterConfig;
  state?: Partial<GroupState>;
  heartbeats?: Partial<Record<string, Partial<Heartbeat> | null>>;
  nodes?: Partial<Record<string, Partial<NodeObservation>>>;
  now?: number;
  requests?: GroupObservation['requests'];
  /** When the heartbeats were read (default: `now`). */
  readAt?: number;
  /** When that read came back (default: `readAt`). */
  heardAt?: number;
  checks?: GroupObservation['checks'];
  apiErrors?: GroupObservation['apiErrors'];
}

function observe(s: Setup = {}): GroupObservation {
  const cfg = s.cfg ?? config();
  const group = cfg.groups[0]!;
  const nodes: Record<string, NodeObservation> = {};
  for (const n of cfg.nodes) {
    const override = s.heartbeats?.[n.name];
    const obs: NodeObservation = {
      config: n,
      stopBudgetMs: nodeStopBudgets(cfg).get(n.name) ?? 0,
      facts: [],
      instance: { state: 'running', describedAt: s.now ?? NOW },
      azState: 'available',
      ...s.nodes?.[n.name],
    };
    if (override !== null) obs.heartbeat = hb(n.name, override ?? {}, s.now ?? NOW);
    nodes[n.name] = obs;
  }
  return {
    now: s.now ?? NOW,
    readAt: s.readAt ?? s.now ?? NOW,
    heardAt: s.heardAt ?? s.readAt ?? s.now ?? NOW,
    config: cfg,
    group,
    state: { ...initialGroupState(group, 0), ...s.state },
    nodes,
    requests: s.requests ?? [],
    checks: s.checks ?? {},
    apiErrors: s.apiErrors ?? {},
  };
}

const types = (plan: Plan) => plan.actions.map((a) => a.type);
const find = <T extends Action['type']>(plan: Plan, type: T) =>
  plan.actions.find((a) => a.type === type) as Extract<Action, { type: T }> | undefined;
const online = (owner: string, extra: Partial<GroupState> = {}): Partial<GroupState> => ({
  owner,
  epoch: 3,
  phase: 'Online',
  phaseSince: NOW - 60_000,
  mayRun: [owner],
  lastOwner: owner,
  healthySince: NOW - 60_000,
  ...extra,
});

describe('choosing the owner', () => {
  it('starts a new group on the first eligible node in priority order', () => {
    const plan = decide(observe());
    expect(find(plan, 'takeover')).toMatchObject({ to: 'node1', set: { owner: 'node1', phase: 'Starting' } });
  });

  it('skips ineligible nodes: expired lease, isolated, AZ down, instance stopping, failing always-monitor', () => {
    const cfg = config({ monitors: [{ type: 'disk', name: 'disk', path: '/mnt/efs/x' }] });
    const cases: Setup[] = [
      { heartbeats: { node1: { sentAt: NOW - 10_600 } } },
      { heartbeats: { node1: { isolated: true } } },
      { nodes: { node1: { azState: 'impaired' } } },
      { nodes: { node1: { instance: { state: 'stopping', describedAt: NOW } } } },
      { cfg, heartbeats: { node1: { monitors: { disk: { status: 'error', detail: 'EIO' } } } } },
      { heartbeats: { node1: { state: 'leaving' } } },
      { heartbeats: { node1: null } },
      { nodes: { node1: { facts: [{ kind: 'spot-interruption', at: NOW - 1000, detail: 'terminate' }] } } },
    ];
    for (const c of cases) expect(find(decide(observe(c)), 'takeover')?.to, JSON.stringify(c)).toBe('node2');
  });

  it('counts a "stopped" EC2 event (when no describe came back) only until the node renews after it', () => {
    const { timing } = config();
    // Within the lease (10 s): only the event can make node1 ineligible.
    const at = NOW - 5_000;
    const event = (state: string) => ({
      kind: 'instance-state' as const,
      at,
      detail: `EC2 reports ${state}`,
      state,
    });
    const owner = (state: string, sentAt: number) =>
      find(
        decide(
          observe({
            nodes: { node1: { instance: undefined, facts: [event(state)] } },
            heartbeats: { node1: { sentAt } },
          }),
        ),
        'takeover',
      )?.to;
    // A live lease (10 s) renewed before the event: the event counts, node1 is skipped.
    expect(owner('stopped', at - 1)).toBe('node2');
    // Renewed after the event's second (1 s) and the skew: started again, eligible.
    const after = at + EVENT_TIME_RESOLUTION_MS + timing.maxClockSkewMs;
    expect(owner('stopped', after)).toBe('node2');
    expect(owner('stopped', after + 1)).toBe('node1');
    // A node renews while it stops: a going-down event counts whatever it renews.
    for (const state of ['stopping', 'shutting-down', 'terminated'])
      expect(owner(state, after + 1), state).toBe('node2');
    // Both nodes once stopped and both back: the group still gets a node.
    const both: Setup = {
      nodes: {
        node1: { instance: undefined, facts: [event('stopped')] },
        node2: { instance: undefined, facts: [{ ...event('stopped'), at: NOW - 8_000 }] },
      },
    };
    expect(find(decide(observe(both)), 'takeover')?.to).toBe('node1');
  });

  it('a lease counts as live up to lease + maxClockSkew', () => {
    const { timing } = config();
    expect(isLive(hb('n', { sentAt: NOW - 10_500 }), NOW, timing)).toBe(true);
    expect(isLive(hb('n', { sentAt: NOW - 10_501 }), NOW, timing)).toBe(false);
  });

  it('keeps a healthy owner (no failback by default) and fails back only when configured', () => {
    const state = online('node2');
    expect(decide(observe({ state })).actions).toEqual([]);
    const plan = decide(observe({ cfg: config({ failback: true }), state }));
    expect(find(plan, 'takeover')).toMatchObject({ to: 'node1' });
    expect(find(plan, 'takeover')?.why).toMatch(/failback/);
  });

  it('moves away from an owner whose lease expired, and says why', () => {
    const plan = decide(observe({ state: online('node1'), heartbeats: { node1: { sentAt: NOW - 20_000 } } }));
    const t = find(plan, 'takeover');
    expect(t).toMatchObject({ to: 'node2' });
    expect(t?.why).toMatch(/node1's lease expired 20000 ms after its last renewal; moving to node2/);
    expect(find(plan, 'alert')).toMatchObject({ kind: 'failover.started' });
  });

  it('an owner shutting down keeps the group until its final report, then hands it over at once', () => {
    // It says `leaving` from the first moment of its shutdown, while its stop scripts run.
    const stopping = decide(
      observe({
        state: online('node1'),
        heartbeats: { node1: { state: 'leaving', groups: { db: { epoch: 3, state: 'stopping' } } } },
      }),
    );
    expect(stopping.actions).toEqual([]);
    // Its final report is a change, which invokes reconcile: no need to keep looking.
    expect(stopping.requeueAfterMs).toBeUndefined();
    // An agent that dies mid-shutdown sends none: once a peer doubts it (its renewal unchanged for
    // two heartbeats), look again when its lease runs out (sent 4 s ago; lease 10 s + skew 500 ms).
    const dying = decide(
      observe({
        state: online('node1'),
        heartbeats: {
          node1: { state: 'leaving', sentAt: NOW - 4_000, groups: { db: { epoch: 3, state: 'stopping' } } },
          node2: { peers: { node1: { token: 'node1/1', silentForMs: 3_900 } } },
        },
      }),
    );
    expect(dying.actions).toEqual([]);
    expect(dying.requeueAfterMs).toBe(6_501);
    expect(stopping.reasons.join('\n')).toMatch(/node1 is shutting down \(planned\) and stopping its groups/);
    const done = decide(
      observe({
        state: online('node1'),
        heartbeats: { node1: { state: 'leaving', groups: { db: { epoch: 3, state: 'stopped' } } } },
      }),
    );
    expect(find(done, 'takeover')).toMatchObject({ to: 'node2' });
    expect(find(done, 'takeover')?.why).toMatch(/node1 is shutting down \(planned\)/);
    // A final report that never came: once its lease is over, the usual silence rules apply.
    const gone = decide(
      observe({
        state: online('node1'),
        heartbeats: {
          node1: { state: 'leaving', sentAt: NOW - 20_000, groups: { db: { epoch: 3, state: 'stopping' } } },
        },
      }),
    );
    expect(find(gone, 'takeover')).toMatchObject({ to: 'node2' });
    // Its final report read by a controller busy for longer than a lease (the agent has exited, a
    // peer has seen the renewal unchanged since): the cause the operator reads is still the shutdown.
    const late = decide(
      observe({
        state: online('node1'),
        heartbeats: {
          node1: { state: 'leaving', sentAt: NOW - 20_000, groups: { db: { epoch: 3, state: 'stopped' } } },
          node2: { peers: { node1: { token: 'node1/1', silentForMs: 15_000 } } },
        },
      }),
    );
    expect(find(late, 'takeover')?.why).toMatch(/node1 is shutting down \(planned\)/);
    expect(find(late, 'takeover')?.why).not.toMatch(/node1 is silent/);
    // A shutdown that never finished (its stop hung, its agent died): the silence is the cause.
    const unfinished = decide(
      observe({
        state: online('node1'),
        heartbeats: {
          node1: { state: 'leaving', sentAt: NOW - 20_000, groups: { db: { epoch: 3, state: 'stopping' } } },
          node2: { peers: { node1: { token: 'node1/1', silentForMs: 15_000 } } },
        },
      }),
    );
    expect(find(unfinished, 'takeover')?.why).toMatch(/node1 is silent/);
  });

  it('moves before a Spot interruption, but stays when there is nowhere to go', () => {
    const spot = { heartbeats: { node1: { spot: { action: 'terminate', time: '2026-11-23T13:00:00Z' } } } };
    expect(find(decide(observe({ state: online('node1'), ...spot })), 'takeover')?.to).toBe('node2');
    const alone = decide(
      observe({
        state: online('node1'),
        ...spot,
        heartbeats: { ...spot.heartbeats, node2: { sentAt: NOW - 60_000 } },
      }),
    );
    expect(find(alone, 'takeover')).toBeUndefined();
  });

  it('stops the group (and later reports Failed) when its owner is gone and no node is eligible', () => {
    const plan = decide(
      observe({
        state: online('node1'),
        heartbeats: { node1: { sentAt: NOW - 60_000 }, node2: { sentAt: NOW - 60_000 } },
      }),
    );
    expect(find(plan, 'takeover')).toMatchObject({ to: null, set: { phase: 'Stopping' } });
  });
});

describe('demote before promote', () => {
  const moving = {
    owner: 'node2',
    epoch: 4,
    phase: 'Starting' as const,
    mayRun: ['node1'],
    lastOwner: 'node1',
  };

  it('judges liveness when the heartbeats came back, not after a slow read beside them', () => {
    // Lease 10 s + skew 500 ms. node1's renewal was sent 9 s before the heartbeats' read came
    // back; the observation's other reads (a throttled one retried) took 2 s more. By the decision's
    // clock node1 looks 11 s silent; it was not when it was heard from.
    const heartbeats = { node1: { sentAt: NOW - 9_000 } };
    const slow = { now: NOW + 2_000, readAt: NOW - 20, heardAt: NOW };
    // A renewing owner keeps its group.
    expect(types(decide(observe({ state: online('node1'), heartbeats, ...slow })))).not.toContain('takeover');
    // A renewing old owner is stopped through its guard, not fenced with StopInstances.
    const plan = decide(
      observe({ cfg: config({ fencing: 'stop-instance' }), state: moving, heartbeats, ...slow }),
    );
    expect(types(plan)).toEqual(['deactivate', 'update']);
    // The same observation read in one go (heard at the decision) is a silent node: fenced.
    const quick = decide(
      observe({ cfg: config({ fencing: 'stop-instance' }), state: moving, heartbeats, now: NOW + 2_000 }),
    );
    expect(types(quick)).toContain('fence-instance');
  });

  it('stops a live previous owner through the guard before anything starts on the new one', () => {
    const plan = decide(observe({ state: moving }));
    expect(types(plan)).toEqual(['deactivate', 'update']);
    expect(plan.actions[0]).toMatchObject({ type: 'deactivate', node: 'node1', resource: 'app' });
    expect(plan.actions[1]).toMatchObject({ type: 'update', set: { mayRun: [] } });
  });

  it('a live previous owner of a group without application is waited for until its agent reports the stop', () => {
    // A floating IP alone: nothing to send through SSM; the old owner's agent takes its address off
    // when it reads the new record, and says so in its heartbeat.
    const cfg = config({
      resources: [
        { type: 'vip', name: 'vip', ip: '172.16.0.10', vpcId: 'vpc-1' },
        { type: 'eip', name: 'eip', allocationId: 'eipalloc-1' },
      ],
      monitors: [],
    });
    const waiting = decide(
      observe({
        cfg,
        state: moving,
        heartbeats: { node1: { groups: { db: { epoch: 3, state: 'running' } } } },
      }),
    );
    expect(waiting.actions).toEqual([]);
    expect(waiting.requeueAfterMs).toBe(cfg.timing.heartbeatIntervalMs);
    expect(waiting.reasons.join('\n')).toMatch(/waiting for the agent of node1 to stop db and report it/);
    // Its report at the new epoch is the proof; node1 leaves mayRun and node2 may start.
    const stopped = decide(
      observe({
        cfg,
        state: moving,
        heartbeats: { node1: { groups: { db: { epoch: 4, state: 'stopped' } } } },
      }),
    );
    expect(stopped.actions[0]).toMatchObject({ type: 'update', set: { mayRun: [] } });
    // A report from the old epoch proves nothing.
    const old = decide(
      observe({
        cfg,
        state: moving,
        heartbeats: { node1: { groups: { db: { epoch: 3, state: 'stopped' } } } },
      }),
    );
    expect(old.actions).toEqual([]);
    // With a hard fence configured, an agent that says it could not stop is fenced.
    const failed = decide(
      observe({
        cfg: config({ ...cfg.groups[0], fencing: 'stop-instance' }),
        state: moving,
        heartbeats: { node1: { groups: { db: { epoch: 4, state: 'failed' } } } },
      }),
    );
    expect(find(failed, 'fence-instance')).toMatchObject({ node: 'node1' });
  });

  it('a previous owner in the middle of a planned shutdown is waited for, never hard-fenced', () => {
    // Its agent reports `leaving` from the first moment of the shutdown, while its stop scripts run.
    const leaving = { state: 'leaving' as const, groups: { db: { epoch: 3, state: 'stopping' as const } } };
    for (const cfg of [config(), config({ fencing: 'stop-instance' })]) {
      const plan = decide(observe({ cfg, state: moving, heartbeats: { node1: leaving } }));
      expect(plan.actions).toEqual([]);
      expect(plan.requeueAfterMs).toBe(cfg.timing.heartbeatRetryMs);
      expect(plan.reasons.join('\n')).toMatch(/waiting for node1 to finish its planned shutdown/);
    }
    // Done: every group stopped in its leaving report; node1 leaves mayRun at once.
    const done = decide(
      observe({
        state: moving,
        heartbeats: { node1: { state: 'leaving', groups: { db: { epoch: 3, state: 'stopped' } } } },
      }),
    );
    expect(done.actions[0]).toMatchObject({ type: 'update', set: { mayRun: [] } });
  });

  it('waits for a silent previous owner until its lease has certainly ended, whatever its clock says', () => {
    // node1's clock is 30 s behind: by wall clock its lease looks long gone, but nobody has seen its
    // renewal stay unchanged for a lease yet, so it may still be serving.
    const first = decide(observe({ state: moving, heartbeats: { node1: { sentAt: NOW - 30_000 } } }));
    expect(first.actions).toEqual([
      {
        type: 'update',
        set: expect.objectContaining({ suspects: { node1: { token: 'node1/1', firstSeenAt: NOW } } }),
        why: 'recording silent nodes',
      },
    ]);
    expect(first.requeueAfterMs).toBe(10_500);
    const suspects = { node1: { token: 'node1/1', firstSeenAt: NOW } };
    const early = decide(
      observe({
        state: { ...moving, suspects },
        now: NOW + 10_000,
        heartbeats: { node1: { sentAt: NOW - 30_000 } },
      }),
    );
    expect(early.actions).toEqual([]);
    expect(early.requeueAfterMs).toBe(500);
    const late = decide(
      observe({
        state: { ...moving, suspects },
        now: NOW + 10_500,
        heartbeats: { node1: { sentAt: NOW - 30_000 } },
      }),
    );
    expect(find(late, 'update')?.set.mayRun).toEqual([]);
    // The same decision on heartbeats read before the silence was long enough proves nothing: a
    // renewal may have landed since that read. It looks again at once (a read sent now suffices).
    const readEarly = decide(
      observe({
        state: { ...moving, suspects },
        now: NOW + 10_500,
        readAt: NOW + 10_000,
        heartbeats: { node1: { sentAt: NOW - 30_000 } },
      }),
    );
    expect(readEarly.actions).toEqual([]);
    expect(readEarly.requeueAfterMs).toBe(0);
  });

  it('accepts a peer’s monotonic observation of the unchanged renewal as proof', () => {
    const heartbeats = {
      node1: { sentAt: NOW - 30_000, token: 'a/9' },
      node2: { peers: { node1: { token: 'a/9', silentForMs: 10_000 } } },
    };
    expect(
      stopEvidence(
        'node1',
        'db',
        { ...initialGroupState(config().groups[0]!, 0), ...moving },
        observe({ heartbeats }).nodes,
        NOW,
        config().timing,
      ),
    ).toMatch(/peer node2 saw/);
    // A peer that saw an *older* renewal proves nothing.
    const stale = { ...heartbeats, node2: { peers: { node1: { token: 'a/8', silentForMs: 60_000 } } } };
    const waiting = find(decide(observe({ state: moving, heartbeats: stale })), 'update')?.set;
    expect(waiting).toMatchObject({ mayRun: ['node1'], suspects: { node1: { token: 'a/9' } } });
    expect(find(decide(observe({ state: moving, heartbeats })), 'update')?.set.mayRun).toEqual([]);
  });

  it('without a watchdog, waits for the lease plus the longest self-fence; with a hard fence, never trusts silence', () => {
    const noWatchdog = { fence: { maxStopMs: 20_000 } };
    const heartbeats = (silentForMs: number) => ({
      node1: { sentAt: NOW - 31_000, token: 'a/9', ...noWatchdog },
      node2: { peers: { node1: { token: 'a/9', silentForMs } } },
    });
    expect(
      find(decide(observe({ state: moving, heartbeats: heartbeats(10_000) })), 'update')?.set.mayRun,
    ).toEqual(['node1']);
    expect(
      find(decide(observe({ state: moving, heartbeats: heartbeats(30_000) })), 'update')?.set.mayRun,
    ).toEqual([]);
    // An agent too old to say: the group's stop timeouts (300 s by default) count.
    const old = {
      node1: { sentAt: NOW - 30_000, token: 'a/9', fence: undefined },
      node2: { peers: { node1: { token: 'a/9', silentForMs: 30_000 } } },
    };
    expect(find(decide(observe({ state: moving, heartbeats: old })), 'update')?.set.mayRun).toEqual([
      'node1',
    ]);
    const fenced = decide(
      observe({ cfg: config({ fencing: 'stop-instance' }), state: moving, heartbeats: heartbeats(60_000) }),
    );
    expect(types(fenced)).toContain('fence-instance');
    expect(find(fenced, 'update')?.set.mayRun).toBeUndefined();
  });

  it('takes a group from a silent owner on a peer’s proof once the owner’s own send time agrees (the honest path)', () => {
    // Lease 10 s, skew 500 ms: the owner's own renewal was sent 10.5 s ago by the controller's
    // clock and a peer saw its token unchanged for 10 s: one reconcile moves the group.
    const heartbeats = {
      node1: { sentAt: NOW - 10_500, token: 'a/5' },
      node2: { peers: { node1: { token: 'a/5', silentForMs: 10_000 } } },
    };
    const plan = decide(observe({ state: online('node1'), heartbeats }));
    expect(find(plan, 'takeover')).toMatchObject({ to: 'node2' });
    // and the next round confirms the stop on the same proof, without waiting.
    const next = decide(observe({ state: { ...moving, mayRun: ['node1', 'node2'] }, heartbeats }));
    expect(find(next, 'update')?.set.mayRun).toEqual(['node2']);
    // Only doubted, not proven: look again when the owner's renewal stops counting as recent.
    const doubted = {
      node1: { sentAt: NOW - 9_000, token: 'a/5' },
      node2: { peers: { node1: { token: 'a/5', silentForMs: 6_000 } } },
    };
    const waiting = decide(observe({ state: online('node1'), heartbeats: doubted }));
    expect(waiting.actions).toEqual([]);
    expect(waiting.requeueAfterMs).toBe(1_501);
    // At the defaults (lease 3.75 s, heartbeat 1.75 s) a peer reports its doubt 750 ms before the
    // lease, sooner than two heartbeats: reconcile then waits for the owner's lease to run out.
    const defaults = parseClusterConfig({
      ...config(),
      timing: { leaseMs: 3_750, heartbeatIntervalMs: 1_750 },
    } as never);
    const early = {
      node1: { sentAt: NOW - 3_100, token: 'a/5', leaseMs: 3_750 },
      node2: { peers: { node1: { token: 'a/5', silentForMs: 3_000 } }, leaseMs: 3_750 },
    };
    const pending = decide(observe({ cfg: defaults, state: online('node1'), heartbeats: early }));
    expect(pending.actions).toEqual([]);
    expect(pending.requeueAfterMs).toBe(1_151);
  });

  it('never demotes a live owner on one node’s word: a false silence claim in a standby’s own item takes nothing (finding 3)', () => {
    // node2 (a bug, a bad clock, a compromised instance) writes that node1's current renewal has
    // not changed for a minute; node1 renewed 1 s ago by its own clock.
    const forged = {
      node1: { sentAt: NOW - 1_000, token: 'a/5' },
      node2: { peers: { node1: { token: 'a/5', silentForMs: 60_000 } } },
    };
    const plan = decide(observe({ state: online('node1'), heartbeats: forged }));
    expect(find(plan, 'takeover')).toBeUndefined();
    expect(find(plan, 'update')).toBeUndefined();
    // Not even a doubt: a silence longer than the owner's own send time allows keeps no invocation
    // waiting with the lock.
    expect(plan.requeueAfterMs).toBeUndefined();
    // Nor while a failover is under way: node1, alive, is stopped through its guard first.
    const moving2 = decide(observe({ state: moving, heartbeats: forged }));
    expect(types(moving2)).toEqual(['deactivate', 'update']);
    expect(
      stopEvidence(
        'node1',
        'db',
        { ...initialGroupState(config().groups[0]!, 0), ...moving },
        observe({ heartbeats: forged }).nodes,
        NOW,
        config().timing,
      ),
    ).toBeUndefined();
  });

  it('accepts reconcile’s own sight of the unchanged renewal as proof without any peer', () => {
    const heartbeats = { node1: { sentAt: NOW - 2_000, token: 'a/9' } };
    const state = {
      ...initialGroupState(config().groups[0]!, 0),
      ...moving,
      suspects: { node1: { token: 'a/9', firstSeenAt: NOW - 10_500 } },
    };
    expect(stopEvidence('node1', 'db', state, observe({ heartbeats }).nodes, NOW, config().timing)).toMatch(
      /reconcile saw node1's renewal a\/9 unchanged for 10500 ms/,
    );
  });

  it('accepts the agent’s own report at the current epoch, or a stopped instance', () => {
    const report = decide(
      observe({ state: moving, heartbeats: { node1: { groups: { db: { epoch: 4, state: 'stopped' } } } } }),
    );
    expect(types(report)).toEqual(['update']);
    const older = decide(
      observe({ state: moving, heartbeats: { node1: { groups: { db: { epoch: 3, state: 'stopped' } } } } }),
    );
    expect(types(older)).toEqual(['deactivate', 'update']);
    const stopped = decide(
      observe({
        state: moving,
        heartbeats: { node1: { sentAt: NOW - 60_000 } },
        nodes: { node1: { instance: { state: 'stopped', describedAt: NOW } } },
      }),
    );
    expect(find(stopped, 'update')?.set.mayRun).toEqual([]);
  });

  it('takes a stopped instance for stopped only if the node has not renewed since the describe (skew included)', () => {
    const timing = config().timing;
    const evidence = (sentAt: number, describedAt: number) =>
      stopEvidence(
        'node1',
        'db',
        { ...initialGroupState(config().groups[0]!, 0), ...moving },
        observe({
          heartbeats: { node1: { sentAt } },
          nodes: { node1: { instance: { state: 'stopped', describedAt } } },
        }).nodes,
        NOW,
        timing,
        { trustSilence: false },
      );
    // Described 5 s ago; the node renewed 1 s ago: it was started again after the describe.
    expect(evidence(NOW - 1_000, NOW - 5_000)).toBeUndefined();
    // Renewed just before the describe, but within the clock skew of it: it may have been after.
    expect(evidence(NOW - 5_000 - timing.maxClockSkewMs + 1, NOW - 5_000)).toBeUndefined();
    // Renewed before the describe by more than the skew: the stopped state counts.
    expect(evidence(NOW - 5_000 - timing.maxClockSkewMs - 1, NOW - 5_000)).toMatch(
      /instance i-1 is stopped \(described after the node's last renewal\)/,
    );
    // Never renewed at all: the stopped state counts.
    const noRenewal = observe({
      heartbeats: { node1: null },
      nodes: { node1: { instance: { state: 'terminated', describedAt: NOW - 5_000 } } },
    }).nodes;
    expect(
      stopEvidence(
        'node1',
        'db',
        { ...initialGroupState(config().groups[0]!, 0), ...moving },
        noRenewal,
        NOW,
        timing,
      ),
    ).toMatch(/is terminated/);
  });

  it('hard-fences an unreachable previous owner when the group allows it', () => {
    const plan = decide(
      observe({
        cfg: config({ fencing: 'stop-instance' }),
        state: moving,
        heartbeats: { node1: { sentAt: NOW - 60_000 } },
      }),
    );
    expect(find(plan, 'fence-instance')).toMatchObject({ node: 'node1' });
  });

  it('then starts the new owner: recorded in mayRun first, resources in order, then Online', () => {
    const plan = decide(observe({ state: { ...moving, mayRun: [] } }));
    expect(plan.actions.map((a) => (a.type === 'activate' ? `activate ${a.resource}` : a.type))).toEqual([
      'update',
      'activate vip',
      'activate eip',
      'activate app',
      'update',
      'alert',
    ]);
    expect(plan.actions[0]).toMatchObject({ set: { mayRun: ['node2'], lastOwner: 'node2' } });
    expect(plan.actions[4]).toMatchObject({ set: { phase: 'Online' } });
  });
});

describe('monitors and the recovery policy', () => {
  const failing = {
    heartbeats: { node1: { monitors: { pid: { status: 'error' as const, detail: 'no process' } } } },
  };

  it('restarts the monitored resource up to N times', () => {
    const plan = decide(observe({ state: online('node1'), ...failing }));
    expect(plan.actions.map((a) => ('resource' in a ? `${a.type} ${a.resource}` : a.type))).toEqual([
      'update',
      'alert',
      'deactivate app',
      'activate app',
      'alert',
    ]);
    expect(find(plan, 'update')?.set).toMatchObject({ restarts: { pid: 1 }, restartedAt: { pid: NOW } });
  });

  it('ignores the monitor while it has not had time to see the restart', () => {
    const plan = decide(
      observe({
        state: online('node1', { restarts: { pid: 1 }, restartedAt: { pid: NOW - 3000 } }),
        ...failing,
      }),
    );
    expect(types(plan)).not.toContain('activate');
  });

  it('then fails over M times, then takes the final action', () => {
    const exhausted = online('node1', { restarts: { pid: 2 } });
    const failover = decide(observe({ state: exhausted, ...failing }));
    expect(find(failover, 'update')?.set).toMatchObject({
      failovers: { pid: 1 },
      blocked: { node1: { reason: expect.stringMatching(/pid/) } },
    });
    const final = decide(observe({ state: { ...exhausted, failovers: { pid: 1 } }, ...failing }));
    expect(find(final, 'takeover')).toMatchObject({ to: null, set: { desired: 'offline' } });
    expect(find(final, 'update')?.set.finalActionTaken).toBe(true);
  });

  it('does not move on a warning, and onApiError decides what an API failure means', () => {
    const cfg = (onApiError: string) =>
      config({ monitors: [{ type: 'resource', name: 'vipw', resource: 'vip', onApiError }] });
    const checks = { vip: { status: 'error' as const, detail: 'Throttling' } };
    const warn = decide(observe({ cfg: cfg('warn'), state: online('node1'), checks }));
    expect(types(warn)).toEqual(['update', 'alert']);
    expect(find(warn, 'alert')?.kind).toBe('monitor.warning');
    expect(decide(observe({ cfg: cfg('ignore'), state: online('node1'), checks })).actions).toEqual([]);
    // recover: an error like any other; this policy (0 restarts, 1 failover) moves the group.
    const recover = decide(observe({ cfg: cfg('recover'), state: online('node1'), checks }));
    expect(find(recover, 'update')?.set).toMatchObject({
      failovers: { vipw: 1 },
      blocked: { node1: { reason: 'vipw: Throttling' } },
    });
  });

  it('puts a drifted route back (restart of the entry point) and alerts', () => {
    const plan = decide(
      observe({
        state: online('node1'),
        checks: { vip: { status: 'drift', detail: 'route points to eni-2' } },
      }),
    );
    expect(find(plan, 'activate')).toMatchObject({ resource: 'vip', node: 'node1' });
    expect(plan.actions.filter((a) => a.type === 'alert').map((a) => (a as { kind: string }).kind)).toEqual([
      'monitor.error',
      'resource.restarted',
    ]);
  });

  it('resets counters once the group has been healthy for stableAfterMs', () => {
    const plan = decide(
      observe({ state: online('node1', { restarts: { pid: 2 }, healthySince: NOW - 600_000 }) }),
    );
    expect(find(plan, 'update')?.set).toMatchObject({ restarts: {}, failovers: {}, blocked: {} });
  });

  it('times monitors tied to a resource as active, others as always', () => {
    const [pid] = config().groups[0]!.monitors;
    expect(monitorTiming(pid!)).toBe('active');
    expect(monitorTiming({ ...pid!, resource: undefined } as never)).toBe('always');
  });

  it('sets a node aside after repeated activation failures', () => {
    const state = { ...initialGroupState(config().groups[0]!, 0), ...online('node1') };
    const action: Action = { type: 'activate', node: 'node1', resource: 'eip', why: '' };
    let patch = patchForFailedAction(state, action, 'boom', NOW);
    expect(patch.restarts).toEqual({ 'activate:eip': 1 });
    for (let i = 1; i < MAX_ACTIVATION_ATTEMPTS; i++)
      patch = patchForFailedAction({ ...state, ...patch }, action, 'boom', NOW);
    expect(patch.blocked?.node1?.reason).toMatch(/activating eip failed 2 times: boom/);
    const stop = patchForFailedAction(
      state,
      { type: 'deactivate', node: 'node2', resource: 'app', why: '' },
      'timeout',
      NOW,
    );
    expect(stop).toMatchObject({
      stopFailures: { node2: 1 },
      lastError: 'deactivate app on node2 failed: timeout',
    });
  });

  it('does not count an activation that AWS throttled or timed out against the node (found at 30 % throttling: the group was stranded)', () => {
    // A failover in progress: node2 is taking over, its first activation was refused once already.
    const state: GroupState = {
      ...initialGroupState(config().groups[0]!, 0),
      ...online('node2'),
      phase: 'Starting',
      restarts: { 'activate:vip': 1 },
    };
    const action: Action = { type: 'activate', node: 'node2', resource: 'vip', why: '' };
    let patch: GroupPatch = {};
    for (let i = 0; i < MAX_ACTIVATION_ATTEMPTS + 3; i++)
      patch = patchForFailedAction({ ...state, ...patch }, action, 'THROTTLED: ec2:ReplaceRoute', NOW, true);
    // The earlier count is kept, nothing is added, the node is not set aside.
    expect(patch).toEqual({ lastError: 'activate vip on node2 failed: THROTTLED: ec2:ReplaceRoute' });
    // A failure of the node's own kind still counts, on top of the earlier one: the node is set aside.
    const counted = patchForFailedAction({ ...state, ...patch }, action, 'exit 1', NOW, false);
    expect(counted.blocked?.node2?.reason).toMatch(/activating vip failed 2 times: exit 1/);
  });

  it('gives a restart back to its monitor when AWS throttled the restart, and only that one', () => {
    const state = {
      ...initialGroupState(config().groups[0]!, 0),
      ...online('node1'),
      restarts: { 'check:vip': 2, other: 1 },
    };
    const restart: Action = {
      type: 'activate',
      node: 'node1',
      resource: 'vip',
      why: '',
      restartOf: 'check:vip',
    };
    expect(patchForFailedAction(state, restart, 'THROTTLED', NOW, true).restarts).toEqual({
      'check:vip': 1,
      other: 1,
    });
    // Spent for good when the activation itself failed.
    expect(patchForFailedAction(state, restart, 'exit 1', NOW, false).restarts).toEqual({
      'check:vip': 2,
      other: 1,
      'activate:vip': 1,
    });
    // Never below zero, and an activation that was no restart gives nothing back.
    expect(
      patchForFailedAction({ ...state, restarts: {} }, restart, 'THROTTLED', NOW, true).restarts,
    ).toBeUndefined();
    const { restartOf: _, ...plain } = restart;
    expect(patchForFailedAction(state, plain, 'THROTTLED', NOW, true).restarts).toBeUndefined();
  });

  it('marks the first activation of a restart with the monitor that spent its budget', () => {
    const base = online('node1', { restarts: {} });
    const plan = decide(
      observe({ state: base, checks: { vip: { status: 'drift', detail: 'points elsewhere' } } }),
    );
    const activations = plan.actions.filter((a) => a.type === 'activate');
    expect(activations.length).toBeGreaterThan(0);
    expect(activations[0]).toMatchObject({ resource: 'vip', restartOf: 'check:vip' });
  });
});

describe('operator requests', () => {
  const req = (
    kind: 'move' | 'start' | 'stop' | 'suspend' | 'resume',
    to?: string,
    createdAt = NOW - 1_000,
  ) => [{ id: 'r1', kind, group: 'db', createdAt, ...(to ? { to } : {}) }];

  it('rejects a request older than 5 minutes as expired instead of carrying it out late', () => {
    // Before: a move whose --wait timed out stayed pending and a later reconcile carried it out.
    const late = decide(
      observe({ state: online('node1'), requests: req('move', 'node2', NOW - 5 * 60_000 - 1) }),
    );
    expect(late.actions).toEqual([
      {
        type: 'complete-request',
        id: 'r1',
        outcome: 'rejected',
        message: expect.stringMatching(
          /^expired: move to node2 was recorded 300 s ago, more than the 300 s a request waits/,
        ),
      },
    ]);
    const maintenance = online('node1', { mode: 'maintenance' as const });
    expect(
      find(
        decide(observe({ state: maintenance, requests: req('resume', undefined, 0) })),
        'complete-request',
      ),
    ).toMatchObject({
      outcome: 'rejected',
      message: expect.stringMatching(/^expired: resume/),
    });
    const inTime = decide(
      observe({ state: online('node1'), requests: req('move', 'node2', NOW - 5 * 60_000 + 1) }),
    );
    expect(types(inTime)).toEqual(['takeover', 'alert', 'complete-request']);
  });

  it('moves to an eligible node and rejects an ineligible one with the reason', () => {
    const plan = decide(observe({ state: online('node1'), requests: req('move', 'node2') }));
    expect(types(plan)).toEqual(['takeover', 'alert', 'complete-request']);
    const rejected = decide(
      observe({
        state: online('node1'),
        requests: req('move', 'node2'),
        heartbeats: { node2: { isolated: true } },
      }),
    );
    expect(rejected.actions).toEqual([
      {
        type: 'complete-request',
        id: 'r1',
        outcome: 'rejected',
        message: expect.stringMatching(/cannot move db to node2: node2 is isolated/),
      },
    ]);
    expect(find(decide(observe({ requests: req('move', 'node3') })), 'complete-request')?.message).toMatch(
      /not a node of group db/,
    );
  });

  it('stops, suspends and resumes', () => {
    expect(
      find(decide(observe({ state: online('node1'), requests: req('stop') })), 'takeover'),
    ).toMatchObject({ to: null, set: { desired: 'offline' } });
    expect(
      find(decide(observe({ state: online('node1'), requests: req('suspend') })), 'update')?.set,
    ).toEqual({ mode: 'maintenance' });
    const maintenance = online('node1', { mode: 'maintenance' as const });
    // In maintenance nothing moves, even with a dead owner; other requests are refused with the fix.
    expect(decide(observe({ state: maintenance, heartbeats: { node1: { sentAt: 0 } } })).actions).toEqual([]);
    expect(
      find(decide(observe({ state: maintenance, requests: req('move', 'node2') })), 'complete-request')
        ?.message,
    ).toMatch(/failoverctl resume db/);
    expect(find(decide(observe({ state: maintenance, requests: req('resume') })), 'update')?.set).toEqual({
      mode: 'auto',
    });
  });

  it('an operator start clears set-aside nodes and counters', () => {
    const plan = decide(
      observe({
        state: { desired: 'offline', blocked: { node1: { reason: 'x', at: NOW } } },
        requests: req('start'),
      }),
    );
    expect(find(plan, 'update')?.set).toMatchObject({ desired: 'online', blocked: {}, restarts: {} });
  });
});

describe('determinism', () => {
  it('the same observation gives the same plan', () => {
    const obs = observe({ state: online('node1'), heartbeats: { node1: { sentAt: NOW - 20_000 } } });
    expect(decide(structuredClone(obs))).toEqual(decide(structuredClone(obs)));
  });
});

describe('a takeover starts the group on its own read when every stop is proven', () => {
  const started = ['takeover', 'alert', 'activate', 'activate', 'activate', 'update', 'alert'];

  it('an owner that stopped everything and left: one write names node2, drops node1 and pins its last renewal', () => {
    const plan = decide(
      observe({
        state: online('node1', { suspects: {}, stopFailures: { node1: 1 } }),
        heartbeats: { node1: { state: 'leaving', groups: { db: { epoch: 3, state: 'stopped' } } } },
      }),
    );
    expect(types(plan)).toEqual(started);
    const t = find(plan, 'takeover')!;
    expect(t).toMatchObject({
      to: 'node2',
      set: { owner: 'node2', phase: 'Starting', mayRun: ['node2'], lastOwner: 'node2', stopFailures: {} },
      pins: [{ node: 'node1', token: 'node1/1' }],
    });
    expect(plan.actions.filter((a) => a.type === 'activate').map((a) => `${a.resource}@${a.node}`)).toEqual([
      'vip@node2',
      'eip@node2',
      'app@node2',
    ]);
    expect(plan.actions.at(-2)).toMatchObject({ type: 'update', set: { phase: 'Online' } });
    expect(plan.actions.at(-1)).toMatchObject({ type: 'alert', kind: 'failover.completed' });
    expect((plan.actions.at(-1) as { message: string }).message).toMatch(/epoch 4/);
    expect(plan.reasons.join('\n')).toMatch(/node1 has stopped: agent of node1 stopped everything and left/);
  });

  it('a silent owner proven stopped by a peer and its own send time: the same, with the suspect cleared', () => {
    const plan = decide(
      observe({
        state: online('node1', { suspects: { node1: { token: 'node1/1', firstSeenAt: NOW - 1_000 } } }),
        heartbeats: {
          node1: { sentAt: NOW - 20_000 },
          node2: { peers: { node1: { token: 'node1/1', silentForMs: 15_000 } } },
        },
      }),
    );
    expect(types(plan)).toEqual(started);
    expect(find(plan, 'takeover')).toMatchObject({
      set: { mayRun: ['node2'], suspects: {} },
      pins: [{ node: 'node1', token: 'node1/1' }],
    });
  });

  it('proven only as of the read: a silence that is proven at the decision but not at the read is no merge', () => {
    const heartbeats = {
      node1: { sentAt: NOW - 14_000 },
      node2: { peers: { node1: { token: 'node1/1', silentForMs: 13_000 } } },
    };
    const atRead = decide(observe({ state: online('node1'), heartbeats, readAt: NOW }));
    expect(find(atRead, 'takeover')?.pins).toEqual([{ node: 'node1', token: 'node1/1' }]);
    // The same heartbeats from a read sent 4 s before it came back: node1's send was then 10 s old,
    // not lease + skew; by the answer its lease had run out (a takeover), its stop is not proven.
    const early = decide(observe({ state: online('node1'), heartbeats, readAt: NOW - 4_000, heardAt: NOW }));
    expect(types(early)).toEqual(['takeover', 'alert']);
    expect(find(early, 'takeover')?.pins).toBeUndefined();
    expect(find(early, 'takeover')?.set.mayRun).toBeUndefined();
  });

  it('an owner whose lease ran out but whose stop is not proven yet: the takeover alone, demotion waits', () => {
    const plan = decide(observe({ state: online('node1'), heartbeats: { node1: { sentAt: NOW - 10_600 } } }));
    expect(types(plan)).toEqual(['takeover', 'alert']);
    expect(find(plan, 'takeover')?.pins).toBeUndefined();
    expect(find(plan, 'takeover')?.set.mayRun).toBeUndefined();
  });

  it('fencing: stop-instance: silence is never enough, so the takeover goes alone', () => {
    const plan = decide(
      observe({
        cfg: config({ fencing: 'stop-instance' }),
        state: online('node1'),
        heartbeats: {
          node1: { sentAt: NOW - 20_000 },
          node2: { peers: { node1: { token: 'node1/1', silentForMs: 15_000 } } },
        },
      }),
    );
    expect(types(plan)).toEqual(['takeover', 'alert']);
    // Its instance described stopped after its last renewal is proof: then the group starts at once.
    const stopped = decide(
      observe({
        cfg: config({ fencing: 'stop-instance' }),
        state: online('node1'),
        heartbeats: { node1: { sentAt: NOW - 20_000 } },
        nodes: { node1: { instance: { state: 'stopped', describedAt: NOW - 100 } } },
      }),
    );
    expect(types(stopped)).toEqual(started);
    expect(find(stopped, 'takeover')?.pins).toEqual([{ node: 'node1', token: 'node1/1' }]);
  });

  it('a first start (nobody may run it yet): no pins, the group comes up on the takeover', () => {
    const plan = decide(observe({ state: { desired: 'online' } }));
    expect(types(plan)).toEqual(started);
    expect(find(plan, 'takeover')).toMatchObject({ to: 'node1', set: { mayRun: ['node1'] }, pins: [] });
  });
});
