// Issue 17, item 11: what a half-received or refused snapshot left in the store is scratch, and it
// does not stay on disk until the next transfer: it is cleared when the store opens, when the raft
// core refuses the snapshot, and when the transfer is abandoned (a gap, a newer transfer).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import type { AppliedState } from '../../actors/appliedState.ts';
import type { PeerChunk } from '../../actors/peerWire.ts';
import { type MemberBus, realClock } from '../../actors/ports.ts';
import { MemberSnapshots, type SnapshotsHost, snapshotTiming } from '../../actors/snapshots.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { RateLimitedLog } from '../../runtime/log/rateLimit.ts';
import { frame } from '../../runtime/store/frame.ts';
import { MIGRATIONS, type NodeStore, openStore, STORE_FORMAT_VERSION } from '../../runtime/store/index.ts';
import { verifyStore } from '../../runtime/store/verify.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-leftovers-');
after(() => tmp.cleanup());

const CLUSTER = '0199aaaa-0000-7000-8000-0000000000b2';
const meta = (index: number) => ({ index, term: 3, membership: { members: [{ nodeId: 'n', name: 'n1', voter: true }] } });
const pairs = (from: number, n: number, tag: string): Array<[string, unknown]> =>
  Array.from({ length: n }, (_, i) => [`k${String(from + i).padStart(4, '0')}`, { tag, i: from + i, pad: 'x'.repeat(500) }]);

/** records in every database of the (closed) store */
async function records(dir: string): Promise<number> {
  const report = await verifyStore(dir);
  assert.ok(report.ok, String(report.problem));
  return Object.values(report.dbs).reduce((n, db) => n + db.records, 0);
}

/** a member store holding 3 pairs at index 5, closed; returns its record count */
async function memberStore(dir: string): Promise<number> {
  const s = await openStore({ dataDir: dir, name: 'n1' });
  await s.initializeCluster({ clusterId: CLUSTER, meta: meta(5), pairs: pairs(0, 3, 'old'), hardState: { term: 3, vote: null, commit: 5 } });
  await s.close();
  return records(dir);
}

describe('snapshot leftovers', () => {
  it('a crash mid-transfer: the partial snapshot is cleared when the store opens again, the state kept', async () => {
    const dir = join(tmp.make(), 'n1');
    const clean = await memberStore(dir);
    const s = await openStore({ dataDir: dir, name: 'n1' });
    const staging = s.snapshotStaging();
    staging.clear();
    staging.add(pairs(0, 40, 'partial'));
    await s.close(); // the process dies here, before the install
    assert.equal(await records(dir), clean + 40, 'the partial transfer is on disk');
    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.deepEqual([...again.stateRange({})], pairs(0, 3, 'old'), 'the old state, whole');
    await again.close();
    assert.equal(await records(dir), clean, 'nothing of the partial transfer is left');
  });

  for (const ending of ['refused by the core', 'abandoned (a gap)'] as const) {
    it(`a snapshot ${ending}: what was received is cleared at once`, async () => {
      const dir = join(tmp.make(), 'n1');
      const clean = await memberStore(dir);
      const store = await openStore({ dataDir: dir, name: 'n1' });
      const { snapshots, delivered } = receiver(store, () => false);
      const message = { type: 'snapshot' as const, from: 'leader', to: 'self', term: 3, snapshot: meta(20) };
      const chunk = (seq: number, last: boolean): PeerChunk => ({ message, id: 't1', seq, last, pairs: pairs(seq * 10, 10, 'new') });
      // chunks of 5 KB: 4 MB would be one batch, so make every chunk count as a batch of its own
      for (let seq = 0; seq < 3; seq++) snapshots.onChunk(chunk(seq, false), 'leader', 1, 5 * 1024 * 1024);
      if (ending === 'refused by the core') snapshots.onChunk(chunk(3, true), 'leader', 1, 5 * 1024 * 1024);
      else snapshots.onChunk(chunk(5, false), 'leader', 1, 5 * 1024 * 1024);
      assert.equal(delivered.length, ending === 'refused by the core' ? 1 : 0);
      snapshots.cancel(new Error('test over'));
      await store.close();
      assert.equal(await records(dir), clean, 'nothing received is left in the store');
    });
  }

  it('a store of format 2 with a half-received snapshot in its staging database: upgraded, the staging database gone, the state kept', async () => {
    const dir = join(tmp.make(), 'n1');
    const s = await openStore({ dataDir: dir, name: 'n1', testHooks: { formatVersion: 2, migrations: MIGRATIONS.slice(0, 2) } });
    await s.initializeCluster({ clusterId: CLUSTER, meta: meta(5), pairs: pairs(0, 3, 'old'), hardState: { term: 3, vote: null, commit: 5 } });
    await s.close();
    // what a format-2 node killed mid-transfer left: checksummed pairs in `staging`
    const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
    const staging = env.openDB<Uint8Array, string>({ name: 'staging', encoding: 'binary' });
    env.transactionSync(() => {
      for (const [k] of pairs(0, 20, 'partial')) staging.putSync(k, frame(Buffer.from(k)));
    });
    await env.close();
    assert.equal((await verifyStore(dir)).dbs.staging?.records, 20);
    const upgraded = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(upgraded.identity().formatVersion, STORE_FORMAT_VERSION);
    assert.deepEqual([...upgraded.stateRange({})], pairs(0, 3, 'old'));
    await upgraded.close();
    const report = await verifyStore(dir);
    assert.ok(report.ok, String(report.problem));
    assert.equal(report.dbs.staging, undefined, 'the staging database is gone');
  });
});

/** a follower's MemberSnapshots over a real store; `deliver` answers whether the core takes the snapshot */
function receiver(store: NodeStore, deliver: () => boolean): { snapshots: MemberSnapshots; delivered: unknown[] } {
  const delivered: unknown[] = [];
  const log = silentLogger();
  const bus = { publish: () => {}, maxPayload: 1024 * 1024 } as unknown as MemberBus;
  const host: SnapshotsHost = {
    name: 'n1',
    store,
    bus,
    log,
    dropLog: new RateLimitedLog(log),
    joiningClusterId: null,
    state: { discard: () => {}, openSnapshot: () => store.stateSnapshot() } as unknown as AppliedState,
    hostState: null,
    nodeId: () => 'self',
    sender: () => ({ name: 'n1', nodeId: 'self', clusterId: CLUSTER }),
    peerSubject: () => 'peer.subject',
    nameOf: () => 'leader',
    drop: () => {},
    deliver: (m) => {
      delivered.push(m);
      return deliver();
    },
    progress: () => {},
    snapshotMetaAt: () => meta(20),
    transferEnded: () => {},
    clock: realClock,
  };
  return { snapshots: new MemberSnapshots(host, snapshotTiming(64 * 1024, 500)), delivered };
}
