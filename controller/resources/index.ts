/**
 * The AWS implementation of the Cloud port: entry points (vip, eip, dns), the application (exec via
 * SSM), instance and zone observation, and the hard fence. One set of clients per process.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { Route53Client } from '@aws-sdk/client-route-53';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DEFAULT_AWS_OPTIONS } from '../../shared/aws/options';
import { mutationWorstCaseMs } from '../../shared/config/timing';
import type { Cloud } from '../../shared/core/ports';
import { type AwsOptions, clientConfig } from '../aws/clients';
import { addEmulatorDateCompat } from '../aws/emulator-compat';
import { createDnsDriver } from './dns';
import { createEipDriver } from './eip';
import { createExecDriver, type ExecOptions } from './exec';
import { describeInstances, describeZones, stopInstance } from './instances';
import { createSecondaryIpDriver } from './secondary-ip';
import { createVipDriver } from './vip';

export interface AwsClients {
  ec2: EC2Client;
  route53: Route53Client;
  ssm: SSMClient;
}

export function createAwsClients(aws: AwsOptions): AwsClients {
  const config = clientConfig(aws);
  const ssm = new SSMClient(config);
  if (aws.endpoint) addEmulatorDateCompat(ssm);
  // Route 53 is a global service; its API lives in us-east-1 (the endpoint override still applies).
  return { ec2: new EC2Client(config), route53: new Route53Client({ ...config, region: 'us-east-1' }), ssm };
}

export function createAwsCloud(
  aws: AwsOptions,
  exec: ExecOptions,
  clients: AwsClients = createAwsClients(aws),
): Cloud {
  return {
    resources: {
      vip: createVipDriver(clients.ec2),
      eip: createEipDriver(clients.ec2),
      dns: createDnsDriver(clients.route53),
      secondaryIp: createSecondaryIpDriver(clients.ec2),
      exec: createExecDriver(clients.ssm, exec),
    },
    describeInstances: (ids, signal) => describeInstances(clients.ec2, ids, signal),
    describeZones: (zones, signal) => describeZones(clients.ec2, zones, signal),
    stopInstance: (id, ctx) => stopInstance(clients.ec2, id, ctx),
    mutationWorstCaseMs: mutationWorstCaseOf(aws),
  };
}

/** Every attempt of a call timing out: connecting, then waiting for the answer. */
export function mutationWorstCaseOf(aws: AwsOptions): number {
  const o = { ...DEFAULT_AWS_OPTIONS, ...aws };
  return mutationWorstCaseMs({
    maxAttempts: o.maxAttempts,
    attemptTimeoutMs: o.connectionTimeoutMs + o.requestTimeoutMs,
  });
}
