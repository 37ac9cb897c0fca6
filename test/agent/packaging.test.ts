/**
 * What ships: the single-file bundle (npm run build:agent) runs the agent and the guard with plain
 * node against moto, and install.sh lays out the files (under a prefix, systemd untouched).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
// @ts-expect-error plain ESM script without type declarations
import { buildAgent } from '../../scripts/agent-build.mjs';
import { releaseAgent } from '../../scripts/agent-release';
import {
  agentEnv,
  createCluster,
  heartbeat,
  motoEndpoint,
  REPO,
  removeTempDirs,
  tempDir,
  waitFor,
} from './support';

let bundle: string;
beforeAll(async () => {
  bundle = (await buildAgent(path.join(tempDir('bundle'), 'failover-agent.mjs'))).outfile;
}, 60_000);
afterAll(() => removeTempDirs());

describe('packaging', () => {
  it('the bundle runs the agent with plain node: renews, then leaves on SIGTERM', async () => {
    expect(statSync(bundle).size).toBeLessThan(2 * 1024 * 1024);
    // The agent reads the kinds table but never loads the schema library, the YAML parser or the
    // SDK's clients (shared/config/kinds.ts, .dependency-cruiser.cjs): resident memory.
    const code = readFileSync(bundle, 'utf8');
    expect(code).not.toMatch(/ZodObject|\$ZodType|DynamoDBDocumentClient|BatchGetItemCommand|parseDocument/);
    const version = spawnSync(process.execPath, [bundle, '--version'], { encoding: 'utf8' });
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    expect(version.stdout.trim()).toBe(pkg.version);

    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes: [{ name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' }],
      groups: [],
    });
    const unit = readFileSync(path.join(REPO, 'node-agent', 'failover-agent.service'), 'utf8');
    const flags = (unit.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '')
      .split(/\s+/)
      .filter((w) => w.startsWith('--'));
    const child = spawn(
      process.execPath,
      [
        ...flags,
        bundle,
        '--cluster',
        f.cluster,
        '--node',
        'node1',
        '--table',
        f.table,
        '--state-dir',
        tempDir('state'),
      ],
      { env: agentEnv(motoEndpoint()), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    child.stderr.on('data', (c) => {
      log += c;
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const hb = await waitFor('a heartbeat from the bundle', () => heartbeat(f, 'node1'), 15_000);
      expect(hb.agentVersion).toBe(pkg.version);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect((await heartbeat(f, 'node1'))?.state).toBe('leaving');
      expect(log).toContain('final heartbeat written: leaving');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('the bundle takes its credentials from AWS_PROFILE: a role assumed through STS with the source profile keys', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes: [{ name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' }],
      groups: [],
    });
    // In front of moto: records who signed what (moto checks no signature).
    const signers: { sts: boolean; keyId: string }[] = [];
    const upstream = new URL(motoEndpoint());
    const front = http.createServer((req, res) => {
      const keyId = /Credential=([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? '';
      signers.push({ sts: !req.headers['x-amz-target'], keyId });
      const out = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      out.on('error', () => res.writeHead(502).end());
      req.pipe(out);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    const dir = tempDir('profile');
    writeFileSync(
      path.join(dir, 'credentials'),
      '[base]\naws_access_key_id = AKIDBASEPROFILE\naws_secret_access_key = base-secret\n',
    );
    writeFileSync(
      path.join(dir, 'config'),
      '[profile agent]\nrole_arn = arn:aws:iam::123456789012:role/agent\nsource_profile = base\n',
    );
    const child = spawn(
      process.execPath,
      [
        bundle,
        '--cluster',
        f.cluster,
        '--node',
        'node1',
        '--table',
        f.table,
        '--state-dir',
        tempDir('state'),
      ],
      {
        env: agentEnv(`http://127.0.0.1:${(front.address() as net.AddressInfo).port}`, {
          AWS_ACCESS_KEY_ID: undefined,
          AWS_SECRET_ACCESS_KEY: undefined,
          AWS_PROFILE: 'agent',
          AWS_CONFIG_FILE: path.join(dir, 'config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'),
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let log = '';
    child.stderr.on('data', (c) => {
      log += c;
    });
    try {
      await waitFor(
        `a heartbeat signed with the role's credentials\n${log}`,
        () => heartbeat(f, 'node1'),
        15_000,
      );
      const sts = signers.filter((s) => s.sts);
      const dynamo = signers.filter((s) => !s.sts);
      expect(sts.length).toBeGreaterThanOrEqual(1);
      expect(sts.every((s) => s.keyId === 'AKIDBASEPROFILE')).toBe(true);
      expect(dynamo.length).toBeGreaterThanOrEqual(1);
      expect(dynamo.every((s) => s.keyId && s.keyId !== 'AKIDBASEPROFILE' && s.keyId !== 'testing')).toBe(
        true,
      );
    } finally {
      child.kill('SIGKILL');
      front.closeAllConnections();
      front.close();
    }
  });

  it('install.sh installs the bundle, the command, the unit, the settings and the state directory', () => {
    const root = tempDir('root');
    const run = spawnSync(
      'sh',
      [
        path.join(REPO, 'node-agent', 'install.sh'),
        '--bundle',
        bundle,
        '--prefix',
        root,
        '--no-systemd',
        '--cluster',
        'orders',
        '--node',
        'node1',
        '--region',
        'us-east-1',
        '--watchdog',
        '8',
      ],
      { encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(path.join(root, 'opt/failover-agent/failover-agent.mjs'))).toBe(true);
    expect(statSync(path.join(root, 'var/lib/failover-agent')).mode & 0o777).toBe(0o700);
    const unit = readFileSync(path.join(root, 'etc/systemd/system/failover-agent.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} `);
    expect(unit).toMatch(/^Restart=always$/m);
    const env = readFileSync(path.join(root, 'etc/failover-agent/agent.env'), 'utf8');
    expect(env).toContain('FAILOVER_CLUSTER=orders');
    expect(env).toContain('FAILOVER_AGENT_ARGS=--watchdog-device /dev/watchdog --watchdog-timeout-sec 8');
    expect(readFileSync(path.join(root, 'etc/modprobe.d/softdog.conf'), 'utf8')).toContain('soft_margin=8');
    // The command the SSM path calls works.
    const cmd = path.join(root, 'usr/local/bin/failover-agent');
    const help = spawnSync(cmd, ['guard', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: failover-agent guard');
    // Bad input is named, with the fix.
    const bad = spawnSync(
      'sh',
      [
        path.join(REPO, 'node-agent', 'install.sh'),
        '--bundle',
        bundle,
        '--prefix',
        root,
        '--no-systemd',
        '--watchdog',
        'x',
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--watchdog takes whole seconds');
  });
  it("npm run release:agent: both platforms' archives with their sums, reproducible; the Linux one installs as it ships", async () => {
    const dir = tempDir('release');
    const m = await releaseAgent({ outDir: dir });
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    expect(m.version).toBe(pkg.version);
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' }).stdout).toBe(
      `${m.linux.file}: OK\n${m.windows.file}: OK\n`,
    );
    console.log(
      `release ${m.version}: ${m.linux.file} ${(m.linux.bytes / 1024).toFixed(0)} KiB, ${m.windows.file} ${(m.windows.bytes / 1024).toFixed(0)} KiB, bundle ${(m.bundle.bytes / 1024).toFixed(0)} KiB`,
    );
    const root = `failover-agent-${m.version}`;
    const tar = spawnSync('tar', ['tzf', m.linux.file], { cwd: dir, encoding: 'utf8' });
    expect(tar.stdout.trim().split('\n').sort()).toEqual(
      [
        `${root}/`,
        ...['README.md', 'VERSION', 'failover-agent.mjs', 'failover-agent.service', 'install.sh'].map(
          (f) => `${root}/${f}`,
        ),
      ].sort(),
    );
    const zip = spawnSync(
      'python3',
      [
        '-c',
        'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print("\\n".join(z.namelist()))',
        m.windows.file,
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(zip.status, zip.stderr).toBe(0);
    expect(zip.stdout.trim().split('\n').sort()).toEqual(
      [
        'README.md',
        'VERSION',
        'failover-agent.cmd',
        'failover-agent.mjs',
        'failover-agent.xml',
        'install.ps1',
      ]
        .map((f) => `${root}/${f}`)
        .sort(),
    );
    // The same commit gives the same bytes.
    const again = await releaseAgent({ outDir: tempDir('release2') });
    expect([again.linux.sha256, again.windows.sha256]).toEqual([m.linux.sha256, m.windows.sha256]);

    // Unpacked as the install document does, its install.sh lays out a unit that does not restart
    // after a usage error or an unknown node, and does not hide the SDK's runtime warning.
    expect(spawnSync('tar', ['xzf', m.linux.file], { cwd: dir }).status).toBe(0);
    const prefix = tempDir('root');
    const install = spawnSync(
      'sh',
      [
        path.join(dir, root, 'install.sh'),
        '--bundle',
        path.join(dir, root, 'failover-agent.mjs'),
        '--prefix',
        prefix,
        '--no-systemd',
      ],
      { encoding: 'utf8' },
    );
    expect(install.status, install.stderr).toBe(0);
    const unit = readFileSync(path.join(prefix, 'etc/systemd/system/failover-agent.service'), 'utf8');
    expect(unit).toMatch(/^RestartPreventExitStatus=2 3$/m);
    expect(unit).toMatch(/^LockPersonality=yes$/m);
    expect(unit).not.toContain('NODE_VERSION_SUPPORT_WARNING');
    expect(
      spawnSync(path.join(prefix, 'usr/local/bin/failover-agent'), ['--version'], {
        encoding: 'utf8',
      }).stdout.trim(),
    ).toBe(m.version);
  });
  it("the install document's Linux step, run as SSM runs it on a release: the sum checked first, then install.sh with the node's cluster, name, table, region and watchdog", async () => {
    const dir = tempDir('ssm-download');
    // aws:downloadContent leaves the archive in the step's directory: here, the release's own.
    const m = await releaseAgent({ outDir: dir });
    const sls = parse(readFileSync(path.join(REPO, 'serverless.yml'), 'utf8'), { logLevel: 'silent' }) as {
      resources: {
        Resources: Record<
          string,
          { Properties: { Content: { mainSteps: { name: string; inputs: { runCommand?: string[] } }[] } } }
        >;
      };
    };
    const steps = sls.resources.Resources.AgentInstallDocument!.Properties.Content.mainSteps;
    const lines = steps.find((st) => st.name === 'installLinux')!.inputs.runCommand!;
    /** The step's lines as the SSM agent writes them to a script, parameters substituted. */
    const script = (params: Record<string, string>, root: string) => {
      const text = lines
        .map((l) =>
          l
            .replace('cd /var/tmp/failover-agent-install', `cd ${dir}`)
            .replaceAll(`\${AWS::Region}`, 'us-east-1')
            .replace(/\{\{ (\w+) \}\}/g, (_, k: string) => params[k] ?? ''),
        )
        .join('\n');
      // The one change: install under a prefix, without systemctl and modprobe.
      const local = text.replace(/install\.sh" "\$@"$/, `install.sh" "$@" --prefix ${root} --no-systemd`);
      expect(local).not.toBe(text);
      return local;
    };
    const params = {
      version: m.version,
      sha256Linux: m.linux.sha256,
      sha256Windows: m.windows.sha256,
      cluster: 'orders',
      node: 'node1',
      table: 'failover-state-prod',
      watchdogSeconds: '8',
    };

    const root = tempDir('root');
    const run = spawnSync('sh', ['-c', script(params, root)], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const env = readFileSync(path.join(root, 'etc/failover-agent/agent.env'), 'utf8');
    expect(env).toMatch(/^AWS_REGION=us-east-1$/m);
    expect(env).toMatch(/^FAILOVER_TABLE=failover-state-prod$/m);
    expect(env).toMatch(/^FAILOVER_CLUSTER=orders$/m);
    expect(env).toMatch(/^FAILOVER_NODE=node1$/m);
    expect(env).toMatch(/^FAILOVER_AGENT_ARGS=--watchdog-device \/dev\/watchdog --watchdog-timeout-sec 8$/m);
    expect(readFileSync(path.join(root, 'etc/modprobe.d/softdog.conf'), 'utf8')).toContain('soft_margin=8');
    expect(
      spawnSync(path.join(root, 'usr/local/bin/failover-agent'), ['--version'], {
        encoding: 'utf8',
      }).stdout.trim(),
    ).toBe(m.version);

    // Without cluster and node (the association's run): the agent finds them from the instance id.
    const bare = tempDir('root');
    const run2 = spawnSync(
      'sh',
      ['-c', script({ ...params, cluster: '', node: '', watchdogSeconds: '' }, bare)],
      {
        encoding: 'utf8',
      },
    );
    expect(run2.status, run2.stderr).toBe(0);
    const env2 = readFileSync(path.join(bare, 'etc/failover-agent/agent.env'), 'utf8');
    expect(env2).toMatch(/^#FAILOVER_CLUSTER=/m);
    expect(env2).toMatch(/^#FAILOVER_NODE=/m);
    expect(env2).toMatch(/^FAILOVER_AGENT_ARGS=$/m);

    // A sum that does not match: nothing is unpacked or installed.
    const wrong = tempDir('root');
    const bad = spawnSync('sh', ['-c', script({ ...params, sha256Linux: 'f'.repeat(64) }, wrong)], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`does not match sha256 ${'f'.repeat(64)}; nothing installed`);
    expect(existsSync(path.join(wrong, 'opt'))).toBe(false);
  }, 120_000);
});
