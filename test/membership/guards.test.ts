// The guards around membership on the in-process bus with real stores: protocol versions named at
// both ends of a join, a node removed while it was down learns it from a leader that did not remove
// it, a non-member that keeps talking to the leader is reported after the grace period, and a member
// without a leader warns (warnWhenLeaderlessFor).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { ConclaveError } from '../../runtime/errors.ts';
import { decodeReply, encode, encodeReply, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

describe('membership guards', () => {
  const cluster = inProcessCluster('conclave-guards-');
  const { start, stop, refusals } = cluster;

  function logLines(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    return { logger: pino({ level: 'info', base: undefined }, sink), lines };
  }

  it('a join offer in an incompatible protocol version is refused naming both versions, at both ends, and records nothing', async () => {
    const blank = await start('pv1');
    const conn = cluster.bus.connect('old-leader');
    const sender = { name: 'oldleader', nodeId: uuidv7(), clusterId: uuidv7() };
    try {
      // the envelope is readable but the offer speaks version 9
      const r1 = decodeReply((await conn.request('conclave.node.pv1.admin', encode(sender, 'join.offer', { protocolVersion: 9 }), { timeoutMs: 5000 })).data);
      assert.equal(r1.ok, false);
      assert.equal(!r1.ok && r1.error.code, 'PROTOCOL_VERSION');
      assert.match(!r1.ok ? r1.error.message : '', new RegExp(`protocol version 9 but pv1 speaks ${MIN_PROTOCOL_VERSION}\\.\\.${PROTOCOL_VERSION}`));
      // the envelope itself is of a version this node cannot read
      const raw = new TextEncoder().encode(JSON.stringify({ v: 9, from: 'oldleader', nodeId: sender.nodeId, clusterId: sender.clusterId, type: 'join.offer', body: {} }));
      const r2 = decodeReply((await conn.request('conclave.node.pv1.admin', raw, { timeoutMs: 5000 })).data);
      assert.equal(!r2.ok && r2.error.code, 'PROTOCOL_VERSION');
      assert.match(!r2.ok ? r2.error.message : '', new RegExp(`protocol version 9 is not supported \\(this node speaks ${MIN_PROTOCOL_VERSION}\\.\\.${PROTOCOL_VERSION}\\): .*upgrade this node to a release that speaks 9`));
    } finally {
      await conn.close();
    }
    assert.equal(blank.status().phase, 'uninitialized');
    // nothing was recorded: the node may still be initialized (no contact from a cluster it refused)
    assert.ok(await blank.init());

    // the leader's end: a node that answers in a version the leader cannot speak
    const leader = await start('pv2');
    await leader.init();
    await leader.waitForLeader();
    const seen = refusals(leader);
    const old = cluster.bus.connect('old-node');
    old.subscribe('conclave.node.oldnode.admin', (m) => {
      m.respond(encodeReply({ ok: false, error: { code: 'PROTOCOL_VERSION', message: 'request refused: protocol version 1 is not supported (this node speaks 0..0)' } }));
    });
    try {
      await assert.rejects(leader.cluster.add('oldnode'), (e: unknown) => {
        assert.ok(e instanceof ConclaveError);
        assert.equal(e.code, 'JOIN_REFUSED');
        assert.match(e.message, new RegExp(`oldnode does not speak cluster version ${PROTOCOL_VERSION} of cluster .*speaks 0\\.\\.0.*upgrade oldnode to a release that speaks ${PROTOCOL_VERSION}`));
        return true;
      });
    } finally {
      await old.close();
    }
    assert.ok(seen.some((r) => /speaks 0\.\.0/.test(r.message)), 'reported at the leader');
    assert.deepEqual(leader.status().members.map((m) => m.name), ['pv2']);
  });

  it('a node removed while it was down is told by a leader that did not remove it; a talking non-member is reported', async () => {
    const a = await start('rm1');
    const b = await start('rm2');
    let c = await start('rm3');
    await a.init();
    await a.waitForLeader();
    await a.cluster.add('rm2');
    await a.cluster.add('rm3');
    await stop(c);
    await a.cluster.remove('rm3');
    // a new leader, which never ran the removal itself
    await a.cluster.transferLeadership('rm2');
    await waitUntil(() => b.status().role === 'leader', { what: 'rm2 leads' });
    c = await start('rm3'); // the same data dir
    await waitUntil(() => c.status().phase === 'removed', { what: 'rm3 learns it was removed', timeoutMs: 15_000 });

    // a node outside the configuration that keeps sending raft traffic to the leader is reported after the grace period
    const seen = refusals(b);
    const clusterId = b.status().clusterId!;
    const stray = cluster.bus.connect('stray');
    const sender = { name: 'stray', nodeId: uuidv7(), clusterId };
    const timer = setInterval(() => stray.publish('conclave.node.rm2.peer', encode(sender, 'ping', {})), 100);
    try {
      await waitUntil(() => seen.some((r) => r.reason === 'non-member'), { what: 'non-member reported', timeoutMs: 15_000 });
    } finally {
      clearInterval(timer);
      await stray.close();
    }
    const report = seen.find((r) => r.reason === 'non-member')!;
    assert.match(report.message, /stray .* is not a member of cluster .*cluster add stray --via rm2/);
    assert.deepEqual(b.status().members.map((m) => m.name).sort(), ['rm1', 'rm2']);
  });

  it('two blank nodes with initFrom listing each other, started at the same instant, form ONE cluster', async () => {
    const seed = `${cluster.root}/seed.json`;
    writeFileSync(seed, JSON.stringify({ kv: { from: 'seed' } }));
    const opts = { initFrom: seed, initialMembers: ['race1', 'race2'] };
    const [r1, r2] = await Promise.all([start('race2', opts), start('race1', opts)]);
    await waitUntil(() => r1.status().phase === 'member' && r2.status().phase === 'member', { what: 'both members', timeoutMs: 20_000 });
    assert.equal(r1.status().clusterId, r2.status().clusterId);
    await waitUntil(() => r2.status().members.filter((m) => m.voter).length === 2, { what: 'two voters', timeoutMs: 20_000 });
    // the smallest name initialized; the data came once
    assert.deepEqual(await r1.read({ op: 'get', key: 'from' }), { key: 'from', found: true, value: 'seed' });
  });

  it('initialMembers travel in the configuration: a later leader adds the ones still missing', async () => {
    const b1 = await start('im1', { initialMembers: ['im2', 'im3', 'im4'] });
    await b1.init();
    await b1.waitForLeader();
    const b2 = await start('im2');
    await start('im3');
    await waitUntil(() => b1.status().members.filter((m) => m.voter).length === 3, { what: 'im2, im3 voters', timeoutMs: 20_000 });
    await b1.cluster.transferLeadership('im2');
    await waitUntil(() => b2.status().role === 'leader', { what: 'im2 leads' });
    await stop(b1);
    // im2 never had initialMembers configured: it carries on from the replicated configuration
    await start('im4');
    await waitUntil(() => b2.status().members.some((m) => m.name === 'im4' && m.voter), { what: 'im4 added by im2', timeoutMs: 20_000 });
    // once added and promoted, a removed initial member is not added back
    await b2.cluster.remove('im4');
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(!b2.status().members.some((m) => m.name === 'im4'), 'im4 stays removed');
  });

  it('removing the leader hands leadership over first; the only voter cannot be removed', async () => {
    const l1 = await start('rl1');
    const l2 = await start('rl2');
    const l3 = await start('rl3');
    await l1.init();
    await l1.waitForLeader();
    await assert.rejects(l1.cluster.remove('rl1'), /only voter of cluster/);
    await l1.cluster.add('rl2');
    await l1.cluster.add('rl3');
    await l1.propose({ op: 'put', key: 'k', value: 1 });
    const out = await l1.cluster.remove('rl1');
    assert.equal(out.outcome, 'removed');
    await waitUntil(() => l1.status().phase === 'removed', { what: 'rl1 removed' });
    await waitUntil(() => [l2, l3].some((c) => c.status().role === 'leader'), { what: 'a new leader' });
    assert.deepEqual(l2.status().members.map((m) => m.name).sort(), ['rl2', 'rl3']);
    assert.deepEqual(await l3.read({ op: 'get', key: 'k' }), { key: 'k', found: true, value: 1 });
  });

  it('a member without a leader warns after warnWhenLeaderlessFor, and again periodically', async () => {
    const { logger, lines } = logLines();
    const a = await start('hl1', { logger, warnWhenLeaderlessForMs: 300 });
    const b = await start('hl2');
    const c = await start('hl3');
    await a.init();
    await a.waitForLeader();
    await a.cluster.add('hl2');
    await a.cluster.add('hl3');
    assert.equal(lines.filter((l) => /^no leader for/.test(String(l.msg))).length, 0, 'no warning while there is a leader');
    await stop(b);
    await stop(c);
    // repeated while it lasts; once the others' silence exceeds the reachability window they are named
    const namesBoth = (l: Record<string, unknown>) => /^no leader for .*unreachable members: (hl2, hl3|hl3, hl2) /.test(String(l.msg));
    await waitUntil(() => lines.some(namesBoth), { what: 'a leaderless warning naming the unreachable members', timeoutMs: 10_000 });
    const warnings = lines.filter((l) => /^no leader for/.test(String(l.msg)));
    assert.ok(warnings.length >= 2, 'warned more than once');
    const warning = lines.find(namesBoth)!;
    assert.equal(warning.level, 40);
    assert.equal(warning.node, 'hl1');
  });
});
