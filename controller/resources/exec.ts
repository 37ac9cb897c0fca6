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
 *
 * Synchronous commands for one instance that arrive together (many groups failing over to one node
 * at once) go out as one command (batcher.ts): a script that runs each group's guard command line,
 * at most BATCH_PARALLEL at a time, and prints one result line per group, so that one SendCommand
 * and one poll loop serve them all and each group still gets its own outcome (its exit code, its
 * output tail). Each group is fenced right before the batch that carries it is sent; a command
 * alone is sent exactly as before.
 */
import { GetCommandInvocationCommand, SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { toDomainError } from '../../shared/aws/errors';
import type { Settled } from '../../shared/base/coalesce';
import { FailoverError, NotFoundError } from '../../shared/base/errors';
import type { ExecResource } from '../../shared/config/schema';
import { interfaceAddresses } from '../../shared/core/node-side';
import type { ActionOutcome, ResourceDriver, ResourceRequest } from '../../shared/core/ports';
import { TargetBatcher } from './batcher';

export interface ExecOptions {
  /** Path of the agent on the nodes. */
  agentPath: string;
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
/**
 * Groups per batched command: each reports one result line (about 40 characters) on standard output,
 * of which GetCommandInvocation returns the first 24,000 characters.
 */
const MAX_BATCH = 100;
/** Guard runs of a batched command at once on the node (each a Node.js process of the agent). */
export const BATCH_PARALLEL = 4;
const RESULT = 'FAILOVER-RESULT';
const OUTPUT = 'FAILOVER-OUTPUT';

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

/** One group's command in a batch for one instance. */
interface ExecItem {
  req: ResourceRequest;
  action: 'start' | 'stop';
  commandLine: string;
}

/**
 * The script of a batched command: every item's command line in a subshell, at most BATCH_PARALLEL
 * at a time, its exit code and output kept apart, then one `FAILOVER-RESULT <i> <exit code>` line per
 * item on standard output and the output tail of each failed one on standard error.
 */
export function batchScript(lines: readonly string[]): string {
  const out = ['d=$(mktemp -d /tmp/failover-batch.XXXXXX) || exit 1'];
  lines.forEach((line, i) => {
    out.push(`{ ( ${line} ) >"$d/${i}.out" 2>&1; echo $? >"$d/${i}.rc"; } &`);
    if ((i + 1) % BATCH_PARALLEL === 0) out.push('wait');
  });
  out.push('wait');
  out.push(
    `for i in $(seq 0 ${lines.length - 1}); do rc=$(cat "$d/$i.rc" 2>/dev/null || echo 255); echo "${RESULT} $i $rc"; if [ "$rc" != 0 ]; then tail -c 300 "$d/$i.out" 2>/dev/null | sed "s/^/${OUTPUT} $i /" >&2; fi; done`,
  );
  out.push('rm -rf "$d"');
  return out.join('\n');
}

/** Each item's exit code and output tail, read off a batched command's output. */
function batchResults(stdout: string, stderr: string, count: number) {
  const codes = new Map<number, number>();
  for (const m of stdout.matchAll(new RegExp(`^${RESULT} (\\d+) (\\d+)$`, 'gm')))
    codes.set(Number(m[1]), Number(m[2]));
  const tails = new Map<number, string[]>();
  for (const m of stderr.matchAll(new RegExp(`^${OUTPUT} (\\d+) (.*)$`, 'gm')))
    tails.set(Number(m[1]), [...(tails.get(Number(m[1])) ?? []), m[2] ?? '']);
  return Array.from({ length: count }, (_, i) => ({
    code: codes.get(i),
    output: (tails.get(i) ?? []).join('\n'),
  }));
}

export function createExecDriver(ssm: SSMClient, options: ExecOptions): ResourceDriver {
  const sleep = options.sleep ?? defaultSleep;

  const errorContext = (req: ResourceRequest) => {
    const resource = req.resource as ExecResource;
    const where = `instance ${req.node.instanceId} (${req.node.name})`;
    return {
      action: 'ssm:SendCommand',
      resource: `document ${resource.document} on ${where}`,
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
            `SSM document ${resource.document} does not exist (${m}); use AWS-RunShellScript or create it`,
            { cause },
          ),
      },
    };
  };

  /** SendCommand of one command line (a group's, or a batch's script); returns its command id. */
  async function send(
    req: ResourceRequest,
    commandLine: string,
    comment: string,
    timeoutSec: number,
    signal: AbortSignal,
  ): Promise<string> {
    const resource = req.resource as ExecResource;
    const where = `instance ${req.node.instanceId} (${req.node.name})`;
    try {
      const sent = await ssm.send(
        new SendCommandCommand({
          InstanceIds: [req.node.instanceId],
          DocumentName: resource.document,
          Comment: comment.slice(0, 100),
          Parameters: { commands: [commandLine], executionTimeout: [String(timeoutSec)] },
          TimeoutSeconds: 60,
        }),
        { abortSignal: signal },
      );
      const commandId = sent.Command?.CommandId ?? '';
      if (!commandId) throw new ExecFailedError(`SendCommand to ${where} returned no command id`, 'Unknown');
      return commandId;
    } catch (e) {
      throw toDomainError(e, errorContext(req));
    }
  }

  /** Polls a command to a terminal status within `timeoutSec` (and `signal`, the deadline). */
  async function wait(
    req: ResourceRequest,
    commandId: string,
    what: string,
    timeoutSec: number,
    signal: AbortSignal,
  ): Promise<{ status: string; code?: number; stdout: string; stderr: string }> {
    const instanceId = req.node.instanceId;
    const where = `instance ${instanceId} (${req.node.name})`;
    const started = Date.now();
    const limitMs = timeoutSec * 1000 + 60_000;
    const firstPollMs = options.pollMs ?? POLL_MS;
    let pause = firstPollMs;
    for (;;) {
      await sleep(pause, signal);
      // Most starts and stops take well under a second, and the failover waits for them: look
      // often at first (a doubling schedule turned a 0.6 s command into a 1.4 s wait), then less.
      if (Date.now() - started >= FAST_POLL_WINDOW_MS) pause = Math.min(MAX_POLL_MS, pause * 2);
      let status: string | undefined;
      let out: { StandardOutputContent?: string; StandardErrorContent?: string; ResponseCode?: number } = {};
      try {
        const inv = await ssm.send(
          new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
          { abortSignal: signal },
        );
        status = inv.Status;
        out = inv;
      } catch (e) {
        // Right after SendCommand the invocation may not exist yet.
        const code = (e as { name?: string }).name;
        if (code !== 'InvocationDoesNotExist' && code !== 'InvalidCommandId') {
          throw toDomainError(e, { ...errorContext(req), action: 'ssm:GetCommandInvocation' });
        }
      }
      if (status && TERMINAL.has(status)) {
        return {
          status,
          ...(out.ResponseCode !== undefined && out.ResponseCode >= 0 ? { code: out.ResponseCode } : {}),
          stdout: out.StandardOutputContent ?? '',
          stderr: out.StandardErrorContent ?? '',
        };
      }
      if (Date.now() - started > limitMs) {
        throw new ExecFailedError(
          `${what} on ${where} did not finish within ${timeoutSec} s (command ${commandId}, last status ${status ?? 'unknown'})`,
          'Timeout',
        );
      }
    }
  }

  /** One group's command alone: its own command line, its own status. */
  async function runAlone(item: ExecItem, signal: AbortSignal): Promise<ActionOutcome> {
    const { req, action, commandLine } = item;
    const resource = req.resource as ExecResource;
    const where = `instance ${req.node.instanceId} (${req.node.name})`;
    const commandId = await send(
      req,
      commandLine,
      `failover ${req.cluster}/${req.group} epoch ${req.epoch} ${action} ${resource.name}`,
      resource.timeoutSec,
      signal,
    );
    if (action === 'start' && resource.async) {
      return {
        changed: true,
        detail: `${action} sent asynchronously to ${where}: command ${commandId}; the agent reports the outcome`,
      };
    }
    const r = await wait(req, commandId, `${action} of ${resource.name}`, resource.timeoutSec, signal);
    const output = tail(r.stderr) || tail(r.stdout);
    if (r.status === 'Success') {
      return {
        changed: true,
        detail: `${action} on ${where} succeeded (command ${commandId})${output ? `: ${output}` : ''}`,
      };
    }
    throw new ExecFailedError(
      `${action} of ${resource.name} on ${where} ended ${r.status}${r.code !== undefined ? ` with exit code ${r.code}` : ''} (command ${commandId})${output ? `: ${output}` : ''}`,
      r.status,
      r.code,
    );
  }

  /** Several groups' commands for one instance: one script, one poll loop, one outcome each. */
  async function runBatch(items: ExecItem[], signal: AbortSignal): Promise<Settled<ActionOutcome>[]> {
    if (items.length === 1) {
      return [
        await runAlone(items[0]!, signal).then(
          (value): Settled<ActionOutcome> => ({ ok: true, value }),
          (error: unknown): Settled<ActionOutcome> => ({ ok: false, error }),
        ),
      ];
    }
    const first = items[0]!.req;
    const where = `instance ${first.node.instanceId} (${first.node.name})`;
    const timeoutSec = Math.max(...items.map((i) => (i.req.resource as ExecResource).timeoutSec));
    const all = (error: unknown) => items.map((): Settled<ActionOutcome> => ({ ok: false, error }));
    let commandId: string;
    let r: Awaited<ReturnType<typeof wait>>;
    try {
      commandId = await send(
        first,
        batchScript(items.map((i) => i.commandLine)),
        `failover: ${items.length} groups: ${items.map((i) => `${i.req.group} ${i.action}`).join(', ')}`,
        timeoutSec,
        signal,
      );
      r = await wait(first, commandId, `a command of ${items.length} groups`, timeoutSec, signal);
    } catch (e) {
      return all(e);
    }
    if (r.status !== 'Success') {
      return all(
        new ExecFailedError(
          `a command starting and stopping ${items.length} groups on ${where} ended ${r.status} (command ${commandId})${tail(r.stderr) ? `: ${tail(r.stderr)}` : ''}`,
          r.status,
          r.code,
        ),
      );
    }
    return batchResults(r.stdout, r.stderr, items.length).map(
      ({ code, output }, i): Settled<ActionOutcome> => {
        const { req, action } = items[i]!;
        const resource = req.resource as ExecResource;
        const alongside = `command ${commandId}, with ${items.length - 1} other groups`;
        if (code === 0)
          return {
            ok: true,
            value: { changed: true, detail: `${action} on ${where} succeeded (${alongside})` },
          };
        return {
          ok: false,
          error: new ExecFailedError(
            code === undefined
              ? `${action} of ${resource.name} on ${where}: no result for it in the output of ${alongside}`
              : `${action} of ${resource.name} on ${where} ended with exit code ${code} (${alongside})${output ? `: ${tail(output)}` : ''}`,
            code === undefined ? 'Unknown' : 'Failed',
            code,
          ),
        };
      },
    );
  }

  const commands = new TargetBatcher<ExecItem, ActionOutcome>((_, batch, signal) => runBatch(batch, signal), {
    maxBatch: MAX_BATCH,
  });

  async function run(req: ResourceRequest, action: 'start' | 'stop'): Promise<ActionOutcome> {
    const resource = req.resource as ExecResource;
    const item: ExecItem = { req, action, commandLine: guardCommandLine(req, action, options) };
    // An asynchronous start does not wait for its outcome: it goes alone.
    if (action === 'start' && resource.async) {
      await req.beforeMutation();
      return runAlone(item, req.signal);
    }
    // Fenced right before the instance's batch is sent: every group of a batch has its fence.
    return commands.submit(
      `${req.node.instanceId}|${resource.document}`,
      `${req.cluster}/${req.group}/${resource.name}`,
      item,
      req.signal,
      req.beforeMutation,
    );
  }

  return {
    activate: (req) => run(req, 'start'),
    deactivate: (req) => run(req, 'stop'),
    // The application's health is watched by the agent's monitors (pid, http, ...), not by SSM.
    check: async () => ({ status: 'ok', detail: 'watched by the agent monitors' }),
  };
}
