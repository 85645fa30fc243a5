// A leader that is stopped hands leadership to another voter before it lets go (actors/leadership.ts):
// its stop waits, on the member's own role change rather than a poll, until it no longer leads. So by
// the time `stop()` resolves, the voter it chose has already started the next term; with no hand-over,
// the others would still sit in the old term until an election timeout ran out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

describe('stopping the leader of three', () => {
  const cluster = inProcessCluster('conclave-handover-');

  it('has handed leadership over by the time stop() resolves', async () => {
    const c1 = await cluster.start('h1');
    await c1.init();
    await c1.waitForLeader();
    const c2 = await cluster.start('h2');
    await c1.cluster.add('h2');
    const c3 = await cluster.start('h3');
    await c1.cluster.add('h3');
    await c1.propose({ op: 'put', key: 'before', value: 'stop' });
    const term = c1.status().term;
    assert.equal(c1.status().role, 'leader');

    await cluster.stop(c1);

    const others = [c2, c3].map((c) => ({ name: c.name, term: c.status().term, role: c.status().role }));
    assert.ok(
      others.some((o) => o.term > term),
      `when the old leader's stop resolved, a voter it handed over to had begun term ${term + 1}: ${JSON.stringify(others)}`,
    );
    const leader = await c2.waitForLeader();
    assert.ok(leader === 'h2' || leader === 'h3', `a remaining voter leads (${leader})`);
    const newLeader = leader === 'h2' ? c2 : c3;
    assert.deepEqual(await newLeader.read({ op: 'get', key: 'before' }), { key: 'before', found: true, value: 'stop' });
  });
});
