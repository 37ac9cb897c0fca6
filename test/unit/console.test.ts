/**
 * The pure parts of the console, the alerts and the metrics: the failover timeline read from the
 * audit log, the health verdict of `status`, the Host check, node labels in messages, the alert
 * texts for every kind, the event schema file, and the metrics derived from what reconcile records.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HEALTH_EXIT, type StatusView, statusHealth } from '../../cli/commands/status';
import { hostAllowed } from '../../cli/console/server';
import { nodeLabeler } from '../../cli/console/snapshot';
import { failoverTimeline } from '../../cli/console/timeline';
import { transitionEventJsonSchema } from '../../controller/notify/event-schema';
import { ALERT_KINDS, SEVERITY, subjectOf, textOf, transitionDetail } from '../../controller/notify/message';
import { ControllerMetrics, METRICS } from '../../controller/reconcile/metrics';
import type { AuditEvent } from '../../shared/core/ports';

const T0 = Date.UTC(2026, 10, 23, 13, 40, 0);
const ev = (at: number, kind: string, extra: Partial<AuditEvent> = {}): AuditEvent => ({
  at: T0 + at,
  cluster: 'orders',
  group: 'db',
  kind,
  message: kind,
  ...extra,
});
const action = (
  at: number,
  epoch: number,
  act: string,
  node: string,
  resource: string,
  type: string,
  ms: number,
) => ev(at, 'action', { epoch, data: { action: act, node, resource, resourceType: type, ms } });

/** A silent crash of node1 as reconcile records it: decision, entry points in parallel, app start. */
const silentCrash: AuditEvent[] = [
  ev(0, 'decision', {
    epoch: 6,
    data: {
      actions: [{ type: 'takeover', to: 'node2', why: 'node1 is silent; moving to node2' }],
      invokedAt: T0 - 200,
      owner: 'node1',
      ownerLastRenewalAt: T0 - 3_800,
    },
  }),
  ev(300, 'decision', {
    epoch: 7,
    data: {
      actions: [
        { type: 'activate', resource: 'vip1' },
        { type: 'update' },
        { type: 'alert', kind: 'failover.completed' },
      ],
      owner: 'node2',
    },
  }),
  action(1_300, 7, 'activate', 'node2', 'vip1', 'vip', 400),
  action(1_250, 7, 'activate', 'node2', 'eip1', 'eip', 350),
  action(1_200, 7, 'activate', 'node2', 'dns1', 'dns', 300),
  action(1_960, 7, 'activate', 'node2', 'app', 'exec', 630),
];

describe('failover timeline from the audit log', () => {
  it('breaks a failover down into detection, decision, demote, each entry point and the application start', () => {
    const [f] = failoverTimeline([...silentCrash].reverse());
    expect(f).toMatchObject({
      group: 'db',
      epoch: 7,
      kind: 'failover',
      from: 'node1',
      to: 'node2',
      outcome: 'completed',
      totalMs: 1_960,
      reason: 'node1 is silent; moving to node2',
    });
    expect(f!.parts).toEqual([
      { label: "detection (node1's last renewal)", ms: 3_800 },
      { label: 'decision', ms: 200 },
      { label: 'demote node1', ms: 900 },
      // In the order they finished (they ran in parallel).
      { label: 'dns dns1', ms: 300 },
      { label: 'eip eip1', ms: 350 },
      { label: 'vip vip1', ms: 400 },
      { label: 'application start (app)', ms: 630 },
    ]);
    // The change ends with the last action of the plan that announced failover.completed.
    expect(f!.endedAt).toBe(T0 + 1_960);
  });

  it('tells a start, a requested move, a failed and a superseded change apart, newest first', () => {
    const events: AuditEvent[] = [
      ev(-60_000, 'decision', {
        epoch: 0,
        data: { actions: [{ type: 'takeover', to: 'node1', why: 'first eligible' }], owner: null },
      }),
      ev(-59_000, 'decision', {
        epoch: 1,
        data: { actions: [{ type: 'alert', kind: 'failover.completed' }] },
      }),
      ev(-30_000, 'decision', {
        epoch: 1,
        data: {
          actions: [{ type: 'takeover', to: 'node2', why: 'requested' }],
          owner: 'node1',
          ownerLastRenewalAt: T0 - 30_500,
          request: { kind: 'move', createdAt: T0 - 30_300 },
        },
      }),
      ev(-20_000, 'decision', {
        epoch: 2,
        data: { actions: [{ type: 'takeover', to: 'node1', why: 'node2 lost its lease' }], owner: 'node2' },
      }),
      ev(-19_000, 'decision', { epoch: 3, data: { actions: [{ type: 'alert', kind: 'failover.failed' }] } }),
      // Another group's events never mix in; an update without takeover is no failover.
      {
        ...ev(-10_000, 'decision', {
          epoch: 0,
          data: { actions: [{ type: 'takeover', to: 'node9' }], owner: null },
        }),
        group: 'web',
      },
      ev(-5_000, 'decision', { epoch: 3, data: { actions: [{ type: 'update' }], owner: null } }),
    ];
    const all = failoverTimeline(events);
    expect(all.map((f) => `${f.group} ${f.kind} ${f.from ?? '-'}->${f.to} ${f.outcome}`)).toEqual([
      'web start -->node9 in progress',
      'db failover node2->node1 failed',
      'db move node1->node2 superseded',
      'db start -->node1 completed',
    ]);
    expect(all[2]!.parts[0]).toEqual({ label: 'move request waited', ms: 300 });
    expect(failoverTimeline(events, 2)).toHaveLength(2);
  });
});

const view = (patch: {
  groups?: Partial<StatusView['groups'][number]>[];
  nodes?: Partial<StatusView['nodes'][number]>[];
}) =>
  ({
    cluster: 'orders',
    configVersion: 1,
    appliedAt: '',
    table: 't',
    groups: (patch.groups ?? [{}]).map((g) => ({
      name: 'db',
      owner: 'node1',
      phase: 'Online',
      epoch: 1,
      mode: 'auto',
      desired: 'online',
      since: '',
      mayRun: [],
      resources: [],
      monitors: {},
      lastError: null,
      lockedBy: null,
      ...g,
    })),
    nodes: (patch.nodes ?? [{}]).map((n) => ({
      name: 'node1',
      instanceId: 'i-1',
      az: 'a',
      state: 'running',
      leaseAgeMs: 1,
      isolated: false,
      agentVersion: null,
      watchdog: 'none',
      monitors: {},
      groups: {},
      ...n,
    })),
  }) as StatusView;

describe('status health (exit codes for monitoring scripts)', () => {
  it('is ok when every group is online and every node running, else degraded or critical with the reasons', () => {
    expect(statusHealth(view({}))).toEqual({ health: 'ok', reasons: [] });
    expect(statusHealth(view({ nodes: [{ state: 'expired' }, { name: 'node2', isolated: true }] }))).toEqual({
      health: 'degraded',
      reasons: ['node node1 is expired', 'node node2 is isolated'],
    });
    expect(
      statusHealth(view({ groups: [{ phase: 'Starting', monitors: { pid: 'warn' } }] })).reasons,
    ).toEqual(['group db is Starting', 'group db: monitor pid warn']);
    expect(statusHealth(view({ groups: [{ mode: 'maintenance' }] })).health).toBe('degraded');
    const critical = statusHealth(
      view({
        groups: [
          { phase: 'Failed', lastError: 'no eligible node' },
          { name: 'web', phase: 'Offline' },
        ],
        nodes: [{ state: 'fenced' }],
      }),
    );
    expect(critical.health).toBe('critical');
    expect(critical.reasons).toEqual([
      'group db is Failed: no eligible node',
      'group web is Offline',
      'node node1 is fenced',
    ]);
    expect(HEALTH_EXIT).toEqual({ ok: 0, degraded: 1, critical: 2 });
  });
});

describe('console server helpers', () => {
  it('accepts IP literals and allowed names in the Host header, never other DNS names', () => {
    const allowed = new Set(['localhost', 'console.internal']);
    for (const host of ['127.0.0.1:8080', '10.1.2.3', '[::1]:8080', 'localhost:8080', 'Console.Internal:80'])
      expect(hostAllowed(host, allowed), host).toBe(true);
    for (const host of ['attacker.example:8080', 'localhost.attacker.example', '', '127.0.0.1:8080:1', 'a b'])
      expect(hostAllowed(host, allowed), host).toBe(false);
  });

  it('puts node names beside the ENIs, instances and addresses a message mentions, once', () => {
    const label = nodeLabeler([
      { name: 'node1', eni: 'eni-0aaa', instanceId: 'i-0aaa', privateIp: '10.0.1.10' },
      { name: 'node2', instanceId: 'i-0bbb' },
    ]);
    expect(label('172.16.0.10/32 -> eni-0aaa in rtb-1')).toBe('172.16.0.10/32 -> eni-0aaa (node1) in rtb-1');
    expect(label('A 10.0.1.10 on i-0bbb, not eni-0ccc')).toBe(
      'A 10.0.1.10 (node1) on i-0bbb (node2), not eni-0ccc',
    );
    expect(label('eni-0aaa (node1) already')).toBe('eni-0aaa (node1) already');
  });
});

describe('alerts people can read', () => {
  it('has a severity, a subject and a sentence with what to do for every kind, without empty fields', () => {
    for (const kind of ALERT_KINDS) {
      const d = transitionDetail(
        {
          kind,
          cluster: 'orders',
          group: 'db',
          epoch: 7,
          message: `${kind} happened`,
          at: T0,
          node: 'node2',
          instanceId: 'i-0bbb',
        },
        { region: 'eu-west-1', account: '123456789012' },
      );
      expect(d.severity).toBe(SEVERITY[kind]);
      const subject = subjectOf(d);
      expect(subject.length).toBeLessThanOrEqual(100);
      expect(subject).toMatch(/^\[failover\] (CRITICAL|WARNING|INFO) orders\/db: /);
      const text = textOf(d);
      expect(text, kind).toMatch(/^[A-Z].*\.\n\nWhat to do: \S/);
      expect(text).not.toMatch(/undefined|null|\[object/);
      expect(text).toMatch(/\nRegion: eu-west-1\nAccount: 123456789012\nTime: 2026-11-23T13:40:00.000Z\n/);
    }
  });

  it('says where a failover went, from where, why and how long it took', () => {
    const started = transitionDetail({
      kind: 'failover.started',
      cluster: 'orders',
      group: 'db',
      epoch: 7,
      message: 'm',
      at: T0,
      node: 'node2',
      previousOwner: 'node1',
      instanceId: 'i-0bbb',
      reason: "node1's lease expired",
    });
    expect(textOf(started).split('\n')[0]).toBe(
      "Group db of cluster orders started moving from node1 to node2 (instance i-0bbb) at 2026-11-23 13:40:00 UTC, because node1's lease expired.",
    );
    const done = transitionDetail({
      kind: 'failover.completed',
      cluster: 'orders',
      group: 'db',
      message: 'm',
      at: T0,
      node: 'node2',
      startedAt: T0 - 2_150,
    });
    expect(done).toMatchObject({ startedAt: '2026-11-23T13:39:57.850Z', durationMs: 2150 });
    expect(textOf(done)).toMatch(
      /online on node2 since 2026-11-23 13:40:00 UTC, 2\.1 s after the failover started\./,
    );
  });

  it('keeps schema/transition-event.schema.json current, with a branch for every kind', () => {
    const file = JSON.parse(
      readFileSync(new URL('../../schema/transition-event.schema.json', import.meta.url), 'utf8'),
    );
    expect(file, 'run "npm run schema"').toEqual(transitionEventJsonSchema());
    expect(file.oneOf.map((b: { title: string }) => b.title)).toEqual(ALERT_KINDS);
  });
});

describe('controller metrics from what reconcile records', () => {
  it('derives failover parts, recovery actions, monitor errors, leases and outcomes with low-cardinality dimensions', () => {
    const m = new ControllerMetrics();
    for (const e of silentCrash) m.observeAudit(e);
    const transition = { cluster: 'orders', group: 'db', message: 'm', epoch: 8 };
    m.observeTransition({ ...transition, kind: 'failover.started', at: T0 + 5_000, previousOwner: 'node2' });
    m.observeTransition({ ...transition, kind: 'failover.started', at: T0 + 5_000 }); // a start, no failover
    m.observeTransition({ ...transition, kind: 'failover.completed', at: T0 + 6_000, startedAt: T0 + 3_000 });
    m.observeTransition({ ...transition, kind: 'resource.restarted', at: T0 + 7_000 });
    m.observeTransition({ ...transition, kind: 'monitor.error', at: T0 + 7_000 });
    m.observeTransition({ ...transition, kind: 'failover.failed', at: T0 + 8_000 });
    m.observeAudit(action(8_000, 8, 'deactivate', 'node1', 'app', 'exec', 640));
    m.observeHeartbeats('orders', { node1: { sentAt: T0 - 500, isolated: false } as never }, T0);
    m.observeHeartbeats('orders', { node1: { sentAt: T0 - 100, isolated: true } as never }, T0);
    m.throttled();
    m.observeResult({
      trigger: 'schedule',
      clusters: [
        {
          cluster: 'orders',
          groups: [
            { group: 'db', status: 'converged', phase: 'Online', rounds: 1, actions: 0 },
            { group: 'web', status: 'error', phase: 'Failed', rounds: 1, actions: 0 },
            {
              group: 'batch',
              status: 'converged',
              phase: 'Offline',
              desired: 'offline',
              rounds: 1,
              actions: 0,
            },
          ],
        },
      ],
      failed: [{ cluster: 'other', error: 'x' }],
    });
    const data = m.drain();
    const value = (name: string, dims?: Record<string, string>) =>
      data
        .filter((d) => d.name === name && (!dims || JSON.stringify(d.dimensions) === JSON.stringify(dims)))
        .map((d) => d.value);
    const db = { cluster: 'orders', group: 'db' };
    expect(value('FailoverDetectionTime', db)).toEqual([3_800]);
    expect(value('FailoverDecisionTime', db)).toEqual([200]);
    expect(value('EntryPointSwitchTime', { ...db, type: 'vip' })).toEqual([400]);
    expect(value('ApplicationStartTime', db)).toEqual([630]);
    expect(value('DemoteTime', db)).toEqual([640]);
    expect(value('Failovers', db)).toEqual([1]);
    expect(value('FailoverDuration', db)).toEqual([3_000]);
    expect(value('RecoveryActions', db)).toEqual([1]);
    expect(value('MonitorErrors', db)).toEqual([1]);
    expect(value('FailoverFailures', db)).toEqual([1]);
    expect(value('LeaseAge', { cluster: 'orders', node: 'node1' })).toEqual([100]);
    expect(value('NodeIsolated', { cluster: 'orders', node: 'node1' })).toEqual([1]);
    expect(value('GroupOnline', db)).toEqual([1]);
    expect(value('GroupOnline', { cluster: 'orders', group: 'web' })).toEqual([0]);
    // web should run and does not; batch was stopped on purpose.
    expect(value('GroupsNotOnline', {})).toEqual([1]);
    expect(value('GroupOnline', { cluster: 'orders', group: 'batch' })).toEqual([0]);
    expect(value('ReconcileErrors', {})).toEqual([2]);
    expect(value('ReconcileOutcome', { outcome: 'error' })).toEqual([1]);
    expect(value('Throttles', {})).toEqual([1]);
    // Every data point is a documented metric with its documented unit and dimensions.
    for (const d of data) {
      expect(METRICS[d.name]?.unit, d.name).toBe(d.unit);
      const names = Object.keys(d.dimensions).join(', ') || '(none)';
      expect(METRICS[d.name]?.dimensions, d.name).toBe(names);
    }
    expect(m.drain()).toEqual([]);
  });
});
