#!/usr/bin/env node
// Makes Debian's libfaketime available for `npm run chaos` (its clock-jump fault runs each node's
// processes with LD_PRELOAD=libfaketimeMT.so.1 and a timestamp file of its own: the agent's wall
// clock jumps without any seam in the agent's code). `apt-get install libfaketime` from the
// machine's Debian mirror, as root, once; `node scripts/install-faketime.mjs` does it by hand.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Where Debian puts the multi-threaded library (Node.js runs threads). */
const CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
];

function found() {
  return CANDIDATES.find((p) => fs.existsSync(p));
}

function run(command, args, log) {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 600_000,
  });
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}):\n${(result.stderr || result.stdout || '').slice(-2000)}`,
    );
}

/**
 * The path of libfaketimeMT.so.1, installing Debian's package first where it is missing and this
 * is possible (root, apt-get); undefined when it cannot be had (the caller says what it skips).
 */
export function ensureFaketime({ log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const have = found();
  if (have) return have;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (!root || !apt) {
    log(
      `libfaketime is missing and cannot be installed here (${root ? 'no apt-get' : 'not root'}): run "sudo apt-get install -y libfaketime"`,
    );
    return undefined;
  }
  log("libfaketime is missing: installing Debian's libfaketime package (once)");
  try {
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'libfaketime'], log);
  } catch {
    // The package lists may be missing or old on a fresh machine.
    run('apt-get', ['update', '-q'], log);
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'libfaketime'], log);
  }
  return found();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const path = ensureFaketime();
  if (!path) process.exit(1);
  console.log(path);
}
