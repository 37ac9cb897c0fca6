/**
 * Shared wiring of the Lambda handlers: Powertools logger, controller dependencies built once per
 * cold start (watched for metrics), middy with the logger's context injection, the invocation's
 * metrics published as EMF when it ends. No logic here.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import {
  controllerSettingsFromEnv,
  createControllerDeps,
  invocationFromLambda,
} from '../controller/reconcile/controller';
import {
  type ControllerDeps,
  type InvocationContext,
  type InvocationResult,
  ReconcileFailedError,
} from '../controller/reconcile/entry';
import type { Log } from '../shared/core/ports';
import { countThrottles, instrumentDeps, publishMetrics } from './metrics';

export const logger = new Logger({ serviceName: 'failover-controller' });

/** One structured JSON line per call, with the Lambda context injected by the middleware. */
const log: Log = {
  info: (message, attributes) => logger.info(message, attributes ?? {}),
  warn: (message, attributes) => logger.warn(message, attributes ?? {}),
  error: (message, attributes) => logger.error(message, attributes ?? {}),
};

let deps: ControllerDeps | undefined;
/** Built at the first invocation: the account (stamped on transition events) comes from its ARN. */
function controller(account: string | undefined): ControllerDeps {
  deps ??= instrumentDeps(
    createControllerDeps(
      controllerSettingsFromEnv(process.env, account ? { account } : {}),
      log,
      countThrottles,
    ),
  );
  return deps;
}

/**
 * How the invocation reports a reconcile that failed: `throw` fails the invocation (EventBridge:
 * Lambda retries it and counts it in Errors); `batch-items` returns the failed records
 * (`batchItemFailures`, the stream mapping's ReportBatchItemFailures).
 */
export type FailureReport = 'throw' | 'batch-items';

export function reconcileHandler<E>(
  run: (deps: ControllerDeps, event: E, ctx: InvocationContext) => Promise<InvocationResult>,
  report: FailureReport = 'throw',
) {
  return middy<E, InvocationResult, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event: E, context: Context) => {
      const invocation = invocationFromLambda(context, process.env, Date.now());
      let result: InvocationResult | undefined;
      try {
        result = await run(controller(invocation.account), event, invocation);
      } finally {
        // Metrics never fail an invocation: a publishing problem is logged, not thrown.
        try {
          publishMetrics(result, context.functionName);
        } catch (e) {
          logger.warn('could not publish metrics', { error: (e as Error).message });
        }
      }
      const failures = result.failures ?? [];
      if (report === 'throw' && failures.length > 0) throw new ReconcileFailedError(failures);
      return result;
    });
}
