/**
 * The agent as a real process against moto: heartbeat rate and shape, following new versions of
 * the cluster definition, watching a silent peer, node discovery through IMDSv2, Spot and rebalance
 * notices, and the errors for an unknown cluster or node.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../shared/core/model';
import {
  AgentProcess as AgentProc,
  type AgentProcess,
  applyConfig,
  createCluster,
  heartbeat,
  removeTempDirs,
  sleep,
  startAgent,
  startImds,
  tempDir,
  waitFor,
} from './support';

const nodes = [
  { name: 'node1', instanceId: 'i-0aaa', az: 'us-east-1a' },
  { name: 'node2', instanceId: 'i-0bbb', az: 'us-east-1b' },
];
const group = {
  name: 'db',
  nodes: ['node1', 'node2'],
  resources: [{ type: 'exec' as const, name: 'app', start: 'true', stop: 'true' }],
};

const agents: AgentProcess[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
});
afterAll(() => removeTempDirs());

/** Samples the item every few ms and keeps every distinct write seen. */
async function sample(read: () => Promise<Heartbeat | undefined>, ms: number): Promise<Heartbeat[]> {
  const seen = new Map<number, Heartbeat>();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const hb = await read();
    if (hb) seen.set(hb.seq, hb);
    await sleep(20);
  }
  return [...seen.values()].sort((a, b) => a.seq - b.seq);
}

describe('agent heartbeats', () => {
  it('renews its lease at the configured rate, in the Heartbeat shape, mostly as periodic writes', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes,
      groups: [group],
    });
    agents.push(await startAgent({ f, node: 'node1', stateDir: tempDir() }));
    const first = await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    await sleep(500); // past the start-up changes
    const start = (await heartbeat(f, 'node1'))!;
    const samples = await sample(() => heartbeat(f, 'node1'), 4000);
    const end = samples[samples.length - 1]!;
    const writes = end.seq - start.seq;
    const seconds = (end.sentAt - start.sentAt) / 1000;
    const rate = writes / seconds;
    const periodic = samples.filter((s) => s.reason === 'periodic').length;
    console.log(
      `heartbeat rate: ${writes} writes in ${seconds.toFixed(2)} s = ${rate.toFixed(2)}/s (configured 4/s at 250 ms); sampled ${samples.length}, periodic ${periodic}`,
    );
    expect(rate).toBeGreaterThan(3.4);
    expect(rate).toBeLessThan(4.6);
    expect(periodic).toBeGreaterThanOrEqual(samples.length - 1);

    // Exactly the Heartbeat contract, written to the node's own item.
    expect(Object.keys(end).sort()).toEqual(
      [
        'agentVersion',
        'cluster',
        'fence',
        'groups',
        'incarnation',
        'isolated',
        'leaseMs',
        'monitors',
        'node',
        'peers',
        'reason',
        'sentAt',
        'seq',
        'state',
        'token',
      ].sort(),
    );
    expect(end).toMatchObject({
      cluster: f.cluster,
      node: 'node1',
      token: `${end.incarnation}/${end.seq}`,
      leaseMs: 1500,
      state: 'running',
      isolated: false,
      groups: { db: { epoch: 0, state: 'stopped' } },
      peers: {},
      monitors: {},
    });
    // No watchdog here: what its silence guarantees is the stop scripts' time (the group's exec timeouts).
    expect(end.fence?.watchdogMs).toBeUndefined();
    expect(end.fence?.maxStopMs).toBeGreaterThanOrEqual(0);
    expect(end.incarnation).toBe(first.incarnation);
    expect(end.agentVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(Math.abs(end.sentAt - Date.now())).toBeLessThan(5000);
  });

  it('follows a new version of the cluster definition without a restart', async () => {
    const server = http.createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const f = await createCluster({
        timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
        nodes,
        groups: [group],
      });
      agents.push(await startAgent({ f, node: 'node1', stateDir: tempDir() }));
      await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
      const applied = Date.now();
      await applyConfig(f, {
        timing: { heartbeatIntervalMs: 250, leaseMs: 2000 },
        nodes,
        groups: [
          {
            ...group,
            monitors: [
              {
                type: 'http',
                name: 'web',
                url: `http://127.0.0.1:${port}/health`,
                expectStatus: 204,
                intervalMs: 300,
                timing: 'always',
              },
            ],
          },
        ],
      });
      const hb = await waitFor(
        'the new monitor and lease in the heartbeat',
        async () => {
          const h = await heartbeat(f, 'node1');
          return h?.monitors.web?.status === 'ok' && h.leaseMs === 2000 ? h : undefined;
        },
        10_000,
      );
      console.log(
        `new definition followed ${Date.now() - applied} ms after apply (refresh every 10 x heartbeat)`,
      );
      expect(hb.monitors.web?.detail).toContain(': 204');
    } finally {
      server.close();
    }
  });

  it('reports a silent peer: silentForMs grows from its first read, and crossing the lease is a change written at once', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes,
      groups: [group],
    });
    agents.push(await startAgent({ f, node: 'node1', stateDir: tempDir() }));
    await waitFor('first heartbeat', () => heartbeat(f, 'node1'), 15_000);
    // node2 renews once and then falls silent.
    const peer: Heartbeat = {
      cluster: f.cluster,
      node: 'node2',
      token: 'dead/7',
      seq: 7,
      incarnation: 'dead',
      sentAt: Date.now(),
      leaseMs: 1500,
      agentVersion: 'test',
      state: 'running',
      reason: 'periodic',
      monitors: {},
      isolated: false,
      groups: {},
      peers: {},
    };
    await f.store.putHeartbeat(peer);
    const written = Date.now();
    const seenAt = await waitFor('node2 in the peers report', async () => {
      const h = await heartbeat(f, 'node1');
      return h?.peers.node2?.token === 'dead/7' ? Date.now() : undefined;
    });
    const expired = await waitFor(
      'a change heartbeat reporting node2 silent for a whole lease',
      async () => {
        const h = await heartbeat(f, 'node1');
        const p = h?.peers.node2;
        return p && p.silentForMs >= 1500 ? { h: h!, at: Date.now() } : undefined;
      },
      5000,
      10,
    );
    // The lease is counted from the agent's first read of the token (after the write, before the
    // test saw it in a report): the expiry must come within the lease of that, plus a write.
    const delay = expired.at - seenAt - 1500;
    console.log(
      `peer silent: seen in a report ${seenAt - written} ms after its last write; its expiry (silentForMs ${expired.h.peers.node2?.silentForMs}, reason ${expired.h.reason}) reported ${expired.at - written - 1500} ms after its lease ended, counted from that write`,
    );
    expect(expired.h.reason).toBe('change');
    // silentForMs never exceeds the real silence: it counts from the first read, after the write.
    expect(expired.h.peers.node2!.silentForMs).toBeLessThanOrEqual(expired.at - written);
    expect(delay).toBeLessThan(500);

    // The token changes: the memory resets.
    await f.store.putHeartbeat({ ...peer, token: 'dead/8', seq: 8, sentAt: Date.now() });
    const fresh = await waitFor('node2 renewed', async () => {
      const h = await heartbeat(f, 'node1');
      return h?.peers.node2?.token === 'dead/8' ? h : undefined;
    });
    expect(fresh.peers.node2!.silentForMs).toBeLessThan(1500);
  });

  it('finds its node from the instance id through IMDSv2 (one token), and reports Spot and rebalance notices at once', async () => {
    // A periodic tick well apart from the notice: the report the test reads must be the one the notice
    // caused, not a later tick that carries it (on a loaded machine a 250 ms tick overwrote it first).
    const heartbeatIntervalMs = 3000;
    const f = await createCluster({
      timing: { heartbeatIntervalMs, leaseMs: 9000 },
      nodes,
      groups: [group],
    });
    const imds = await startImds('i-0bbb');
    try {
      agents.push(
        await startAgent({
          f,
          node: 'node2',
          noNode: true,
          stateDir: tempDir(),
          env: {
            AWS_EC2_METADATA_DISABLED: undefined,
            AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
            FAILOVER_AGENT_SPOT_POLL_MS: '200',
          },
        }),
      );
      const hb = await waitFor('a heartbeat of node2', () => heartbeat(f, 'node2'), 15_000);
      expect(hb.spot).toBeUndefined();
      imds.spot = { action: 'terminate', time: '2030-01-01T00:00:00Z' };
      const noticed = Date.now();
      const spot = await waitFor('the Spot notice', async () => {
        const h = await heartbeat(f, 'node2');
        return h?.spot ? h : undefined;
      });
      const reportedAfter = Date.now() - noticed;
      console.log(
        `Spot notice reported ${reportedAfter} ms after IMDS showed it (poll every 200 ms here, 5 s by default; heartbeat every ${heartbeatIntervalMs} ms)`,
      );
      expect(spot.spot).toEqual(imds.spot);
      expect(spot.reason).toBe('change');
      // At once: not left for the next periodic tick.
      expect(reportedAfter).toBeLessThan(heartbeatIntervalMs);
      imds.rebalance = { noticeTime: '2030-01-01T00:00:00Z' };
      const reb = await waitFor('the rebalance recommendation', async () => {
        const h = await heartbeat(f, 'node2');
        return h?.rebalance ? h : undefined;
      });
      expect(reb.rebalance).toEqual(imds.rebalance);
      await sleep(1000);
      const polls = imds.gets['/latest/meta-data/spot/instance-action'] ?? 0;
      console.log(`IMDS: ${imds.tokenPuts} token request(s) for ${polls} Spot polls`);
      expect(polls).toBeGreaterThanOrEqual(5);
      expect(imds.tokenPuts).toBe(1);
    } finally {
      await imds.close();
    }
  });

  it('names the known nodes and clusters when started with an unknown one', async () => {
    const f = await createCluster({
      timing: { heartbeatIntervalMs: 250, leaseMs: 1500 },
      nodes,
      groups: [group],
    });
    const wrongNode = new AgentProc({ f, node: 'node9', stateDir: tempDir() });
    agents.push(wrongNode);
    expect((await wrongNode.exited).code).toBe(3);
    expect(wrongNode.log()).toMatch(/node node9 is not in cluster .*known nodes: node1, node2/);

    const wrongCluster = new AgentProc({ f: { ...f, cluster: 'nope' }, node: 'node1', stateDir: tempDir() });
    agents.push(wrongCluster);
    expect((await wrongCluster.exited).code).toBe(3);
    expect(wrongCluster.log()).toContain(
      `cluster nope has no definition in table ${f.table}; clusters in this table: ${f.cluster}`,
    );
  });
});
