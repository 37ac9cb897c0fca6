import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  agentPolicy,
  controllerPolicy,
  MANAGED_POLICY_MAX_CHARS,
  type PolicyDocument,
  policySize,
} from '../../cli/iam/policies';
import { type ClusterConfig, loadClusterConfigText } from '../../shared/config/load';

const loaded = loadClusterConfigText(
  readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8'),
);
if (!loaded.ok) throw new Error('example must be valid');
const config = loaded.config;
const ctx = {
  account: '111122223333',
  table: 'failover-state',
  eventBus: 'default',
  topicArn: 'arn:aws:sns:us-east-1:111122223333:failover-alerts',
  document: 'failover-guard-prod',
};

/** The example's cluster with `n` nodes, every group on all of them. */
function withNodes(n: number): ClusterConfig {
  const nodes = Array.from({ length: n }, (_, i) => ({
    name: i % 2 === 0 ? `node-${i}` : `node${i}`, // node-1 and node1 gave the same Sid before
    instanceId: `i-0${(i + 1).toString(16).padStart(16, '0')}`,
    eni: `eni-0${(i + 1).toString(16).padStart(16, '0')}`,
    az: i % 2 === 0 ? 'us-east-1a' : 'us-east-1b',
    privateIp: `10.0.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    platform: 'linux' as const,
  }));
  return {
    ...config,
    nodes,
    groups: config.groups.map((g) => ({
      ...g,
      fencing: 'stop-instance' as const,
      nodes: nodes.map((x) => x.name),
    })),
  };
}

/** What IAM checks of a document before it accepts it (the parts a generator can get wrong). */
function expectValidPolicy(doc: PolicyDocument): void {
  const json = JSON.stringify(doc);
  expect(JSON.parse(json)).toEqual(doc);
  expect(doc.Version).toBe('2012-10-17');
  const sids = doc.Statement.map((s) => s.Sid);
  expect(new Set(sids).size).toBe(sids.length);
  for (const s of doc.Statement) {
    expect(s.Sid).toMatch(/^[A-Za-z0-9]+$/);
    expect(['Allow', 'Deny']).toContain(s.Effect);
    expect(s.Action.length).toBeGreaterThan(0);
    expect([s.Resource].flat().length).toBeGreaterThan(0);
    for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
      // `*` is a wildcard only in the Like operators: in StringEquals / ArnEquals it is a literal
      // star, and a policy with one there denies everything (the agent policy without --account).
      if (!/Like$/.test(operator))
        for (const value of Object.values(keys).flat())
          expect(value, `${s.Sid} ${operator}`).not.toContain('*');
      // Policy variables are written ${service:key}.
      for (const value of Object.values(keys).flat())
        if (value.includes('$')) expect(value).toMatch(/\$\{[a-z0-9]+:[A-Za-z]+\}/);
    }
  }
  expect(policySize(doc)).toBeLessThanOrEqual(MANAGED_POLICY_MAX_CHARS);
}

describe('least-privilege IAM policies', () => {
  const byId = (doc: PolicyDocument) => Object.fromEntries(doc.Statement.map((s) => [s.Sid, s]));

  it('controller: routes of the VIP VPC only, the EIP and its ENIs, the record name, the guard document on the cluster instances', () => {
    const doc = controllerPolicy([config], ctx);
    expectValidPolicy(doc);
    const s = byId(doc);
    expect(s.VipRoutesInVpc).toEqual({
      Sid: 'VipRoutesInVpc',
      Effect: 'Allow',
      // No CreateRoute: routes are only created in tables the definition lists (routeTableIds).
      Action: ['ec2:ReplaceRoute'],
      Resource: ['arn:aws:ec2:us-east-1:111122223333:route-table/*'],
      Condition: { ArnLike: { 'ec2:Vpc': ['arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0abc'] } },
    });
    expect(s.ElasticIps?.Resource).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:elastic-ip/eipalloc-0abc',
      'arn:aws:ec2:us-east-1:111122223333:network-interface/eni-0aaa',
      'arn:aws:ec2:us-east-1:111122223333:network-interface/eni-0bbb',
    ]);
    expect(s.DnsZ0123).toMatchObject({
      Action: ['route53:ChangeResourceRecordSets'],
      Resource: ['arn:aws:route53:::hostedzone/Z0123'],
      Condition: {
        'ForAllValues:StringEquals': {
          'route53:ChangeResourceRecordSetsNormalizedRecordNames': ['db.example.internal'],
          'route53:ChangeResourceRecordSetsRecordTypes': ['A'],
        },
      },
    });
    // Before: AWS-RunShellScript, free text as root on the nodes.
    expect(s.RunCommand?.Resource).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0aaa',
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb',
      'arn:aws:ssm:us-east-1:111122223333:document/failover-guard-prod',
    ]);
    expect(JSON.stringify(doc)).not.toContain('AWS-RunShellScript');
    // The definition (and the commands in it) can only be written by `failoverctl apply`.
    expect(s.NeverWriteDefinitions).toMatchObject({
      Effect: 'Deny',
      Condition: {
        'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': ['CONFIG#*', 'CLUSTERS', 'INSTANCE#*'] },
      },
    });
    expect(s.StateTable?.Resource).toEqual(['arn:aws:dynamodb:us-east-1:111122223333:table/failover-state']);
    expect(s.Alerts?.Resource).toBe(ctx.topicArn);
    // No hard fence configured: no StopInstances at all.
    expect(s.HardFence).toBeUndefined();
    expect(JSON.stringify(doc)).not.toMatch(/"Action":\s*"\*"|ec2:\*|dynamodb:\*/);
  });

  it('controller: routeTableTag narrows the route tables; listed tables alone may get a route created', () => {
    const tagged = structuredClone(config);
    const vip = tagged.groups[0]!.resources.find((r) => r.type === 'vip')!;
    if (vip.type !== 'vip') throw new Error('vip expected');
    vip.routeTableTag = { key: 'failover', value: 'orders' };
    vip.routeTableIds = ['rtb-0aaa'];
    const s = byId(controllerPolicy([tagged], ctx));
    // Before: the generated policy ignored routeTableTag.
    expect(s.VipRoutesInVpc?.Condition).toEqual({
      ArnLike: { 'ec2:Vpc': ['arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0abc'] },
      StringEquals: { 'aws:ResourceTag/failover': ['orders'] },
    });
    expect(s.VipListedRouteTables).toMatchObject({
      Action: ['ec2:CreateRoute', 'ec2:ReplaceRoute'],
      Resource: ['arn:aws:ec2:us-east-1:111122223333:route-table/rtb-0aaa'],
    });
  });

  it('controller: a secondary IP may move between the ENIs of its group only', () => {
    const withSecondaryIp = {
      ...config,
      groups: [
        ...config.groups,
        {
          ...config.groups[0]!,
          name: 'fip',
          resources: [
            { type: 'secondaryIp' as const, name: 'fip-ip', ip: '10.0.1.50', subnetCidr: '10.0.1.0/24' },
          ],
          monitors: [],
        },
      ],
    };
    const s = byId(controllerPolicy([withSecondaryIp], ctx));
    expect(s.SecondaryIps).toEqual({
      Sid: 'SecondaryIps',
      Effect: 'Allow',
      Action: ['ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      Resource: [
        'arn:aws:ec2:us-east-1:111122223333:network-interface/eni-0aaa',
        'arn:aws:ec2:us-east-1:111122223333:network-interface/eni-0bbb',
      ],
    });
    expect(s.Describe?.Action).toContain('ec2:DescribeNetworkInterfaces');
  });

  it('controller may stop only the instances of groups that fence', () => {
    const fencing = {
      ...config,
      groups: config.groups.map((g) => ({ ...g, fencing: 'stop-instance' as const })),
    };
    expect(byId(controllerPolicy([fencing], ctx)).HardFence?.Resource).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0aaa',
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb',
    ]);
  });

  it('controller: valid without --account (wildcards only where IAM reads them), and within a managed policy at 1, 16 and 100 nodes', () => {
    for (const n of [1, 16, 100]) {
      for (const account of [ctx.account, undefined]) {
        const doc = controllerPolicy([withNodes(n)], {
          ...ctx,
          ...(account ? { account } : { account: undefined }),
        });
        expectValidPolicy(doc);
        if (!account) expect(JSON.stringify(doc)).toContain('arn:aws:ec2:us-east-1:*:vpc/vpc-0abc');
      }
    }
    // 100 nodes do not fit as a list: the nodes' ENIs and instances are matched by their cluster tag.
    const large = byId(controllerPolicy([withNodes(100)], ctx));
    expect(large.RunCommandOnClusterNodes).toMatchObject({
      Resource: ['arn:aws:ec2:us-east-1:111122223333:instance/*'],
      Condition: { StringEquals: { 'aws:ResourceTag/failover:cluster': ['orders'] } },
    });
    expect(large.RunCommand?.Resource).toEqual([
      'arn:aws:ssm:us-east-1:111122223333:document/failover-guard-prod',
    ]);
    expect(byId(controllerPolicy([withNodes(1)], ctx)).RunCommandOnClusterNodes).toBeUndefined();
  });

  it('prints the policy sizes at 1, 16 and 100 nodes (characters IAM counts, limit 6,144)', () => {
    const rows = [1, 16, 100].map((n) => {
      const controller = policySize(controllerPolicy([withNodes(n)], ctx));
      const agent = policySize(agentPolicy([withNodes(n)], { table: 'failover-state' }));
      expect(Math.max(controller, agent)).toBeLessThanOrEqual(MANAGED_POLICY_MAX_CHARS);
      return `${n} nodes: controller ${controller}, agent ${agent}`;
    });
    console.log(`policy sizes (of ${MANAGED_POLICY_MAX_CHARS}): ${rows.join('; ')}`);
  });

  it('agent: one policy for any number of nodes; each node writes only the heartbeat keyed by its own instance', () => {
    const docs = [1, 16, 100].map((n) => agentPolicy([withNodes(n)], { table: 'failover-state' }));
    for (const doc of docs) expectValidPolicy(doc);
    // Before: one statement per node, node-1 and node1 gave the same Sid, and 16 nodes passed 6,144 characters.
    expect(docs[1]).toEqual(docs[0]);
    expect(docs[2]).toEqual(docs[0]);
    const s = byId(docs[0]!);
    expect(s.OwnHeartbeat).toEqual({
      Sid: 'OwnHeartbeat',
      Effect: 'Allow',
      Action: ['dynamodb:PutItem'],
      // Valid without --account: `*` in the Resource ARN is a wildcard there.
      Resource: ['arn:aws:dynamodb:us-east-1:*:table/failover-state'],
      Condition: {
        // IAM fills in the ARN of the instance whose role session signed the request.
        'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['NODE#orders#${ec2:SourceInstanceARN}'] },
      },
    });
    expect(s.OwnInstanceEntry?.Condition).toEqual({
      'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['INSTANCE#${ec2:SourceInstanceARN}'] },
    });
    // Before: INSTANCE#* of every cluster was readable.
    expect(JSON.stringify(docs[0])).not.toContain('INSTANCE#*');
    expect(s.ReadOwnClusters).toMatchObject({
      Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'],
      Condition: {
        'ForAllValues:StringLike': {
          'dynamodb:LeadingKeys': ['CLUSTER#orders', 'CONFIG#orders', 'NODE#orders#*'],
        },
      },
    });
    const writes = docs[0]!.Statement.flatMap((x) => x.Action).filter(
      (a) => !/^dynamodb:(BatchGetItem|GetItem|Query)$/.test(a),
    );
    expect(writes).toEqual(['dynamodb:PutItem']);
  });
});
