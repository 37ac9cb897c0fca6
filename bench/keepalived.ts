/**
 * keepalived beside ours, in the same run, on the same emulator: what users compare us with,
 * measured rather than quoted.
 *
 * Two keepalived instances (Debian's package; installed with apt-get where missing, here only) run
 * in two network namespaces joined by a veth pair: VRRP unicast over the pair, advert 1 s, both
 * `state BACKUP` with `nopreempt` (a restarted node stays backup, as our standby does). Their
 * `notify_master` script does what a keepalived user on EC2 writes there: point the VIP's route at
 * its own node's ENI in every route table, on the same moto server and the same kind of account as
 * the sandbox (sandbox/network.ts: a VPC, two route tables holding the VIP). The script is a fresh
 * Node.js process with the AWS SDK (bench/keepalived-notify.mjs), since the AWS CLI is not
 * installed here; its start is measured and printed, because keepalived's real-world figure includes
 * the CLI's own start (about 1.2 s on this kind of machine).
 *
 * Scenarios, measured as ours are (from the fault to the route switched): SIGKILL of the master's
 * keepalived (a silent crash: its adverts stop) and SIGTERM (a clean stop: it sends a priority-0
 * advert and the backup takes over after its skew time).
 *
 * Everything created is removed at the end, on failure too: both namespaces (the veth pair goes with
 * them), the keepalived processes (by their process group, which this module started), the work
 * directory. Nothing outside the namespaces is given an address.
 *
 *   npx tsx bench/keepalived.ts [--runs 20]     # starts its own emulator
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DescribeRouteTablesCommand } from '@aws-sdk/client-ec2';
import { createAwsClients } from '../controller/resources';
import { buildNetwork, type SandboxNetwork } from '../sandbox/network';
import { type Say, type Spread, spread } from './report';

const HERE = dirname(fileURLToPath(import.meta.url));
const NOTIFY = join(HERE, 'keepalived-notify.mjs');
/** VRRP advertisement interval (s): the common setting, as in the issue's reference figures. */
const ADVERT_S = 1;
const SWITCH_TIMEOUT_MS = 15_000;

export interface KeepalivedResult {
  version: string;
  /** Fault -> both routes switched by the new master's notify script, ms. */
  crash: number[];
  stop: number[];
  /**
   * Per switch: keepalived ran the script -> Node.js started (startMs); -> the SDK loaded (sdkMs);
   * -> every route replaced (callsMs); and the whole script, ran -> routes replaced (totalMs).
   */
  notify: { startMs: Spread; sdkMs: Spread; callsMs: Spread; totalMs: Spread };
  routeTables: number;
}

/** Why keepalived could not run here (the table then shows the quoted figures, marked as such). */
export interface KeepalivedFallback {
  fallback: string;
}

interface Instance {
  node: 'node1' | 'node2';
  ns: string;
  dev: string;
  ip: string;
  peer: string;
  priority: number;
  conf: string;
  eni: string;
  process?: ChildProcess;
  log: string;
}

function sh(cmd: string, args: string[], input?: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, LC_ALL: 'C' } });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.out.slice(0, 400)}`);
  return r.out;
}

/** keepalived's version line, installing Debian's package where missing; or why it cannot run. */
export function ensureKeepalived(say: Say): { version: string } | KeepalivedFallback {
  const version = () => /Keepalived v[\d.]+/.exec(sh('keepalived', ['--version']).out)?.[0];
  const have = version();
  if (have) return { version: have };
  if (process.getuid?.() !== 0)
    return { fallback: 'keepalived is not installed and this is not root (apt-get install keepalived)' };
  if (!sh('sh', ['-c', 'command -v apt-get']).ok)
    return { fallback: 'keepalived is not installed and there is no apt-get here' };
  say('keepalived: installing Debian package keepalived (apt-get install -y --no-install-recommends)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'keepalived'], {
      encoding: 'utf8',
      env,
    });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { encoding: 'utf8', env });
    r = install();
  }
  const after = version();
  if (!after)
    return {
      fallback: `apt-get install keepalived failed: ${`${r.stderr ?? ''}`.trim().split('\n').slice(-2).join(' ')}`,
    };
  return { version: after };
}

/** Network namespaces work here (root, iproute2). */
function namespacesUsable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!sh('sh', ['-c', 'command -v ip && command -v nsenter']).ok)
    return 'ip (iproute2) or nsenter (util-linux) is missing';
  return undefined;
}

export interface KeepalivedOptions {
  say: Say;
  runs: number;
  /** The moto server the sandbox uses (the same emulator, the same kind of account). */
  endpoint: string;
}

export async function runKeepalivedBench(
  o: KeepalivedOptions,
): Promise<KeepalivedResult | KeepalivedFallback> {
  const why = namespacesUsable();
  if (why) return { fallback: why };
  const installed = ensureKeepalived(o.say);
  if ('fallback' in installed) return installed;

  const tag = (process.pid % 46656).toString(36).padStart(3, '0');
  const dir = mkdtempSync(join(tmpdir(), 'speed-keepalived-'));
  const log = join(dir, 'notify.log');
  writeFileSync(log, '');
  const clients = createAwsClients({ region: 'us-east-1', endpoint: o.endpoint });
  const net = await buildNetwork(clients.ec2, clients.route53, [
    { name: 'ka', nodes: ['node1', 'node2'], vip: true },
  ]);
  const vip = net.groups[0]!.vip!;
  const instances: Instance[] = (['node1', 'node2'] as const).map((node, i) => ({
    node,
    ns: `speed-ka${tag}-${i + 1}`,
    dev: `ska${tag}${i + 1}`,
    ip: `10.213.0.${i + 1}`,
    peer: `10.213.0.${2 - i}`,
    priority: i === 0 ? 150 : 100,
    conf: join(dir, `${node}.conf`),
    eni: net.nodes.find((n) => n.name === node)!.eni,
    log: join(dir, `${node}.log`),
  }));
  const cleanup = () => {
    for (const inst of instances) stopInstance(inst, 'SIGKILL');
    for (const inst of instances) sh('ip', ['netns', 'delete', inst.ns]);
    if (!process.env.SANDBOX_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    createNamespaces(instances);
    for (const inst of instances) writeConfig(inst, dir, log, net, vip, o.endpoint);
    o.say(
      `keepalived: ${installed.version} in namespaces ${instances.map((i) => i.ns).join(', ')} (VRRP unicast over a veth pair, advert ${ADVERT_S} s, nopreempt); notify_master replaces the VIP route in ${net.routeTables.length} route tables on the emulator`,
    );
    // node1 first, alone: it becomes master after its down timer; then node2 joins as backup.
    startInstance(instances[0]!);
    await waitFor(log, (l) => l.node === 'node1' && l.what === 'switched', 0, SWITCH_TIMEOUT_MS);
    startInstance(instances[1]!);
    await waitFor(log, (l) => l.node === 'node2' && /backup/i.test(l.what), 0, SWITCH_TIMEOUT_MS);
    await settle();

    const crash: number[] = [];
    const stop: number[] = [];
    let master = instances[0]!;
    for (const [kind, times] of [
      ['SIGKILL', crash],
      ['SIGTERM', stop],
    ] as const) {
      for (let i = 0; i < o.runs; i++) {
        const backup = instances.find((x) => x !== master)!;
        const t0 = Date.now();
        stopInstance(master, kind);
        const switched = await waitFor(
          log,
          (l) => l.node === backup.node && l.what === 'switched' && l.at >= t0,
          t0,
          SWITCH_TIMEOUT_MS,
        );
        const ms = switched.at - t0;
        await assertRoutes(clients.ec2, net, vip, backup.eni);
        times.push(ms);
        o.say(`keepalived ${kind === 'SIGKILL' ? 'silent crash' : 'clean stop'} #${i + 1}: ${ms} ms`);
        // The old master comes back as a backup (nopreempt): the next run hits the new master.
        await waitExit(master);
        const restartAt = Date.now();
        startInstance(master);
        await waitFor(
          log,
          (l) => l.node === master.node && /backup/i.test(l.what) && l.at >= restartAt,
          restartAt,
          SWITCH_TIMEOUT_MS,
        );
        await settle();
        master = backup;
      }
    }
    const switches = readLines(log).filter((l) => l.what === 'switched');
    const runsOf = readFileSync(log, 'utf8');
    const invoked = [...runsOf.matchAll(/^(\d+) (node\d) invoked (\S+)$/gm)];
    // keepalived ran the wrapper (its `date`) -> node started -> SDK loaded -> routes replaced.
    const starts: number[] = [];
    const sdk: number[] = [];
    const calls: number[] = [];
    const totals: number[] = [];
    for (const s of switches) {
      const inv = invoked
        .filter((m) => m[2] === s.node && m[3] === 'MASTER' && Number(m[1]) <= s.started)
        .at(-1);
      if (inv) {
        starts.push(s.started - Number(inv[1]));
        totals.push(s.at - Number(inv[1]));
      }
      sdk.push(s.loaded - s.started);
      calls.push(s.at - s.loaded);
    }
    return {
      version: installed.version,
      crash,
      stop,
      notify: {
        startMs: spread(starts),
        sdkMs: spread(sdk),
        callsMs: spread(calls),
        totalMs: spread(totals),
      },
      routeTables: net.routeTables.length,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
  }
}

/** Two namespaces and a veth pair between them; addresses only inside them. */
function createNamespaces(instances: Instance[]): void {
  const [a, b] = instances as [Instance, Instance];
  for (const inst of instances) {
    sh('ip', ['netns', 'delete', inst.ns]);
    must('ip', ['netns', 'add', inst.ns]);
    must('ip', ['-n', inst.ns, 'link', 'set', 'lo', 'up']);
  }
  must('ip', ['link', 'add', a.dev, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns]);
  for (const inst of instances) {
    must('ip', ['-n', inst.ns, 'addr', 'add', `${inst.ip}/24`, 'dev', inst.dev]);
    must('ip', ['-n', inst.ns, 'link', 'set', inst.dev, 'up']);
  }
}

/** The instance's keepalived.conf and its notify wrapper (run by keepalived as root). */
function writeConfig(
  inst: Instance,
  dir: string,
  log: string,
  net: SandboxNetwork,
  vip: string,
  endpoint: string,
): void {
  const wrapper = join(dir, `notify-${inst.node}.sh`);
  // keepalived passes TYPE NAME STATE PRIORITY to a generic notify script. The script leaves the
  // namespace for this process's own (where the emulator listens on loopback) with nsenter.
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `echo "$(date +%s%3N) ${inst.node} invoked $3" >> ${log}`,
      `exec nsenter --net=/proc/${process.pid}/ns/net env KA_LOG=${log} KA_TABLES=${net.routeTables.join(',')} KA_VIP=${vip} KA_ENI=${inst.eni} AWS_ENDPOINT_URL=${endpoint} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true ${process.execPath} ${NOTIFY} ${inst.node} "$3"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  writeFileSync(
    inst.conf,
    `global_defs {
  router_id ${inst.node}
  script_user root
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  nopreempt
  interface ${inst.dev}
  virtual_router_id 51
  priority ${inst.priority}
  advert_int ${ADVERT_S}
  unicast_src_ip ${inst.ip}
  unicast_peer {
    ${inst.peer}
  }
  virtual_ipaddress {
    10.213.0.100/32 dev ${inst.dev}
  }
  notify ${wrapper}
}
`,
  );
}

function startInstance(inst: Instance): void {
  const args = [
    'netns',
    'exec',
    inst.ns,
    'keepalived',
    '--dont-fork',
    '--log-console',
    '--no-syslog',
    '--vrrp',
    '--use-file',
    inst.conf,
    '--pid',
    `${inst.conf}.pid`,
    '--vrrp_pid',
    `${inst.conf}.vrrp.pid`,
  ];
  // Its own process group, so that a SIGKILL takes the parent and its VRRP child at once.
  const child = spawn('ip', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (d: Buffer) => writeFileSync(inst.log, d, { flag: 'a' });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  inst.process = child;
}

/** SIGKILL: the whole instance at once (a crash); SIGTERM: the parent, which stops cleanly. */
function stopInstance(inst: Instance, signal: 'SIGKILL' | 'SIGTERM'): void {
  const p = inst.process;
  if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
  try {
    if (signal === 'SIGKILL') process.kill(-p.pid, 'SIGKILL');
    else p.kill('SIGTERM');
  } catch {
    // already gone
  }
}

async function waitExit(inst: Instance): Promise<void> {
  const p = inst.process;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await Promise.race([new Promise((r) => p.once('exit', r)), new Promise((r) => setTimeout(r, 10_000))]);
  // A VRRP child left behind by a clean stop would still advertise.
  if (p.pid) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      // the group is gone
    }
  }
}

/** Two adverts of calm, so that the next fault starts from a settled pair. */
const settle = () => new Promise((r) => setTimeout(r, 2 * ADVERT_S * 1000 + 200));

interface NotifyLine {
  at: number;
  node: string;
  what: string;
  started: number;
  loaded: number;
}

function readLines(log: string): NotifyLine[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .flatMap((line) => {
      const m = /^(\d+) (node\d) (\S+)(.*)$/.exec(line);
      if (!m) return [];
      const num = (k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(m[4] ?? '')?.[1] ?? Number.NaN);
      return [{ at: Number(m[1]), node: m[2]!, what: m[3]!, started: num('started'), loaded: num('loaded') }];
    });
}

async function waitFor(
  log: string,
  match: (l: NotifyLine) => boolean,
  since: number,
  timeoutMs: number,
): Promise<NotifyLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = readLines(log);
    const failed = lines.find((l) => l.what === 'failed' && l.at >= since);
    if (failed) throw new Error(`keepalived notify script failed: see ${log}`);
    const hit = lines.find(match);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`keepalived: no such notify line within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Both route tables point the VIP at the new master: the switch the figure claims happened. */
async function assertRoutes(
  ec2: ReturnType<typeof createAwsClients>['ec2'],
  net: SandboxNetwork,
  vip: string,
  eni: string,
): Promise<void> {
  const out = await ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: net.routeTables }));
  const wrong = (out.RouteTables ?? []).filter(
    (t) => t.Routes?.find((r) => r.DestinationCidrBlock === `${vip}/32`)?.NetworkInterfaceId !== eni,
  );
  if (wrong.length > 0)
    throw new Error(
      `keepalived: ${wrong.map((t) => t.RouteTableId).join(', ')} do not point ${vip} at ${eni}`,
    );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
  const say: Say = (l) => process.stderr.write(`${l}\n`);
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  // @ts-expect-error plain ESM script without type declarations
  const { startEmulator } = await import('../scripts/emulator.mjs');
  const emulator: { endpoint: string; stop: () => Promise<void> } = await startEmulator({ log: say });
  try {
    const r = await runKeepalivedBench({ say, runs: Number(values.runs), endpoint: emulator.endpoint });
    console.log(JSON.stringify(r, null, 2));
  } finally {
    await emulator.stop();
  }
}
