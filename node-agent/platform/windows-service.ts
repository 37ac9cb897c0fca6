/**
 * The Windows service definition of the agent, for WinSW 2.x (the service wrapper that makes any
 * program a Windows service; see the README for why WinSW and not node-windows). Pure: the release
 * writes it into the Windows artifact (`npm run release:agent`), install.ps1 fills in the path of
 * node.exe, and unit tests pin its content.
 *
 * What it asks of Windows, and why:
 * - starts automatically with Windows, and is restarted when it exits with an error: after 1 s,
 *   then 10 s, then every 60 s (WinSW has no equivalent of systemd's RestartPreventExitStatus, so a
 *   usage error — exit 2 — or an unknown node — exit 3 — is retried once a minute, not every second);
 * - on a service stop and at shutdown WinSW sends Ctrl+C (SIGINT to node), and the agent stops its
 *   groups and writes `leaving`; WinSW waits up to `stopTimeoutSec` for the stop scripts;
 * - preshutdown: Windows tells the service before the shutdown proper begins (while the network is
 *   still up) and waits up to the same time, so that the final report reaches DynamoDB;
 * - above-normal priority, like Nice=-10 on Linux: the lease must be renewed when the application
 *   saturates the machine;
 * - log files rolled by size under %ProgramData%\failover-agent\logs (warnings and errors also go
 *   to the Application event log, see windows.ts);
 * - settings from %ProgramData%\failover-agent\agent.env (the agent's --settings; not --env-file,
 *   which node itself claims anywhere in its argv), so that the definition itself never changes
 *   with the node.
 */

/** Node flags of the agent's service, the same on Linux (failover-agent.service) and Windows. */
export const AGENT_NODE_FLAGS = [
  '--lite-mode',
  '--no-expose-wasm',
  '--single-threaded',
  '--max-semi-space-size=1',
  '--max-old-space-size=64',
  '--expose-gc',
] as const;

export interface WinswOptions {
  /** node.exe; install.ps1 puts the one it found in place of the placeholder. */
  nodeExe: string;
  /** Where install.ps1 puts the bundle: %ProgramFiles%\failover-agent\failover-agent.mjs. */
  bundle: string;
  /** Seconds the stop scripts may take (exec timeoutSec defaults to 300). */
  stopTimeoutSec: number;
}

/** The placeholder install.ps1 replaces with the path of node.exe. */
export const NODE_EXE_PLACEHOLDER = '@NODE_EXE@';

export const WINSW_DEFAULTS: WinswOptions = {
  nodeExe: NODE_EXE_PLACEHOLDER,
  bundle: '%BASE%\\failover-agent.mjs',
  stopTimeoutSec: 330,
};

function xmlText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The WinSW XML of the failover-agent service. */
export function winswServiceXml(options: WinswOptions = WINSW_DEFAULTS): string {
  const args = [
    ...AGENT_NODE_FLAGS,
    options.bundle,
    '--settings',
    '%ProgramData%\\failover-agent\\agent.env',
  ];
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<!-- failover-agent as a Windows service (WinSW 2.x). Written by npm run release:agent; install.ps1',
    '     puts it next to WinSW renamed failover-agent.exe. Settings: %ProgramData%\\failover-agent\\agent.env. -->',
    '<service>',
    '  <id>failover-agent</id>',
    '  <name>Failover agent</name>',
    '  <description>Failover controller node agent: lease, monitors, witnesses, self-fence.</description>',
    `  <executable>${xmlText(options.nodeExe)}</executable>`,
    ...args.map((a) => `  <argument>${xmlText(a)}</argument>`),
    '  <workingdirectory>%BASE%</workingdirectory>',
    '  <startmode>Automatic</startmode>',
    '  <env name="FAILOVER_AGENT_STATE_DIR" value="%ProgramData%\\failover-agent"/>',
    '  <!-- Ctrl+C, then this long for the stop scripts before the process is killed. -->',
    `  <stoptimeout>${options.stopTimeoutSec} sec</stoptimeout>`,
    '  <!-- At shutdown: told early, while the network is up, and waited for as long. -->',
    '  <preshutdown>true</preshutdown>',
    `  <preshutdownTimeout>${options.stopTimeoutSec} sec</preshutdownTimeout>`,
    '  <!-- A node without its agent cannot renew its lease: always restart, backing off to once a minute. -->',
    '  <onfailure action="restart" delay="1 sec"/>',
    '  <onfailure action="restart" delay="10 sec"/>',
    '  <onfailure action="restart" delay="60 sec"/>',
    '  <resetfailure>1 hour</resetfailure>',
    '  <priority>AboveNormal</priority>',
    '  <logpath>%ProgramData%\\failover-agent\\logs</logpath>',
    '  <log mode="roll-by-size">',
    '    <sizeThreshold>10240</sizeThreshold>',
    '    <keepFiles>8</keepFiles>',
    '  </log>',
    '</service>',
    '',
  ].join('\r\n');
}

/**
 * `failover-agent.cmd`, next to the bundle: what operators type (`failover-agent status`) and what
 * the controller's PowerShell command calls (`failover-agent.cmd guard ...`, whose arguments are
 * names, numbers, addresses and base64 only: nothing cmd.exe would interpret).
 */
export function windowsCommandWrapper(nodeExe: string = NODE_EXE_PLACEHOLDER): string {
  return [
    '@echo off',
    'rem failover-agent: the node agent (the service runs it) and its guard and status.',
    `"${nodeExe}" "%~dp0failover-agent.mjs" %*`,
    'exit /b %ERRORLEVEL%',
    '',
  ].join('\r\n');
}
