// Damage found by the store itself (issue 17, item 4): records are checksummed and checked when
// read, a store that found damage writes nothing more, the marker keeps a dir that held a store
// from being re-created, and store files that are not regular files are refused before LMDB.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkBeforeOpen, openStore, StoreError } from '../../runtime/store/index.ts';
import { verifyStore } from '../../runtime/store/verify.ts';
import { fingerprintDir, tmpDirs } from '../helpers/tmp.ts';
import { assertUntouched, damage, flipByteAt, MARKER, makeMemberStore, settle } from './damage.ts';

const tmp = tmpDirs('conclave-store-damage-');
after(() => tmp.cleanup());

function isCorrupt(message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, 'CORRUPT', err.message);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.match(err.message, /restore the data dir from a backup/);
    return true;
  };
}

const noRand = () => {
  throw new Error('not used');
};

describe('store damage: checked when read', () => {
  it('a record damaged while the store is open is CORRUPT when read, and nothing is written after it', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    const s = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(s.stateGet('marker'), MARKER);
    // the disk changes under the open store (LMDB maps the file: the read sees the new bytes)
    damage(dir, 'flip-record', noRand);
    const damagedBytes = readFileSync(join(dir, 'data.mdb'));
    assert.throws(() => s.stateGet('marker'), isCorrupt(/data\.mdb: state key "marker" is damaged \(record checksum mismatch\)/));
    assert.ok(s.damage(), 'the store remembers');
    await assert.rejects(s.applyState(60, [{ key: 'a', value: 1 }]), isCorrupt(/state key "marker"/));
    await assert.rejects(s.persist({ hardState: { term: 9, vote: null, commit: 51 } }), isCorrupt(/state key "marker"/));
    assert.match(String(s.stateGet('key-0001')), /^value-1-/, 'undamaged records still read');
    await s.close();
    assert.ok(readFileSync(join(dir, 'data.mdb')).equals(damagedBytes), 'data.mdb not written after the damage was found');
  });

  it('a damaged log entry is CORRUPT in entries() and term()', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    const s = await openStore({ dataDir: dir, name: 'n1' });
    // the entries' values are 'w' × 100: flip a byte in each copy (LMDB's free pages may hold stale ones)
    const file = readFileSync(join(dir, 'data.mdb'));
    const needle = Buffer.from('w'.repeat(100));
    for (let at = file.indexOf(needle); at >= 0; at = file.indexOf(needle, at + needle.length)) flipByteAt(dir, at + 50);
    assert.throws(() => s.entries(2, 52), isCorrupt(/a log entry in \[2, 52\) is damaged/));
    assert.throws(() => s.term(51), isCorrupt(/log entry 51 is damaged/));
    await s.close();
  });
});

describe('store damage: refused at open, untouched', () => {
  it('a flipped byte in a record: refused, naming the database and the key', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    damage(dir, 'flip-record', noRand);
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'n1' }), isCorrupt(/data\.mdb is damaged: state "marker" \(checksum mismatch\)/));
    assertUntouched(before, dir);
    const report = await verifyStore(dir);
    assert.equal(report.ok, false);
    assert.deepEqual(report.damaged, [{ db: 'state', key: 'marker', reason: 'checksum mismatch' }]);
    assert.equal(report.dbs.state?.records, 601);
    assertUntouched(before, dir);
  });

  it('checks started before the open (as `conclave run` starts them): a damaged store is still refused at open, untouched; checks made for another dir are not taken', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    damage(dir, 'flip-record', noRand);
    await settle();
    const before = fingerprintDir(dir);
    const checked = checkBeforeOpen({ dataDir: dir, name: 'n1', create: true });
    checked.catch(() => {});
    await assert.rejects(openStore({ dataDir: dir, name: 'n1', checked }), isCorrupt(/data\.mdb is damaged: state "marker" \(checksum mismatch\)/));
    assertUntouched(before, dir);
    const clean = join(tmp.make(), 'n1');
    await makeMemberStore(clean);
    const cleanChecked = checkBeforeOpen({ dataDir: clean, name: 'n1', create: true });
    await assert.rejects(openStore({ dataDir: dir, name: 'n1', checked: cleanChecked }), /the checks given were made for/);
    await assert.rejects(openStore({ dataDir: clean, name: 'n2', checked: cleanChecked }), /the checks given were made for/);
    assertUntouched(before, dir);
    const s = await openStore({ dataDir: clean, name: 'n1', checked: cleanChecked });
    assert.equal(s.stateGet('marker'), MARKER);
    await s.close();
  });

  it('a clean store verifies: identity, format, counts', async () => {
    const dir = join(tmp.make(), 'n1');
    const { nodeId } = await makeMemberStore(dir);
    const r = await verifyStore(dir);
    assert.equal(r.ok, true);
    assert.equal(r.problem, null);
    assert.equal(r.nodeId, nodeId);
    assert.equal(r.name, 'n1');
    assert.equal(r.checksummed, true);
    // identity: the identity record, the member key and the boot counter
    assert.deepEqual(
      Object.fromEntries(Object.entries(r.dbs).map(([db, c]) => [db, c.records])),
      { hardstate: 2, identity: 3, log: 50, snapshot: 1, state: 601 },
    );
    console.log(`store verify of a ${Object.values(r.dbs).reduce((n, c) => n + c.bytes, 0)}-byte store: ${r.checkMs} ms in the child`);
  });

  it('a store in use by a live process is refused by verify (LOCKED), not read', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    const s = await openStore({ dataDir: dir, name: 'n1' });
    await assert.rejects(verifyStore(dir), (e: unknown) => e instanceof StoreError && e.code === 'LOCKED');
    await s.close();
  });
});

describe('store damage: the marker', () => {
  it('a dir that held a store and lost data.mdb is refused, naming the node', async () => {
    const dir = join(tmp.make(), 'n1');
    const { nodeId } = await makeMemberStore(dir);
    rmSync(join(dir, 'data.mdb'));
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(openStore({ dataDir: dir, name: 'n1' }), isCorrupt(new RegExp(`data\\.mdb is missing, but this directory held the store of node n1 \\(node id ${nodeId}\\)`)));
    assertUntouched(before, dir);
  });

  it('an empty data.mdb is a blank store only where no store was ever written (interrupted creation)', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    truncateSync(join(dir, 'data.mdb'), 0);
    await assert.rejects(openStore({ dataDir: dir, name: 'n1' }), isCorrupt(/data\.mdb is empty \(0 bytes\), but this directory held the store of node n1/));
    rmSync(join(dir, 'conclave.store')); // no marker: LMDB died before the first commit
    const s = await openStore({ dataDir: dir, name: 'n1' });
    assert.equal(s.identity().clusterId, null);
    await s.close();
  });

  it("another node's data.mdb copied into the dir is refused", async () => {
    const a = join(tmp.make(), 'n1');
    const b = join(tmp.make(), 'n1');
    await makeMemberStore(a);
    const { nodeId } = await makeMemberStore(b);
    copyFileSync(join(b, 'data.mdb'), join(a, 'data.mdb'));
    await assert.rejects(openStore({ dataDir: a, name: 'n1' }), isCorrupt(new RegExp(`holds the store of node id ${nodeId}, but this directory was created for node id`)));
  });

  it('a garbage marker is refused', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    writeFileSync(join(dir, 'conclave.store'), '{not json');
    await assert.rejects(openStore({ dataDir: dir, name: 'n1' }), isCorrupt(/marker file .*conclave\.store is unreadable/));
  });
});

describe('store damage: files that are not regular files', () => {
  for (const file of ['data.mdb', 'lock.mdb'] as const) {
    it(`a FIFO as ${file} is refused before LMDB opens it`, async () => {
      const dir = join(tmp.make(), 'n1');
      await makeMemberStore(dir);
      rmSync(join(dir, file));
      execFileSync('mkfifo', [join(dir, file)]);
      await assert.rejects(openStore({ dataDir: dir, name: 'n1' }), isCorrupt(new RegExp(`${file} is a FIFO, not a regular file`)));
      await assert.rejects(verifyStore(dir), isCorrupt(new RegExp(`${file} is a FIFO`)));
    });
  }
});
