/** Writes schema/cluster.schema.json from the zod schema (`npm run schema`); a unit test checks it is current. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterJsonSchema } from '../shared/config/json-schema';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'cluster.schema.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(clusterJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out}`);
