/**
 * `npm run release:agent [-- --out DIR] [--winsw PATH]`: the agent's versioned artifacts for both
 * platforms, with their SHA-256 sums, in dist/release/<version>/:
 *
 *   failover-agent-<v>-linux.tar.gz    failover-agent-<v>/{failover-agent.mjs, failover-agent.service,
 *                                      install.sh, README.md, VERSION}
 *   failover-agent-<v>-windows.zip     failover-agent-<v>/{failover-agent.mjs, failover-agent.xml,
 *                                      failover-agent.cmd, install.ps1, README.md, VERSION
 *                                      [, WinSW-x64.exe with --winsw]}
 *   SHA256SUMS                         `sha256sum -c` format, for both archives
 *   manifest.json                      version, files, sums, sizes: what `failoverctl agent install`
 *                                      reads (the directory is uploaded with aws s3 cp)
 *
 * The archives are the same bytes from the same commit (fixed times and owners; SOURCE_DATE_EPOCH,
 * else the commit's time). WinSW is not in the repository and cannot be fetched by the build:
 * pass the WinSW-x64.exe you downloaded and checked (WinSW 2.12) with --winsw, or give it to
 * install.ps1 on the node (-WinSW).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { windowsCommandWrapper, winswServiceXml } from '../node-agent/platform/windows-service';
// @ts-expect-error plain ESM script without type declarations
import { buildAgent } from './agent-build.mjs';
import { type ArchiveEntry, tarGz, zip } from './release-archive';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** One artifact of the release. */
export interface ReleaseFile {
  file: string;
  sha256: string;
  bytes: number;
}

/** manifest.json of a release. */
export interface ReleaseManifest {
  version: string;
  /** S3 key prefix the artifacts go under in the deployment's bucket. */
  keyPrefix: string;
  linux: ReleaseFile;
  windows: ReleaseFile;
  bundle: { sha256: string; bytes: number };
  winsw: { included: false } | { included: true; sha256: string };
  node: { minimum: number; recommended: number };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function sourceDateEpoch(): number {
  const fromEnv = Number(process.env.SOURCE_DATE_EPOCH);
  if (Number.isInteger(fromEnv) && fromEnv > 315_532_800) return fromEnv;
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: REPO, encoding: 'utf8' }).trim());
  } catch {
    return 1_767_225_600; // 2026-01-01, outside a checkout
  }
}

/** Builds the bundle and writes both platforms' artifacts into `outDir`; returns the manifest. */
export async function releaseAgent(
  options: { outDir?: string; winsw?: string } = {},
): Promise<ReleaseManifest & { dir: string }> {
  const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
    version: string;
  };
  const dir = options.outDir ?? path.join(REPO, 'dist', 'release', version);
  mkdirSync(dir, { recursive: true });
  const buildDir = mkdtempSync(path.join(tmpdir(), 'agent-release-'));
  let bundle: Buffer;
  try {
    bundle = readFileSync((await buildAgent(path.join(buildDir, 'failover-agent.mjs'))).outfile);
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
  const mtime = sourceDateEpoch();
  const file = (p: string) => readFileSync(path.join(REPO, p));
  const common: ArchiveEntry[] = [
    { name: 'failover-agent.mjs', data: bundle },
    { name: 'README.md', data: file('node-agent/README.md') },
    { name: 'VERSION', data: Buffer.from(`${version}\n`) },
  ];
  const root = `failover-agent-${version}`;

  const linuxEntries: ArchiveEntry[] = [
    ...common,
    { name: 'failover-agent.service', data: file('node-agent/failover-agent.service') },
    { name: 'install.sh', data: file('node-agent/install.sh'), mode: 0o755 },
  ];
  const winswExe = options.winsw ? readFileSync(options.winsw) : undefined;
  const windowsEntries: ArchiveEntry[] = [
    ...common,
    { name: 'failover-agent.xml', data: Buffer.from(winswServiceXml()) },
    { name: 'failover-agent.cmd', data: Buffer.from(windowsCommandWrapper()) },
    { name: 'install.ps1', data: file('node-agent/windows/install.ps1') },
    ...(winswExe ? [{ name: 'WinSW-x64.exe', data: winswExe }] : []),
  ];
  const write = (name: string, data: Buffer): ReleaseFile => {
    writeFileSync(path.join(dir, name), data);
    return { file: name, sha256: sha256(data), bytes: data.length };
  };
  const linux = write(`${root}-linux.tar.gz`, tarGz(root, linuxEntries, mtime));
  const windows = write(`${root}-windows.zip`, zip(root, windowsEntries, mtime));
  writeFileSync(
    path.join(dir, 'SHA256SUMS'),
    `${linux.sha256}  ${linux.file}\n${windows.sha256}  ${windows.file}\n`,
  );
  const manifest: ReleaseManifest = {
    version,
    keyPrefix: `agent/${version}/`,
    linux,
    windows,
    bundle: { sha256: sha256(bundle), bytes: bundle.length },
    winsw: winswExe ? { included: true, sha256: sha256(winswExe) } : { included: false },
    node: { minimum: 20, recommended: 22 },
  };
  writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { ...manifest, dir };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const flag = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const out = flag('--out');
  const winsw = flag('--winsw') ?? process.env.FAILOVER_WINSW_EXE;
  const m = await releaseAgent({
    ...(out ? { outDir: path.resolve(out) } : {}),
    ...(winsw ? { winsw } : {}),
  });
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`failover-agent ${m.version} in ${path.relative(process.cwd(), m.dir) || '.'}:`);
  console.log(`  ${m.linux.file}  ${kib(m.linux.bytes)}  sha256 ${m.linux.sha256}`);
  console.log(`  ${m.windows.file}  ${kib(m.windows.bytes)}  sha256 ${m.windows.sha256}`);
  console.log(
    `  bundle ${kib(m.bundle.bytes)}; WinSW ${m.winsw.included ? 'included' : 'not included (pass --winsw PATH, or -WinSW to install.ps1)'}`,
  );
  const dir = path.relative(process.cwd(), m.dir) || '.';
  console.log(`next: aws s3 cp --recursive ${dir}/ s3://BUCKET/agent/${m.version}/`);
  console.log(`      failoverctl --table TABLE agent install --cluster CLUSTER --release ${dir}`);
}
