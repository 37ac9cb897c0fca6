/**
 * exec through SSM Run Command and the instance-side calls (describe, zones, hard fence) against
 * moto. moto records commands but runs nothing and reports Success at once: the end state we can
 * assert is the command moto holds (the guard document, the instance, its typed parameters). moto
 * checks neither instance ids nor parameters against the document, so the document's own checks are
 * shown here with the sandbox's renderer (what SSM does), and failed commands by the sandbox
 * end-to-end tests, where the commands really run.
 */
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { GetDocumentCommand, ListCommandsCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../../controller/resources';
import { createExecDriver, guardParameters } from '../../../controller/resources/exec';
import {
  DEFAULT_AGENT_PATH_WINDOWS,
  ensureGuardDocument,
  guardDocument,
  guardDocumentWindows,
} from '../../../controller/resources/guard-document';
import { describeInstances, describeZones, stopInstance } from '../../../controller/resources/instances';
import { renderDocument } from '../../../sandbox/run-command';
import { ConflictError } from '../../../shared/base/errors';
import { aws } from '../support';
import { createFixture, type Fixture } from './fixture';
import { request } from './helpers';

describe('exec via SSM Run Command (moto)', () => {
  let fx: Fixture;
  let ssm: SSMClient;
  const document = 'failover-guard-test';
  beforeAll(async () => {
    fx = await createFixture();
    ssm = createAwsClients(aws()).ssm;
    await ensureGuardDocument(ssm, document, '/usr/local/bin/failover-agent');
  });

  const exec = () => createExecDriver(ssm, { document, pollMs: 10 });

  it('sends the start as the guard document with typed parameters, after the epoch fence', async () => {
    const calls: string[] = [];
    const req = {
      ...request(fx, fx.names.exec, 'node2'),
      beforeMutation: async () => void calls.push('fence'),
    };
    const outcome = await exec().activate(req);
    expect(calls).toEqual(['fence']);
    expect(outcome.detail).toMatch(
      /^start on instance i-[0-9a-f]+ \(node2\) succeeded \(command [0-9a-f-]+\)/,
    );
    const listed = await ssm.send(new ListCommandsCommand({ InstanceId: fx.nodes.node2.instanceId }));
    const command = listed.Commands?.find((c) => c.Comment?.includes('start'));
    expect(command?.DocumentName).toBe(document);
    expect(command?.Comment).toBe(`failover ${fx.cluster}/${fx.group} epoch 7 start ${fx.names.exec}`);
    // No shell command travels: the guard reads the start from the stored definition.
    expect(command?.Parameters).toEqual({
      group: [fx.group],
      resource: [fx.names.exec],
      epoch: ['7'],
      action: ['start'],
      executionTimeout: ['300'],
    });
    expect(command?.Parameters).toEqual(guardParameters(req, 'start'));
  });

  it('sends a Windows node the PowerShell guard document with the same typed parameters, no command text', async () => {
    await ensureGuardDocument(ssm, `${document}-windows`, DEFAULT_AGENT_PATH_WINDOWS, 'windows');
    const config = structuredClone(fx.config);
    const node = { ...config.nodes.find((n) => n.name === 'node2')!, platform: 'windows' as const };
    config.nodes = config.nodes.map((n) => (n.name === 'node2' ? node : n));
    const res = config.groups[0]!.resources.find((r) => r.type === 'exec')!;
    if (res.type === 'exec') res.start = "Start-Service -Name 'MSSQL$PROD'";
    const req = {
      ...request(fx, fx.names.exec, 'node2'),
      config,
      node,
      resource: res,
      beforeMutation: async () => {},
    };
    await exec().activate(req);
    const listed = await ssm.send(new ListCommandsCommand({ InstanceId: fx.nodes.node2.instanceId }));
    const command = listed.Commands?.find((c) => c.DocumentName === `${document}-windows`);
    expect(command?.Parameters).toEqual({
      group: [fx.group],
      resource: [fx.names.exec],
      epoch: ['7'],
      action: ['start'],
      executionTimeout: ['300'],
    });
    expect(JSON.stringify(listed.Commands)).not.toContain('MSSQL');
    expect(listed.Commands?.map((c) => c.DocumentName)).not.toContain('AWS-RunPowerShellScript');
    // What SSM renders on the node: the guard line alone, then its exit code.
    const stored = await ssm.send(new GetDocumentCommand({ Name: `${document}-windows` }));
    const rendered = renderDocument(
      JSON.parse(stored.Content ?? '{}'),
      command?.Parameters ?? {},
      'aws:runPowerShellScript',
    );
    expect(rendered).toEqual({
      script: `& 'C:\\Program Files\\failover-agent\\failover-agent.cmd' guard --group ${fx.group} --resource ${fx.names.exec} --epoch 7 --action start\nexit $LASTEXITCODE`,
      timeoutSec: 300,
    });
  });

  it('refuses to send anything when the epoch fence fails', async () => {
    const req = {
      ...request(fx, fx.names.exec, 'node1'),
      beforeMutation: async () => Promise.reject(new ConflictError('stale epoch')),
    };
    const before =
      (await ssm.send(new ListCommandsCommand({ InstanceId: fx.nodes.node1.instanceId }))).Commands?.length ??
      0;
    await expect(exec().deactivate(req)).rejects.toBeInstanceOf(ConflictError);
    const after =
      (await ssm.send(new ListCommandsCommand({ InstanceId: fx.nodes.node1.instanceId }))).Commands?.length ??
      0;
    expect(after).toBe(before);
  });

  it('the document runs the guard alone, and SSM refuses any parameter outside its pattern', () => {
    const doc = guardDocument('/usr/local/bin/failover-agent');
    const ok = renderDocument(doc, {
      group: ['db'],
      resource: ['app'],
      epoch: ['12'],
      action: ['stop'],
      executionTimeout: ['30'],
    });
    expect(ok).toEqual({
      script: 'exec /usr/local/bin/failover-agent guard --group db --resource app --epoch 12 --action stop',
      timeoutSec: 30,
    });
    const hostile: Record<string, string[]>[] = [
      { group: ['db; rm -rf /'], resource: ['app'], epoch: ['1'], action: ['start'] },
      { group: ['db'], resource: ['$(reboot)'], epoch: ['1'], action: ['start'] },
      { group: ['db'], resource: ['app'], epoch: ['1 && id'], action: ['start'] },
      { group: ['db'], resource: ['app'], epoch: ['1'], action: ['restart'] },
      { group: ['db'], resource: ['app'], epoch: ['1'], action: ['start'], commands: ['id'] },
      { group: ['db'], resource: ['app'], action: ['start'] },
    ];
    for (const parameters of hostile)
      expect(() => renderDocument(doc, parameters)).toThrow(
        expect.objectContaining({ name: 'InvalidParameters' }),
      );
    // The PowerShell variant: the same checks before any PowerShell text is made.
    const win = guardDocumentWindows(DEFAULT_AGENT_PATH_WINDOWS);
    for (const parameters of [
      ...hostile,
      { group: ['db'], resource: ["app'; Remove-Item C:\\ -Recurse; '"], epoch: ['1'], action: ['start'] },
      { group: ['db`n'], resource: ['app'], epoch: ['1'], action: ['start'] },
    ])
      expect(() => renderDocument(win, parameters, 'aws:runPowerShellScript')).toThrow(
        expect.objectContaining({ name: 'InvalidParameters' }),
      );
  });

  it('creates the guard document once and updates it when the agent path changes', async () => {
    const name = `${document}-2`;
    expect(await ensureGuardDocument(ssm, name, '/a')).toEqual({ created: true, updated: false });
    expect(await ensureGuardDocument(ssm, name, '/a')).toEqual({ created: false, updated: false });
    expect(await ensureGuardDocument(ssm, name, '/b')).toEqual({ created: false, updated: true });
  });
});

describe('instances and zones (moto)', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture();
  });
  const signal = () => new AbortController().signal;

  it('describes all instances in one call, leaving out unknown ids', async () => {
    const views = await describeInstances(
      fx.ec2,
      [fx.nodes.node1.instanceId, fx.nodes.node2.instanceId, 'i-0000000000000dead'],
      signal(),
    );
    expect(Object.keys(views).sort()).toEqual([fx.nodes.node1.instanceId, fx.nodes.node2.instanceId].sort());
    expect(views[fx.nodes.node1.instanceId]).toEqual({ state: 'running', statusOk: true });
  });

  it('reports zone states and leaves out a misspelt zone', async () => {
    const zones = await describeZones(fx.ec2, ['us-east-1a', 'us-east-1b', 'us-east-1z'], signal());
    expect(zones).toEqual({ 'us-east-1a': 'available', 'us-east-1b': 'available' });
  });

  it('hard-fences with StopInstances (force) once, behind the epoch fence', async () => {
    const calls: string[] = [];
    const ctx = {
      cluster: fx.cluster,
      group: fx.group,
      epoch: 3,
      holder: 'h',
      signal: signal(),
      beforeMutation: async () => void calls.push('fence'),
    };
    const first = await stopInstance(fx.ec2, fx.nodes.node2.instanceId, ctx);
    expect(first.changed).toBe(true);
    expect(calls).toEqual(['fence']);
    const described = await fx.ec2.send(
      new DescribeInstancesCommand({ InstanceIds: [fx.nodes.node2.instanceId] }),
    );
    expect(described.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('stopped');
    // Already stopped: nothing to do, no fence, no call.
    const second = await stopInstance(fx.ec2, fx.nodes.node2.instanceId, ctx);
    expect(second).toMatchObject({ changed: false, detail: expect.stringMatching(/already stopped/) });
    expect(calls).toEqual(['fence']);
  });
});
