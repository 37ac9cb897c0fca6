/**
 * The console page's files. Compiled failoverctl (dist/cli) serves dist/console, built with it by
 * scripts/build.mjs; run from the TypeScript sources, the page is built in memory at start
 * (cli/console/page-build.mjs, with esbuild), so that an edited page never meets a stale build.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type PageAssets = Record<'index.html' | 'console.js' | 'console.css' | 'favicon.svg', string>;

const FILES = ['index.html', 'console.js', 'console.css', 'favicon.svg'] as const;

export async function loadPageAssets(): Promise<PageAssets> {
  if (import.meta.url.endsWith('.ts')) {
    // A computed specifier: the bundler leaves it alone (the bundle never takes this path).
    const builder = new URL('./page-build.mjs', import.meta.url).href;
    const { buildPageAssets } = (await import(builder)) as { buildPageAssets: () => Promise<PageAssets> };
    return buildPageAssets();
  }
  // dist/cli/failoverctl.mjs or dist/cli/chunks/*.mjs -> dist/console
  for (const rel of ['../console/', '../../console/']) {
    const dir = new URL(rel, import.meta.url);
    if (existsSync(new URL('index.html', dir))) {
      return Object.fromEntries(FILES.map((f) => [f, readFileSync(new URL(f, dir), 'utf8')])) as PageAssets;
    }
  }
  throw new Error(
    `the console page is missing next to ${fileURLToPath(import.meta.url)} (dist/console); run "npm run build"`,
  );
}
