// The record of a clean close: written beside data.mdb when a store closes without having found
// damage, it says what the file was then (device, inode, size, modification and change times to the
// nanosecond, and the meta page's transaction id and last page). A start that finds the file exactly
// so walks its records in its own process; any other start walks them in a child process
// (files.ts walkInChild), where a crash of LMDB on a damaged page is a verdict, not the node's death.
//
// Why this is safe: LMDB crashes only on pages it did not write itself. Nothing can write to
// data.mdb without changing its change time (ctime, which no user call sets), and this node's own
// next open writes (its boot counter) before it serves. The record is used once: it is taken aside
// before the walk that trusts it, so a crash during that walk leaves the next start to the child.
// What it does not catch is what no open-time check of a file the disk returns unchanged catches
// (the media flipping bits under an unchanged inode); the checksums checked on every read still do.
import { lstatSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_FILE, writeJsonDurably } from './files.ts';
import { checkLmdbDataFile } from './lmdb-file.ts';

export const CLEAN_CLOSE_FILE = 'closed-cleanly.json';
/** a record is a few hundred bytes: anything larger is not one */
const MAX_RECORD_BYTES = 4096;

/** what data.mdb was when its store closed cleanly; numbers as decimal strings (nanoseconds exceed 2^53) */
export interface CleanClose {
  format: 'conclave-clean-close';
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  txnId: number;
  lastPage: number;
}

/** data.mdb as it is now, or null when it cannot be described (missing, not an LMDB file) */
function describe(dataDir: string): CleanClose | null {
  const file = join(dataDir, DATA_FILE);
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return null;
  const check = checkLmdbDataFile(file);
  if (!check.ok) return null;
  return {
    format: 'conclave-clean-close',
    dev: String(st.dev),
    ino: String(st.ino),
    size: String(st.size),
    mtimeNs: String(st.mtimeNs),
    ctimeNs: String(st.ctimeNs),
    txnId: check.info.txnId,
    lastPage: check.info.lastPage,
  };
}

/**
 * Record that the store in `dataDir` was closed cleanly (call after its environment closed, while
 * its lock is still held). Durable (writeJsonDurably). Throws what the file system
 * throws; a record that was not written only makes the next start check in a child.
 */
export function recordCleanClose(dataDir: string): void {
  const record = describe(dataDir);
  if (record === null) return;
  writeJsonDurably(dataDir, CLEAN_CLOSE_FILE, record);
  dropCleanClose(dataDir); // one a crashed start left behind
}

/** the record while a start that trusts it checks the store: renamed, so that it keeps its times */
const TAKEN = `${CLEAN_CLOSE_FILE}.taken`;

/**
 * Whether data.mdb is exactly as the record of its last clean close describes. A record that
 * matches is taken (renamed aside: used once, so a crash during the walk that trusts it leaves the
 * next start to the child); `putBackCleanClose` returns it when the store is refused unopened, and
 * `dropCleanClose` removes it once the store may be opened for writing. A record that does not
 * match is left: the next clean close replaces it.
 */
export function takeCleanClose(dataDir: string): boolean {
  const path = join(dataDir, CLEAN_CLOSE_FILE);
  let recorded: Partial<CleanClose>;
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size > MAX_RECORD_BYTES) return false;
    recorded = JSON.parse(readFileSync(path, 'utf8')) as Partial<CleanClose>;
  } catch {
    return false; // absent, unreadable or not JSON: no record, so the child checks
  }
  const now = describe(dataDir);
  if (now === null || recorded?.format !== now.format) return false;
  for (const k of Object.keys(now) as Array<keyof CleanClose>) if (recorded[k] !== now[k]) return false;
  renameSync(path, join(dataDir, TAKEN));
  return true;
}

/** the record taken by takeCleanClose back in its place, as it was (the store was refused without being opened) */
export function putBackCleanClose(dataDir: string): void {
  renameSync(join(dataDir, TAKEN), join(dataDir, CLEAN_CLOSE_FILE));
}

/** the record taken by takeCleanClose removed (the store is about to be opened for writing) */
export function dropCleanClose(dataDir: string): void {
  rmSync(join(dataDir, TAKEN), { force: true });
}
