// The simulated disk (test/sim/store.ts) against what the real store does: which writes a crash of
// the process or of the machine undoes, and what the checker is told of each write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry, SnapshotMeta } from '../../machines/raft/types.ts';
import { CRASHED, durableStore, losePower, SimStore, type WriteHooks } from './store.ts';

const quiet: WriteHooks = { before: () => {}, after: () => {}, persisted: () => {}, adopted: () => {}, compacted: () => {}, installed: () => {} };
const meta = (index: number): SnapshotMeta => ({ index, term: 1, membership: { members: [] } });
const hard = { term: 1, vote: null, commit: 0 };

test('the store model reports every kind of write to the checker even when the process crashes right after it', async () => {
  const reports: string[] = [];
  let crashAfter = false;
  const hooks: WriteHooks = {
    ...quiet,
    after: () => {
      if (crashAfter) throw CRASHED;
    },
    persisted: (entries) => reports.push(`persisted ${entries.length}`),
    adopted: () => reports.push('adopted'),
    compacted: () => reports.push('compacted'),
    installed: () => reports.push('installed'),
  };
  const crashing = async (write: () => Promise<void>) => {
    crashAfter = true;
    await assert.rejects(write(), (err) => err === CRASHED);
    crashAfter = false;
  };
  const entry: Entry = { index: 1, term: 1, type: 'noop', data: null };
  const store = new SimStore(durableStore('n1', 'n1', null, 1), hooks);
  await crashing(() => store.initializeCluster({ clusterId: 'c', meta: meta(0), pairs: [], hardState: hard }));
  await crashing(() => store.persist({ entries: [entry] }));
  await store.applyState(1, []);
  await crashing(() => store.saveSnapshotAndCompact(meta(1)));
  await crashing(() => store.installSnapshot(meta(2), [], hard));
  assert.deepEqual(reports, ['adopted', 'persisted 1', 'compacted', 'installed']);
});

test('a snapshot being staged is an ordered write: a power loss undoes the batches since the last durable write, a process crash none; the install makes them durable', async () => {
  const d = durableStore('n1', 'n1', 'c', 1);
  const store = new SimStore(d, quiet);
  const staging = store.snapshotStaging();
  staging.clear();
  staging.add([['a', 1]]);
  await store.persist({ hardState: hard }); // a durable write: what was staged before it is durable
  staging.add([['b', 2]]);
  staging.add([['c', 3]]);
  assert.equal(staging.pairs, 3, 'a process crash undoes nothing written');
  losePower(d);
  assert.deepEqual(d.staging, [['a', 1]], 'a power loss undoes the staging since the durable write');
  staging.add([['b', 2]]);
  await store.installSnapshot(meta(4), staging, hard);
  losePower(d);
  assert.deepEqual([...store.stateRange()], [['a', 1], ['b', 2]], 'the install is durable, and what it installed');
  assert.equal(store.appliedIndex(), 4);
});

test('an apply carried by a persist is durable with it: a power loss undoes only the ordered applies made after it', async () => {
  const d = durableStore('n1', 'n1', 'c', 1);
  const store = new SimStore(d, quiet);
  const entry = (index: number): Entry => ({ index, term: 1, type: 'command', data: index });
  await store.persist({ hardState: hard, entries: [entry(1), entry(2), entry(3)] });
  await store.applyState(1, [{ key: 'a', value: 1 }]); // ordered
  await store.persist({ entries: [entry(4)], applied: { appliedIndex: 2, ops: [{ key: 'b', value: 2 }] } });
  await store.applyState(3, [{ key: 'c', value: 3 }]); // ordered, after the durable write
  assert.equal(losePower(d), 1, 'one apply undone');
  assert.equal(store.appliedIndex(), 2);
  assert.deepEqual([...store.stateRange()], [['a', 1], ['b', 2]]);
  assert.equal(store.lastIndex(), 4);
  await assert.rejects(store.persist({ applied: { appliedIndex: 1, ops: [] } }), /below 2/, 'an applied index never goes back');
});
