/**
 * Spot interruption notices and rebalance recommendations, polled from IMDSv2 every 5 s:
 *   /latest/meta-data/spot/instance-action                 404 = none; {"action","time"}
 *   /latest/meta-data/events/recommendations/rebalance     404 = none; {"noticeTime"}
 * Reported in the heartbeat (a change, written at once) so that reconcile moves the groups away
 * before the instance is reclaimed, even if the EventBridge event is late or lost.
 */
import type { Imds } from './imds';
import type { Logger } from './log';
import { errorText } from './log';

/** How often IMDS is asked for Spot notices (AWS recommends every 5 s). */
export const SPOT_POLL_MS = 5000;

/** Polls IMDSv2 for Spot interruption notices and rebalance recommendations. */
export class SpotWatcher {
  spot: { action: string; time: string } | undefined;
  rebalance: { noticeTime: string } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private failing = false;

  constructor(
    private readonly imds: Imds,
    private readonly log: Logger,
    private readonly onChange: () => void,
    private readonly intervalMs = SPOT_POLL_MS,
  ) {}

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const [action, rebalance] = await Promise.all([
        this.imds.get('/latest/meta-data/spot/instance-action'),
        this.imds.get('/latest/meta-data/events/recommendations/rebalance'),
      ]);
      let changed = false;
      const spot = action ? parseJson<{ action?: string; time?: string }>(action) : undefined;
      const nextSpot = spot?.action
        ? { action: String(spot.action), time: String(spot.time ?? '') }
        : undefined;
      if (JSON.stringify(nextSpot) !== JSON.stringify(this.spot)) {
        this.spot = nextSpot;
        changed = true;
        if (nextSpot) this.log.warn(`Spot interruption notice: ${nextSpot.action} at ${nextSpot.time}`);
      }
      const reb = rebalance ? parseJson<{ noticeTime?: string }>(rebalance) : undefined;
      const nextReb = reb?.noticeTime ? { noticeTime: String(reb.noticeTime) } : undefined;
      if (JSON.stringify(nextReb) !== JSON.stringify(this.rebalance)) {
        this.rebalance = nextReb;
        changed = true;
        if (nextReb) this.log.warn(`EC2 rebalance recommendation (notice time ${nextReb.noticeTime})`);
      }
      if (this.failing) this.log.info('IMDS answers again');
      this.failing = false;
      if (changed) this.onChange();
    } catch (e) {
      // Keep what was last seen: a notice does not go away because IMDS hiccuped.
      if (!this.failing) this.log.warn(`cannot poll IMDS for Spot notices: ${errorText(e)}`);
      this.failing = true;
    } finally {
      this.polling = false;
    }
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
