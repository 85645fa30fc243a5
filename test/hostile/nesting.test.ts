// Issue 17 item 3: one valid write killed all three nodes — a `kv put` of a JSON value nested
// 3,000 deep passed the size check, committed, and the store's encoder overflowed the stack on every
// node. Whatever the leader accepts must encode and decode everywhere: a value nesting more than
// MAX_VALUE_DEPTH (64) levels is refused at every door (propose — local, admin or forwarded —
// and initFrom), and no message nesting more than MAX_MESSAGE_DEPTH is even parsed.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Controller } from '../../runtime/controller.ts';
import { ConclaveError } from '../../runtime/errors.ts';
import { readInitSource } from '../../runtime/state/initSource.ts';
import { buildSnapshotFile } from '../../runtime/state/initSource.ts';
import { decode, decodeReply, encode } from '../../runtime/wire/codec.ts';
import { MAX_MESSAGE_DEPTH, MAX_VALUE_DEPTH, nestsDeeperThan, textNestsDeeperThan } from '../../runtime/wire/limits.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

/** `levels` arrays nested in one another around 1 */
function nested(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

const refusedForDepth = (err: unknown) =>
  err instanceof ConclaveError && err.code === 'BAD_REQUEST' && err.exitCode === 2 && new RegExp(`more than ${MAX_VALUE_DEPTH} levels deep`).test(err.message);

describe('nesting limits (issue 17 item 3)', () => {
  const cluster = inProcessCluster('conclave-hostile-nesting-');

  it('the limits count levels of arrays and objects, in values and in JSON text, without recursing', () => {
    assert.equal(nestsDeeperThan(nested(MAX_VALUE_DEPTH), MAX_VALUE_DEPTH), false);
    assert.equal(nestsDeeperThan(nested(MAX_VALUE_DEPTH + 1), MAX_VALUE_DEPTH), true);
    assert.equal(nestsDeeperThan(nested(100_000), MAX_VALUE_DEPTH), true, 'far deeper than any recursion could go');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(nestsDeeperThan(cyclic, MAX_VALUE_DEPTH), false, 'a cycle ends the walk (JSON refuses it later)');
    assert.equal(textNestsDeeperThan(JSON.stringify(nested(10)), 10), false);
    assert.equal(textNestsDeeperThan(JSON.stringify(nested(11)), 10), true);
    assert.equal(textNestsDeeperThan(JSON.stringify({ s: '[[[[[[[[[[[["\\' }), 2), false, 'brackets inside strings do not count');
  });

  it('decoding refuses a message nested deeper than the limit before parsing it (peer and admin subjects, and replies)', () => {
    const deep = encode({ name: 'x', nodeId: null, clusterId: null }, 'ping', nested(3000));
    const decoded = decode(deep, { ping: { safeParse: () => assert.fail('never validated') } as never });
    assert.equal(decoded.ok, false);
    assert.equal(!decoded.ok && decoded.failure, 'too-deep');
    assert.match(!decoded.ok ? decoded.detail : '', new RegExp(`more than ${MAX_MESSAGE_DEPTH} levels`));
    const reply = decodeReply(new TextEncoder().encode(JSON.stringify({ ok: true, body: nested(3000) })));
    assert.equal(reply.ok, false);
  });

  it('initFrom: a seed or snapshot file with a value nested too deep is refused, naming the key and the limit', async () => {
    const seed = join(cluster.root, 'deep-seed.json');
    await writeFile(seed, JSON.stringify({ kv: { fine: nested(MAX_VALUE_DEPTH), deep: nested(3000) } }));
    await assert.rejects(readInitSource(seed), (err: Error & { code?: string }) => err.code === 'BAD_INIT_SOURCE' && /value of key "deep" nests .* more than 64 levels deep/.test(err.message));
    const snapshot = join(cluster.root, 'deep-snapshot.json');
    const file = buildSnapshotFile({ clusterId: null, index: 1, term: 1, pairs: [['deep', nested(100)]] });
    await writeFile(snapshot, JSON.stringify(file));
    await assert.rejects(readInitSource(snapshot), (err: Error & { code?: string }) => err.code === 'BAD_INIT_SOURCE' && /more than 64 levels deep/.test(err.message));
    const fine = join(cluster.root, 'fine-seed.json');
    await writeFile(fine, JSON.stringify({ kv: { fine: nested(MAX_VALUE_DEPTH) } }));
    assert.equal((await readInitSource(fine)).pairs.length, 1);
  });

  describe('proposals', () => {
    let leader: Controller;
    let follower: Controller;
    before(async () => {
      leader = await cluster.start('n1');
      follower = await cluster.start('n2');
      await leader.init();
      await leader.waitForLeader(30_000);
      await leader.cluster.add('n2');
    });

    it('a kv put nested 3,000 deep is refused to its proposer (locally and forwarded) and never committed; the cluster keeps committing', async () => {
      const commit = leader.status().commitIndex;
      await assert.rejects(leader.propose({ op: 'put', key: 'deep', value: nested(3000) }), refusedForDepth);
      await assert.rejects(follower.propose({ op: 'put', key: 'deep', value: nested(3000) }), refusedForDepth);
      await assert.rejects(leader.propose({ op: 'cas', key: 'deep', expected: nested(MAX_VALUE_DEPTH + 1), value: 1 }), refusedForDepth);
      assert.equal(leader.status().commitIndex, commit, 'nothing was appended');
      await leader.propose({ op: 'put', key: 'edge', value: nested(MAX_VALUE_DEPTH) });
      await follower.propose({ op: 'put', key: 'after', value: 'ok' });
      assert.deepEqual(await follower.read({ op: 'get', key: 'edge' }), { key: 'edge', found: true, value: nested(MAX_VALUE_DEPTH) });
      assert.equal(leader.status().phase, 'member');
      assert.equal(follower.status().phase, 'member');
    });

    it("a host state's command nested too deep is refused the same way", async () => {
      const state = {
        value: 0,
        apply() {
          return ++this.value;
        },
        query() {
          return this.value;
        },
        snapshot() {
          return this.value;
        },
        restore(s: unknown) {
          this.value = typeof s === 'number' ? s : 0;
        },
      };
      const host = await cluster.start('host1', { state });
      await host.init();
      await host.waitForLeader(30_000);
      await assert.rejects(host.propose(nested(3000)), refusedForDepth);
      assert.equal(await host.propose(nested(MAX_VALUE_DEPTH)), 1);
    });
  });
});
