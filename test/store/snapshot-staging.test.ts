// Issue 17, item 11: a snapshot being received is written as it arrives (never held whole in
// memory) into the state database that is not current, and the one durable write that installs it
// makes that database the current one (no copy). Until then the state is untouched: a crash
// mid-transfer leaves the old state and the identity as they were, and a joining node's first
// state and its cluster id stay one write.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStore } from '../../runtime/store/index.ts';
import { verifyStore } from '../../runtime/store/verify.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-staging-');
after(() => tmp.cleanup());

const CLUSTER = '0199aaaa-0000-7000-8000-0000000000a1';
const hs = { term: 3, vote: null, commit: 10 };
const meta = (index: number) => ({ index, term: 3, membership: { members: [{ nodeId: 'n', name: 'n1', voter: true }] } });
const pairs = (from: number, n: number, tag: string): Array<[string, unknown]> =>
  Array.from({ length: n }, (_, i) => [`k${String(from + i).padStart(4, '0')}`, { tag, i: from + i }]);

describe('snapshot staging', () => {
  it('a joining node: staged pairs are invisible until the install, which writes them with the cluster id in one write', async () => {
    const dir = join(tmp.make(), 'n1');
    const s = await openStore({ dataDir: dir, name: 'n1' });
    const staging = s.snapshotStaging();
    staging.clear();
    staging.add(pairs(0, 50, 'new'));
    staging.add(pairs(50, 50, 'new'));
    assert.equal(staging.pairs, 100);
    assert.deepEqual([...s.stateRange({})], [], 'nothing staged is in the state');
    assert.equal(s.identity().clusterId, null);
    await s.initializeCluster({ clusterId: CLUSTER, meta: meta(10), pairs: staging, hardState: hs });
    assert.equal(s.identity().clusterId, CLUSTER);
    assert.equal(s.appliedIndex(), 10);
    assert.equal([...s.stateRange({})].length, 100);
    assert.deepEqual(s.stateGet('k0099'), { tag: 'new', i: 99 });
    assert.equal(staging.pairs, 0, 'the staging area is empty again');
    await s.close();
    const report = await verifyStore(dir);
    assert.ok(report.ok, String(report.problem));
    assert.equal(report.dbs.state2?.records, 100, 'the pairs were received into state2, which is now current');
    assert.equal(report.dbs.state?.records ?? 0, 0, 'the old state database is empty');
    // reopened: the same, checksums and all
    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(again.identity().clusterId, CLUSTER);
    assert.deepEqual(again.stateGet('k0000'), { tag: 'new', i: 0 });
    await again.close();
  });

  it('a crash mid-transfer leaves the old state and identity as they were; the next transfer starts from an empty staging area', async () => {
    const dir = join(tmp.make(), 'n1');
    const s = await openStore({ dataDir: dir, name: 'n1' });
    await s.initializeCluster({ clusterId: CLUSTER, meta: meta(5), pairs: pairs(0, 3, 'old'), hardState: { ...hs, commit: 5 } });
    const staging = s.snapshotStaging();
    staging.clear();
    staging.add(pairs(0, 40, 'partial'));
    // the process dies here (the store is closed without an install)
    await s.close();
    const report = await verifyStore(dir);
    assert.ok(report.ok, String(report.problem));
    assert.equal(report.dbs.state2?.records, 40, 'the partial transfer is on disk (scratch)');
    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(again.identity().clusterId, CLUSTER);
    assert.equal(again.appliedIndex(), 5);
    assert.deepEqual([...again.stateRange({})], pairs(0, 3, 'old'), 'the old state, whole');
    // the next transfer: cleared first, so nothing of the partial one survives into the state
    const next = again.snapshotStaging();
    next.clear();
    next.add(pairs(10, 2, 'next'));
    await again.installSnapshot(meta(20), next, { ...hs, commit: 20 });
    assert.deepEqual([...again.stateRange({})], pairs(10, 2, 'next'));
    assert.equal(again.appliedIndex(), 20);
    await again.close();
  });

  it('written once: a received snapshot is not copied when installed (the file holds it once, the install write is small)', async () => {
    const dir = join(tmp.make(), 'n1');
    const s = await openStore({ dataDir: dir, name: 'n1' });
    const staging = s.snapshotStaging();
    staging.clear();
    const value = 'v'.repeat(100_000);
    const keys = 200; // 20 MB, received in batches of 4 MB as a follower does
    for (let b = 0; b < keys; b += 40) staging.add(Array.from({ length: 40 }, (_, i): [string, unknown] => [`k${String(b + i).padStart(4, '0')}`, value]));
    const t = performance.now();
    await s.initializeCluster({ clusterId: CLUSTER, meta: meta(10), pairs: staging, hardState: hs });
    const installMs = performance.now() - t;
    assert.equal([...s.stateRange({})].length, keys);
    await s.close();
    const stateBytes = keys * value.length;
    const fileBytes = statSync(join(dir, 'data.mdb')).size;
    console.log(`# ${stateBytes / 1e6} MB received: data.mdb ${(fileBytes / 1e6).toFixed(1)} MB, install write ${installMs.toFixed(1)} ms`);
    assert.ok(fileBytes < 1.5 * stateBytes, `data.mdb is ${fileBytes} bytes for ${stateBytes} bytes of state: the snapshot was written twice`);
  });

  it('stored records: one store\'s records, checked by another and staged as they are, install to the same values with checksums that hold', async () => {
    const from = await openStore({ dataDir: join(tmp.make(), 'n1'), name: 'n1' });
    const values = pairs(0, 30, 'rec').map(([k, v], i): [string, unknown] => [k, { ...(v as object), text: 'é✓'.repeat(i * 10), nested: [[i], { n: null }] }]);
    await from.initializeCluster({ clusterId: CLUSTER, meta: meta(5), pairs: values, hardState: { ...hs, commit: 5 } });
    const source = from.stateSnapshot();
    const records: Array<[string, Uint8Array]> = [];
    // each record is a view of the read buffer, valid until the next read: kept as a copy
    for (let r = source.records!.next(); !r.done; r = source.records!.next()) records.push([r.value[0], Uint8Array.from(r.value[1])]);
    source.done();
    await from.close();
    const dir = join(tmp.make(), 'n2');
    const to = await openStore({ dataDir: dir, name: 'n2' });
    const staging = to.snapshotStaging();
    assert.equal(staging.readsRecords, true);
    staging.clear();
    assert.equal(staging.checkRecords(records), null);
    staging.add([], records);
    await to.initializeCluster({ clusterId: CLUSTER, meta: meta(5), pairs: staging, hardState: { ...hs, commit: 5 } });
    assert.deepEqual([...to.stateRange({})], values);
    await to.close();
    const report = await verifyStore(dir);
    assert.ok(report.ok, String(report.problem));
    // a record whose bytes changed is refused before anything is written
    const damaged = Uint8Array.from(records[3]![1]);
    damaged[damaged.length - 1]! ^= 1;
    const again = await openStore({ dataDir: dir, name: 'n2' });
    assert.match(String(again.snapshotStaging().checkRecords([records[0]!, ['k0003', damaged]])), /checksum/);
    await again.close();
  });
});
