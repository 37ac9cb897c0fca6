#!/usr/bin/env node
// Makes Debian's Chromium available at /usr/bin/chromium for the console's browser tests (the
// `browser` vitest project's global setup calls it; `node scripts/install-chromium.mjs` does it by
// hand). No browser download of a test tool's own (that needs internet access CI does not have):
// `apt-get install chromium` from the machine's Debian mirror, as root, once.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * The flags every launch uses: headless, no sandbox (tests run as root), and nothing that reaches
 * out to Google's services (on a closed network Chromium otherwise stalls on refused connections).
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function run(command, args, log) {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 900_000,
  });
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}):\n${(result.stderr || result.stdout || '').slice(-2000)}`,
    );
  return result.stdout;
}

/** Returns the path of Chromium, installing Debian's package first where it is missing. */
export function ensureChromium({ log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (fs.existsSync(CHROMIUM)) return CHROMIUM;
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    throw new Error(
      `${CHROMIUM} is missing and installing it needs root: run "sudo apt-get install -y chromium" (Debian/Ubuntu), then the tests again`,
    );
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0)
    throw new Error(
      `${CHROMIUM} is missing and this machine has no apt-get: install Chromium so that ${CHROMIUM} exists`,
    );
  log(`${CHROMIUM} is missing: installing Debian's chromium package (once; a few minutes)`);
  const started = Date.now();
  run('apt-get', ['update', '-q'], log);
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium', 'fonts-dejavu-core'], log);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, yet ${CHROMIUM} does not exist`);
  log(
    `installed ${run(CHROMIUM, ['--version'], () => undefined).trim()} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return CHROMIUM;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(ensureChromium());
}
