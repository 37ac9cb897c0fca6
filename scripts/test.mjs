#!/usr/bin/env node
// The README's test command (`npm test`): lint and format check, type checks, the import rules of the
// layout, the build (so that the compiled failoverctl the tests run is current), then every test
// project (unit, property, integration on the moto server the integration setup starts, ...,
// browser). Stops at the first failing step and exits with its code.
import { spawnSync } from 'node:child_process';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const steps = [
  ['lint + format (biome)', 'npx', ['biome', 'check', '.']],
  ['type check (tsc)', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']],
  [
    'type check of the console page (tsc, DOM)',
    'npx',
    ['tsc', '-p', 'cli/console/page/tsconfig.json', '--noEmit'],
  ],
  ['import rules (dependency-cruiser: ARCHITECTURE.md, "Layers")', 'npm', ['run', '--silent', 'deps']],
  ['build (failoverctl bundle, console page)', 'node', ['scripts/build.mjs']],
  [
    'tests (vitest: unit, property, integration, agent, e2e, packaging, browser)',
    'npx',
    ['vitest', 'run', ...process.argv.slice(2)],
  ],
];
for (const [name, command, args] of steps) {
  const started = Date.now();
  console.log(`\n== ${name}`);
  const result = spawnSync(command, args, { stdio: 'inherit' });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    console.error(`\n== FAILED: ${name} (exit ${result.status}, ${seconds} s)`);
    process.exit(result.status ?? 1);
  }
  console.log(`== ok: ${name} (${seconds} s)`);
}
