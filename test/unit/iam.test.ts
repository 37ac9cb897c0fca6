import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentPolicy, controllerPolicy } from '../../cli/iam/policies';
import { loadClusterConfigText } from '../../shared/config/load';

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
};

describe('least-privilege IAM policies', () => {
  const byId = (doc: ReturnType<typeof controllerPolicy>) =>
    Object.fromEntries(doc.Statement.map((s) => [s.Sid, s]));

  it('controller: routes of the VIP VPC only, the EIP and its ENIs, the record name, the document on the cluster instances', () => {
    const s = byId(controllerPolicy([config], ctx));
    expect(s.VipRoutesInVpc).toMatchObject({
      Action: ['ec2:CreateRoute', 'ec2:ReplaceRoute'],
      Resource: ['arn:aws:ec2:us-east-1:111122223333:route-table/*'],
      Condition: { StringEquals: { 'ec2:Vpc': ['arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0abc'] } },
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
    expect(s.RunCommand?.Resource).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0aaa',
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb',
      'arn:aws:ssm:us-east-1::document/AWS-RunShellScript',
    ]);
    expect(s.StateTable?.Resource).toEqual(['arn:aws:dynamodb:us-east-1:111122223333:table/failover-state']);
    expect(s.Alerts?.Resource).toBe(ctx.topicArn);
    // No hard fence configured: no StopInstances at all.
    expect(s.HardFence).toBeUndefined();
    expect(JSON.stringify(controllerPolicy([config], ctx))).not.toMatch(
      /"Action":\s*"\*"|ec2:\*|dynamodb:\*/,
    );
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

  it('agent: each node writes only its own heartbeat item, from its own instance', () => {
    const doc = agentPolicy(config, ctx);
    const own = doc.Statement.find((s) => s.Sid === 'OwnHeartbeatnode1');
    expect(own).toMatchObject({
      Action: ['dynamodb:PutItem'],
      Condition: {
        'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['NODE#orders#node1'] },
        StringEquals: { 'ec2:SourceInstanceARN': 'arn:aws:ec2:us-east-1:111122223333:instance/i-0aaa' },
      },
    });
    const read = doc.Statement.find((s) => s.Sid === 'ReadClusterState');
    expect(read?.Action).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query']);
    expect(
      doc.Statement.flatMap((s) => s.Action).filter(
        (a) =>
          a !== 'dynamodb:PutItem' &&
          !a.startsWith('dynamodb:BatchGet') &&
          a !== 'dynamodb:GetItem' &&
          a !== 'dynamodb:Query',
      ),
    ).toEqual([]);
  });
});
