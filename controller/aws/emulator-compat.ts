/**
 * Emulator-only compatibility: moto 5.1.1 (Debian trixie's python3-moto, which the emulator script
 * installs where PyPI is unreachable) answers some timestamps as ISO strings where the SDK expects
 * epoch seconds — SSM SendCommand / ListCommands (RequestedDateTime, ExpiresAfter) and DynamoDB
 * Streams (ApproximateCreationDateTime, CreationRequestDateTime) — and the SDK then fails to
 * deserialize. For clients pointed at an emulator (an endpoint override), this middleware rewrites
 * those fields in the raw JSON answer. moto 5.2.1 needs nothing; real AWS never sees this code path.
 */
import { Readable } from 'node:stream';
import type {
  DeserializeHandler,
  DeserializeHandlerArguments,
  DeserializeMiddleware,
  HandlerExecutionContext,
} from '@smithy/types';

const DATE_KEYS = new Set([
  'RequestedDateTime',
  'ExpiresAfter',
  'ApproximateCreationDateTime',
  'CreationRequestDateTime',
]);

async function readAll(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function fixValue(value: unknown): { value: unknown; changed: boolean } {
  if (typeof value !== 'string' || !Number.isNaN(Number(value))) return { value, changed: false };
  const ms = Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(value) ? value : `${value}Z`);
  return Number.isFinite(ms) ? { value: ms / 1000, changed: true } : { value, changed: false };
}

function walk(node: unknown): boolean {
  let changed = false;
  if (Array.isArray(node)) for (const item of node) changed = walk(item) || changed;
  else if (node && typeof node === 'object') {
    const record = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(record)) {
      if (DATE_KEYS.has(key)) {
        const fixed = fixValue(value);
        if (fixed.changed) {
          record[key] = fixed.value;
          changed = true;
        }
      } else changed = walk(value) || changed;
    }
  }
  return changed;
}

/** Rewrites ISO date strings of the known timestamp fields to epoch seconds. Pure. */
export function fixIsoDates(json: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return json;
  }
  return walk(doc) ? JSON.stringify(doc) : json;
}

interface StackOwner {
  middlewareStack: {
    addRelativeTo(
      middleware: never,
      options: { name: string; relation: 'after'; toMiddleware: string },
    ): void;
  };
}

export function addEmulatorDateCompat(client: StackOwner): void {
  const middleware: DeserializeMiddleware<object, object> =
    (next: DeserializeHandler<object, object>, _context: HandlerExecutionContext) =>
    async (args: DeserializeHandlerArguments<object>) => {
      const result = await next(args);
      const response = result.response as {
        body?: unknown;
        headers?: Record<string, string>;
        statusCode?: number;
      };
      if (!response?.body || (response.statusCode ?? 200) >= 300) return result;
      const raw = await readAll(response.body);
      const fixed = Buffer.from(fixIsoDates(raw.toString('utf8')));
      response.body = Readable.from([fixed]);
      if (response.headers) response.headers['content-length'] = String(fixed.length);
      return result;
    };
  client.middlewareStack.addRelativeTo(middleware as never, {
    name: 'emulatorIsoDates',
    relation: 'after',
    toMiddleware: 'deserializerMiddleware',
  });
}
