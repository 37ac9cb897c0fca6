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
import {
  type Grant,
  type GrantContext,
  resourceGrants,
  resourceReadActions,
} from '../../shared/config/kinds';
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
  /** The deployment's agent bucket (stack output AgentBucketName): the agent may read its releases. */
  agentBucket?: string;
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
  const resources = configs.flatMap((c) => c.groups.flatMap((g) => g.resources));
  statements.push({
    Sid: 'Describe',
    Effect: 'Allow',
    // Describe calls do not support resource-level permissions.
    Action: uniq([
      'ec2:DescribeAvailabilityZones',
      'ec2:DescribeInstanceStatus',
      'ec2:DescribeInstances',
      ...resourceReadActions(resources),
    ]),
    Resource: '*',
  });

  // What each resource needs, from the kinds table (shared/config/kinds.ts), merged by Sid.
  const grants = new Map<string, Grant>();
  const fenced: string[] = [];
  for (const c of configs) {
    const grantContext = (members: GrantContext['members']): GrantContext => ({
      arn: (service, resource, account) => arn(ctx, service, c.region, resource, account),
      partition: ctx.partition ?? 'aws',
      members,
    });
    for (const g of c.groups) {
      const members = c.nodes.filter((n) => g.nodes.includes(n.name));
      const canStop =
        g.fencing === 'stop-instance' || g.monitors.some((m) => m.recovery.finalAction === 'stop-node');
      if (canStop) fenced.push(...members.map((n) => arn(ctx, 'ec2', c.region, `instance/${n.instanceId}`)));
      for (const r of g.resources) {
        for (const grant of resourceGrants(r, grantContext(members))) mergeGrant(grants, grant);
      }
    }
  }
  for (const grant of grants.values()) {
    statements.push({
      Sid: grant.sid,
      Effect: 'Allow',
      Action: uniq(grant.actions),
      Resource: uniq(grant.resources),
      ...(grant.condition ? { Condition: grant.condition } : {}),
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

/** Adds a grant to the ones of the same Sid: actions, resources and condition values united. */
function mergeGrant(grants: Map<string, Grant>, grant: Grant): void {
  const had = grants.get(grant.sid);
  if (!had) {
    grants.set(grant.sid, structuredClone(grant));
    return;
  }
  had.actions = uniq([...had.actions, ...grant.actions]);
  had.resources = uniq([...had.resources, ...grant.resources]);
  for (const [operator, keys] of Object.entries(grant.condition ?? {})) {
    const into = had.condition ?? {};
    const op = into[operator] ?? {};
    for (const [key, values] of Object.entries(keys)) op[key] = uniq([...(op[key] ?? []), ...values]);
    into[operator] = op;
    had.condition = into;
  }
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
  // The install document downloads the release with the instance profile: its objects, nothing else.
  if (ctx.agentBucket)
    statements.push({
      Sid: 'AgentReleases',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: `arn:${ctx.partition ?? 'aws'}:s3:::${ctx.agentBucket}/agent/*`,
    });
  return { Version: '2012-10-17', Statement: statements };
}
