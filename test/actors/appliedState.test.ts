// The applied state with a deferred durable write: reads see pending writes at once; the durable
// store catches up within a turn of the event loop; a failed deferred write is reported once.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AppliedState } from '../../actors/appliedState.ts';
import { openStore } from '../../runtime/store/index.ts';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.ts';

it('reads see pending writes; the store catches up after the turn; export and range flush first', async () => {
  const dir = await makeTmpDir('applied-');
  const store = await openStore({ dataDir: dir, name: 'n1' });
  try {
    const errors: unknown[] = [];
    const state = new AppliedState(store, (err) => errors.push(err));
    state.record(3, [{ key: 'a', value: 1 }, { key: 'b', value: 2 }]);
    state.record(4, [{ key: 'a' }]);
    assert.equal(state.stateGet('a'), undefined, 'a pending delete hides the key');
    assert.equal(state.stateGet('b'), 2);
    assert.equal(state.appliedIndex(), 4);
    assert.equal(store.appliedIndex(), 0, 'not yet durable');
    await nextTurn();
    assert.equal(store.appliedIndex(), 4);
    assert.equal(store.stateGet('b'), 2);
    state.record(5, [{ key: 'c', value: 3 }]);
    assert.deepEqual([...state.stateRange()], [['b', 2], ['c', 3]], 'range flushes first');
    assert.equal(store.appliedIndex(), 5);
    state.record(6, [{ key: 'd', value: 4 }]);
    assert.equal(state.exportState().appliedIndex, 6);
    assert.deepEqual(errors, []);
  } finally {
    await store.close();
    await removeTmpDir(dir);
  }
});

it('a failed deferred write is reported and later writes are refused', async () => {
  const dir = await makeTmpDir('applied-full-');
  const store = await openStore({ dataDir: dir, name: 'n1', mapSizeBytes: 256 * 1024 });
  try {
    const errors: unknown[] = [];
    const state = new AppliedState(store, (err) => errors.push(err));
    state.record(1, [{ key: 'big', value: 'x'.repeat(1024 * 1024) }]);
    await nextTurn();
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as { code?: string }).code, 'FULL');
    assert.throws(() => state.record(2, [{ key: 'k', value: 1 }]), (err: unknown) => (err as { code?: string }).code === 'FULL');
    assert.equal(store.appliedIndex(), 0, 'nothing half-written');
  } finally {
    await store.close();
    await removeTmpDir(dir);
  }
});
