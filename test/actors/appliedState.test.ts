// The applied state with a deferred durable write: reads see pending writes at once; the next raft
// write carries what is pending (takeForWrite), else the store catches up alone STATE_WRITE_DELAY_MS
// after the oldest apply not written; a failed deferred write is reported once. Time is a
// ManualClock's: it moves when the test says.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AppliedState, STATE_WRITE_DELAY_MS } from '../../actors/appliedState.ts';
import { openStore } from '../../runtime/store/index.ts';
import { ManualClock } from '../helpers/manualClock.ts';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.ts';

type Store = Awaited<ReturnType<typeof openStore>>;

/** `test` on a fresh store, closed and removed afterwards */
async function withStore(prefix: string, test: (store: Store) => Promise<void>, mapSizeBytes?: number): Promise<void> {
  const dir = await makeTmpDir(prefix);
  const store = await openStore({ dataDir: dir, name: 'n1', ...(mapSizeBytes === undefined ? {} : { mapSizeBytes }) });
  try {
    await test(store);
  } finally {
    await store.close();
    await removeTmpDir(dir);
  }
}

it('reads see pending writes; the store catches up alone after the delay; export and range flush first', async () => {
  await withStore('applied-', async (store) => {
    const errors: unknown[] = [];
    const clock = new ManualClock();
    const state = new AppliedState(store, (err) => errors.push(err), clock);
    state.record(3, [{ key: 'a', value: 1 }, { key: 'b', value: 2 }]);
    state.record(4, [{ key: 'a' }]);
    assert.equal(state.stateGet('a'), undefined, 'a pending delete hides the key');
    assert.equal(state.stateGet('b'), 2);
    assert.equal(state.appliedIndex(), 4);
    assert.equal(store.appliedIndex(), 0, 'not yet durable');
    clock.advance(STATE_WRITE_DELAY_MS - 1);
    assert.equal(store.appliedIndex(), 0, 'not before the delay');
    clock.advance(1);
    assert.equal(store.appliedIndex(), 4);
    assert.equal(store.stateGet('b'), 2);
    state.record(5, [{ key: 'c', value: 3 }]);
    assert.deepEqual([...state.stateRange()], [['b', 2], ['c', 3]], 'range flushes first');
    assert.equal(store.appliedIndex(), 5);
    state.record(6, [{ key: 'd', value: 4 }]);
    assert.equal(state.exportState().appliedIndex, 6);
    assert.deepEqual(errors, []);
  });
});

it('a failed deferred write is reported and later writes are refused', async () => {
  await withStore('applied-full-', async (store) => {
    const errors: unknown[] = [];
    const clock = new ManualClock();
    const state = new AppliedState(store, (err) => errors.push(err), clock);
    state.record(1, [{ key: 'big', value: 'x'.repeat(1024 * 1024) }]);
    clock.advance(STATE_WRITE_DELAY_MS);
    await nextTurn(); // the store's refusal is reported through its promise
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as { code?: string }).code, 'FULL');
    assert.throws(() => state.record(2, [{ key: 'k', value: 1 }]), (err: unknown) => (err as { code?: string }).code === 'FULL');
    assert.equal(store.appliedIndex(), 0, 'nothing half-written');
  }, 256 * 1024);
});

it('the next raft write carries what is pending, in its one transaction: no write of its own, and the timer then writes nothing', async () => {
  await withStore('applied-carried-', async (store) => {
    const errors: unknown[] = [];
    const clock = new ManualClock();
    const state = new AppliedState(store, (err) => errors.push(err), clock);
    const entry = (index: number) => ({ index, term: 1, type: 'command' as const, data: { op: 'put', key: `k${index}`, value: index } });
    await store.persist({ hardState: { term: 1, vote: null, commit: 0 }, entries: [entry(1), entry(2)] });
    const writes: string[] = [];
    const applyState = store.applyState.bind(store);
    store.applyState = (index, ops) => {
      writes.push(`apply ${index}`);
      return applyState(index, ops);
    };
    state.record(1, [{ key: 'k1', value: 1 }]);
    clock.advance(STATE_WRITE_DELAY_MS / 2);
    state.record(2, [{ key: 'k2', value: 2 }]);
    const applied = state.takeForWrite();
    assert.deepEqual(applied, { appliedIndex: 2, ops: [{ key: 'k1', value: 1 }, { key: 'k2', value: 2 }] });
    assert.equal(state.takeForWrite(), null, 'taken once');
    assert.equal(state.appliedIndex(), 0, 'not applied durably until the raft write that carries it');
    await store.persist({ hardState: { term: 1, vote: null, commit: 2 }, entries: [entry(3)], applied: applied! });
    assert.equal(store.appliedIndex(), 2);
    assert.equal(state.appliedIndex(), 2);
    assert.equal(state.stateGet('k2'), 2);
    clock.advance(STATE_WRITE_DELAY_MS * 3);
    assert.deepEqual(writes, [], 'nothing written alone');

    // an apply made after a carried write waits its own full delay, counted from when it was made
    clock.advance(1);
    state.record(3, [{ key: 'k3', value: 3 }]);
    clock.advance(STATE_WRITE_DELAY_MS - 1);
    assert.deepEqual(writes, []);
    clock.advance(1);
    assert.deepEqual(writes, ['apply 3']);
    assert.equal(store.appliedIndex(), 3);
    assert.deepEqual(errors, []);
  });
});

it('close writes what is pending and stops the timer', async () => {
  await withStore('applied-close-', async (store) => {
    const clock = new ManualClock();
    const state = new AppliedState(store, (err) => assert.fail(String(err)), clock);
    state.record(1, [{ key: 'k', value: 1 }]);
    state.close();
    assert.equal(store.appliedIndex(), 1);
    assert.equal(state.takeForWrite(), null, 'nothing to carry after close');
    clock.advance(STATE_WRITE_DELAY_MS * 2); // the timer, if it were left, would write to a closed state
  });
});
