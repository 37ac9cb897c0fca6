/**
 * Failures moto cannot produce (it checks no IAM, never throttles, answers at once, and validates a
 * Route 53 DELETE against its change journal instead of the current record): a loopback proxy in
 * front of moto answers the chosen call with AWS's error body, so the real SDK parses it and the
 * drivers map it; the end state in moto shows that nothing changed. The mapping itself is also
 * checked on synthetic SDK error objects.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { clientConfig } from '../../../controller/aws/clients';
import { createDnsDriver } from '../../../controller/resources/dns';
import { createEipDriver } from '../../../controller/resources/eip';
import { ec2Error, route53Error } from '../../../controller/resources/errors';
import { createVipDriver } from '../../../controller/resources/vip';
import { FailoverError } from '../../../shared/base/errors';
import {
  ec2ErrorBody,
  type FaultProxy,
  route53ErrorBody,
  startFaultProxy,
} from '../../../testkit/fault-proxy';
import { aws } from '../support';
import { createFixture } from './fixture';
import {
  aRecord,
  checkRequest,
  eipEni,
  recordedEc2,
  recordedRoute53,
  remove,
  request,
  upsert,
  vipRoutes,
  withResource,
} from './helpers';

const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

async function proxy(): Promise<FaultProxy> {
  const p = await startFaultProxy(inject('awsEndpoint'));
  proxies.push(p);
  return p;
}

describe('AWS failures through the drivers (fault proxy in front of moto)', () => {
  it('vip: UnauthorizedOperation on ReplaceRoute is NOT_AUTHORIZED naming the action and the table', async () => {
    const fx = await createFixture();
    const p = await proxy();
    p.inject('ReplaceRoute', {
      status: 403,
      body: ec2ErrorBody('UnauthorizedOperation', 'You are not authorized to perform this operation.'),
    });
    const { ec2 } = recordedEc2({ aws: { ...aws(), endpoint: p.endpoint, maxAttempts: 1 } });
    const error = await createVipDriver(ec2)
      .activate(request(fx, fx.names.vip, 'node2'))
      .catch((e) => e);
    expect(error).toBeInstanceOf(FailoverError);
    expect(error.code).toBe('NOT_AUTHORIZED');
    expect(error.message).toMatch(
      /^not authorized to call ec2:ReplaceRoute on route table rtb-[0-9a-f]+; grant it/,
    );
    // The tables are changed at once, each behind its own fence: the refused one still points to
    // node1, the other moved (the next reconcile retries the refused one and reports it).
    const refused = /route table (rtb-[0-9a-f]+)/.exec(error.message)?.[1];
    const routes = await vipRoutes(fx);
    const other = refused === fx.routeTables.main ? fx.routeTables.tagged : fx.routeTables.main;
    expect([fx.routeTables.main, fx.routeTables.tagged]).toContain(refused);
    expect(routes[refused!]?.eni).toBe(fx.nodes.node1.eni);
    expect(routes[other]?.eni).toBe(fx.nodes.node2.eni);
  });

  it('eip: RequestLimitExceeded after the SDK retries is THROTTLED (retryable); the address stays', async () => {
    const fx = await createFixture();
    const p = await proxy();
    p.inject(
      'AssociateAddress',
      { status: 503, body: ec2ErrorBody('RequestLimitExceeded', 'Request limit exceeded.') },
      2,
    );
    const { ec2 } = recordedEc2({ aws: { ...aws(), endpoint: p.endpoint, maxAttempts: 2 } });
    const error = await createEipDriver(ec2)
      .activate(request(fx, fx.names.eip, 'node2'))
      .catch((e) => e);
    expect(error.code).toBe('THROTTLED');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`ec2:AssociateAddress on Elastic IP ${fx.allocationId} was throttled`);
    expect(p.seen.filter((a) => a === 'AssociateAddress')).toHaveLength(2);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node1.eni });
  });

  it('dns: Throttling is THROTTLED and AccessDenied is NOT_AUTHORIZED naming the hosted zone', async () => {
    const fx = await createFixture();
    const zone = fx.hostedZoneId.replace('/hostedzone/', '');
    const p = await proxy();
    const { route53 } = recordedRoute53({ aws: { ...aws(), endpoint: p.endpoint, maxAttempts: 1 } });
    const dns = createDnsDriver(route53);

    p.inject('ChangeResourceRecordSets', {
      status: 400,
      body: route53ErrorBody('Throttling', 'Rate exceeded'),
    });
    const throttled = await dns.activate(request(fx, fx.names.dns, 'node2')).catch((e) => e);
    expect(throttled.code).toBe('THROTTLED');

    p.inject('ChangeResourceRecordSets', {
      status: 403,
      body: route53ErrorBody(
        'AccessDenied',
        'User is not authorized to perform: route53:ChangeResourceRecordSets',
      ),
    });
    const denied = await dns.activate(request(fx, fx.names.dns, 'node2')).catch((e) => e);
    expect(denied.code).toBe('NOT_AUTHORIZED');
    expect(denied.message).toContain(
      `not authorized to call route53:ChangeResourceRecordSets on hosted zone ${zone}`,
    );
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node1.privateIp] });
  });

  it('a describe call that never answers is TIMEOUT; check reports it as an error with the code', async () => {
    const fx = await createFixture();
    const p = await proxy();
    p.inject('DescribeRouteTables', 'hang');
    // clientConfig()'s requestTimeout only warns in @smithy/node-http-handler 4.x unless
    // throwOnRequestTimeout is set (see the report); this client sets it.
    const ec2 = new EC2Client({
      ...clientConfig({ ...aws(), endpoint: p.endpoint, maxAttempts: 1 }),
      requestHandler: new NodeHttpHandler({
        connectionTimeout: 1_000,
        requestTimeout: 1_500,
        throwOnRequestTimeout: true,
      }),
    });
    const result = await createVipDriver(ec2).check(checkRequest(fx, fx.names.vip, 'node1'));
    expect(result.status).toBe('error');
    expect(result.code).toBe('TIMEOUT');
    expect(result.detail).toContain(
      `ec2:DescribeRouteTables on route tables of ${fx.vpcId} did not answer in time`,
    );
  });

  it('a call that never answers is ended by the reconcile deadline (abort signal): DEADLINE_EXCEEDED', async () => {
    const fx = await createFixture();
    const p = await proxy();
    p.inject('DescribeAddresses', 'hang');
    const { ec2, log } = recordedEc2({ aws: { ...aws(), endpoint: p.endpoint, maxAttempts: 1 } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const error = await createEipDriver(ec2)
      .activate(request(fx, fx.names.eip, 'node2', { signal: controller.signal }))
      .catch((e) => e);
    expect(error.code).toBe('DEADLINE_EXCEEDED');
    expect(error.message).toContain('ec2:DescribeAddresses');
    expect(log.mutating).toEqual([]);
    expect(await eipEni(fx)).toMatchObject({ eni: fx.nodes.node1.eni });
  });

  it('dns: a DELETE refused because the record is gone (AWS "not found", moto InvalidInput) is "already absent"', async () => {
    for (const fault of [
      route53ErrorBody(
        'InvalidChangeBatch',
        "[Tried to delete resource record set [name='x.', type='A'] but it was not found]",
      ),
      route53ErrorBody(
        'InvalidInput',
        'Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=DELETE]',
      ),
    ]) {
      const fx = await createFixture();
      const config = withResource(fx, fx.names.dns, { deleteOnDeactivate: true });
      const p = await proxy();
      const { route53, log } = recordedRoute53({ aws: { ...aws(), endpoint: p.endpoint, maxAttempts: 1 } });
      const dns = createDnsDriver(route53);
      const cache = new Map();
      await dns.check(checkRequest(fx, fx.names.dns, 'node1', { cache, config })); // caches the record
      // Gone behind our back; AWS refuses the DELETE of the record as read.
      await remove(fx, [fx.nodes.node1.privateIp]);
      p.inject('ChangeResourceRecordSets', { status: 400, body: fault });

      const out = await dns.deactivate(request(fx, fx.names.dns, 'node1', { cache, config, log }));
      expect(out).toEqual({ changed: false, detail: `${fx.recordName} A: already absent` });
      expect(log.calls.slice(-3)).toEqual(['fence', 'ChangeResourceRecordSets', 'ListResourceRecordSets']);
      expect(await aRecord(fx)).toBeUndefined();
    }
  });

  it("dns: a DELETE refused because the values changed re-reads and leaves the new owner's record", async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { deleteOnDeactivate: true });
    const p = await proxy();
    const { route53 } = recordedRoute53({ aws: { ...aws(), endpoint: p.endpoint, maxAttempts: 1 } });
    const dns = createDnsDriver(route53);
    const cache = new Map();
    await dns.check(checkRequest(fx, fx.names.dns, 'node1', { cache, config }));
    await upsert(fx, [fx.nodes.node2.privateIp]);
    p.inject('ChangeResourceRecordSets', {
      status: 400,
      body: route53ErrorBody(
        'InvalidChangeBatch',
        "[Tried to delete resource record set [name='x.', type='A'] but the values provided do not match the current values]",
      ),
    });

    const out = await dns.deactivate(request(fx, fx.names.dns, 'node1', { cache, config }));
    expect(out.changed).toBe(false);
    expect(out.detail).toContain(
      `holds ${fx.nodes.node2.privateIp}, not ${fx.nodes.node1.privateIp} of node node1; left alone`,
    );
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node2.privateIp] });
  });
});

describe('AWS error mapping (synthetic SDK errors)', () => {
  const sdkError = (name: string, message = name, status = 400) =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });

  it.each([
    ['UnauthorizedOperation', 'NOT_AUTHORIZED'],
    ['AccessDenied', 'NOT_AUTHORIZED'],
    ['RequestLimitExceeded', 'THROTTLED'],
    ['Throttling', 'THROTTLED'],
    ['TimeoutError', 'TIMEOUT'],
    ['ECONNREFUSED', 'TIMEOUT'],
    ['AbortError', 'DEADLINE_EXCEEDED'],
    ['InvalidNetworkInterfaceID.NotFound', 'ENI_NOT_FOUND'],
    ['InvalidRouteTableID.NotFound', 'ROUTE_TABLE_NOT_FOUND'],
    ['InvalidVpcID.NotFound', 'VPC_NOT_FOUND'],
    ['InvalidAllocationID.NotFound', 'EIP_ALLOCATION_NOT_FOUND'],
    ['InvalidParameterValue', 'AWS_API_ERROR'],
  ])('ec2: %s -> %s', (awsCode, code) => {
    const mapped = ec2Error(sdkError(awsCode), 'ec2:ReplaceRoute', 'route table rtb-0abc', {
      resource: 'web-vip',
    });
    expect(mapped).toBeInstanceOf(FailoverError);
    expect(mapped.code).toBe(code);
    if (code === 'NOT_AUTHORIZED')
      expect(mapped.message).toContain('ec2:ReplaceRoute on route table rtb-0abc');
  });

  it('names the id AWS names in its message, not only the one in the request', () => {
    const mapped = ec2Error(
      sdkError('InvalidNetworkInterfaceID.NotFound', "The networkInterface ID 'eni-0bad' does not exist"),
      'ec2:DescribeNetworkInterfaces',
      'network interfaces',
      { eni: 'eni-0other' },
    );
    expect(mapped.message).toContain('network interface eni-0bad does not exist');
  });

  it.each([
    ['NoSuchHostedZone', 'HOSTED_ZONE_NOT_FOUND'],
    ['InvalidChangeBatch', 'DNS_CHANGE_REJECTED'],
    ['PriorRequestNotComplete', 'THROTTLED'],
    ['AccessDenied', 'NOT_AUTHORIZED'],
  ])('route53: %s -> %s', (awsCode, code) => {
    const mapped = route53Error(sdkError(awsCode), 'route53:ChangeResourceRecordSets', 'hosted zone Z1', {
      hostedZoneId: 'Z1',
      recordName: 'db.example.internal.',
    });
    expect(mapped.code).toBe(code);
  });
});
