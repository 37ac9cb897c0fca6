/**
 * Windows nodes in the definition: `nodes[].platform`, what validate and doctor say about their
 * missing watchdog (and what it costs in failover time), the controller's command to them (the guard
 * document's PowerShell variant, typed parameters only) and its IAM grant. Pure logic, platform forced.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { controllerPolicy } from '../../cli/iam/policies';
import { guardCommandLine, guardDocumentFor, guardParameters } from '../../controller/resources/exec';
import {
  DEFAULT_AGENT_PATH_WINDOWS,
  GUARD_DOCUMENT_PARAMETERS,
  guardDocument,
  guardDocumentWindows,
  windowsGuardDocumentName,
} from '../../controller/resources/guard-document';
import { parseGuardArgs } from '../../node-agent/cli';
import { powershellArgv } from '../../node-agent/platform/windows';
import {
  AGENT_NODE_FLAGS,
  windowsCommandWrapper,
  winswServiceXml,
} from '../../node-agent/platform/windows-service';
import { decodePowerShell } from '../../shared/base/powershell';
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

  it('the controller sends a Windows node the PowerShell guard document with typed parameters, never the command text', () => {
    const c = definition('none');
    const req = {
      cluster: 'orders',
      group: 'sql',
      epoch: 7,
      config: c,
      node: c.nodes[0]!,
      resource: c.groups[0]!.resources[0]!,
    } as unknown as Parameters<typeof guardParameters>[0];
    const options = { document: 'failover-guard-prod' };
    expect(guardDocumentFor('windows', options)).toBe('failover-guard-prod-windows');
    expect(guardDocumentFor('linux', options)).toBe('failover-guard-prod');
    expect(guardDocumentFor(undefined, options)).toBe('failover-guard-prod');
    expect(guardDocumentFor('windows', { ...options, windowsDocument: 'own-win' })).toBe('own-win');
    expect(windowsGuardDocumentName('failover-guard')).toBe('failover-guard-windows');
    // The same parameters as to a Linux node: names, a number, start or stop; no PowerShell text.
    const params = guardParameters(req, 'stop');
    expect(params).toEqual({
      group: ['sql'],
      resource: ['app'],
      epoch: ['7'],
      action: ['stop'],
      executionTimeout: ['300'],
    });
    expect(JSON.stringify(params)).not.toContain('MSSQLSERVER');
    expect(guardCommandLine(req, 'stop', options)).toMatch(
      /^failover-guard-prod-windows: guard --group sql --resource app --epoch 7 --action stop \(runs "Stop-Service 'MSSQLSERVER'"\)$/,
    );
  });

  it('the PowerShell guard document runs only the guard, with the typed parameters of the Linux one, and exits with its code', () => {
    const doc = guardDocumentWindows(DEFAULT_AGENT_PATH_WINDOWS);
    expect(doc.parameters).toBe(GUARD_DOCUMENT_PARAMETERS);
    expect(doc.parameters).toEqual(guardDocument('/usr/local/bin/failover-agent').parameters);
    expect(doc.mainSteps).toEqual([
      {
        action: 'aws:runPowerShellScript',
        name: 'guard',
        inputs: {
          timeoutSeconds: '{{ executionTimeout }}',
          runCommand: [
            "& 'C:\\Program Files\\failover-agent\\failover-agent.cmd' guard --group {{ group }} --resource {{ resource }} --epoch {{ epoch }} --action {{ action }}",
            'exit $LASTEXITCODE',
          ],
        },
      },
    ]);
    // No command text, no free-text parameter: every parameter is a pattern or a closed list, and
    // what the patterns admit is nothing PowerShell or cmd.exe interprets.
    for (const [name, p] of Object.entries(doc.parameters)) {
      expect(name).toMatch(/^(group|resource|epoch|action|executionTimeout)$/);
      const allowed = 'allowedPattern' in p ? p.allowedPattern : undefined;
      expect(allowed ?? ('allowedValues' in p ? p.allowedValues : undefined)).toBeDefined();
      if (allowed) expect(allowed).toMatch(/^\^\[[a-z0-9-]+\](\[[a-z0-9-]+\])?\{[0-9,]+\}\$$/);
    }
    // The agent's path is a PowerShell single-quoted literal, its quotes doubled.
    expect(guardDocumentWindows("C:\\it's\\agent.cmd").mainSteps[0]!.inputs.runCommand[0]).toMatch(
      /^& 'C:\\it''s\\agent\.cmd' guard /,
    );
  });

  it('the guard runs the stored PowerShell text through powershell.exe -EncodedCommand; the controller sends no --encoded-command', () => {
    // What the PowerShell document runs: the guard with --resource, no COMMAND.
    const args = parseGuardArgs(
      ['--group', 'sql', '--resource', 'app', '--epoch', '7', '--action', 'stop'],
      {},
    );
    expect(args !== 'help' && args.resource).toBe('app');
    expect(args !== 'help' && args.command).toEqual([]);
    expect(() =>
      parseGuardArgs(['--group', 'sql', '--epoch', '7', '--encoded-command', 'UwB0AG8AcAA='], {}),
    ).toThrow(/encoded-command/);
    // The stored text, as the Windows platform runs it (one COMMAND argument: its shell).
    const text = 'Stop-Service \'MSSQL$PROD\'; & C:\\app\\flush.ps1 -Reason "planned"';
    const [file, argv] = powershellArgv(text);
    expect(file).toBe('powershell.exe');
    expect(argv.slice(0, 6)).toEqual([
      '-NoLogo',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
    ]);
    expect(decodePowerShell(argv[6]!)).toContain(`\n${text}\n`);
  });

  it('the controller policy grants a group with Windows nodes the PowerShell guard document only', () => {
    const doc = controllerPolicy([definition('none')], {
      account: '111122223333',
      table: 'failover-state',
      document: 'failover-guard-prod',
    });
    const run = doc.Statement.find((s) => s.Sid === 'RunCommand');
    expect(run?.Resource).toEqual([
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0aaa',
      'arn:aws:ec2:us-east-1:111122223333:instance/i-0bbb',
      'arn:aws:ssm:us-east-1:111122223333:document/failover-guard-prod-windows',
    ]);
    expect(JSON.stringify(doc)).not.toMatch(/AWS-Run(PowerShell|Shell)Script/);
    // A Linux and a Windows node in one group: both own documents, nothing else.
    const mixed = parseClusterConfig({
      ...JSON.parse(JSON.stringify(definition('none'))),
      groups: [{ ...definition('none').groups[0]!, nodes: ['node1', 'node3'] }],
    });
    const mixedRun = controllerPolicy([mixed], {
      account: '111122223333',
      table: 'failover-state',
      document: 'failover-guard-prod',
      windowsDocument: 'win-guard',
    }).Statement.find((s) => s.Sid === 'RunCommand');
    expect([mixedRun?.Resource].flat().filter((r) => r?.includes(':document/'))).toEqual([
      'arn:aws:ssm:us-east-1:111122223333:document/failover-guard-prod',
      'arn:aws:ssm:us-east-1:111122223333:document/win-guard',
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
    const doc = agentPolicy([definition('none')], { table: 'failover-state', agentBucket: 'fa-releases' });
    expect(doc.Statement.find((s) => s.Sid === 'AgentReleases')).toEqual({
      Sid: 'AgentReleases',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: 'arn:aws:s3:::fa-releases/agent/*',
    });
    expect(
      agentPolicy([definition('none')], { table: 'failover-state' }).Statement.some(
        (s) => s.Sid === 'AgentReleases',
      ),
    ).toBe(false);
  });
});
