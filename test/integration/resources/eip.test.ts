/**
 * The eip driver against the moto server through the real EC2 client: associations are read back
 * from the emulator; mutating calls (remaps may be charged) are counted on the client under test.
 */
import {
  AllocateAddressCommand,
  AssignPrivateIpAddressesCommand,
  AssociateAddressCommand,
  DescribeAddressesCommand,
  DisassociateAddressCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { createEipDriver } from '../../../controller/resources/eip';
import { parseClusterConfig } from '../../../shared/config/load';
import { createFixture } from './fixture';
import { checkRequest, eipEni, recordedEc2, request, withResource } from './helpers';

describe('eip driver on moto', () => {
  it('activate moves the Elastic IP to node2; a second activate makes no mutating call', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const eip = createEipDriver(ec2);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node1.eni });

    const out = await eip.activate(request(fx, fx.names.eip, 'node2', { log }));
    expect(out).toEqual({
      changed: true,
      detail: `${fx.allocationId} (${fx.publicIp}): ${fx.nodes.node1.eni} (${fx.nodes.node1.privateIp}) -> ${fx.nodes.node2.eni}`,
    });
    expect(await eipEni(fx)).toEqual({ eni: fx.nodes.node2.eni, privateIp: fx.nodes.node2.privateIp });
    expect(log.mutating).toEqual(['AssociateAddress']);
    expect(log.fencedEveryMutation()).toBe(true);

    log.clear();
    const again = await eip.activate(request(fx, fx.names.eip, 'node2', { log }));
    expect(again).toEqual({
      changed: false,
      detail: `${fx.allocationId} (${fx.publicIp}): already on ${fx.nodes.node2.eni}`,
    });
    expect(log.mutating).toEqual([]);
    expect(log.calls).toEqual(['DescribeAddresses']);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node2.eni });
  });

  it('associates an unassociated address', async () => {
    const fx = await createFixture({ initialOwner: 'none' });
    const { ec2 } = recordedEc2();
    const out = await createEipDriver(ec2).activate(request(fx, fx.names.eip, 'node1'));
    expect(out.detail).toContain(`not associated -> ${fx.nodes.node1.eni}`);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node1.eni });
  });

  it('associates with the private IP the definition names, and re-associates when it differs', async () => {
    // moto ignores PrivateIpAddress in AssociateAddress (it always reports the ENI's primary
    // address), so the request is inspected and the end state checked as far as moto keeps it.
    const fx = await createFixture();
    await fx.ec2.send(
      new AssignPrivateIpAddressesCommand({
        NetworkInterfaceId: fx.nodes.node2.eni,
        PrivateIpAddresses: ['10.41.2.200'],
      }),
    );
    const sent: unknown[] = [];
    const { ec2, log } = recordedEc2({
      tap: (name, _out, input) => name === 'AssociateAddress' && sent.push(input),
    });
    const eip = createEipDriver(ec2);
    await eip.activate(request(fx, fx.names.eip, 'node2'));
    expect(await eipEni(fx)).toEqual({ eni: fx.nodes.node2.eni, privateIp: fx.nodes.node2.privateIp });
    expect(sent).toEqual([
      { AllocationId: fx.allocationId, NetworkInterfaceId: fx.nodes.node2.eni, AllowReassociation: true },
    ]);

    // On the right ENI but not on the private IP the definition names: drift, and activate remaps.
    const config = withResource(fx, fx.names.eip, { privateIp: { node2: '10.41.2.200' } });
    const drift = await eip.check(checkRequest(fx, fx.names.eip, 'node2', { config }));
    expect(drift).toMatchObject({ status: 'drift' });
    expect(drift.detail).toContain(
      `is associated with ${fx.nodes.node2.eni} (${fx.nodes.node2.privateIp}) instead of ${fx.nodes.node2.eni} (10.41.2.200)`,
    );
    log.clear();
    const out = await eip.activate(request(fx, fx.names.eip, 'node2', { log, config }));
    expect(out.changed).toBe(true);
    expect(log.mutating).toEqual(['AssociateAddress']);
    expect(sent[1]).toEqual({
      AllocationId: fx.allocationId,
      NetworkInterfaceId: fx.nodes.node2.eni,
      PrivateIpAddress: '10.41.2.200',
      AllowReassociation: true,
    });
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node2.eni });
  });

  it('deactivate disassociates only from the node that holds it', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const eip = createEipDriver(ec2);

    const notHere = await eip.deactivate(request(fx, fx.names.eip, 'node2', { log }));
    expect(notHere.changed).toBe(false);
    expect(notHere.detail).toContain(
      `${fx.nodes.node1.eni} (${fx.nodes.node1.privateIp}), not on ${fx.nodes.node2.eni}; left alone`,
    );
    expect(log.mutating).toEqual([]);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node1.eni });

    const out = await eip.deactivate(request(fx, fx.names.eip, 'node1', { log }));
    expect(out.changed).toBe(true);
    expect(log.mutating).toEqual(['DisassociateAddress']);
    expect(log.fencedEveryMutation()).toBe(true);
    expect(await eipEni(fx)).toEqual({ eni: undefined, privateIp: undefined });

    log.clear();
    const again = await eip.deactivate(request(fx, fx.names.eip, 'node1', { log }));
    expect(again).toMatchObject({ changed: false });
    expect(again.detail).toContain('not associated');
    expect(log.mutating).toEqual([]);
  });

  it('deactivate after the association vanished between read and write is "already disassociated"', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const eip = createEipDriver(ec2);
    const cache = new Map();
    await eip.check(checkRequest(fx, fx.names.eip, 'node1', { cache })); // caches the association
    const current = await fx.ec2.send(new DescribeAddressesCommand({ AllocationIds: [fx.allocationId] }));
    await fx.ec2.send(
      new DisassociateAddressCommand({ AssociationId: current.Addresses![0]!.AssociationId! }),
    );

    const out = await eip.deactivate(request(fx, fx.names.eip, 'node1', { cache, log }));
    expect(out).toMatchObject({ changed: false });
    expect(out.detail).toContain('already disassociated');
    expect(await eipEni(fx)).toEqual({ eni: undefined, privateIp: undefined });
  });

  it('check detects drift, says where the address is, and a restart repairs it', async () => {
    const fx = await createFixture();
    const { ec2, log } = recordedEc2();
    const eip = createEipDriver(ec2);
    await eip.activate(request(fx, fx.names.eip, 'node2'));
    expect(await eip.check(checkRequest(fx, fx.names.eip, 'node2'))).toEqual({
      status: 'ok',
      detail: `${fx.allocationId} (${fx.publicIp}) on ${fx.nodes.node2.eni}`,
    });

    await fx.ec2.send(
      new AssociateAddressCommand({
        AllocationId: fx.allocationId,
        NetworkInterfaceId: fx.nodes.node1.eni,
        AllowReassociation: true,
      }),
    );
    expect(await eip.check(checkRequest(fx, fx.names.eip, 'node2'))).toEqual({
      status: 'drift',
      detail: `${fx.allocationId} (${fx.publicIp}) is associated with ${fx.nodes.node1.eni} (${fx.nodes.node1.privateIp}) instead of ${fx.nodes.node2.eni} (node node2)`,
    });

    log.clear();
    expect((await eip.activate(request(fx, fx.names.eip, 'node2', { log }))).changed).toBe(true);
    expect(log.mutating).toEqual(['AssociateAddress']);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node2.eni });
    expect(await eip.check(checkRequest(fx, fx.names.eip, 'node2'))).toMatchObject({ status: 'ok' });

    const association = await fx.ec2.send(new DescribeAddressesCommand({ AllocationIds: [fx.allocationId] }));
    await fx.ec2.send(
      new DisassociateAddressCommand({ AssociationId: association.Addresses![0]!.AssociationId! }),
    );
    expect(await eip.check(checkRequest(fx, fx.names.eip, 'node2'))).toMatchObject({
      status: 'drift',
      detail: `${fx.allocationId} (${fx.publicIp}) is not associated instead of ${fx.nodes.node2.eni} (node node2)`,
    });
  });

  it('matches each allocation exactly: two Elastic IPs of one cluster, one describe call', async () => {
    const fx = await createFixture();
    const second = (await fx.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }))).AllocationId!;
    await fx.ec2.send(
      new AssociateAddressCommand({ AllocationId: second, NetworkInterfaceId: fx.nodes.node2.eni }),
    );
    const input = structuredClone(fx.config) as unknown as { groups: { resources: unknown[] }[] };
    input.groups[0]!.resources.push({ type: 'eip', name: 'web-eip-2', allocationId: second });
    const config = parseClusterConfig(input);

    const { ec2, log } = recordedEc2();
    const eip = createEipDriver(ec2);
    const cache = new Map();
    const [first, other] = await Promise.all([
      eip.check(checkRequest(fx, fx.names.eip, 'node1', { cache, config })),
      eip.check(checkRequest(fx, 'web-eip-2', 'node1', { cache, config })),
    ]);
    expect(first).toMatchObject({ status: 'ok' });
    expect(other.status).toBe('drift');
    expect(other.detail).toContain(`${second} `);
    expect(other.detail).toContain(`is associated with ${fx.nodes.node2.eni}`);
    expect(log.count('DescribeAddresses')).toBe(1);
  });
});

describe('eip driver failures on moto', () => {
  it('an allocation that does not exist: EIP_ALLOCATION_NOT_FOUND', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.eip, { allocationId: 'eipalloc-0123456789abcdef0' });
    const { ec2, log } = recordedEc2();
    const eip = createEipDriver(ec2);
    const error = await eip.activate(request(fx, fx.names.eip, 'node2', { log, config })).catch((e) => e);
    expect(error.code).toBe('EIP_ALLOCATION_NOT_FOUND');
    expect(error.message).toContain(
      `Elastic IP allocation eipalloc-0123456789abcdef0 (allocationId of resource ${fx.names.eip}) does not exist`,
    );
    expect(log.mutating).toEqual([]);
    expect(await eip.check(checkRequest(fx, fx.names.eip, 'node2', { config }))).toMatchObject({
      status: 'error',
      code: 'EIP_ALLOCATION_NOT_FOUND',
    });
    const down = await eip.deactivate(request(fx, fx.names.eip, 'node2', { config })).catch((e) => e);
    expect(down.code).toBe('EIP_ALLOCATION_NOT_FOUND');
  });

  it('an ENI that does not exist: ENI_NOT_FOUND from AssociateAddress, nothing moved', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.eip, { eni: { node2: 'eni-0123456789abcdef0' } });
    const { ec2 } = recordedEc2();
    const error = await createEipDriver(ec2)
      .activate(request(fx, fx.names.eip, 'node2', { config }))
      .catch((e) => e);
    expect(error.code).toBe('ENI_NOT_FOUND');
    expect(error.message).toContain('network interface eni-0123456789abcdef0 (node node2)');
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node1.eni });
  });
});
