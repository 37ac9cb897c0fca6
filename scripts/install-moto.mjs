#!/usr/bin/env node
// Makes a runnable moto server available, for tests that need an AWS emulator
// on a machine that has none. Node 20 built-ins only: this runs before (or
// without) `npm ci` and must not depend on anything it would install.
//
//   import { installMoto } from './install-moto.mjs';
//   const { route, command, args, env } = await installMoto({ log: console.error });
//   spawn(command, [...args, '-H', '127.0.0.1', '-p', port], { env: { ...process.env, ...env } });
//
// CLI: node scripts/install-moto.mjs [--route deb|pip|python] [--cache-dir DIR]
// prints the result as JSON on stdout (progress goes to stderr).
// FAILOVER_MOTO_ROUTE=deb|pip|python forces one route (to test each of them).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUTES = ['python', 'pip', 'deb'];
const MARKER = '.moto-install.json'; // written last, so its presence means "complete"

// Debian ships moto only from trixie on (python3-moto 5.1.1, pure Python, arch
// all); its dependencies come from the machine's own release so that compiled
// ones (cryptography, cffi, markupsafe, yaml) match the system's /usr/bin/python3.
const MOTO_SUITE = 'trixie';
const DEB_ROOTS = [
  'python3-moto',
  'python3-boto3',
  'python3-botocore',
  'python3-cryptography',
  'python3-dateutil',
  'python3-flask',
  'python3-flask-cors', // moto.server imports flask_cors, yet python3-moto does not depend on it
  'python3-jinja2',
  'python3-requests',
  'python3-responses',
  'python3-werkzeug',
  'python3-xmltodict',
  'python3-yaml', // only a Recommends of python3-moto; CloudFormation/SSM parsing needs it
  'python3-jsonpath-ng', // moto's EventBridge (PutEvents) imports it; not a dependency of python3-moto
];

/** Runs a command synchronously; never throws, returns { ok, out, err }. */
function run(command, args, { timeoutMs = 60_000, cwd, env } = {}) {
  const r = spawnSync(command, args, {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const err = r.error ? String(r.error.message) : (r.stderr ?? '');
  return { ok: r.status === 0, out: r.stdout ?? '', err: err.trim().split('\n').slice(-3).join(' | ') };
}

// PYTHONNOUSERSITE keeps ~/.local packages out, so what we verified is what runs.
const pyEnv = (dir) => ({ PYTHONPATH: dir, PYTHONNOUSERSITE: '1' });

/** The `python3` on PATH, resolved to its real executable (pyenv shims switch by cwd). */
function pathPython() {
  const r = run('python3', ['-c', 'import sys; print(sys.executable)']);
  return r.ok ? r.out.trim() : null;
}

/** moto's version if `command` can import moto.server with `env`, else null. */
function motoVersion(command, env = {}) {
  const r = run(command, ['-c', 'import moto, moto.server; print(moto.__version__)'], {
    env,
    cwd: os.tmpdir(),
  });
  return r.ok ? r.out.trim() : null;
}

/** Reuses a finished install of `route` from cacheDir: reads a file, spawns nothing. */
function cached(cacheDir, route) {
  try {
    const result = JSON.parse(fs.readFileSync(path.join(cacheDir, route, MARKER), 'utf8'));
    return fs.existsSync(result.command) ? result : null; // the interpreter may have gone away
  } catch {
    return null;
  }
}

/**
 * Fills `<cacheDir>/<route>` via a temp dir renamed into place only once it works,
 * so an interrupted or concurrent run never leaves a half-install that looks done.
 * fill(tmpDir) returns { command, pyDir(finalDir) } or throws.
 */
function installInto(cacheDir, route, fill) {
  const finalDir = path.join(cacheDir, route);
  const tmpDir = `${finalDir}.partial-${process.pid}`;
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
  try {
    const { command, pyDir } = fill(tmpDir);
    const version = motoVersion(command, pyEnv(pyDir(tmpDir)));
    if (!version) throw new Error('installed, but `import moto.server` fails');
    const result = { route, command, args: ['-m', 'moto.server'], env: pyEnv(pyDir(finalDir)), version };
    fs.writeFileSync(path.join(tmpDir, MARKER), `${JSON.stringify(result, null, 2)}\n`);
    fs.rmSync(finalDir, { recursive: true, force: true });
    fs.renameSync(tmpDir, finalDir);
    return result;
  } catch (e) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    throw e;
  }
}

function viaPython() {
  const python = pathPython();
  const version = python && motoVersion(python);
  if (!version) throw new Error('python3 on PATH cannot import moto.server');
  return { route: 'python', command: python, args: ['-m', 'moto.server'], env: {}, version };
}

function viaPip(cacheDir, log) {
  const python = pathPython();
  if (!python) throw new Error('no python3 on PATH');
  return installInto(cacheDir, 'pip', (dir) => {
    log(`moto: pip install "moto[server]" into ${path.join(cacheDir, 'pip')}`);
    // --timeout/--retries make an unreachable index fail in seconds, not minutes;
    // the overall cap only guards a hung pip, a real install takes well under it.
    const args = ['-m', 'pip', 'install', '--target', dir, '--timeout', '5', '--retries', '0'];
    const r = run(python, [...args, '--disable-pip-version-check', '--no-input', 'moto[server]'], {
      timeoutMs: 300_000,
    });
    if (!r.ok) throw new Error(`pip install failed: ${r.err}`);
    return { command: python, pyDir: (d) => d };
  });
}

/** The machine's Debian mirror (from its own apt sources) and release codename. */
function debianSystem() {
  const osr = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  const codename = /^VERSION_CODENAME="?([a-z]+)/m.exec(osr)?.[1];
  if (!/^ID="?debian"?$/m.test(osr) || !codename) throw new Error('not a Debian system');
  // Reuse the mirror this machine already reaches (one-line *.list or deb822 *.sources).
  const files = ['/etc/apt/sources.list'];
  const partsDir = '/etc/apt/sources.list.d';
  if (fs.existsSync(partsDir)) files.push(...fs.readdirSync(partsDir).map((f) => path.join(partsDir, f)));
  let mirror = 'http://deb.debian.org/debian';
  for (const file of files.filter((f) => /\.(list|sources)$/.test(f) && fs.existsSync(f))) {
    const text = fs.readFileSync(file, 'utf8');
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${codename}\\s`, 'm').exec(text);
    const stanza = text
      .split(/\n\s*\n/)
      .find((s) => new RegExp(`^Suites:.*\\b${codename}(\\s|$)`, 'm').test(s));
    const uri = line?.[1] ?? (stanza && /^URIs:\s*(\S+)/m.exec(stanza)?.[1]);
    if (uri) {
      mirror = uri;
      break;
    }
  }
  return { codename, mirror };
}

function viaDeb(cacheDir, log) {
  const python = '/usr/bin/python3'; // Debian's own python: the packages are built for it, not for pyenv's
  for (const tool of [python, '/usr/bin/apt-get', '/usr/bin/dpkg-deb']) {
    if (!fs.existsSync(tool)) throw new Error(`${tool} is missing`);
  }
  const { codename, mirror } = debianSystem();
  return installInto(cacheDir, 'deb', (dir) => {
    // A private sources list and lists dir: apt reads nothing of the system's sources
    // and writes nothing under /var; packages are unpacked, never installed.
    const aptDir = path.join(dir, 'apt');
    const listsDir = path.join(aptDir, 'lists');
    const debsDir = path.join(aptDir, 'debs');
    fs.mkdirSync(path.join(listsDir, 'partial'), { recursive: true });
    fs.mkdirSync(debsDir, { recursive: true });
    const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
    const opts = fs.existsSync(keyring) ? `[signed-by=${keyring}] ` : '';
    const suites = [...new Set([codename, MOTO_SUITE])];
    const sourcesFile = path.join(aptDir, 'sources.list');
    fs.writeFileSync(sourcesFile, suites.map((s) => `deb ${opts}${mirror} ${s} main\n`).join(''));
    const apt = [
      `Dir::Etc::sourcelist=${sourcesFile}`,
      'Dir::Etc::sourceparts=-',
      `Dir::State::Lists=${listsDir}`,
      'Dir::Cache::pkgcache=', // no binary caches under /var/cache/apt
      'Dir::Cache::srcpkgcache=',
      `APT::Sandbox::User=${os.userInfo().username}`, // _apt cannot write into our dirs
      `APT::Default-Release=${codename}`, // deps from our release; moto exists only in trixie
    ].flatMap((o) => ['-o', o]);

    log(`moto: apt-get update (private lists: ${suites.join(' + ')} from ${mirror})`);
    let r = run('/usr/bin/apt-get', [...apt, 'update'], { timeoutMs: 180_000 });
    if (!r.ok) throw new Error(`apt-get update failed: ${r.err}`);

    // Let apt compute the Python dependency closure rather than hard-coding it;
    // native libraries (libssl, libffi) come with the system's python3 already.
    const noExtras = [
      '--no-recommends',
      '--no-suggests',
      '--no-conflicts',
      '--no-breaks',
      '--no-replaces',
      '--no-enhances',
    ];
    r = run('/usr/bin/apt-cache', [...apt, 'depends', '--recurse', ...noExtras, ...DEB_ROOTS]);
    if (!r.ok) throw new Error(`apt-cache depends failed: ${r.err}`);
    const pkgs = [...new Set(r.out.split('\n').filter((l) => /^python3-[a-z0-9.+-]+$/.test(l)))].filter(
      (p) => p !== 'python3-minimal',
    );

    log(`moto: apt-get download ${pkgs.length} packages`);
    r = run('/usr/bin/apt-get', [...apt, 'download', ...pkgs], { cwd: debsDir, timeoutMs: 300_000 });
    if (!r.ok) throw new Error(`apt-get download failed: ${r.err}`);

    const root = path.join(dir, 'root');
    for (const deb of fs.readdirSync(debsDir).filter((f) => f.endsWith('.deb'))) {
      r = run('/usr/bin/dpkg-deb', ['-x', path.join(debsDir, deb), root]);
      if (!r.ok) throw new Error(`dpkg-deb -x ${deb} failed: ${r.err}`);
    }
    fs.rmSync(aptDir, { recursive: true, force: true }); // ~50 MB of lists and debs, no longer needed
    return { command: python, pyDir: (d) => path.join(d, 'root', 'usr', 'lib', 'python3', 'dist-packages') };
  });
}

/**
 * Returns { route, command, args, env, version }: `command ...args -H 127.0.0.1 -p PORT`
 * with `env` merged into process.env starts a moto server.
 * Tries, in order: an earlier install in cacheDir, moto already importable by python3,
 * pip into cacheDir, Debian packages unpacked into cacheDir. `route` (or
 * FAILOVER_MOTO_ROUTE) limits it to one of 'python', 'pip', 'deb'.
 */
export async function installMoto({
  cacheDir = path.join(REPO, '.cache', 'moto'),
  log = (line) => console.error(line),
  route = process.env.FAILOVER_MOTO_ROUTE || undefined,
} = {}) {
  if (route && !ROUTES.includes(route))
    throw new Error(`unknown moto route "${route}" (use ${ROUTES.join('|')})`);
  const routes = route ? [route] : ROUTES;
  cacheDir = path.resolve(cacheDir);

  for (const r of routes.filter((r) => r !== 'python')) {
    const hit = cached(cacheDir, r);
    if (hit) {
      log(`moto: using ${hit.version} from an earlier ${r} install in ${path.join(cacheDir, r)}`);
      return hit;
    }
  }
  const attempts = {
    python: () => viaPython(),
    pip: () => viaPip(cacheDir, log),
    deb: () => viaDeb(cacheDir, log),
  };
  const failures = [];
  for (const r of routes) {
    try {
      const result = attempts[r]();
      log(`moto: ${result.version} via route "${r}" (${result.command} ${result.args.join(' ')})`);
      return result;
    } catch (e) {
      failures.push(`${r}: ${e.message}`);
      log(`moto: route "${r}" failed: ${e.message}`);
    }
  }
  throw new Error(
    `could not make a moto server available. Tried:\n  ${failures.join('\n  ')}\n` +
      'Install it yourself (python3 -m pip install "moto[server]"), or start one and pass its ' +
      'address as AWS_ENDPOINT_URL (e.g. AWS_ENDPOINT_URL=http://127.0.0.1:5000).',
  );
}

// CLI entry point (only when run directly, not when imported).
if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  const argv = process.argv.slice(2);
  const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  try {
    const result = await installMoto({ route: opt('--route'), cacheDir: opt('--cache-dir') });
    console.log(JSON.stringify(result, null, 2));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
