// Store format upgrades: an older format is migrated in place, in one transaction. Format 2 adds a
// checksum to every record; a store written by an older Conclave (plain records) gains them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { open } from 'lmdb';
import { v7 as uuidv7 } from 'uuid';
import { MIGRATIONS, type Migration, openStore, STORE_FORMAT_VERSION, StoreError } from '../../runtime/store/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-store-migrate-');
after(() => tmp.cleanup());
const CLUSTER = '0199aaaa-0000-7000-8000-0000000000f1';

const openRaw = (dir: string, readOnly = false) => open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false, readOnly });

/**
 * A store as an older Conclave left it: plain msgpack records (no checksums), no marker file.
 * Format 1 has a cluster id and a generation; format 0 has neither.
 */
async function makeOldStore(formatVersion: 0 | 1): Promise<{ dir: string; nodeId: string }> {
  const dir = tmp.make();
  const nodeId = uuidv7();
  const env = openRaw(dir);
  const db = (name: string) => env.openDB({ name });
  const identity: Record<string, unknown> = { format: 'conclave-store', formatVersion, nodeId, name: 'ctrl1', createdAt: new Date().toISOString() };
  if (formatVersion === 1) Object.assign(identity, { clusterId: CLUSTER, generation: 1 });
  env.transactionSync(() => {
    db('identity').putSync('identity', identity);
    db('hardstate').putSync('hardState', { term: 3, vote: nodeId, commit: 12 });
    db('hardstate').putSync('applied', 10);
    db('snapshot').putSync('meta', { index: 10, term: 2, membership: { members: [{ nodeId, name: 'ctrl1', voter: true }] } });
    for (let i = 11; i <= 12; i++) db('log').putSync(i, [3, 'command', { op: 'put', key: `k${i}`, value: i }]);
    db('state').putSync('old-key', 'v');
    db('state').putSync('big', 'x'.repeat(10_000));
  });
  await env.close();
  return { dir, nodeId };
}

/** every record of every database: [db, key, crc matches] */
async function rawFrames(dir: string): Promise<Array<[string, unknown, boolean]>> {
  const env = openRaw(dir, true);
  const out: Array<[string, unknown, boolean]> = [];
  for (const name of ['identity', 'hardstate', 'log', 'snapshot', 'state']) {
    for (const { key, value } of env.openDB({ name, encoding: 'binary' }).getRange({})) {
      const b = Buffer.from(value as Uint8Array);
      out.push([name, key, b.length >= 4 && crc32(b.subarray(4)) === b.readUInt32BE(0)]);
    }
  }
  await env.close();
  return out;
}

const nextStep: Migration = {
  from: STORE_FORMAT_VERSION,
  description: 'a future step: rename state key old-key → new-key',
  up({ db }) {
    const state = db('state');
    state.putSync('new-key', state.get('old-key'));
    state.removeSync('old-key');
  },
};

describe('store: format migrations', () => {
  it('the shipped table is ordered and reaches the current format', () => {
    for (const [i, m] of MIGRATIONS.entries()) assert.equal(m.from, STORE_FORMAT_VERSION - MIGRATIONS.length + i);
  });

  for (const from of [1, 0] as const) {
    it(`upgrades a format-${from} store in place: every record gains its checksum, the data stays`, async () => {
      const { dir, nodeId } = await makeOldStore(from);
      assert.ok((await rawFrames(dir)).every(([, , ok]) => !ok), 'the old store has no checksums');
      const s = await openStore({ dataDir: dir, name: 'ctrl1' });
      assert.equal(s.identity().formatVersion, STORE_FORMAT_VERSION);
      assert.equal(s.identity().nodeId, nodeId);
      assert.equal(s.identity().generation, 1);
      assert.equal(s.identity().clusterId, from === 1 ? CLUSTER : null);
      assert.deepEqual(s.hardState(), { term: 3, vote: nodeId, commit: 12 });
      assert.equal(s.appliedIndex(), 10);
      assert.equal(s.snapshotMeta()?.index, 10);
      assert.deepEqual(
        s.entries(11, 13).map((e) => e.data),
        [11, 12].map((i) => ({ op: 'put', key: `k${i}`, value: i })),
      );
      assert.equal(s.stateGet('old-key'), 'v');
      assert.equal(s.stateGet('big'), 'x'.repeat(10_000));
      // an older store gets its member key at this open, and keeps it
      const memberKey = s.memberKey().publicKey;
      await s.close();
      const frames = await rawFrames(dir);
      assert.equal(frames.length, 10, 'the eight records of the old store, the member key and the boot counter');
      assert.deepEqual(
        frames.filter(([, , ok]) => !ok),
        [],
        'every record is checksummed',
      );
      assert.ok(existsSync(join(dir, 'conclave.store')), 'the marker is written');
      const again = await openStore({ dataDir: dir, name: 'ctrl1' });
      assert.equal(again.memberKey().publicKey, memberKey, 'the member key made at the upgrade is kept');
      assert.equal(again.stateGet('big'), 'x'.repeat(10_000));
      await again.close();
    });
  }

  it('runs the shipped steps, then a further one, in order; a build that knows fewer refuses the store', async () => {
    const { dir } = await makeOldStore(0);
    const order: number[] = [];
    const traced = [...MIGRATIONS, nextStep].map((m) => ({
      ...m,
      up(ctx: Parameters<Migration['up']>[0]) {
        order.push(m.from);
        m.up(ctx);
      },
    }));
    const s = await openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: STORE_FORMAT_VERSION + 1, migrations: traced } });
    assert.deepEqual(order, [...MIGRATIONS.map((m) => m.from), STORE_FORMAT_VERSION]);
    assert.equal(s.identity().formatVersion, STORE_FORMAT_VERSION + 1);
    assert.equal(s.stateGet('old-key'), undefined);
    assert.equal(s.stateGet('new-key'), 'v');
    await s.close();
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1' }), (e: unknown) => e instanceof StoreError && e.code === 'NEWER_FORMAT');
  });

  it('a failing migration changes nothing; a missing step is refused; the store upgrades afterwards', async () => {
    const { dir } = await makeOldStore(1);
    const broken: Migration = {
      from: 1,
      description: 'fails halfway',
      up(ctx) {
        MIGRATIONS[1]!.up(ctx);
        ctx.db('state').putSync('half', true);
        throw new Error('boom');
      },
    };
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1', testHooks: { migrations: [broken] } }), /boom/);
    assert.ok((await rawFrames(dir)).every(([, , ok]) => !ok), 'no record was rewritten');
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1', testHooks: { migrations: [] } }),
      (e: unknown) => e instanceof StoreError && e.code === 'CORRUPT' && /no migration from store format 1 to 2/.test(e.message),
    );
    const s = await openStore({ dataDir: dir, name: 'ctrl1' });
    assert.equal(s.stateGet('half'), undefined);
    assert.equal(s.stateGet('old-key'), 'v');
    await s.close();
  });
});
