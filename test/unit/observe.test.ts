/**
 * The observation of a group: which reads run at once. A failover decided on an observation waits
 * for its slowest round of reads, so the entry-point checks (which need only the group record) must
 * not wait for the cluster's state to come back first.
 */
import { describe, expect, it } from 'vitest';
import { observeGroup, ReconcileSnapshot } from '../../controller/reconcile/observe';
import { parseClusterConfig } from '../../shared/config/load';
import { initialGroupState } from '../../shared/core/model';
import type { Cloud, StateStore } from '../../shared/core/ports';

const config = parseClusterConfig({
  cluster: 'orders',
  region: 'us-east-1',
  nodes: [
    { name: 'node1', instanceId: 'i-01', eni: 'eni-01', az: 'us-east-1a', privateIp: '10.0.1.10' },
    { name: 'node2', instanceId: 'i-02', eni: 'eni-02', az: 'us-east-1b', privateIp: '10.0.2.10' },
  ],
  groups: [
    {
      name: 'db',
      nodes: ['node1', 'node2'],
      resources: [
        { type: 'vip', name: 'vip', ip: '172.16.0.10', vpcId: 'vpc-1' },
        { type: 'eip', name: 'eip', allocationId: 'eipalloc-1' },
      ],
    },
  ],
});

describe('observeGroup', () => {
  it('checks the entry points while the cluster state is being read, not after it', async () => {
    const events: string[] = [];
    let checksStarted!: () => void;
    const bothChecksStarted = new Promise<void>((resolve) => {
      let n = 0;
      checksStarted = () => {
        if (++n === 2) resolve();
      };
    });
    // The heartbeats come back only once both checks have started: run one after the other, the
    // observation would never finish.
    const store = {
      getHeartbeats: async () => {
        await bothChecksStarted;
        events.push('heartbeats read');
        return {};
      },
      getFacts: async () => ({}),
      listRequests: async () => [],
    } as unknown as StateStore;
    const check = (name: string) => async () => {
      events.push(`check ${name} started`);
      checksStarted();
      return { status: 'ok' as const, detail: `on node1` };
    };
    const cloud = {
      describeInstances: async () => ({}),
      describeZones: async () => ({}),
      resources: { vip: { check: check('vip') }, eip: { check: check('eip') } },
    } as unknown as Cloud;
    const snapshot = new ReconcileSnapshot(
      { store, cloud, clock: { now: () => 1_000 } },
      { config, version: 1, hash: 'h', appliedAt: 0 },
      new AbortController().signal,
    );
    const state = {
      ...initialGroupState(config.groups[0]!, 0),
      owner: 'node1',
      phase: 'Online' as const,
      mayRun: ['node1'],
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('the checks waited for the cluster state')), 2_000);
    });
    const obs = await Promise.race([
      observeGroup(
        { store, cloud, clock: { now: () => 1_000 } },
        snapshot,
        config.groups[0]!,
        state,
        () => 1_000,
        new AbortController().signal,
      ),
      timeout,
    ]).finally(() => clearTimeout(timer));
    expect(events).toEqual(['check vip started', 'check eip started', 'heartbeats read']);
    expect((obs as { checks: Record<string, unknown> }).checks).toEqual({
      vip: { status: 'ok', detail: 'on node1' },
      eip: { status: 'ok', detail: 'on node1' },
    });
  });
});
