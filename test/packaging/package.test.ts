/**
 * `serverless package` runs offline (no AWS call, no credentials) and the CloudFormation template
 * holds the functions and their triggers, the state table, the topic, the bus, the dead-letter
 * queue, the alarm and least-privilege roles.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is untyped JSON; the assertions check its shape.
type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: unknown };
let template: { Resources: Record<string, Resource>; Outputs: Record<string, unknown> };
let outDir: string;

const ofType = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);
const fn = (name: string) => template.Resources[name]!;

beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), 'sls-package-'));
  const result = spawnSync(
    'npx',
    ['serverless', 'package', '--stage', 'pkgtest', '--region', 'eu-west-1', '--package', outDir],
    {
      encoding: 'utf8',
      timeout: 240_000,
      // No credentials and no endpoint: packaging must not need AWS.
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: 'none-such-profile',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      },
    },
  );
  if (result.status !== 0)
    throw new Error(`serverless package failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  template = JSON.parse(readFileSync(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8'));
}, 300_000);

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('serverless package (offline)', () => {
  it('bundles each function into its own small zip', () => {
    for (const name of ['reconcileSchedule', 'reconcileEc2Event', 'reconcileHealth', 'reconcileStream']) {
      const zip = join(outDir, `${name}.zip`);
      expect(existsSync(zip), zip).toBe(true);
      expect(statSync(zip).size).toBeLessThan(10 * 1024 * 1024);
    }
    const lambdas = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties);
    expect(lambdas).toHaveLength(4);
    for (const l of lambdas) {
      expect(l.Runtime).toBe('nodejs22.x');
      expect(l.Handler).toMatch(/^functions\/reconcile-[a-z0-9-]+\.handler$/);
      expect(l.Environment.Variables.FAILOVER_TABLE).toEqual({ Ref: 'StateTable' });
    }
  });

  it('triggers reconcile every minute and on EC2 state changes, Spot, rebalance and Health events', () => {
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules.some((r) => r.ScheduleExpression === 'rate(1 minute)')).toBe(true);
    const patterns = rules.map((r) => r.EventPattern).filter(Boolean);
    const has = (detailType: string) => patterns.some((p) => p['detail-type']?.includes(detailType));
    expect(has('EC2 Instance State-change Notification')).toBe(true);
    expect(
      patterns.find((p) => p['detail-type']?.includes('EC2 Instance State-change Notification'))?.detail
        .state,
    ).toEqual(['stopping', 'stopped', 'shutting-down', 'terminated']);
    expect(has('EC2 Spot Instance Interruption Warning')).toBe(true);
    expect(has('EC2 Instance Rebalance Recommendation')).toBe(true);
    expect(patterns.find((p) => p.source?.includes('aws.health'))?.detail).toEqual({ service: ['EC2'] });
  });

  it('reads the state table stream with a filter that drops plain heartbeats', () => {
    const [[, mapping]] = ofType('AWS::Lambda::EventSourceMapping') as [[string, Resource]];
    expect(mapping.Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': ['StateTable', 'StreamArn'] });
    const filters = mapping.Properties.FilterCriteria.Filters.map((f: { Pattern: string }) =>
      JSON.parse(f.Pattern),
    );
    expect(filters).toContainEqual({
      eventName: ['INSERT', 'MODIFY'],
      dynamodb: { NewImage: { reason: { S: ['change'] } } },
    });
    expect(filters).toContainEqual({
      eventName: ['INSERT'],
      dynamodb: { Keys: { sk: { S: [{ prefix: 'REQUEST#' }] } } },
    });
    expect(mapping.Properties.DestinationConfig.OnFailure.Destination).toEqual({
      'Fn::GetAtt': ['ReconcileDeadLetterQueue', 'Arn'],
    });
  });

  it('creates the state table on demand with a stream, TTL and point-in-time recovery', () => {
    const t = fn('StateTable').Properties;
    expect(t.BillingMode).toBe('PAY_PER_REQUEST');
    expect(t.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
    expect(t.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(t.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(t.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
  });

  it('has an alert topic, a transition bus, a dead-letter destination for async invocations and an error alarm', () => {
    expect(ofType('AWS::SNS::Topic')).toHaveLength(1);
    expect(ofType('AWS::Events::EventBus')).toHaveLength(1);
    expect(ofType('AWS::SQS::Queue')).toHaveLength(1);
    const configs = ofType('AWS::Lambda::EventInvokeConfig').map(([, r]) => r.Properties);
    expect(configs.length).toBe(3);
    for (const c of configs)
      expect(c.DestinationConfig.OnFailure.Destination).toEqual({
        'Fn::GetAtt': ['ReconcileDeadLetterQueue', 'Arn'],
      });
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);
    expect(alarms.some((a) => a.MetricName === 'Errors' && a.AlarmActions[0].Ref === 'AlertTopic')).toBe(
      true,
    );
  });

  it('gives each function a role with only what reconcile needs (no wildcard actions)', () => {
    const lambdas = ofType('AWS::Lambda::Function').map(([, r]) => r.Properties);
    const roles = new Set(lambdas.map((l) => JSON.stringify(l.Role)));
    expect(roles).toEqual(
      new Set([
        JSON.stringify({ 'Fn::GetAtt': ['ReconcileRole', 'Arn'] }),
        JSON.stringify({ 'Fn::GetAtt': ['ReconcileStreamRole', 'Arn'] }),
      ]),
    );
    const policy = fn('ReconcilePolicy').Properties.PolicyDocument.Statement as {
      Action: string[];
      Resource: unknown;
      Condition?: unknown;
      Sid: string;
    }[];
    const actions = policy.flatMap((s) => s.Action);
    expect(actions.some((a) => a.endsWith('*'))).toBe(false);
    expect(actions).toEqual(
      expect.arrayContaining([
        'ec2:ReplaceRoute',
        'ec2:AssociateAddress',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
        'route53:ChangeResourceRecordSets',
        'ssm:SendCommand',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'sns:Publish',
      ]),
    );
    // Mutations of entry points and instances only on resources tagged for the controller.
    for (const sid of [
      'VipRoutes',
      'ElasticIps',
      'SecondaryIps',
      'RunCommandOnManagedInstances',
      'HardFence',
    ]) {
      expect(policy.find((s) => s.Sid === sid)?.Condition).toEqual({
        StringEquals: { 'aws:ResourceTag/failover:managed': 'true' },
      });
    }
    // Only the stream function may read the stream.
    const streamOnly = JSON.stringify(fn('ReconcileStreamRole').Properties.Policies);
    expect(streamOnly).toMatch(/dynamodb:GetRecords/);
    expect(JSON.stringify(fn('ReconcileRole').Properties)).not.toMatch(/GetRecords/);
  });
});
