// Shared by the damaged-store tests: a real store with data, ways to damage its files the way
// disks and careless operators do, and the check that a refused store was left as found.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../runtime/store/index.ts';
import { fingerprintDir } from '../helpers/tmp.ts';

export const CLUSTER = '0199aaaa-0000-7000-8000-00000000d00d';
/** a state value we can find in data.mdb, to damage the page (or the bytes) that hold it */
export const MARKER = 'MARKER-VALUE-0123456789abcdef';

/** a member store (cluster id, snapshot, 600 state keys, log entries) in `dataDir`, closed */
export async function makeMemberStore(dataDir: string, name = 'n1'): Promise<{ nodeId: string }> {
  const store = await openStore({ dataDir, name });
  const self = { nodeId: store.identity().nodeId, name, voter: true };
  const pairs: Array<[string, unknown]> = Array.from({ length: 600 }, (_, i) => [`key-${String(i).padStart(4, '0')}`, `value-${i}-${'v'.repeat(150)}`]);
  pairs.push(['marker', MARKER]);
  await store.initializeCluster({ clusterId: CLUSTER, meta: { index: 1, term: 1, membership: { members: [self] } }, pairs, hardState: { term: 1, vote: null, commit: 1 } });
  const entries = Array.from({ length: 50 }, (_, i) => ({ index: i + 2, term: 1, type: 'command' as const, data: { op: 'put', key: `log-${i}`, value: 'w'.repeat(100) } }));
  await store.persist({ hardState: { term: 1, vote: null, commit: 51 }, entries });
  const nodeId = store.identity().nodeId;
  await store.close();
  return { nodeId };
}

const dataFile = (dir: string) => join(dir, 'data.mdb');

/** byte offsets of MARKER in data.mdb: the live copy, and any stale ones in LMDB's free pages */
export function markerOffsets(dir: string): number[] {
  const file = readFileSync(dataFile(dir));
  const needle = Buffer.from(MARKER);
  const out: number[] = [];
  for (let at = file.indexOf(needle); at >= 0; at = file.indexOf(needle, at + needle.length)) out.push(at);
  assert.ok(out.length > 0, 'the marker value is in data.mdb');
  return out;
}

export function pageSizeOf(dir: string): number {
  // LMDB's meta page: the page size is at offset 24 from the magic (runtime/store/lmdb-file.ts)
  const head = Buffer.alloc(4096);
  const fd = openSync(dataFile(dir), 'r');
  readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  for (let off = 0; off <= 64; off += 4) if (head.readUInt32LE(off) === 0xbeefc0de) return head.readUInt32LE(off + 24);
  throw new Error('no LMDB magic');
}

function overwrite(dir: string, offset: number, bytes: Buffer): void {
  const fd = openSync(dataFile(dir), 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

/** flip one bit of the byte at `offset` of data.mdb */
export function flipByteAt(dir: string, offset: number): void {
  const b = readFileSync(dataFile(dir)).subarray(offset, offset + 1);
  overwrite(dir, offset, Buffer.from([b[0]! ^ 0x20]));
}

export type Damage = 'truncate-0' | 'truncate-mid' | 'zero-page' | 'random-page' | 'flip-record' | 'fifo' | 'directory';

/** damage the store in `dir`; `rand` gives bytes for the random page (seeded by the caller) */
export function damage(dir: string, kind: Damage, rand: (n: number) => Buffer): void {
  const file = dataFile(dir);
  switch (kind) {
    case 'truncate-0':
      truncateSync(file, 0);
      return;
    case 'truncate-mid':
      truncateSync(file, Math.floor(statSync(file).size / 2));
      return;
    case 'zero-page':
    case 'random-page': {
      const ps = pageSizeOf(dir);
      for (const at of markerOffsets(dir)) overwrite(dir, Math.floor(at / ps) * ps, kind === 'zero-page' ? Buffer.alloc(ps) : rand(ps));
      return;
    }
    case 'flip-record':
      for (const at of markerOffsets(dir)) flipByteAt(dir, at + 7);
      return;
    case 'fifo':
      rmSync(file);
      execFileSync('mkfifo', [file]);
      return;
    case 'directory':
      rmSync(file);
      mkdirSync(file);
      return;
  }
}

/**
 * The directory is as it was: same entries, same bytes and mtimes. The one exception is LMDB's
 * own lock file (lock.mdb, its reader table), which even a read-only open rewrites: its mtime
 * must be put back, its bytes are not data.
 */
export function assertUntouched(before: ReturnType<typeof fingerprintDir>, dir: string, what = dir): void {
  const now = fingerprintDir(dir);
  assert.deepEqual(Object.keys(now.files), Object.keys(before.files), `${what}: no file created or removed`);
  for (const [name, f] of Object.entries(before.files)) {
    const g = now.files[name]!;
    if (name === 'lock.mdb') {
      assert.ok(Math.abs(g.mtimeMs - f.mtimeMs) < 0.01, `${what}: lock.mdb mtime restored (${f.mtimeMs} vs ${g.mtimeMs})`);
      continue;
    }
    assert.deepEqual(g, f, `${what}: ${name} unchanged`);
  }
  assert.ok(Math.abs(now.dirMtimeMs - before.dirMtimeMs) < 0.01, `${what}: directory mtime unchanged`);
}

/** make later modifications visible as mtime changes, even on coarse-timestamp filesystems */
export function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20));
}
