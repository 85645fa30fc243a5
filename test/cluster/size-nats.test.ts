// Issue 17, item 1 and acceptance 1: large writes over a real nats-server never wedge commit.
// Every message the leader sends fits the server's max payload (append batches split by bytes);
// a command too large to replicate is refused at the door, naming the limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../helpers/cli.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { type NatsProcessCluster, natsProcessCluster, sizedValue } from '../helpers/natsProcessCluster.ts';

const NAMES = ['s1', 's2', 's3'];

interface Outcome {
  acked: Map<string, string>;
  refused: string[];
}

/** `count` puts all in flight at once, spread over the members (followers forward to the leader) */
async function concurrentPuts(c: NatsProcessCluster, via: string[], count: number, size: (i: number) => number, tag: string, timeoutMs: number): Promise<Outcome> {
  const acked = new Map<string, string>();
  const refused: string[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const key = `${tag}${String(i).padStart(4, '0')}`;
      const value = sizedValue(size(i), key);
      try {
        await c.ask(via[i % via.length]!, 'propose', { command: { op: 'put', key, value } }, timeoutMs);
        acked.set(key, value);
      } catch (err) {
        refused.push(`${key}: ${(err as Error).message}`);
      }
    }),
  );
  return { acked, refused };
}

// the report's bursts, scaled to the max payload: at 1 MiB, 16 puts of 120 KB, then 64 puts of 24 KB in flight
for (const { label, maxPayload } of [
  { label: 'default max payload (1 MiB)', maxPayload: undefined },
  { label: 'max payload 64 KiB', maxPayload: 64 * 1024 },
]) {
  describe(`large writes over real NATS, ${label}`, { skip: natsServerSkipReason() }, () => {
    let c: NatsProcessCluster;
    const payload = maxPayload ?? 1024 * 1024;
    const scaled = (bytes: number) => Math.floor((bytes * payload) / (1024 * 1024));
    before(async () => {
      c = await natsProcessCluster({ prefix: maxPayload ? 'sz64' : 'sz1m', maxPayload });
      await c.startSeeded(NAMES);
    });
    after(async () => {
      await c?.close();
    });

    it('bursts of concurrent puts, together far over one message, all commit and commit goes on (item 1: they wedged)', async () => {
      const leader = await c.leader();
      // all to the leader at once, so that they are batched together: its appends must be split by bytes
      for (const [count, size, tag] of [
        [16, scaled(120_000), 'a'],
        [64, scaled(24_000), 'b'],
      ] as const) {
        const { acked, refused } = await concurrentPuts(c, [leader], count, () => size, tag, 20_000);
        assert.deepEqual(refused, [], `every put of the burst of ${count} × ${size} bytes is acknowledged`);
        assert.equal(acked.size, count);
      }
      // commit goes on: a small write after them is acknowledged too, and a follower serves the values
      await c.ask(NAMES[0]!, 'propose', { command: { op: 'put', key: 'after', value: 1 } }, 20_000);
      const follower = NAMES.find((n) => n !== leader)!;
      const got = (await c.ask(follower, 'read', { query: { op: 'get', key: 'b0063' } }, 10_000)) as { value: string };
      assert.equal(got.value.length, scaled(24_000));
    });
  });
}
