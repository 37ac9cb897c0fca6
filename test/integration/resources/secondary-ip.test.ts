/**
 * The secondaryIp driver against the moto server through the real EC2 client: two instances in one
 * subnet, a free address of that subnet moved between their ENIs. Assignments are read back from
 * the emulator; mutating calls are counted on the client under test. (moto's
 * AssignPrivateIpAddresses ignores AllowReassignment and leaves the address on the old ENI too: the
 * driver takes it off there, as it would after a race in EC2; on AWS that Unassign is not needed.)
 */
import { randomBytes } from 'node:crypto';
import {
  AssignPrivateIpAddressesCommand,
  DescribeNetworkInterfacesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { Route53Client } from '@aws-sdk/client-route-53';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../../../controller/aws/clients';
import { createSecondaryIpDriver } from '../../../controller/resources/secondary-ip';
import { type ClusterConfig, parseClusterConfig } from '../../../shared/config/load';
import type { CheckRequest, ResourceRequest } from '../../../shared/core/ports';
import { buildTwoNodeNetwork, type NodeName, type TwoNodeNetwork } from '../../../testkit/emulator-network';
import { aws, uniqueName } from '../support';
import { type CallLog, recordedEc2 } from './helpers';

const IP = '10.50.1.100';
let net: TwoNodeNetwork;
let config: ClusterConfig;
let ec2: EC2Client;

beforeAll(async () => {
  ec2 = new EC2Client(clientConfig(aws()));
  const route53 = new Route53Client({ ...clientConfig(aws()), region: 'us-east-1' });
  net = await buildTwoNodeNetwork(ec2, route53, {
    cidr: '10.50.0.0/16',
    subnets: { node1: '10.50.1.0/24', node2: '10.50.1.0/24' },
    oneSubnet: true,
    zoneName: `${uniqueName('z')}.internal`,
    zoneReference: randomBytes(6).toString('hex'),
  });
  config = parseClusterConfig({
    cluster: uniqueName('c'),
    region: 'us-east-1',
    nodes: (['node1', 'node2'] as const).map((name) => ({
      name,
      instanceId: net.nodes[name].instanceId,
      eni: net.nodes[name].eni,
      az: net.nodes[name].az,
      privateIp: net.nodes[name].privateIp,
    })),
    groups: [
      {
        name: 'fip',
        nodes: ['node1', 'node2'],
        resources: [{ type: 'secondaryIp', name: 'fip-ip', ip: IP, subnetCidr: '10.50.1.0/24' }],
      },
    ],
  });
}, 60_000);

function req(node: NodeName, log?: CallLog): ResourceRequest {
  return {
    cluster: config.cluster,
    group: 'fip',
    epoch: 3,
    holder: 'test',
    beforeMutation: async () => {
      log?.calls.push('fence');
    },
    signal: new AbortController().signal,
    cache: new Map(),
    resource: config.groups[0]!.resources[0]!,
    node: config.nodes.find((n) => n.name === node)!,
    config,
  };
}

const checkReq = (node: NodeName): CheckRequest => {
  const { beforeMutation: _, epoch: __, holder: ___, ...rest } = req(node);
  return rest;
};

/**
 * Which of the two ENIs list the address now, read from the emulator (by ENI: moto's
 * `addresses.private-ip-address` filter matches primary addresses only).
 */
async function holders(): Promise<string[]> {
  const res = await ec2.send(
    new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [net.nodes.node1.eni, net.nodes.node2.eni] }),
  );
  return (res.NetworkInterfaces ?? [])
    .filter((e) => e.PrivateIpAddresses?.some((a) => a.PrivateIpAddress === IP))
    .map((e) => e.NetworkInterfaceId!)
    .sort();
}

describe('secondaryIp driver on moto', () => {
  it('assigns the address to the owner, moves it on failover, and changes nothing when it is right', async () => {
    const { ec2: client, log } = recordedEc2();
    const driver = createSecondaryIpDriver(client);
    expect(await driver.check(checkReq('node1'))).toMatchObject({ status: 'drift' });

    const first = await driver.activate(req('node1', log));
    expect(first).toEqual({ changed: true, detail: `${IP}: nowhere -> ${net.nodes.node1.eni}` });
    expect(await holders()).toEqual([net.nodes.node1.eni]);
    expect(log.calls.filter((c) => c === 'AssignPrivateIpAddresses' || c === 'fence')).toEqual([
      'fence',
      'AssignPrivateIpAddresses',
    ]);
    expect(await driver.check(checkReq('node1'))).toMatchObject({ status: 'ok' });

    // Steady state: read only.
    log.clear();
    expect(await driver.activate(req('node1', log))).toEqual({
      changed: false,
      detail: `${IP}: already on ${net.nodes.node1.eni} alone`,
    });
    expect(log.calls).toEqual(['DescribeNetworkInterfaces']);

    // Failover: onto node2's ENI and off node1's, each behind its own fence.
    log.clear();
    const moved = await driver.activate(req('node2', log));
    expect(moved).toEqual({
      changed: true,
      detail: `${IP}: ${net.nodes.node1.eni} -> ${net.nodes.node2.eni}`,
    });
    expect(await holders()).toEqual([net.nodes.node2.eni]);
    expect(log.calls.filter((c) => /Assign|Unassign|fence/.test(c))).toEqual([
      'fence',
      'AssignPrivateIpAddresses',
      'fence',
      'UnassignPrivateIpAddresses',
    ]);
    const drift = await driver.check(checkReq('node1'));
    expect(drift).toMatchObject({ status: 'drift' });
    expect(drift.detail).toContain(
      `${IP} is on ${net.nodes.node2.eni} instead of ${net.nodes.node1.eni} (node1)`,
    );
  });

  it('deactivate takes it off the demoted holder only, and a foreign assignment is drift that activate repairs', async () => {
    const { ec2: client, log } = recordedEc2();
    const driver = createSecondaryIpDriver(client);
    await driver.activate(req('node2'));
    // node1 is not the holder: nothing to take off.
    expect(await driver.deactivate(req('node1', log))).toEqual({
      changed: false,
      detail: `${IP}: not on ${net.nodes.node1.eni}; left alone`,
    });
    expect(await driver.deactivate(req('node2'))).toEqual({
      changed: true,
      detail: `${IP}: unassigned from ${net.nodes.node2.eni}`,
    });
    expect(await holders()).toEqual([]);

    // Someone assigns it to node1 behind the controller's back while node2 owns the group.
    await driver.activate(req('node2'));
    await ec2.send(
      new AssignPrivateIpAddressesCommand({
        NetworkInterfaceId: net.nodes.node1.eni,
        PrivateIpAddresses: [IP],
      }),
    );
    const check = await driver.check(checkReq('node2'));
    expect(check).toMatchObject({ status: 'drift' });
    expect(check.detail).toContain(`but also on ${net.nodes.node1.eni}`);
    await driver.activate(req('node2'));
    expect(await holders()).toEqual([net.nodes.node2.eni]);
  });

  it('validate refuses nodes in different zones, an address outside the subnet, and a reserved one', () => {
    const base = {
      cluster: 'c',
      region: 'us-east-1',
      nodes: [
        { name: 'node1', instanceId: 'i-1', eni: 'eni-1', az: 'us-east-1a', privateIp: '10.50.1.10' },
        { name: 'node2', instanceId: 'i-2', eni: 'eni-2', az: 'us-east-1b', privateIp: '10.50.2.10' },
      ],
    };
    const issues = (ip: string) => {
      try {
        parseClusterConfig({
          ...base,
          groups: [
            {
              name: 'fip',
              nodes: ['node1', 'node2'],
              resources: [{ type: 'secondaryIp', name: 'fip-ip', ip, subnetCidr: '10.50.1.0/24' }],
            },
          ],
        });
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    const outside = issues('10.60.1.5');
    expect(outside).toMatch(
      /needs the group's nodes in one subnet, but they are in us-east-1a and us-east-1b/,
    );
    expect(outside).toMatch(/use a vip resource/);
    expect(outside).toMatch(/10\.60\.1\.5 is outside subnet 10\.50\.1\.0\/24/);
    expect(outside).toMatch(/node "node2" \(privateIp 10\.50\.2\.10\) is not in subnet 10\.50\.1\.0\/24/);
    expect(issues('10.50.1.2')).toMatch(/10\.50\.1\.2 is reserved in subnet 10\.50\.1\.0\/24/);
  });
});
