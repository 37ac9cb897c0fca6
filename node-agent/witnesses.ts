/**
 * Network partition witnesses: targets outside the node (a NAT instance or gateway to ping, an
 * HTTP endpoint answering HEAD with 200, TCP port 443 of the regional endpoint). A round probes
 * all of them in parallel; when every one fails the node reports itself `isolated`, and reconcile
 * never chooses an isolated node and fails over away from an isolated owner. DynamoDB stays the
 * arbiter: a node decides nothing from its peers' silence, only reports what it sees.
 */
import type { WitnessConfig } from '../shared/config/schema';
import type { Logger } from './log';
import { errorText } from './log';
import { httpProbe } from './monitors/http';
import { pingProbe } from './monitors/ping';
import type { Probe } from './monitors/probe';
import { tcpProbe } from './monitors/tcp';

export interface WitnessResult {
  target: string;
  ok: boolean;
  detail?: string;
}

const DEFAULT_WITNESS_TIMEOUT_MS = 1000;

function witnessProbe(w: WitnessConfig, pingCommand?: string): { target: string; probe: Probe } {
  switch (w.type) {
    case 'ping':
      return { target: `ping ${w.host}`, probe: pingProbe(w.host, pingCommand) };
    case 'http':
      return { target: `HEAD ${w.url}`, probe: httpProbe(w.url, 'HEAD', 200) };
    case 'tcp':
      return { target: `tcp ${w.host}:${w.port}`, probe: tcpProbe(w.host, w.port) };
  }
}

/** Probes the witnesses in rounds and keeps `isolated` (all failed in the last round). */
export class Witnesses {
  private results: WitnessResult[] = [];
  private isolatedNow = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly probes: { target: string; probe: Probe; timeoutMs: number }[];

  constructor(
    configs: readonly WitnessConfig[],
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly onChange: () => void,
    pingCommand?: string,
  ) {
    this.probes = configs.map((w) => ({
      ...witnessProbe(w, pingCommand),
      timeoutMs: Math.min(w.timeoutMs ?? DEFAULT_WITNESS_TIMEOUT_MS, intervalMs),
    }));
  }

  get isolated(): boolean {
    return this.isolatedNow;
  }

  report(): WitnessResult[] {
    return this.results;
  }

  start(): void {
    if (this.probes.length === 0) return;
    void this.round();
    this.timer = setInterval(() => void this.round(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      this.results = await Promise.all(
        this.probes.map(async ({ target, probe, timeoutMs }) => {
          const ac = new AbortController();
          const timer = setTimeout(() => ac.abort(), timeoutMs);
          try {
            const r = await probe(ac.signal, timeoutMs);
            return { target, ok: r.ok, ...(r.ok ? {} : { detail: r.detail }) };
          } catch (e) {
            return { target, ok: false, detail: errorText(e) };
          } finally {
            clearTimeout(timer);
          }
        }),
      );
      const isolated = this.results.length > 0 && this.results.every((r) => !r.ok);
      if (isolated !== this.isolatedNow) {
        this.isolatedNow = isolated;
        if (isolated)
          this.log.warn('every witness failed: this node reports itself isolated', {
            witnesses: this.results,
          });
        else this.log.info('a witness answers again: no longer isolated');
        this.onChange();
      }
    } finally {
      this.running = false;
    }
  }
}
