// A full store (size limit or full disk): StoreError('FULL'), nothing half-written, still readable.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import type { Entry } from '../../machines/raft/types.ts';
import { type NodeStore, openStore, StoreError } from '../../runtime/store/index.ts';
import { makeTmpDir, removeTmpDir, tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-store-full-');
after(() => tmp.cleanup());

const blob = 'x'.repeat(1000);
function ents(from: number, n: number, term = 1): Entry[] {
  return Array.from({ length: n }, (_, i) => ({ index: from + i, term, type: 'command' as const, data: { blob, i: from + i } }));
}

/** append batches until the store reports FULL; returns the error */
async function fillUp(s: NodeStore, batch: number): Promise<StoreError> {
  for (let round = 0; round < 10_000; round++) {
    try {
      await s.persist({ hardState: { term: 1, vote: null, commit: s.lastIndex() }, entries: ents(s.lastIndex() + 1, batch) });
    } catch (err) {
      assert.ok(err instanceof StoreError, String(err));
      return err;
    }
  }
  assert.fail('the store never became full');
}

describe('store: FULL', () => {
  it('a write beyond mapSizeBytes fails with FULL, leaves nothing behind, and the store stays readable', async () => {
    const dir = tmp.make();
    let s = await openStore({ dataDir: dir, name: 'ctrl1', mapSizeBytes: 256 * 1024 });
    await s.applyState(0, [{ key: 'before', value: 1 }]);
    const err = await fillUp(s, 20);
    assert.equal(err.code, 'FULL');
    assert.match(err.message, new RegExp(`store ${dir} is full: persist of 20 entries needs \\d+ bytes but store.maxBytes is 262144`));
    assert.match(err.message, /Nothing of this write was stored/);

    const last = s.lastIndex();
    const hs = s.hardState();
    assert.ok(last >= 40, `some batches fit first (last index ${last})`);
    // nothing of the failed batch is visible, in memory or on disk
    assert.deepEqual(s.entries(last + 1, last + 21), []);
    assert.equal(s.term(last + 1), undefined);
    assert.equal(s.entries(1, last + 1).length, last);
    assert.deepEqual(s.stateGet('before'), 1);
    await assert.rejects(s.applyState(1, [{ key: 'big', value: 'y'.repeat(300_000) }]), (e: unknown) => e instanceof StoreError && e.code === 'FULL');
    assert.equal(s.appliedIndex(), 0);
    assert.equal(s.stateGet('big'), undefined);

    s = await reopenWith(s, 256 * 1024);
    assert.equal(s.lastIndex(), last);
    assert.deepEqual(s.hardState(), hs);
    assert.equal(s.stateGet('big'), undefined);

    // compaction frees space (a shrinking write is allowed even at the limit), then writes fit again
    await s.applyState(last, []);
    await s.saveSnapshotAndCompact({ index: last, term: 1, membership: { members: [] } });
    await s.persist({ entries: ents(last + 1, 20) });
    assert.equal(s.lastIndex(), last + 20);
    await s.close();
  });

  it('a real full disk (ENOSPC) is FULL too (root only: uses a tiny tmpfs)', async (t) => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return t.skip('needs root on Linux to mount a tmpfs');
    const mnt = makeTmpDir('conclave-store-tmpfs-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      removeTmpDir(mnt);
      return t.skip('cannot mount a tmpfs here');
    }
    let s: NodeStore | undefined;
    try {
      s = await openStore({ dataDir: mnt, name: 'ctrl1' });
      const err = await fillUp(s, 20);
      assert.equal(err.code, 'FULL', err.message);
      assert.match(err.message, /No space left on device|Input\/output error/, 'ENOSPC, or the EIO LMDB makes of a short write');
      assert.match(err.message, /Free disk space/);
      const last = s.lastIndex();
      assert.deepEqual(s.entries(last + 1, last + 21), []);
      assert.equal(s.entries(1, last + 1).length, last, 'what was committed is still readable');
      await s.close();
      s = await openStore({ dataDir: mnt, name: 'ctrl1' });
      assert.equal(s.lastIndex(), last);
    } finally {
      await s?.close(); // before umount, or the mount is busy and hides the real failure
      execFileSync('umount', [mnt]);
      removeTmpDir(mnt);
    }
  });
});

async function reopenWith(s: NodeStore, mapSizeBytes: number): Promise<NodeStore> {
  await s.close();
  return openStore({ dataDir: s.dataDir, name: 'ctrl1', mapSizeBytes });
}
