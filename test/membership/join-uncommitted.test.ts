// Issue 17 item 8: a blank node that accepted an offer and took the cluster's state from a leader
// whose learner entry never committed (the leader lost its quorum) is not a member: no committed
// configuration includes it. It reports `joining` (bound to that cluster by the id it adopted with
// the state) — also after a restart — and becomes a member when the add is retried and commits.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import { waitUntil } from '../helpers/cli.ts';
import { createIsolatingBus, type IsolatingBus } from '../helpers/isolatingBus.ts';
import { tmpDirs } from '../helpers/tmp.ts';

// slow enough for the cut-off leader to offer, append the learner entry and send its snapshot before check-quorum deposes it
const RAFT = { heartbeatMs: 20, electionTimeoutMs: 600 };

describe('a node that took state from an add that never committed', () => {
  const tmp = tmpDirs('conclave-join-uncommitted-');
  const nodes = new Map<string, Controller>();
  let bus: IsolatingBus | undefined;
  let root: string | undefined;
  after(async () => {
    for (const c of nodes.values()) await c.stop();
    await bus?.close();
    tmp.cleanup();
  });
  const start = async (name: string) => {
    bus ??= createIsolatingBus();
    root ??= tmp.make();
    const c = await startController({ name, dataDir: `${root}/${name}`, transport: { bus }, raft: RAFT });
    nodes.set(name, c);
    return c;
  };

  it('reports joining, not member, until a committed configuration includes it; a retried add makes it a member', async () => {
    for (const n of ['u1', 'u2', 'u3', 'u4']) await start(n);
    const u1 = nodes.get('u1')!;
    const u4 = nodes.get('u4')!;
    await u1.init();
    await waitUntil(() => u1.status().role === 'leader', { what: 'u1 leads' });
    for (const n of ['u2', 'u3']) await u1.cluster.add(n);
    await u1.propose({ op: 'put', key: 'k', value: 'v' });
    const clusterId = u1.status().clusterId!;

    // the leader loses its quorum but still reaches the blank node: the add is offered and accepted,
    // the learner entry appended and the state sent — and the entry can never commit
    bus!.cut('u1', 'u2');
    bus!.cut('u1', 'u3');
    const add = u1.cluster.add('u4', { timeoutMs: 5000 }).then(
      () => 'added',
      (err: Error) => err.message,
    );
    await waitUntil(() => u4.store.identity().clusterId === clusterId, { what: 'u4 holds the state (and id) u1 sent', timeoutMs: 30_000 });
    console.log(`# the add through the cut-off leader: ${await add}`);
    const newLeader = async () => ['u2', 'u3'].includes(nodes.get('u2')!.status().leader ?? '');
    await waitUntil(newLeader, { what: 'u2 and u3 elect a leader without u1', timeoutMs: 30_000 });
    const s = u4.status();
    console.log(`# u4 after the failed add: phase ${s.phase}, cluster ${s.clusterId}, role ${s.role}`);
    assert.notEqual(s.phase, 'member', 'no committed configuration includes u4');
    assert.equal(s.phase, 'joining');
    const leaderName = nodes.get('u2')!.status().leader!;
    const leader = nodes.get(leaderName)!;
    assert.ok(!leader.status().members.some((m) => m.name === 'u4'), 'the cluster does not list u4');

    // a restart does not make it a member either
    await u4.stop();
    const u4again = await start('u4');
    assert.equal(u4again.status().phase, 'joining');
    assert.equal(u4again.status().clusterId, clusterId);

    // the add is retried through the new leader: it commits, and u4 is a member
    bus!.healAll();
    const retried = await leader.cluster.add('u4');
    assert.equal(retried.outcome, 'added');
    await waitUntil(() => u4again.status().phase === 'member', { what: 'u4 becomes a member', timeoutMs: 30_000 });
    assert.equal(u4again.status().clusterId, clusterId);
    assert.deepEqual(await u4again.read({ op: 'get', key: 'k' }), { key: 'k', found: true, value: 'v' });
  });
});
