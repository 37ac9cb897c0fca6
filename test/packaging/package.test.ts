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
import { deploymentOfTable } from '../../cli/commands/doctor-role';
import { DEFAULT_COST_INPUT } from '../../cli/cost';
import { METRICS } from '../../controller/reconcile/metrics';
import {
  DEFAULT_AGENT_PATH_WINDOWS,
  guardDocument,
  guardDocumentWindows,
  windowsGuardDocumentName,
} from '../../controller/resources/guard-document';

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is untyped JSON; the assertions check its shape.
type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: unknown };
let template: { Resources: Record<string, Resource>; Outputs: Record<string, unknown> };
let outDir: string;

const ofType = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);
const fn = (name: string) => template.Resources[name]!;
/** A policy's statements with `Fn::If [condition, statement, AWS::NoValue]` taken as the statement. */
// biome-ignore lint/suspicious/noExplicitAny: untyped template JSON.
const statements = (doc: { Statement: any[] }): any[] =>
  doc.Statement.map((st) => (st['Fn::If'] ? st['Fn::If'][1] : st));

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
      '--param=dnsZones=Z0123456789ABC,Z9876543210XYZ',
      '--param=dnsRecordNames=db.example.com,*.svc.example.com',
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
    const policy = statements(fn('ReconcilePolicy').Properties.PolicyDocument) as {
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
        // The stack's name: two deployments in one account never act on the same resources.
        StringEquals: { 'aws:ResourceTag/failover:managed': 'failover-controller-pkgtest' },
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
    // Windows nodes get the guard document's PowerShell variant, not AWS-RunPowerShellScript.
    expect(JSON.stringify(fn('ReconcilePolicy').Properties.PolicyDocument)).not.toMatch(
      /AWS-Run(PowerShell|Shell)Script/,
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

  it('lets only its own alarms publish to the topic and only its own rules use the dead-letter queue (source conditions)', () => {
    const [alarms] = fn('AlertTopicPolicy').Properties.PolicyDocument.Statement;
    expect(alarms.Condition).toEqual({
      ArnLike: {
        'aws:SourceArn': {
          'Fn::Sub': 'arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*',
        },
      },
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    });
    const [undelivered] = fn('ReconcileDeadLetterQueuePolicy').Properties.PolicyDocument.Statement;
    expect(undelivered).toMatchObject({
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Condition: {
        ArnLike: {
          'aws:SourceArn': {
            'Fn::Sub':
              'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/failover-controller-pkgtest-*',
          },
        },
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      },
    });
    // Every rule this deployment creates is named so that the condition matches it.
    for (const [, rule] of ofType('AWS::Events::Rule'))
      expect(rule.Properties.Name).toMatch(/^failover-controller-pkgtest-/);
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

describe('least privilege of the deployed role (issue 16)', () => {
  it('sends only its own guard documents (Linux and the PowerShell variant), whose content is the one the code creates', () => {
    const policy = statements(fn('ReconcilePolicy').Properties.PolicyDocument);
    const send = policy.filter((st) => st.Action.includes('ssm:SendCommand'));
    expect(send.map((st) => st.Sid).sort()).toEqual(['RunCommandOnManagedInstances', 'RunGuardDocument']);
    // The documents the role may send: these two, by ARN; the other SendCommand statement names
    // instances only (a SendCommand needs both a document and an instance it allows).
    expect(policy.find((st) => st.Sid === 'RunGuardDocument').Resource).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/${GuardDocument}' },
      {
        'Fn::Sub':
          'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/${WindowsGuardDocument}',
      },
    ]);
    const onInstances = JSON.stringify(
      policy.find((st) => st.Sid === 'RunCommandOnManagedInstances').Resource,
    );
    expect(onInstances).not.toContain(':document/');
    expect(JSON.stringify(template)).not.toMatch(/AWS-Run(PowerShell|Shell)Script/);
    const doc = fn('GuardDocument').Properties;
    expect(doc.DocumentType).toBe('Command');
    expect(doc.Name).toBe('failover-guard-pkgtest');
    expect(doc.Content).toEqual(JSON.parse(JSON.stringify(guardDocument('/usr/local/bin/failover-agent'))));
    const win = fn('WindowsGuardDocument').Properties;
    expect(win.DocumentType).toBe('Command');
    expect(win.Name).toBe(windowsGuardDocumentName('failover-guard-pkgtest'));
    expect(win.Content).toEqual(JSON.parse(JSON.stringify(guardDocumentWindows(DEFAULT_AGENT_PATH_WINDOWS))));
    for (const [, l] of ofType('AWS::Lambda::Function')) {
      expect(l.Properties.Environment.Variables.FAILOVER_SSM_DOCUMENT).toEqual({ Ref: 'GuardDocument' });
      expect(l.Properties.Environment.Variables.FAILOVER_SSM_DOCUMENT_WINDOWS).toEqual({
        Ref: 'WindowsGuardDocument',
      });
    }
  });

  it('never writes the definitions, registry or instance index', () => {
    const policy = statements(fn('ReconcilePolicy').Properties.PolicyDocument);
    expect(policy.find((st) => st.Sid === 'NeverWriteDefinitions')).toEqual({
      Sid: 'NeverWriteDefinitions',
      Effect: 'Deny',
      Action: ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      Resource: { 'Fn::GetAtt': ['StateTable', 'Arn'] },
      Condition: {
        'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': ['CONFIG#*', 'CLUSTERS', 'INSTANCE#*'] },
      },
    });
  });

  it('changes A records only in the zones and names given, and has no Route 53 permission without them', () => {
    const raw = fn('ReconcilePolicy').Properties.PolicyDocument.Statement;
    const dns = raw.filter((st: { 'Fn::If'?: unknown[] }) => st['Fn::If']);
    expect(dns.map((st: { 'Fn::If': unknown[] }) => st['Fn::If'][0])).toEqual(['HasDnsZones', 'HasDnsZones']);
    for (const st of dns) expect(st['Fn::If'][2]).toEqual({ Ref: 'AWS::NoValue' });
    const conditions = (template as unknown as { Conditions: Record<string, unknown> }).Conditions;
    expect(conditions.HasDnsZones).toEqual({
      'Fn::Not': [{ 'Fn::Equals': ['Z0123456789ABC,Z9876543210XYZ', ''] }],
    });
    const change = dns[0]['Fn::If'][1];
    expect(change.Action).toEqual(['route53:ChangeResourceRecordSets']);
    // CloudFormation's Split/Join of the parameter, evaluated here.
    expect(evaluate(change.Resource)).toEqual([
      'arn:*:route53:::hostedzone/Z0123456789ABC',
      'arn:*:route53:::hostedzone/Z9876543210XYZ',
    ]);
    expect(change.Condition['ForAllValues:StringLike']).toEqual({
      'route53:ChangeResourceRecordSetsNormalizedRecordNames': {
        'Fn::Split': [',', 'db.example.com,*.svc.example.com'],
      },
    });
    expect(change.Condition['ForAllValues:StringEquals']).toEqual({
      'route53:ChangeResourceRecordSetsRecordTypes': ['A'],
      'route53:ChangeResourceRecordSetsActions': ['UPSERT', 'DELETE'],
    });
    expect(evaluate(dns[1]['Fn::If'][1].Resource)).toEqual([
      'arn:*:route53:::change/*',
      'arn:*:route53:::hostedzone/Z0123456789ABC',
      'arn:*:route53:::hostedzone/Z9876543210XYZ',
    ]);
  });
});

describe('the deployment tuned for failover (issue 19)', () => {
  const lambda = (id: string) => fn(`${id}LambdaFunction`).Properties;
  const invokeConfig = (id: string) =>
    ofType('AWS::Lambda::EventInvokeConfig').find(
      ([, r]) => r.Properties.FunctionName.Ref === `${id}LambdaFunction`,
    )?.[1].Properties;

  it('reads the stream in parallel per shard, reports failed clusters, does not bisect and drops reports older than 5 minutes', () => {
    const [[, mapping]] = ofType('AWS::Lambda::EventSourceMapping') as [[string, Resource]];
    expect(mapping.Properties).toMatchObject({
      ParallelizationFactor: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: false,
      MaximumRecordAgeInSeconds: 300,
      MaximumRetryAttempts: 5,
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 0,
    });
  });

  it('sizes memory per function (a full vCPU on the critical path), with X-Ray on the event functions', () => {
    expect(lambda('ReconcileStream').MemorySize).toBe(1769);
    expect(lambda('ReconcileEc2Event').MemorySize).toBe(1769);
    expect(lambda('ReconcileHealth').MemorySize).toBe(1769);
    expect(lambda('ReconcileSchedule').MemorySize).toBe(512);
    // `failoverctl cost` prices the memory the template gives.
    expect(DEFAULT_COST_INPUT.lambdaMemoryMb).toBe(lambda('ReconcileStream').MemorySize);
    expect(DEFAULT_COST_INPUT.scheduleMemoryMb).toBe(lambda('ReconcileSchedule').MemorySize);
    for (const id of ['ReconcileStream', 'ReconcileEc2Event', 'ReconcileHealth'])
      expect(lambda(id).TracingConfig).toEqual({ Mode: 'Active' });
    for (const id of ['ReconcileStream', 'ReconcileEc2Event', 'ReconcileHealth', 'ReconcileSchedule'])
      expect(lambda(id).Timeout).toBe(60);
  });

  it('reserves concurrency for every function (parameters for the failover functions)', () => {
    expect(lambda('ReconcileStream').ReservedConcurrentExecutions).toBe(10);
    expect(lambda('ReconcileEc2Event').ReservedConcurrentExecutions).toBe(5);
    expect(lambda('ReconcileHealth').ReservedConcurrentExecutions).toBe(2);
    expect(lambda('ReconcileSchedule').ReservedConcurrentExecutions).toBe(2);
  });

  it('retries async invocations briefly and only while the event is fresh, then dead-letters them', () => {
    expect(invokeConfig('ReconcileSchedule')).toMatchObject({
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    expect(invokeConfig('ReconcileEc2Event')).toMatchObject({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 600,
    });
    expect(invokeConfig('ReconcileHealth')).toMatchObject({
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
    });
  });

  it('gives every EventBridge rule target a retry policy and the dead-letter queue', () => {
    const rules = ofType('AWS::Events::Rule');
    expect(rules.length).toBe(5);
    for (const [id, rule] of rules) {
      expect(rule.Properties.Targets, id).toHaveLength(1);
      expect(rule.Properties.Targets[0], id).toMatchObject({
        RetryPolicy: { MaximumEventAgeInSeconds: 600, MaximumRetryAttempts: 10 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['ReconcileDeadLetterQueue', 'Arn'] } },
      });
    }
  });

  it('names the roles by stage and region (IAM names are global to the account), as doctor finds them', () => {
    expect(fn('ReconcileRole').Properties.RoleName).toBe('failover-reconcile-pkgtest-eu-west-1');
    expect(fn('ReconcileStreamRole').Properties.RoleName).toBe('failover-reconcile-stream-pkgtest-eu-west-1');
    const named = deploymentOfTable('failover-state-pkgtest', 'eu-west-1');
    expect(named).toMatchObject({
      role: fn('ReconcileRole').Properties.RoleName,
      managedTagValue: 'failover-controller-pkgtest',
      document: fn('GuardDocument').Properties.Name,
    });
    expect(windowsGuardDocumentName(named!.document)).toBe(fn('WindowsGuardDocument').Properties.Name);
    expect(fn('StateTable').Properties.TableName).toBe('failover-state-pkgtest');
  });

  it('protects the state table from deletion', () => {
    const t = template.Resources.StateTable as Resource & { DeletionPolicy?: string };
    expect(t.Properties.DeletionProtectionEnabled).toBe(true);
    expect(t.DeletionPolicy).toBe('Retain');
  });
});

/** Evaluates the Fn::Split / Fn::Join of plain strings a template holds. */
function evaluate(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(evaluate);
  const o = v as Record<string, unknown[]>;
  if (o['Fn::Split']) return String(evaluate(o['Fn::Split'][1])).split(String(o['Fn::Split'][0]));
  if (o['Fn::Join']) return (evaluate(o['Fn::Join'][1]) as unknown[]).join(String(o['Fn::Join'][0]));
  return v;
}
