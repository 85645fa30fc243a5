// A read-only sanity check of an LMDB data file, done with plain reads before LMDB maps it.
// Why: LMDB mmaps the file and trusts its meta page. A garbage file gives a cryptic error at best,
// and a truncated one makes the first read past EOF kill the whole process with SIGBUS. Reading
// the two meta pages ourselves turns both into a clear CORRUPT error and touches nothing.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MDB_MAGIC = 0xbeefc0de;
/** the page header before the meta record: 16 bytes in upstream LMDB, 24 in lmdb-js's fork */
const MAX_HEADER = 64;
// Offsets inside MDB_meta, relative to mm_magic (64-bit build): magic u32, version u32, address
// ptr, mapsize u64, 2 × MDB_db (48 bytes each; md_pad of the first = page size), last_pg, txnid.
const OFF_PSIZE = 24;
const OFF_LAST_PG = 120;
const OFF_TXNID = 128;

export interface LmdbFileInfo {
  pageSize: number;
  lastPage: number;
  txnId: number;
  fileSize: number;
}

/** `ok` with what the meta page says when the file looks sound, else a human-readable reason. */
export function checkLmdbDataFile(path: string): { ok: true; info: LmdbFileInfo } | { ok: false; reason: string } {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 2 * 512) return { ok: false, reason: `${path} is too small to be an LMDB file (${fileSize} bytes)` };
    const first = Buffer.alloc(Math.min(fileSize, 2 * 65536));
    readSync(fd, first, 0, first.length, 0);

    const magicAt = findMagic(first, 0);
    if (magicAt < 0) return { ok: false, reason: `${path} is not an LMDB file (no LMDB magic in its first page)` };
    const pageSize = first.readUInt32LE(magicAt + OFF_PSIZE);
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
      return { ok: false, reason: `${path} has an invalid page size ${pageSize}` };
    }
    if (fileSize < 2 * pageSize) return { ok: false, reason: `${path} is truncated (${fileSize} bytes, page size ${pageSize})` };

    // Two meta pages; LMDB uses the one with the higher txn id (the other is the previous commit).
    const metas: Array<{ lastPage: number; txnId: number }> = [];
    for (const base of [0, pageSize]) {
      let page = first.subarray(base, base + pageSize);
      if (page.length < pageSize) {
        page = Buffer.alloc(pageSize);
        readSync(fd, page, 0, pageSize, base);
      }
      const at = findMagic(page, 0);
      if (at < 0) continue;
      metas.push({ lastPage: Number(page.readBigUInt64LE(at + OFF_LAST_PG)), txnId: Number(page.readBigUInt64LE(at + OFF_TXNID)) });
    }
    const meta = metas.sort((a, b) => b.txnId - a.txnId)[0];
    if (!meta) return { ok: false, reason: `${path} has no valid LMDB meta page` };
    const needed = (meta.lastPage + 1) * pageSize;
    if (fileSize < needed) {
      return { ok: false, reason: `${path} is truncated: ${fileSize} bytes, but its last committed page needs ${needed}` };
    }
    return { ok: true, info: { pageSize, lastPage: meta.lastPage, txnId: meta.txnId, fileSize } };
  } finally {
    closeSync(fd);
  }
}

function findMagic(buf: Buffer, base: number): number {
  for (let off = base; off <= base + MAX_HEADER && off + 4 <= buf.length; off += 4) {
    if (buf.readUInt32LE(off) === MDB_MAGIC) return off;
  }
  return -1;
}
