// Issue 17, item 11: a snapshot being received is written to the store's staging area as it
// arrives (never held whole in memory) and moved into the state by the one durable write that
// installs it. Until then the state is untouched: a crash mid-transfer leaves the old state and
// the identity as they were, and a joining node's first state and its cluster id stay one write.
import assert from 'node:assert/strict';
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
    assert.equal(report.dbs.staging?.records ?? 0, 0);
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
    assert.equal(report.dbs.staging?.records, 40, 'the partial transfer is still staged (scratch)');
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
});
