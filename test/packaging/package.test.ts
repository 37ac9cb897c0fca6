/**
 * `serverless package` runs offline (no AWS call, no credentials) and the CloudFormation template
 * holds the functions and their triggers, the state table, the topic and its e-mail subscription,
 * the bus, the dead-letter queue, the alarms, the dashboard and least-privilege roles.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../controller/reconcile/metrics';

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
    [
      'serverless',
      'package',
      '--stage',
      'pkgtest',
      '--region',
      'eu-west-1',
      '--package',
      outDir,
      '--param=alertEmail=ops@example.com',
    ],
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

  it("creates the agent install document (Linux and Windows, typed parameters), a private bucket for the releases, the nodes' read policy and an optional association", () => {
    const doc = fn('AgentInstallDocument') as Resource;
    expect(doc.Type).toBe('AWS::SSM::Document');
    expect(doc.Properties.DocumentType).toBe('Command');
    expect(doc.Properties.Name).toBe('failover-agent-install-pkgtest');
    const content = doc.Properties.Content;
    expect(content.schemaVersion).toBe('2.2');
    expect(Object.keys(content.parameters).sort()).toEqual(
      ['cluster', 'node', 'sha256Linux', 'sha256Windows', 'table', 'version', 'watchdogSeconds'].sort(),
    );
    // Every parameter reaches a shell or PowerShell as text: each has a pattern.
    for (const [name, p] of Object.entries(content.parameters as Record<string, { allowedPattern?: string }>))
      expect(p.allowedPattern, name).toMatch(/^\^/);
    expect(content.parameters.sha256Linux.allowedPattern).toBe('^[0-9a-f]{64}$');
    expect(content.parameters.table.default).toEqual({ Ref: 'StateTable' });
    const steps = content.mainSteps as {
      action: string;
      name: string;
      precondition: unknown;
      inputs: Record<string, unknown>;
    }[];
    expect(steps.map((s) => [s.action, s.precondition])).toEqual([
      ['aws:downloadContent', { StringEquals: ['platformType', 'Linux'] }],
      ['aws:runShellScript', { StringEquals: ['platformType', 'Linux'] }],
      ['aws:downloadContent', { StringEquals: ['platformType', 'Windows'] }],
      ['aws:runPowerShellScript', { StringEquals: ['platformType', 'Windows'] }],
    ]);
    // The download is from this deployment's bucket; the sum is checked before anything runs.
    expect(JSON.stringify(steps[0]!.inputs.sourceInfo)).toContain(`\${AgentBucket}`);
    expect((steps[1]!.inputs.runCommand as string[]).join('\n')).toMatch(
      /sha256sum -c -[\s\S]*tar xzf[\s\S]*install\.sh/,
    );
    expect((steps[3]!.inputs.runCommand as string[]).join('\n')).toMatch(
      /Get-FileHash[\s\S]*Expand-Archive[\s\S]*install\.ps1/,
    );

    const bucket = fn('AgentBucket').Properties;
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(JSON.stringify(fn('AgentBucketPolicy').Properties)).toContain('aws:SecureTransport');
    const read = fn('AgentArtifactsReadPolicy').Properties.PolicyDocument.Statement;
    expect(read).toEqual([
      {
        Sid: 'AgentReleases',
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: { 'Fn::Sub': `\${AgentBucket.Arn}/agent/*` },
      },
    ]);
    const association = template.Resources.AgentAssociation as Resource & { Condition?: string };
    expect(association.Condition).toBe('HasAgentRelease');
    expect(association.Properties.Targets).toEqual([{ Key: 'tag-key', Values: ['failover:cluster'] }]);
    expect(association.Properties.MaxConcurrency).toBe('1');
    for (const out of ['AgentBucketName', 'AgentInstallDocumentName', 'AgentArtifactsReadPolicyArn'])
      expect(template.Outputs[out], out).toBeTruthy();
    // The controller may send the PowerShell twin of the shell document (Windows nodes), nothing else.
    const policy = fn('ReconcilePolicy').Properties.PolicyDocument.Statement as {
      Sid: string;
      Resource: unknown;
    }[];
    expect(JSON.stringify(policy.find((s) => s.Sid === 'RunCommandDocument')?.Resource)).toMatch(
      /AWS-RunShellScript.*AWS-RunPowerShellScript/,
    );
  });

  it('subscribes the alertEmail address to the topic, and nothing else publishes there but reconcile and alarms', () => {
    const [[, sub]] = ofType('AWS::SNS::Subscription') as [[string, Resource & { Condition?: string }]];
    expect(sub.Properties).toEqual({
      TopicArn: { Ref: 'AlertTopic' },
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    // Without the parameter the subscription is left out (the condition compares with '').
    expect(sub.Condition).toBe('HasAlertEmail');
    expect((template as unknown as { Conditions: Record<string, unknown> }).Conditions.HasAlertEmail).toEqual(
      {
        'Fn::Not': [{ 'Fn::Equals': ['ops@example.com', ''] }],
      },
    );
    // A transition reaches the topic once: no EventBridge rule forwards raw events to it any more.
    const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
    expect(rules.filter((r) => JSON.stringify(r.Targets ?? []).includes('AlertTopic'))).toEqual([]);
    const principals = fn('AlertTopicPolicy').Properties.PolicyDocument.Statement.map(
      (st: { Principal: { Service: string } }) => st.Principal.Service,
    );
    expect(principals).toEqual(['cloudwatch.amazonaws.com']);
  });

  it('alarms on a group not online, reconcile failures, dead letters, stream lag and every function error, all to the alert topic', () => {
    const alarms = Object.fromEntries(ofType('AWS::CloudWatch::Alarm').map(([id, r]) => [id, r.Properties]));
    for (const a of Object.values(alarms)) {
      expect(a.AlarmActions).toEqual([{ Ref: 'AlertTopic' }]);
      expect(a.OKActions).toEqual([{ Ref: 'AlertTopic' }]);
    }
    const functionErrors = Object.values(alarms)
      .filter((a) => a.Namespace === 'AWS/Lambda' && a.MetricName === 'Errors')
      .map((a) => a.Dimensions[0].Value.Ref)
      .sort();
    expect(functionErrors).toEqual(
      ofType('AWS::Lambda::Function')
        .map(([id]) => id)
        .sort(),
    );
    expect(alarms.GroupNotOnlineAlarm).toMatchObject({
      Namespace: 'FailoverController',
      MetricName: 'GroupsNotOnline',
      Dimensions: [{ Name: 'service', Value: 'failover-controller' }],
      Statistic: 'Maximum',
      Period: 60,
      EvaluationPeriods: 5,
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    expect(alarms.ReconcileFailuresAlarm).toMatchObject({
      Namespace: 'FailoverController',
      MetricName: 'ReconcileErrors',
    });
    expect(alarms.DeadLetterQueueAlarm).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['ReconcileDeadLetterQueue', 'QueueName'] } }],
    });
    expect(alarms.StreamIteratorAgeAlarm).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ReconcileStreamLambdaFunction' } }],
      Threshold: 30000,
    });
  });

  it('has a dashboard of groups online, failovers and their durations, lease ages, reconcile errors, the functions and the stream', () => {
    const [[, dashboard]] = ofType('AWS::CloudWatch::Dashboard') as [[string, Resource]];
    const sub: string = dashboard.Properties.DashboardBody['Fn::Sub'];
    // Every ${...} is a pseudo parameter or a resource of this template, resolved by CloudFormation.
    const refs = [...sub.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]!.split('.')[0]!);
    for (const ref of refs) expect(ref === 'AWS::Region' || ref in template.Resources, ref).toBe(true);
    const body = JSON.parse(sub.replace(/\$\{[^}]+\}/g, 'x')) as {
      widgets: { type: string; properties: { title?: string; metrics?: unknown[] } }[];
    };
    const titles = body.widgets.map((w) => w.properties.title).filter(Boolean);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Groups online (1 = Online)',
        'Failovers',
        'Failover duration (decision to online)',
        'Lease age per node (ms)',
        'Reconcile outcomes and errors',
        'Function errors',
        'Function duration (p99, ms)',
        'Function throttles',
        'Stream iterator age (ms) and dead letters',
      ]),
    );
    const text = JSON.stringify(body);
    for (const metric of [
      'GroupOnline',
      'Failovers',
      'FailoverDuration',
      'EntryPointSwitchTime',
      'LeaseAge',
      'ReconcileErrors',
      'IteratorAge',
      'Throttles',
    ])
      expect(text).toContain(metric);
    // Each metric a widget names is one the functions publish (shared/metrics/controller-metrics.ts).
    const searched = [...text.matchAll(/MetricName=\\"(\w+)\\"/g)].map((m) => m[1]!);
    expect(searched.length).toBeGreaterThan(10);
    for (const name of searched) expect(Object.keys(METRICS)).toContain(name);
  });
});
