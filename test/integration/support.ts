/** Helpers for integration tests against the moto server started by global-setup.ts. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { AwsOptions } from '../../shared/aws/options';

// moto accepts any credentials; real ones must never be needed (or used) by the tests.
process.env.AWS_ACCESS_KEY_ID = 'testing';
process.env.AWS_SECRET_ACCESS_KEY = 'testing';
delete process.env.AWS_PROFILE;

export function aws(): AwsOptions {
  return { region: 'us-east-1', endpoint: inject('awsEndpoint') };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
