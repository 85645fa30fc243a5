// Issue 17 item 5: a follower that forwarded a request to a leader that then vanished fails it as
// soon as it stops following that leader (its election timeout fires, or a new leader is elected):
// OUTCOME_UNKNOWN for a proposal, NO_LEADER for a read or `cluster list` — not UNREACHABLE after
// the whole forward timeout (10 s for proposals and reads, 6 s for admin operations).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import { ConclaveError } from '../../runtime/errors.ts';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { FAST } from '../helpers/inProcessCluster.ts';
import { createIsolatingBus, type IsolatingBus } from '../helpers/isolatingBus.ts';
import { type Bus, type BusMessage, createInProcessBus, type InProcessBus, type InProcessConnectOptions, type SubscribeOptions } from '../../runtime/transport/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

describe('forwarded requests when the leader vanishes (in-process, one node cut off)', () => {
  const tmp = tmpDirs('conclave-forward-lost-');
  let bus: IsolatingBus;
  let root = '';
  const nodes = new Map<string, Controller>();
  before(() => {
    bus = createIsolatingBus();
    root = tmp.make();
  });
  after(async () => {
    for (const c of nodes.values()) await c.stop();
    await bus.close();
    tmp.cleanup();
  });

  async function settled<T>(p: Promise<T>): Promise<{ value?: T; error?: ConclaveError; ms: number }> {
    const t0 = Date.now();
    try {
      return { value: await p, ms: Date.now() - t0 };
    } catch (err) {
      assert.ok(err instanceof ConclaveError, `expected a ConclaveError, got ${String(err)}`);
      return { error: err, ms: Date.now() - t0 };
    }
  }

  it('a proposal is OUTCOME_UNKNOWN, a read and `cluster list` are NO_LEADER, as soon as the follower stops following the old leader', async () => {
    for (const n of ['f1', 'f2', 'f3']) {
      nodes.set(n, await startController({ name: n, dataDir: `${root}/${n}`, transport: { bus }, raft: FAST }));
    }
    const f1 = nodes.get('f1')!;
    await f1.init();
    await waitUntil(async () => f1.status().role === 'leader', { what: 'f1 leads' });
    for (const n of ['f2', 'f3']) await f1.cluster.add(n);
    await f1.propose({ op: 'put', key: 'k', value: 1 });
    const f2 = nodes.get('f2')!;
    await waitUntil(async () => f2.status().leader === 'f1' && f2.status().appliedIndex >= f1.status().commitIndex, { what: 'f2 follows f1' });

    // cut the leader off and, in the same tick, send f2 requests it must forward to f1
    bus.isolate('f1');
    const client = bus.connect('test-client');
    const sender = { name: 'test-client', nodeId: null, clusterId: null };
    const listReply = client.request('conclave.node.f2.admin', encode(sender, 'cluster.list', {}), { timeoutMs: 30_000 });
    const [put, read, list] = await Promise.all([
      settled(f2.propose({ op: 'put', key: 'k', value: 2 })),
      settled(f2.read({ op: 'get', key: 'k' })),
      settled(listReply.then((m) => decodeReply(m.data))),
    ]);
    console.log(`# after the leader was cut off: put failed in ${put.ms} ms (${put.error?.code}), read in ${read.ms} ms (${read.error?.code}), list in ${list.ms} ms`);
    assert.equal(put.error?.code, 'OUTCOME_UNKNOWN', put.error?.message);
    assert.match(put.error!.message, /may or may not have been applied/);
    assert.equal(read.error?.code, 'NO_LEADER', read.error?.message);
    assert.match(read.error!.message, /^cluster has no leader/);
    const listed = list.value!;
    assert.ok(!listed.ok, 'cluster list must fail while the leader is gone');
    assert.equal(listed.error.code, 'NO_LEADER', listed.error.message);
    assert.match(listed.error.message, /^cluster has no leader/);

    // the two others elect a leader; f2 forwards to it
    await waitUntil(async () => f2.status().leader !== null && f2.status().leader !== 'f1', { what: 'a new leader without f1' });
    await f2.propose({ op: 'put', key: 'k', value: 3 });
    assert.deepEqual(await f2.read({ op: 'get', key: 'k' }), { key: 'k', found: true, value: 3 });

    // a forwarded transfer moves leadership while it is in flight: that is its success, not a lost leader
    const leader = f2.status().leader!;
    const follower = leader === 'f2' ? 'f3' : 'f2';
    const target = follower;
    const t = decodeReply((await client.request(`conclave.node.${follower}.admin`, encode(sender, 'cluster.transfer', { name: target }), { timeoutMs: 30_000 })).data);
    assert.ok(t.ok, JSON.stringify(t));
    await waitUntil(async () => nodes.get(follower)!.status().leader === target, { what: `${target} leads` });
    await client.close();
  });

  it("a forwarded transfer whose old leader's answer is lost still answers transferred, once leadership moved where it was asked to", async () => {
    // the leader's admin answers are dropped (as when they come after the forward's grace period)
    const hub = createInProcessBus();
    const mutedAnswers = new Set<string>();
    const transport = (name: string) => ({
      bus: {
        ...hub,
        connect(_n?: string, opts?: InProcessConnectOptions) {
          const inner = hub.connect(name, opts);
          return Object.assign(Object.create(inner) as Bus, {
            subscribe: (subject: string, handler: (msg: BusMessage) => void, subOpts?: SubscribeOptions) =>
              inner.subscribe(subject, (msg) => handler(mutedAnswers.has(name) && subject.endsWith('.admin') ? { subject: msg.subject, data: msg.data, reply: msg.reply, respond: () => true } : msg), subOpts),
          });
        },
      } as InProcessBus,
    });
    const names = ['t1', 't2', 't3'];
    const started: Controller[] = [];
    try {
      for (const n of names) started.push(await startController({ name: n, dataDir: `${root}/${n}`, transport: transport(n), raft: FAST }));
      const [t1, t2] = started as [Controller, Controller, Controller];
      await t1.init();
      await waitUntil(async () => t1.status().role === 'leader', { what: 't1 leads' });
      for (const n of ['t2', 't3']) await t1.cluster.add(n);
      await waitUntil(async () => t2.status().leader === 't1', { what: 't2 follows t1' });
      mutedAnswers.add('t1');
      const client = hub.connect('test-client');
      const sender = { name: 'test-client', nodeId: null, clusterId: null };
      const t = decodeReply((await client.request('conclave.node.t2.admin', encode(sender, 'cluster.transfer', { name: 't3' }), { timeoutMs: 30_000 })).data);
      assert.ok(t.ok, JSON.stringify(t));
      assert.deepEqual(t.body, { leader: 't3', transferred: true });
      await client.close();
    } finally {
      for (const c of started) await c.stop();
      await hub.close();
    }
  });
});
