/**
 * The SSM Command document every application start and stop goes through: it runs the node agent's
 * guard and nothing else. Its parameters are typed (names, a number, start or stop: SSM refuses any
 * other value before anything runs), the agent's path is written into the document, and the command
 * itself is not a parameter: the guard reads it from the stored definition, which only
 * `failoverctl apply` writes. A role that may send only this document (serverless.yml, `failoverctl
 * iam-policy`) can start and stop the applications of the definitions, and run nothing else.
 *
 * Windows nodes get its PowerShell variant (guardDocumentWindows): the same typed parameters, the same
 * guard line, run by aws:runPowerShellScript with the agent's Windows command. The start and stop
 * texts (PowerShell on Windows nodes) do not travel either: the guard reads them from the stored
 * definition and runs them through powershell.exe itself (node-agent/platform/windows.ts). The
 * parameters are substituted into PowerShell text by SSM, so their patterns admit only lowercase
 * names, digits and start/stop: nothing PowerShell or cmd.exe would interpret.
 *
 * The deployment creates both (serverless.yml `GuardDocument`, named failover-guard-<stage>, and
 * `WindowsGuardDocument`, failover-guard-<stage>-windows; the packaging test checks that the
 * template holds this content); `failoverctl init` and the sandbox create them for local runs.
 */
import {
  CreateDocumentCommand,
  DescribeDocumentCommand,
  type SSMClient,
  UpdateDocumentCommand,
  UpdateDocumentDefaultVersionCommand,
} from '@aws-sdk/client-ssm';
import { toDomainError } from '../../shared/aws/errors';
import { psQuote } from '../../shared/base/powershell';

/** The name of a name parameter's pattern: the definition's names (shared/config/defaults.ts NAME_PATTERN). */
const NAME = '^[a-z0-9][a-z0-9-]{0,62}$';

/** The document's parameters, as SSM checks them. */
export const GUARD_DOCUMENT_PARAMETERS = {
  group: { type: 'String', description: 'The failover group', allowedPattern: NAME },
  resource: { type: 'String', description: 'The exec resource of the group', allowedPattern: NAME },
  epoch: {
    type: 'String',
    description: 'The epoch the command was decided at (the guard refuses any other)',
    allowedPattern: '^[0-9]{1,15}$',
  },
  action: { type: 'String', description: 'start or stop', allowedValues: ['start', 'stop'] },
  executionTimeout: {
    type: 'String',
    description: 'Seconds the guard may run (the resource timeoutSec)',
    default: '3600',
    allowedPattern: '^[0-9]{1,6}$',
  },
} as const;

/** The document's content (schema 2.2), for the agent installed at `agentPath`. */
export function guardDocument(agentPath: string) {
  return {
    schemaVersion: '2.2',
    description:
      "Runs the failover agent's guard for one start or stop of an exec resource; the command comes from the stored cluster definition.",
    parameters: GUARD_DOCUMENT_PARAMETERS,
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: 'guard',
        inputs: {
          timeoutSeconds: '{{ executionTimeout }}',
          runCommand: [
            `exec ${agentPath} guard --group {{ group }} --resource {{ resource }} --epoch {{ epoch }} --action {{ action }}`,
          ],
        },
      },
    ],
  };
}

/** Default path of the agent's command on Windows nodes (install.ps1's layout; serverless param agentPathWindows). */
export const DEFAULT_AGENT_PATH_WINDOWS = 'C:\\Program Files\\failover-agent\\failover-agent.cmd';

/** The guard line of the PowerShell variant (the same words as the shell one's). */
export function windowsGuardCommand(agentPath: string): string[] {
  return [
    `& ${psQuote(agentPath)} guard --group {{ group }} --resource {{ resource }} --epoch {{ epoch }} --action {{ action }}`,
    // The guard's exit code (3 refused, 10 the command failed, ...) is the step's, as on Linux.
    'exit $LASTEXITCODE',
  ];
}

/** The PowerShell variant's content (schema 2.2) for Windows nodes, the agent's command at `agentPath`. */
export function guardDocumentWindows(agentPath: string) {
  return {
    schemaVersion: '2.2',
    description:
      "Runs the failover agent's guard on a Windows node for one start or stop of an exec resource; the PowerShell command comes from the stored cluster definition.",
    parameters: GUARD_DOCUMENT_PARAMETERS,
    mainSteps: [
      {
        action: 'aws:runPowerShellScript',
        name: 'guard',
        inputs: {
          timeoutSeconds: '{{ executionTimeout }}',
          runCommand: windowsGuardCommand(agentPath),
        },
      },
    ],
  };
}

/** The default document name for local runs (a deployment's is failover-guard-<stage>). */
export const LOCAL_GUARD_DOCUMENT = 'failover-guard';

/** The name of the PowerShell variant next to guard document `name` (failover-guard-prod-windows). */
export function windowsGuardDocumentName(name: string): string {
  return `${name}-windows`;
}

/**
 * Creates the document, or updates it to this content (a new default version); idempotent.
 * For local runs (`failoverctl init`, the sandbox): a deployment's comes from its template.
 */
export async function ensureGuardDocument(
  ssm: SSMClient,
  name: string,
  agentPath: string,
  platform: 'linux' | 'windows' = 'linux',
): Promise<{ created: boolean; updated: boolean }> {
  const content = JSON.stringify(
    platform === 'windows' ? guardDocumentWindows(agentPath) : guardDocument(agentPath),
  );
  const ctx = { action: 'ssm:CreateDocument', resource: `document ${name}` };
  try {
    await ssm.send(
      new CreateDocumentCommand({
        Name: name,
        Content: content,
        DocumentType: 'Command',
        DocumentFormat: 'JSON',
      }),
    );
    return { created: true, updated: false };
  } catch (e) {
    if ((e as { name?: string }).name !== 'DocumentAlreadyExists') throw toDomainError(e, ctx);
  }
  try {
    const out = await ssm.send(
      new UpdateDocumentCommand({
        Name: name,
        Content: content,
        DocumentVersion: '$LATEST',
        DocumentFormat: 'JSON',
      }),
    );
    const version = out.DocumentDescription?.DocumentVersion;
    if (version)
      await ssm.send(new UpdateDocumentDefaultVersionCommand({ Name: name, DocumentVersion: version }));
    return { created: false, updated: true };
  } catch (e) {
    if ((e as { name?: string }).name === 'DuplicateDocumentContent')
      return { created: false, updated: false };
    throw toDomainError(e, { ...ctx, action: 'ssm:UpdateDocument' });
  }
}

/** Whether the document exists (doctor). */
export async function guardDocumentExists(ssm: SSMClient, name: string): Promise<boolean> {
  try {
    await ssm.send(new DescribeDocumentCommand({ Name: name }));
    return true;
  } catch (e) {
    if ((e as { name?: string }).name === 'InvalidDocument') return false;
    throw toDomainError(e, { action: 'ssm:DescribeDocument', resource: `document ${name}` });
  }
}
