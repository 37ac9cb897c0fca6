/**
 * The SSM Command document every application start and stop goes through: it runs the node agent's
 * guard and nothing else. Its parameters are typed (names, a number, start or stop: SSM refuses any
 * other value before anything runs), the agent's path is written into the document, and the command
 * itself is not a parameter: the guard reads it from the stored definition, which only
 * `failoverctl apply` writes. A role that may send only this document (serverless.yml, `failoverctl
 * iam-policy`) can start and stop the applications of the definitions, and run nothing else.
 *
 * The deployment creates it (serverless.yml `GuardDocument`, named failover-guard-<stage>; the
 * packaging test checks that the template holds this content); `failoverctl init` and the sandbox
 * create it for local runs.
 */
import {
  CreateDocumentCommand,
  DescribeDocumentCommand,
  type SSMClient,
  UpdateDocumentCommand,
  UpdateDocumentDefaultVersionCommand,
} from '@aws-sdk/client-ssm';
import { toDomainError } from '../../shared/aws/errors';

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

/** The default document name for local runs (a deployment's is failover-guard-<stage>). */
export const LOCAL_GUARD_DOCUMENT = 'failover-guard';

/**
 * Creates the document, or updates it to this content (a new default version); idempotent.
 * For local runs (`failoverctl init`, the sandbox): a deployment's comes from its template.
 */
export async function ensureGuardDocument(
  ssm: SSMClient,
  name: string,
  agentPath: string,
): Promise<{ created: boolean; updated: boolean }> {
  const content = JSON.stringify(guardDocument(agentPath));
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
