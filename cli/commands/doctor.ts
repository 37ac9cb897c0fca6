/**
 * `failoverctl doctor`: preflight of an account before go-live. Every check says what it looked at
 * and, when it fails, what to do. Exit 0 when nothing failed (warnings allowed), 1 otherwise.
 */
import { AssociateAddressCommand, ReplaceRouteCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { GetHostedZoneCommand } from '@aws-sdk/client-route-53';
import { errorMessage } from '../../controller/reconcile/observe';
import { createAwsClients } from '../../controller/resources';
import { normalizeHostedZoneId } from '../../controller/resources/dns';
import {
  describeAddresses,
  describeEnis,
  describeRouteTables,
  describeVpcCidrs,
  eniFor,
} from '../../controller/resources/ec2-describe';
import { describeInstances, describeZones } from '../../controller/resources/instances';
import type { DynamoStore } from '../../controller/state/dynamo-store';
import { awsErrorCode } from '../../shared/aws/errors';
import { cidrContains } from '../../shared/base/ipv4';
import type { ClusterConfig } from '../../shared/config/load';
import type { DescribeCache } from '../../shared/core/ports';
import { loadCluster } from '../cluster';
import { awsOptions, type GlobalFlags, type Io, openStore } from '../context';
import { loadDefinitionFile } from './validate';

export interface Finding {
  status: 'ok' | 'warn' | 'fail';
  check: string;
  detail: string;
}

export async function runDoctor(
  config: ClusterConfig,
  clients: ReturnType<typeof createAwsClients>,
  emulated: boolean,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (status: Finding['status'], check: string, detail: string) =>
    out.push({ status, check, detail });
  const signal = AbortSignal.timeout(60_000);
  const cache: DescribeCache = new Map();
  const guard = async (check: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      add('fail', check, errorMessage(e));
    }
  };

  await guard('availability zones', async () => {
    const zones = await describeZones(
      clients.ec2,
      config.nodes.map((n) => n.az),
      signal,
    );
    for (const n of config.nodes) {
      const state = zones[n.az];
      if (!state)
        add(
          'fail',
          `az ${n.az} (${n.name})`,
          `no such Availability Zone in ${config.region}; check the az of node ${n.name} (e.g. ${config.region}a)`,
        );
      else add(state === 'available' ? 'ok' : 'warn', `az ${n.az} (${n.name})`, state);
    }
  });

  await guard('instances', async () => {
    const views = await describeInstances(
      clients.ec2,
      config.nodes.map((n) => n.instanceId),
      signal,
    );
    for (const n of config.nodes) {
      const v = views[n.instanceId];
      if (!v)
        add(
          'fail',
          `instance ${n.instanceId} (${n.name})`,
          `not found in ${config.region}; fix instanceId of node ${n.name}`,
        );
      else
        add(
          v.state === 'running' ? 'ok' : 'warn',
          `instance ${n.instanceId} (${n.name})`,
          `${v.state}${v.statusOk === false ? ', status checks impaired' : ''}`,
        );
    }
  });

  for (const g of config.groups) {
    const members = config.nodes.filter((n) => g.nodes.includes(n.name));
    for (const r of g.resources) {
      if (r.type === 'vip' || r.type === 'eip') {
        await guard(`${g.name}/${r.name} ENIs`, async () => {
          const wanted = members.map((n) => eniFor(r, n));
          const enis = await describeEnis(clients.ec2, cache, config, signal, wanted);
          for (const n of members) {
            const id = eniFor(r, n);
            const eni = enis.get(id);
            const check = `${g.name}/${r.name} ENI ${id} (${n.name})`;
            if (!eni)
              add(
                'fail',
                check,
                `ENI not found; set the ENI of node ${n.name} (eni on the node or eni.${n.name} on the resource)`,
              );
            else if (eni.Attachment?.InstanceId && eni.Attachment.InstanceId !== n.instanceId)
              add('fail', check, `attached to ${eni.Attachment.InstanceId}, not to ${n.instanceId}`);
            else if (r.type === 'vip' && eni.SourceDestCheck !== false) {
              add(
                'fail',
                check,
                `source/destination check is enabled, so traffic to the VIP is dropped: aws ec2 modify-network-interface-attribute --network-interface-id ${id} --no-source-dest-check`,
              );
            } else
              add('ok', check, r.type === 'vip' ? 'attached, source/destination check disabled' : 'attached');
          }
        });
      }
      if (r.type === 'vip') {
        await guard(`${g.name}/${r.name} VIP ${r.ip}`, async () => {
          const cidrs = await describeVpcCidrs(clients.ec2, cache, r.vpcId, signal);
          const inside = cidrs.find((c) => cidrContains(c, r.ip));
          if (inside)
            add(
              'fail',
              `${g.name}/${r.name} VIP ${r.ip}`,
              `inside ${inside} of ${r.vpcId}: a route table cannot route a VIP of its own VPC; choose an address outside ${cidrs.join(', ')}`,
            );
          else
            add(
              'ok',
              `${g.name}/${r.name} VIP ${r.ip}`,
              `outside the CIDR blocks of ${r.vpcId} (${cidrs.join(', ')})`,
            );
          const tables = await describeRouteTables(clients.ec2, cache, r.vpcId, signal);
          const holding = tables
            .filter((t) => t.Routes?.some((x) => x.DestinationCidrBlock === `${r.ip}/32`))
            .map((t) => t.RouteTableId!);
          const listed = r.routeTableIds ?? [];
          const missing = listed.filter((id) => !tables.some((t) => t.RouteTableId === id));
          if (missing.length)
            add(
              'fail',
              `${g.name}/${r.name} route tables`,
              `listed but not in ${r.vpcId}: ${missing.join(', ')}`,
            );
          if (holding.length === 0 && listed.length === 0) {
            add(
              'fail',
              `${g.name}/${r.name} route tables`,
              `no route table of ${r.vpcId} holds ${r.ip}/32; add the route (target: the active node's ENI) or list routeTableIds`,
            );
          } else
            add(
              'ok',
              `${g.name}/${r.name} route tables`,
              `holding ${r.ip}/32: ${holding.join(', ') || '(none yet)'}${listed.length ? `; listed: ${listed.join(', ')}` : ''}`,
            );
          const table = holding[0] ?? listed[0];
          const eni = members[0] ? eniFor(r, members[0]) : undefined;
          if (table && eni) {
            await dryRun(add, `${g.name}/${r.name} permission ec2:ReplaceRoute`, emulated, () =>
              clients.ec2.send(
                new ReplaceRouteCommand({
                  DryRun: true,
                  RouteTableId: table,
                  DestinationCidrBlock: `${r.ip}/32`,
                  NetworkInterfaceId: eni,
                }),
              ),
            );
          }
        });
      }
      if (r.type === 'eip') {
        await guard(`${g.name}/${r.name} allocation ${r.allocationId}`, async () => {
          const addresses = await describeAddresses(clients.ec2, cache, config, signal, [r.allocationId]);
          const a = addresses.get(r.allocationId);
          if (!a)
            add(
              'fail',
              `${g.name}/${r.name} allocation ${r.allocationId}`,
              `no such Elastic IP allocation in ${config.region}; fix allocationId`,
            );
          else
            add(
              'ok',
              `${g.name}/${r.name} allocation ${r.allocationId}`,
              `${a.PublicIp}${a.NetworkInterfaceId ? ` on ${a.NetworkInterfaceId}` : ', not associated'}`,
            );
          const eni = members[0] ? eniFor(r, members[0]) : undefined;
          if (a && eni) {
            await dryRun(add, `${g.name}/${r.name} permission ec2:AssociateAddress`, emulated, () =>
              clients.ec2.send(
                new AssociateAddressCommand({
                  DryRun: true,
                  AllocationId: r.allocationId,
                  NetworkInterfaceId: eni,
                  AllowReassociation: true,
                }),
              ),
            );
          }
        });
      }
      if (r.type === 'dns') {
        await guard(`${g.name}/${r.name} hosted zone`, async () => {
          const id = normalizeHostedZoneId(r.hostedZoneId);
          try {
            const zone = await clients.route53.send(new GetHostedZoneCommand({ Id: id }));
            const zoneName = zone.HostedZone?.Name ?? '';
            const fits = r.recordName === zoneName || r.recordName.endsWith(`.${zoneName}`);
            add(
              fits ? 'ok' : 'fail',
              `${g.name}/${r.name} hosted zone ${id}`,
              fits
                ? `${zoneName}${zone.HostedZone?.Config?.PrivateZone ? ' (private)' : ''}`
                : `${r.recordName} is not inside the zone ${zoneName}`,
            );
          } catch (e) {
            if (awsErrorCode(e) === 'NoSuchHostedZone')
              add('fail', `${g.name}/${r.name} hosted zone ${id}`, `no such hosted zone; fix hostedZoneId`);
            else throw e;
          }
        });
      }
    }
    if (g.fencing === 'stop-instance' && members[0]) {
      await dryRun(add, `${g.name} permission ec2:StopInstances`, emulated, () =>
        clients.ec2.send(
          new StopInstancesCommand({ DryRun: true, InstanceIds: [members[0]!.instanceId], Force: true }),
        ),
      );
    }
  }
  return out;
}

/** Each node's agent: renewing, and whether a watchdog makes its silence a proof of stop. */
async function agentFindings(store: DynamoStore, config: ClusterConfig): Promise<Finding[]> {
  const out: Finding[] = [];
  try {
    const heartbeats = await store.getHeartbeats(
      config.cluster,
      config.nodes.map((n) => n.name),
    );
    for (const n of config.nodes) {
      const hb = heartbeats[n.name];
      const check = `agent on ${n.name}`;
      if (!hb) {
        out.push({
          status: 'warn',
          check,
          detail: 'no heartbeat yet: install and start failover-agent (node-agent/README.md)',
        });
      } else if (hb.fence?.watchdogMs !== undefined) {
        out.push({ status: 'ok', check, detail: `renewing; watchdog armed (${hb.fence.watchdogMs} ms)` });
      } else if (
        config.groups.filter((g) => g.nodes.includes(n.name)).every((g) => g.fencing === 'stop-instance')
      ) {
        out.push({
          status: 'ok',
          check,
          detail: 'renewing; no watchdog, but every group of this node uses fencing: stop-instance',
        });
      } else {
        out.push({
          status: 'warn',
          check,
          detail: `renewing without a watchdog: a silent ${n.name} is failed over only after lease + its stop scripts' time (${hb.fence?.maxStopMs ?? '?'} ms), and an agent that dies while the application runs is not covered; run softdog (--watchdog-device) or set fencing: stop-instance`,
        });
      }
    }
  } catch (e) {
    out.push({ status: 'warn', check: 'agents', detail: `cannot read heartbeats: ${errorMessage(e)}` });
  }
  return out;
}

/** A DryRun answered DryRunOperation (allowed) or succeeded (the emulator checks no permission). */
async function dryRun(
  add: (s: Finding['status'], c: string, d: string) => void,
  check: string,
  emulated: boolean,
  call: () => Promise<unknown>,
): Promise<void> {
  try {
    await call();
    add(
      emulated ? 'warn' : 'ok',
      check,
      emulated
        ? 'DryRun accepted, but the emulator checks no permission; run doctor against the real account'
        : 'allowed',
    );
  } catch (e) {
    const code = awsErrorCode(e);
    if (code === 'DryRunOperation') add('ok', check, 'allowed (DryRun)');
    else if (code === 'UnauthorizedOperation' || code === 'AccessDenied')
      add('fail', check, `denied: attach the policy printed by "failoverctl iam-policy --role controller"`);
    else add('warn', check, `DryRun answered ${code}: ${errorMessage(e)}`);
  }
}

export async function doctorCommand(
  io: Io,
  flags: GlobalFlags,
  options: { file?: string; cluster?: string; json?: boolean },
): Promise<number> {
  const config = options.file
    ? await loadDefinitionFile(options.file)
    : (await loadCluster(openStore(io, flags), options.cluster)).config;
  const aws = awsOptions(io, flags);
  if (!aws.region) aws.region = config.region;
  const findings: Finding[] = [];
  const store = openStore(io, flags, config.region);
  try {
    const table = await store.describeTable();
    if (!table)
      findings.push({
        status: 'fail',
        check: `state table ${store.table}`,
        detail: `missing; deploy the stack or run "failoverctl init --table ${store.table}"`,
      });
    else
      findings.push({
        status: table.StreamSpecification?.StreamEnabled ? 'ok' : 'fail',
        check: `state table ${store.table}`,
        detail: table.StreamSpecification?.StreamEnabled
          ? 'exists, stream enabled'
          : 'stream disabled: reconcile will not hear agent reports',
      });
  } catch (e) {
    findings.push({ status: 'fail', check: `state table ${store.table}`, detail: errorMessage(e) });
  }
  findings.push(...(await agentFindings(store, config)));
  io.err(
    `checking cluster ${config.cluster} in ${aws.region}${aws.endpoint ? ` (endpoint ${aws.endpoint})` : ''}...`,
  );
  findings.push(...(await runDoctor(config, createAwsClients(aws), aws.endpoint !== undefined)));
  if (options.json) io.out(JSON.stringify(findings, null, 2));
  else {
    const mark = { ok: '✓', warn: '!', fail: '✗' } as const;
    for (const f of findings) io.out(`${mark[f.status]} ${f.check}: ${f.detail}`);
    const fails = findings.filter((f) => f.status === 'fail').length;
    const warns = findings.filter((f) => f.status === 'warn').length;
    io.out(`\n${findings.length} checks: ${fails} failed, ${warns} warnings`);
  }
  return findings.some((f) => f.status === 'fail') ? 1 : 0;
}
