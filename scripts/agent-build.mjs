#!/usr/bin/env node
// Bundles the node agent into one file for the instances: dist/failover-agent.mjs (ESM, Node 20+),
// AWS SDK included, no node_modules needed on the node. `npm run build:agent [-- --outfile PATH]`.
//
//   node /opt/failover-agent/failover-agent.mjs --cluster orders --node node1
//   node /opt/failover-agent/failover-agent.mjs guard --group db --epoch 3 -- /opt/app/start.sh
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Lets tree-shaking drop what the agent never calls: `yaml` (only failoverctl parses YAML text),
 * zod's message translations, and the SDK's browser user-agent parser. These packages do not
 * declare themselves free of side effects, so esbuild keeps them whole unless told; they are, for
 * what the agent imports. Less code loaded is less resident memory.
 */
const SIDE_EFFECT_FREE =
  /^(yaml|bowser)(\/|$)|[\\/]node_modules[\\/](yaml|bowser)[\\/]|[\\/]zod[\\/]v4[\\/]locales[\\/]/;
const sideEffectFree = {
  name: 'agent-side-effect-free',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'inner' || !(SIDE_EFFECT_FREE.test(args.path) || /locales/.test(args.path)))
        return;
      const resolved = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'inner',
      });
      if (resolved.errors.length > 0 || !SIDE_EFFECT_FREE.test(resolved.path)) return;
      return { ...resolved, sideEffects: false };
    });
  },
};

/**
 * Builds the bundle; returns its path and size. `plugins`: more esbuild plugins (`npm run chaos --
 * --mutant` builds an agent with a deliberate bug this way, never the shipped one).
 */
export async function buildAgent(
  outfile = path.join(REPO, 'dist', 'failover-agent.mjs'),
  { plugins = [] } = {},
) {
  const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  await build({
    entryPoints: [path.join(REPO, 'node-agent', 'bin.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // The SDK's packages ship CommonJS (main) and ES modules (module). Only ES modules let esbuild
    // drop what the agent does not use (a CommonJS require keeps a whole package), so prefer them.
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    define: { __FAILOVER_AGENT_VERSION__: JSON.stringify(version) },
    plugins: [sideEffectFree, ...plugins],
    // CommonJS parts of the SDK call require() for Node built-ins; give the ESM bundle one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
    },
  });
  return { outfile, bytes: statSync(outfile).size, version };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--outfile');
  const out = await buildAgent(i > 0 ? path.resolve(process.argv[i + 1]) : undefined);
  console.log(
    `built ${path.relative(process.cwd(), out.outfile)} (${(out.bytes / 1024).toFixed(0)} KiB, version ${out.version})`,
  );
}
