// The node store: identity, raft log + hard state, replicated state, snapshots, cluster init.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { version as uuidVersion, validate as uuidValidate } from 'uuid';
import type { Entry, HardState, SnapshotMeta } from '../../machines/raft/types.ts';
import { type NodeStore, openStore, STORE_FORMAT_VERSION } from '../../runtime/store/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-store-');
after(() => tmp.cleanup());

function ents(from: number, to: number, term: number, tag = ''): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: 'command', data: { op: 'put', key: `k${i}`, v: `${tag}${i}` } });
  return out;
}

const membership = { members: [{ nodeId: '01960000-0000-7000-8000-000000000001', name: 'ctrl1', voter: true }] };

async function reopen(s: NodeStore, name = 'ctrl1'): Promise<NodeStore> {
  await s.close();
  return openStore({ dataDir: s.dataDir, name });
}

describe('store: identity', () => {
  it('creates a uuid v7 node id once and keeps it across reopen', async () => {
    const dir = join(tmp.make(), 'data'); // a missing dir is created
    let s = await openStore({ dataDir: dir, name: 'ctrl1' });
    const id = s.identity();
    assert.equal(id.format, 'conclave-store');
    assert.equal(id.formatVersion, STORE_FORMAT_VERSION);
    assert.ok(uuidValidate(id.nodeId) && uuidVersion(id.nodeId) === 7, id.nodeId);
    assert.equal(id.name, 'ctrl1');
    assert.equal(id.clusterId, null);
    assert.equal(id.generation, 1);
    assert.ok(!Number.isNaN(Date.parse(id.createdAt)));
    assert.deepEqual(readdirSync(dir).sort(), ['conclave.lock', 'conclave.store', 'data.mdb', 'lock.mdb']);

    s = await reopen(s);
    assert.deepEqual(s.identity(), id);
    await s.close();
    await s.close(); // idempotent
    assert.deepEqual(readdirSync(dir).sort(), ['closed-cleanly.json', 'conclave.store', 'data.mdb', 'lock.mdb'], 'close releases the lock file; the marker stays; the clean close is recorded');
  });

  it('treats an empty data.mdb (creation interrupted before LMDB wrote anything) as a new store', async () => {
    const dir = tmp.make();
    writeFileSync(join(dir, 'data.mdb'), '');
    const s = await openStore({ dataDir: dir, name: 'ctrl1' });
    assert.equal(s.identity().name, 'ctrl1');
    await s.close();
  });

  it('updateIdentity is durable, validated, and cannot change the node id', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    const nodeId = s.identity().nodeId;
    const contactedBy = { clusterId: '01960000-0000-7000-8000-0000000000cc', by: 'ctrl2', at: new Date().toISOString() };
    await s.updateIdentity({ contactedBy, generation: 2 });
    // @ts-expect-error nodeId is not patchable
    await s.updateIdentity({ nodeId: 'other' });
    await assert.rejects(s.updateIdentity({ generation: 0 }), /invalid identity update/);
    s = await reopen(s);
    assert.equal(s.identity().nodeId, nodeId);
    assert.deepEqual(s.identity().contactedBy, contactedBy);
    assert.equal(s.identity().generation, 2);
    await s.updateIdentity({ contactedBy: null, removed: true });
    s = await reopen(s);
    assert.equal(s.identity().contactedBy, null);
    assert.equal(s.identity().removed, true);
    await s.close();
  });

  it('identity() cannot be changed through what it returns (frozen, shared without copies)', async () => {
    const s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    const a = s.identity();
    assert.throws(() => {
      a.clusterId = 'x';
    }, TypeError);
    assert.equal(s.identity().clusterId, null);
    await s.close();
  });
});

describe('store: raft log and hard state', () => {
  it('starts empty', async () => {
    const s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    assert.deepEqual(s.hardState(), { term: 0, vote: null, commit: 0 });
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 0);
    assert.deepEqual(s.entries(1, 10), []);
    assert.equal(s.snapshotMeta(), null);
    assert.equal(s.appliedIndex(), 0);
    assert.equal(s.term(0), 0);
    await s.close();
  });

  it('persist + reopen returns the same hard state and entries', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    const hs: HardState = { term: 3, vote: '01960000-0000-7000-8000-000000000002', commit: 5 };
    const written = ents(1, 10, 3);
    await s.persist({ hardState: hs, entries: written.slice(0, 4) });
    await s.persist({ entries: written.slice(4) });
    await s.persist({ hardState: { ...hs, commit: 7 } });
    await s.persist({}); // nothing: fine
    assert.equal(s.lastIndex(), 10);
    s = await reopen(s);
    assert.deepEqual(s.hardState(), { ...hs, commit: 7 });
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 10);
    assert.deepEqual(s.entries(1, 11), written);
    assert.deepEqual(s.entries(3, 5), written.slice(2, 4));
    assert.deepEqual(s.entries(9, 100), written.slice(8), 'clipped at lastIndex + 1');
    assert.equal(s.term(10), 3);
    assert.equal(s.term(11), undefined);
    await s.close();
  });

  it('truncates a conflicting suffix on append', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ entries: ents(1, 10, 1, 'old') });
    const replacement = ents(6, 8, 2, 'new');
    await s.persist({ hardState: { term: 2, vote: null, commit: 5 }, entries: replacement });
    assert.equal(s.lastIndex(), 8);
    s = await reopen(s);
    assert.equal(s.lastIndex(), 8);
    const all = s.entries(1, 20);
    assert.equal(all.length, 8);
    assert.deepEqual(all.slice(0, 5), ents(1, 5, 1, 'old'));
    assert.deepEqual(all.slice(5), replacement);
    assert.equal(s.term(9), undefined, 'the old entries 9 and 10 are gone');
    await s.close();
  });

  it('keeps entries that already match (same index and term) and only truncates from the first conflict', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ entries: ents(1, 10, 1, 'old') });
    // a re-sent (duplicate) AppendEntries for 3..5: nothing is truncated
    await s.persist({ entries: ents(3, 5, 1, 'old') });
    assert.equal(s.lastIndex(), 10);
    // 8 and 9 match, 10 conflicts, 11 is new: truncation starts at 10
    await s.persist({ entries: [...ents(8, 9, 1, 'old'), ...ents(10, 11, 2, 'new')] });
    s = await reopen(s);
    assert.equal(s.lastIndex(), 11);
    assert.deepEqual(s.entries(1, 12), [...ents(1, 9, 1, 'old'), ...ents(10, 11, 2, 'new')]);
    await s.close();
  });

  it('refuses gaps, non-contiguous batches and overwriting compacted entries', async () => {
    const s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ entries: ents(1, 3, 1) });
    await assert.rejects(s.persist({ entries: ents(5, 6, 1) }), RangeError);
    await assert.rejects(s.persist({ entries: [...ents(4, 4, 1), ...ents(6, 6, 1)] }), RangeError);
    await s.applyState(3, []);
    await s.saveSnapshotAndCompact({ index: 2, term: 1, membership });
    await assert.rejects(s.persist({ entries: ents(2, 4, 2) }), RangeError);
    assert.equal(s.lastIndex(), 3);
    await s.close();
  });

  it('compacts up to a snapshot: firstIndex moves, survives reopen', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ entries: ents(1, 20, 1) });
    await s.applyState(15, [{ key: 'a', value: 1 }]);
    await assert.rejects(s.saveSnapshotAndCompact({ index: 16, term: 1, membership }), /applied index/);
    await assert.rejects(s.saveSnapshotAndCompact({ index: 10, term: 9, membership }), /does not match/);
    const meta: SnapshotMeta = { index: 10, term: 1, membership };
    await s.saveSnapshotAndCompact(meta);
    assert.equal(s.firstIndex(), 11);
    assert.equal(s.lastIndex(), 20);
    assert.deepEqual(s.snapshotMeta(), meta);
    assert.throws(() => s.entries(10, 12), RangeError);
    assert.equal(s.term(10), 1, 'the snapshot index keeps its term');
    assert.equal(s.term(9), undefined);
    s = await reopen(s);
    assert.equal(s.firstIndex(), 11);
    assert.equal(s.lastIndex(), 20);
    assert.deepEqual(s.entries(11, 21), ents(11, 20, 1));
    assert.deepEqual(s.snapshotMeta(), meta);
    // compact everything: the log is empty, lastIndex stays at the snapshot
    await s.applyState(20, []);
    await s.saveSnapshotAndCompact({ index: 20, term: 1, membership });
    s = await reopen(s);
    assert.equal(s.firstIndex(), 21);
    assert.equal(s.lastIndex(), 20);
    assert.deepEqual(s.entries(21, 30), []);
    await s.persist({ entries: ents(21, 22, 2) });
    assert.equal(s.lastIndex(), 22);
    await assert.rejects(s.saveSnapshotAndCompact({ index: 15, term: 1, membership }), /older than/);
    await s.close();
  });
});

describe('store: replicated state', () => {
  it('applyState writes ops atomically with the applied index; range and export', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.applyState(3, [
      { key: 'user/b', value: { n: 2 } },
      { key: 'user/a', value: { n: 1 } },
      { key: 'sys/x', value: [1, 'two', null] },
      { key: 'gone', value: 1 },
    ]);
    await s.applyState(4, [{ key: 'gone' }]);
    await assert.rejects(s.applyState(2, []), RangeError);
    s = await reopen(s);
    assert.equal(s.appliedIndex(), 4);
    assert.deepEqual(s.stateGet('user/a'), { n: 1 });
    assert.equal(s.stateGet('gone'), undefined);
    assert.deepEqual([...s.stateRange({ prefix: 'user/' })], [
      ['user/a', { n: 1 }],
      ['user/b', { n: 2 }],
    ]);
    assert.deepEqual([...s.stateRange({ limit: 1 })], [['sys/x', [1, 'two', null]]]);
    assert.deepEqual([...s.stateRange({ prefix: 'zzz' })], []);
    assert.deepEqual(s.exportState(), {
      appliedIndex: 4,
      pairs: [
        ['sys/x', [1, 'two', null]],
        ['user/a', { n: 1 }],
        ['user/b', { n: 2 }],
      ],
    });
    await s.close();
  });

  it('installSnapshot replaces the whole state, resets the log and sets the hard state', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ entries: ents(1, 5, 1) });
    await s.applyState(5, [
      { key: 'old1', value: 1 },
      { key: 'shared', value: 'old' },
    ]);
    const meta: SnapshotMeta = { index: 40, term: 4, membership };
    const hs: HardState = { term: 4, vote: null, commit: 40 };
    await s.installSnapshot(meta, [
      ['shared', 'new'],
      ['new1', { deep: { x: 1 } }],
    ], hs);
    const check = (st: NodeStore) => {
      assert.equal(st.stateGet('old1'), undefined);
      assert.equal(st.stateGet('shared'), 'new');
      assert.deepEqual(st.exportState(), { appliedIndex: 40, pairs: [['new1', { deep: { x: 1 } }], ['shared', 'new']] });
      assert.deepEqual(st.snapshotMeta(), meta);
      assert.deepEqual(st.hardState(), hs);
      assert.equal(st.firstIndex(), 41);
      assert.equal(st.lastIndex(), 40);
      assert.deepEqual(st.entries(41, 50), []);
      assert.equal(st.term(40), 4);
    };
    check(s);
    s = await reopen(s);
    check(s);
    await assert.rejects(s.installSnapshot({ ...meta, index: 30 }, [], hs), /older than the applied index/);
    await s.close();
  });

  it('installSnapshot keeps the log after the snapshot when it holds the snapshot entry (raft §7)', async () => {
    const s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ entries: ents(1, 10, 2) });
    await s.installSnapshot({ index: 6, term: 2, membership }, [['k', 'v']], { term: 2, vote: null, commit: 6 });
    assert.equal(s.firstIndex(), 7);
    assert.equal(s.lastIndex(), 10);
    assert.deepEqual(s.entries(7, 11), ents(7, 10, 2));
    await s.close();
  });
});

describe('store: initializeCluster', () => {
  it('makes a blank node a member in one write, visible after reopen', async () => {
    let s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await s.persist({ hardState: { term: 1, vote: null, commit: 0 } });
    const clusterId = '01960000-0000-7000-8000-0000000000aa';
    const meta: SnapshotMeta = { index: 1, term: 1, membership };
    await s.initializeCluster({
      clusterId,
      meta,
      pairs: [['imported/a', 1]],
      hardState: { term: 1, vote: null, commit: 1 },
      importedFrom: '/backups/kv.json',
    });
    s = await reopen(s);
    const id = s.identity();
    assert.equal(id.clusterId, clusterId);
    assert.equal(id.importedFrom, '/backups/kv.json');
    assert.ok(id.initializedAt && !Number.isNaN(Date.parse(id.initializedAt)));
    assert.deepEqual(s.snapshotMeta(), meta);
    assert.deepEqual(s.hardState(), { term: 1, vote: null, commit: 1 });
    assert.equal(s.appliedIndex(), 1);
    assert.deepEqual(s.stateGet('imported/a'), 1);
    assert.equal(s.firstIndex(), 2);
    assert.equal(s.lastIndex(), 1);
    await assert.rejects(
      s.initializeCluster({ clusterId: 'another', meta, pairs: [], hardState: { term: 1, vote: null, commit: 1 } }),
      new RegExp(`already a member of cluster ${clusterId}`),
    );
    assert.equal(s.identity().clusterId, clusterId);
    await s.close();
  });

  it('writes nothing when the identity would be invalid', async () => {
    const s = await openStore({ dataDir: tmp.make(), name: 'ctrl1' });
    await assert.rejects(
      s.initializeCluster({ clusterId: '', meta: { index: 1, term: 1, membership }, pairs: [['a', 1]], hardState: { term: 1, vote: null, commit: 1 } }),
      /invalid identity/,
    );
    assert.equal(s.stateGet('a'), undefined);
    assert.equal(s.snapshotMeta(), null);
    await s.close();
  });
});
