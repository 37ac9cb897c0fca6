/**
 * When the standby reads its peers (node-agent/core/peers.ts): right after each renewal is due,
 * a few re-checks of an overdue one, a fallback read per heartbeat when no peer calls for one; and
 * what a read proves does not depend on when it was made.
 */
import { describe, expect, it } from 'vitest';
import { PeerReads, PeerWatcher } from '../../node-agent/core/peers';
import { OVERDUE_RENEWAL_RECHECKS, RENEWAL_READABLE_AFTER_MS } from '../../shared/config/timing';
import type { Heartbeat } from '../../shared/core/model';

const H = 1750;
const LEASE = 3750;
const t = { heartbeatIntervalMs: H, heartbeatRetryMs: 250 };

function hb(
  seq: number,
  sentAt: number,
  reason: Heartbeat['reason'] = 'periodic',
): Record<string, Heartbeat> {
  return {
    node2: {
      cluster: 'c',
      node: 'node2',
      token: `a/${seq}`,
      seq,
      incarnation: 'a',
      sentAt,
      leaseMs: LEASE,
      agentVersion: 't',
      state: 'running',
      reason,
      monitors: {},
      isolated: false,
      groups: {},
      peers: {},
    } as Heartbeat,
  };
}

/** A world where both clocks are the same time, and timers run when time is moved. */
function world() {
  let now = 1_000_000;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    clock: { mono: () => now, wall: () => now },
    scheduler: {
      after: (ms: number, fn: () => void) => {
        const timer = { at: now + ms, fn, live: true };
        timers.push(timer);
        return () => {
          timer.live = false;
        };
      },
      soon: (fn: () => void) => fn(),
    },
    get now() {
      return now;
    },
    /** Moves time to `to`, running the timers due on the way, in order. */
    run(to: number) {
      for (;;) {
        const due = timers.filter((x) => x.live && x.at <= to).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        due.live = false;
        now = due.at;
        due.fn();
      }
      now = to;
    },
  };
}

describe('PeerWatcher: when to read', () => {
  it('reads right after the next renewal is due, by the phase of the periodic ones', () => {
    const w = new PeerWatcher();
    const sent = 10_000;
    w.observe(hb(1, sent), sent + 30, ['node2'], { wall: sent + 30, heartbeatIntervalMs: H });
    expect(w.nextReadInMs(sent + 30, sent + 30, t)).toBe(H + RENEWAL_READABLE_AFTER_MS - 30);
    // A change report out of phase does not move the peer's heartbeat.
    w.observe(hb(2, sent + 600, 'change'), sent + 630, ['node2'], {
      wall: sent + 630,
      heartbeatIntervalMs: H,
    });
    expect(w.nextReadInMs(sent + 630, sent + 630, t)).toBe(H + RENEWAL_READABLE_AFTER_MS - 630);
  });

  it('re-checks an overdue renewal a few times, then leaves it to the lease', () => {
    const w = new PeerWatcher();
    const sent = 10_000;
    const at = (x: number) => ({ wall: x, heartbeatIntervalMs: H });
    w.observe(hb(1, sent), sent + 30, ['node2'], at(sent + 30));
    let now = sent + H + RENEWAL_READABLE_AFTER_MS;
    const waits: (number | undefined)[] = [];
    for (let i = 0; i < OVERDUE_RENEWAL_RECHECKS + 1; i++) {
      w.observe(hb(1, sent), now, ['node2'], at(now));
      const next = w.nextReadInMs(now, now, t);
      waits.push(next);
      now += next ?? 0;
    }
    expect(waits).toEqual([100, 250, 250, 250, undefined]);
    // The silence counts from the first read, whenever the later reads came.
    expect(w.report(sent + 30 + LEASE)).toEqual({ node2: { token: 'a/1', silentForMs: LEASE } });
    expect(w.expired(sent + 30 + LEASE, LEASE)).toEqual(['node2']);
    expect(w.expired(sent + 29 + LEASE, LEASE)).toEqual([]);
  });

  it('looks for the next renewal no sooner than half a heartbeat after the first sight of this one, whatever the peer clock says', () => {
    const w = new PeerWatcher();
    // The peer's clock is 5 s behind: by its send time the next renewal is long overdue.
    w.observe(hb(1, 5_000), 10_000, ['node2'], { wall: 10_000, heartbeatIntervalMs: H });
    expect(w.nextReadInMs(10_000, 10_000, t)).toBe(H / 2);
  });

  it('never plans a read more than a heartbeat away, whatever the peer clock says', () => {
    const w = new PeerWatcher();
    w.observe(hb(1, 99_999_999), 10_000, ['node2'], { wall: 10_000, heartbeatIntervalMs: H });
    expect(w.nextReadInMs(10_000, 10_000, t)).toBe(H + RENEWAL_READABLE_AFTER_MS);
  });
});

describe('PeerWatcher: the landing time it learns', () => {
  it('looks later after a renewal that was not readable when due, and creeps back when it is', () => {
    const w = new PeerWatcher();
    const at = (x: number) => ({ wall: x, heartbeatIntervalMs: H });
    w.observe(hb(1, 10_000), 10_030, ['node2'], at(10_030));
    // The next renewal (sent at 11,750) is not there at 11,800 (due), seen at 12,150.
    w.observe(hb(1, 10_000), 11_800, ['node2'], at(11_800));
    w.observe(hb(2, 11_750), 12_150, ['node2'], at(12_150));
    expect(w.nextReadInMs(12_150, 12_150, t)).toBe(11_750 + H + 400 - 12_150);
    // Seen at the first look: a tenth less.
    w.observe(hb(3, 13_500), 13_900, ['node2'], at(13_900));
    expect(w.nextReadInMs(13_900, 13_900, t)).toBe(13_500 + H + 360 - 13_900);
  });
});

describe('PeerReads', () => {
  it('first sees each renewal right after it lands, with one read per renewal', () => {
    const w = world();
    const watcher = new PeerWatcher();
    // The peer renews every H from phase 400; a renewal is readable 20 ms after its send.
    const phase = 1_000_400;
    const reads: number[] = [];
    const firstSight: number[] = [];
    let lastToken = '';
    const reads_ = new PeerReads(watcher, {
      clock: w.clock,
      scheduler: w.scheduler,
      timing: () => t,
      read: () => {
        const now = w.now;
        reads.push(now);
        const k = Math.floor((now - 20 - phase) / H);
        if (k >= 0) {
          const beats = hb(k + 1, phase + k * H);
          watcher.observe(beats, now, ['node2'], { wall: now, heartbeatIntervalMs: H });
          if (beats.node2!.token !== lastToken) firstSight.push(now - (phase + k * H));
          lastToken = beats.node2!.token;
        }
        reads_.afterRead();
      },
    });
    // This agent ticks every H from phase 0.
    for (let tick = 0; tick < 10; tick++) {
      w.run(1_000_000 + tick * H);
      reads_.onTick();
    }
    w.run(1_000_000 + 10 * H);
    // After the first sight, every renewal is first read within the landing allowance of its send.
    expect(firstSight.slice(1).every((d) => d === RENEWAL_READABLE_AFTER_MS)).toBe(true);
    expect(reads.length).toBeLessThanOrEqual(11);
  });
});
