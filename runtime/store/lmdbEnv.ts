// The LMDB environment under a node store: its named databases, their record keys, and how a
// failure of LMDB or of the disk is told apart. Shared by opening (open.ts) and the store's writes.
//
// The replicated state lives in one of two databases, `state` and `state2` (format ≥ 3): hardstate's
// `stateDb` record names the current one (absent: `state`). A snapshot being received is written
// into the other one as it arrives, and installing it switches the record (snapshotStaging.ts).
import { statfsSync } from 'node:fs';
import { type Database, type DatabaseOptions, open, type RootDatabase } from 'lmdb';
import type { EntryType } from '../../machines/raft/types.ts';
import type { ValueCodec } from './frame.ts';
import { checksummedCodec } from './frame.ts';
import type { DbName } from './identity.ts';

export const DB_NAMES: readonly DbName[] = ['identity', 'hardstate', 'log', 'snapshot', 'state'];
export const K_IDENTITY = 'identity';
export const K_HARD = 'hardState';
export const K_APPLIED = 'applied';
export const K_META = 'meta';
/** hardstate: which of STATE_DBS holds the replicated state (format ≥ 3; absent: 'state') */
export const K_STATE_DB = 'stateDb';
export const STATE_DBS = ['state', 'state2'] as const;
export type StateDbName = (typeof STATE_DBS)[number];
/** from this format on the state may live in either of STATE_DBS */
export const TWO_STATE_DBS_SINCE = 3;

export type Dbs = Record<DbName, Database<unknown, string | number>>;
/** a log entry as stored under its index */
export type StoredEntry = [term: number, type: EntryType, data: unknown];

export function openEnv(dataDir: string, readOnly: boolean): RootDatabase {
  return open({
    path: dataDir,
    // lmdb-js guesses "file, not directory" from an extension in the path (e.g. /var/lib/ctrl.d)
    noSubdir: false,
    maxDbs: 16,
    // THE durability setting: with overlappingSync a commit returns before its fsync
    overlappingSync: false,
    readOnly,
  });
}

/** the five databases; `framed`: values carry checksums (format ≥ 2), else lmdb-js's plain msgpack */
export function openDbs(env: RootDatabase, framed: boolean): Dbs {
  // env.encoder is lmdb-js's own msgpack encoder (no shared structures): framing wraps the very
  // bytes a format-1 store holds, so the upgrade only prefixes each record with its checksum
  const encoder = framed ? checksummedCodec(lmdbCodec(env)) : undefined;
  const db = (name: DbName) => openWith(env, name, encoder);
  return { identity: db('identity'), hardstate: db('hardstate'), log: db('log'), snapshot: db('snapshot'), state: db('state') };
}

/** the state database that is not `current` */
export function otherStateDb(current: StateDbName): StateDbName {
  return current === 'state' ? 'state2' : 'state';
}

/** what hardstate's `stateDb` record says (anything but 'state2' is 'state': the record is checksummed when read) */
export function currentStateDb(hardstate: Database<unknown, string | number>): StateDbName {
  return hardstate.get(K_STATE_DB) === 'state2' ? 'state2' : 'state';
}

/** whether the environment has a named database `name` (without creating it, as openDB would) */
export function hasDb(env: RootDatabase, name: string): boolean {
  for (const key of env.getKeys({})) if (key === name) return true;
  return false;
}

/** a named database with the value encoding of `like` (checksummed or plain) */
export function openLike(env: RootDatabase, name: string, like: Database<unknown, string | number>): Database<unknown, string | number> {
  return openWith(env, name, (like as unknown as { encoder?: ValueCodec }).encoder);
}

function openWith(env: RootDatabase, name: string, encoder: ValueCodec | undefined): Database<unknown, string | number> {
  return env.openDB<unknown, string | number>((encoder ? { name, encoder } : { name }) as DatabaseOptions & { name: string });
}

/** lmdb-js's msgpack encoder of the environment (its `encoder`, typed `any` by lmdb-js) */
export function lmdbCodec(env: RootDatabase): ValueCodec {
  return (env as unknown as { encoder: ValueCodec }).encoder;
}

/** lmdb-js errors that mean the pages are damaged (not a bug of ours, not a full disk) */
export function isLmdbDamage(err: unknown): boolean {
  return err instanceof Error && /MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_TXN|MDB_INVALID|MDB_BAD_VALSIZE/.test(err.message);
}

/** LMDB turns a short write on a full filesystem into EIO: tell that apart from a failing disk. */
export function diskAlmostFull(dataDir: string): boolean {
  try {
    const fs = statfsSync(dataDir);
    return fs.bavail * fs.bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

export function firstOf<T>(it: Iterable<T>): T | undefined {
  for (const v of it) return v;
  return undefined;
}
