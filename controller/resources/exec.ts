/**
 * exec resource: start / stop the application with SSM Run Command on the target instance, always
 * through the agent's guard so that a stale epoch never starts (or wrongly stops) anything:
 *
 *   failover-agent guard --cluster C --node N --table T --group G --epoch E --action start [--vip IP] -- /bin/sh -c '<start>'
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
import { DEFAULT_AGENT_PATH_WINDOWS, execDocumentFor, windowsGuardCommandLine } from './windows-exec';

export interface ExecOptions {
  /** Path of the agent on the nodes. */
  agentPath: string;
  /** Path of the agent's command on Windows nodes (default: install.ps1's). */
  agentPathWindows?: string;
  /** State table name passed to the guard (the node's SSM shell has no FAILOVER_TABLE). */
  table: string;
  /** GetCommandInvocation poll interval for the first 3 s (then it grows to 1 s); default 200 ms. */
  pollMs?: number;
  /** Sleeps between polls; a parameter for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** GetCommandInvocation every POLL_MS for the first FAST_POLL_WINDOW_MS, then doubling up to MAX_POLL_MS. */
const POLL_MS = 200;
const FAST_POLL_WINDOW_MS = 3000;
const MAX_POLL_MS = 1000;

/** The command failed on the node (or could not be delivered); the message carries the output tail. */
export class ExecFailedError extends FailoverError {
  readonly status: string;
  readonly exitCode: number | undefined;
  constructor(message: string, status: string, exitCode?: number) {
    super('EXEC_FAILED', message);
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

/** POSIX single-quote quoting. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\-./=:@%+,]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The exact command line the node runs (also shown by `failoverctl plan`). */
export function guardCommandLine(
  req: ResourceRequest,
  action: 'start' | 'stop',
  options: ExecOptions,
): string {
  const resource = req.resource as ExecResource;
  const group = req.config.groups.find((g) => g.name === req.group);
  const addresses = group ? interfaceAddresses(group) : [];
  if (req.node.platform === 'windows') {
    return windowsGuardCommandLine({
      agentPath: options.agentPathWindows ?? DEFAULT_AGENT_PATH_WINDOWS,
      cluster: req.cluster,
      node: req.node.name,
      table: options.table,
      group: req.group,
      epoch: req.epoch,
      action,
      vips: addresses,
      script: action === 'start' ? resource.start : resource.stop,
    });
  }
  const words = [
    options.agentPath,
    'guard',
    '--cluster',
    req.cluster,
    '--node',
    req.node.name,
    '--table',
    options.table,
    '--group',
    req.group,
    '--epoch',
    String(req.epoch),
    '--action',
    action,
    ...addresses.flatMap((ip) => ['--vip', ip]),
    '--',
    '/bin/sh',
    '-c',
    action === 'start' ? resource.start : resource.stop,
  ];
  return words.map(shellQuote).join(' ');
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
    const commandLine = guardCommandLine(req, action, options);
    const document = execDocumentFor(resource, req.node.platform);
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
            `SSM document ${document} does not exist (${m}); use AWS-RunShellScript (AWS-RunPowerShellScript on Windows nodes) or create it`,
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
          Parameters: { commands: [commandLine], executionTimeout: [String(resource.timeoutSec)] },
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
