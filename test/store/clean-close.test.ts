// The record of a clean close (runtime/store/cleanClose.ts): a store unchanged since this software
// closed it is walked in-process at the next open; anything else — killed, written since, a record
// that is stale, garbage or not a file — is walked in a child, where a crash of LMDB is a verdict.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLEAN_CLOSE_FILE, recordCleanClose } from '../../runtime/store/cleanClose.ts';
import { checkBeforeOpen, openStore, StoreError } from '../../runtime/store/index.ts';
import { fingerprintDir, tmpDirs } from '../helpers/tmp.ts';
import { assertUntouched, damage, MARKER, makeMemberStore, settle } from './damage.ts';

const tmp = tmpDirs('conclave-clean-close-');
after(() => tmp.cleanup());

async function walkedAt(dir: string, name = 'n1'): Promise<string | null> {
  return (await checkBeforeOpen({ dataDir: dir, name, create: false })).walked;
}

/** rewrite one byte of data.mdb with the value it has: the content is the same, the file was written */
function rewriteSameByte(dir: string, offset: number): void {
  const fd = openSync(join(dir, 'data.mdb'), 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

describe('store: the record of a clean close', () => {
  it('a store closed cleanly is walked in-process once; opened and closed again, it is recorded again', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    assert.ok(existsSync(join(dir, CLEAN_CLOSE_FILE)), 'close records it');
    const checked = checkBeforeOpen({ dataDir: dir, name: 'n1', create: false });
    assert.equal((await checked).walked, 'in-process');
    assert.ok(!existsSync(join(dir, CLEAN_CLOSE_FILE)) && !existsSync(join(dir, `${CLEAN_CLOSE_FILE}.taken`)), 'used once: gone once the store may be opened');
    const s = await openStore({ dataDir: dir, name: 'n1', create: false, checked });
    assert.equal(s.stateGet('marker'), MARKER);
    await s.close();
    assert.equal(await walkedAt(dir), 'in-process');
  });

  it('a store whose process was killed has no record: walked in a child', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    const script = `import { openStore } from ${JSON.stringify(new URL('../../runtime/store/index.ts', import.meta.url).href)};
      await openStore({ dataDir: ${JSON.stringify(dir)}, name: 'n1', create: false });
      process.kill(process.pid, 'SIGKILL');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    assert.ok(!existsSync(join(dir, CLEAN_CLOSE_FILE)));
    assert.equal(await walkedAt(dir), 'child');
  });

  it('a record that no longer describes data.mdb is not trusted: written since (even the same bytes), or a stale record put back', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    const record = readFileSync(join(dir, CLEAN_CLOSE_FILE));
    await settle();
    rewriteSameByte(dir, 4096 * 3);
    assert.equal(await walkedAt(dir), 'child', 'data.mdb was written after the close');

    // a record of an earlier close beside a store that was opened (and written) since
    const s = await openStore({ dataDir: dir, name: 'n1', create: false });
    await s.close();
    writeFileSync(join(dir, CLEAN_CLOSE_FILE), record);
    assert.equal(await walkedAt(dir), 'child', 'a stale record');
  });

  it('a record that is garbage, too large or not a regular file is no record (no hang, no error)', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    const path = join(dir, CLEAN_CLOSE_FILE);
    writeFileSync(path, '{"format":"conclave-clean-close"');
    assert.equal(await walkedAt(dir), 'child', 'not JSON');
    writeFileSync(path, `${JSON.stringify({ format: 'conclave-clean-close' })}${' '.repeat(5000)}`);
    assert.equal(await walkedAt(dir), 'child', 'too large');
    rmSync(path);
    execFileSync('mkfifo', [path]);
    assert.equal(await walkedAt(dir), 'child', 'a FIFO (reading it would block)');
  });

  it('a store refused unopened keeps its record and is left as found; the right node then walks it in-process', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    await settle();
    const before = fingerprintDir(dir);
    await assert.rejects(checkBeforeOpen({ dataDir: dir, name: 'n2', create: false }), (err: unknown) => err instanceof StoreError && err.code === 'NAME_MISMATCH');
    assertUntouched(before, dir);
    assert.equal(await walkedAt(dir), 'in-process');
  });

  it('damage the record cannot see (the disk changed a page, not the file times) is still found by the walk in-process; the record is dropped, and the child then gives the same verdict', async () => {
    const dir = join(tmp.make(), 'n1');
    await makeMemberStore(dir);
    damage(dir, 'flip-record', () => {
      throw new Error('not used');
    });
    recordCleanClose(dir); // as if the flip had left the file's times as the close recorded them
    const refused = (err: unknown) => err instanceof StoreError && err.code === 'CORRUPT' && /state "marker" \(checksum mismatch\)/.test(err.message);
    await assert.rejects(checkBeforeOpen({ dataDir: dir, name: 'n1', create: false }), refused);
    assert.ok(!existsSync(join(dir, CLEAN_CLOSE_FILE)) && !existsSync(join(dir, `${CLEAN_CLOSE_FILE}.taken`)), 'a damaged store is not trusted again');
    await assert.rejects(checkBeforeOpen({ dataDir: dir, name: 'n1', create: false }), refused);
  });
});
