#!/usr/bin/env node
// failoverctl. Runs the compiled bundle (dist/cli, built by `npm run build`, which `npm ci` runs)
// when it is there and no project source is newer than it; otherwise the TypeScript sources through
// tsx, which compiles them at every start (1.5-2 s instead of about 0.2 s). FAILOVERCTL_FROM_SOURCE=1
// forces the sources (the start-up benchmark compares both).
import { readFileSync, statSync } from 'node:fs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = new URL('../', import.meta.url);

/** True when dist/cli exists and every source it was built from is older than the build. */
function freshBuild() {
  if (process.env.FAILOVERCTL_FROM_SOURCE === '1') return false;
  try {
    const info = JSON.parse(readFileSync(new URL('dist/cli/build-info.json', root), 'utf8'));
    // A shipped package has the bundle without the sources: nothing to compare with.
    return info.sources.every((file) => {
      try {
        return statSync(new URL(file, root)).mtimeMs <= info.builtAt;
      } catch {
        return true;
      }
    });
  } catch {
    return false;
  }
}

let main;
if (freshBuild()) {
  ({ main } = await import(new URL('dist/cli/failoverctl.mjs', root).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
