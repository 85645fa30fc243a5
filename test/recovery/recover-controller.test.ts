// Recovery end to end on the in-process bus: lose quorum, `recoverStore` the survivor, restart it
// (it elects itself, keeps cluster id and data, generation 2), a blank node joins and adopts
// generation 2 with the state; a stale old member is refused at the recovered end (refusal
// reported) and told, and goes to phase failed naming both generations; wiped, it can be added.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { waitFor } from 'xstate';
import { type Controller, startController } from '../../runtime/controller.ts';
import type { Refusal } from '../../runtime/inspect/protocol.ts';
import { recoverStore } from '../../runtime/store/index.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-recover-ctrl-');
after(() => tmp.cleanup());
const raft = { heartbeatMs: 10, electionTimeoutMs: 100 };

it('recover a survivor, re-add blank nodes, refuse the stale member until wiped', async () => {
  const dir = tmp.make();
  const bus = createInProcessBus();
  const start = (name: string) => startController({ name, dataDir: join(dir, name), transport: { bus }, raft });
  const running = new Set<Controller>();
  try {
    const [a, b, c] = [await start('a'), await start('b'), await start('c')];
    for (const x of [a, b, c]) running.add(x);
    const clusterId = await a.init();
    await a.waitForLeader();
    await a.cluster.add('b');
    await a.cluster.add('c');
    for (let i = 0; i < 20; i++) await a.propose({ op: 'put', key: `k${i}`, value: { i } });

    // lose quorum for good: everyone stops
    for (const x of [a, b, c]) {
      await x.stop();
      running.delete(x);
    }
    const r = await recoverStore({ dataDir: join(dir, 'a') });
    assert.equal(r.clusterId, clusterId);
    assert.equal(r.generation, 2);
    assert.equal(r.keys, 20);

    const a2 = await start('a');
    running.add(a2);
    const refusals: Refusal[] = [];
    a2.onRefusal((x) => refusals.push(x));
    assert.equal(await a2.waitForLeader(), 'a');
    assert.equal(a2.status().clusterId, clusterId);
    assert.deepEqual(a2.status().members.map((m) => m.name), ['a']);
    assert.deepEqual(await a2.read({ op: 'get', key: 'k7' }), { key: 'k7', found: true, value: { i: 7 } });

    // a blank node joins and adopts the generation together with the state
    const d = await start('d');
    running.add(d);
    await a2.cluster.add('d');
    assert.equal(d.store.identity().clusterId, clusterId);
    assert.equal(d.store.identity().generation, 2);
    assert.deepEqual(await d.read({ op: 'get', key: 'k19' }, { stale: true }), { key: 'k19', found: true, value: { i: 19 } });

    // the stale old member b: refused at a (reported) and told: b fails naming both generations
    const b2 = await start('b');
    running.add(b2);
    const failed = await waitFor(b2.actor, (s) => s.value === 'failed', { timeout: 10_000 });
    assert.equal(failed.context.error?.code, 'STALE_GENERATION');
    assert.match(failed.context.error!.message, new RegExp(`b is a stale member of cluster ${clusterId} \\(its store is generation 1, but the cluster was recovered to generation 2`));
    assert.match(failed.context.error!.message, /wipe its data dir and add it again/);
    assert.equal(b2.status().phase, 'failed');
    const seen = refusals.find((x) => x.reason === 'stale-generation' && x.from === 'b');
    assert.ok(seen, `a reported the stale member: ${JSON.stringify(refusals)}`);
    assert.equal(seen.remoteClusterId, clusterId);
    assert.deepEqual(a2.status().members.map((m) => m.name).sort(), ['a', 'd'], 'b is not a member');

    // the other stale member c, offered membership by the recovered cluster: refused at both ends
    const c2 = await start('c');
    running.add(c2);
    await assert.rejects(a2.cluster.add('c'), (err: Error & { code?: string }) => err.code === 'JOIN_REFUSED' && /generation 1.*generation 2/.test(err.message));
    assert.deepEqual(a2.status().members.map((m) => m.name).sort(), ['a', 'd']);

    // wiped, b is a new node and can be added
    await b2.stop();
    running.delete(b2);
    rmSync(join(dir, 'b'), { recursive: true, force: true });
    const b3 = await start('b');
    running.add(b3);
    await a2.cluster.add('b');
    assert.equal(b3.store.identity().generation, 2);
    assert.deepEqual(await b3.read({ op: 'get', key: 'k3' }), { key: 'k3', found: true, value: { i: 3 } });
    assert.deepEqual(a2.status().members.filter((m) => m.voter).map((m) => m.name).sort(), ['a', 'b', 'd']);
  } finally {
    for (const x of running) await x.stop();
    await bus.close();
  }
});
