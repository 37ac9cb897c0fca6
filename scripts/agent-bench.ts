#!/usr/bin/env -S npx tsx
/**
 * Footprint of the node agent: the bundled agent (as shipped) against the moto server, at a 1 s
 * heartbeat with 5 monitors (http, tcp, pid, disk, command) and 1 witness, with one peer to watch.
 * Prints RSS (VmRSS, sampled every second) and CPU (utime + stime from /proc over the window) as a
 * percentage of one core. Target: <= 50 MB RSS and <= 1 % of one core.
 *
 *   npm run bench:agent                         # 60 s measured after a 10 s warm-up
 *   npm run bench:agent -- --seconds 120 --monitor-interval-ms 1000
 *   npm run bench:agent -- --node-flags=""      # without the unit file's V8 flags
 *   npm run bench:agent -- --tls --imds         # as on an instance: HTTPS, instance-profile credentials
 *
 * Node flags default to those of node-agent/failover-agent.service (read from its ExecStart). The
 * agent gets this process's environment without NODE_EXTRA_CA_CERTS (the unit does not set it; a
 * CA bundle loaded at start costs the process about 1.5 MB), plus what the options below set.
 *
 * --tls: the agent reaches DynamoDB over HTTPS, as on an instance, where the TLS context (OpenSSL,
 * the root certificates) is part of its footprint: the front serves a throwaway self-signed
 * certificate (made with the openssl command), which the agent trusts through NODE_EXTRA_CA_CERTS.
 * --imds: no credentials in the environment; the SDK's credential chain runs as on an instance and
 * ends at the instance profile, served by an IMDSv2 stand-in on loopback, which also answers the
 * agent's Spot polls.
 *
 * moto answers every request with `Connection: close`, which would make the agent open a TCP
 * connection per call; DynamoDB keeps HTTPS connections alive. So the agent talks to a keep-alive
 * HTTP front in this (unmeasured) process, which forwards each request to moto.
 */
import { type ChildProcess, execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoStore } from '../controller/state/dynamo-store';
import { parseClusterConfig } from '../shared/config/load';
// @ts-expect-error plain ESM script without type declarations
import { buildAgent } from './agent-build.mjs';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from './emulator.mjs';

const REPO = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    'monitor-interval-ms': { type: 'string', default: '3000' },
    'node-flags': { type: 'string' },
    tls: { type: 'boolean', default: false },
    imds: { type: 'boolean', default: false },
    /** Also write the figures as JSON to this file (bench/agent-footprint.ts reads it). */
    json: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const monitorIntervalMs = Number(values['monitor-interval-ms']);

function unitNodeFlags(): string[] {
  const unit = readFileSync(path.join(REPO, 'node-agent', 'failover-agent.service'), 'utf8');
  const exec = unit.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '';
  return exec.split(/\s+/).filter((w) => w.startsWith('--') && !w.startsWith('--cluster'));
}
const nodeFlags =
  values['node-flags'] !== undefined ? values['node-flags'].split(/\s+/).filter(Boolean) : unitNodeFlags();

const TICK = Number(execSyncOr('getconf CLK_TCK', '100'));
function execSyncOr(cmd: string, fallback: string): string {
  try {
    return execSync(cmd, { encoding: 'utf8' }).trim();
  } catch {
    return fallback;
  }
}

/** [utime, stime] in clock ticks. */
function cpuTicks(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
}
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** A throwaway self-signed certificate for 127.0.0.1 (key and certificate, PEM). */
function selfSignedCert(dir: string): { key: string; cert: string; certFile: string } {
  const keyFile = path.join(dir, 'front.key');
  const certFile = path.join(dir, 'front.crt');
  execSync(
    `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout ${keyFile} -out ${certFile}`,
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

/**
 * A keep-alive HTTP(S) front for moto: what the agent sees is connection reuse, as with DynamoDB.
 * With `tls`, it serves HTTPS with that certificate.
 */
async function keepAliveFront(
  target: string,
  tls?: { key: string; cert: string },
): Promise<{ url: string; close: () => void }> {
  const upstream = new URL(target);
  const handler: http.RequestListener = (req, res) => {
    const out = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: false,
      },
      (r) => {
        const headers = { ...r.headers };
        delete headers.connection;
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res);
      },
    );
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  };
  const server = tls
    ? https.createServer({ ...tls, keepAlive: true }, handler)
    : http.createServer({ keepAlive: true }, handler);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => server.close(),
  };
}

/** An IMDSv2 stand-in: a token, instance-profile credentials, and no Spot or rebalance notice. */
async function imdsStandIn(): Promise<{ url: string; close: () => void }> {
  const token = 'bench-token';
  const server = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      res.writeHead(200).end(token);
      return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== token) {
      res.writeHead(401).end();
      return;
    }
    const now = Date.now();
    if (req.url === '/latest/meta-data/iam/security-credentials/') res.writeHead(200).end('bench-role');
    else if (req.url === '/latest/meta-data/iam/security-credentials/bench-role') {
      res.writeHead(200).end(
        JSON.stringify({
          Code: 'Success',
          LastUpdated: new Date(now).toISOString(),
          Type: 'AWS-HMAC',
          AccessKeyId: 'testing',
          SecretAccessKey: 'testing',
          Token: 'bench-session',
          Expiration: new Date(now + 6 * 3600_000).toISOString(),
        }),
      );
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => server.close(),
  };
}

async function main() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fa-bench-'));
  const cleanups: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const emu = await startEmulator({ log: (l: string) => console.log(l) });
    cleanups.push(() => emu.stop());
    const cert = values.tls ? selfSignedCert(dir) : undefined;
    const front = await keepAliveFront(emu.endpoint, cert);
    cleanups.push(() => front.close());
    const imds = values.imds ? await imdsStandIn() : undefined;
    if (imds) cleanups.push(() => imds.close());
    const bundle = await buildAgent(path.join(dir, 'failover-agent.mjs'));
    console.log(
      `bundle: ${(bundle.bytes / 1024).toFixed(0)} KiB; node ${process.version}; flags: ${nodeFlags.join(' ') || '(none)'}; DynamoDB over ${cert ? 'HTTPS' : 'HTTP'}; credentials from ${imds ? 'IMDS (instance profile)' : 'the environment'}`,
    );

    // Things to watch, on loopback.
    const web = http.createServer((_q, r) => r.writeHead(200).end('ok'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => web.close());
    const port = (web.address() as net.AddressInfo).port;
    const tcp = net.createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => tcp.close());
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    const pidFile = path.join(dir, 'app.pid');
    const app: ChildProcess = spawn('sleep', ['100000'], { stdio: 'ignore' });
    writeFileSync(pidFile, String(app.pid));
    cleanups.push(() => app.kill('SIGKILL'));

    const table = `bench-${Date.now()}`;
    const store = new DynamoStore(table, { region: 'us-east-1', endpoint: emu.endpoint });
    await store.createTable();
    const common = { intervalMs: monitorIntervalMs, timing: 'always' as const };
    const config = parseClusterConfig({
      cluster: 'bench',
      region: 'us-east-1',
      timing: { heartbeatIntervalMs: 1000, leaseMs: 10_000 },
      nodes: [
        { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
        { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
      ],
      witnesses: [{ type: 'tcp', host: '127.0.0.1', port: tcpPort }],
      groups: [
        {
          name: 'db',
          nodes: ['node1', 'node2'],
          resources: [{ type: 'exec', name: 'app', start: 'true', stop: 'true' }],
          monitors: [
            { ...common, type: 'http', name: 'web', url: `http://127.0.0.1:${port}/` },
            { ...common, type: 'tcp', name: 'port', host: '127.0.0.1', port: tcpPort },
            { ...common, type: 'pid', name: 'proc', pidFile },
            { ...common, type: 'disk', name: 'disk', path: path.join(dir, 'disk.bin') },
            { ...common, type: 'command', name: 'check', command: 'true' },
          ],
        },
      ],
    });
    await store.applyConfig(config, { now: Date.now() });
    await store.putHeartbeat({
      cluster: 'bench',
      node: 'node2',
      token: 'peer/1',
      seq: 1,
      incarnation: 'peer',
      sentAt: Date.now(),
      leaseMs: 10_000,
      agentVersion: 'bench',
      state: 'running',
      reason: 'periodic',
      monitors: {},
      isolated: false,
      groups: {},
      peers: {},
    });

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: front.url,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    delete env.NODE_EXTRA_CA_CERTS;
    if (cert) env.NODE_EXTRA_CA_CERTS = cert.certFile;
    if (imds) {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
        delete env[k];
      delete env.AWS_EC2_METADATA_DISABLED;
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.url;
    }
    const agent = spawn(
      process.execPath,
      [
        ...nodeFlags,
        bundle.outfile,
        '--cluster',
        'bench',
        '--node',
        'node1',
        '--table',
        table,
        '--state-dir',
        path.join(dir, 'state'),
      ],
      {
        env,
        cwd: process.env.AGENT_BENCH_CWD ?? process.cwd(),
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    cleanups.push(() => agent.kill('SIGKILL'));
    const pid = agent.pid!;
    console.log(`agent pid ${pid}: warming up ${warmup} s, then measuring ${seconds} s ...`);
    await new Promise((r) => setTimeout(r, warmup * 1000));

    const hb0 = (await store.getHeartbeats('bench', ['node1'])).node1;
    const t0 = Date.now();
    const c0 = cpuTicks(pid);
    const rss: number[] = [];
    for (let i = 0; i < seconds; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      rss.push(rssMb(pid));
    }
    const c1 = cpuTicks(pid);
    const t1 = Date.now();
    const hb1 = (await store.getHeartbeats('bench', ['node1'])).node1;
    const pct = (ticks: number) => ((ticks / TICK) * 1000 * 100) / (t1 - t0);
    const user = pct(c1[0] - c0[0]);
    const system = pct(c1[1] - c0[1]);
    const cpuPct = user + system;
    const avg = rss.reduce((a, b) => a + b, 0) / rss.length;
    const max = Math.max(...rss);
    const writes = (hb1?.seq ?? 0) - (hb0?.seq ?? 0);
    const monitors = Object.entries(hb1?.monitors ?? {})
      .map(([n, m]) => `${n}=${m.status}`)
      .join(' ');
    console.log('');
    console.log(
      `footprint over ${((t1 - t0) / 1000).toFixed(0)} s (heartbeat 1 s, 5 monitors every ${monitorIntervalMs} ms, 1 witness, 1 peer):`,
    );
    console.log(
      `  RSS  avg ${avg.toFixed(1)} MB, max ${max.toFixed(1)} MB, last ${rss[rss.length - 1]!.toFixed(1)} MB   (target <= 50 MB)`,
    );
    console.log(
      `  CPU  ${cpuPct.toFixed(2)} % of one core (user ${user.toFixed(2)}, system ${system.toFixed(2)})   (target <= 1 %)`,
    );
    console.log(
      `  heartbeats written: ${writes} (${((writes * 1000) / (t1 - t0)).toFixed(2)}/s); monitors: ${monitors}`,
    );
    if (values.json) {
      const figures = { rssAvgMb: avg, rssMaxMb: max, cpuPct, writesPerSecond: (writes * 1000) / (t1 - t0) };
      writeFileSync(values.json, JSON.stringify(figures));
    }
    agent.kill('SIGTERM');
    await new Promise((r) => agent.on('exit', r));
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
  }
}

await main();
