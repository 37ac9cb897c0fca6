/**
 * `failoverctl doctor`, as the deployed controller: every AWS action a failover of this definition
 * needs, on each resource it touches, simulated for the controller's role (iam:SimulatePrincipalPolicy,
 * with the resource's real tags and the request's condition keys as context), the management tag on
 * each resource the deployed role may only change when tagged, and the SSM registration of every
 * node (ssm:DescribeInstanceInformation). The operator's own credentials only read: an administrator
 * running doctor gets the deployed role's answers, not their own.
 */
import type { Address, NetworkInterface, RouteTable, Tag } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import {
  type ContextEntry,
  type EvaluationResult,
  type IAMClient,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import { DescribeInstanceInformationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { errorMessage } from '../../controller/reconcile/observe';
import type { AwsClients } from '../../controller/resources';
import {
  describeAddresses,
  describeEnis,
  describeRouteTables,
} from '../../controller/resources/ec2-describe';
import { guardDocumentExists, windowsGuardDocumentName } from '../../controller/resources/guard-document';
import { resourceReadActions } from '../../shared/config/kinds';
import type { ClusterConfig } from '../../shared/config/load';
import type { DescribeCache } from '../../shared/core/ports';
import { keys, partitionOf } from '../../shared/table/keys';

/** One finding of `failoverctl doctor`: what was looked at, and, when it failed, what to do. */
export interface Finding {
  status: 'ok' | 'warn' | 'fail';
  check: string;
  detail: string;
}

/** The tag the deployed role requires on every resource it changes (serverless.yml). */
export const MANAGED_TAG = 'failover:managed';

export interface DeployedRole {
  /** The role's ARN (iam:SimulatePrincipalPolicy's PolicySourceArn). */
  arn: string;
  /** The value of `failover:managed` this deployment may act on (its stack name). */
  managedTagValue: string;
  /** The guard's SSM document of this deployment. */
  document: string;
  /** Its PowerShell variant for Windows nodes (default: windowsGuardDocumentName(document)). */
  windowsDocument?: string;
  table: string;
  account: string;
  eventBus?: string;
  topicArn?: string;
}

/** What a deployment named from its table is called (serverless.yml: failover-state-<stage>). */
export function deploymentOfTable(
  table: string,
  region: string,
): { stage: string; role: string; managedTagValue: string; document: string } | undefined {
  const m = /^failover-state-([A-Za-z0-9-]+)$/.exec(table);
  if (!m) return undefined;
  const stage = m[1]!;
  return {
    stage,
    role: `failover-reconcile-${stage}-${region}`,
    managedTagValue: `failover-controller-${stage}`,
    document: `failover-guard-${stage}`,
  };
}

/** One simulation: actions on one resource, with the context its requests carry. */
interface Probe {
  label: string;
  resource: string;
  actions: string[];
  context: Record<string, string[]>;
  /** What to do when an action is not allowed. */
  fix: string;
  /** Expected outcome: `denied` for what the role must never do. */
  expect?: 'allowed' | 'denied';
}

const tagsOf = (tags: readonly Tag[] | undefined): Record<string, string> =>
  Object.fromEntries((tags ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : [])));

/** The resource's tags as IAM sees them in a request (aws:ResourceTag/<key>). */
const tagContext = (tags: Record<string, string>) =>
  Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, [v]]));

/** The deployed role's findings for one definition. */
export async function deployedRoleFindings(
  config: ClusterConfig,
  clients: AwsClients & { iam: IAMClient },
  role: DeployedRole,
  signal: AbortSignal,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (status: Finding['status'], check: string, detail: string) =>
    out.push({ status, check, detail });
  const cache: DescribeCache = new Map();
  const region = config.region;
  const partition = partitionOf(region);
  const arn = (service: string, resource: string, account = role.account) =>
    `arn:${partition}:${service}:${region}:${account}:${resource}`;
  const tagCommand = (id: string) =>
    `aws ec2 create-tags --resources ${id} --tags Key=${MANAGED_TAG},Value=${role.managedTagValue}`;
  const roleName = role.arn.split('/').pop();
  const probes: Probe[] = [];
  /** Checks the management tag of a resource the deployed role changes; returns its tags. */
  const managed = (kind: string, id: string, tags: Record<string, string>) => {
    const value = tags[MANAGED_TAG];
    if (value === role.managedTagValue) add('ok', `tag ${kind} ${id}`, `${MANAGED_TAG}=${value}`);
    else
      add(
        'fail',
        `tag ${kind} ${id}`,
        value === undefined
          ? `not tagged ${MANAGED_TAG}: the deployed controller may not change it; ${tagCommand(id)}`
          : `tagged ${MANAGED_TAG}=${value}, another deployment's: this one (${role.managedTagValue}) may not change it. Two controllers must not act on one cluster: apply the definition to one deployment's table only, or ${tagCommand(id)}`,
      );
    return tags;
  };

  // The state table: what reconcile reads and writes, and the definition it must never write.
  const table = arn('dynamodb', `table/${role.table}`);
  probes.push({
    label: `state table ${role.table}`,
    resource: table,
    actions: [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ],
    context: { 'dynamodb:LeadingKeys': [keys.clusterPk(config.cluster)] },
    fix: 'redeploy the stack: its role allows these on its table',
  });
  probes.push({
    label: `the definition of ${config.cluster} (commands the guard runs)`,
    resource: table,
    actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
    context: { 'dynamodb:LeadingKeys': [keys.configPk(config.cluster)] },
    fix: 'the role may rewrite the definition, and so the commands the nodes run: deny writes to CONFIG#* (serverless.yml NeverWriteDefinitions)',
    expect: 'denied',
  });
  const resources = config.groups.flatMap((g) => g.resources);
  probes.push({
    label: 'describe calls',
    resource: '*',
    actions: [
      'ec2:DescribeAvailabilityZones',
      'ec2:DescribeInstanceStatus',
      'ec2:DescribeInstances',
      ...resourceReadActions(resources),
    ],
    context: {},
    fix: 'redeploy the stack: its role allows the describe calls',
  });

  // Instances: their tags, for SendCommand and StopInstances.
  let instanceTags = new Map<string, Record<string, string>>();
  try {
    const res = await clients.ec2.send(
      new DescribeInstancesCommand({ InstanceIds: config.nodes.map((n) => n.instanceId) }),
      { abortSignal: signal },
    );
    instanceTags = new Map(
      (res.Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .map((i) => [i.InstanceId ?? '', tagsOf(i.Tags)]),
    );
  } catch (e) {
    add('fail', 'instances', `cannot describe them: ${errorMessage(e)}`);
  }
  const fencedNodes = new Set(
    config.groups
      .filter(
        (g) =>
          g.fencing === 'stop-instance' || g.monitors.some((m) => m.recovery.finalAction === 'stop-node'),
      )
      .flatMap((g) => g.nodes),
  );
  const execNodes = new Set(
    config.groups.filter((g) => g.resources.some((r) => r.type === 'exec')).flatMap((g) => g.nodes),
  );
  // The guard documents the exec nodes need: the shell one for Linux nodes, its PowerShell variant
  // for Windows nodes.
  const windowsDocument = role.windowsDocument ?? windowsGuardDocumentName(role.document);
  const guardDocuments = [
    ...new Set(
      config.nodes
        .filter((n) => execNodes.has(n.name))
        .map((n) => (n.platform === 'windows' ? windowsDocument : role.document)),
    ),
  ];
  for (const n of config.nodes) {
    const tags = instanceTags.get(n.instanceId);
    if (!tags || (!execNodes.has(n.name) && !fencedNodes.has(n.name))) continue;
    managed('instance', n.instanceId, tags);
    const actions = [
      ...(execNodes.has(n.name) ? ['ssm:SendCommand'] : []),
      ...(fencedNodes.has(n.name) ? ['ec2:StopInstances'] : []),
    ];
    probes.push({
      label: `instance ${n.instanceId} (${n.name})`,
      resource: arn('ec2', `instance/${n.instanceId}`),
      actions,
      context: tagContext(tags),
      fix: `${tagCommand(n.instanceId)}, or redeploy the stack`,
    });
  }
  for (const document of guardDocuments) {
    probes.push({
      label: `guard document ${document}`,
      resource: arn('ssm', `document/${document}`),
      actions: ['ssm:SendCommand'],
      context: {},
      fix: 'redeploy the stack: its role may send its own guard documents only',
    });
  }
  if (execNodes.size > 0) {
    // No free command text: AWS-RunShellScript and AWS-RunPowerShellScript must be denied, whatever
    // the nodes' platform (either runs any text as root / SYSTEM on every managed instance).
    for (const [aws, what] of [
      ['AWS-RunShellScript', 'any shell command as root'],
      ['AWS-RunPowerShellScript', 'any PowerShell command as SYSTEM'],
    ] as const)
      probes.push({
        label: `${aws} (${what})`,
        resource: arn('ssm', `document/${aws}`, ''),
        actions: ['ssm:SendCommand'],
        context: {},
        fix: 'the role may run any command on the nodes: allow only the guard documents (serverless.yml RunGuardDocument)',
        expect: 'denied',
      });
  }

  for (const g of config.groups) {
    const members = config.nodes.filter((n) => g.nodes.includes(n.name));
    for (const r of g.resources) {
      const label = `${g.name}/${r.name}`;
      try {
        if (r.type === 'vip') {
          const tables = await describeRouteTables(clients.ec2, cache, r.vpcId, signal);
          const holding = tables.filter(
            (t: RouteTable) =>
              t.Routes?.some((x) => x.DestinationCidrBlock === `${r.ip}/32`) ||
              r.routeTableIds?.includes(t.RouteTableId ?? ''),
          );
          for (const t of holding) {
            const id = t.RouteTableId ?? '?';
            const tags = managed('route table', id, tagsOf(t.Tags));
            probes.push({
              label: `${label} route table ${id}`,
              resource: arn('ec2', `route-table/${id}`),
              actions: ['ec2:ReplaceRoute', ...(r.routeTableIds?.includes(id) ? ['ec2:CreateRoute'] : [])],
              context: { ...tagContext(tags), 'ec2:Vpc': [arn('ec2', `vpc/${r.vpcId}`)] },
              fix: `${tagCommand(id)}, or redeploy the stack`,
            });
          }
        }
        if (r.type === 'eip') {
          const addresses = await describeAddresses(clients.ec2, cache, config, signal, [r.allocationId]);
          const a: Address | undefined = addresses.get(r.allocationId);
          if (a) {
            const tags = managed('Elastic IP', r.allocationId, tagsOf(a.Tags));
            probes.push({
              label: `${label} Elastic IP ${r.allocationId}`,
              resource: arn('ec2', `elastic-ip/${r.allocationId}`),
              actions: ['ec2:AssociateAddress', 'ec2:DisassociateAddress'],
              context: tagContext(tags),
              fix: `${tagCommand(r.allocationId)}, or redeploy the stack`,
            });
          }
        }
        if (r.type === 'eip' || r.type === 'secondaryIp') {
          const ids = members.flatMap((n) => {
            const eni = (r.eni as Record<string, string> | undefined)?.[n.name] ?? n.eni;
            return eni ? [eni] : [];
          });
          const enis = await describeEnis(clients.ec2, cache, config, signal, ids);
          for (const id of ids) {
            const eni: NetworkInterface | undefined = enis.get(id);
            if (!eni) continue;
            const tags = managed('network interface', id, tagsOf(eni.TagSet));
            probes.push({
              label: `${label} network interface ${id}`,
              resource: arn('ec2', `network-interface/${id}`),
              actions:
                r.type === 'eip'
                  ? ['ec2:AssociateAddress', 'ec2:DisassociateAddress']
                  : ['ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
              context: tagContext(tags),
              fix: `${tagCommand(id)}, or redeploy the stack`,
            });
          }
        }
        if (r.type === 'dns') {
          const zone = r.hostedZoneId.replace(/^\/hostedzone\//, '');
          const name = r.recordName.replace(/\.$/, '');
          for (const action of ['UPSERT', ...(r.deleteOnDeactivate ? ['DELETE'] : [])])
            probes.push({
              label: `${label} ${action} A ${name} in ${zone}`,
              resource: `arn:${partition}:route53:::hostedzone/${zone}`,
              actions: ['route53:ChangeResourceRecordSets'],
              context: {
                'route53:ChangeResourceRecordSetsNormalizedRecordNames': [name],
                'route53:ChangeResourceRecordSetsRecordTypes': ['A'],
                'route53:ChangeResourceRecordSetsActions': [action],
              },
              fix: `deploy with --param="dnsZones=${zone}" --param="dnsRecordNames=${name}" (the deployed role changes records only in the zones and names given)`,
            });
        }
      } catch (e) {
        add('fail', label, `cannot read it: ${errorMessage(e)}`);
      }
    }
  }
  if (role.eventBus)
    probes.push({
      label: `event bus ${role.eventBus}`,
      resource: role.eventBus.startsWith('arn:')
        ? role.eventBus
        : arn('events', `event-bus/${role.eventBus}`),
      actions: ['events:PutEvents'],
      context: {},
      fix: 'redeploy the stack',
    });
  if (role.topicArn)
    probes.push({
      label: `alert topic`,
      resource: role.topicArn,
      actions: ['sns:Publish'],
      context: {},
      fix: 'redeploy the stack',
    });

  for (const probe of probes) {
    let results: EvaluationResult[];
    try {
      const res = await clients.iam.send(
        new SimulatePrincipalPolicyCommand({
          PolicySourceArn: role.arn,
          ActionNames: probe.actions,
          ResourceArns: [probe.resource],
          ContextEntries: Object.entries(probe.context).map(
            ([key, values]): ContextEntry => ({
              ContextKeyName: key,
              ContextKeyValues: values,
              ContextKeyType:
                values.length > 1 || key === 'dynamodb:LeadingKeys' || key.startsWith('route53:')
                  ? 'stringList'
                  : 'string',
            }),
          ),
        }),
        { abortSignal: signal },
      );
      results = res.EvaluationResults ?? [];
    } catch (e) {
      add(
        'fail',
        `role ${roleName}`,
        `cannot simulate it (iam:SimulatePrincipalPolicy): ${errorMessage(e)}; check the role name (--role) and that your credentials may simulate it`,
      );
      break;
    }
    const wrong = results.filter((r) => (probe.expect === 'denied') === (r.EvalDecision === 'allowed'));
    if (wrong.length === 0) {
      add(
        'ok',
        `role ${roleName}: ${probe.label}`,
        probe.expect === 'denied'
          ? `${probe.actions.join(', ')} denied, as it must be`
          : `${probe.actions.join(', ')} allowed`,
      );
      continue;
    }
    for (const r of wrong) {
      const missing = r.MissingContextValues?.length
        ? ` (missing context: ${r.MissingContextValues.join(', ')})`
        : '';
      add(
        'fail',
        `role ${roleName}: ${probe.label}`,
        probe.expect === 'denied'
          ? `${r.EvalActionName} is allowed: ${probe.fix}`
          : `${r.EvalActionName} is ${r.EvalDecision === 'explicitDeny' ? 'explicitly denied' : 'not allowed'}${missing}: ${probe.fix}`,
      );
    }
  }
  out.push(...(await ssmRegistration(config, clients.ssm, signal)));
  for (const document of guardDocuments) {
    try {
      const exists = await guardDocumentExists(clients.ssm, document);
      add(
        exists ? 'ok' : 'fail',
        `guard document ${document}`,
        exists ? 'exists' : 'missing: deploy the stack (it creates it), or for local runs "failoverctl init"',
      );
    } catch (e) {
      add('fail', `guard document ${document}`, errorMessage(e));
    }
  }
  return out;
}

/** Each node's instance registered with SSM (Run Command reaches only those). */
export async function ssmRegistration(
  config: ClusterConfig,
  ssm: SSMClient,
  signal: AbortSignal,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const needs = new Set(
    config.groups.filter((g) => g.resources.some((r) => r.type === 'exec')).flatMap((g) => g.nodes),
  );
  const nodes = config.nodes.filter((n) => needs.has(n.name));
  if (nodes.length === 0) return out;
  try {
    const res = await ssm.send(
      new DescribeInstanceInformationCommand({
        Filters: [{ Key: 'InstanceIds', Values: nodes.map((n) => n.instanceId) }],
      }),
      { abortSignal: signal },
    );
    const byId = new Map((res.InstanceInformationList ?? []).map((i) => [i.InstanceId ?? '', i]));
    for (const n of nodes) {
      const info = byId.get(n.instanceId);
      const check = `SSM registration ${n.instanceId} (${n.name})`;
      if (!info)
        out.push({
          status: 'fail',
          check,
          detail:
            'not registered with Systems Manager: the controller cannot start or stop its application there. Attach AmazonSSMManagedInstanceCore to its instance profile, run the SSM agent, and let it reach the ssm, ssmmessages and ec2messages endpoints',
        });
      else if (info.PingStatus !== 'Online')
        out.push({
          status: 'fail',
          check,
          detail: `registered but ${info.PingStatus}: is the instance running, its SSM agent up and its endpoints reachable?`,
        });
      else out.push({ status: 'ok', check, detail: `Online (agent ${info.AgentVersion ?? '?'})` });
    }
  } catch (e) {
    out.push({
      status: 'fail',
      check: 'SSM registration',
      detail: `cannot read it (ssm:DescribeInstanceInformation): ${errorMessage(e)}`,
    });
  }
  return out;
}
