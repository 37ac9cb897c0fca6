/**
 * exec through SSM Run Command and the instance-side calls (describe, zones, hard fence) against
 * moto. moto records commands but runs nothing and reports Success at once: the end state we can
 * assert is the command moto holds (document, instance, the exact guarded command line). moto checks
 * neither instance ids nor document names, so failed commands are shown by the sandbox end-to-end
 * tests, where the commands really run.
 */
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { ListCommandsCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../../controller/resources';
import { createExecDriver, guardCommandLine } from '../../../controller/resources/exec';
import { describeInstances, describeZones, stopInstance } from '../../../controller/resources/instances';
import { ConflictError } from '../../../shared/base/errors';
import { aws } from '../support';
import { createFixture, type Fixture } from './fixture';
import { request } from './helpers';

describe('exec via SSM Run Command (moto)', () => {
  let fx: Fixture;
  let ssm: SSMClient;
  beforeAll(async () => {
    fx = await createFixture();
    ssm = createAwsClients(aws()).ssm;
  });

  const exec = () =>
    createExecDriver(ssm, {
      agentPath: '/usr/local/bin/failover-agent',
      table: 'failover-state',
      pollMs: 10,
    });

  it('sends the start through the guard, with the epoch and the VIP, after the epoch fence', async () => {
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
    expect(command?.DocumentName).toBe('AWS-RunShellScript');
    expect(command?.Comment).toBe(`failover ${fx.cluster}/${fx.group} epoch 7 start ${fx.names.exec}`);
    const line = command?.Parameters?.commands?.[0];
    expect(line).toBe(
      guardCommandLine(req, 'start', { agentPath: '/usr/local/bin/failover-agent', table: 'failover-state' }),
    );
    expect(line).toMatch(
      new RegExp(
        `^/usr/local/bin/failover-agent guard --cluster ${fx.cluster} --node node2 --table failover-state --group ${fx.group} --epoch 7 --action start --vip ${fx.vip.replace(/\./g, '\\.')} -- /bin/sh -c `,
      ),
    );
  });

  it('sends a Windows node the guard through AWS-RunPowerShellScript, its PowerShell text base64-encoded', async () => {
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
    const command = listed.Commands?.find((c) => c.DocumentName === 'AWS-RunPowerShellScript');
    const line = command?.Parameters?.commands?.[0] ?? '';
    expect(line).toBe(
      guardCommandLine(req, 'start', { agentPath: '/usr/local/bin/failover-agent', table: 'failover-state' }),
    );
    expect(
      line.startsWith(
        `& 'C:\\Program Files\\failover-agent\\failover-agent.cmd' guard --cluster ${fx.cluster} --node node2 --table failover-state --group ${fx.group} --epoch 7 --action start --vip ${fx.vip} --encoded-command `,
      ),
    ).toBe(true);
    expect(line.endsWith('; exit $LASTEXITCODE')).toBe(true);
    const encoded = /--encoded-command (\S+);/.exec(line)?.[1] ?? '';
    expect(Buffer.from(encoded, 'base64').toString('utf16le')).toBe("Start-Service -Name 'MSSQL$PROD'");
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

  it('quotes the script for the shell so that it reaches the node intact', () => {
    const config = structuredClone(fx.config);
    const res = config.groups[0]!.resources.find((r) => r.type === 'exec')!;
    if (res.type === 'exec') res.stop = `/opt/app/stop.sh --reason 'planned move' && echo "done"`;
    const line = guardCommandLine({ ...request(fx, fx.names.exec, 'node1'), config, resource: res }, 'stop', {
      agentPath: '/a',
      table: 't',
    });
    expect(
      line.endsWith(`-- /bin/sh -c '/opt/app/stop.sh --reason '\\''planned move'\\'' && echo "done"'`),
    ).toBe(true);
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
