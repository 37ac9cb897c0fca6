/**
 * Shared wiring of the Lambda handlers: Powertools logger, controller dependencies built once per
 * cold start, middy with the logger's context injection. No logic here.
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
import type { ControllerDeps, InvocationContext, InvocationResult } from '../controller/reconcile/entry';
import type { Log } from '../shared/core/ports';

export const logger = new Logger({ serviceName: 'failover-controller' });

/** One structured JSON line per call, with the Lambda context injected by the middleware. */
const log: Log = {
  info: (message, attributes) => logger.info(message, attributes ?? {}),
  warn: (message, attributes) => logger.warn(message, attributes ?? {}),
  error: (message, attributes) => logger.error(message, attributes ?? {}),
};

let deps: ControllerDeps | undefined;
function controller(): ControllerDeps {
  deps ??= createControllerDeps(controllerSettingsFromEnv(process.env), log);
  return deps;
}

export function reconcileHandler<E>(
  run: (deps: ControllerDeps, event: E, ctx: InvocationContext) => Promise<InvocationResult>,
) {
  return middy<E, InvocationResult, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event: E, context: Context) =>
      run(controller(), event, invocationFromLambda(context, process.env, Date.now())),
    );
}
