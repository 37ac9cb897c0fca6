/**
 * exec resource: start / stop the application with SSM Run Command on the target instance, always
 * through the agent's guard so that a stale epoch never starts (or wrongly stops) anything. The
 * command sent is the deployment's guard document (guard-document.ts) with typed parameters, which
 * runs on the node:
 *
 *   failover-agent guard --group G --resource R --epoch E --action start
 *
 * and the guard reads the start or stop command (and the addresses to put on) from the stored
 * definition: no shell command travels through SSM. A Windows node (`nodes[].platform: windows`) gets
 * the document's PowerShell variant, which runs the same guard line with the same typed parameters;
 * the guard there runs the stored PowerShell text itself.
 *
 * Synchronous: GetCommandInvocation is polled to a terminal status within `timeoutSec` and the
 * invocation's deadline. Asynchronous start (`async: true`): the command is sent and recorded in the
 * audit event; its outcome reaches reconcile through the agent's report of the group (running /
 * failed), which the recovery policy acts on.
 */
import { GetCommandInvocationCommand, SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { toDomainError } from '../../shared/aws/errors';
import { FailoverError, NotFoundError } from '../../shared/base/errors';
import type { ExecResource } from '../../shared/config/schema';
import { interfaceAddresses } from '../../shared/core/node-side';
import type { ActionOutcome, ResourceDriver, ResourceRequest } from '../../shared/core/ports';
import { windowsGuardDocumentName } from './guard-document';

export interface ExecOptions {
  /** The guard's SSM Command document (the deployment's failover-guard-<stage>). */
  document: string;
  /** Its PowerShell variant, sent to Windows nodes (default: windowsGuardDocumentName(document)). */
  windowsDocument?: string;
  /** GetCommandInvocation poll interval for the first 3 s (then it grows to 1 s); default 200 ms. */
  pollMs?: number;
  /** Sleeps between polls; a parameter for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** GetCommandInvocation every POLL_MS for the first FAST_POLL_WINDOW_MS, then doubling up to MAX_POLL_MS. */
const POLL_MS = 200;
const FAST_POLL_WINDOW_MS = 3000;
const MAX_POLL_MS = 1000;

/**
 * A stop SSM could not deliver (the instance is gone or not connected): nothing ran, and it says
 * nothing the next read will not. Reconcile tries again at once on fresh reads rather than wait for
 * the next trigger: an instance EC2 reported terminated, whose last renewal was sent too close to
 * the describe for its state to count as proof of the stop, is proven stopped a moment later. (A
 * start that cannot be delivered stays a failure counted against the node: repeated, it sets the
 * node aside and the group moves.)
 */
const RETRYABLE_STOP_STATUSES = new Set(['Undeliverable']);

/** The command failed on the node (or could not be delivered); the message carries the output tail. */
export class ExecFailedError extends FailoverError {
  readonly status: string;
  readonly exitCode: number | undefined;
  constructor(message: string, status: string, exitCode?: number, action?: 'start' | 'stop') {
    super('EXEC_FAILED', message, { retryable: action === 'stop' && RETRYABLE_STOP_STATUSES.has(status) });
    this.status = status;
    this.exitCode = exitCode;
  }
}

const TERMINAL = new Set([
  'Success',
  'Cancelled',
  'TimedOut',
  'Failed',
  'Cancelling',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Undeliverable',
  'Terminated',
  'InvalidPlatform',
  'AccessDenied',
]);

/** The document's parameters for one start or stop (what SSM checks against the document). */
export function guardParameters(req: ResourceRequest, action: 'start' | 'stop'): Record<string, string[]> {
  const resource = req.resource as ExecResource;
  return {
    group: [req.group],
    resource: [resource.name],
    epoch: [String(req.epoch)],
    action: [action],
    executionTimeout: [String(resource.timeoutSec)],
  };
}

/** The guard document for a node: the PowerShell variant on Windows nodes, else the shell one. */
export function guardDocumentFor(
  platform: 'linux' | 'windows' | undefined,
  options: Pick<ExecOptions, 'document' | 'windowsDocument'>,
): string {
  return platform === 'windows'
    ? (options.windowsDocument ?? windowsGuardDocumentName(options.document))
    : options.document;
}

/** What the node runs, in words (shown by `failoverctl plan` and in errors). */
export function guardCommandLine(
  req: ResourceRequest,
  action: 'start' | 'stop',
  options: ExecOptions,
): string {
  const resource = req.resource as ExecResource;
  const group = req.config.groups.find((g) => g.name === req.group);
  const addresses = group ? interfaceAddresses(group) : [];
  return `${guardDocumentFor(req.node.platform, options)}: guard --group ${req.group} --resource ${resource.name} --epoch ${req.epoch} --action ${action} (runs ${JSON.stringify(action === 'start' ? resource.start : resource.stop)}${addresses.length ? `, addresses ${addresses.join(', ')}` : ''})`;
}

function tail(text: string | undefined, max = 600): string {
  if (!text) return '';
  const trimmed = text.trim();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

export function createExecDriver(ssm: SSMClient, options: ExecOptions): ResourceDriver {
  const sleep = options.sleep ?? defaultSleep;

  async function run(req: ResourceRequest, action: 'start' | 'stop'): Promise<ActionOutcome> {
    const resource = req.resource as ExecResource;
    const instanceId = req.node.instanceId;
    const document = guardDocumentFor(req.node.platform, options);
    const where = `instance ${instanceId} (${req.node.name})`;
    const errorContext = {
      action: 'ssm:SendCommand',
      resource: `document ${document} on ${where}`,
      codes: {
        InvalidInstanceId: (m: string, cause: unknown) =>
          new NotFoundError(
            'INSTANCE_NOT_MANAGED',
            `SSM cannot reach ${where}: ${m}. Is the instance running, with the SSM agent and an instance profile allowing ssm:UpdateInstanceInformation?`,
            { cause },
          ),
        InvalidDocument: (m: string, cause: unknown) =>
          new NotFoundError(
            'SSM_DOCUMENT_NOT_FOUND',
            `SSM document ${document} does not exist (${m}); deploy the controller (it creates failover-guard-<stage> and, for Windows nodes, failover-guard-<stage>-windows) or, for local runs, "failoverctl init"`,
            { cause },
          ),
      },
    };

    await req.beforeMutation();
    let commandId: string;
    try {
      const sent = await ssm.send(
        new SendCommandCommand({
          InstanceIds: [instanceId],
          DocumentName: document,
          Comment: `failover ${req.cluster}/${req.group} epoch ${req.epoch} ${action} ${resource.name}`.slice(
            0,
            100,
          ),
          Parameters: guardParameters(req, action),
          TimeoutSeconds: 60,
        }),
        { abortSignal: req.signal },
      );
      commandId = sent.Command?.CommandId ?? '';
      if (!commandId) throw new ExecFailedError(`SendCommand to ${where} returned no command id`, 'Unknown');
    } catch (e) {
      throw toDomainError(e, errorContext);
    }
    if (action === 'start' && resource.async) {
      return {
        changed: true,
        detail: `${action} sent asynchronously to ${where}: command ${commandId}; the agent reports the outcome`,
      };
    }

    // Wait for a terminal status within the resource's timeout (and the invocation's deadline,
    // through req.signal).
    const started = Date.now();
    const limitMs = resource.timeoutSec * 1000 + 60_000;
    const firstPollMs = options.pollMs ?? POLL_MS;
    let pause = firstPollMs;
    for (;;) {
      await sleep(pause, req.signal);
      // Most starts and stops take well under a second, and the failover waits for them: look
      // often at first (a doubling schedule turned a 0.6 s command into a 1.4 s wait), then less.
      if (Date.now() - started >= FAST_POLL_WINDOW_MS) pause = Math.min(MAX_POLL_MS, pause * 2);
      let status: string | undefined;
      let out: { StandardOutputContent?: string; StandardErrorContent?: string; ResponseCode?: number } = {};
      try {
        const inv = await ssm.send(
          new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
          { abortSignal: req.signal },
        );
        status = inv.Status;
        out = inv;
      } catch (e) {
        // Right after SendCommand the invocation may not exist yet.
        const code = (e as { name?: string }).name;
        if (code !== 'InvocationDoesNotExist' && code !== 'InvalidCommandId') {
          throw toDomainError(e, { ...errorContext, action: 'ssm:GetCommandInvocation' });
        }
      }
      if (status && TERMINAL.has(status)) {
        const output = tail(out.StandardErrorContent) || tail(out.StandardOutputContent);
        if (status === 'Success') {
          return {
            changed: true,
            detail: `${action} on ${where} succeeded (command ${commandId})${output ? `: ${output}` : ''}`,
          };
        }
        throw new ExecFailedError(
          `${action} of ${resource.name} on ${where} ended ${status}${out.ResponseCode !== undefined && out.ResponseCode >= 0 ? ` with exit code ${out.ResponseCode}` : ''} (command ${commandId})${output ? `: ${output}` : ''}`,
          status,
          out.ResponseCode,
          action,
        );
      }
      if (Date.now() - started > limitMs) {
        throw new ExecFailedError(
          `${action} of ${resource.name} on ${where} did not finish within ${resource.timeoutSec} s (command ${commandId}, last status ${status ?? 'unknown'})`,
          'Timeout',
        );
      }
    }
  }

  return {
    activate: (req) => run(req, 'start'),
    deactivate: (req) => run(req, 'stop'),
    // The application's health is watched by the agent's monitors (pid, http, ...), not by SSM.
    check: async () => ({ status: 'ok', detail: 'watched by the agent monitors' }),
  };
}
