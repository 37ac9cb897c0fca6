/**
 * Counting the calls an AWS SDK v3 client makes, through its middleware stack: once per call (with
 * its start and end) and once per attempt under the retry layer. The sandbox's controller trace and
 * the scaling benchmark count through this one helper.
 */

/** One call of a client: its service as given, the operation without "Command", and its times. */
export interface SdkCall {
  service: string;
  op: string;
  at: number;
  end: number;
}

export interface SdkCallCounter {
  /** Every call, when it ended (successful or not). */
  call(call: SdkCall): void;
  /** Every attempt of a call (retries included), when it was sent. */
  attempt?(service: string, op: string): void;
}

type Middleware = (
  next: (args: unknown) => Promise<unknown>,
  context: { commandName?: string },
) => (args: unknown) => Promise<unknown>;
type WithMiddleware = {
  middlewareStack: { add: (mw: Middleware, options: Record<string, unknown>) => void };
};

const opOf = (context: { commandName?: string }) => (context.commandName ?? '?').replace(/Command$/, '');

/** Adds the counting middleware to `client` (any AWS SDK v3 client). */
export function countSdkCalls(client: unknown, service: string, counter: SdkCallCounter): void {
  const stack = (client as WithMiddleware).middlewareStack;
  stack.add(
    (next, context) => async (args) => {
      const at = Date.now();
      try {
        return await next(args);
      } finally {
        counter.call({ service, op: opOf(context), at, end: Date.now() });
      }
    },
    { step: 'initialize', name: `count-calls-${service}`, priority: 'high' },
  );
  const attempt = counter.attempt;
  if (attempt) {
    stack.add(
      (next, context) => async (args) => {
        attempt(service, opOf(context));
        return next(args);
      },
      { step: 'deserialize', name: `count-attempts-${service}` },
    );
  }
}
