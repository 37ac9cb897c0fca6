/**
 * Runs one agent-side monitor on its own schedule and keeps its reported status.
 *
 * - every `intervalMs` one probe, cut off at `timeoutMs` (default 80 % of the interval); a probe
 *   still running at the next interval counts as a failure and no second one is started;
 * - `retries` consecutive failures are tolerated (the status stays as it was, the count is shown),
 *   the next one turns the status to `error`; one success turns it back to `ok`. So a dead process
 *   is reported within interval x (retries + 1) of its death: up to one interval until the first
 *   failing probe, then `retries` more;
 * - `timing: active` monitors (default when tied to a resource) run only while the group runs here
 *   and report `unknown` otherwise; `always` ones run on every node of the group;
 * - failures within `startWaitMs` of the group starting here (or of the agent starting, for
 *   `always` monitors) are not counted;
 * - a change of status calls `onChange` at once: the agent writes a heartbeat right away instead of
 *   waiting for the next periodic one, so reconcile reacts through the stream within seconds.
 */
import type { MonitorReport, MonitorStatus } from '../../shared/core/model';
import type { Clock } from '../clock';
import type { Logger } from '../log';
import { errorText } from '../log';
import type { Probe, ProbeResult } from './probe';

export interface MonitorSpec {
  name: string;
  type: string;
  group: string;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  timing: 'always' | 'active';
  startWaitMs: number;
}

export interface MonitorContext {
  clock: Clock;
  log: Logger;
  /** Monotonic time since which `group` runs here, or undefined when it does not. */
  activeSince(group: string): number | undefined;
  /** Monotonic time the agent started (start wait of `always` monitors). */
  startedMono: number;
  onChange(): void;
}

export function defaultTimeoutMs(intervalMs: number): number {
  return Math.max(50, Math.floor(intervalMs * 0.8));
}

export class MonitorRunner {
  private status: MonitorStatus = 'unknown';
  private detail = 'not checked yet';
  private failures = 0;
  private since: number;
  private inFlight: Promise<ProbeResult> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly spec: MonitorSpec,
    private readonly probe: Probe,
    private readonly ctx: MonitorContext,
  ) {
    this.since = ctx.clock.wall();
  }

  start(): void {
    // A small spread so that many monitors with the same interval do not fire in the same tick.
    this.timer = setTimeout(
      () => this.loop(),
      Math.floor(Math.random() * Math.min(200, this.spec.intervalMs)),
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  report(): MonitorReport {
    return { status: this.status, detail: this.detail, failures: this.failures, since: this.since };
  }

  private loop(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.loop(), this.spec.intervalMs);
    void this.runOnce();
  }

  /** One scheduled check (exported for tests through the class). */
  async runOnce(): Promise<void> {
    const { spec, ctx } = this;
    const activeSince = ctx.activeSince(spec.group);
    if (spec.timing === 'active' && activeSince === undefined) {
      this.failures = 0;
      this.set('unknown', `inactive: group ${spec.group} does not run on this node`);
      return;
    }
    if (this.inFlight) {
      this.failed({ ok: false, detail: `previous check still running after ${spec.timeoutMs} ms` });
      return;
    }
    const startRef = spec.timing === 'active' ? activeSince! : ctx.startedMono;
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ProbeResult>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve({ ok: false, detail: `no result within ${spec.timeoutMs} ms` });
      }, spec.timeoutMs);
    });
    const probing = this.probe(ac.signal, spec.timeoutMs).catch(
      (e): ProbeResult => ({ ok: false, detail: errorText(e) }),
    );
    this.inFlight = probing;
    void probing.finally(() => {
      if (this.inFlight === probing) this.inFlight = undefined;
    });
    const result = await Promise.race([probing, timeout]);
    clearTimeout(timer);
    if (this.stopped) return;
    if (result.ok) {
      this.failures = 0;
      this.set('ok', result.detail);
      return;
    }
    if (ctx.clock.mono() - startRef < spec.startWaitMs) {
      // Within the start wait: not counted, not reported as an error.
      this.detail = `start wait (${spec.startWaitMs} ms): ${result.detail}`;
      return;
    }
    this.failed(result);
  }

  private failed(result: ProbeResult): void {
    this.failures++;
    if (this.failures > this.spec.retries) {
      this.set('error', result.detail);
    } else {
      this.detail = `${result.detail} (failure ${this.failures} of ${this.spec.retries} tolerated)`;
    }
  }

  private set(status: MonitorStatus, detail: string): void {
    this.detail = detail;
    if (status === this.status) return;
    const from = this.status;
    this.status = status;
    this.since = this.ctx.clock.wall();
    this.ctx.log.info(`monitor ${this.spec.name}: ${from} -> ${status}`, { group: this.spec.group, detail });
    this.ctx.onChange();
  }
}
