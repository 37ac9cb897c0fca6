/**
 * Which failures of an SSM command reconcile tries again at once (the entry's retries on fresh
 * reads) and which it records against the node.
 */
import { describe, expect, it } from 'vitest';
import { ExecFailedError } from '../../controller/resources/exec';

describe('ExecFailedError', () => {
  it('a stop SSM could not deliver is retried on fresh reads (the instance may be gone: a new describe proves it)', () => {
    const e = new ExecFailedError(
      'stop of app on i-1 (node1) ended Undeliverable',
      'Undeliverable',
      undefined,
      'stop',
    );
    expect(e.code).toBe('EXEC_FAILED');
    expect(e.retryable).toBe(true);
  });

  it('a start SSM could not deliver stays a failure counted against the node (repeated, the group moves)', () => {
    expect(
      new ExecFailedError('start ended Undeliverable', 'Undeliverable', undefined, 'start').retryable,
    ).toBe(false);
  });

  it('a stop that ran and failed is never retried as if nothing happened', () => {
    for (const status of ['Failed', 'TimedOut', 'Cancelled', 'ExecutionTimedOut', 'Timeout'])
      expect(new ExecFailedError(`stop ended ${status}`, status, 1, 'stop').retryable, status).toBe(false);
  });
});
