/**
 * failoverctl as users run it: the package's own bin, in a process of its own, with the run's
 * environment. A non-zero exit is an error that carries what the command printed.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'failoverctl.js');

export interface CliResult {
  stdout: string;
  stderr: string;
}

export function failoverctl(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new Error(
            `failoverctl ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${(stderr || stdout).trim().slice(-2000)}`,
          ),
        );
    });
  });
}
