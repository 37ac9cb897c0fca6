/**
 * Windows nodes in the definition: `nodes[].platform`, what validate and doctor say about their
 * missing watchdog (and what it costs in failover time), the controller's command to them, the
 * document and its IAM grant, and the guard's --encoded-command. Pure logic, platform forced.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { controllerPolicy } from '../../cli/iam/policies';
import {
  DEFAULT_AGENT_PATH_WINDOWS,
  execDocumentFor,
  windowsGuardCommandLine,
} from '../../controller/resources/windows-exec';
import { parseGuardArgs } from '../../node-agent/cli';
import {
  AGENT_NODE_FLAGS,
  windowsCommandWrapper,
  winswServiceXml,
} from '../../node-agent/platform/windows-service';
import { decodePowerShell, encodePowerShell } from '../../shared/base/powershell';
import { parseClusterConfig } from '../../shared/config/load';
import { platformNotes } from '../../shared/core/platform-notes';

const definition = (windowsFencing: 'none' | 'stop-instance', timeoutSec = 300) =>
  parseClusterConfig({
    cluster: 'orders',
    region: 'us-east-1',
    nodes: [
      { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a', platform: 'windows' },
      { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b', platform: 'windows' },
      { name: 'node3', instanceId: 'i-0ccc', az: 'us-east-1c' },
    ],
    groups: [
      {
        name: 'sql',
        nodes: ['node1', 'node2'],
        fencing: windowsFencing,
        resources: [
          {
            type: 'exec',
            name: 'app',
            start: "Start-Service 'MSSQLSERVER'",
            stop: "Stop-Service 'MSSQLSERVER'",
            timeoutSec,
          },
        ],
      },
    ],
  });

describe('Windows nodes in the definition', () => {
  it('nodes are linux unless they say windows', () => {
    const c = definition('none');
    expect(c.nodes.map((n) => n.platform)).toEqual(['windows', 'windows', 'linux']);
    expect(() =>
      parseClusterConfig({
        cluster: 'x',
        region: 'us-east-1',
        nodes: [{ name: 'n', instanceId: 'i-0aaa', az: 'us-east-1a', platform: 'win' }],
      }),
    ).toThrow(/platform must be one of: linux, windows/);
  });

  it('validate and doctor say what the missing watchdog costs a Windows node, and the fix', () => {
    const notes = platformNotes(definition('none'));
    expect(notes.map((n) => n.node)).toEqual(['node1', 'node2']);
    expect(notes[0]!.path).toBe('nodes[0]');
    expect(notes[0]!.message).toBe(
      "node node1 runs Windows: no watchdog (Windows has no softdog), so its silence is proven with its stop scripts' time: after a silent crash, sql moves away only after the lease (3.75 s) plus its stop scripts' time (300 s, the exec timeoutSec of its groups) = 303.75 s instead of 3.75 s with a watchdog; lower timeoutSec to the stop scripts' real time, or set fencing: stop-instance on that group (a stop through EC2 instead of the wait)",
    );
    expect(platformNotes(definition('none', 20))[0]!.message).toContain('= 23.75 s instead of 3.75 s');
    expect(platformNotes(definition('stop-instance'))[0]!.message).toContain(
      'every group it may run uses fencing: stop-instance',
    );
  });

  it('the controller sends a Windows node PowerShell: the guard with its text base64-encoded, and exits with its code', () => {
    const line = windowsGuardCommandLine({
      agentPath: DEFAULT_AGENT_PATH_WINDOWS,
      cluster: 'orders',
      node: 'node1',
      table: 'failover-state-prod',
      group: 'sql',
      epoch: 7,
      action: 'stop',
      vips: ['172.16.0.10'],
      script: 'Stop-Service \'MSSQL$PROD\'; & C:\\app\\flush.ps1 -Reason "planned"',
    });
    const encoded = encodePowerShell('Stop-Service \'MSSQL$PROD\'; & C:\\app\\flush.ps1 -Reason "planned"');
    expect(line).toBe(
      `& 'C:\\Program Files\\failover-agent\\failover-agent.cmd' guard --cluster orders --node node1 --table failover-state-prod --group sql --epoch 7 --action stop --vip 172.16.0.10 --encoded-command ${encoded}; exit $LASTEXITCODE`,
    );
    // Nothing but names, numbers, addresses and base64 after the quoted path.
    expect(line.split("failover-agent.cmd' ")[1]).toMatch(/^[A-Za-z0-9 .+/=$;-]+$/);
    expect(execDocumentFor({ document: 'AWS-RunShellScript' }, 'windows')).toBe('AWS-RunPowerShellScript');
    expect(execDocumentFor({ document: 'AWS-RunShellScript' }, 'linux')).toBe('AWS-RunShellScript');
    expect(execDocumentFor({ document: 'MyDoc' }, 'windows')).toBe('MyDoc');
  });

  it('the guard takes the encoded text as its COMMAND', () => {
    const text = "Stop-Service 'MSSQL$PROD'";
    const args = parseGuardArgs(
      ['--group', 'sql', '--epoch', '7', '--encoded-command', encodePowerShell(text)],
      {},
    );
    expect(args !== 'help' && args.command).toEqual([text]);
    expect(decodePowerShell(encodePowerShell(text))).toBe(text);
    expect(() =>
      parseGuardArgs(['--group', 'sql', '--epoch', '7', '--encoded-command', 'not base64!'], {}),
    ).toThrow(/--encoded-command must be base64/);
    expect(() =>
      parseGuardArgs(
        ['--group', 'sql', '--epoch', '7', '--encoded-command', encodePowerShell(text), '--', 'x'],
        {},
      ),
    ).toThrow(/not both/);
  });

  it('the controller policy grants the PowerShell document for a group with Windows nodes', () => {
    const doc = controllerPolicy([definition('none')], { account: '111122223333', table: 'failover-state' });
    const run = doc.Statement.find((s) => s.Sid === 'RunCommand');
    expect(run?.Resource).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0aaa',
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb',
      'arn:aws:ssm:us-east-1::document/AWS-RunPowerShellScript',
      'arn:aws:ssm:us-east-1::document/AWS-RunShellScript',
    ]);
  });
});

describe('the Windows service definition (WinSW)', () => {
  const xml = winswServiceXml();
  it('restarts on failure, backing off; gives the stop scripts time on a stop and at shutdown', () => {
    expect(xml).toContain('<id>failover-agent</id>');
    expect(xml).toContain('<executable>@NODE_EXE@</executable>');
    expect(xml).toContain('<onfailure action="restart" delay="1 sec"/>');
    expect(xml).toContain('<onfailure action="restart" delay="60 sec"/>');
    expect(xml).toContain('<stoptimeout>330 sec</stoptimeout>');
    expect(xml).toContain('<preshutdown>true</preshutdown>');
    expect(xml).toContain('<preshutdownTimeout>330 sec</preshutdownTimeout>');
    expect(xml).toContain('<startmode>Automatic</startmode>');
    expect(xml).toContain('<env name="FAILOVER_AGENT_STATE_DIR" value="%ProgramData%\\failover-agent"/>');
    expect(xml).toContain('<argument>--settings</argument>');
    expect(xml).toContain('<argument>%ProgramData%\\failover-agent\\agent.env</argument>');
    expect(xml).toContain('<logpath>%ProgramData%\\failover-agent\\logs</logpath>');
    expect(xml.split('\r\n').length).toBeGreaterThan(20);
    expect(winswServiceXml({ nodeExe: 'C:\\a&b\\node.exe', bundle: 'x', stopTimeoutSec: 30 })).toContain(
      '<executable>C:\\a&amp;b\\node.exe</executable>',
    );
  });

  it('runs node with the same flags as the systemd unit', () => {
    const unit = readFileSync(new URL('../../node-agent/failover-agent.service', import.meta.url), 'utf8');
    const execStart = unit.split('\n').find((l) => l.startsWith('ExecStart='))!;
    const flags = execStart.split(/\s+/).filter((w) => w.startsWith('--') && w !== '$FAILOVER_AGENT_ARGS');
    expect(flags).toEqual([...AGENT_NODE_FLAGS]);
    for (const flag of AGENT_NODE_FLAGS) expect(xml).toContain(`<argument>${flag}</argument>`);
  });

  it('the command wrapper passes its arguments to node and its exit code back', () => {
    expect(windowsCommandWrapper('C:\\Program Files\\nodejs\\node.exe')).toBe(
      '@echo off\r\nrem failover-agent: the node agent (the service runs it) and its guard and status.\r\n"C:\\Program Files\\nodejs\\node.exe" "%~dp0failover-agent.mjs" %*\r\nexit /b %ERRORLEVEL%\r\n',
    );
  });
});

describe('the agent role and the releases bucket', () => {
  it('iam-policy --role agent --agent-bucket adds read access to the releases only', async () => {
    const { agentPolicy } = await import('../../cli/iam/policies');
    const doc = agentPolicy(definition('none'), { table: 'failover-state', agentBucket: 'fa-releases' });
    expect(doc.Statement.find((s) => s.Sid === 'AgentReleases')).toEqual({
      Sid: 'AgentReleases',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: 'arn:aws:s3:::fa-releases/agent/*',
    });
    expect(
      agentPolicy(definition('none'), { table: 'failover-state' }).Statement.some(
        (s) => s.Sid === 'AgentReleases',
      ),
    ).toBe(false);
  });
});
