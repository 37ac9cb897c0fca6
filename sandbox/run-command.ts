/**
 * SSM Run Command for emulated instances. moto records a SendCommand and reports Success at once
 * without running anything; the sandbox runs each command itself, as the instance's SSM agent
 * would, and answers GetCommandInvocation with the real outcome (exit code, output). It is a
 * middleware on the controller's own SSM client: the controller code is unchanged.
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

export class LocalRunCommand {
  private readonly runs = new Map<string, Run>();
  /** Every command run, for the timeline: [instanceId, command line, status]. */
  readonly history: { at: number; instanceId: string; line: string; run: Run }[] = [];

  constructor(private readonly instances: Map<string, EmulatedInstance>) {}

  attach(ssm: SSMClient): void {
    ssm.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as {
          CommandId?: string;
          InstanceIds?: string[];
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
        const result = await next(args);
        if (context.commandName === 'SendCommandCommand') {
          const id = (result.output as { Command?: { CommandId?: string } }).Command?.CommandId;
          const instanceId = input.InstanceIds?.[0];
          const line = input.Parameters?.commands?.[0];
          const timeoutSec = Number(input.Parameters?.executionTimeout?.[0] ?? 60);
          if (id && instanceId && line) this.start(id, instanceId, line, timeoutSec);
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
