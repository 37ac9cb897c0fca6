/**
 * The batched reads of the state table: a key DynamoDB leaves unprocessed round after round must
 * fail the read, never read as "no such item" (a node that never renewed, a group with no record).
 */
import { describe, expect, it } from 'vitest';
import { FailoverError } from '../../shared/base/errors';
import { type BatchGetRound, batchGetAll } from '../../shared/table/reads';

const key = (n: number) => ({ pk: 'CLUSTER#c', sk: `HEARTBEAT#${n}` });

describe('batchGetAll', () => {
  it('retries unprocessed keys and returns every item once they are processed', async () => {
    let calls = 0;
    const round: BatchGetRound = async (keys) => {
      calls++;
      // The first round leaves the second key unprocessed (a throttled partition).
      if (calls === 1) return { items: [{ ...keys[0]!, v: 1 }], unprocessed: [keys[1]!] };
      return { items: keys.map((k) => ({ ...k, v: 1 })), unprocessed: [] };
    };
    const items = await batchGetAll(round, [key(1), key(2)], true);
    expect(items.map((i) => i.sk)).toEqual(['HEARTBEAT#1', 'HEARTBEAT#2']);
    expect(calls).toBe(2);
  });

  it('fails with a retryable THROTTLED error when keys stay unprocessed, instead of answering without them', async () => {
    let calls = 0;
    const round: BatchGetRound = async (keys) => {
      calls++;
      return { items: [], unprocessed: [...keys] };
    };
    const error = await batchGetAll(round, [key(1)], true).catch((e) => e);
    expect(error).toBeInstanceOf(FailoverError);
    expect(error).toMatchObject({ code: 'THROTTLED', retryable: true });
    expect(error.message).toMatch(/1 of 1 keys unprocessed after 5 BatchGetItem rounds/);
    expect(calls).toBe(5);
  });
});
