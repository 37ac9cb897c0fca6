/** Helpers for integration tests against the moto server started by global-setup.ts. */
import { randomBytes } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { inject } from 'vitest';
import type { AwsOptions } from '../../shared/aws/options';
import type { Heartbeat } from '../../shared/core/model';

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

/** The Lambda context the handlers read: a request id, the function's ARN, 30 s left. */
export function lambdaContext(id: string, functionName = 'reconcile'): Context {
  return {
    awsRequestId: id,
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    functionName,
    getRemainingTimeInMillis: () => 30_000,
  } as unknown as Context;
}

/** A fresh, running agent report with a 10-minute lease (nothing expires during a test). */
export function testHeartbeat(cluster: string, node: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    cluster,
    node,
    token: `${node}/1`,
    seq: 1,
    incarnation: node,
    sentAt: Date.now(),
    leaseMs: 600_000,
    agentVersion: 'test',
    state: 'running',
    reason: 'change',
    monitors: {},
    isolated: false,
    groups: {},
    peers: {},
    ...over,
  };
}
