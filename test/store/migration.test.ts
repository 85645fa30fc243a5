// Store format upgrades: an older format is migrated in place, in one transaction.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { MIGRATIONS, type Migration, openStore, STORE_FORMAT_VERSION, StoreError } from '../../runtime/store/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-store-migrate-');
after(() => tmp.cleanup());

async function readRawIdentity(dir: string): Promise<Record<string, unknown>> {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, readOnly: true });
  const id = env.openDB({ name: 'identity' }).get('identity') as Record<string, unknown>;
  await env.close();
  return id;
}

/** a store as an older Conclave would have left it: format 0, no `generation` field yet */
async function makeFormat0Store(): Promise<{ dir: string; nodeId: string }> {
  const dir = tmp.make();
  const s = await openStore({ dataDir: dir, name: 'ctrl1' });
  await s.applyState(1, [{ key: 'old-key', value: 'v' }]);
  const nodeId = s.identity().nodeId;
  await s.close();
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
  const db = env.openDB({ name: 'identity' });
  env.transactionSync(() => {
    const { generation: _dropped, ...rest } = db.get('identity') as Record<string, unknown>;
    db.putSync('identity', { ...rest, formatVersion: 0 });
  });
  await env.close();
  return { dir, nodeId };
}

const v0to1: Migration = {
  from: 0,
  description: 'add identity.generation; rename state key old-key → new-key',
  up({ identity, db }) {
    identity.generation = 1;
    const state = db('state');
    state.putSync('new-key', state.get('old-key'));
    state.removeSync('old-key');
  },
};

describe('store: format migrations', () => {
  it('the shipped table is ordered and reaches the current format', () => {
    for (const [i, m] of MIGRATIONS.entries()) assert.equal(m.from, STORE_FORMAT_VERSION - MIGRATIONS.length + i);
  });

  it('upgrades an older store in place, identity and data together', async () => {
    const { dir, nodeId } = await makeFormat0Store();
    const s = await openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: 1, migrations: [v0to1] } });
    assert.equal(s.identity().formatVersion, 1);
    assert.equal(s.identity().generation, 1);
    assert.equal(s.identity().nodeId, nodeId);
    assert.equal(s.stateGet('old-key'), undefined);
    assert.equal(s.stateGet('new-key'), 'v');
    await s.close();
    assert.equal((await readRawIdentity(dir)).formatVersion, 1, 'durable');
  });

  it('runs several steps in order (0 → 1 → 2), then a build that only knows 1 refuses the store', async () => {
    const { dir } = await makeFormat0Store();
    const order: number[] = [];
    const v1to2: Migration = {
      from: 1,
      description: 'add a marker',
      up({ db }) {
        order.push(1);
        db('state').putSync('format2', true);
      },
    };
    const first: Migration = {
      ...v0to1,
      up(ctx) {
        order.push(0);
        v0to1.up(ctx);
      },
    };
    const s = await openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: 2, migrations: [v1to2, first] } });
    assert.deepEqual(order, [0, 1]);
    assert.equal(s.identity().formatVersion, 2);
    assert.equal(s.stateGet('format2'), true);
    await s.close();
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: 1, migrations: [v0to1] } }),
      (e: unknown) => e instanceof StoreError && e.code === 'NEWER_FORMAT',
    );
  });

  it('a failing migration changes nothing', async () => {
    const { dir } = await makeFormat0Store();
    const broken: Migration = {
      from: 0,
      description: 'fails halfway',
      up({ identity, db }) {
        identity.generation = 1;
        db('state').putSync('half', true);
        throw new Error('boom');
      },
    };
    await assert.rejects(openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: 1, migrations: [broken] } }), /boom/);
    const raw = await readRawIdentity(dir);
    assert.equal(raw.formatVersion, 0);
    assert.equal(raw.generation, undefined);
    // a missing step is refused too, and the store can still be upgraded afterwards
    await assert.rejects(
      openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: 1, migrations: [] } }),
      (e: unknown) => e instanceof StoreError && e.code === 'CORRUPT' && /no migration from store format 0 to 1/.test(e.message),
    );
    const s = await openStore({ dataDir: dir, name: 'ctrl1', testHooks: { formatVersion: 1, migrations: [v0to1] } });
    assert.equal(s.stateGet('half'), undefined);
    assert.equal(s.stateGet('new-key'), 'v');
    await s.close();
  });
});
