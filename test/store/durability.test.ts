// Which writes reach the disk before they return (runtime/store/storeCore.ts, Durability): raft's
// persist, snapshots and compaction are durable (LMDB flushes pages and meta page); applying
// committed entries is 'ordered' (pages flushed, meta page not: MDB_NOMETASYNC), since the applies
// an operating-system crash undoes are applied again from the log. Seen in the flags each write
// transaction is begun with, in the store's own environment (testHooks.env).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RootDatabase } from 'lmdb';
import { openStore } from '../../runtime/store/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-store-durability-');
after(() => tmp.cleanup());

const MDB_NOSYNC = 0x10000;
const MDB_NOMETASYNC = 0x40000;
type Txn = (fn: () => unknown, flags?: number) => unknown;

/** store test hooks that record the flags each write transaction of the store is begun with */
function recordingFlags(): { flags: number[]; hooks: { env: (env: RootDatabase) => void } } {
  const flags: number[] = [];
  const hooks = {
    env: (env: RootDatabase) => {
      const real = (env.transactionSync as Txn).bind(env);
      (env as unknown as { transactionSync: Txn }).transactionSync = (fn, f) => {
        flags.push(f ?? 3);
        return real(fn, f);
      };
    },
  };
  return { flags, hooks };
}

describe('store: what is on disk when a write returns', () => {
  it('persist, snapshot and compaction flush everything; an apply flushes its pages but not the meta page, until the next durable write or the close; nothing skips the flush of its pages', async () => {
    const dir = join(tmp.make(), 'data');
    const { flags, hooks } = recordingFlags();
    const s = await openStore({ dataDir: dir, name: 'n1', testHooks: hooks });
    const seen = (write: () => Promise<void>) => {
      flags.length = 0;
      return write().then(() => {
        assert.equal(flags.length, 1, 'one transaction');
        assert.equal(flags[0]! & MDB_NOSYNC, 0, 'pages flushed');
        return flags[0]!;
      });
    };
    const persisted = await seen(() => s.persist({ hardState: { term: 1, vote: null, commit: 0 }, entries: [1, 2, 3].map((index) => ({ index, term: 1, type: 'command' as const, data: { op: 'put', key: `k${index}`, value: index } })) }));
    assert.equal(persisted & MDB_NOMETASYNC, 0, 'persist: durable');
    const applied = await seen(() => s.applyState(3, [{ key: 'k1', value: 1 }, { key: 'k2', value: 2 }, { key: 'k3', value: 3 }]));
    assert.equal(applied & MDB_NOMETASYNC, MDB_NOMETASYNC, 'apply: ordered');
    const compacted = await seen(() => s.saveSnapshotAndCompact({ index: 2, term: 1, membership: { members: [] } }));
    assert.equal(compacted & MDB_NOMETASYNC, 0, 'compaction: durable (it makes the applies before it durable)');
    const noFlushNeeded = flags.length;
    await s.close();
    assert.equal(flags.length, noFlushNeeded, 'nothing left to flush at close after a durable write');

    const more = await openStore({ dataDir: dir, name: 'n1', testHooks: hooks });
    await seen(() => more.applyState(4, [{ key: 'k4', value: 4 }]));
    flags.length = 0;
    await more.close();
    assert.deepEqual(flags.map((f) => f & MDB_NOMETASYNC), [0], 'a close after an apply flushes it durably');

    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(again.stateGet('k4'), 4, 'the apply is there after a clean close');
    assert.equal(again.appliedIndex(), 4);
    await again.close();
  });

  it('a snapshot being received is staged in ordered writes, and installed in one durable write', async () => {
    const dir = join(tmp.make(), 'data');
    const { flags, hooks } = recordingFlags();
    const s = await openStore({ dataDir: dir, name: 'n1', testHooks: hooks });
    const staging = s.snapshotStaging();
    staging.clear();
    flags.length = 0;
    for (let batch = 0; batch < 3; batch++) staging.add(Array.from({ length: 10 }, (_, i): [string, unknown] => [`k${batch * 10 + i}`, { v: i }]));
    assert.equal(flags.length, 3, 'one transaction a batch');
    for (const f of flags) {
      assert.equal(f & MDB_NOSYNC, 0, 'pages flushed');
      assert.equal(f & MDB_NOMETASYNC, MDB_NOMETASYNC, 'staging: ordered');
    }
    flags.length = 0;
    await s.installSnapshot({ index: 7, term: 2, membership: { members: [] } }, staging, { term: 2, vote: null, commit: 7 });
    assert.equal(flags.length, 1, 'the install is one transaction');
    assert.equal(flags[0]! & (MDB_NOSYNC | MDB_NOMETASYNC), 0, 'the install: durable, and with it what was staged');
    flags.length = 0;
    await s.close();
    assert.equal(flags.length, 0, 'nothing left to flush at close after the install');

    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(again.appliedIndex(), 7);
    assert.deepEqual(again.stateGet('k29'), { v: 9 }, 'the installed state');
    assert.equal([...again.stateRange({})].length, 30);
    await again.close();
  });

  it('a persist that carries the applied state writes entries, state and applied index in one durable transaction', async () => {
    const dir = join(tmp.make(), 'data');
    const { flags, hooks } = recordingFlags();
    const s = await openStore({ dataDir: dir, name: 'n1', testHooks: hooks });
    const entry = (index: number) => ({ index, term: 1, type: 'command' as const, data: { op: 'put', key: `k${index}`, value: index } });
    await s.persist({ hardState: { term: 1, vote: null, commit: 0 }, entries: [entry(1), entry(2)] });
    flags.length = 0;
    await s.persist({ hardState: { term: 1, vote: null, commit: 2 }, entries: [entry(3)], applied: { appliedIndex: 2, ops: [{ key: 'k1', value: 1 }, { key: 'k2', value: 2 }] } });
    assert.equal(flags.length, 1, 'one transaction');
    assert.equal(flags[0]! & (MDB_NOSYNC | MDB_NOMETASYNC), 0, 'durable');
    assert.equal(s.appliedIndex(), 2);
    assert.equal(s.lastIndex(), 3);
    // an applied index never goes back: refused before anything is written
    flags.length = 0;
    await assert.rejects(s.persist({ entries: [entry(4)], applied: { appliedIndex: 1, ops: [{ key: 'k1', value: 'old' }] } }), /below the current 2/);
    assert.equal(flags.length, 0, 'nothing written');
    assert.equal(s.lastIndex(), 3);
    // the apply alone, with no entries or hard state, is still written
    await s.persist({ applied: { appliedIndex: 3, ops: [{ key: 'k3', value: 3 }] } });
    await s.close();

    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(again.appliedIndex(), 3);
    assert.equal(again.stateGet('k2'), 2);
    assert.equal(again.stateGet('k3'), 3);
    assert.equal(again.stateGet('k1'), 1);
    assert.equal(again.lastIndex(), 3);
    await again.close();
  });
});
