/**
 * Writes schema/cluster.schema.json from the zod schema and schema/transition-event.schema.json
 * from shared/notify/event-schema.ts (`npm run schema`); unit tests check both are current.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transitionEventJsonSchema } from '../controller/notify/event-schema';
import { clusterJsonSchema } from '../shared/config/json-schema';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');
mkdirSync(dir, { recursive: true });
for (const [file, schema] of [
  ['cluster.schema.json', clusterJsonSchema()],
  ['transition-event.schema.json', transitionEventJsonSchema()],
] as const) {
  writeFileSync(join(dir, file), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${join(dir, file)}`);
}
