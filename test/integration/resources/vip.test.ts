/**
 * The vip driver against the moto server through the real EC2 client: the end state is read back
 * from the emulator, and mutating calls are counted with a middleware on the client under test.
 */
import {
  AssociateVpcCidrBlockCommand,
  CreateNetworkInterfaceCommand,
  DeleteNetworkInterfaceCommand,
  DeleteRouteCommand,
  type DescribeRouteTablesCommandOutput,
  ModifyNetworkInterfaceAttributeCommand,
  ReplaceRouteCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { ec2Error } from '../../../controller/resources/errors';
import { createVipDriver } from '../../../controller/resources/vip';
import { StaleEpochError } from '../../../shared/base/errors';
import { createFixture } from './fixture';
import { checkRequest, recordedEc2, request, vipRoutes, withResource } from './helpers';

describe('vip driver on moto', () => {
  it('activate moves the VIP route to node2 in every table holding it and creates it in listed tables', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    const { main, tagged, listed, unrelated } = fx.routeTables;
    const eni1 = fx.nodes.node1.eni;
    const eni2 = fx.nodes.node2.eni;
    expect(await vipRoutes(fx)).toEqual({
      [main]: { eni: eni1, state: 'active' },
      [tagged]: { eni: eni1, state: 'active' },
    });

    const out = await vip.activate(request(fx, fx.names.vip, 'node2', { log }));
    expect(out.changed).toBe(true);
    expect(out.detail).toContain(`${main}: ${eni1} -> ${eni2}`);
    expect(out.detail).toContain(`${tagged}: ${eni1} -> ${eni2}`);
    expect(out.detail).toContain(`${listed}: created -> ${eni2}`);
    expect(await vipRoutes(fx)).toEqual({
      [main]: { eni: eni2, state: 'active' },
      [tagged]: { eni: eni2, state: 'active' },
      [listed]: { eni: eni2, state: 'active' },
    });
    expect((await vipRoutes(fx))[unrelated]).toBeUndefined();
    expect(log.mutating.sort()).toEqual(['CreateRoute', 'ReplaceRoute', 'ReplaceRoute']);
    expect(log.fencedEveryMutation()).toBe(true);
  });

  it('a second activate changes nothing: zero mutating calls', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    await vip.activate(request(fx, fx.names.vip, 'node2'));
    const before = await vipRoutes(fx);

    log.clear();
    const again = await vip.activate(request(fx, fx.names.vip, 'node2', { log }));
    expect(again.changed).toBe(false);
    expect(again.detail).toContain(`${fx.routeTables.main}: already ${fx.nodes.node2.eni}`);
    expect(log.mutating).toEqual([]);
    expect(log.calls).not.toContain('fence');
    expect(await vipRoutes(fx)).toEqual(before);
  });

  it('deactivate leaves the route where it is, without any call that changes AWS', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const out = await createVipDriver(ec2).deactivate(request(fx, fx.names.vip, 'node1', { log }));
    expect(out).toMatchObject({ changed: false });
    expect(out.detail).toMatch(/route left in place/);
    expect(log.mutating).toEqual([]);
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);
  });

  it('check reports drift naming the table and both ENIs, and a restart (activate) repairs it', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    await vip.activate(request(fx, fx.names.vip, 'node2'));
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2'))).toMatchObject({ status: 'ok' });

    // Someone points one table back at node1 behind the controller's back.
    await fx.ec2.send(
      new ReplaceRouteCommand({
        RouteTableId: fx.routeTables.tagged,
        DestinationCidrBlock: `${fx.vip}/32`,
        NetworkInterfaceId: fx.nodes.node1.eni,
      }),
    );
    const drift = await vip.check(checkRequest(fx, fx.names.vip, 'node2'));
    expect(drift.status).toBe('drift');
    expect(drift.detail).toBe(
      `route to ${fx.vip}/32 in ${fx.routeTables.tagged} points to ${fx.nodes.node1.eni} instead of ${fx.nodes.node2.eni} (node node2)`,
    );

    log.clear();
    const repair = await vip.activate(request(fx, fx.names.vip, 'node2', { log }));
    expect(repair.changed).toBe(true);
    expect(log.mutating).toEqual(['ReplaceRoute']);
    expect((await vipRoutes(fx))[fx.routeTables.tagged]?.eni).toBe(fx.nodes.node2.eni);
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2'))).toMatchObject({ status: 'ok' });
  });

  it('check reports a listed table that lacks the route as drift', async () => {
    const fx = await createFixture();
    const { ec2 } = recordedEc2();
    const result = await createVipDriver(ec2).check(checkRequest(fx, fx.names.vip, 'node1'));
    expect(result).toEqual({
      status: 'drift',
      detail: `${fx.routeTables.listed} has no route to ${fx.vip}/32 (it should point to ${fx.nodes.node1.eni} of node node1)`,
    });
  });

  it('shares describe calls through the cache and drops them after a mutation', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    const cache = new Map();
    const [a, b] = await Promise.all([
      vip.check(checkRequest(fx, fx.names.vip, 'node2', { cache })),
      vip.check(checkRequest(fx, fx.names.vip, 'node2', { cache })),
    ]);
    expect(a.status).toBe('drift');
    expect(b).toEqual(a);
    expect(log.count('DescribeRouteTables')).toBe(1);
    expect(log.count('DescribeVpcs')).toBe(1);
    expect(log.count('DescribeNetworkInterfaces')).toBe(1);

    await vip.activate(request(fx, fx.names.vip, 'node2', { cache }));
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2', { cache }))).toMatchObject({
      status: 'ok',
    });
    // Activate read the cached tables, then dropped them; the check after it read them again.
    expect(log.count('DescribeRouteTables')).toBe(2);
    expect(log.count('DescribeNetworkInterfaces')).toBe(1);
  });

  it('routeTableTag restricts the discovered tables to tagged ones; listed tables are always updated', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.vip, { routeTableTag: fx.tag });
    const { ec2, log } = recordedEc2();
    const out = await createVipDriver(ec2).activate(request(fx, fx.names.vip, 'node2', { log, config }));
    expect(out.changed).toBe(true);
    const routes = await vipRoutes(fx);
    expect(routes[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);
    expect(routes[fx.routeTables.tagged]?.eni).toBe(fx.nodes.node2.eni);
    expect(routes[fx.routeTables.listed]?.eni).toBe(fx.nodes.node2.eni);
    expect(log.mutating.sort()).toEqual(['CreateRoute', 'ReplaceRoute']);
  });

  it('uses the per-resource ENI of a multi-NIC node', async () => {
    const fx = await createFixture({ extraEni: true });
    const extra = fx.nodes.node2.extraEni!;
    const config = withResource(fx, fx.names.vip, { eni: { node2: extra } });
    const { ec2 } = recordedEc2();
    const vip = createVipDriver(ec2);
    await vip.activate(request(fx, fx.names.vip, 'node2', { config }));
    const routes = await vipRoutes(fx);
    expect(Object.values(routes).map((r) => r.eni)).toEqual([extra, extra, extra]);
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2', { config }))).toMatchObject({
      status: 'ok',
    });
    // The node's primary ENI is not what this resource wants on node2.
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2'))).toMatchObject({ status: 'drift' });
  });

  it('repairs a blackhole route even when its target already is the wanted ENI', async () => {
    // moto keeps routes to deleted ENIs `active` (no blackhole state): the client under test is
    // told the main table's route is a blackhole, and moto's end state must show it replaced.
    const fx = await createFixture();
    let blackhole = true;
    const { ec2, log } = recordedEc2({
      tap: (name, output) => {
        if (name !== 'DescribeRouteTables' || !blackhole) return;
        for (const t of (output as DescribeRouteTablesCommandOutput).RouteTables ?? [])
          for (const r of t.Routes ?? [])
            if (t.RouteTableId === fx.routeTables.main && r.DestinationCidrBlock === `${fx.vip}/32`)
              r.State = 'blackhole';
      },
    });
    const vip = createVipDriver(ec2);
    const drift = await vip.check(checkRequest(fx, fx.names.vip, 'node1'));
    expect(drift.status).toBe('drift');
    expect(drift.detail).toContain(
      `in ${fx.routeTables.main} points to ${fx.nodes.node1.eni} (blackhole) instead of`,
    );

    const out = await vip.activate(request(fx, fx.names.vip, 'node1', { log }));
    expect(out.detail).toContain(
      `${fx.routeTables.main}: ${fx.nodes.node1.eni} (blackhole) -> ${fx.nodes.node1.eni}`,
    );
    expect(out.detail).toContain(`${fx.routeTables.tagged}: already ${fx.nodes.node1.eni}`);
    expect(log.mutating.sort()).toEqual(['CreateRoute', 'ReplaceRoute']);
    blackhole = false;
    expect((await vipRoutes(fx))[fx.routeTables.main]).toEqual({ eni: fx.nodes.node1.eni, state: 'active' });
  });

  it('moves a route that targets a deleted ENI (what moto shows instead of a blackhole)', async () => {
    const fx = await createFixture();
    const gone = (await fx.ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: fx.nodes.node1.subnetId })))
      .NetworkInterface!.NetworkInterfaceId!;
    await fx.ec2.send(
      new ReplaceRouteCommand({
        RouteTableId: fx.routeTables.main,
        DestinationCidrBlock: `${fx.vip}/32`,
        NetworkInterfaceId: gone,
      }),
    );
    await fx.ec2.send(new DeleteNetworkInterfaceCommand({ NetworkInterfaceId: gone }));
    expect((await vipRoutes(fx))[fx.routeTables.main]).toEqual({ eni: gone, state: 'active' });

    const { ec2 } = recordedEc2();
    const vip = createVipDriver(ec2);
    expect((await vip.check(checkRequest(fx, fx.names.vip, 'node1'))).detail).toContain(
      `points to ${gone} instead of`,
    );
    await vip.activate(request(fx, fx.names.vip, 'node1'));
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);
  });

  it('recreates a route that vanished between the read and the ReplaceRoute', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    const cache = new Map();
    await vip.check(checkRequest(fx, fx.names.vip, 'node2', { cache })); // caches the tables
    await fx.ec2.send(
      new DeleteRouteCommand({ RouteTableId: fx.routeTables.main, DestinationCidrBlock: `${fx.vip}/32` }),
    );

    log.clear();
    await vip.activate(request(fx, fx.names.vip, 'node2', { cache, log }));
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node2.eni);
    // main: ReplaceRoute (no route any more), then CreateRoute; tagged: ReplaceRoute; listed: CreateRoute.
    expect(log.count('ReplaceRoute')).toBe(2);
    expect(log.count('CreateRoute')).toBe(2);
    expect(log.count('fence')).toBe(4);
    expect(log.fencedEveryMutation()).toBe(true);
  });

  it('maps moto\'s "no route defined" answer to ReplaceRoute to ROUTE_NOT_FOUND', async () => {
    const fx = await createFixture();
    const error = await fx.ec2
      .send(
        new ReplaceRouteCommand({
          RouteTableId: fx.routeTables.listed,
          DestinationCidrBlock: `${fx.vip}/32`,
          NetworkInterfaceId: fx.nodes.node2.eni,
        }),
      )
      .catch((e) => e);
    const mapped = ec2Error(error, 'ec2:ReplaceRoute', `route table ${fx.routeTables.listed}`, {
      routeTableId: fx.routeTables.listed,
      destination: `${fx.vip}/32`,
      eni: fx.nodes.node2.eni,
    });
    expect(mapped.code).toBe('ROUTE_NOT_FOUND');
    expect(mapped.message).toContain(`aws ec2 create-route --route-table-id ${fx.routeTables.listed}`);
  });

  it('a failing epoch fence stops the change before any mutating call', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const error = await createVipDriver(ec2)
      .activate(
        request(fx, fx.names.vip, 'node2', {
          log,
          beforeMutation: async () => {
            throw new StaleEpochError(fx.group, 7);
          },
        }),
      )
      .catch((e) => e);
    expect(error).toBeInstanceOf(StaleEpochError);
    expect(log.mutating).toEqual([]);
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);
  });

  it('an aborted signal ends the call as DEADLINE_EXCEEDED, changing nothing', async () => {
    const fx = await createFixture();
    const { ec2 } = recordedEc2();
    const controller = new AbortController();
    controller.abort();
    const error = await createVipDriver(ec2)
      .activate(request(fx, fx.names.vip, 'node2', { signal: controller.signal }))
      .catch((e) => e);
    expect(error.code).toBe('DEADLINE_EXCEEDED');
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);
  });
});

describe('vip driver failures on moto', () => {
  it('refuses a VIP inside the primary or a secondary CIDR block of the VPC (VIP_INSIDE_VPC_CIDR)', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    for (const [ip, cidr] of [
      ['10.40.200.9', '10.40.0.0/16'],
      ['10.41.77.1', '10.41.0.0/16'],
    ] as const) {
      const config = withResource(fx, fx.names.vip, { ip });
      const error = await vip.activate(request(fx, fx.names.vip, 'node2', { log, config })).catch((e) => e);
      expect(error.code).toBe('VIP_INSIDE_VPC_CIDR');
      expect(error.message).toContain(`VIP ${ip} lies inside ${cidr}, a CIDR block of ${fx.vpcId}`);
      expect(error.message).toContain('outside every CIDR block of the VPC (e.g. 172.16.0.10)');
      const check = await vip.check(checkRequest(fx, fx.names.vip, 'node2', { config }));
      expect(check).toMatchObject({ status: 'error', code: 'VIP_INSIDE_VPC_CIDR' });
    }
    expect(log.mutating).toEqual([]);
  });

  it('sees a secondary CIDR block added after the VIP was chosen', async () => {
    const fx = await createFixture();
    await fx.ec2.send(new AssociateVpcCidrBlockCommand({ VpcId: fx.vpcId, CidrBlock: '172.16.0.0/16' }));
    const { ec2 } = recordedEc2();
    const error = await createVipDriver(ec2)
      .activate(request(fx, fx.names.vip, 'node2'))
      .catch((e) => e);
    expect(error.code).toBe('VIP_INSIDE_VPC_CIDR');
    expect(error.message).toContain('inside 172.16.0.0/16');
    expect(error.message).toContain('(e.g. 192.168.0.10)');
  });

  it('activate refuses an ENI with source/dest check enabled and says how to disable it', async () => {
    const fx = await createFixture({ sourceDestCheck: ['node2'] });
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    const error = await vip.activate(request(fx, fx.names.vip, 'node2', { log })).catch((e) => e);
    expect(error.code).toBe('SOURCE_DEST_CHECK_ENABLED');
    expect(error.message).toContain(
      `aws ec2 modify-network-interface-attribute --network-interface-id ${fx.nodes.node2.eni} --no-source-dest-check`,
    );
    expect(log.mutating).toEqual([]);
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);

    // On node1 (active) the route is right but a failover to node2 would drop traffic: reported.
    await vip.activate(request(fx, fx.names.vip, 'node1'));
    const standby = await vip.check(checkRequest(fx, fx.names.vip, 'node1'));
    expect(standby).toMatchObject({ status: 'error', code: 'SOURCE_DEST_CHECK_ENABLED' });
    expect(standby.detail).toContain('a failover to standby node2 would fail');

    // Fixed by the operator: both checks pass and node2 can take the VIP.
    await fx.ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: fx.nodes.node2.eni,
        SourceDestCheck: { Value: false },
      }),
    );
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node1'))).toMatchObject({ status: 'ok' });
    expect((await vip.activate(request(fx, fx.names.vip, 'node2'))).changed).toBe(true);
  });

  it('check reports source/dest check on the active node as an error with its code', async () => {
    const fx = await createFixture({ sourceDestCheck: ['node1'] });
    const { ec2 } = recordedEc2();
    const result = await createVipDriver(ec2).check(checkRequest(fx, fx.names.vip, 'node1'));
    expect(result.status).toBe('error');
    expect(result.code).toBe('SOURCE_DEST_CHECK_ENABLED');
    expect(result.detail).toContain(`--network-interface-id ${fx.nodes.node1.eni} --no-source-dest-check`);
  });

  it('no table holds the VIP and none is listed: VIP_ROUTE_TABLE_NOT_FOUND', async () => {
    const fx = await createFixture({ initialOwner: 'none', vip: { routeTableIds: undefined } });
    const { ec2, log } = recordedEc2();
    const vip = createVipDriver(ec2);
    const error = await vip.activate(request(fx, fx.names.vip, 'node2', { log })).catch((e) => e);
    expect(error.code).toBe('VIP_ROUTE_TABLE_NOT_FOUND');
    expect(error.message).toContain(`no route table of ${fx.vpcId} has a route to ${fx.vip}/32`);
    expect(error.message).toContain('routeTableIds');
    expect(log.mutating).toEqual([]);
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2'))).toMatchObject({
      status: 'error',
      code: 'VIP_ROUTE_TABLE_NOT_FOUND',
    });
  });

  it('starts from nothing when the tables are listed (initial creation)', async () => {
    const fx = await createFixture({ initialOwner: 'none' });
    const { ec2 } = recordedEc2();
    const out = await createVipDriver(ec2).activate(request(fx, fx.names.vip, 'node1'));
    expect(out.detail).toBe(`${fx.vip}/32: ${fx.routeTables.listed}: created -> ${fx.nodes.node1.eni}`);
    expect(await vipRoutes(fx)).toEqual({
      [fx.routeTables.listed]: { eni: fx.nodes.node1.eni, state: 'active' },
    });
  });

  it('a listed route table outside the VPC: ROUTE_TABLE_NOT_FOUND', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.vip, { routeTableIds: ['rtb-0123456789abcdef0'] });
    const { ec2 } = recordedEc2();
    const error = await createVipDriver(ec2)
      .activate(request(fx, fx.names.vip, 'node2', { config }))
      .catch((e) => e);
    expect(error.code).toBe('ROUTE_TABLE_NOT_FOUND');
    expect(error.message).toContain(
      `route table rtb-0123456789abcdef0 (routeTableIds of resource ${fx.names.vip})`,
    );
    expect((await vipRoutes(fx))[fx.routeTables.main]?.eni).toBe(fx.nodes.node1.eni);
  });

  it('an ENI that does not exist: ENI_NOT_FOUND naming the node', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.vip, { eni: { node2: 'eni-0123456789abcdef0' } });
    const { ec2 } = recordedEc2();
    const vip = createVipDriver(ec2);
    const error = await vip.activate(request(fx, fx.names.vip, 'node2', { config })).catch((e) => e);
    expect(error.code).toBe('ENI_NOT_FOUND');
    expect(error.message).toContain('network interface eni-0123456789abcdef0 (node node2)');
    // On node1 the route is fine; the broken standby is reported.
    await vip.activate(request(fx, fx.names.vip, 'node1', { config }));
    const check = await vip.check(checkRequest(fx, fx.names.vip, 'node1', { config }));
    expect(check).toMatchObject({ status: 'error', code: 'ENI_NOT_FOUND' });
  });

  it('an ENI of another VPC: ENI_NOT_IN_VPC', async () => {
    const fx = await createFixture();
    const other = await createFixture({ initialOwner: 'none' });
    const config = withResource(fx, fx.names.vip, { eni: { node2: other.nodes.node2.eni } });
    const { ec2 } = recordedEc2();
    const error = await createVipDriver(ec2)
      .activate(request(fx, fx.names.vip, 'node2', { config }))
      .catch((e) => e);
    expect(error.code).toBe('ENI_NOT_IN_VPC');
    expect(error.message).toContain(`is in ${other.vpcId}, not in ${fx.vpcId}`);
  });

  it('a VPC that does not exist: VPC_NOT_FOUND', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.vip, { vpcId: 'vpc-0123456789abcdef0' });
    const { ec2 } = recordedEc2();
    const vip = createVipDriver(ec2);
    const error = await vip.activate(request(fx, fx.names.vip, 'node2', { config })).catch((e) => e);
    expect(error.code).toBe('VPC_NOT_FOUND');
    expect(error.message).toContain(
      `VPC vpc-0123456789abcdef0 (vpcId of resource ${fx.names.vip}) does not exist`,
    );
    expect(await vip.check(checkRequest(fx, fx.names.vip, 'node2', { config }))).toMatchObject({
      status: 'error',
      code: 'VPC_NOT_FOUND',
    });
  });
});
