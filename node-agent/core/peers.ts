/**
 * Watching the peers' leases, without trusting any wall clock: for each peer, the monotonic time
 * at which this agent first READ its current renewal token. A token that stays the same for a whole
 * lease proves the peer has fenced itself (shared/core/liveness.ts):
 *
 *   send(T) <= write(T) <= firstRead(T)      (the read that saw T completed after T was written)
 *   peer's fence deadline <= send(T) + lease - margin < firstRead(T) + lease
 *
 * so `silentForMs = now - firstRead(T) >= lease` means the peer stopped serving. The first-read
 * time is taken when the read returns, never when it was sent (the write may have landed between).
 */
import type { Heartbeat } from '../../shared/core/model';

interface Seen {
  token: string;
  firstSeenMono: number;
  leaseMs: number;
}

/** Remembers when each peer's current token was first read (monotonic) and reports silences. */
export class PeerWatcher {
  private readonly seen = new Map<string, Seen>();

  /**
   * Records one read of the peers' items that completed at `readDoneMono`. Peers missing from the
   * answer keep their memory (a missing item never proves anything).
   */
  observe(heartbeats: Record<string, Heartbeat>, readDoneMono: number, peers: readonly string[]): void {
    for (const name of [...this.seen.keys()]) if (!peers.includes(name)) this.seen.delete(name);
    for (const name of peers) {
      const hb = heartbeats[name];
      if (!hb) continue;
      const prev = this.seen.get(name);
      if (!prev || prev.token !== hb.token) {
        this.seen.set(name, {
          token: hb.token,
          firstSeenMono: readDoneMono,
          leaseMs: Number(hb.leaseMs) || 0,
        });
      }
    }
  }

  report(nowMono: number): Record<string, { token: string; silentForMs: number }> {
    const out: Record<string, { token: string; silentForMs: number }> = {};
    for (const [name, s] of this.seen) {
      out[name] = { token: s.token, silentForMs: Math.max(0, Math.floor(nowMono - s.firstSeenMono)) };
    }
    return out;
  }

  /** The lease the controller applies to a peer: the longer of its own and the cluster's. */
  private leaseOf(s: Seen, clusterLeaseMs: number): number {
    return Math.max(s.leaseMs, clusterLeaseMs);
  }

  /** Peers whose token has not changed for a whole lease, sorted. */
  expired(nowMono: number, clusterLeaseMs: number): string[] {
    return [...this.seen]
      .filter(([, s]) => nowMono - s.firstSeenMono >= this.leaseOf(s, clusterLeaseMs))
      .map(([name]) => name)
      .sort();
  }

  /** Milliseconds until the next peer crosses its lease, or undefined when none is pending. */
  nextExpiryInMs(nowMono: number, clusterLeaseMs: number): number | undefined {
    let next: number | undefined;
    for (const s of this.seen.values()) {
      const left = s.firstSeenMono + this.leaseOf(s, clusterLeaseMs) - nowMono;
      if (left > 0 && (next === undefined || left < next)) next = left;
    }
    return next;
  }
}
