/**
 * The Lambda functions as serverless.yml deploys them: the functions and their handler files, and
 * the esbuild options of its `custom.esbuild` section (serverless-esbuild builds the same way). The
 * cold-start bench times these bundles; the acceptance run on the emulator invokes them.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build, type Format, type Metafile, type Platform } from 'esbuild';
import { parse } from 'yaml';

const REPO = path.resolve(import.meta.dirname, '..');

/** The part of serverless.yml's `custom.esbuild` that shapes the bundle. */
export interface EsbuildConfig {
  platform: Platform;
  target: string;
  format: Format;
  extension: string;
  banner?: Record<string, string>;
  /** serverless-esbuild's `exclude`: packages left out of the bundle (external). */
  exclude: string[];
  /** Whether serverless.yml minifies what it deploys. */
  minify: boolean;
}

export interface LambdaFunction {
  /** The function's key in serverless.yml, e.g. reconcileSchedule. */
  name: string;
  /** Entry file, relative to the repository, e.g. functions/reconcile-schedule.ts. */
  entry: string;
  /** Name of the handler export, e.g. handler. */
  exportName: string;
}

export interface ServerlessYaml {
  custom?: { esbuild?: Record<string, unknown> };
  functions?: Record<string, { handler?: string }>;
}

/** Reads the esbuild options and the functions (handler -> entry file) from serverless.yml. */
export function readServerless(file = path.join(REPO, 'serverless.yml')): {
  esbuild: EsbuildConfig;
  functions: LambdaFunction[];
} {
  // CloudFormation tags (!Ref, !GetAtt, ...) are unknown to the YAML parser; they do not matter here.
  const doc = parse(readFileSync(file, 'utf8'), { logLevel: 'silent' }) as ServerlessYaml;
  const e = doc.custom?.esbuild ?? {};
  const format = (e.format as Format | undefined) ?? 'esm';
  const esbuild: EsbuildConfig = {
    platform: (e.platform as Platform | undefined) ?? 'node',
    target: (e.target as string | undefined) ?? 'node22',
    format,
    extension: (e.outputFileExtension as string | undefined) ?? (format === 'esm' ? '.mjs' : '.cjs'),
    exclude: Array.isArray(e.exclude) ? (e.exclude as string[]) : [],
    minify: e.minify === true,
    ...(e.banner ? { banner: e.banner as Record<string, string> } : {}),
  };
  const functions: LambdaFunction[] = [];
  for (const [name, fn] of Object.entries(doc.functions ?? {})) {
    if (!fn?.handler) continue;
    const dot = fn.handler.lastIndexOf('.');
    const base = fn.handler.slice(0, dot);
    const ext = ['.ts', '.mts', '.js', '.mjs'].find((x) => existsSync(path.join(REPO, base + x)));
    if (!ext) throw new Error(`serverless.yml: no source file for handler ${fn.handler} of ${name}`);
    functions.push({ name, entry: base + ext, exportName: fn.handler.slice(dot + 1) });
  }
  if (functions.length === 0) throw new Error('serverless.yml lists no functions');
  return { esbuild, functions };
}

export interface Bundle {
  file: string;
  bytes: number;
  gzipBytes: number;
  metafile: Metafile;
}

export async function bundle(
  fn: LambdaFunction,
  cfg: EsbuildConfig,
  outfile: string,
  opts: { external: string[]; minify: boolean },
): Promise<Bundle> {
  const options: BuildOptions = {
    entryPoints: [path.join(REPO, fn.entry)],
    outfile,
    absWorkingDir: REPO,
    bundle: true,
    platform: cfg.platform,
    target: cfg.target,
    format: cfg.format,
    minify: opts.minify,
    external: opts.external,
    metafile: true,
    logLevel: 'warning',
    ...(cfg.banner ? { banner: cfg.banner } : {}),
  };
  const result = await build(options);
  if (!result.metafile) throw new Error(`esbuild returned no metafile for ${fn.entry}`);
  const content = readFileSync(outfile);
  return {
    file: outfile,
    bytes: content.length,
    gzipBytes: gzipSync(content, { level: 9 }).length,
    metafile: result.metafile,
  };
}
