/**
 * Builds everything reconcile needs from settings (environment in Lambda, flags in failoverctl):
 * the state store, the AWS cloud adapter, the notifier and the clock. Clients are created once per
 * process (Lambda cold start), not per invocation.
 */

import { type AwsOptions, awsOptionsFromEnv } from '../../shared/aws/options';
import { parseClusterConfig } from '../../shared/config/validate';
import type { Log } from '../../shared/core/ports';
import { resolveTableName } from '../../shared/table/keys';
import { createNotifier } from '../notify/notifier';
import { createAwsClients, createAwsCloud } from '../resources';
import { LOCAL_GUARD_DOCUMENT } from '../resources/guard-document';
import { DynamoStore } from '../state/dynamo-store';
import { systemClock } from './clock';
import type { ControllerDeps, InvocationContext } from './entry';

export interface ControllerSettings {
  table: string;
  aws: AwsOptions;
  /** The guard's SSM Command document (serverless.yml GuardDocument; `failoverctl init` for local runs). */
  ssmDocument: string;
  /**
   * Its PowerShell variant for Windows nodes (serverless.yml WindowsGuardDocument); default the
   * Linux one's name with -windows.
   */
  ssmDocumentWindows?: string;
  eventBus?: string;
  topicArn?: string;
  /** Account of the deployment, stamped on transition events (Lambda: from the function's ARN). */
  account?: string;
}

export const DEFAULT_AGENT_PATH = '/usr/local/bin/failover-agent';

/** FAILOVER_TABLE, FAILOVER_SSM_DOCUMENT[_WINDOWS], FAILOVER_EVENT_BUS, FAILOVER_ALERT_TOPIC_ARN, AWS_REGION, AWS_ENDPOINT_URL. */
export function controllerSettingsFromEnv(
  env: Record<string, string | undefined>,
  overrides: Partial<ControllerSettings> = {},
): ControllerSettings {
  return {
    table: overrides.table ?? resolveTableName(undefined, env),
    aws: overrides.aws ?? awsOptionsFromEnv(env),
    ssmDocument: overrides.ssmDocument ?? env.FAILOVER_SSM_DOCUMENT ?? LOCAL_GUARD_DOCUMENT,
    ...((overrides.ssmDocumentWindows ?? env.FAILOVER_SSM_DOCUMENT_WINDOWS)
      ? { ssmDocumentWindows: overrides.ssmDocumentWindows ?? env.FAILOVER_SSM_DOCUMENT_WINDOWS }
      : {}),
    ...((overrides.eventBus ?? env.FAILOVER_EVENT_BUS)
      ? { eventBus: overrides.eventBus ?? env.FAILOVER_EVENT_BUS }
      : {}),
    ...((overrides.topicArn ?? env.FAILOVER_ALERT_TOPIC_ARN)
      ? { topicArn: overrides.topicArn ?? env.FAILOVER_ALERT_TOPIC_ARN }
      : {}),
    ...(overrides.account ? { account: overrides.account } : {}),
  };
}

/** An AWS SDK client, as far as instrumentation (middleware) needs it. */
export type InstrumentableClient = { middlewareStack: { add: (...args: never[]) => unknown } };

export function createControllerDeps(
  settings: ControllerSettings,
  log: Log,
  /** Called with every AWS client the controller uses (the Lambda counts throttled attempts). */
  instrument?: (client: InstrumentableClient) => void,
): ControllerDeps {
  const store = new DynamoStore(settings.table, settings.aws, undefined, {
    validateConfig: parseClusterConfig,
  });
  const clients = createAwsClients(settings.aws);
  if (instrument)
    for (const client of [store.client, clients.ec2, clients.route53, clients.ssm]) instrument(client);
  return {
    store,
    cloud: createAwsCloud(
      settings.aws,
      {
        document: settings.ssmDocument,
        ...(settings.ssmDocumentWindows ? { windowsDocument: settings.ssmDocumentWindows } : {}),
      },
      clients,
    ),
    notifier: createNotifier(
      {
        ...(settings.eventBus ? { eventBus: settings.eventBus } : {}),
        ...(settings.topicArn ? { topicArn: settings.topicArn } : {}),
        ...(settings.aws.region ? { region: settings.aws.region } : {}),
        ...(settings.account ? { account: settings.account } : {}),
      },
      settings.aws,
    ),
    clock: systemClock,
    log,
  };
}

/**
 * Time kept back from the Lambda timeout after the deadline: lock releases and alerts in flight
 * (reconcile.ts CLEANUP_TIMEOUT_MS each, run side by side for every group), the audit of failures,
 * metrics and logs. Without it a slow DynamoDB turned the cleanup into a Lambda timeout, hence a
 * 1-minute async retry or a blocked stream shard.
 */
export const LAMBDA_RESERVE_MS = 5_000;

export interface LambdaContextLike {
  awsRequestId: string;
  invokedFunctionArn: string;
  getRemainingTimeInMillis(): number;
}

export function invocationFromLambda(
  context: LambdaContextLike,
  env: Record<string, string | undefined>,
  now: number,
): InvocationContext {
  const account = context.invokedFunctionArn.split(':')[4];
  const region = env.AWS_REGION;
  return {
    holder: `lambda:${context.awsRequestId}`,
    deadline: now + Math.max(1_000, context.getRemainingTimeInMillis() - LAMBDA_RESERVE_MS),
    ...(account ? { account } : {}),
    ...(region ? { region } : {}),
  };
}
