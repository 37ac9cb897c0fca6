/**
 * Groups without an application, as users write them (a floating IP alone, an Elastic IP alone):
 * the agent brings the group up on its own node through the guard's start, in process and without
 * a command, once the record names it owner and lists it in mayRun; it puts the group's VIP on the
 * interface through its `ip` command (here the sandbox's stand-in, FAILOVER_AGENT_IP_COMMAND) and
 * reports the group running; a new record elsewhere takes it off again, and the report says so at
 * the new epoch (the controller's proof that this node stopped).
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fakeIpAddresses, writeFakeIp } from '../../sandbox/fake-ip';
import { initialGroupState } from '../../shared/core/model';
import { keys } from '../../shared/table/keys';
import {
  type AgentProcess,
  createCluster,
  type Fixture,
  heartbeat,
  motoEndpoint,
  removeTempDirs,
  setGroup,
  startAgent,
  TcpProxy,
  tempDir,
  waitFor,
} from './support';

const agents: AgentProcess[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.kill();
});
afterAll(() => removeTempDirs());

const VIP = '172.16.0.10';
const nodes = [
  { name: 'node1', instanceId: 'i-0aaa', eni: 'eni-0aaa', az: 'us-east-1a', privateIp: '10.0.1.10' },
  { name: 'node2', instanceId: 'i-0bbb', eni: 'eni-0bbb', az: 'us-east-1b', privateIp: '10.0.2.10' },
];

async function floatingIpCluster(): Promise<Fixture> {
  return createCluster({
    timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
    nodes,
    groups: [
      {
        name: 'fip',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'vip', name: 'vip', ip: VIP, vpcId: 'vpc-0abc' }],
        monitors: [{ type: 'vip', name: 'vip-here', intervalMs: 300 }],
      },
      {
        name: 'eip-only',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'eip', name: 'eip', allocationId: 'eipalloc-0abc' }],
      },
    ],
  });
}

/** A record as reconcile writes it while starting: owner named, mayRun not yet (or yet) listing it. */
async function putRecord(f: Fixture, group: string, owner: string, epoch: number, mayRun: string[]) {
  const g = f.config.groups.find((x) => x.name === group)!;
  await f.store.doc.send(
    new PutCommand({
      TableName: f.table,
      Item: {
        ...keys.group(f.cluster, group),
        ...initialGroupState(g, Date.now()),
        owner,
        epoch,
        phase: 'Starting',
        mayRun,
      },
    }),
  );
}

describe('groups without application', () => {
  it('the owner brings its VIP up itself, reports the group running, and takes it off when moved away', async () => {
    const f = await floatingIpCluster();
    const node1 = tempDir('node1');
    const ip = writeFakeIp(node1);
    // Named owner, but not yet in mayRun: nothing may start yet.
    await putRecord(f, 'fip', 'node1', 1, []);
    const agent = await startAgent({
      f,
      node: 'node1',
      stateDir: tempDir('state'),
      env: { FAILOVER_AGENT_IP_COMMAND: ip, FAILOVER_AGENT_VIP_DEV: 'eth0' },
    });
    agents.push(agent);
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(fakeIpAddresses(node1)).toEqual([]);
    expect((await heartbeat(f, 'node1'))?.groups.fip).toMatchObject({ state: 'stopped' });

    // mayRun lists it: the agent starts the group (the VIP on the interface) within a few reads.
    const listed = Date.now();
    await putRecord(f, 'fip', 'node1', 1, ['node1']);
    await setGroup(f, 'eip-only', 'node1', 1);
    const running = await waitFor(
      'fip and eip-only reported running',
      async () => {
        const hb = await heartbeat(f, 'node1');
        return hb?.groups.fip?.state === 'running' && hb.groups['eip-only']?.state === 'running' && hb;
      },
      10_000,
    );
    console.log(
      `floating IP up and reported ${Date.now() - listed} ms after mayRun listed node1 (heartbeat 250 ms)`,
    );
    expect(running.groups.fip).toEqual({ epoch: 1, state: 'running' });
    expect(fakeIpAddresses(node1)).toEqual([VIP]);
    // The vip monitor sees what the agent did.
    await waitFor(
      'vip monitor ok',
      async () => (await heartbeat(f, 'node1'))?.monitors['vip-here']?.status === 'ok',
    );

    // The controller moved the group to node2 at epoch 2: node1 takes the VIP off and says so.
    await setGroup(f, 'fip', 'node2', 2);
    const stopped = await waitFor('fip reported stopped at epoch 2', async () => {
      const hb = await heartbeat(f, 'node1');
      return hb?.groups.fip?.state === 'stopped' && hb.groups.fip.epoch === 2 && hb;
    });
    expect(stopped.groups.fip).toEqual({ epoch: 2, state: 'stopped' });
    expect(fakeIpAddresses(node1)).toEqual([]);
    expect(agent.log()).toMatch(
      /fip runs here at epoch 1 but the record names node2 at epoch 2: stale owner/,
    );
  });

  it('a fenced agent brings nothing up, and takes its VIP off at the fence', async () => {
    const f = await floatingIpCluster();
    const node1 = tempDir('node1');
    const ip = writeFakeIp(node1);
    await setGroup(f, 'fip', 'node1', 1);
    const proxy = await TcpProxy.start(motoEndpoint());
    try {
      const agent = await startAgent({
        f,
        node: 'node1',
        stateDir: tempDir('state'),
        endpoint: proxy.url,
        env: { FAILOVER_AGENT_IP_COMMAND: ip, FAILOVER_AGENT_VIP_DEV: 'eth0' },
      });
      agents.push(agent);
      await waitFor('VIP up', () => fakeIpAddresses(node1).length === 1, 10_000);
      await proxy.setMode('refuse');
      await waitFor('VIP off at the fence', () => fakeIpAddresses(node1).length === 0, 5_000);
      expect(agent.log()).toMatch(/self-fence/);
      // Still cut off: the record still names node1, but nothing comes back up without a lease.
      await new Promise((r) => setTimeout(r, 1500));
      expect(fakeIpAddresses(node1)).toEqual([]);
      // Healed: the lease is renewed, the record still names node1 at epoch 1: up again.
      await proxy.setMode('forward');
      await waitFor('VIP up again after the renewal', () => fakeIpAddresses(node1).length === 1, 10_000);
    } finally {
      await proxy.close();
    }
  });
});
