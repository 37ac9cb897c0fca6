/**
 * SSM Run Command for emulated instances. moto records a SendCommand and reports Success at once
 * without running anything (and checks no parameter against the document); the sandbox does what
 * SSM and the instance's SSM agent would: it reads the document from the emulator, refuses
 * parameters the document does not allow (InvalidParameters, before anything runs), renders the
 * document's shell steps with them, runs them, and answers GetCommandInvocation with the real
 * outcome (exit code, output). It is a middleware on the controller's own SSM client: the controller
 * code is unchanged.
 */
import { spawn } from 'node:child_process';
import type { SSMClient } from '@aws-sdk/client-ssm';

export interface EmulatedInstance {
  /** False while the instance is down: commands are not delivered. */
  up(): boolean;
  /** Environment of the instance's shell (endpoint through its network path, state dir, ...). */
  env(): Record<string, string>;
}

interface Run {
  instanceId: string;
  status: 'InProgress' | 'Success' | 'Failed' | 'Undeliverable' | 'ExecutionTimedOut';
  code: number;
  stdout: string;
  stderr: string;
}

/** What the sandbox reads of a Command document (schema 2.2, shell steps). */
export interface CommandDocument {
  parameters?: Record<
    string,
    { default?: string; allowedValues?: readonly string[]; allowedPattern?: string }
  >;
  mainSteps: { action: string; inputs: { runCommand: string[]; timeoutSeconds?: string } }[];
}

/** An SSM error as the SDK raises it (name = AWS code). */
function ssmError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return Object.assign(e, { $metadata: { httpStatusCode: 400 } });
}

/**
 * The document's shell script and timeout for these parameters, as SSM renders them; throws
 * InvalidParameters for a parameter missing, unknown, or outside its allowed values or pattern.
 */
export function renderDocument(
  doc: CommandDocument,
  given: Record<string, string[]>,
  /** The steps rendered: the shell ones (what a Linux node runs), or the PowerShell ones (tests). */
  stepAction: 'aws:runShellScript' | 'aws:runPowerShellScript' = 'aws:runShellScript',
): { script: string; timeoutSec: number } {
  const declared = doc.parameters ?? {};
  const values: Record<string, string> = {};
  for (const name of Object.keys(given))
    if (!(name in declared))
      throw ssmError('InvalidParameters', `parameter "${name}" is not in the document`);
  for (const [name, spec] of Object.entries(declared)) {
    const value = given[name]?.[0] ?? spec.default;
    if (value === undefined) throw ssmError('InvalidParameters', `parameter "${name}" is required`);
    if (spec.allowedValues && !spec.allowedValues.includes(value))
      throw ssmError(
        'InvalidParameters',
        `parameter "${name}" must be one of ${spec.allowedValues.join(', ')}`,
      );
    if (spec.allowedPattern && !new RegExp(spec.allowedPattern).test(value))
      throw ssmError('InvalidParameters', `parameter "${name}" does not match ${spec.allowedPattern}`);
    values[name] = value;
  }
  const fill = (text: string) =>
    text.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (_, name: string) => values[name] ?? '');
  const steps = doc.mainSteps.filter((step) => step.action === stepAction);
  return {
    script: steps.flatMap((step) => step.inputs.runCommand.map(fill)).join('\n'),
    timeoutSec: Number(fill(steps[0]?.inputs.timeoutSeconds ?? '3600')),
  };
}

export class LocalRunCommand {
  private readonly runs = new Map<string, Run>();
  /** Every command run, for the timeline: [instanceId, command line, status]. */
  readonly history: { at: number; instanceId: string; line: string; run: Run }[] = [];
  private readonly documents = new Map<string, Promise<CommandDocument>>();

  constructor(
    private readonly instances: Map<string, EmulatedInstance>,
    /** Reads a document from the emulator (GetDocument). */
    private readonly readDocument: (name: string) => Promise<CommandDocument>,
  ) {}

  private document(name: string): Promise<CommandDocument> {
    let doc = this.documents.get(name);
    if (!doc) {
      doc = this.readDocument(name);
      this.documents.set(name, doc);
    }
    return doc;
  }

  attach(ssm: SSMClient): void {
    ssm.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          CommandId?: string;
          InstanceIds?: string[];
          DocumentName?: string;
          Parameters?: Record<string, string[]>;
        };
        if (context.commandName === 'GetCommandInvocationCommand' && input.CommandId) {
          const run = this.runs.get(input.CommandId);
          if (run) {
            return {
              output: {
                $metadata: { httpStatusCode: 200 },
                CommandId: input.CommandId,
                InstanceId: run.instanceId,
                Status: run.status,
                ResponseCode: run.status === 'InProgress' ? -1 : run.code,
                StandardOutputContent: run.stdout.slice(-2400),
                StandardErrorContent: run.stderr.slice(-8000),
              },
              response: {},
            } as never;
          }
        }
        // SSM checks the parameters against the document before it sends anything.
        const rendered =
          context.commandName === 'SendCommandCommand' && input.DocumentName
            ? renderDocument(await this.document(input.DocumentName), input.Parameters ?? {})
            : undefined;
        const result = await next(args);
        if (rendered) {
          const id = (result.output as { Command?: { CommandId?: string } }).Command?.CommandId;
          const instanceId = input.InstanceIds?.[0];
          if (id && instanceId) this.start(id, instanceId, rendered.script, rendered.timeoutSec);
        }
        return result;
      },
      { step: 'initialize', name: 'sandboxLocalRunCommand' },
    );
  }

  private start(id: string, instanceId: string, line: string, timeoutSec: number): void {
    const run: Run = { instanceId, status: 'InProgress', code: -1, stdout: '', stderr: '' };
    this.runs.set(id, run);
    this.history.push({ at: Date.now(), instanceId, line, run });
    const instance = this.instances.get(instanceId);
    if (!instance?.up()) {
      // SSM would hold it until the delivery timeout; the sandbox says so at once.
      setTimeout(
        () =>
          Object.assign(run, { status: 'Undeliverable', stderr: `instance ${instanceId} is not reachable` }),
        500,
      );
      return;
    }
    const child = spawn('/bin/sh', ['-c', line], {
      env: { ...process.env, ...instance.env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => {
      run.stdout += d;
    });
    child.stderr.on('data', (d) => {
      run.stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      run.status = 'ExecutionTimedOut';
    }, timeoutSec * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (run.status === 'InProgress')
        Object.assign(run, { status: code === 0 ? 'Success' : 'Failed', code: code ?? -1 });
    });
  }
}
