import type { Route53Client } from '@aws-sdk/client-route-53';
import { describe, expect, it } from 'vitest';
import { TargetBatcher } from '../../controller/resources/batcher';
import { SharedDescribeCache } from '../../controller/resources/describe-cache';
import { createDnsDriver } from '../../controller/resources/dns';
import { FreshReads, GroupCommit } from '../../shared/base/coalesce';
import { parseClusterConfig } from '../../shared/config/load';

const tick = () => new Promise((r) => setImmediate(r));

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('FreshReads', () => {
  it('shares a load between callers of one tick, and never a load that started before a caller asked', async () => {
    const reads = new FreshReads();
    const gates: { resolve: (v: number) => void }[] = [];
    let started = 0;
    const load = () => {
      started++;
      const d = deferred<number>();
      gates.push(d);
      return d.promise;
    };
    const a = reads.read('k', load);
    const b = reads.read('k', load);
    await tick();
    expect(started).toBe(1);
    // c asks while the first load is in flight: it must wait for a load that starts after it.
    const c = reads.read('k', load);
    const d = reads.read('k', load);
    gates[0]!.resolve(1);
    expect(await a).toBe(1);
    expect(await b).toBe(1);
    await tick();
    expect(started).toBe(2);
    gates[1]!.resolve(2);
    expect(await c).toBe(2);
    expect(await d).toBe(2);
    expect(reads.loads).toBe(2);
    expect(reads.calls).toBe(4);
  });

  it('passes a failed load to its callers only; the next caller loads again', async () => {
    const reads = new FreshReads();
    await expect(reads.read('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await reads.read('k', async () => 3)).toBe(3);
  });
});

describe('GroupCommit', () => {
  it('sends the first operation at once, gathers the rest, and never puts one key twice in a batch', async () => {
    const batches: string[][] = [];
    const gates: (() => void)[] = [];
    const commit = new GroupCommit<string, string>(
      async (ops) => {
        batches.push(ops);
        await new Promise<void>((r) => gates.push(r));
        return ops.map((o) => ({ ok: true, value: `done ${o}` }));
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const first = commit.submit('a', 'a1');
    await tick();
    const rest = [commit.submit('b', 'b1'), commit.submit('a', 'a2'), commit.submit('c', 'c1')];
    gates.shift()!();
    expect(await first).toBe('done a1');
    await tick();
    expect(batches[1]).toEqual(['b1', 'a2', 'c1']);
    gates.shift()!();
    expect(await Promise.all(rest)).toEqual(['done b1', 'done a2', 'done c1']);

    // Same key twice in one tick: the second waits for the first's batch to end.
    const x = commit.submit('k', 'k1');
    const y = commit.submit('k', 'k2');
    await tick();
    expect(batches.at(-1)).toEqual(['k1']);
    gates.shift()!();
    await x;
    await tick();
    expect(batches.at(-1)).toEqual(['k2']);
    gates.shift()!();
    expect(await y).toBe('done k2');
  });

  it('fails one operation alone when the batch says so', async () => {
    const commit = new GroupCommit<number, number>(
      async (ops) =>
        ops.map((o) => (o % 2 ? { ok: false, error: new Error(`odd ${o}`) } : { ok: true, value: o })),
      { maxBatch: 10, maxInFlight: 2 },
    );
    const out = await Promise.allSettled([1, 2, 3, 4].map((n) => commit.submit(String(n), n)));
    expect(out.map((o) => o.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
  });
});

describe('TargetBatcher', () => {
  const fence = async () => undefined;
  it('leaves out an item whose deadline passed, and aborts the batch when any item deadline passes', async () => {
    const seen: { target: string; batch: string[]; signal: AbortSignal }[] = [];
    const gates: (() => void)[] = [];
    const batcher = new TargetBatcher<string, string>(
      async (target, batch, signal) => {
        seen.push({ target, batch, signal });
        await new Promise<void>((r) => gates.push(r));
        return batch.map((b) => ({ ok: true, value: `${target}:${b}` }));
      },
      { maxBatch: 100 },
    );
    const first = batcher.submit('zone', 'r0', 'r0', new AbortController().signal, fence);
    await tick();
    const late = new AbortController();
    const kept = new AbortController();
    const gone = batcher.submit('zone', 'r1', 'r1', late.signal, fence);
    const stays = batcher.submit('zone', 'r2', 'r2', kept.signal, fence);
    const elsewhere = batcher.submit('other', 'r3', 'r3', new AbortController().signal, fence);
    await tick();
    // Another target has a batch of its own, in flight at the same time.
    expect(seen.map((s) => s.target)).toEqual(['zone', 'other']);
    late.abort(new Error('deadline of r1'));
    gates.shift()!();
    expect(await first).toBe('zone:r0');
    await tick();
    expect(seen[2]?.batch).toEqual(['r2']);
    kept.abort(new Error('deadline of r2'));
    expect(seen[2]?.signal.aborted).toBe(true);
    gates.shift()!();
    gates.shift()!();
    await expect(gone).rejects.toThrow('deadline of r1');
    expect(await stays).toBe('zone:r2');
    expect(await elsewhere).toBe('other:r3');
    await expect(batcher.submit('zone', 'r4', 'r4', late.signal, fence)).rejects.toThrow('deadline of r1');
  });

  it('fences an item right before its batch is sent, not when it is queued, and leaves out one whose fence fails', async () => {
    const events: string[] = [];
    const gates: (() => void)[] = [];
    const batcher = new TargetBatcher<string, string>(
      async (_, batch) => {
        events.push(`send ${batch.join(',')}`);
        await new Promise<void>((r) => gates.push(r));
        return batch.map((b) => ({ ok: true, value: b }));
      },
      { maxBatch: 100 },
    );
    const fenceOf =
      (name: string, fails = false) =>
      async () => {
        events.push(`fence ${name}`);
        if (fails) throw new Error(`lock of ${name} too short`);
      };
    const signal = new AbortController().signal;
    const first = batcher.submit('zone', 'a', 'a', signal, fenceOf('a'));
    await tick();
    const b = batcher.submit('zone', 'b', 'b', signal, fenceOf('b'));
    const c = batcher.submit('zone', 'c', 'c', signal, fenceOf('c', true));
    await tick();
    // b and c wait for a's batch: not fenced yet (a fence only covers a call that starts at once).
    expect(events).toEqual(['fence a', 'send a']);
    gates.shift()!();
    await first;
    await tick();
    await tick();
    expect(events).toEqual(['fence a', 'send a', 'fence b', 'fence c', 'send b']);
    gates.shift()!();
    expect(await b).toBe('b');
    await expect(c).rejects.toThrow('lock of c too short');
  });

  it("checks each item's lock again once every fence of the batch is done: a slow fence of one item holds the others' calls back", async () => {
    const sent: string[][] = [];
    const gates: (() => void)[] = [];
    const batcher = new TargetBatcher<string, string>(
      async (_, batch) => {
        sent.push(batch);
        if (batch[0] === 'first') await new Promise<void>((r) => gates.push(r));
        return batch.map((b) => ({ ok: true, value: b }));
      },
      { maxBatch: 100 },
    );
    const signal = new AbortController().signal;
    // A lock with little time left: enough when its fence passed, not after waiting for the others.
    let now = 0;
    const lockCheck = (name: string, until: number) => () => {
      if (now > until) throw new Error(`lock of ${name} would not outlast the call`);
    };
    let releaseSlow!: () => void;
    const slowFence = () => new Promise<void>((r) => (releaseSlow = r));
    const gate = batcher.submit('zone', 'first', 'first', signal, async () => undefined);
    await tick();
    const short = batcher.submit(
      'zone',
      'short',
      'short',
      signal,
      async () => undefined,
      lockCheck('short', 5),
    );
    const slow = batcher.submit('zone', 'slow', 'slow', signal, slowFence, lockCheck('slow', 1_000));
    gates.shift()!();
    expect(await gate).toBe('first');
    await tick();
    now = 50; // the slow fence took 50 ms
    releaseSlow();
    expect(await slow).toBe('slow');
    await expect(short).rejects.toThrow('lock of short would not outlast the call');
    expect(sent).toEqual([['first'], ['slow']]);
  });
});

describe('dns driver batches', () => {
  const config = parseClusterConfig(
    {
      cluster: 'c',
      region: 'us-east-1',
      nodes: [
        { name: 'node1', instanceId: 'i-1', eni: 'eni-1', az: 'us-east-1a', privateIp: '10.0.1.10' },
        { name: 'node2', instanceId: 'i-2', eni: 'eni-2', az: 'us-east-1b', privateIp: '10.0.2.10' },
      ],
      groups: ['a', 'b', 'bad', 'd'].map((g) => ({
        name: g,
        nodes: ['node1', 'node2'],
        resources: [
          { type: 'dns' as const, name: `${g}-dns`, hostedZoneId: 'Z1', recordName: `${g}.x.internal.` },
        ],
      })),
    },
    'unit',
  );

  it('sends a batch Route 53 refuses as a whole again change by change: only the bad one fails', async () => {
    const changes: string[][] = [];
    const route53 = {
      send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = command.constructor.name;
        if (name === 'ListResourceRecordSetsCommand') return { ResourceRecordSets: [], IsTruncated: false };
        const names = (
          command.input.ChangeBatch as { Changes: { ResourceRecordSet: { Name: string } }[] }
        ).Changes.map((c) => c.ResourceRecordSet.Name);
        changes.push(names);
        if (names.some((n) => n.startsWith('bad.')))
          throw Object.assign(new Error('RRSet bad.x.internal. is not permitted'), {
            name: 'InvalidChangeBatch',
          });
        return { ChangeInfo: { Id: `C${changes.length}`, Status: 'PENDING' } };
      },
    } as unknown as Route53Client;
    const dns = createDnsDriver(route53);
    const reads = new FreshReads();
    const fenced: string[] = [];
    const node = config.nodes[1]!;
    const activate = (g: string) =>
      dns.activate({
        cluster: 'c',
        group: g,
        epoch: 2,
        holder: 'h',
        beforeMutation: async () => {
          fenced.push(g);
        },
        signal: new AbortController().signal,
        cache: new SharedDescribeCache(reads),
        resource: config.groups.find((x) => x.name === g)!.resources[0]!,
        node,
        config,
      });
    const out = await Promise.allSettled(['a', 'b', 'bad', 'd'].map(activate));
    expect(out.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((out[2] as PromiseRejectedResult).reason.code).toBe('DNS_CHANGE_REJECTED');
    expect(fenced.sort()).toEqual(['a', 'b', 'bad', 'd']);
    // One batch of the four, refused; then each alone.
    expect(changes[0]).toHaveLength(4);
    expect(changes.slice(1).every((c) => c.length === 1)).toBe(true);

    // Again, but d's lock no longer outlasts a call by the time the refused batch is re-sent one
    // change at a time: d is left out, never sent on its own.
    changes.length = 0;
    const late = await Promise.allSettled(
      ['a', 'b', 'bad', 'd'].map((g) =>
        dns.activate({
          cluster: 'c',
          group: g,
          epoch: 3,
          holder: 'h',
          beforeMutation: async () => undefined,
          assertMayStart: () => {
            if (g === 'd' && changes.length > 0) throw new Error('lock of d would not outlast the call');
          },
          signal: new AbortController().signal,
          cache: new SharedDescribeCache(reads),
          resource: config.groups.find((x) => x.name === g)!.resources[0]!,
          node: config.nodes[0]!,
          config,
        }),
      ),
    );
    expect(late.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(String((late[3] as PromiseRejectedResult).reason)).toMatch(/lock of d would not outlast the call/);
    expect(changes.flat().filter((n) => n.startsWith('d.'))).toHaveLength(1); // in the refused batch only
  });
});
