/**
 * Least-privilege IAM policies generated from cluster definitions (`failoverctl iam-policy`).
 *
 * - controller: what reconcile needs — routes of the VIP's VPC (or the listed tables), the EIP
 *   allocations, the record names in each hosted zone (A records only), SSM Run Command of the
 *   configured documents on the cluster's instances, StopInstances only where fencing asks for it,
 *   the state table and its stream, the event bus and the alert topic.
 * - agent: one role may serve every node: each node may write only its own heartbeat item
 *   (`dynamodb:LeadingKeys` = NODE#<cluster>#<node>, and only from its own instance through
 *   `ec2:SourceInstanceARN`), and read the cluster's config, groups and peers.
 */
import type { ClusterConfig } from '../../shared/config/load';
import { heartbeatPk, keys } from '../../shared/table/keys';

export interface PolicyContext {
  /** 12-digit account id; `*` when unknown. */
  account?: string;
  /** Partition (aws, aws-cn, aws-us-gov). */
  partition?: string;
  table: string;
  eventBus?: string;
  topicArn?: string;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Statement[];
}

interface Statement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const uniq = <T>(items: Iterable<T>): T[] => [...new Set(items)].sort();

function arn(
  ctx: PolicyContext,
  service: string,
  region: string,
  resource: string,
  account = ctx.account ?? '*',
): string {
  return `arn:${ctx.partition ?? 'aws'}:${service}:${region}:${account}:${resource}`;
}

export function controllerPolicy(configs: readonly ClusterConfig[], ctx: PolicyContext): PolicyDocument {
  const statements: Statement[] = [];
  const regions = uniq(configs.map((c) => c.region));
  const tableArns = regions.map((r) => arn(ctx, 'dynamodb', r, `table/${ctx.table}`));

  statements.push({
    Sid: 'StateTable',
    Effect: 'Allow',
    Action: [
      'dynamodb:BatchGetItem',
      'dynamodb:ConditionCheckItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ],
    Resource: tableArns,
  });
  statements.push({
    Sid: 'StateTableStream',
    Effect: 'Allow',
    Action: [
      'dynamodb:DescribeStream',
      'dynamodb:GetRecords',
      'dynamodb:GetShardIterator',
      'dynamodb:ListStreams',
    ],
    Resource: tableArns.map((t) => `${t}/stream/*`),
  });
  statements.push({
    Sid: 'Describe',
    Effect: 'Allow',
    // Describe calls do not support resource-level permissions.
    Action: [
      'ec2:DescribeAddresses',
      'ec2:DescribeAvailabilityZones',
      'ec2:DescribeInstanceStatus',
      'ec2:DescribeInstances',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeRouteTables',
      'ec2:DescribeVpcs',
      'ssm:GetCommandInvocation',
    ],
    Resource: '*',
  });

  const routeTables: string[] = [];
  const vpcs: string[] = [];
  const eips: string[] = [];
  const enis: string[] = [];
  const zones = new Map<string, Set<string>>();
  const documents = new Set<string>();
  const instances: string[] = [];
  const fenced: string[] = [];
  for (const c of configs) {
    for (const g of c.groups) {
      const members = c.nodes.filter((n) => g.nodes.includes(n.name));
      const canStop =
        g.fencing === 'stop-instance' || g.monitors.some((m) => m.recovery.finalAction === 'stop-node');
      for (const n of members) {
        instances.push(arn(ctx, 'ec2', c.region, `instance/${n.instanceId}`));
        if (canStop) fenced.push(arn(ctx, 'ec2', c.region, `instance/${n.instanceId}`));
      }
      for (const r of g.resources) {
        if (r.type === 'vip') {
          if (r.routeTableIds?.length)
            routeTables.push(...r.routeTableIds.map((t) => arn(ctx, 'ec2', c.region, `route-table/${t}`)));
          vpcs.push(arn(ctx, 'ec2', c.region, `vpc/${r.vpcId}`));
        } else if (r.type === 'eip') {
          eips.push(arn(ctx, 'ec2', c.region, `elastic-ip/${r.allocationId}`));
          for (const n of members) {
            const eni = r.eni?.[n.name] ?? n.eni;
            if (eni) enis.push(arn(ctx, 'ec2', c.region, `network-interface/${eni}`));
          }
        } else if (r.type === 'dns') {
          const zone = r.hostedZoneId.replace(/^\/hostedzone\//, '');
          const names = zones.get(zone) ?? new Set<string>();
          names.add(r.recordName.replace(/\.$/, ''));
          zones.set(zone, names);
        } else if (r.type === 'exec') {
          documents.add(
            r.document.startsWith('AWS-')
              ? arn(ctx, 'ssm', c.region, `document/${r.document}`, '')
              : arn(ctx, 'ssm', c.region, `document/${r.document}`),
          );
        }
      }
    }
  }
  if (vpcs.length > 0) {
    statements.push({
      Sid: 'VipRoutesInVpc',
      Effect: 'Allow',
      Action: ['ec2:CreateRoute', 'ec2:ReplaceRoute'],
      Resource: configs
        .map((c) => arn(ctx, 'ec2', c.region, 'route-table/*'))
        .filter((v, i, a) => a.indexOf(v) === i),
      Condition: { StringEquals: { 'ec2:Vpc': uniq(vpcs) } },
    });
  }
  if (routeTables.length > 0) {
    statements.push({
      Sid: 'VipListedRouteTables',
      Effect: 'Allow',
      Action: ['ec2:CreateRoute', 'ec2:ReplaceRoute'],
      Resource: uniq(routeTables),
    });
  }
  if (eips.length > 0) {
    statements.push({
      Sid: 'ElasticIps',
      Effect: 'Allow',
      Action: ['ec2:AssociateAddress', 'ec2:DisassociateAddress'],
      Resource: uniq([...eips, ...enis]),
    });
  }
  if (zones.size > 0) {
    for (const [zone, names] of [...zones].sort()) {
      statements.push({
        Sid: `Dns${zone.replace(/[^A-Za-z0-9]/g, '')}`,
        Effect: 'Allow',
        Action: ['route53:ChangeResourceRecordSets'],
        Resource: `arn:${ctx.partition ?? 'aws'}:route53:::hostedzone/${zone}`,
        Condition: {
          'ForAllValues:StringEquals': {
            'route53:ChangeResourceRecordSetsNormalizedRecordNames': uniq(names),
            'route53:ChangeResourceRecordSetsRecordTypes': ['A'],
            'route53:ChangeResourceRecordSetsActions': ['DELETE', 'UPSERT'],
          },
        },
      });
    }
    statements.push({
      Sid: 'DnsRead',
      Effect: 'Allow',
      Action: ['route53:GetChange', 'route53:ListResourceRecordSets'],
      Resource: [
        ...uniq([...zones.keys()].map((z) => `arn:${ctx.partition ?? 'aws'}:route53:::hostedzone/${z}`)),
        `arn:${ctx.partition ?? 'aws'}:route53:::change/*`,
      ],
    });
  }
  if (documents.size > 0) {
    statements.push({
      Sid: 'RunCommand',
      Effect: 'Allow',
      Action: ['ssm:SendCommand'],
      Resource: uniq([...documents, ...instances]),
    });
  }
  if (fenced.length > 0) {
    statements.push({
      Sid: 'HardFence',
      Effect: 'Allow',
      Action: ['ec2:StopInstances'],
      Resource: uniq(fenced),
    });
  }
  if (ctx.eventBus) {
    statements.push({
      Sid: 'TransitionEvents',
      Effect: 'Allow',
      Action: ['events:PutEvents'],
      Resource: ctx.eventBus.startsWith('arn:')
        ? ctx.eventBus
        : regions.map((r) => arn(ctx, 'events', r, `event-bus/${ctx.eventBus}`)),
    });
  }
  if (ctx.topicArn)
    statements.push({ Sid: 'Alerts', Effect: 'Allow', Action: ['sns:Publish'], Resource: ctx.topicArn });
  return { Version: '2012-10-17', Statement: statements };
}

export function agentPolicy(config: ClusterConfig, ctx: PolicyContext): PolicyDocument {
  const table = arn(ctx, 'dynamodb', config.region, `table/${ctx.table}`);
  const statements: Statement[] = config.nodes.map((n) => ({
    Sid: `OwnHeartbeat${n.name.replace(/[^A-Za-z0-9]/g, '')}`,
    Effect: 'Allow' as const,
    Action: ['dynamodb:PutItem'],
    Resource: table,
    Condition: {
      'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [heartbeatPk(config.cluster, n.name)] },
      StringEquals: { 'ec2:SourceInstanceARN': arn(ctx, 'ec2', config.region, `instance/${n.instanceId}`) },
    },
  }));
  statements.push({
    Sid: 'ReadClusterState',
    Effect: 'Allow',
    Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'],
    Resource: table,
    Condition: {
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': [
          keys.clusterPk(config.cluster),
          heartbeatPk(config.cluster, '*'),
          'INSTANCE#*',
        ],
      },
    },
  });
  return { Version: '2012-10-17', Statement: statements };
}
