// A host-supplied replicated state on the in-process bus with real LMDB stores: every committed
// command applied on every node in log order, results to the proposer, reads through query(),
// durable through the deferred flush (one snapshot() per flush), restored on restart, carried by
// raft snapshots to new members; option validation, KV/host mismatch, events, typed errors.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  ApplyFailedError,
  BadRequestError,
  ConclaveError,
  ConfigError,
  type ControllerEvents,
  NotAMemberError,
  type ReplicatedState,
  StateMismatchError,
  UsageError,
} from 'conclave';
import { adminCall } from '../../runtime/admin.ts';
import { waitUntil } from '../helpers/cli.ts';
import { FAST, inProcessCluster } from '../helpers/inProcessCluster.ts';

type Command = { add: number } | { fail: string };

/** a counter that remembers the order it applied commands in */
class Counter implements ReplicatedState<Command, { total: number }, 'total' | 'order', unknown, { total: number; order: number[] }> {
  total = 0;
  order: number[] = [];
  snapshots = 0;
  restores: Array<unknown> = [];
  apply(command: Command, meta: { index: number; term: number }): { total: number } {
    if ('fail' in command) throw new Error(command.fail);
    this.total += command.add;
    this.order.push(meta.index);
    return { total: this.total };
  }
  query(q: 'total' | 'order'): unknown {
    if (q === 'order') return this.order;
    return this.total;
  }
  snapshot() {
    this.snapshots++;
    return { total: this.total, order: this.order };
  }
  restore(snapshot: { total: number; order: number[] } | null): void {
    this.restores.push(snapshot);
    this.total = snapshot?.total ?? 0;
    this.order = [...(snapshot?.order ?? [])];
  }
}

describe('a host replicated state', () => {
  const cluster = inProcessCluster('conclave-host-state-');
  const { start, stop } = cluster;

  it('refuses a state option without the four functions (ConfigError, exit 2)', async () => {
    for (const bad of [null, 42, {}, { apply() {}, query() {}, snapshot() {} }]) {
      await assert.rejects(
        start('bad1', { state: bad as never }),
        (err: unknown) => err instanceof ConfigError && err instanceof UsageError && err instanceof ConclaveError && err.code === 'CONFIG' && err.exitCode === 2 && /state/.test(err.message),
      );
    }
  });

  it('applies every command on every node in log order; results to the proposer; reads via query(); events fire', async () => {
    const states = { h1: new Counter(), h2: new Counter(), h3: new Counter() };
    const [a, b, c] = [await start('h1', { state: states.h1 }), await start('h2', { state: states.h2 }), await start('h3', { state: states.h3 })];
    const phases: string[] = [];
    const leaders: Array<ControllerEvents['leaderChanged']> = [];
    const memberships: number[] = [];
    const appliedOnC: number[] = [];
    a.on('phaseChanged', (e) => phases.push(e.phase));
    a.on('leaderChanged', (e) => leaders.push(e));
    a.on('membershipChanged', (e) => memberships.push(e.members.length));
    const off = c.on('applied', (e) => appliedOnC.push(e.index));
    assert.throws(() => a.on('nope' as never, () => {}), (err: unknown) => err instanceof UsageError && err.code === 'USAGE');

    await a.init();
    await a.waitForLeader();
    await a.cluster.add('h2');
    await a.cluster.add('h3');
    await waitUntil(() => c.status().leader === 'h1', { what: 'h3 knows the leader' });
    assert.deepEqual(phases, ['bootstrapping', 'member']);
    assert.equal(leaders[0]?.leader, 'h1');
    assert.ok(memberships.includes(3), `membershipChanged reported 3 members (saw ${memberships})`);

    // from a follower: forwarded to the leader, the result comes back
    assert.deepEqual(await b.propose({ add: 5 }), { total: 5 });
    const results = await Promise.all(Array.from({ length: 40 }, () => c.propose({ add: 1 })));
    assert.deepEqual(results.map((r) => (r as { total: number }).total).sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => 6 + i));
    assert.equal(await c.read('total'), 45, 'linearizable read through query()');
    await waitUntil(() => states.h2.total === 45 && states.h3.total === 45, { what: 'followers applied everything' });
    assert.equal(await b.read('total', { stale: true }), 45);
    // the same commands in the same (log) order everywhere
    assert.deepEqual(states.h2.order, states.h1.order);
    assert.deepEqual(states.h3.order, states.h1.order);
    assert.deepEqual(appliedOnC.slice(-41), states.h3.order.slice(-41), 'applied events in log order');
    off();
    await a.propose({ add: 0 });
    await waitUntil(() => states.h3.order.length === 42, { what: 'h3 applied the last one' });
    assert.equal(appliedOnC.length, 41, 'no event after unsubscribing');
    // snapshot() is taken once per flush, not once per command
    assert.ok(states.h1.snapshots < states.h1.order.length / 2, `snapshot() calls ${states.h1.snapshots} for ${states.h1.order.length} commands`);

    // a throwing apply is answered the same way on every node; the state goes on
    await assert.rejects(b.propose({ fail: 'no such account' }), (err: unknown) => err instanceof ApplyFailedError && err.code === 'APPLY_FAILED' && /no such account/.test(err.message));
    assert.deepEqual(await a.propose({ add: 1 }), { total: 46 });
    // a command without a JSON form is refused before it is proposed
    await assert.rejects(a.propose(undefined), (err: unknown) => err instanceof BadRequestError);
    await assert.rejects(a.propose({ n: 10n } as never), (err: unknown) => err instanceof BadRequestError && /BigInt/.test(err.message));

    // restart: restored from the flushed snapshot, then the log replays from the applied index
    await stop(b);
    const again = new Counter();
    const b2 = await start('h2', { state: again });
    assert.equal(again.restores.length, 1, 'restored once at start');
    await waitUntil(async () => again.total === 46, { what: 'h2 caught up after restart' });
    assert.deepEqual(again.order, states.h1.order);
    assert.equal(await b2.read('total'), 46);
  });

  it('a new member receives the host state in a raft snapshot after compaction', async () => {
    const s1 = new Counter();
    const a = await start('s1', { state: s1, raft: { ...FAST, snapshotEvery: 10 } });
    await a.init();
    await a.waitForLeader();
    for (let i = 1; i <= 35; i++) await a.propose({ add: i });
    await waitUntil(() => a.store.firstIndex() > 1, { what: 'the leader compacted its log' });
    const s2 = new Counter();
    const b = await start('s2', { state: s2, raft: { ...FAST, snapshotEvery: 10 } });
    await a.cluster.add('s2');
    await waitUntil(() => s2.total === s1.total, { what: 's2 holds the same state' });
    assert.equal(s2.total, (35 * 36) / 2);
    assert.ok(
      s2.restores.some((r) => r !== null && (r as { total: number }).total > 0),
      'the new member restored a non-empty snapshot (not a log replay from empty)',
    );
    assert.deepEqual(s2.order, s1.order);
    assert.equal(await b.read('total', { stale: true }), s1.total);
  });

  it('a data dir keeps its kind: KV data is not opened with a host state, nor a host state as a KV', async () => {
    const kv = await start('k1');
    await kv.init();
    await kv.waitForLeader();
    await kv.propose({ op: 'put', key: 'a', value: 1 });
    // the KV refuses the reserved keys a host state is stored under
    await assert.rejects(kv.propose({ op: 'put', key: '\u0000x', value: 1 }), (err: unknown) => err instanceof BadRequestError && /reserved/.test(err.message));
    await stop(kv);
    await assert.rejects(start('k1', { state: new Counter() }), (err: unknown) => err instanceof StateMismatchError && err.exitCode === 2 && /key-value/.test(err.message));

    const host = await start('k2', { state: new Counter() });
    await host.init();
    await stop(host);
    // even before any command: the marker is written at initialization
    await assert.rejects(start('k2'), (err: unknown) => err instanceof StateMismatchError && /host application/.test(err.message));
  });

  it('initFrom a key-value seed is refused for a host state, and nothing is written', async () => {
    const seed = `${cluster.root}/seed.json`;
    writeFileSync(seed, JSON.stringify({ kv: { a: 1 } }));
    await assert.rejects(start('seeded1', { state: new Counter(), initFrom: seed }), (err: unknown) => err instanceof StateMismatchError && /initFrom/.test(err.message));
    const blank = await start('seeded1');
    assert.equal(blank.status().phase, 'uninitialized', 'the store was left blank');
  });

  it('an error decoded from an admin reply is rebuilt as its class', async () => {
    await start('blank9');
    const conn = cluster.bus.connect('client9');
    try {
      await assert.rejects(
        adminCall(conn, 'conclave', 'blank9', { name: 'cli', nodeId: null, clusterId: null }, 'read', { query: { op: 'get', key: 'a' } }, 2000),
        (err: unknown) => err instanceof NotAMemberError && err.code === 'NOT_A_MEMBER' && err.exitCode === 1 && err.name === 'NotAMemberError',
      );
    } finally {
      await conn.close();
    }
  });
});
