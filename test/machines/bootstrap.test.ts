// The bootstrap statechart on its own, with its actors supplied by the test.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromCallback, fromPromise, SimulatedClock, waitFor } from 'xstate';
import { type BootstrapInput, bootstrapMachine, initRefusal } from '../../machines/bootstrap/machine.ts';

const CLUSTER = '0199aaaa-0000-7000-8000-0000000000a1';
const blank: BootstrapInput = { name: 'ctrl1', nodeId: 'n1', clusterId: null, removed: false, contactedBy: null, initFrom: null };

function machineWith(bootstrap: () => Promise<{ clusterId: string }>) {
  const calls: string[] = [];
  const machine = bootstrapMachine.provide({
    actors: {
      bootstrapCluster: fromPromise(async ({ input }) => {
        calls.push(`bootstrap:${input.source}`);
        return bootstrap();
      }),
      recordContact: fromPromise(async () => {
        calls.push('recordContact');
      }),
      memberRuntime: fromCallback(() => {
        calls.push('member:start');
        return () => calls.push('member:stop');
      }),
    },
  });
  return { machine, calls };
}

describe('bootstrap machine', () => {
  it('a blank node without initFrom waits uninitialized', () => {
    const { machine, calls } = machineWith(async () => ({ clusterId: CLUSTER }));
    const actor = createActor(machine, { input: blank }).start();
    assert.equal(actor.getSnapshot().value, 'uninitialized');
    assert.deepEqual(calls, []);
  });

  it('INIT bootstraps, adopts the cluster id and starts the member runtime', async () => {
    const { machine, calls } = machineWith(async () => ({ clusterId: CLUSTER }));
    const actor = createActor(machine, { input: blank }).start();
    actor.send({ type: 'INIT' });
    const s = await waitFor(actor, (x) => x.value === 'member');
    assert.equal(s.context.clusterId, CLUSTER);
    assert.deepEqual(calls, ['bootstrap:explicit', 'member:start']);
  });

  it('a failed explicit bootstrap returns to uninitialized with the error', async () => {
    const { machine } = machineWith(async () => {
      throw Object.assign(new Error('disk full'), { code: 'FULL' });
    });
    const actor = createActor(machine, { input: blank }).start();
    actor.send({ type: 'INIT' });
    const s = await waitFor(actor, (x) => x.value === 'uninitialized' && x.context.error !== null);
    assert.deepEqual(s.context.error, { code: 'FULL', message: 'disk full' });
    assert.equal(s.context.clusterId, null);
  });

  it('initFrom on a blank node bootstraps automatically; a bad source fails the node', async () => {
    const ok = machineWith(async () => ({ clusterId: CLUSTER }));
    const a = createActor(ok.machine, { input: { ...blank, initFrom: '/seed.json' } }).start();
    await waitFor(a, (x) => x.value === 'member');
    assert.deepEqual(ok.calls, ['bootstrap:initFrom', 'member:start']);

    const bad = machineWith(async () => {
      throw Object.assign(new Error('cannot initialize from /seed.json: the file is empty'), { code: 'BAD_INIT_SOURCE' });
    });
    const b = createActor(bad.machine, { input: { ...blank, initFrom: '/seed.json' } }).start();
    const s = await waitFor(b, (x) => x.value === 'failed');
    assert.equal(s.context.error?.code, 'BAD_INIT_SOURCE');
    assert.equal(s.context.clusterId, null);
  });

  it('an initialized store resumes as a member and ignores initFrom', () => {
    const { machine, calls } = machineWith(async () => ({ clusterId: 'other' }));
    const actor = createActor(machine, { input: { ...blank, clusterId: CLUSTER, initFrom: '/seed.json' } }).start();
    assert.equal(actor.getSnapshot().value, 'member');
    assert.deepEqual(calls, ['member:start']);
  });

  it('a removed node stays removed', () => {
    const { machine } = machineWith(async () => ({ clusterId: CLUSTER }));
    const actor = createActor(machine, { input: { ...blank, clusterId: CLUSTER, removed: true } }).start();
    assert.equal(actor.getSnapshot().value, 'removed');
  });

  it('INIT is ignored on a member, and on a blank node a cluster already contacted', async () => {
    const { machine, calls } = machineWith(async () => ({ clusterId: CLUSTER }));
    const member = createActor(machine, { input: { ...blank, clusterId: CLUSTER } }).start();
    member.send({ type: 'INIT' });
    assert.equal(member.getSnapshot().value, 'member');

    const contacted = createActor(machine, { input: blank }).start();
    contacted.send({ type: 'CONTACTED', contact: { clusterId: CLUSTER, by: 'ctrl2', at: '2026-01-01T00:00:00Z' } });
    await waitFor(contacted, (x) => x.value === 'uninitialized' && x.context.contactedBy !== null);
    contacted.send({ type: 'INIT' });
    assert.equal(contacted.getSnapshot().value, 'uninitialized');
    assert.ok(!calls.includes('bootstrap:explicit'));
    assert.ok(calls.includes('recordContact'));
  });

  it('initRefusal explains each refusal with the cluster id', () => {
    assert.match(initRefusal({ name: 'ctrl1', clusterId: CLUSTER, contactedBy: null }, 'member')!.message, new RegExp(`already a member of cluster ${CLUSTER}`));
    assert.match(
      initRefusal({ name: 'ctrl1', clusterId: null, contactedBy: { clusterId: CLUSTER, by: 'ctrl2', at: 'x' } }, 'uninitialized')!.message,
      new RegExp(`already contacted by cluster ${CLUSTER}.*must join`),
    );
    assert.equal(initRefusal({ name: 'ctrl1', clusterId: null, contactedBy: null }, 'uninitialized'), null);
  });

  it('REMOVED stops the member runtime', async () => {
    const { machine, calls } = machineWith(async () => ({ clusterId: CLUSTER }));
    const actor = createActor(machine, { input: { ...blank, clusterId: CLUSTER } }).start();
    actor.send({ type: 'REMOVED' });
    assert.equal(actor.getSnapshot().value, 'removed');
    assert.deepEqual(calls, ['member:start', 'member:stop']);
  });

  it('joining: state arriving (JOIN_PROGRESS) restarts the join timeout; when it stops, the timeout ends the join saying how much arrived', () => {
    const { machine, calls } = machineWith(async () => ({ clusterId: CLUSTER }));
    const clock = new SimulatedClock();
    const actor = createActor(machine, { input: { ...blank, joinTimeoutMs: 1000 }, clock }).start();
    actor.send({ type: 'JOIN_ACCEPTED', join: { clusterId: CLUSTER, leader: 'ctrl2' } });
    // ten chunks, 800 ms apart: 8 s in all, eight times the timeout
    for (let i = 1; i <= 10; i++) {
      clock.increment(800);
      assert.equal(actor.getSnapshot().value, 'joining', `still joining after ${i * 800} ms`);
      actor.send({ type: 'JOIN_PROGRESS', chunks: i, bytes: i * 262_144 });
    }
    clock.increment(999);
    assert.equal(actor.getSnapshot().value, 'joining');
    clock.increment(1);
    const s = actor.getSnapshot();
    assert.equal(s.value, 'uninitialized');
    assert.equal(s.context.error?.code, 'TIMEOUT');
    assert.match(s.context.error!.message, /received 10 chunks \(2\.6 MB\) of its state, then nothing for 1000 ms/);
    assert.deepEqual(calls, []);
    // offered again: the count starts over, and no progress at all times out as before
    actor.send({ type: 'JOIN_ACCEPTED', join: { clusterId: CLUSTER, leader: 'ctrl2' } });
    clock.increment(1000);
    assert.match(actor.getSnapshot().context.error!.message, /received no state within 1000 ms/);
  });

  it('joining: once the state is adopted, neither progress nor silence takes the node back to uninitialized', () => {
    const { machine } = machineWith(async () => ({ clusterId: CLUSTER }));
    const clock = new SimulatedClock();
    const actor = createActor(machine, { input: { ...blank, joinTimeoutMs: 1000 }, clock }).start();
    actor.send({ type: 'JOIN_ACCEPTED', join: { clusterId: CLUSTER, leader: 'ctrl2' } });
    actor.send({ type: 'JOIN_PROGRESS', chunks: 1, bytes: 10 });
    actor.send({ type: 'ADOPTED', clusterId: CLUSTER });
    clock.increment(5000);
    assert.equal(actor.getSnapshot().value, 'joining');
    actor.send({ type: 'JOINED', clusterId: CLUSTER });
    assert.equal(actor.getSnapshot().value, 'member');
  });
});
