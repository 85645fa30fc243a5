// The inspection stream: published only while watched, batched and bounded, a snapshot for a page
// opened late, refusals as `conclave.refused`; and the inspector's /api/cluster over real controllers.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assign, createActor, type InspectionEvent, setup } from 'xstate';
import { type Controller, startController } from '../../runtime/controller.ts';
import { Inspector } from '../../runtime/inspect/inspector.ts';
import { attachInspectionPublisher } from '../../runtime/inspect/publisher.ts';
import { BATCH_TYPE, inspectBodies, type Refusal, SNAPSHOT_TYPE, streamSubject, WATCH_TYPE, watchSubject } from '../../runtime/inspect/protocol.ts';
import { startInspectorServer } from '../../runtime/inspect/server.ts';
import { createInProcessBus } from '../../runtime/transport/inProcess.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { decode, encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { seedStaticCluster } from '../helpers/staticCluster.ts';

const toggle = setup({
  types: { context: {} as { count: number; big: number[] }, events: {} as { type: 'FLIP' } },
  actions: { count: assign({ count: ({ context }) => context.count + 1 }) },
}).createMachine({
  id: 'toggle',
  context: { count: 0, big: Array.from({ length: 10_000 }, (_, i) => i) },
  initial: 'off',
  states: { off: { on: { FLIP: { target: 'on', actions: 'count' } } }, on: { on: { FLIP: { target: 'off', actions: 'count' } } } },
});

/** A controller as the publisher sees it, with one toggle actor. */
function fakeController(bus: Bus, name = 'f1') {
  const listeners = new Set<(e: InspectionEvent) => void>();
  const refusalListeners = new Set<(r: Refusal) => void>();
  const actor = createActor(toggle, {
    id: `toggle:${name}`,
    inspect: (e) => {
      for (const l of listeners) l(e);
    },
  });
  return {
    name,
    prefix: 'tp',
    bus,
    actor,
    status: () => ({ name, phase: 'member', role: 'follower' }),
    onInspection(l: (e: InspectionEvent) => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    onRefusal(l: (r: Refusal) => void) {
      refusalListeners.add(l);
      return () => refusalListeners.delete(l);
    },
    refuse: (r: Refusal) => {
      for (const l of refusalListeners) l(r);
    },
  };
}

function collect(bus: Bus, subject: string) {
  const got: Array<{ type: string; body: Record<string, unknown> }> = [];
  bus.subscribe(subject, (msg) => {
    const d = decode(msg.data, inspectBodies);
    if (d.ok) got.push({ type: d.envelope.type, body: d.body as Record<string, unknown> });
  });
  return got;
}

describe('inspection publisher', () => {
  it('publishes nothing until watched, then a snapshot and ~50 ms batches with summarized context', async () => {
    const hub = createInProcessBus();
    const bus = hub.connect('f1');
    const tool = hub.connect('tool');
    const ctrl = fakeController(bus);
    ctrl.actor.start();
    const publisher = attachInspectionPublisher(ctrl);
    assert.equal(attachInspectionPublisher(ctrl), publisher, 'attaching twice returns the same publisher');
    const got = collect(tool, streamSubject('tp', 'f1'));
    for (let i = 0; i < 100; i++) ctrl.actor.send({ type: 'FLIP' });
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(got.length, 0, 'nobody watches: nothing on the bus');

    tool.publish(watchSubject('tp'), encode({ name: 'inspector', nodeId: null, clusterId: null }, WATCH_TYPE, { watcher: 'w1', ttlMs: 600 }));
    await waitUntil(() => got.some((g) => g.type === SNAPSHOT_TYPE), { what: 'the snapshot' });
    const snapshotAt = got.findIndex((g) => g.type === SNAPSHOT_TYPE);
    // the 100 FLIPs came in the controller's first seconds: the startup backlog, sent just before the snapshot
    assert.deepEqual(got.slice(0, snapshotAt).map((g) => g.type), [BATCH_TYPE]);
    const snapshotActors = got[snapshotAt]!.body.actors as Array<{ a: string; states: string[]; ctx: Record<string, unknown> }>;
    assert.deepEqual(snapshotActors.map((a) => [a.a, a.states]), [['toggle:f1', ['toggle.off']]]);
    assert.equal(snapshotActors[0]!.ctx.big, '[10000 items]', 'context is summarized, never copied whole');

    for (let i = 0; i < 1000; i++) ctrl.actor.send({ type: 'FLIP' });
    await waitUntil(() => got.slice(snapshotAt).some((g) => g.type === BATCH_TYPE), { what: 'a batch' });
    const batch = got.slice(snapshotAt).find((g) => g.type === BATCH_TYPE)!.body as { events: Array<{ k: string; type?: string; n?: number }>; dropped: number };
    const flips = batch.events.filter((e) => e.k === 'event' && e.type === 'FLIP');
    assert.equal(flips.length, 1, 'identical events within a batch are merged');
    assert.equal(flips[0]!.n, 1000);
    assert.ok(batch.events.length <= 500);

    // still watched (the ttl is short and a loaded machine is slow): the watcher announces itself again
    tool.publish(watchSubject('tp'), encode({ name: 'inspector', nodeId: null, clusterId: null }, WATCH_TYPE, { watcher: 'w1', ttlMs: 2000 }));
    await waitUntil(() => publisher.watching, { what: 'the publisher watched again' });
    ctrl.refuse({ reason: 'foreign-cluster', from: 'x1', localClusterId: 'a', remoteClusterId: 'b', message: 'join refused: x1 belongs to cluster b but f1 belongs to cluster a' });
    await waitUntil(() => got.some((g) => (g.body.events as Array<{ k: string }> | undefined)?.some((e) => e.k === 'refused')), { what: 'the refusal' });

    // the watcher goes away: publishing stops after its ttl
    await waitUntil(() => !publisher.watching, { what: 'publisher to stop', timeoutMs: 10_000 });
    const before = got.length;
    for (let i = 0; i < 10; i++) ctrl.actor.send({ type: 'FLIP' });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(got.length, before);
    publisher.stop();
    await hub.close();
  });
});

describe('a node that starts while a page watches', () => {
  it('its first seconds are published once the watch reaches it: the batch before the snapshot', async () => {
    const hub = createInProcessBus();
    const bus = hub.connect('f2');
    const tool = hub.connect('tool');
    const ctrl = fakeController(bus, 'f2');
    const publisher = attachInspectionPublisher(ctrl);
    ctrl.actor.start();
    // a join handshake can be over before the inspector's next watch announcement (every second)
    for (let i = 0; i < 3; i++) ctrl.actor.send({ type: 'FLIP' });
    const got = collect(tool, streamSubject('tp', 'f2'));
    tool.publish(watchSubject('tp'), encode({ name: 'inspector', nodeId: null, clusterId: null }, WATCH_TYPE, { watcher: 'w2', ttlMs: 2000 }));
    await waitUntil(() => got.some((g) => g.type === SNAPSHOT_TYPE), { what: 'the snapshot' });
    const types = got.map((g) => g.type);
    assert.equal(types[0], BATCH_TYPE, `what happened before the watch comes first, then the snapshot: ${types}`);
    const early = got[0]!.body.events as Array<{ k: string; type?: string; n?: number; states?: string[] }>;
    assert.equal(early.find((e) => e.k === 'event' && e.type === 'FLIP')?.n, 3, 'the three FLIPs before the watch');
    assert.ok(early.some((e) => e.k === 'state' && e.states?.includes('toggle.on')), 'and the states they led to');
    publisher.stop();
    await hub.close();
  });
});

describe('inspector over in-process controllers', () => {
  const dirs: string[] = [];
  const controllers: Controller[] = [];
  after(async () => {
    for (const c of controllers) await c.stop().catch(() => {});
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('sees every node, serves /api/cluster and /api/machines, and marks a stopped node unreachable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-inspect-'));
    dirs.push(dir);
    const nodes = ['a1', 'a2', 'a3'].map((name) => ({ name, dataDir: join(dir, name) }));
    const { clusterId } = await seedStaticCluster(nodes);
    const hub = createInProcessBus();
    for (const n of nodes) {
      const c = await startController({ ...n, prefix: 'ti', transport: { bus: hub }, raft: { heartbeatMs: 20, electionTimeoutMs: 150 } });
      controllers.push(c);
      attachInspectionPublisher(c);
    }
    await controllers[0]!.waitForLeader();
    const inspector = new Inspector({ bus: hub.connect('inspector'), prefix: 'ti', statusEveryMs: 200, statusTimeoutMs: 300 });
    await inspector.start();
    const server = await startInspectorServer({ listen: '127.0.0.1:0', inspector });
    try {
      type Cluster = { nodes: Array<{ name: string; reachable: boolean; role: string; clusterId: string }> };
      const cluster = async () => (await (await fetch(`${server.url}api/cluster`)).json()) as Cluster;
      await waitUntil(async () => (await cluster()).nodes.filter((n) => n.reachable).length === 3, { what: 'three reachable nodes' });
      const c1 = await cluster();
      assert.deepEqual(c1.nodes.map((n) => n.name), ['a1', 'a2', 'a3']);
      assert.equal(c1.nodes.filter((n) => n.role === 'leader').length, 1);
      assert.ok(c1.nodes.every((n) => n.clusterId === clusterId));
      await waitUntil(() => inspector.current().nodes.every((n) => n.actors.some((a) => a.m === 'raftRole')), { what: 'raft charts of every node' });

      const machines = (await (await fetch(`${server.url}api/machines`)).json()) as { machines: Array<{ id: string }> };
      assert.deepEqual(machines.machines.map((m) => m.id), ['bootstrap', 'raftRole', 'membership', 'join']);
      const elk = await fetch(`${server.url}vendor/elk.bundled.js`);
      assert.equal(elk.status, 200, 'elkjs is served locally');

      const leader = controllers.find((c) => c.status().role === 'leader')!;
      await leader.stop();
      await waitUntil(async () => (await cluster()).nodes.find((n) => n.name === leader.name)?.reachable === false, { what: 'the stopped leader marked unreachable' });
      await waitUntil(async () => (await cluster()).nodes.some((n) => n.reachable && n.role === 'leader'), { what: 'a new leader', timeoutMs: 10_000 });
    } finally {
      await server.close();
      await inspector.stop();
    }
  });
});
