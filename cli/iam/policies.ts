/**
 * Least-privilege IAM policies generated from cluster definitions (`failoverctl iam-policy`).
 *
 * - controller: what reconcile needs — ReplaceRoute on the route tables of the VIP's VPC (and its
 *   `routeTableTag`), CreateRoute only on listed tables, the EIP allocations and the nodes' ENIs,
 *   the record names in each hosted zone (A records only), the deployment's guard document on the
 *   cluster's instances, StopInstances only where fencing asks for it, the state table (never the
 *   definition's items), the event bus and the alert topic. Per-node resources are listed by ARN
 *   while the policy fits a managed policy (6,144 characters), else matched by their
 *   `failover:cluster` tag.
 * - agent: one policy for any number of nodes: a node writes only the heartbeat keyed by its own
 *   instance's ARN (`NODE#<cluster>#${ec2:SourceInstanceARN}`: IAM fills in the ARN of the instance
 *   whose role session signs the request), reads its own entry of the instance index, and reads
 *   its cluster's definition, groups and peers' heartbeats — no other cluster's.
 */

import { windowsGuardDocumentName } from '../../controller/resources/guard-document';
import {
  type Grant,
  type GrantContext,
  resourceGrants,
  resourceReadActions,
} from '../../shared/config/kinds';
import type { ClusterConfig } from '../../shared/config/load';
import { keys, partitionOf } from '../../shared/table/keys';

/** IAM's limit for a customer managed policy, counted without whitespace. */
export const MANAGED_POLICY_MAX_CHARS = 6_144;
/** The tag that names a node's cluster on its instance and ENIs (the tag-matched form of the controller policy). */
export const CLUSTER_TAG = 'failover:cluster';
/** The default name of the guard's SSM document (the deployment's is failover-guard-<stage>). */
export const DEFAULT_GUARD_DOCUMENT = 'failover-guard';

export interface PolicyContext {
  /** 12-digit account id; else the definitions' `account`, else `*`. */
  account?: string;
  /** Partition (aws, aws-cn, aws-us-gov); default: the region's. */
  partition?: string;
  table: string;
  eventBus?: string;
  topicArn?: string;
  /** The guard's SSM document (DEFAULT_GUARD_DOCUMENT). */
  document?: string;
  /** Its PowerShell variant for Windows nodes (default: the guard document's name with -windows). */
  windowsDocument?: string;
  /** The deployment's agent bucket (stack output AgentBucketName): the agent may read its releases. */
  agentBucket?: string;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Statement[];
}

export interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const uniq = <T>(items: Iterable<T>): T[] => [...new Set(items)].sort();

/** Characters IAM counts for a policy (its JSON without whitespace). */
export function policySize(doc: PolicyDocument): number {
  return JSON.stringify(doc).length;
}

function accountOf(ctx: PolicyContext, configs: readonly ClusterConfig[]): string {
  if (ctx.account) return ctx.account;
  const accounts = uniq(configs.flatMap((c) => (c.account ? [c.account] : [])));
  return accounts.length === 1 ? accounts[0]! : '*';
}

function arnFor(ctx: PolicyContext, account: string) {
  return (service: string, region: string, resource: string, acct = account): string =>
    `arn:${ctx.partition ?? partitionOf(region)}:${service}:${region}:${acct}:${resource}`;
}

/** Per-node resources (ENIs, instances) in a grant's resource list. */
const PER_NODE = /:(network-interface|instance)\/[^*]+$/;

/**
 * The controller's policy. `perNode`: `list` names each node's ENIs and instances; `tag` matches them
 * by their `failover:cluster` tag; `auto` (default) lists while the policy fits a managed policy.
 */
export function controllerPolicy(
  configs: readonly ClusterConfig[],
  ctx: PolicyContext,
  perNode: 'auto' | 'list' | 'tag' = 'auto',
): PolicyDocument {
  if (perNode === 'auto') {
    const listed = controllerPolicy(configs, ctx, 'list');
    return policySize(listed) <= MANAGED_POLICY_MAX_CHARS ? listed : controllerPolicy(configs, ctx, 'tag');
  }
  const account = accountOf(ctx, configs);
  const arn = arnFor(ctx, account);
  const statements: Statement[] = [];
  const regions = uniq(configs.map((c) => c.region));
  const tableArns = regions.map((r) => arn('dynamodb', r, `table/${ctx.table}`));

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
  statements.push(definitionWriteDeny(tableArns));
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
      arn: (service, resource, acct) => arn(service, c.region, resource, acct),
      partition: ctx.partition ?? partitionOf(c.region),
      document: ctx.document ?? DEFAULT_GUARD_DOCUMENT,
      windowsDocument:
        ctx.windowsDocument ?? windowsGuardDocumentName(ctx.document ?? DEFAULT_GUARD_DOCUMENT),
      members,
    });
    for (const g of c.groups) {
      const members = c.nodes.filter((n) => g.nodes.includes(n.name));
      const canStop =
        g.fencing === 'stop-instance' || g.monitors.some((m) => m.recovery.finalAction === 'stop-node');
      if (canStop) fenced.push(...members.map((n) => arn('ec2', c.region, `instance/${n.instanceId}`)));
      for (const r of g.resources) {
        for (const grant of resourceGrants(r, grantContext(members))) mergeGrant(grants, grant);
      }
    }
  }
  if (fenced.length > 0)
    mergeGrant(grants, { sid: 'HardFence', actions: ['ec2:StopInstances'], resources: fenced });
  const clusters = uniq(configs.map((c) => c.cluster));
  for (const grant of grants.values()) statements.push(...grantStatements(grant, perNode, clusters));
  if (ctx.eventBus) {
    statements.push({
      Sid: 'TransitionEvents',
      Effect: 'Allow',
      Action: ['events:PutEvents'],
      Resource: ctx.eventBus.startsWith('arn:')
        ? ctx.eventBus
        : regions.map((r) => arn('events', r, `event-bus/${ctx.eventBus}`)),
    });
  }
  if (ctx.topicArn)
    statements.push({ Sid: 'Alerts', Effect: 'Allow', Action: ['sns:Publish'], Resource: ctx.topicArn });
  return { Version: '2012-10-17', Statement: statements };
}

/**
 * The controller never writes what only `failoverctl apply` writes: the definition (it holds the
 * commands the guard runs), the registry and the instance index (keys.ts puts them in partitions of
 * their own so that this Deny can name them).
 */
export function definitionWriteDeny(tableArns: string | string[]): Statement {
  return {
    Sid: 'NeverWriteDefinitions',
    Effect: 'Deny',
    Action: ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    Resource: tableArns,
    Condition: {
      'ForAnyValue:StringLike': {
        'dynamodb:LeadingKeys': [keys.configPk('*'), 'CLUSTERS', keys.instance('*').pk],
      },
    },
  };
}

/** A grant as statements: per-node resources listed, or matched by tag in a statement of their own. */
function grantStatements(grant: Grant, perNode: 'list' | 'tag', clusters: string[]): Statement[] {
  const base = {
    Effect: 'Allow' as const,
    Action: uniq(grant.actions),
    ...(grant.condition ? { Condition: grant.condition } : {}),
  };
  if (perNode === 'list') return [{ Sid: grant.sid, ...base, Resource: uniq(grant.resources) }];
  const nodeOnes = grant.resources.filter((r) => PER_NODE.test(r));
  const others = grant.resources.filter((r) => !PER_NODE.test(r));
  const out: Statement[] = [];
  if (others.length > 0) out.push({ Sid: grant.sid, ...base, Resource: uniq(others) });
  if (nodeOnes.length > 0) {
    out.push({
      Sid: `${grant.sid}OnClusterNodes`,
      ...base,
      Resource: uniq(nodeOnes.map((r) => r.replace(/\/[^/]+$/, '/*'))),
      Condition: {
        ...(grant.condition ?? {}),
        StringEquals: {
          ...(grant.condition?.StringEquals ?? {}),
          [`aws:ResourceTag/${CLUSTER_TAG}`]: clusters,
        },
      },
    });
  }
  return out;
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

/** IAM's policy variable for the ARN of the instance whose role session signs a request. */
export const SOURCE_INSTANCE_ARN = '${ec2:SourceInstanceARN}';

/**
 * The agents' policy: the same for every node of the clusters given, whatever their number. It needs
 * no account: the table's ARN takes `*` for it, and the instance's own ARN comes from IAM.
 */
export function agentPolicy(configs: readonly ClusterConfig[], ctx: PolicyContext): PolicyDocument {
  const account = accountOf(ctx, configs);
  const arn = arnFor(ctx, account);
  const tables = uniq(configs.map((c) => arn('dynamodb', c.region, `table/${ctx.table}`)));
  const clusters = uniq(configs.map((c) => c.cluster));
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'OwnHeartbeat',
        Effect: 'Allow',
        Action: ['dynamodb:PutItem'],
        Resource: tables,
        Condition: {
          'ForAllValues:StringEquals': {
            'dynamodb:LeadingKeys': clusters.map((c) => `NODE#${c}#${SOURCE_INSTANCE_ARN}`),
          },
        },
      },
      {
        // Which cluster and node this instance is, when the agent is started without --node.
        Sid: 'OwnInstanceEntry',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem'],
        Resource: tables,
        Condition: {
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [`INSTANCE#${SOURCE_INSTANCE_ARN}`] },
        },
      },
      {
        Sid: 'ReadOwnClusters',
        Effect: 'Allow',
        Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'],
        Resource: tables,
        Condition: {
          'ForAllValues:StringLike': {
            'dynamodb:LeadingKeys': clusters.flatMap((c) => [
              keys.clusterPk(c),
              keys.configPk(c),
              `NODE#${c}#*`,
            ]),
          },
        },
      },
      // The install document downloads the release with the instance profile: its objects, nothing else.
      ...(ctx.agentBucket
        ? [
            {
              Sid: 'AgentReleases',
              Effect: 'Allow' as const,
              Action: ['s3:GetObject'],
              Resource: `arn:${ctx.partition ?? partitionOf(configs[0]?.region ?? 'us-east-1')}:s3:::${ctx.agentBucket}/agent/*`,
            },
          ]
        : []),
    ],
  };
}
