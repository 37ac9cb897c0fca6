/**
 * The agent's protocol pieces with time as a parameter: the fence deadline, the change/periodic
 * decision, peers' silence, the stale-owner rule, the guard's lease check, the lock file, the
 * watchdog rule and the command line.
 */
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDaemonArgs, parseGuardArgs } from '../../node-agent/cli';
import { type Clock, realScheduler, type Scheduler } from '../../node-agent/clock';
import { FenceTimer } from '../../node-agent/core/fence-timer';
import { GroupFollower, mustDemote } from '../../node-agent/core/follow';
import {
  fingerprint,
  HEARTBEAT_SUPERSEDED,
  HeartbeatWriter,
  type ReportParts,
} from '../../node-agent/core/heartbeat-writer';
import { PeerWatcher } from '../../node-agent/core/peers';
import { WatchdogFeeder } from '../../node-agent/core/watchdog-feeder';
import { AgentError } from '../../node-agent/errors';
import { acquireLock, LockHandle, LockTimeoutError, tryLock } from '../../node-agent/file-lock';
import { leaseProblem } from '../../node-agent/lease-check';
import type { LeaseRecord } from '../../node-agent/local-state';
import type { Timing } from '../../shared/config/timing';
import type { Heartbeat } from '../../shared/core/model';
import { deadPid, REPO, removeTempDirs, tempDir } from './support';

afterAll(() => removeTempDirs());

/** A clock and a scheduler under the test's control. */
function fakeTime(start = 1000) {
  let now = start;
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  const clock: Clock = { mono: () => now, wall: () => 1_700_000_000_000 + now };
  const after = (ms: number, fn: () => void) => {
    const t = { at: now + ms, fn, cancelled: false };
    timers.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  const schedule: Scheduler = { after, soon: (fn) => void after(0, fn) };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const next = timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      next.cancelled = true;
      now = Math.max(now, next.at);
      next.fn();
    }
    now = end;
  };
  return { clock, schedule, advance, now: () => now };
}

describe('fence timer', () => {
  it('fires at send(last acknowledged) + lease - margin, counted from the send, not the answer', () => {
    const t = fakeTime();
    const fired: number[] = [];
    const fence = new FenceTimer(t.clock, () => fired.push(t.now()), t.schedule);
    const sent = t.now();
    t.advance(400); // the answer comes 400 ms later
    fence.ack(1, { sentMono: sent, leaseMs: 2000, fenceMarginMs: 500 });
    expect(fence.deadline).toBe(sent + 1500);
    t.advance(1099);
    expect(fired).toEqual([]);
    t.advance(1);
    expect(fired).toEqual([sent + 1500]);
  });

  it('ignores a late answer to an older renewal, and re-arms on a newer one', () => {
    const t = fakeTime();
    const fired: number[] = [];
    const fence = new FenceTimer(t.clock, () => fired.push(t.now()), t.schedule);
    const send1 = t.now();
    t.advance(250);
    const send2 = t.now();
    expect(fence.ack(2, { sentMono: send2, leaseMs: 2000, fenceMarginMs: 500 })).toBe(true);
    // Renewal 1 answers late: its send time is older, it must not move the deadline.
    expect(fence.ack(1, { sentMono: send1, leaseMs: 2000, fenceMarginMs: 500 })).toBe(false);
    expect(fence.deadline).toBe(send2 + 1500);
    t.advance(500);
    fence.ack(3, { sentMono: t.now(), leaseMs: 2000, fenceMarginMs: 500 });
    t.advance(1499);
    expect(fired).toEqual([]);
    t.advance(1);
    expect(fired).toHaveLength(1);
  });

  it('uses the lease of each renewal and never extends a restored deadline of a previous process', () => {
    const t = fakeTime();
    const fence = new FenceTimer(t.clock, () => undefined, t.schedule);
    fence.restore(t.now() + 300);
    expect(fence.holdsLease()).toBe(true);
    // Restored for fencing only: nothing new starts before a renewal of this process is acknowledged.
    expect(fence.admitUntil).toBe(0);
    expect(fence.servesLease()).toBe(false);
    fence.ack(1, { sentMono: t.now(), leaseMs: 1000, fenceMarginMs: 250 }); // a shorter lease from a new definition
    expect(fence.deadline).toBe(t.now() + 750);
    expect(fence.admitUntil).toBe(t.now() + 750);
    expect(fence.servesLease()).toBe(true);
    t.advance(800);
    expect(fence.holdsLease()).toBe(false);
  });
});

function parts(over: Partial<ReportParts> = {}): ReportParts {
  return {
    state: 'running',
    groups: { db: { epoch: 1, state: 'running' } },
    monitors: { m: { status: 'ok', detail: 'fine' } },
    isolated: false,
    peers: {},
    expiredPeers: [],
    ...over,
  };
}

describe('heartbeat writer', () => {
  const timing: Timing = { heartbeatIntervalMs: 250, leaseMs: 1500, maxClockSkewMs: 0, fenceMarginMs: 375 };

  function writer(report: () => ReportParts, put: (hb: Heartbeat) => Promise<void>) {
    const t = fakeTime();
    const acks: number[] = [];
    const w = new HeartbeatWriter({
      cluster: 'c',
      node: 'n1',
      incarnation: 'inc',
      agentVersion: 'v',
      clock: t.clock,
      scheduler: realScheduler,
      put,
      build: report,
      timing: () => timing,
      onAck: (a) => acks.push(a.seq),
      onError: () => undefined,
    });
    return { w, acks };
  }

  it('marks a write as a change only when the report differs from the last acknowledged one', async () => {
    let report = parts();
    const written: Heartbeat[] = [];
    let fail = false;
    const { w } = writer(
      () => report,
      async (hb) => {
        written.push(hb);
        if (fail) throw new Error('unreachable');
      },
    );
    await w.tick();
    await w.tick();
    expect(written.map((h) => h.reason)).toEqual(['change', 'periodic']);
    expect(written.map((h) => h.token)).toEqual(['inc/1', 'inc/2']);
    // Details and silence counters are not reportable changes; statuses and expiries are.
    report = parts({
      monitors: { m: { status: 'ok', detail: 'other' } },
      peers: { n2: { token: 't', silentForMs: 5 } },
    });
    await w.tick();
    expect(written[2]!.reason).toBe('periodic');
    report = parts({ monitors: { m: { status: 'error' } } });
    fail = true;
    await w.tick();
    fail = false;
    await w.tick(); // the failed change is repeated as a change
    await w.tick();
    expect(written.slice(3).map((h) => h.reason)).toEqual(['change', 'change', 'periodic']);
  });

  it('writes a change at once, once', async () => {
    let report = parts();
    const written: Heartbeat[] = [];
    const { w } = writer(
      () => report,
      async (hb) => {
        written.push(hb);
      },
    );
    await w.tick();
    report = parts({ isolated: true });
    w.changed();
    w.changed();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    w.changed(); // nothing new since the last write
    await new Promise((r) => setImmediate(r));
    expect(written.map((h) => [h.seq, h.reason, h.isolated])).toEqual([
      [1, 'change', false],
      [2, 'change', true],
    ]);
  });

  it('a renewal that arrived after a newer one (HEARTBEAT_SUPERSEDED) is neither acknowledged nor a failure', async () => {
    const errors: unknown[] = [];
    const acks: number[] = [];
    // Renewal 1 is slow; renewal 2 lands first; then 1 arrives and the table refuses it.
    let landSlow: () => void = () => undefined;
    const superseded = (token: string) =>
      Object.assign(new Error(`renewal ${token} arrived after a newer one`), { code: HEARTBEAT_SUPERSEDED });
    let refuseNext: string | undefined;
    const w = new HeartbeatWriter({
      cluster: 'c',
      node: 'n1',
      incarnation: 'inc',
      agentVersion: 'v',
      clock: fakeTime().clock,
      scheduler: realScheduler,
      put: async (hb) => {
        if (hb.seq === 1) await new Promise<void>((resolve) => (landSlow = resolve));
        if (refuseNext === hb.token) throw superseded(hb.token);
      },
      build: () => parts(),
      timing: () => timing,
      onAck: (a) => acks.push(a.seq),
      onError: (e) => errors.push(e),
    });
    const slow = w.tick();
    expect(await w.tick()).toBe(true);
    refuseNext = 'inc/1';
    landSlow();
    expect(await slow).toBe(false);
    expect(acks).toEqual([2]);
    expect(errors).toEqual([]);
    expect(w.stats).toMatchObject({ sent: 2, acked: 1, failed: 0, superseded: 1 });
    // The newest renewal refused cannot be writes landing out of order (another process with this
    // incarnation?): a failure, reported.
    refuseNext = 'inc/3';
    expect(await w.tick()).toBe(false);
    expect(errors).toHaveLength(1);
    expect(w.stats).toMatchObject({ sent: 3, failed: 1, superseded: 1 });
  });

  it('a hung write does not block the renewals after it', async () => {
    const written: number[] = [];
    const t = fakeTime();
    const w = new HeartbeatWriter({
      cluster: 'c',
      node: 'n1',
      incarnation: 'inc',
      agentVersion: 'v',
      clock: t.clock,
      scheduler: realScheduler,
      put: (hb) => {
        written.push(hb.seq);
        return new Promise(() => undefined); // never answers
      },
      build: () => parts(),
      timing: () => timing,
      onAck: () => undefined,
      onError: () => undefined,
      maxInFlight: 2,
      writeTimeoutMs: () => 20,
    });
    void w.tick();
    void w.tick();
    void w.tick(); // over the limit: skipped
    expect(written).toEqual([1, 2]);
    await new Promise((r) => setTimeout(r, 40));
    void w.tick();
    expect(written).toEqual([1, 2, 3]);
  });

  it('fingerprints only reportable fields', () => {
    expect(fingerprint(parts({ expiredPeers: ['n2'] }))).not.toBe(fingerprint(parts()));
    expect(fingerprint(parts({ spot: { action: 'stop', time: 't' } }))).not.toBe(fingerprint(parts()));
    expect(fingerprint(parts({ groups: { db: { epoch: 2, state: 'running' } } }))).not.toBe(
      fingerprint(parts()),
    );
    expect(fingerprint(parts({ witnesses: [{ target: 'x', ok: false }] }))).toBe(fingerprint(parts()));
  });
});

describe('peers', () => {
  const hb = (token: string, leaseMs = 1000) => ({ token, leaseMs }) as Heartbeat;

  it('counts silence from the first read of a token, resets on a new token, and names expiries', () => {
    const p = new PeerWatcher();
    p.observe({ n2: hb('a/1') }, 100, ['n2', 'n3']);
    p.observe({ n2: hb('a/1') }, 600, ['n2', 'n3']);
    expect(p.report(700)).toEqual({ n2: { token: 'a/1', silentForMs: 600 } });
    expect(p.nextExpiryInMs(700, 1000)).toBe(400);
    expect(p.expired(1099, 1000)).toEqual([]);
    expect(p.expired(1100, 1000)).toEqual(['n2']);
    // The controller's lease is longer than the peer's own: the longer counts.
    expect(p.expired(1100, 1500)).toEqual([]);
    p.observe({ n2: hb('a/2') }, 1200, ['n2', 'n3']);
    expect(p.report(1300).n2).toEqual({ token: 'a/2', silentForMs: 100 });
    // A missing item proves nothing and keeps the memory; a node removed from the cluster is dropped.
    p.observe({}, 1400, ['n2']);
    expect(p.report(1400).n2?.token).toBe('a/2');
    p.observe({}, 1500, []);
    expect(p.report(1500)).toEqual({});
  });
  it('reports a doubt a lead before the lease (the controller then waits for the proof), then the expiry', () => {
    const p = new PeerWatcher();
    p.observe({ n2: hb('a/1', 3750) }, 0, ['n2']);
    // Lease 3.75 s: the doubt comes 750 ms before it.
    expect(p.nextCrossing(0, 3750)).toEqual({ inMs: 3000, kind: 'doubt' });
    expect(p.doubted(2999, 3750)).toEqual([]);
    expect(p.doubted(3000, 3750)).toEqual(['n2']);
    expect(p.expired(3000, 3750)).toEqual([]);
    expect(p.nextCrossing(3000, 3750)).toEqual({ inMs: 750, kind: 'expiry' });
    expect(p.expired(3750, 3750)).toEqual(['n2']);
    expect(p.nextCrossing(3750, 3750)).toBeUndefined();
    // A short lease: never sooner than half of it.
    p.observe({ n2: hb('a/2', 1000) }, 5000, ['n2']);
    expect(p.nextCrossing(5000, 1000)).toEqual({ inMs: 500, kind: 'doubt' });
  });
});

describe('following groups', () => {
  const local = (state: 'running' | 'stopped' | 'starting' | 'failed', epoch: number) =>
    ({ group: 'db', state, epoch, pid: 1, at: 0 }) as const;

  it('demotes a stale owner, not on an older read, not during a guard run', () => {
    expect(mustDemote(local('running', 3), { owner: 'n2', epoch: 4 }, 'n1')).toBe(true);
    expect(mustDemote(local('running', 3), { owner: 'n1', epoch: 4 }, 'n1')).toBe(true);
    expect(mustDemote(local('running', 3), { owner: null, epoch: 3 }, 'n1')).toBe(true);
    expect(mustDemote(local('failed', 3), { owner: 'n2', epoch: 4 }, 'n1')).toBe(true);
    expect(mustDemote(local('running', 3), { owner: 'n1', epoch: 3 }, 'n1')).toBe(false);
    expect(mustDemote(local('running', 3), { owner: 'n2', epoch: 2 }, 'n1')).toBe(false); // stale read
    expect(mustDemote(local('starting', 3), { owner: 'n2', epoch: 4 }, 'n1')).toBe(false);
    expect(mustDemote(local('stopped', 3), { owner: 'n2', epoch: 4 }, 'n1')).toBe(false);
  });

  it('never lowers the epoch it has seen', () => {
    const f = new GroupFollower();
    expect(f.observe([{ group: 'db', epoch: 5 }])).toBe(true);
    expect(f.observe([{ group: 'db', epoch: 4 }])).toBe(false);
    expect(f.seenEpoch('db')).toBe(5);
  });
});

describe('guard lease check', () => {
  const clock: Clock = { mono: () => 10_000, wall: () => 0 };
  const who = { cluster: 'c', node: 'n1', stateDir: '/var/lib/failover-agent' };
  const lease = (over: Partial<LeaseRecord> = {}): LeaseRecord => ({
    pid: process.pid,
    incarnation: 'i',
    cluster: 'c',
    node: 'n1',
    table: 't',
    leaseUntilMono: 10_500,
    fenced: false,
    leaving: false,
    leaseMs: 2000,
    fenceMarginMs: 500,
    at: 0,
    ...over,
  });

  it('accepts only a live, unfenced lease of a running agent for this node', () => {
    expect(leaseProblem(lease(), who, clock, undefined)).toBeUndefined();
    expect(leaseProblem(undefined, who, clock, undefined)).toMatch(/no failover-agent has run/);
    expect(leaseProblem(lease({ node: 'n2' }), who, clock, undefined)).toMatch(/runs as c\/n2/);
    expect(leaseProblem(lease({ pid: 999_999_999 }), who, clock, undefined)).toMatch(/is not running/);
    expect(leaseProblem(lease({ fenced: true }), who, clock, undefined)).toMatch(/fenced itself/);
    expect(leaseProblem(lease({ leaving: true }), who, clock, undefined)).toMatch(/shutting down/);
    expect(leaseProblem(lease({ leaseUntilMono: 9_000 }), who, clock, undefined)).toMatch(
      /ran out 1000 ms ago/,
    );
    expect(leaseProblem(lease({ bootId: 'a' }), who, clock, 'b')).toMatch(/previous boot/);
  });

  it('refuses a start that an announced idle watchdog feed could outlive (finding 1)', () => {
    // Lease end = 10_500 + 500 = 11_000. An idle feed announced up to 11_000 is covered.
    expect(leaseProblem(lease({ idleFeedResetBy: 11_000 }), who, clock, undefined)).toBeUndefined();
    // Lease 10 s, margin 2 s, watchdog 8 s: fed while nothing ran at 7.5 s after the send, the
    // node would not reset before 15.5 s, 5.5 s after the lease ended.
    expect(leaseProblem(lease({ idleFeedResetBy: 11_001 }), who, clock, undefined)).toMatch(
      /watchdog was last fed while nothing ran here and may not reset the node until 1 ms after the lease ends/,
    );
  });

  it('refuses a start while the agent is frozen (SIGSTOP): it could not fence itself', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await new Promise((r) => child.on('spawn', r));
      expect(leaseProblem(lease({ pid: child.pid! }), who, clock, undefined)).toBeUndefined();
      child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, 100));
      expect(leaseProblem(lease({ pid: child.pid! }), who, clock, undefined)).toMatch(/is stopped \(SIGSTOP/);
      child.kill('SIGCONT');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('lock file', () => {
  it('is exclusive, breaks the lock of a dead owner, and releases only its own', async () => {
    const file = path.join(tempDir('lock'), 'db.lock');
    const a = tryLock(file, 'a');
    expect(a).toBeInstanceOf(LockHandle);
    const b = tryLock(file, 'b');
    expect(b).toEqual({ busy: expect.objectContaining({ pid: process.pid, what: 'a' }) });
    await expect(acquireLock(file, 'b', { timeoutMs: 100 })).rejects.toBeInstanceOf(LockTimeoutError);
    (a as LockHandle).release();

    // A lock left by a process that died is taken over.
    writeFileSync(file, JSON.stringify({ pid: await deadPid(), nonce: 'old', what: 'guard start', at: 0 }));
    const c = await acquireLock(file, 'c', { timeoutMs: 100 });
    expect(c.held()).toBe(true);
    c.release();
  });

  it('takes a lock file it cannot read for busy, never for stale, and its holder for still holding it', async () => {
    // A read that fails (EMFILE, EIO; here EISDIR, a directory in the file's place) says nothing of
    // the owner, who may well be alive: breaking it would give two processes one lock, and a start
    // that took it for lost would kill itself for nothing.
    const file = path.join(tempDir('lock'), 'db.lock');
    const mine = tryLock(file, 'guard start epoch 1') as LockHandle;
    expect(mine).toBeInstanceOf(LockHandle);
    unlinkSync(file);
    mkdirSync(file);
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old); // old enough for the stale rule of an empty file
    expect(mine.held(), 'unreadable: still held').toBe(true);
    expect(tryLock(file, 'other')).toEqual({ busy: undefined });
    await expect(acquireLock(file, 'other', { timeoutMs: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(readdirSync(path.dirname(file))).toEqual(['db.lock']);
    // Evidence of loss: another owner's lock in its place.
    rmdirSync(file);
    writeFileSync(file, JSON.stringify({ pid: process.pid, nonce: 'someone-else', what: 'x', at: 0 }));
    expect(mine.held()).toBe(false);
  });

  it('never exists without its owner in it: a reader in another process finds the owner every time while a locker takes and releases it 20,000 times', async () => {
    // A lock file seen without an owner is taken for one left by a crash: the fence deletes it
    // (nobody to kill), any locker breaks it after 2 s. If its creator lives, it then runs without
    // the lock it believes it holds (the review's finding: a guard stalled between create and write).
    const dir = tempDir('lock');
    const file = path.join(dir, 'db.lock');
    const locker = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { register } = await import('tsx/esm/api'); register();
         const { tryLock, LockHandle } = await import(${JSON.stringify(path.join(REPO, 'node-agent/file-lock.ts'))});
         let held = 0;
         for (let i = 0; i < 20000; i++) { const h = tryLock(${JSON.stringify(file)}, 'stress'); if (h instanceof LockHandle) { held++; h.release(); } }
         console.log(held);`,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    locker.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => locker.on('exit', r));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    let seen = 0;
    let ownerless = 0;
    while (running) {
      for (let i = 0; i < 500; i++) {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          continue; // not held at that moment
        }
        seen++;
        try {
          if (typeof JSON.parse(text).nonce !== 'string') ownerless++;
        } catch {
          ownerless++;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(await exited).toBe(0);
    console.log(`lock file read ${seen} times while held, ${ownerless} times without its owner`);
    expect(Number(out.trim())).toBe(20000);
    expect(seen, 'the reader saw the lock held').toBeGreaterThan(100);
    expect(ownerless).toBe(0);
    // Nothing is left beside it: each attempt's own file is gone.
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);
});

describe('watchdog rule (core/watchdog-feeder.ts)', () => {
  /** A feeder over in-memory IO: what it fed, what it announced, what runs. */
  function feeder(timeoutMs: number) {
    let now = 10_000;
    let running = false;
    const fed: { at: number; kind: string }[] = [];
    const announced: number[] = [];
    const f = new WatchdogFeeder(
      {
        now: () => now,
        feed: () => fed.push({ at: now, kind: '?' }),
        announce: (b) => {
          announced.push(b);
          return true;
        },
        nothingRuns: () => !running,
      },
      timeoutMs,
    );
    return {
      f,
      fed,
      announced,
      at: (t: number) => {
        now = t;
      },
      run: (r: boolean) => {
        running = r;
      },
    };
  }

  it('feeds under the lease whatever runs, only while the lease outlasts the timeout', () => {
    const w = feeder(4000);
    w.run(true);
    w.at(16_000);
    expect(w.f.tick(20_000)).toBe('lease'); // 16 + 4 <= 20
    w.at(16_001);
    expect(w.f.tick(20_000)).toBe('none'); // something runs: no idle feed either
    expect(w.fed).toHaveLength(1);
  });

  it('announces an idle feed before it reads what runs, and feeds only within the announcement', () => {
    const w = feeder(4000);
    w.at(99_000);
    expect(w.f.tick(20_000)).toBe('idle');
    expect(w.announced).toEqual([99_000 + 100 + 4000]);
    expect(w.f.announced).toBe(103_100);
    // Within the announcement: no new announcement needed.
    w.at(99_050);
    expect(w.f.tick(20_000)).toBe('idle');
    expect(w.announced).toHaveLength(1);
    // A start recorded meanwhile: the announcement is made, the feed is not.
    w.run(true);
    w.at(100_000);
    expect(w.f.tick(20_000)).toBe('none');
    expect(w.announced).toHaveLength(2);
  });
});

describe('command line', () => {
  it('parses the guard, one COMMAND string or an argv', () => {
    expect(
      parseGuardArgs(['--group', 'db', '--epoch', '3', '--', '/opt/app/start.sh --fast'], {}),
    ).toMatchObject({
      group: 'db',
      epoch: 3,
      action: 'start',
      command: ['/opt/app/start.sh --fast'],
      stateDir: '/var/lib/failover-agent',
    });
    expect(
      parseGuardArgs(
        [
          '--group',
          'db',
          '--epoch',
          '0',
          '--action',
          'stop',
          '--vip',
          '172.16.0.10',
          '--vip',
          '172.16.0.11',
          '--',
          'systemctl',
          'stop',
          'pg',
        ],
        {
          FAILOVER_AGENT_STATE_DIR: '/tmp/x',
        },
      ),
    ).toMatchObject({
      action: 'stop',
      vips: ['172.16.0.10', '172.16.0.11'],
      command: ['systemctl', 'stop', 'pg'],
      stateDir: '/tmp/x',
    });
  });

  it('says what is wrong and how to fix it (exit 2)', () => {
    const message = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(AgentError);
        expect((e as AgentError).exitCode).toBe(2);
        return (e as Error).message.split('\n')[0];
      }
      throw new Error('no error');
    };
    expect(message(() => parseGuardArgs(['--group', 'db', '--', 'x'], {}))).toMatch(/--epoch N is required/);
    expect(message(() => parseGuardArgs(['--group', 'db', '--epoch', 'x', '--', 'x'], {}))).toMatch(
      /--epoch must be a whole number >= 0, got "x"/,
    );
    expect(
      message(() => parseGuardArgs(['--group', 'db', '--epoch', '1', '--action', 'restart', '--', 'x'], {})),
    ).toMatch(/--action must be start or stop, got "restart"/);
    expect(message(() => parseGuardArgs(['--group', 'db', '--epoch', '1'], {}))).toMatch(
      /COMMAND is missing/,
    );
    expect(
      message(() => parseGuardArgs(['--group', 'db', '--epoch', '1', '--vip', '1.2.3', '--', 'x'], {})),
    ).toMatch(/--vip must be an IPv4 address/);
    expect(message(() => parseDaemonArgs(['--clutser', 'x'], {}))).toMatch(/Unknown option '--clutser'/);
    expect(message(() => parseDaemonArgs(['start'], {}))).toMatch(/unexpected argument "start"/);
  });
});
