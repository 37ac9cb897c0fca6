#!/usr/bin/env node
// Builds what the package ships as JavaScript (`npm run build`, also run by `npm ci` through the
// `prepare` script):
//
//   dist/cli/failoverctl.mjs (+ chunks)  failoverctl, compiled and bundled: it starts in a fraction of
//                                        the time tsx needs to compile the sources at every run
//   dist/cli/build-info.json             the project sources the bundle was built from, so that
//                                        bin/failoverctl.js can tell a stale build from a fresh one
//   dist/console/                        the web console's page: index.html, console.js, console.css
//
// Each command is a chunk of its own, loaded when it runs: `--version` and `--help` load neither
// the AWS SDK nor the cluster schema.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles the CLI into dist/cli; returns the entry file and the project sources it was built from. */
export async function buildCli(outdir = path.join(REPO, 'dist', 'cli')) {
  const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { failoverctl: path.join(REPO, 'cli', 'main.ts') },
    outdir,
    bundle: true,
    splitting: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    // ES modules of the SDK let esbuild drop what the CLI never calls (see agent-build.mjs).
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
    define: { __FAILOVERCTL_VERSION__: JSON.stringify(version) },
    // esbuild (the console page's bundler, used only when running from the sources) is not shipped.
    external: ['esbuild'],
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
    },
  });
  const sources = Object.keys(result.metafile.inputs)
    .filter((f) => !f.includes('node_modules'))
    .map((f) => path.relative(REPO, path.resolve(f)))
    .sort();
  writeFileSync(
    path.join(outdir, 'build-info.json'),
    `${JSON.stringify({ version, builtAt: Date.now(), sources }, null, 1)}\n`,
  );
  return { entry: path.join(outdir, 'failoverctl.mjs'), sources };
}

/** Builds the console page into dist/console (see cli/console/assets.ts for the same build in memory). */
export async function buildConsolePage(outdir = path.join(REPO, 'dist', 'console')) {
  const { buildPageAssets } = await import(
    pathToFileURL(path.join(REPO, 'cli', 'console', 'page-build.mjs'))
  );
  const assets = await buildPageAssets();
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  for (const [name, body] of Object.entries(assets)) writeFileSync(path.join(outdir, name), body);
  return { outdir, files: Object.keys(assets) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = Date.now();
  const cli = await buildCli();
  const page = await buildConsolePage();
  console.log(
    `built ${path.relative(process.cwd(), cli.entry)} (${cli.sources.length} sources) and ${path.relative(process.cwd(), page.outdir)}/ (${page.files.join(', ')}) in ${Date.now() - started} ms`,
  );
}
