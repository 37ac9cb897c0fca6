#!/usr/bin/env node
// Runs the TypeScript node agent straight from a checkout (after `npm ci`). On an instance, the
// bundled single file built by `npm run build:agent` is used instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../node-agent/main.ts');
process.exitCode = await main(process.argv.slice(2));
