/**
 * The dns driver against the moto server through the real Route 53 client: records are read back
 * from the emulator; ChangeResourceRecordSets calls are counted on the client under test.
 */
import {
  ChangeResourceRecordSetsCommand,
  type ChangeResourceRecordSetsCommandOutput,
  type GetChangeCommandOutput,
} from '@aws-sdk/client-route-53';
import { describe, expect, it } from 'vitest';
import { SharedDescribeCache } from '../../../controller/resources/describe-cache';
import { createDnsDriver, type DnsOptions, normalizeHostedZoneId } from '../../../controller/resources/dns';
import { FreshReads } from '../../../shared/base/coalesce';
import { parseClusterConfig } from '../../../shared/config/load';
import type { CheckRequest } from '../../../shared/core/ports';
import { createFixture } from './fixture';
import { aRecord, checkRequest, recordedRoute53, remove, request, upsert, withResource } from './helpers';

/** A fake clock for the INSYNC wait: sleeping advances it at once. */
function fakeTime(): DnsOptions & { t: number } {
  const clock = {
    t: 0,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.t += ms;
    },
    pollMs: 1_000,
    maxPollMs: 4_000,
  };
  return clock;
}

describe('dns driver on moto', () => {
  it('groups activating together read their zone once and write in one change, each fenced before it joins', async () => {
    const fx = await createFixture({ initialOwner: 'none' });
    const base = fx.config.groups[0]!;
    const extra = Array.from({ length: 8 }, (_, i) => ({
      ...base,
      name: `g${i}`,
      resources: [
        {
          ...base.resources.find((r) => r.type === 'dns')!,
          name: `g${i}-dns`,
          recordName: `g${i}.${fx.zoneName}.`,
        },
      ],
    }));
    const config = parseClusterConfig({ ...fx.config, groups: [...fx.config.groups, ...extra] }, 'batch');
    const events: string[] = [];
    const { route53 } = recordedRoute53({
      tap: (name, _out, input) => {
        const changes = (input as { ChangeBatch?: { Changes?: { ResourceRecordSet?: { Name?: string } }[] } })
          .ChangeBatch?.Changes;
        if (name === 'ChangeResourceRecordSets')
          events.push(`change ${changes?.map((c) => c.ResourceRecordSet?.Name).join(',')}`);
        else events.push(name);
      },
    });
    const dns = createDnsDriver(route53);
    const reads = new FreshReads();
    const node = config.nodes.find((n) => n.name === 'node2')!;
    const outcomes = await Promise.all(
      extra.map((g) =>
        dns.activate({
          cluster: fx.cluster,
          group: g.name,
          epoch: 3,
          holder: 'test',
          beforeMutation: async () => {
            events.push(`fence ${g.resources[0]!.recordName}`);
          },
          signal: new AbortController().signal,
          cache: new SharedDescribeCache(reads),
          resource: config.groups.find((x) => x.name === g.name)!.resources[0]!,
          node,
          config,
        }),
      ),
    );
    expect(outcomes.every((o) => o.changed)).toBe(true);
    const changes = events.filter((e) => e.startsWith('change '));
    // The first change goes out at once; the others, fenced meanwhile, together in the next.
    expect(changes.length).toBeLessThanOrEqual(2);
    expect(events.filter((e) => e === 'ListResourceRecordSets').length).toBeLessThanOrEqual(2);
    for (const g of extra) {
      const name = g.resources[0]!.recordName;
      const carried = events.findIndex(
        (e) => e.startsWith('change ') && e.slice(7).split(',').includes(name),
      );
      expect(carried).toBeGreaterThan(events.indexOf(`fence ${name}`));
      expect(await aRecord(fx, name)).toEqual({ ttl: 30, values: [node.privateIp] });
    }
  });

  it('activate points the record at node2; a second activate makes no mutating call', async () => {
    const fx = await createFixture();
    const { route53, log } = recordedRoute53();
    const dns = createDnsDriver(route53);
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node1.privateIp] });

    const out = await dns.activate(request(fx, fx.names.dns, 'node2', { log }));
    expect(out).toEqual({
      changed: true,
      detail: `${fx.recordName} A: ${fx.nodes.node1.privateIp} (TTL 30) -> ${fx.nodes.node2.privateIp} (TTL 30)`,
    });
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node2.privateIp] });
    expect(log.mutating).toEqual(['ChangeResourceRecordSets']);
    expect(log.fencedEveryMutation()).toBe(true);

    log.clear();
    const again = await dns.activate(request(fx, fx.names.dns, 'node2', { log }));
    expect(again).toEqual({
      changed: false,
      detail: `${fx.recordName} A ${fx.nodes.node2.privateIp} (TTL 30): already`,
    });
    expect(log.calls).toEqual(['ListResourceRecordSets']);
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node2.privateIp] });
  });

  it('creates a missing record, and updates the TTL when the definition changes it', async () => {
    const fx = await createFixture({ initialOwner: 'none' });
    const { route53, log } = recordedRoute53();
    const dns = createDnsDriver(route53);
    expect(await aRecord(fx)).toBeUndefined();
    const created = await dns.activate(request(fx, fx.names.dns, 'node1'));
    expect(created.detail).toBe(`${fx.recordName} A: none -> ${fx.nodes.node1.privateIp} (TTL 30)`);
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node1.privateIp] });

    const config = withResource(fx, fx.names.dns, { ttl: 120 });
    // The address is right, so the check passes and says the TTL will follow.
    const check = await dns.check(checkRequest(fx, fx.names.dns, 'node1', { config }));
    expect(check.status).toBe('ok');
    expect(check.detail).toContain('TTL 30; the definition says 120');
    log.clear();
    const out = await dns.activate(request(fx, fx.names.dns, 'node1', { log, config }));
    expect(out.changed).toBe(true);
    expect(log.mutating).toEqual(['ChangeResourceRecordSets']);
    expect(await aRecord(fx)).toEqual({ ttl: 120, values: [fx.nodes.node1.privateIp] });
  });

  it('publishes a common address (e.g. the VIP): moving between nodes changes nothing', async () => {
    const fx = await createFixture({ initialOwner: 'none' });
    const config = withResource(fx, fx.names.dns, { ip: fx.vip });
    const { route53, log } = recordedRoute53();
    const dns = createDnsDriver(route53);
    await dns.activate(request(fx, fx.names.dns, 'node1', { config }));
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.vip] });
    log.clear();
    const moved = await dns.activate(request(fx, fx.names.dns, 'node2', { log, config }));
    expect(moved.changed).toBe(false);
    expect(log.mutating).toEqual([]);
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node2', { config }))).toMatchObject({
      status: 'ok',
    });
  });

  it('accepts the hosted zone id with or without the /hostedzone/ prefix', async () => {
    const fx = await createFixture();
    expect(fx.hostedZoneId.startsWith('/hostedzone/')).toBe(true);
    const config = withResource(fx, fx.names.dns, { hostedZoneId: normalizeHostedZoneId(fx.hostedZoneId) });
    const { route53 } = recordedRoute53();
    const dns = createDnsDriver(route53);
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node1', { config }))).toMatchObject({
      status: 'ok',
    });
    await dns.activate(request(fx, fx.names.dns, 'node2', { config }));
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node2.privateIp] });
  });

  it('deactivate keeps the record unless deleteOnDeactivate, and deletes only its own address', async () => {
    const fx = await createFixture();
    const { route53, log } = recordedRoute53();
    const dns = createDnsDriver(route53);

    const kept = await dns.deactivate(request(fx, fx.names.dns, 'node1', { log }));
    expect(kept).toEqual({
      changed: false,
      detail: `${fx.recordName} A: kept (deleteOnDeactivate is false)`,
    });
    expect(log.calls).toEqual([]);

    const config = withResource(fx, fx.names.dns, { deleteOnDeactivate: true });
    const other = await dns.deactivate(request(fx, fx.names.dns, 'node2', { log, config }));
    expect(other.changed).toBe(false);
    expect(other.detail).toContain(
      `holds ${fx.nodes.node1.privateIp}, not ${fx.nodes.node2.privateIp} of node node2; left alone`,
    );
    expect(log.mutating).toEqual([]);
    expect(await aRecord(fx)).toBeDefined();

    const out = await dns.deactivate(request(fx, fx.names.dns, 'node1', { log, config }));
    expect(out).toEqual({ changed: true, detail: `${fx.recordName} A ${fx.nodes.node1.privateIp}: deleted` });
    expect(log.mutating).toEqual(['ChangeResourceRecordSets']);
    expect(log.fencedEveryMutation()).toBe(true);
    expect(await aRecord(fx)).toBeUndefined();

    log.clear();
    const again = await dns.deactivate(request(fx, fx.names.dns, 'node1', { log, config }));
    expect(again).toEqual({ changed: false, detail: `${fx.recordName} A: already absent` });
    expect(log.mutating).toEqual([]);
  });

  // A DELETE that races a change of the record is tested in aws-errors.test.ts: moto validates a
  // DELETE against its journal of past changes, not the current record, so it cannot refuse one.

  it('check detects drift (other value, extra value, no record) and a restart repairs it', async () => {
    const fx = await createFixture();
    const { route53 } = recordedRoute53();
    const dns = createDnsDriver(route53);
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node1'))).toEqual({
      status: 'ok',
      detail: `${fx.recordName} A ${fx.nodes.node1.privateIp}`,
    });

    await upsert(fx, [fx.nodes.node2.privateIp]);
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node1'))).toEqual({
      status: 'drift',
      detail: `${fx.recordName} A holds ${fx.nodes.node2.privateIp} instead of ${fx.nodes.node1.privateIp} (node node1)`,
    });

    await upsert(fx, [fx.nodes.node1.privateIp, fx.nodes.node2.privateIp]);
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node1'))).toMatchObject({ status: 'drift' });
    await dns.activate(request(fx, fx.names.dns, 'node1'));
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node1.privateIp] });
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node1'))).toMatchObject({ status: 'ok' });

    await remove(fx, [fx.nodes.node1.privateIp]);
    const gone = await dns.check(checkRequest(fx, fx.names.dns, 'node1'));
    expect(gone.status).toBe('drift');
    expect(gone.detail).toContain(
      `${fx.recordName} A does not exist in zone ${normalizeHostedZoneId(fx.hostedZoneId)}`,
    );
    await dns.activate(request(fx, fx.names.dns, 'node1'));
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node1'))).toMatchObject({ status: 'ok' });
  });

  it("checks of a reconcile's first round read the cluster's records of a zone in one listing", async () => {
    const fx = await createFixture();
    const node1 = fx.config.nodes.find((n) => n.name === 'node1')!;
    const node2 = fx.config.nodes.find((n) => n.name === 'node2')!;
    // 320 more groups with a record each in the fixture's zone (more than one page of 300), one
    // of them pointing at node2, and one group whose record does not exist.
    const names = Array.from({ length: 320 }, (_, i) => `r${String(i).padStart(3, '0')}`);
    await fx.route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: fx.hostedZoneId,
        ChangeBatch: {
          Changes: names.map((n, i) => ({
            Action: 'UPSERT' as const,
            ResourceRecordSet: {
              Name: `${n}.${fx.zoneName}.`,
              Type: 'A' as const,
              TTL: 30,
              ResourceRecords: [{ Value: (i === 7 ? node2 : node1).privateIp! }],
            },
          })),
        },
      }),
    );
    const dnsGroup = (n: string) => ({
      name: n,
      nodes: ['node1', 'node2'],
      resources: [
        {
          type: 'dns' as const,
          name: `${n}-dns`,
          hostedZoneId: fx.hostedZoneId,
          recordName: `${n}.${fx.zoneName}`,
          ttl: 30,
        },
      ],
    });
    const config = parseClusterConfig(
      { ...fx.config, groups: [...fx.config.groups, ...[...names, 'r999'].map(dnsGroup)] },
      'test',
    );
    const { route53, log } = recordedRoute53();
    const dns = createDnsDriver(route53);
    const checkOf = (
      g: (typeof config.groups)[number],
      cache: Map<string, Promise<unknown>>,
      shared: boolean,
    ) =>
      dns.check({
        cache,
        shared,
        cluster: fx.cluster,
        group: g.name,
        resource: g.resources.find((r) => r.type === 'dns')!,
        node: node1,
        config,
        signal: new AbortController().signal,
      } satisfies CheckRequest);
    const shared = new Map<string, Promise<unknown>>();
    const results = await Promise.all(config.groups.map((g) => checkOf(g, shared, true)));
    // Two pages for the 321 records that exist, and the missing one asked for alone.
    expect(log.calls).toEqual(['ListResourceRecordSets', 'ListResourceRecordSets', 'ListResourceRecordSets']);
    const byGroup = new Map(config.groups.map((g, i) => [g.name, results[i]]));
    expect(byGroup.get(fx.group)).toMatchObject({ status: 'ok' });
    expect(byGroup.get('r000')).toMatchObject({
      status: 'ok',
      detail: `r000.${fx.zoneName}. A ${node1.privateIp}`,
    });
    expect(byGroup.get('r319')).toMatchObject({ status: 'ok' });
    expect(byGroup.get('r007')).toMatchObject({
      status: 'drift',
      detail: expect.stringContaining(node2.privateIp!),
    });
    expect(byGroup.get('r999')).toMatchObject({
      status: 'drift',
      detail: expect.stringContaining('does not exist'),
    });
    expect(results.filter((r) => r.status === 'ok')).toHaveLength(320);

    // The same answers without a shared cache, one call per record.
    log.clear();
    for (const name of [fx.group, 'r000', 'r007', 'r319', 'r999']) {
      const g = config.groups.find((x) => x.name === name)!;
      expect(await checkOf(g, new Map(), false)).toEqual(byGroup.get(name));
    }
    expect(log.calls).toEqual(Array(5).fill('ListResourceRecordSets'));
  });

  it('waitInsync: no GetChange when Route 53 answers INSYNC (as moto does)', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { waitInsync: true });
    const { route53, log } = recordedRoute53();
    const out = await createDnsDriver(route53, fakeTime()).activate(
      request(fx, fx.names.dns, 'node2', { log, config }),
    );
    expect(out.detail).toMatch(/, INSYNC after 0\.0 s$/);
    expect(log.count('GetChange')).toBe(0);
  });

  it('waitInsync: polls GetChange with backoff until INSYNC', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { waitInsync: true });
    let pending = 2; // the change answer and the first GetChange say PENDING
    const { route53, log } = recordedRoute53({
      tap: (name, output) => {
        if ((name === 'ChangeResourceRecordSets' || name === 'GetChange') && pending-- > 0)
          (output as ChangeResourceRecordSetsCommandOutput | GetChangeCommandOutput).ChangeInfo!.Status =
            'PENDING';
      },
    });
    const clock = fakeTime();
    const out = await createDnsDriver(route53, clock).activate(
      request(fx, fx.names.dns, 'node2', { log, config }),
    );
    expect(log.count('GetChange')).toBe(2);
    expect(clock.t).toBe(3_000); // slept 1 s, then 2 s
    expect(out.detail).toMatch(/, INSYNC after 3\.0 s$/);
  });

  it('waitInsync: DNS_CHANGE_NOT_INSYNC after waitTimeoutSec; the record is written', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { waitInsync: true, waitTimeoutSec: 10 });
    const { route53, log } = recordedRoute53({
      tap: (name, output) => {
        if (name === 'ChangeResourceRecordSets' || name === 'GetChange')
          (output as GetChangeCommandOutput).ChangeInfo!.Status = 'PENDING';
      },
    });
    const clock = fakeTime();
    const error = await createDnsDriver(route53, clock)
      .activate(request(fx, fx.names.dns, 'node2', { log, config }))
      .catch((e) => e);
    expect(error.code).toBe('DNS_CHANGE_NOT_INSYNC');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/is still PENDING after 10 s \(waitTimeoutSec of resource web-dns\)/);
    expect(clock.t).toBe(10_000);
    expect(log.count('GetChange')).toBe(4); // after 1, 3, 7 and 10 s
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node2.privateIp] });
  });

  it('waitInsync: an abort during the wait ends it as DEADLINE_EXCEEDED', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { waitInsync: true });
    const controller = new AbortController();
    const { route53, log } = recordedRoute53({
      tap: (name, output) => {
        if (name !== 'ChangeResourceRecordSets') return;
        (output as GetChangeCommandOutput).ChangeInfo!.Status = 'PENDING';
        // The deadline passes once the change is accepted, i.e. during the driver's (real) sleep.
        controller.abort();
      },
    });
    const dns = createDnsDriver(route53, { pollMs: 60_000 });
    const error = await dns
      .activate(request(fx, fx.names.dns, 'node2', { config, signal: controller.signal }))
      .catch((e) => e);
    expect(error.code).toBe('DEADLINE_EXCEEDED');
    expect(error.message).toContain('the record is written');
    expect(log.count('GetChange')).toBe(0);
    expect(await aRecord(fx)).toEqual({ ttl: 30, values: [fx.nodes.node2.privateIp] });
  });
});

describe('dns driver failures on moto', () => {
  it('a hosted zone that does not exist: HOSTED_ZONE_NOT_FOUND', async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { hostedZoneId: '/hostedzone/Z0123456789NOSUCHZONE' });
    const { route53, log } = recordedRoute53();
    const dns = createDnsDriver(route53);
    const error = await dns.activate(request(fx, fx.names.dns, 'node2', { log, config })).catch((e) => e);
    expect(error.code).toBe('HOSTED_ZONE_NOT_FOUND');
    expect(error.message).toContain(
      `hosted zone Z0123456789NOSUCHZONE (hostedZoneId of resource ${fx.names.dns}) does not exist`,
    );
    expect(log.mutating).toEqual([]);
    expect(await dns.check(checkRequest(fx, fx.names.dns, 'node2', { config }))).toMatchObject({
      status: 'error',
      code: 'HOSTED_ZONE_NOT_FOUND',
    });
  });

  it("a record name outside the zone: DNS_CHANGE_REJECTED with Route 53's reason", async () => {
    const fx = await createFixture();
    const config = withResource(fx, fx.names.dns, { recordName: 'db.elsewhere.example.' });
    const { route53 } = recordedRoute53();
    const error = await createDnsDriver(route53)
      .activate(request(fx, fx.names.dns, 'node2', { config }))
      .catch((e) => e);
    expect(error.code).toBe('DNS_CHANGE_REJECTED');
    expect(error.message).toContain('Route 53 rejected the change of db.elsewhere.example. A');
    expect(error.message).toContain('not permitted in zone');
  });
});
