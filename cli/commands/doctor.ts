/**
 * `failoverctl doctor`: preflight of an account before go-live. Every check says what it looked at
 * and, when it fails, what to do. Exit 0 when nothing failed (warnings allowed), 1 otherwise.
 */
import { StopInstancesCommand } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { clientConfig } from '../../controller/aws/clients';
import { errorMessage } from '../../controller/reconcile/observe';
import { createAwsClients, createAwsCloud } from '../../controller/resources';
import { LOCAL_GUARD_DOCUMENT } from '../../controller/resources/guard-document';
import { describeInstances, describeZones } from '../../controller/resources/instances';
import type { DynamoStore } from '../../controller/state/dynamo-store';
import { awsErrorCode } from '../../shared/aws/errors';
import type { ClusterConfig } from '../../shared/config/load';
import { platformNotes } from '../../shared/core/platform-notes';
import type { DescribeCache } from '../../shared/core/ports';
import { partitionOf } from '../../shared/table/keys';
import { loadCluster } from '../cluster';
import { awsOptions, type GlobalFlags, type Io, openStore } from '../context';
import {
  type DeployedRole,
  deployedRoleFindings,
  deploymentOfTable,
  type Finding,
  MANAGED_TAG,
  ssmRegistration,
} from './doctor-role';
import { loadDefinitionFile } from './validate';

export type { Finding } from './doctor-role';

export async function runDoctor(
  config: ClusterConfig,
  clients: ReturnType<typeof createAwsClients>,
  emulated: boolean,
  /** The deployed role's permissions are simulated instead (doctor-role.ts): no DryRun as the operator. */
  roleSimulated = false,
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

  // Windows nodes have no watchdog: say what that costs in failover time, and the fix.
  for (const note of platformNotes(config)) add('warn', `platform ${note.node}`, note.message);

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

  // Each resource's own checks: its driver knows its AWS resource (controller/resources/).
  // No command is sent: the exec driver's options are never read here.
  const drivers = createAwsCloud({}, { document: LOCAL_GUARD_DOCUMENT }, clients).resources;
  for (const g of config.groups) {
    const members = config.nodes.filter((n) => g.nodes.includes(n.name));
    for (const r of g.resources) {
      const label = `${g.name}/${r.name}`;
      const preflight = drivers[r.type].preflight;
      if (!preflight) continue;
      await guard(label, () =>
        preflight({
          config,
          group: g,
          resource: r,
          members,
          label,
          cache,
          signal,
          report: add,
          dryRun: (check, call) => (roleSimulated ? Promise.resolve() : dryRun(add, check, emulated, call)),
        }),
      );
    }
    if (g.fencing === 'stop-instance' && members[0] && !roleSimulated) {
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

/**
 * A DryRun answered DryRunOperation (allowed). Against an emulator nothing is sent: it checks no
 * permission, and some of its calls ignore DryRun and would change what they should only probe.
 */
async function dryRun(
  add: (s: Finding['status'], c: string, d: string) => void,
  check: string,
  emulated: boolean,
  call: () => Promise<unknown>,
): Promise<void> {
  const who = 'as your own credentials, not the deployed role (pass --role to simulate it)';
  if (emulated) {
    add(
      'warn',
      check,
      `not probed: the emulator checks no permission on calls; pass --role to simulate the deployed role`,
    );
    return;
  }
  try {
    await call();
    add('ok', check, `allowed ${who}`);
  } catch (e) {
    const code = awsErrorCode(e);
    if (code === 'DryRunOperation') add('ok', check, `allowed (DryRun) ${who}`);
    else if (code === 'UnauthorizedOperation' || code === 'AccessDenied')
      add('fail', check, `denied: attach the policy printed by "failoverctl iam-policy --role controller"`);
    else add('warn', check, `DryRun answered ${code}: ${errorMessage(e)}`);
  }
}

/**
 * The deployed controller's role, its management tag and its guard document: from the options, else
 * from the deployment's naming (table failover-state-<stage>, serverless.yml); undefined when neither
 * tells (a local table).
 */
function deployedRole(
  options: { role?: string; managedTag?: string; document?: string },
  table: string,
  region: string,
  account: string | undefined,
  env: Record<string, string | undefined>,
): DeployedRole | undefined {
  const named = deploymentOfTable(table, region);
  const role = options.role ?? named?.role;
  if (!role || !account) return undefined;
  return {
    arn: role.startsWith('arn:') ? role : `arn:${partitionOf(region)}:iam::${account}:role/${role}`,
    managedTagValue: options.managedTag ?? named?.managedTagValue ?? 'failover-controller',
    document: options.document ?? named?.document ?? env.FAILOVER_SSM_DOCUMENT ?? LOCAL_GUARD_DOCUMENT,
    // The PowerShell variant's name follows the document's (failover-guard-<stage>-windows), unless
    // the document itself came from the environment with its own.
    ...(!options.document && !named && env.FAILOVER_SSM_DOCUMENT_WINDOWS
      ? { windowsDocument: env.FAILOVER_SSM_DOCUMENT_WINDOWS }
      : {}),
    table,
    account,
    ...(env.FAILOVER_EVENT_BUS ? { eventBus: env.FAILOVER_EVENT_BUS } : {}),
    ...(env.FAILOVER_ALERT_TOPIC_ARN ? { topicArn: env.FAILOVER_ALERT_TOPIC_ARN } : {}),
  };
}

export async function doctorCommand(
  io: Io,
  flags: GlobalFlags,
  options: {
    file?: string;
    cluster?: string;
    json?: boolean;
    role?: string;
    managedTag?: string;
    document?: string;
  },
): Promise<number> {
  const config = options.file
    ? await loadDefinitionFile(options.file)
    : (await loadCluster(openStore(io, flags), options.cluster)).config;
  const aws = awsOptions(io, flags);
  if (!aws.region) aws.region = config.region;
  const findings: Finding[] = [];
  const store = openStore(io, flags, config.region);
  let tableAccount: string | undefined;
  try {
    const table = await store.describeTable();
    tableAccount = table?.TableArn?.split(':')[4];
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
  const clients = createAwsClients(aws);
  const role = deployedRole(options, store.table, config.region, config.account ?? tableAccount, io.env);
  if (!config.account)
    findings.push({
      status: 'warn',
      check: 'account',
      detail:
        'the definition names no account: apply it with "failoverctl apply" (it records the account of the table, whose instance ARNs key the agents\' heartbeats)',
    });
  // Permissions as the deployed role: simulated, not probed with the operator's own credentials.
  findings.push(...(await runDoctor(config, clients, aws.endpoint !== undefined, role !== undefined)));
  if (role) {
    io.err(
      `simulating the deployed role ${role.arn} (tag ${MANAGED_TAG}=${role.managedTagValue}, document ${role.document})`,
    );
    findings.push(
      ...(await deployedRoleFindings(
        config,
        { ...clients, iam: new IAMClient(clientConfig(aws)) },
        role,
        AbortSignal.timeout(120_000),
      )),
    );
  } else {
    findings.push({
      status: 'warn',
      check: 'deployed role',
      detail: `not checked: table ${store.table} is not a deployment's (failover-state-<stage>); pass --role NAME (the stack's reconcile role) to simulate its permissions`,
    });
    findings.push(...(await ssmRegistration(config, clients.ssm, AbortSignal.timeout(60_000))));
  }
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
