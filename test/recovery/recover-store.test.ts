// `recover` at the store level: what the one durable write does (sole voter at the applied index,
// committed-but-unapplied entries kept with config entries neutralized, uncommitted tail dropped,
// term and generation bumped) and every refusal (missing, empty, not a store, locked, corrupt,
// blank, removed) — each leaving the data dir as it was.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exitCodeFor } from '../../runtime/errors.ts';
import { openStore, recoverStore } from '../../runtime/store/index.ts';
import { fingerprintDir, tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-recover-');
after(() => tmp.cleanup());
const CLUSTER = '0199aaaa-0000-7000-8000-0000000000c1';

async function memberStore(dataDir: string, name = 'n1') {
  const store = await openStore({ dataDir, name });
  const self = { nodeId: store.identity().nodeId, name, voter: true };
  const other = { nodeId: '0199aaaa-0000-7000-8000-0000000000b2', name: 'n2', voter: true };
  await store.initializeCluster({ clusterId: CLUSTER, meta: { index: 1, term: 1, membership: { members: [self, other] } }, pairs: [['a', 1]], hardState: { term: 1, vote: null, commit: 1 } });
  return { store, self, other };
}

async function refusal(dataDir: string): Promise<{ code: string; message: string; exit: number }> {
  try {
    await recoverStore({ dataDir });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '?';
    return { code, message: (err as Error).message, exit: exitCodeFor(code) };
  }
  assert.fail('recover should have refused');
}

describe('recoverStore', () => {
  it('one write: sole voter, committed entries kept (configs neutralized), uncommitted tail dropped, term and generation bumped', async () => {
    const dir = join(tmp.make(), 'n1');
    const { store, self, other } = await memberStore(dir);
    const three = { members: [self, other, { nodeId: '0199aaaa-0000-7000-8000-0000000000b3', name: 'n3', voter: true }] };
    await store.persist({
      hardState: { term: 2, vote: self.nodeId, commit: 3 },
      entries: [
        { index: 2, term: 2, type: 'command', data: { op: 'put', key: 'b', value: 2 } },
        { index: 3, term: 2, type: 'config', data: three },
        { index: 4, term: 2, type: 'command', data: { op: 'put', key: 'c', value: 3 } },
        { index: 5, term: 2, type: 'command', data: { op: 'put', key: 'd', value: 4 } },
      ],
    });
    await store.applyState(2, [{ key: 'b', value: 2 }]);
    const keyBefore = store.memberKey().publicKey;
    await store.close();

    const r = await recoverStore({ dataDir: dir });
    assert.equal(r.clusterId, CLUSTER);
    assert.equal(r.name, 'n1');
    assert.equal(r.nodeId, self.nodeId);
    assert.deepEqual([r.previousGeneration, r.generation, r.previousTerm, r.term], [1, 2, 2, 3]);
    assert.deepEqual([r.appliedIndex, r.commitIndex, r.pendingEntries, r.droppedEntries, r.keys], [2, 3, 1, 2, 2]);
    assert.deepEqual(r.previousMembers.map((m) => m.name), ['n1', 'n2', 'n3']);

    const after = await openStore({ dataDir: dir, name: 'n1' });
    try {
      assert.equal(after.identity().generation, 2);
      assert.equal(after.identity().clusterId, CLUSTER);
      // a new generation, a new member key, committed as the sole voter's
      const key = after.memberKey().publicKey;
      assert.notEqual(key, keyBefore, 'recover rotates the member key');
      assert.deepEqual(after.snapshotMeta(), { index: 2, term: 2, membership: { members: [{ ...self, key }] } });
      assert.deepEqual(after.hardState(), { term: 3, vote: null, commit: 3 });
      assert.equal(after.firstIndex(), 3);
      assert.equal(after.lastIndex(), 3);
      assert.deepEqual(after.entries(3, 10), [{ index: 3, term: 2, type: 'noop', data: null }]);
      assert.deepEqual([...after.stateRange()], [['a', 1], ['b', 2]]);
    } finally {
      await after.close();
    }
  });

  it('refuses a missing dir, an empty dir and a directory that is not a store (exit 2), untouched', async () => {
    const root = tmp.make();
    const missing = await refusal(join(root, 'nope'));
    assert.equal(missing.code, 'NOT_A_STORE');
    assert.equal(missing.exit, 2);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    assert.equal((await refusal(empty)).code, 'NOT_A_STORE');
    const other = join(root, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'hello');
    const before = fingerprintDir(other);
    const r = await refusal(other);
    assert.equal(r.code, 'NOT_A_STORE');
    assert.match(r.message, /is not a Conclave store/);
    assert.deepEqual(fingerprintDir(other), before);
  });

  it('refuses a store in use (exit 1) and a corrupt one (exit 2)', async () => {
    const dir = join(tmp.make(), 'n1');
    const { store } = await memberStore(dir);
    const locked = await refusal(dir);
    assert.equal(locked.code, 'LOCKED');
    assert.equal(locked.exit, 1);
    assert.match(locked.message, /is in use by process \d+/);
    await store.close();

    const bad = join(tmp.make(), 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'data.mdb'), Buffer.alloc(8192, 7));
    const before = fingerprintDir(bad);
    const corrupt = await refusal(bad);
    assert.equal(corrupt.code, 'CORRUPT');
    assert.equal(corrupt.exit, 2);
    assert.deepEqual(fingerprintDir(bad), before);
  });

  it('refuses a blank store (never initialized) and a removed node (exit 1), writing nothing', async () => {
    const blankDir = join(tmp.make(), 'b1');
    await (await openStore({ dataDir: blankDir, name: 'b1' })).close();
    const blank = await refusal(blankDir);
    assert.equal(blank.code, 'NOT_A_MEMBER');
    assert.equal(blank.exit, 1);
    assert.match(blank.message, /never initialized .* nothing to recover/);

    const removedDir = join(tmp.make(), 'n1');
    const { store } = await memberStore(removedDir);
    await store.updateIdentity({ removed: true });
    await store.close();
    const removed = await refusal(removedDir);
    assert.equal(removed.code, 'REMOVED');
    assert.match(removed.message, new RegExp(`was removed from cluster ${CLUSTER}`));
    const again = await openStore({ dataDir: removedDir, name: 'n1' });
    assert.equal(again.identity().generation, 1, 'nothing written');
    await again.close();
  });
});
