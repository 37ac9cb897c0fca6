// One Lambda function's execution environment, for the acceptance run on the emulator: a process of
// its own that imports the function's bundle (built as serverless.yml builds it) once, as a cold
// start does, and runs its handler for each event the parent sends over IPC, with a Lambda context.
//
//   node lambda-host.mjs <bundle.mjs> <export> <function name> <timeout ms>
//
// The handler's log lines (Powertools JSON, EMF metrics) go to this process's stdout: the parent
// writes them to a file, as CloudWatch Logs keeps them.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [bundle, exportName, functionName, timeout] = process.argv.slice(2);
const timeoutMs = Number(timeout);
const mod = await import(pathToFileURL(bundle).href);
const handler = mod[exportName];
if (typeof handler !== 'function') {
  console.error(`${bundle} exports no function ${exportName}`);
  process.exit(2);
}
const region = process.env.AWS_REGION ?? 'us-east-1';

process.on('message', async (message) => {
  const { id, event } = message;
  const started = Date.now();
  const requestId = randomUUID();
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:123456789012:function:${functionName}`,
    memoryLimitInMB: '1769',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'acceptance',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  try {
    const result = await handler(event, context);
    process.send({ id, result: result ?? null });
  } catch (e) {
    process.send({ id, error: { name: e?.name ?? 'Error', message: e?.message ?? String(e) } });
  }
});
process.send({ ready: true });
