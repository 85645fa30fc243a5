// The identity record when a store is opened: read in either encoding (framed since format 2),
// created for a blank store, or migrated up to the current format — in one transaction.
import { join } from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import { v7 as uuidv7 } from 'uuid';
import type { HardState } from '../../machines/raft/types.ts';
import type { Logger } from '../log/logger.ts';
import { isFullError, isIoError, StoreError } from './errors.ts';
import { checkIdentity, neverWritten } from './examine.ts';
import { corrupt, DATA_FILE } from './files.ts';
import { DamagedRecordError, unframe } from './frame.ts';
import {
  type DbName,
  FRAMED_SINCE,
  type Migration,
  type MigrationContext,
  type MigrationDb,
  peekFormat,
  STORE_FORMAT,
  type StoreIdentity,
  validateIdentity,
} from './identity.ts';
import { K_BOOT, nextBoot } from './boot.ts';
import { K_MEMBER_KEY, type MemberKey, newMemberKey, readMemberKey, type StoredMemberKey } from './memberKey.ts';
import {
  currentStateDb,
  DB_NAMES,
  type Dbs,
  diskAlmostFull,
  firstOf,
  hasDb,
  isLmdbDamage,
  K_APPLIED,
  K_HARD,
  K_IDENTITY,
  lmdbCodec,
  openDbs,
  openLike,
  TWO_STATE_DBS_SINCE,
} from './lmdbEnv.ts';

/** An identity record's value and whether it was framed; undefined when absent, null when unreadable. */
function decodeIdentity(env: RootDatabase, bytes: Uint8Array | undefined): { raw: unknown; framed: boolean } | null | undefined {
  if (bytes === undefined) return undefined;
  const dec = (b: Uint8Array) => {
    try {
      return lmdbCodec(env).decode(b);
    } catch {
      return undefined;
    }
  };
  try {
    const raw = dec(unframe(bytes));
    const v = peekFormat(raw)?.formatVersion;
    if (typeof v === 'number' && v >= FRAMED_SINCE) return { raw, framed: true };
  } catch {
    /* not framed, or damaged: see whether it is a format-0/1 record */
  }
  const raw = dec(bytes);
  const v = peekFormat(raw)?.formatVersion;
  return typeof v === 'number' && v < FRAMED_SINCE ? { raw, framed: false } : null;
}

/** the identity record of a node store opened by someone else (e.g. refused as an init source), any format */
export function readStoredIdentity(env: RootDatabase): unknown {
  const stored = decodeIdentity(env, env.openDB<Uint8Array, string>({ name: 'identity', encoding: 'binary' }).getBinary('identity'));
  return stored?.raw;
}

export function loadOrCreateIdentity(
  env: RootDatabase,
  dbs: Dbs,
  dataDir: string,
  name: string | null,
  target: number,
  migrations: readonly Migration[],
  log: Logger | undefined,
): { identity: StoreIdentity; memberKey: MemberKey; boot: number } {
  let result: StoreIdentity | undefined;
  let memberKey: MemberKey | undefined;
  let boot: number | undefined;
  // raw bytes, and the plain (format < 2) encoding older migration steps read and write
  const bin = {} as Record<DbName, Database<Uint8Array, string | number>>;
  for (const n of DB_NAMES) bin[n] = env.openDB<Uint8Array, string | number>({ name: n, encoding: 'binary' });
  const plain = openDbs(env, false);
  const run = () => {
    loadIdentity();
    if (result) {
      memberKey = loadOrCreateMemberKey(dbs, result, dataDir, log);
      boot = takeBoot(dbs, dataDir);
    }
  };
  const loadIdentity = () => {
    const stored = decodeIdentity(env, bin.identity.getBinary(K_IDENTITY));
    const blank = stored === undefined && DB_NAMES.every((n) => firstOf(dbs[n].getKeys({ limit: 1 })) === undefined);
    if (blank && name === null) throw neverWritten(dataDir);
    if (blank && name !== null) {
      const identity: StoreIdentity = {
        format: STORE_FORMAT,
        formatVersion: target,
        nodeId: uuidv7(),
        name,
        clusterId: null,
        generation: 1,
        createdAt: new Date().toISOString(),
      };
      const res = validateIdentity(identity);
      if (!res.ok) throw new TypeError(`cannot create a store for node ${JSON.stringify(name)}: ${res.reason}`);
      dbs.identity.putSync(K_IDENTITY, identity);
      dbs.hardstate.putSync(K_HARD, { term: 0, vote: null, commit: 0 } satisfies HardState);
      dbs.hardstate.putSync(K_APPLIED, 0);
      log?.info({ dataDir, nodeId: identity.nodeId, name }, 'created a new store');
      result = identity;
      return;
    }
    if (stored === null) throw corrupt(dataDir, `${join(dataDir, DATA_FILE)}: its identity record is damaged`);
    checkIdentity(stored?.raw, dataDir, name, target); // again, now under the lock
    const record = { ...(stored!.raw as Record<string, unknown>) };
    let v = record.formatVersion as number;
    if (v < target) {
      const from = v;
      // each step sees the databases in the encoding of the format it starts from
      while (v < target) {
        const m = migrations.find((x) => x.from === v);
        if (!m) throw corrupt(dataDir, `no migration from store format ${v} to ${v + 1} (a Conclave bug)`);
        const dbsOf = v < FRAMED_SINCE ? plain : dbs;
        // 'state' is the current state database (format ≥ 3 may keep it in state2)
        const inState2 = v >= TWO_STATE_DBS_SINCE && currentStateDb(dbs.hardstate) === 'state2';
        const db = (n: DbName) => (inState2 && n === 'state' ? openLike(env, 'state2', dbsOf.state) : dbsOf[n]);
        const raw = (n: DbName) => (inState2 && n === 'state' ? env.openDB<Uint8Array, string | number>({ name: 'state2', encoding: 'binary' }) : bin[n]);
        m.up({
          db: (n) => db(n) as unknown as MigrationDb,
          raw: (n) => raw(n) as unknown as ReturnType<MigrationContext['raw']>,
          identity: record,
          dropDb: (n) => {
            if (hasDb(env, n)) env.openDB({ name: n }).dropSync();
          },
        });
        log?.info({ dataDir, from: v, to: v + 1, migration: m.description }, 'store format migrated');
        v++;
      }
      record.formatVersion = target;
      const res = validateIdentity(record);
      if (!res.ok) throw corrupt(dataDir, `its identity is invalid after migrating from format ${from} (${res.reason})`);
      (target >= FRAMED_SINCE ? dbs : plain).identity.putSync(K_IDENTITY, res.identity);
      result = res.identity;
      return;
    }
    const res = validateIdentity(record);
    if (!res.ok) throw corrupt(dataDir, `its identity record is invalid (${res.reason})`);
    result = res.identity;
  };
  try {
    env.transactionSync(run);
  } catch (err) {
    if (err instanceof StoreError || err instanceof TypeError) throw err;
    if (err instanceof DamagedRecordError || isLmdbDamage(err)) throw corrupt(dataDir, `${join(dataDir, DATA_FILE)}: ${(err as Error).message}`, err);
    if (isFullError(err) || (isIoError(err) && diskAlmostFull(dataDir))) {
      throw new StoreError('FULL', `cannot open the store in ${dataDir}: the disk is full (${(err as Error).message}); free space and retry`, {
        dataDir,
        cause: err,
      });
    }
    throw err;
  }
  if (!result || !memberKey || boot === undefined) throw corrupt(dataDir, 'its identity could not be loaded');
  return { identity: result, memberKey, boot };
}

/** this open's boot counter (boot.ts), written before the store is used */
function takeBoot(dbs: Dbs, dataDir: string): number {
  const next = nextBoot(dbs.identity.get(K_BOOT), Date.now());
  if (typeof next === 'string') throw corrupt(dataDir, `${join(dataDir, DATA_FILE)}: ${next}`);
  dbs.identity.putSync(K_BOOT, next);
  return next.boot;
}

/** the member key of `identity`, made now if this store has none (a new store, or one of an older release) */
function loadOrCreateMemberKey(dbs: Dbs, identity: StoreIdentity, dataDir: string, log: Logger | undefined): MemberKey {
  let raw = dbs.identity.get(K_MEMBER_KEY);
  if (raw === undefined) {
    raw = newMemberKey(identity.nodeId, identity.generation);
    dbs.identity.putSync(K_MEMBER_KEY, raw);
    log?.info({ dataDir, nodeId: identity.nodeId, publicKey: (raw as StoredMemberKey).publicKey }, 'created the member key');
  }
  const key = readMemberKey(raw, identity.nodeId);
  if (typeof key === 'string') throw corrupt(dataDir, `${join(dataDir, DATA_FILE)}: ${key}`);
  return key;
}
