// Membership on the in-process bus with real LMDB stores: the join handshake at both ends, learner
// catch-up by snapshot, promotion, removal, transfer, initialMembers and never-fork.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConclaveError } from '../../runtime/errors.ts';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

describe('membership on the in-process bus', () => {
  const cluster = inProcessCluster('conclave-membership-');
  const { start, stop, refusals } = cluster;

  async function ask(node: string, type: string, body: unknown = {}, timeoutMs = 30_000) {
    const conn = cluster.bus.connect('test-client');
    try {
      const reply = await conn.request(`conclave.node.${node}.admin`, encode({ name: 'cli', nodeId: null, clusterId: null }, type, body), { timeoutMs });
      return decodeReply(reply.data);
    } finally {
      await conn.close();
    }
  }

  it('add two blank nodes through a follower: learners catch up by snapshot, become voters; data and ids survive a restart', async () => {
    const a = await start('a1');
    const b = await start('b1');
    const c = await start('c1');
    const clusterId = await a.init();
    await a.waitForLeader();
    await a.memberRuntime().propose({ op: 'put', key: 'before', value: 1 });

    const added = await a.cluster.add('b1');
    assert.equal(added.outcome, 'added');
    assert.equal(b.phase, 'member');
    assert.equal(b.status().clusterId, clusterId);
    // through a follower (forwarded to the leader), like `cluster add c1 --via b1`
    await waitUntil(() => b.status().leader === 'a1', { what: 'b1 knows the leader' });
    const viaFollower = await ask('b1', 'cluster.add', { name: 'c1' });
    assert.ok(viaFollower.ok, JSON.stringify(viaFollower));
    assert.equal(c.status().clusterId, clusterId);

    const list = await ask('c1', 'cluster.list');
    assert.ok(list.ok);
    const body = list.body as { clusterId: string; leader: string; members: Array<{ name: string; voter: boolean; leader: boolean }> };
    assert.equal(body.clusterId, clusterId);
    assert.equal(body.leader, 'a1');
    assert.deepEqual(body.members.map((m) => [m.name, m.voter, m.leader]).sort(), [['a1', true, true], ['b1', true, false], ['c1', true, false]]);

    // the joined node has the data from before it joined, and what is written after
    await a.memberRuntime().propose({ op: 'put', key: 'after', value: 2 });
    await waitUntil(async () => ((await c.memberRuntime().read({ op: 'get', key: 'after' }, { stale: true })) as { found: boolean }).found, { what: 'c1 applies' });
    assert.deepEqual(await c.memberRuntime().read({ op: 'get', key: 'before' }, { stale: true }), { key: 'before', found: true, value: 1 });

    // re-adding a current member is a no-op success
    assert.equal((await a.cluster.add('c1')).outcome, 'already-member');

    // transfer leadership: to a voter works; unknown name → NOT_FOUND
    const t = await ask('c1', 'cluster.transfer', { name: 'b1' });
    assert.ok(t.ok, JSON.stringify(t));
    await waitUntil(() => a.status().leader === 'b1', { what: 'a1 follows b1' });
    const unknown = await ask('a1', 'cluster.transfer', { name: 'zz9' });
    assert.ok(!unknown.ok && unknown.error.code === 'NOT_FOUND', JSON.stringify(unknown));

    // restart all three: same cluster, same data
    const ids = [a, b, c].map((x) => x.status().nodeId);
    for (const x of [a, b, c]) await stop(x);
    const again = [await start('a1'), await start('b1'), await start('c1')];
    assert.deepEqual(again.map((x) => x.status().nodeId), ids);
    for (const x of again) assert.equal(x.status().clusterId, clusterId);
    const leader = await again[0]!.waitForLeader();
    const l = again.find((x) => x.name === leader)!;
    await waitUntil(() => l.status().role === 'leader', { what: 'leader settled' });
    assert.deepEqual(await l.memberRuntime().read({ op: 'get', key: 'after' }), { key: 'after', found: true, value: 2 });
    for (const x of again) await stop(x);
  });

  it('two clusters: adding a member of one to the other is refused at both ends, naming both ids; nothing changes', async () => {
    const x = await start('x1');
    const y = await start('y1');
    const xId = await x.init();
    const yId = await y.init();
    await x.waitForLeader();
    await y.waitForLeader();
    const atX = refusals(x);
    const atY = refusals(y);
    await assert.rejects(x.cluster.add('y1'), (err: unknown) => {
      assert.ok(err instanceof ConclaveError && err.code === 'JOIN_REFUSED', String(err));
      assert.match(err.message, new RegExp(`${xId}.*${yId}|${yId}.*${xId}`));
      return true;
    });
    assert.equal(atX.length, 1);
    assert.equal(atY.length, 1);
    for (const r of [...atX, ...atY]) {
      assert.ok(r.message.includes(xId) && r.message.includes(yId), r.message);
    }
    assert.deepEqual(x.status().members.map((m) => m.name), ['x1']);
    assert.deepEqual(y.status().members.map((m) => m.name), ['y1']);
    assert.equal(y.status().clusterId, yId);
    await stop(x);
    await stop(y);
  });

  it('a blank node contacted by a cluster refuses init, and can still be added', async () => {
    const p = await start('p1');
    const q = await start('q1', { joinTimeoutMs: 300 });
    const pId = await p.init();
    await p.waitForLeader();
    // the cluster's offer reaches q1 (as when an add is interrupted before the learner is proposed)
    const conn = cluster.bus.connect('fake-leader');
    const reply = await conn.request('conclave.node.q1.admin', encode(p.sender(), 'join.offer', { protocolVersion: 1 }), { timeoutMs: 2000 });
    await conn.close();
    assert.ok(decodeReply(reply.data).ok);
    assert.equal(q.phase, 'joining');
    await waitUntil(() => q.phase === 'uninitialized', { what: 'join times out without state' });
    await assert.rejects(q.init(), (err: unknown) => err instanceof ConclaveError && err.code === 'CONTACTED' && err.message.includes(pId));
    assert.equal((await p.cluster.add('q1')).outcome, 'added');
    assert.equal(q.status().clusterId, pId);
    await stop(p);
    await stop(q);
  });

  it('remove: the node learns it, goes to removed, stays removed after a restart; a non-voter target for transfer is refused', async () => {
    const r1 = await start('r1');
    const r2 = await start('r2');
    const r3 = await start('r3');
    await r1.init();
    await r1.waitForLeader();
    await r1.cluster.add('r2');
    await r1.cluster.add('r3');
    const removed = await ask('r2', 'cluster.remove', { name: 'r3' });
    assert.ok(removed.ok, JSON.stringify(removed));
    await waitUntil(() => r3.phase === 'removed', { what: 'r3 removed' });
    assert.deepEqual(r1.status().members.map((m) => m.name).sort(), ['r1', 'r2']);
    await stop(r3);
    const back = await start('r3');
    assert.equal(back.phase, 'removed');
    // a removed node refuses to be added back by itself or by a cluster
    await assert.rejects(r1.cluster.add('r3'), (err: unknown) => err instanceof ConclaveError && /removed/.test(err.message));
    // (removing the leader itself hands leadership over first: test/membership/guards.test.ts)
    // a learner is not a valid transfer target: clear error
    const r4 = await start('r4');
    await r1.memberRuntime().changeMembership({ type: 'add-learner', member: { name: 'r4', nodeId: r4.status().nodeId } });
    await assert.rejects(r1.cluster.transferLeadership('r4'), (err: unknown) => err instanceof ConclaveError && err.code === 'NOT_A_VOTER' && /learner, not a voter/.test(err.message));
    await stop(r4);
    await stop(back);
    await stop(r1);
    await stop(r2);
  });

  it('initialMembers started later all become voters; a node with initFrom whose initial member is already in a cluster waits to be added', async () => {
    const seed = `${cluster.root}/seed.json`;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(seed, JSON.stringify({ kv: { hello: 'world' } }));
    const m1 = await start('m1', { initFrom: seed, initialMembers: ['m1', 'm2', 'm3'] });
    assert.equal(m1.phase, 'member');
    await new Promise((r) => setTimeout(r, 300));
    const m2 = await start('m2');
    const m3 = await start('m3', { initFrom: seed, initialMembers: ['m1', 'm2', 'm3'] });
    // m3 saw m1 answering as a member: it did not fork a second cluster
    await waitUntil(() => m1.status().members.filter((m) => m.voter).length === 3, { what: 'three voters', timeoutMs: 30_000 });
    assert.equal(m2.status().clusterId, m1.status().clusterId);
    assert.equal(m3.status().clusterId, m1.status().clusterId);
    assert.deepEqual(await m3.memberRuntime().read({ op: 'get', key: 'hello' }, { stale: true }), { key: 'hello', found: true, value: 'world' });
    for (const c of [m1, m2, m3]) await stop(c);
  });
});
