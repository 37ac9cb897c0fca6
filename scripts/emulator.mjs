#!/usr/bin/env node
// The local AWS emulator (moto server) for tests and the sandbox. Which server is used, in order:
//   1. AWS_ENDPOINT_URL (or --endpoint): a server that is already running;
//   2. the moto behind `moto_server` on PATH (its Python interpreter);
//   3. scripts/install-moto.mjs: moto importable by python3, then pip, then Debian's packages.
// It prints which one it used. Only loopback is ever listened on. Started by us, moto runs through
// scripts/moto-atomic.py, which serializes DynamoDB requests: moto's threaded server does not apply
// conditional writes atomically under concurrency, real DynamoDB does.
//
//   node scripts/emulator.mjs            # start one and keep it in the foreground (Ctrl-C stops it)
//   node scripts/emulator.mjs --port 5000
//
//   import { startEmulator } from './emulator.mjs';
//   const emu = await startEmulator({ log: console.error }); ... await emu.stop();
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { installMoto } from './install-moto.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** True when `endpoint` answers like a moto server. */
export async function isMotoUp(endpoint) {
  try {
    const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** Clears all emulated state (between sandbox scenarios; tests use unique names instead). */
export async function resetMoto(endpoint) {
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The Python interpreter that runs a `moto_server` script (its shebang, or pyenv's choice). */
function motoPython(motoServer) {
  const candidates = [];
  const pyenv = spawnSync('pyenv', ['which', 'python3'], { encoding: 'utf8' });
  if (pyenv.status === 0) candidates.push(pyenv.stdout.trim());
  try {
    const first = fs.readFileSync(motoServer, 'utf8').split('\n', 1)[0] ?? '';
    const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
    if (m) candidates.push(m[1].endsWith('/env') && m[2] ? m[2] : m[1]);
  } catch {
    // not readable: try python3
  }
  candidates.push('python3');
  return candidates.find(
    (py) => spawnSync(py, ['-c', 'import moto.moto_server.werkzeug_app'], { stdio: 'ignore' }).status === 0,
  );
}

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

/**
 * Starts (or finds) a moto server. Returns { endpoint, route, stop }.
 * @param {{ log?: (line: string) => void, port?: number, endpoint?: string }} [options]
 */
export async function startEmulator(options = {}) {
  const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  const given = options.endpoint ?? process.env.AWS_ENDPOINT_URL;
  if (given) {
    if (!(await isMotoUp(given))) {
      throw new Error(
        `AWS_ENDPOINT_URL=${given} does not answer like a moto server (GET /moto-api/data.json); start it or unset AWS_ENDPOINT_URL`,
      );
    }
    log(`emulator: using the running server at ${given} (AWS_ENDPOINT_URL)`);
    return { endpoint: given, route: 'url', stop: async () => undefined };
  }

  let command;
  let args = [];
  let env = {};
  let route;
  const atomic = path.join(REPO, 'scripts', 'moto-atomic.py');
  const motoServer = onPath('moto_server');
  const python = motoServer ? motoPython(motoServer) : undefined;
  if (python) {
    command = python;
    args = [atomic];
    route = `moto_server on PATH (${motoServer}, run by ${python} through moto-atomic.py)`;
  } else if (motoServer) {
    command = motoServer;
    route = `moto_server on PATH (${motoServer}); WARNING: its Python was not found, so DynamoDB conditional writes are not atomic under concurrency`;
  } else {
    const installed = await installMoto({ log });
    ({ command, env } = installed);
    args = [atomic];
    route = `${installed.route} route (moto ${installed.version ?? '?'}, through moto-atomic.py)`;
  }

  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  fs.mkdirSync(path.join(REPO, '.cache'), { recursive: true });
  const logFile = path.join(REPO, '.cache', `moto-${port}.log`);
  const out = fs.openSync(logFile, 'w');
  const child = spawn(command, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const started = Date.now();
  while (!(await isMotoUp(endpoint))) {
    if (exited) throw new Error(`moto server exited at start; see ${logFile}`);
    if (Date.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`moto server did not answer on ${endpoint} within 60 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`emulator: moto server on ${endpoint} in ${Date.now() - started} ms, from ${route}`);
  return {
    endpoint,
    route,
    pid: child.pid,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 3000);
        child.on('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const portFlag = process.argv.indexOf('--port');
  const port = portFlag > 0 ? Number(process.argv[portFlag + 1]) : undefined;
  const emu = await startEmulator({ port });
  console.log(emu.endpoint);
  const stop = async () => {
    await emu.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (emu.route === 'url') process.exit(0);
  await new Promise(() => undefined);
}
