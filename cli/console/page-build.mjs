// Builds the console page with esbuild: cli/console/page/main.ts bundled (no dependencies, no CDN),
// console.css minified, index.html and the icon as they are. Used by scripts/build.mjs (into
// dist/console) and, when failoverctl runs from the sources, by the server in memory at start.
import { readFileSync } from 'node:fs';
import { build, transform } from 'esbuild';

const page = (file) => new URL(`./page/${file}`, import.meta.url);

/** @returns {Promise<Record<'index.html' | 'console.js' | 'console.css' | 'favicon.svg', string>>} */
export async function buildPageAssets() {
  const js = await build({
    entryPoints: [page('main.ts').pathname],
    bundle: true,
    write: false,
    format: 'iife',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const css = await transform(readFileSync(page('console.css'), 'utf8'), { loader: 'css', minify: true });
  return {
    'index.html': readFileSync(page('index.html'), 'utf8'),
    'console.js': js.outputFiles[0].text,
    'console.css': css.code,
    'favicon.svg': readFileSync(page('favicon.svg'), 'utf8'),
  };
}
