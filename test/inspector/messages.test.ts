// Raft messages as they flow: the publisher turns the messages a node's raft chart is handed into
// `msg` events (merged per batch, with counts); the page keeps them apart from the events timeline
// and draws them as sequence rows over a window, with node names, merged per 100 ms and sampled
// (the last rows kept, the rest counted) when there are more than fit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assign, createActor, type InspectionEvent, setup } from 'xstate';
import { applyFrame, createModel } from '../../runtime/inspect/page/model.js';
import { messageRows, sampledCounts } from '../../runtime/inspect/page/sequence.js';
import { BATCH_TYPE, inspectBodies, streamSubject, WATCH_TYPE, watchSubject } from '../../runtime/inspect/protocol.ts';
import { attachInspectionPublisher } from '../../runtime/inspect/publisher.ts';
import { createInProcessBus } from '../../runtime/transport/inProcess.ts';
import { decode, encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';

type Msg = { type: string; from: string; to: string; term: number; entries?: unknown[]; granted?: boolean; reject?: boolean };
const role = setup({ types: { events: {} as { type: 'PEER_MESSAGE'; messages: Msg[] } } }).createMachine({
  id: 'raftRole',
  initial: 'follower',
  states: { follower: { on: { PEER_MESSAGE: {} } } },
});

describe('raft messages in the inspection stream', () => {
  it('the messages handed to a raft chart are published as msg events, merged per batch with counts', async () => {
    const hub = createInProcessBus();
    const bus = hub.connect('n2');
    const tool = hub.connect('tool');
    const listeners = new Set<(e: InspectionEvent) => void>();
    const actor = createActor(role, { id: 'raft:n2', inspect: (e) => {
        for (const l of listeners) l(e);
      },
    });
    const controller = {
      name: 'n2',
      prefix: 'tm',
      bus,
      actor,
      status: () => ({ name: 'n2' }),
      onInspection(l: (e: InspectionEvent) => void) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    };
    actor.start();
    const publisher = attachInspectionPublisher(controller);
    const batches: Array<{ events: Array<Record<string, unknown>> }> = [];
    tool.subscribe(streamSubject('tm', 'n2'), (msg) => {
      const d = decode(msg.data, inspectBodies);
      assert.ok(d.ok, 'every message on the stream passes the inspector schema');
      if (d.envelope.type === BATCH_TYPE) batches.push(d.body as (typeof batches)[number]);
    });
    tool.publish(watchSubject('tm'), encode({ name: 'inspector', nodeId: null, clusterId: null }, WATCH_TYPE, { watcher: 'w', ttlMs: 5000 }));
    await waitUntil(() => publisher.watching, { what: 'the publisher watched' });

    const append: Msg = { type: 'append', from: 'id-1', to: 'id-2', term: 3 };
    for (let i = 0; i < 5; i++) actor.send({ type: 'PEER_MESSAGE', messages: [append, { ...append, type: 'heartbeat' }] });
    actor.send({ type: 'PEER_MESSAGE', messages: [{ type: 'vote', from: 'id-3', to: 'id-2', term: 4 }] });
    const msgs = () => batches.flatMap((b) => b.events.filter((e) => e.k === 'msg'));
    await waitUntil(() => msgs().reduce((n, e) => n + (e.n as number), 0) === 11, { what: 'all 11 messages counted', context: () => JSON.stringify(msgs()) });
    const summary = msgs()
      .map((e) => `${e.from}→${e.to} ${e.type} term ${e.term} ×${e.n} (${e.a})`)
      .sort();
    assert.deepEqual(summary, ['id-1→id-2 append term 3 ×5 (raft:n2)', 'id-1→id-2 heartbeat term 3 ×5 (raft:n2)', 'id-3→id-2 vote term 4 ×1 (raft:n2)']);

    // an append round and a vote: entries carried, replies' outcomes (merged only with the same outcome)
    batches.length = 0;
    const entry = { index: 1, term: 4, data: null };
    actor.send({ type: 'PEER_MESSAGE', messages: [{ type: 'append', from: 'id-1', to: 'id-2', term: 4, entries: [entry, entry, entry] }] });
    actor.send({ type: 'PEER_MESSAGE', messages: [{ type: 'append', from: 'id-1', to: 'id-2', term: 4, entries: [entry] }] });
    actor.send({
      type: 'PEER_MESSAGE',
      messages: [
        { type: 'append-response', from: 'id-3', to: 'id-2', term: 4, reject: false },
        { type: 'append-response', from: 'id-3', to: 'id-2', term: 4, reject: true },
        { type: 'vote-response', from: 'id-3', to: 'id-2', term: 4, granted: true },
        { type: 'pre-vote-response', from: 'id-1', to: 'id-2', term: 5, granted: false },
      ],
    });
    await waitUntil(() => msgs().reduce((n, e) => n + (e.n as number), 0) === 6, { what: 'the round counted', context: () => JSON.stringify(msgs()) });
    const round = msgs()
      .map((e) => `${e.from}→${e.to} ${e.type} ×${e.n}${e.entries !== undefined ? ` entries ${e.entries}` : ''}${e.ok !== undefined ? ` ok ${e.ok}` : ''}`)
      .sort();
    assert.deepEqual(round, [
      'id-1→id-2 append ×2 entries 4',
      'id-1→id-2 pre-vote-response ×1 ok false',
      'id-3→id-2 append-response ×1 ok false',
      'id-3→id-2 append-response ×1 ok true',
      'id-3→id-2 vote-response ×1 ok true',
    ]);
    publisher.stop();
    await hub.close();
  });
});

describe('snapshot chunks in the inspection stream', () => {
  // the bootstrap chart of a joining node: the offer named who sends the state, progress reports come as they arrive
  const bootstrap = setup({
    types: { context: {} as { name: string; contactedBy: { by: string } | null }, events: {} as { type: 'JOIN_PROGRESS'; chunks: number; bytes: number } | { type: 'FORGET' } },
    actions: { forgetContact: assign({ contactedBy: null }) },
  }).createMachine({
    id: 'bootstrap',
    context: { name: 'n4', contactedBy: { by: 'n1' } },
    initial: 'joining',
    states: { joining: { on: { JOIN_PROGRESS: {}, FORGET: { actions: 'forgetContact' } } } },
  });

  it("a joining node's progress reports become snapshot-chunk messages from the node that offered: chunks and bytes since the last report", async () => {
    const hub = createInProcessBus();
    const bus = hub.connect('n4');
    const tool = hub.connect('tool');
    const listeners = new Set<(e: InspectionEvent) => void>();
    const actor = createActor(bootstrap, { id: 'bootstrap:n4', inspect: (e) => {
        for (const l of listeners) l(e);
      },
    });
    const controller = {
      name: 'n4',
      prefix: 'tc',
      bus,
      actor,
      status: () => ({ name: 'n4' }),
      onInspection(l: (e: InspectionEvent) => void) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    };
    actor.start();
    const publisher = attachInspectionPublisher(controller);
    const msgs: Array<Record<string, unknown>> = [];
    tool.subscribe(streamSubject('tc', 'n4'), (msg) => {
      const d = decode(msg.data, inspectBodies);
      assert.ok(d.ok, 'every message on the stream passes the inspector schema');
      if (d.envelope.type === BATCH_TYPE) msgs.push(...(d.body as { events: Array<Record<string, unknown>> }).events.filter((e) => e.k === 'msg'));
    });
    tool.publish(watchSubject('tc'), encode({ name: 'inspector', nodeId: null, clusterId: null }, WATCH_TYPE, { watcher: 'w', ttlMs: 5000 }));
    await waitUntil(() => publisher.watching, { what: 'the publisher watched' });

    actor.send({ type: 'JOIN_PROGRESS', chunks: 2, bytes: 1000 });
    // the node adopted the cluster's state: its chart forgets the contact, the chunks still come from n1
    actor.send({ type: 'FORGET' });
    actor.send({ type: 'JOIN_PROGRESS', chunks: 5, bytes: 2500 });
    actor.send({ type: 'JOIN_PROGRESS', chunks: 5, bytes: 2500 }); // nothing new: no message
    const total = () => msgs.reduce((n, e) => n + (e.n as number), 0);
    await waitUntil(() => total() === 5, { what: 'five chunks counted', context: () => JSON.stringify(msgs) });
    // a second transfer (the join tried again) counts from zero
    actor.send({ type: 'JOIN_PROGRESS', chunks: 1, bytes: 300 });
    await waitUntil(() => total() === 6, { what: 'the new transfer counted', context: () => JSON.stringify(msgs) });
    assert.deepEqual([...new Set(msgs.map((e) => `${e.a}: ${e.from}→${e.to} ${e.type}`))], ['bootstrap:n4: n1→n4 snapshot-chunk']);
    assert.equal(
      msgs.reduce((sum, e) => sum + (e.bytes as number), 0),
      2800,
      'bytes since the last report, summed',
    );

    // on the page: one row from the node that sent the state, with the size
    const model = createModel();
    applyFrame(model, { kind: 'batch', t: Date.now(), node: 'n4', dropped: 0, events: msgs.map((e) => ({ ...e, t: 1000 })) });
    const { rows } = messageRows(model.messages, (id) => id, 0, 2000);
    assert.deepEqual(
      rows.map((r) => `${r.from}→${r.to} ${r.label}`),
      ['n1→n4 snapshot-chunk ×6 · 2.7 kB'],
    );
    publisher.stop();
    await hub.close();
  });
});

describe('raft messages on the page', () => {
  const status = (name: string, nodeId: string) => ({ name, nodeId, reachable: true, clusterId: 'C', role: 'follower', term: 3 });
  const msg = (t: number, from: string, type: string, n = 1, term = 3) => ({ k: 'msg', t, a: 'raft:n2', type, from, to: 'id-2', term, n });

  it('kept apart from the events timeline; rows name the nodes, merge per 100 ms and keep to the window', () => {
    const model = createModel();
    applyFrame(model, { kind: 'cluster', t: 900, nodes: [status('n1', 'id-1'), status('n2', 'id-2'), status('n3', 'id-3')] });
    applyFrame(model, { kind: 'batch', t: 1000, node: 'n2', dropped: 0, events: [msg(1000, 'id-1', 'append', 4), msg(1010, 'id-3', 'pre-vote')] });
    applyFrame(model, { kind: 'batch', t: 1050, node: 'n2', dropped: 0, events: [msg(1050, 'id-1', 'append', 2)] });
    applyFrame(model, { kind: 'batch', t: 1150, node: 'n2', dropped: 0, events: [msg(1150, 'id-1', 'append'), msg(1160, 'id-9', 'vote', 1, 4)] });
    applyFrame(model, { kind: 'batch', t: 5000, node: 'n2', dropped: 0, events: [msg(5000, 'id-1', 'heartbeat')] });
    assert.equal(model.messages.length, 6);
    assert.ok(!model.events.some((e) => e.k === 'msg'), 'not in the events timeline');

    const nameOf = (id: string) => ({ 'id-1': 'n1', 'id-2': 'n2', 'id-3': 'n3' })[id] ?? `?${id}`;
    const { rows, total, omitted } = messageRows(model.messages, nameOf, 900, 2000);
    assert.deepEqual(
      rows.map((r) => `${r.from}→${r.to} ${r.label}`),
      ['n1→n2 append ×6 · term 3', 'n3→n2 pre-vote · term 3', 'n1→n2 append · term 3', '?id-9→n2 vote · term 4'],
    );
    assert.equal(total, 9);
    assert.equal(omitted, 0);
  });

  it('more rows than fit: the last 60 are drawn, the earlier ones counted', () => {
    const model = createModel();
    const events = Array.from({ length: 100 }, (_, i) => msg(1000 + i * 100, 'id-1', 'append'));
    applyFrame(model, { kind: 'batch', t: 20_000, node: 'n2', dropped: 0, events });
    const { rows, total, omitted } = messageRows(model.messages, (id) => id, 0, 30_000);
    assert.equal(rows.length, 60);
    assert.equal(omitted, 40);
    assert.equal(total, 100);
    assert.equal(rows[0]!.t, 1000 + 40 * 100, 'the latest rows are kept');
  });

  it('an append round and a vote read as such: entries carried, replies granted or rejected', () => {
    const model = createModel();
    applyFrame(model, {
      kind: 'batch',
      t: 1100,
      node: 'n2',
      dropped: 0,
      events: [
        { ...msg(1000, 'id-1', 'vote', 1, 5) },
        { ...msg(1010, 'id-1', 'append', 2, 5), entries: 5 },
        { ...msg(1020, 'id-1', 'append', 1, 5), entries: 1 },
        { ...msg(1030, 'id-3', 'vote-response', 1, 5), ok: true },
        { ...msg(1040, 'id-3', 'append-response', 1, 5), ok: false },
        { ...msg(1050, 'id-3', 'pre-vote-response', 1, 5), ok: false },
        { ...msg(1060, 'id-1', 'heartbeat', 9, 5) },
      ],
    });
    const names = (id: string) => id.replace('id-', 'n');
    const { rows, total } = messageRows(model.messages, names, 0, 2000);
    assert.deepEqual(
      rows.map((r) => `${r.from}→${r.to} ${r.label}`),
      [
        'n1→n2 vote · term 5',
        'n1→n2 append ×3 · 6 entries · term 5',
        'n3→n2 vote-response ✓ granted · term 5',
        'n3→n2 append-response ✗ rejected · term 5',
        'n3→n2 pre-vote-response ✗ refused · term 5',
        'n1→n2 heartbeat ×9 · term 5',
      ],
    );
    assert.equal(total, 16);
    const quiet = messageRows(model.messages, names, 0, 2000, (type) => type === 'heartbeat');
    assert.equal(quiet.total, 7, 'heartbeats left out when asked');
    assert.ok(!quiet.rows.some((r) => r.type === 'heartbeat'));
  });

  it('a busy window is sampled with counts: "n1→n2 append ×N in this window, M shown"', () => {
    const model = createModel();
    // 100 ms buckets, 100 of them: n1→n2 appends ×3 and n3→n2 append-responses ×1 in each
    const events = Array.from({ length: 100 }, (_, i) => [{ ...msg(1000 + i * 100, 'id-1', 'append', 3), entries: 3 }, { ...msg(1000 + i * 100 + 1, 'id-3', 'append-response'), ok: true }]).flat();
    applyFrame(model, { kind: 'batch', t: 20_000, node: 'n2', dropped: 0, events });
    const names = (id: string) => id.replace('id-', 'n');
    const { rows, omitted, counts, total } = messageRows(model.messages, names, 0, 30_000);
    assert.equal(rows.length, 60);
    assert.equal(omitted, 140);
    assert.equal(total, 400);
    assert.deepEqual(counts, [
      { from: 'n1', to: 'n2', type: 'append', n: 300, shown: 90 },
      { from: 'n3', to: 'n2', type: 'append-response', n: 100, shown: 30 },
    ]);
    assert.equal(sampledCounts(counts), 'n1→n2 append ×300 in this window, 90 shown; n3→n2 append-response ×100 in this window, 30 shown');
  });
});
