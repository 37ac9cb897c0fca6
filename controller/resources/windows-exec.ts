/**
 * The exec resource on a Windows node: the same guard, reached through PowerShell
 * (AWS-RunPowerShellScript) instead of a POSIX shell:
 *
 *   & 'C:\Program Files\failover-agent\failover-agent.cmd' guard --cluster C --node N --table T
 *     --group G --epoch E --action start [--vip IP] --encoded-command <base64 of the start text>
 *     ; exit $LASTEXITCODE
 *
 * The start and stop texts are PowerShell (the definition's `start`/`stop` of a group on Windows
 * nodes) and travel base64-encoded (UTF-16LE, as powershell.exe -EncodedCommand takes them): the
 * line holds only names, numbers, addresses and base64, nothing that PowerShell, cmd.exe or the
 * argument quoting of Windows would interpret. Pure; unit-tested on Linux.
 */
import { encodePowerShell, psQuote, psWord } from '../../shared/base/powershell';
import type { ExecResource } from '../../shared/config/schema';

/** Default path of the agent's command on Windows nodes (install.ps1's layout). */
export const DEFAULT_AGENT_PATH_WINDOWS = 'C:\\Program Files\\failover-agent\\failover-agent.cmd';

/** The document that runs PowerShell where the definition names the shell one (its default). */
export function execDocumentFor(
  resource: Pick<ExecResource, 'document'>,
  platform: 'linux' | 'windows' | undefined,
): string {
  if (platform === 'windows' && resource.document === 'AWS-RunShellScript') return 'AWS-RunPowerShellScript';
  return resource.document;
}

export interface WindowsGuardCall {
  agentPath: string;
  cluster: string;
  node: string;
  table: string;
  group: string;
  epoch: number;
  action: 'start' | 'stop';
  vips: readonly string[];
  /** The definition's PowerShell start or stop text. */
  script: string;
}

/** The PowerShell line that runs the guard on a Windows node and exits with its exit code. */
export function windowsGuardCommandLine(c: WindowsGuardCall): string {
  const words = [
    'guard',
    '--cluster',
    c.cluster,
    '--node',
    c.node,
    '--table',
    c.table,
    '--group',
    c.group,
    '--epoch',
    String(c.epoch),
    '--action',
    c.action,
    ...c.vips.flatMap((ip) => ['--vip', ip]),
    '--encoded-command',
    encodePowerShell(c.script),
  ];
  return `& ${psQuote(c.agentPath)} ${words.map(psWord).join(' ')}; exit $LASTEXITCODE`;
}
