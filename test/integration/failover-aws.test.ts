/**
 * A full failover of a group with vip + eip + dns + exec from node1 to node2, driven by reconcile
 * through the real AWS SDK clients against moto: the state table, EC2 routes and the Elastic IP,
 * the Route 53 record and SSM Run Command. Prints how many AWS calls the failover took.
 */
import { ListCommandsCommand } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../controller/reconcile/clock';
import { reconcileCluster } from '../../controller/reconcile/reconcile';
import { createAwsClients, createAwsCloud } from '../../controller/resources';
import { DynamoStore } from '../../controller/state/dynamo-store';
import type { Heartbeat } from '../../shared/core/model';
import type { Log } from '../../shared/core/ports';
import { createFixture, type Fixture } from './resources/fixture';
import { aRecord, eipEni, vipRoutes } from './resources/helpers';
import { aws, uniqueName } from './support';

type Counted = { middlewareStack: { add: (mw: unknown, options: unknown) => void } };

/** Counts every AWS call made through a client, by service:Command. */
function count(client: Counted, service: string, calls: string[]): void {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: unknown) => {
        calls.push(`${service}:${(context.commandName ?? '?').replace(/Command$/, '')}`);
        return next(args);
      },
    { step: 'initialize', name: `count-${service}` },
  );
}

const silent: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('a full failover on the emulator, driven by reconcile', () => {
  let fx: Fixture;
  let store: DynamoStore;
  const calls: string[] = [];
  let clients: ReturnType<typeof createAwsClients>;

  beforeAll(async () => {
    fx = await createFixture({ initialOwner: 'none' });
    store = new DynamoStore(uniqueName('failover'), aws());
    await store.createTable();
    await store.applyConfig(fx.config, { now: Date.now() });
    clients = createAwsClients(aws());
    count(store.client as unknown as Counted, 'dynamodb', calls);
    count(clients.ec2 as unknown as Counted, 'ec2', calls);
    count(clients.route53 as unknown as Counted, 'route53', calls);
    count(clients.ssm as unknown as Counted, 'ssm', calls);
  });

  const heartbeat = (node: 'node1' | 'node2', seq: number, over: Partial<Heartbeat> = {}): Heartbeat => ({
    cluster: fx.cluster,
    node,
    token: `${node}/${seq}`,
    seq,
    incarnation: node,
    sentAt: Date.now(),
    leaseMs: fx.config.timing.leaseMs,
    agentVersion: 'test',
    state: 'running',
    reason: 'change',
    monitors: {},
    isolated: false,
    groups: {},
    peers: {},
    // An armed watchdog that suits the default lease (3.75 s - 1 s margin), as the agent reports one.
    fence: { maxStopMs: 300_000, watchdogMs: 2_000 },
    ...over,
  });
  const reconcile = (holder: string) =>
    reconcileCluster(
      {
        store,
        cloud: createAwsCloud(aws(), { document: 'failover-guard' }, clients),
        notifier: { publish: async () => undefined },
        clock: systemClock,
        log: silent,
        holder,
      },
      fx.cluster,
      { deadline: Date.now() + 30_000 },
    );

  it('starts on node1, then moves route, EIP, record and application to node2 when node1 dies', async () => {
    await store.putHeartbeat(heartbeat('node1', 1));
    await store.putHeartbeat(heartbeat('node2', 1));
    const start = await reconcile('inv-start');
    expect(start.groups[0]).toMatchObject({ status: 'converged', owner: 'node1', phase: 'Online', epoch: 1 });
    for (const route of Object.values(await vipRoutes(fx))) expect(route.eni).toBe(fx.nodes.node1.eni);
    expect((await eipEni(fx)).eni).toBe(fx.nodes.node1.eni);
    expect((await aRecord(fx))?.values).toEqual([fx.nodes.node1.privateIp]);

    // A second pass with nothing changed makes no mutating call.
    calls.length = 0;
    await reconcile('inv-steady');
    const steady = [...calls];
    expect(
      steady.filter((c) =>
        /ReplaceRoute|CreateRoute|AssociateAddress|DisassociateAddress|ChangeResourceRecordSets|SendCommand/.test(
          c,
        ),
      ),
    ).toEqual([]);

    // node1 goes silent; node2 saw node1's renewal unchanged for a whole lease.
    const lease = fx.config.timing.leaseMs;
    await store.putHeartbeat(heartbeat('node1', 1, { sentAt: Date.now() - 3 * lease }));
    await store.putHeartbeat(
      heartbeat('node2', 2, { peers: { node1: { token: 'node1/1', silentForMs: lease + 100 } } }),
    );
    calls.length = 0;
    const started = Date.now();
    const failover = await reconcile('inv-failover');
    const ms = Date.now() - started;
    const made = [...calls];
    expect(failover.groups[0]).toMatchObject({
      status: 'converged',
      owner: 'node2',
      phase: 'Online',
      epoch: 2,
    });

    for (const [table, route] of Object.entries(await vipRoutes(fx)))
      expect(route.eni, table).toBe(fx.nodes.node2.eni);
    expect((await eipEni(fx)).eni).toBe(fx.nodes.node2.eni);
    expect((await aRecord(fx))?.values).toEqual([fx.nodes.node2.privateIp]);
    const commands =
      (await clients.ssm.send(new ListCommandsCommand({ InstanceId: fx.nodes.node2.instanceId }))).Commands ??
      [];
    expect(commands.map((c) => c.Comment)).toContain(
      `failover ${fx.cluster}/${fx.group} epoch 2 start ${fx.names.exec}`,
    );
    // node1 was dead (proof: node2's observation), so nothing was sent to it.
    const toNode1 =
      (await clients.ssm.send(new ListCommandsCommand({ InstanceId: fx.nodes.node1.instanceId }))).Commands ??
      [];
    expect(toNode1.map((c) => c.Comment)).not.toContain(expect.stringMatching(/epoch 2/));

    const byKind = made.reduce<Record<string, number>>((acc, c) => {
      acc[c] = (acc[c] ?? 0) + 1;
      return acc;
    }, {});
    const aws_ = made.filter((c) => !c.startsWith('dynamodb:'));
    const mutating = made.filter((c) =>
      /ReplaceRoute|CreateRoute|AssociateAddress|ChangeResourceRecordSets|SendCommand/.test(c),
    );
    console.log(
      `failover node1 -> node2 on moto: ${made.length} calls in ${ms} ms, ${failover.groups[0]?.rounds} rounds (${made.length - aws_.length} DynamoDB, ${aws_.length} EC2/Route 53/SSM of which ${mutating.length} mutating)\n` +
        Object.entries(byKind)
          .sort()
          .map(([k, v]) => `  ${k} x${v}`)
          .join('\n'),
    );
    // The VIP route moves (in the table the fixture lists), the EIP is remapped once, the record upserted once, the app started once.
    expect(mutating.filter((c) => c === 'ec2:ReplaceRoute').length).toBeGreaterThanOrEqual(1);
    expect(mutating.filter((c) => c === 'ec2:AssociateAddress')).toHaveLength(1);
    expect(mutating.filter((c) => c === 'route53:ChangeResourceRecordSets')).toHaveLength(1);
    expect(mutating.filter((c) => c === 'ssm:SendCommand')).toHaveLength(1);
  });
});
