/**
 * Cold start proxy for the Lambda functions: bundle size per function and module init time.
 *
 * For every function in serverless.yml, bundles its handler file with esbuild using the options of
 * serverless.yml's `custom.esbuild` section (platform, target, format, banner), minified:
 *   (a) with the AWS SDK v3 (@aws-sdk/*, @smithy/*) external, as in a runtime that ships the SDK;
 *   (b) with everything bundled, which is what serverless.yml deploys (`exclude: []`).
 * Then imports bundle (b) in fresh `node` processes and times the import up to the handler export.
 * Two more rows show the SDK's share: the SDK packages alone, bundled; and bundle (a) of the first
 * function with the SDK loaded from node_modules (unbundled), as a runtime-provided SDK would load.
 * Build outputs go to a temporary directory, never into the repository.
 *
 * Then, for the memory sizes serverless.yml may choose (MEMORY_SIZES_MB), the same init runs under a
 * CPU quota of the share of a vCPU Lambda gives that memory (a cgroup's CFS quota), with the monthly
 * Lambda compute cost of that size from the cost model: the table the memory of each function is
 * chosen from (README "Deployment settings").
 *
 *   npx tsx bench/cold-start.ts [--memory-of reconcileStream,...]   # Markdown table (progress on stderr)
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { estimate, formatUsd } from '../cli/cost';
import { bundle, type EsbuildConfig, type LambdaFunction, readServerless } from '../scripts/lambda-bundle';
import { type BenchRow, formatSpread, renderTable, type Say, spread } from './report';

const REPO = path.resolve(import.meta.dirname, '..');
const SECTION = 'cold start';
const TARGET_BYTES = 300 * 1024;
const TARGET = '<= 300 KB minified (SDK excluded)';
/** The AWS SDK v3 as a Lambda runtime ships it. */
const SDK_EXTERNAL = ['@aws-sdk/*', '@smithy/*'];
const INIT_RUNS = 7;
const QUOTA_RUNS = 3;

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/** The package (or repository folder) an esbuild input belongs to. */
function owner(input: string): string {
  const i = input.lastIndexOf('node_modules/');
  if (i >= 0) {
    const parts = input.slice(i + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const parts = input.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : input;
}

/** Inputs of the single output, largest first, by bytes they contribute to the output. */
function contributions(meta: Metafile): { inputs: [string, number][]; owners: [string, number][] } {
  const output = Object.values(meta.outputs).find((o) => o.entryPoint) ?? Object.values(meta.outputs)[0]!;
  const inputs = Object.entries(output.inputs)
    .map(([p, i]): [string, number] => [p, i.bytesInOutput])
    .sort((a, b) => b[1] - a[1]);
  const byOwner = new Map<string, number>();
  for (const [p, b] of inputs) byOwner.set(owner(p), (byOwner.get(owner(p)) ?? 0) + b);
  return { inputs, owners: [...byOwner].sort((a, b) => b[1] - a[1]) };
}

/** External packages the bundle imports (left to the runtime), without Node built-ins. */
function externalPackages(meta: Metafile): string[] {
  const output = Object.values(meta.outputs).find((o) => o.entryPoint) ?? Object.values(meta.outputs)[0]!;
  const names = output.imports.filter((i) => i.external && !isBuiltin(i.path)).map((i) => i.path);
  return [...new Set(names)].sort();
}

interface InitSample {
  /** performance.now() when the runner's first line ran: Node's own bootstrap. */
  bootMs: number;
  /** Dynamic import of the bundle until the handler export is in hand. */
  importMs: number;
  /** Process start (performance.timeOrigin) to handler in hand. */
  startToHandlerMs: number;
  /** Spawn to exit, as the parent sees it. */
  wallMs: number;
}

const RUNNER = `const t0 = performance.now();
const mod = await import(process.argv[2]);
const handler = mod[process.argv[3]];
const t1 = performance.now();
if (typeof handler !== 'function') {
  console.error('no function export ' + process.argv[3]);
  process.exit(2);
}
process.stdout.write(JSON.stringify({ bootMs: t0, importMs: t1 - t0, startToHandlerMs: t1 }));
`;

/**
 * Lambda gives CPU in proportion to memory: one full vCPU at 1,769 MB. The memory sizes the init is
 * measured at, under a CFS quota of that share of one CPU (cgroup v1 `cpu` or v2 `cpu.max`).
 */
export const MEMORY_SIZES_MB = [256, 512, 1024, 1769] as const;
const FULL_VCPU_MB = 1769;
const CFS_PERIOD_US = 100_000;

/** A cgroup with a CPU quota that new processes can be put in, or why there is none. */
interface CpuQuota {
  /** Where a child writes its pid to enter the group. */
  procs: string;
  remove(): void;
}

function cpuQuota(name: string, share: number): CpuQuota | { unavailable: string } {
  const quota = Math.max(1_000, Math.round(share * CFS_PERIOD_US));
  const v1 = '/sys/fs/cgroup/cpu';
  const v2 = '/sys/fs/cgroup';
  // The groups an interrupted run left behind, once empty.
  for (const root of [v1, v2])
    for (const old of existsSync(root) ? readdirSync(root) : [])
      if (old.startsWith('failover-cold-start-'))
        try {
          rmdirSync(path.join(root, old));
        } catch {
          // still in use, or not ours to remove
        }
  try {
    if (existsSync(path.join(v1, 'cpu.cfs_quota_us'))) {
      const dir = path.join(v1, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
      return { procs: path.join(dir, 'cgroup.procs'), remove: () => rmdirSync(dir) };
    }
    if (existsSync(path.join(v2, 'cgroup.controllers'))) {
      const dir = path.join(v2, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${CFS_PERIOD_US}`);
      return { procs: path.join(dir, 'cgroup.procs'), remove: () => rmdirSync(dir) };
    }
    return { unavailable: 'no cgroup cpu controller' };
  } catch (e) {
    return { unavailable: `cgroup not writable (${(e as Error).message.split('\n')[0]})` };
  }
}

function runInit(
  runner: string,
  file: string,
  exportName: string,
  cgroupProcs?: string,
): Promise<InitSample> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_REGION: 'us-east-1',
    POWERTOOLS_SERVICE_NAME: 'failover-controller',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  // A plain node, without loaders or flags a parent (tsx, vitest) may pass through the environment.
  delete env.NODE_OPTIONS;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const args = [runner, pathToFileURL(file).href, exportName];
    // Under a quota: a shell enters the group, then becomes node (same pid, so all its threads).
    const child = cgroupProcs
      ? spawn('/bin/sh', ['-c', `echo $$ > "$0" && exec "$@"`, cgroupProcs, process.execPath, ...args], {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 60_000,
        })
      : spawn(process.execPath, args, {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 60_000,
        });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      if (code !== 0) return reject(new Error(`init run exited ${code}: ${err.trim().slice(0, 500)}`));
      try {
        resolve({ ...(JSON.parse(out) as Omit<InitSample, 'wallMs'>), wallMs });
      } catch {
        reject(new Error(`init run printed no result: ${out.slice(0, 200)} ${err.slice(0, 300)}`));
      }
    });
  });
}

/** One untimed run first, so that every timed run finds the file in the page cache alike. */
async function measureInit(
  runner: string,
  file: string,
  exportName: string,
  cgroupProcs?: string,
): Promise<InitSample[]> {
  await runInit(runner, file, exportName, cgroupProcs);
  const samples: InitSample[] = [];
  // Under a small quota one run takes seconds: fewer runs there.
  const runs = cgroupProcs ? QUOTA_RUNS : INIT_RUNS;
  for (let i = 0; i < runs; i++) samples.push(await runInit(runner, file, exportName, cgroupProcs));
  return samples;
}

/**
 * Module init of one function's deployed bundle at the CPU share each memory size gets, with the
 * monthly Lambda compute cost of that size from the cost model (the default deployment: the
 * schedule every minute and the stream's reconciles, all at that size: an upper bound for the event
 * functions, which run only on events).
 */
async function initByMemory(fn: LambdaFunction, file: string, runner: string, say: Say): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const mb of MEMORY_SIZES_MB) {
    const share = Math.min(1, mb / FULL_VCPU_MB);
    const quota = cpuQuota(`failover-cold-start-${process.pid}-${mb}`, share);

    const cost = estimate({ lambdaMemoryMb: mb, scheduleMemoryMb: mb }).onDemand.lines.filter((l) =>
      l.priceKey.startsWith('lambdaGbSecond'),
    );
    const usd = cost.reduce((sum, l) => sum + l.usdPerMonth, 0);
    if ('unavailable' in quota) {
      say(`  ${mb} MB: not measured: ${quota.unavailable}`);
      rows.push({
        section: SECTION,
        metric: `${fn.name}: module init at ${mb} MB (${(share * 100).toFixed(0)} % of a vCPU)`,
        value: 'not measured',
        note: `${quota.unavailable}: run as a user who may create cgroups. Lambda compute at this size ${formatUsd(usd)}/month`,
      });
      continue;
    }
    try {
      const samples = await measureInit(runner, file, fn.exportName, quota.procs);
      const init = spread(samples.map((s) => s.startToHandlerMs));
      say(
        `  ${mb} MB (${(share * 100).toFixed(1)} % CPU): start -> handler ${formatSpread(init, 'ms', 0)}; Lambda compute ${formatUsd(usd)}/month`,
      );
      rows.push({
        section: SECTION,
        metric: `${fn.name}: process start -> handler at ${mb} MB (CPU quota ${(share * 100).toFixed(1)} % of one CPU)`,
        value: formatSpread(init, 'ms', 0),
        note: `cgroup CFS quota ${Math.round(share * CFS_PERIOD_US)} us per ${CFS_PERIOD_US} us, as Lambda's share of a vCPU at this memory (full vCPU at ${FULL_VCPU_MB} MB); a CPU of this machine, not Graviton. Lambda compute of the default deployment at this size: ${formatUsd(usd)}/month`,
      });
    } finally {
      quota.remove();
    }
  }
  return rows;
}

/**
 * What the AWS SDK alone costs at init: (1) a bundle of just the SDK packages the functions import,
 * built and imported like bundle (b); (2) the SDK-external bundle (a) of one function with the SDK
 * loaded from node_modules as unbundled files, the way a runtime-provided SDK loads.
 */
async function sdkShare(
  dir: string,
  cfg: EsbuildConfig,
  runner: string,
  packages: string[],
  external: { fn: LambdaFunction; file: string } | undefined,
  say: Say,
): Promise<BenchRow[]> {
  if (packages.length === 0 || !external) return [];
  const rows: BenchRow[] = [];
  // The SDK's CommonJS dist files are kept whole by esbuild, so importing each package entire adds
  // about what the functions' bundles carry of it.
  const contents =
    packages.map((p, i) => `import * as sdk${i} from '${p}';`).join('\n') +
    `\nexport const handler = () => [${packages.map((_, i) => `sdk${i}`).join(', ')}];\n`;
  const outfile = path.join(dir, `sdk-only${cfg.extension}`);
  await build({
    stdin: { contents, resolveDir: REPO, loader: 'js', sourcefile: 'sdk-only.js' },
    outfile,
    bundle: true,
    platform: cfg.platform,
    target: cfg.target,
    format: cfg.format,
    minify: true,
    logLevel: 'warning',
    ...(cfg.banner ? { banner: cfg.banner } : {}),
  });
  const bytes = readFileSync(outfile).length;
  const sdkOnly = spread((await measureInit(runner, outfile, 'handler')).map((s) => s.importMs));
  say(`AWS SDK alone (${kb(bytes)} bundled): import ${formatSpread(sdkOnly, 'ms', 1)}`);
  rows.push({
    section: SECTION,
    metric: 'AWS SDK alone: import of the SDK packages the functions use, bundled (minified)',
    value: formatSpread(sdkOnly, 'ms', 1),
    note: `${packages.join(', ')}: ${kb(bytes)}. The SDK share of module init; the rest is the controller's code, zod, Powertools and middy.`,
  });

  // Bare imports from a file in the temporary directory resolve through this link to the repo's SDK.
  const link = path.join(dir, 'node_modules');
  symlinkSync(path.join(REPO, 'node_modules'), link, 'dir');
  try {
    const fromModules = spread(
      (await measureInit(runner, external.file, external.fn.exportName)).map((s) => s.importMs),
    );
    say(
      `${external.fn.name}, SDK external, SDK from node_modules: import ${formatSpread(fromModules, 'ms', 1)}`,
    );
    rows.push({
      section: SECTION,
      metric: `${external.fn.name}: module init of the SDK-external bundle, SDK from node_modules`,
      value: formatSpread(fromModules, 'ms', 1),
      note: 'As a runtime-provided SDK loads (many unbundled CommonJS files); the SDK versions of package-lock.json, not those of the Lambda runtime.',
    });
  } finally {
    unlinkSync(link);
  }
  return rows;
}

export async function runColdStartBench(opts: {
  say: Say;
  /** Functions measured at each memory size (default: every one). */
  only?: string[];
}): Promise<BenchRow[]> {
  const { say } = opts;
  const { esbuild: cfg, functions } = readServerless();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cold-start-bench-'));
  const rows: BenchRow[] = [];
  try {
    const runner = path.join(dir, 'runner.mjs');
    writeFileSync(runner, RUNNER);
    say(
      `cold start: ${functions.length} functions from serverless.yml, esbuild ${cfg.platform}/${cfg.target}/${cfg.format}, minified; outputs in ${dir}`,
    );
    const sdkPackages = new Set<string>();
    const sdkExternalBuilds: { fn: LambdaFunction; file: string }[] = [];
    for (const fn of functions) {
      const out = (suffix: string) => path.join(dir, `${fn.name}-${suffix}${cfg.extension}`);
      const [noSdk, all, deployed] = await Promise.all([
        bundle(fn, cfg, out('sdk-external'), { external: [...SDK_EXTERNAL, ...cfg.exclude], minify: true }),
        bundle(fn, cfg, out('all'), { external: cfg.exclude, minify: true }),
        // Exactly as serverless.yml deploys it (minify as configured), for reference.
        bundle(fn, cfg, out('deployed'), { external: cfg.exclude, minify: cfg.minify }),
      ]);

      const { inputs, owners } = contributions(noSdk.metafile);
      const allOwners = contributions(all.metafile).owners;
      say(
        `${fn.name} (${fn.entry}): SDK external ${kb(noSdk.bytes)} (gzip ${kb(noSdk.gzipBytes)}), all bundled ${kb(all.bytes)} (gzip ${kb(all.gzipBytes)})`,
      );
      say(
        `  top 5 inputs, SDK external: ${inputs
          .slice(0, 5)
          .map(([p, b]) => `${p} ${kb(b)}`)
          .join(', ')}`,
      );
      say(
        `  top 5 packages, SDK external: ${owners
          .slice(0, 5)
          .map(([p, b]) => `${p} ${kb(b)}`)
          .join(', ')}`,
      );
      say(
        `  top 5 packages, all bundled: ${allOwners
          .slice(0, 5)
          .map(([p, b]) => `${p} ${kb(b)}`)
          .join(', ')}`,
      );

      const sdk = externalPackages(noSdk.metafile);
      for (const name of sdk) sdkPackages.add(name);
      sdkExternalBuilds.push({ fn, file: noSdk.file });
      const met = noSdk.bytes <= TARGET_BYTES;
      rows.push({
        section: SECTION,
        metric: `${fn.name}: bundle, AWS SDK external (minified)`,
        value: `${kb(noSdk.bytes)} (gzip ${kb(noSdk.gzipBytes)})`,
        target: TARGET,
        met,
        note:
          `${met ? 'largest' : 'over the target; dominated by'}: ${owners
            .slice(0, 3)
            .map(([p, b]) => `${p} ${kb(b)}`)
            .join(', ')}. ` + `Left to the runtime: ${sdk.join(', ') || 'nothing'}. 1 KB = 1024 B.`,
      });
      rows.push({
        section: SECTION,
        metric: `${fn.name}: bundle, everything bundled (minified)`,
        value: `${kb(all.bytes)} (gzip ${kb(all.gzipBytes)})`,
        note:
          `What serverless.yml deploys (exclude: [${cfg.exclude.join(', ')}], SDK included)` +
          (cfg.minify ? '' : `, though unminified there: ${kb(deployed.bytes)}`) +
          `. Largest: ${allOwners
            .slice(0, 3)
            .map(([p, b]) => `${p} ${kb(b)}`)
            .join(', ')}.`,
      });

      const samples = await measureInit(runner, all.file, fn.exportName);
      const importSpread = spread(samples.map((s) => s.importMs));
      const startSpread = spread(samples.map((s) => s.startToHandlerMs));
      const boot = spread(samples.map((s) => s.bootMs));
      const wall = spread(samples.map((s) => s.wallMs));
      say(
        `  init: import ${formatSpread(importSpread, 'ms', 1)}; start -> handler ${formatSpread(startSpread, 'ms', 1)}`,
      );
      rows.push({
        section: SECTION,
        metric: `${fn.name}: module init (import of the all-bundled file -> handler)`,
        value: formatSpread(importSpread, 'ms', 1),
        note: `min / median / p95 / max; fresh node ${process.version} per run (Lambda runs ${cfg.target}), after 1 untimed run (warm page cache); no AWS call happens at import`,
      });
      rows.push({
        section: SECTION,
        metric: `${fn.name}: process start -> handler`,
        value: formatSpread(startSpread, 'ms', 1),
        note: `performance.now() in the child; Node bootstrap alone median ${boot.median.toFixed(1)} ms; spawn -> exit seen by the parent median ${wall.median.toFixed(1)} ms`,
      });
      if (!opts.only || opts.only.includes(fn.name))
        rows.push(...(await initByMemory(fn, all.file, runner, say)));
    }
    rows.push(...(await sdkShare(dir, cfg, runner, [...sdkPackages].sort(), sdkExternalBuilds[0], say)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const memoryOf = process.argv.includes('--memory-of')
    ? (process.argv[process.argv.indexOf('--memory-of') + 1] ?? '').split(',')
    : undefined;
  const rows = await runColdStartBench({
    say: (line) => process.stderr.write(`${line}\n`),
    ...(memoryOf ? { only: memoryOf } : {}),
  });
  console.log(renderTable(rows));
}
