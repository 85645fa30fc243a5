// The core every part of a node store shares: the LMDB environment, the in-memory mirrors of what
// is committed, and THE two ways to touch the databases — read() turns damage into CORRUPT (and
// refuses every later write), write() runs one durable transaction, enforces the size limit and maps
// failures to StoreError. The parts (raftLog.ts, replicatedState.ts, snapshots.ts) are functions
// over it; NodeStore (store.ts) is the public face.
import { join } from 'node:path';
import type { Database, DatabaseOptions, RootDatabase } from 'lmdb';
import type { HardState, SnapshotMeta } from '../../machines/raft/types.ts';
import type { Logger } from '../log/logger.ts';
import { isFullError, isIoError, StoreError } from './errors.ts';
import { corrupt, DATA_FILE } from './files.ts';
import { recordCleanClose } from './cleanClose.ts';
import { DamagedRecordError, isChecksummed } from './frame.ts';
import type { MemberKey } from './memberKey.ts';
import { type IdentityPatch, STORE_FORMAT, type StoreIdentity, validateIdentity } from './identity.ts';
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
  K_META,
  openLike,
  otherStateDb,
  type StateDbName,
} from './lmdbEnv.ts';
import type { LockHandle } from './lock.ts';

/** an lmdb-js `encoder` that reads values as views of their bytes (rawState), and writes nothing */
const VIEWS = {
  encode(): Uint8Array {
    throw new Error('the raw view of the state is read-only');
  },
  decode: (buf: Uint8Array, end?: unknown) => buf.subarray(0, typeof end === 'number' ? end : buf.length),
};

/**
 * How a write reaches the disk. 'durable': on disk when write() returns (LMDB flushes the pages it
 * wrote, then its meta page) — what raft's persist, snapshots, compaction and the identity need.
 * 'ordered': the pages flushed but the meta page not (LMDB's MDB_NOMETASYNC): atomic and consistent,
 * never a damaged file, but an operating-system crash may undo it until the next durable write or
 * the operating system's own flush, whichever comes first — for the applied state, which is
 * rebuilt from the log: the log entries it applied stay until a durable write (compaction) follows,
 * and that write makes the applies before it durable too; and for a snapshot being received
 * (snapshotStaging.ts), scratch until the durable write that installs it. Half the flushes of each.
 */
export type Durability = 'durable' | 'ordered';
/** lmdb-js's transactionSync flags: its default (abortable, synchronous commit), then with MDB_NOMETASYNC (lmdb.h) */
const TXN_FLAGS: Record<Durability, number> = { durable: 3, ordered: 3 | 0x40000 };

export class StoreCore {
  readonly dataDir: string;
  readonly env: RootDatabase;
  /** the databases; `state` is the current state database (switchState() changes it) */
  db: Dbs;
  /** which of the two state databases `db.state` is */
  stateDb: StateDbName;
  /** the other one, once opened (a snapshot being received is written there) */
  #spare: Database<unknown, string | number> | null = null;
  readonly log: Logger | undefined;
  readonly #lock: LockHandle;
  readonly #limitBytes: number | undefined;
  #closed = false;
  /** an ordered write (an apply, a staged batch) committed since the last durable one */
  #orderedPending = false;
  /** set when a read found damage: from then on nothing is written (CORRUPT) */
  damaged: StoreError | null = null;
  /** told once, when a read first finds damage (onDamage) */
  readonly #damageListeners = new Set<(err: StoreError) => void>();
  // In-memory mirrors of what is committed; the parts update them only after a commit succeeded.
  /** frozen: replace it with setIdentity() */
  identity: StoreIdentity;
  /** replaced only by recovery (a new identity generation) */
  memberKey: MemberKey;
  /** this open's boot counter (boot.ts) */
  readonly boot: number;
  hard: HardState;
  applied: number;
  snap: SnapshotMeta | null;
  first: number;
  last: number;

  constructor(
    dataDir: string,
    env: RootDatabase,
    dbs: Dbs,
    lock: LockHandle,
    identity: StoreIdentity,
    memberKey: MemberKey,
    boot: number,
    limitBytes: number | undefined,
    log: Logger | undefined,
  ) {
    this.dataDir = dataDir;
    this.env = env;
    this.#lock = lock;
    this.#limitBytes = limitBytes;
    this.log = log;
    this.stateDb = this.read('the state database record', () => currentStateDb(dbs.hardstate));
    this.db = this.stateDb === 'state' ? dbs : { ...dbs, state: openLike(env, this.stateDb, dbs.state) };
    this.identity = frozen(identity);
    this.memberKey = memberKey;
    this.boot = boot;
    this.hard = { ...(this.read('hard state', () => dbs.hardstate.get(K_HARD) as HardState | undefined) ?? { term: 0, vote: null, commit: 0 }) };
    this.applied = this.read('applied index', () => dbs.hardstate.get(K_APPLIED) as number | undefined) ?? 0;
    this.snap = this.read('snapshot meta', () => dbs.snapshot.get(K_META) as SnapshotMeta | undefined) ?? null;
    const firstKey = firstOf(dbs.log.getKeys({ limit: 1 }));
    const lastKey = firstOf(dbs.log.getKeys({ reverse: true, limit: 1 }));
    this.first = this.snap ? this.snap.index + 1 : typeof firstKey === 'number' ? firstKey : 1;
    this.last = Math.max(typeof lastKey === 'number' ? lastKey : 0, this.first - 1);
    // the cheap full check: the log's first and last entries decode and pass their checksums
    if (typeof firstKey === 'number') this.read(`log entry ${firstKey}`, () => dbs.log.get(firstKey));
    if (typeof lastKey === 'number') this.read(`log entry ${lastKey}`, () => dbs.log.get(lastKey));
  }

  /** closes the environment and releases the data-dir lock; idempotent */
  async close(): Promise<void> {
    if (this.#closed) return;
    // what the last applies left to the operating system to flush (ordered writes), made durable: a
    // node stopped cleanly applies nothing again at its next start, whatever happens to the machine meanwhile
    if (this.#orderedPending && this.damaged === null) {
      try {
        this.write('the flush at close', () => this.db.hardstate.putSync(K_APPLIED, this.applied));
      } catch (err) {
        this.log?.warn({ dataDir: this.dataDir, err }, 'the last applies could not be flushed at close (a crash of the machine now may undo them; the node applies them again from its log)');
      }
    }
    this.#closed = true;
    try {
      await this.env.close();
      // closed without damage found: the next start may walk it in its own process (cleanClose.ts)
      if (this.damaged === null) this.#recordCleanClose();
    } finally {
      this.#lock.release();
    }
    this.log?.debug({ dataDir: this.dataDir }, 'store closed');
  }

  #recordCleanClose(): void {
    try {
      recordCleanClose(this.dataDir);
    } catch (err) {
      // not an error of the close: without the record, the next start checks the store in a child
      this.log?.warn({ dataDir: this.dataDir, err }, 'could not record the clean close (the next start checks the store in a child process)');
    }
  }

  /**
   * The current state database read as bytes (its records as stored, checksum included): what a
   * snapshot transfer sends as it is (`records`), or null when the records are not checksummed.
   * Read-only. A value read is a view of lmdb-js's read buffer or of the map, not a copy: valid
   * until the next read (copy what is kept).
   */
  rawState(): Database<Uint8Array, string> | null {
    if (!isChecksummed((this.db.state as unknown as { encoder?: unknown }).encoder)) return null;
    let raw = this.#raw.get(this.stateDb);
    if (raw === undefined) {
      raw = this.env.openDB<Uint8Array, string>({ name: this.stateDb, encoder: VIEWS } as DatabaseOptions & { name: string });
      this.#raw.set(this.stateDb, raw);
    }
    return raw;
  }

  readonly #raw = new Map<StateDbName, Database<Uint8Array, string>>();

  /**
   * The state database that is not current, where a snapshot being received is written; null when
   * it does not exist and `create` is false (a store that never received one has no such database).
   */
  spareState(create: boolean): Database<unknown, string | number> | null {
    if (this.#spare === null) {
      const name = otherStateDb(this.stateDb);
      if (!create && !hasDb(this.env, name)) return null;
      this.#spare = openLike(this.env, name, this.db.state);
    }
    return this.#spare;
  }

  /** after a commit that made the spare state database the current one (K_STATE_DB) */
  switchState(): void {
    const spare = this.#spare;
    if (spare === null) throw new Error('switchState: no spare state database is open');
    this.#spare = this.db.state;
    this.db = { ...this.db, state: spare };
    this.stateDb = otherStateDb(this.stateDb);
  }

  /** the identity after a commit that wrote it */
  setIdentity(identity: StoreIdentity): void {
    this.identity = frozen(identity);
  }

  /** the identity with `patch` applied, validated (not written) */
  mergeIdentity(patch: IdentityPatch): StoreIdentity {
    const merged: Record<string, unknown> = { ...this.identity, ...patch };
    merged.format = STORE_FORMAT;
    merged.formatVersion = this.identity.formatVersion;
    merged.nodeId = this.identity.nodeId;
    for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
    const res = validateIdentity(merged);
    if (!res.ok) throw new TypeError(`invalid identity update: ${res.reason}`);
    return res.identity;
  }

  assertOpen(): void {
    if (this.#closed) throw new Error(`store ${this.dataDir} is closed`);
  }

  /**
   * A read, with damage (a checksum mismatch, or LMDB's MDB_CORRUPTED / MDB_PAGE_NOTFOUND) turned
   * into CORRUPT, remembered: the store writes nothing after it found damage.
   */
  read<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof DamagedRecordError) && !isLmdbDamage(err)) throw err;
      const e = corrupt(this.dataDir, `${join(this.dataDir, DATA_FILE)}: ${what} is damaged (${(err as Error).message})`, err);
      if (!this.damaged) {
        this.damaged = e;
        this.log?.fatal({ dataDir: this.dataDir, code: e.code }, e.message);
        for (const listener of this.#damageListeners) listener(e);
      }
      throw e;
    }
  }

  /** call `listener` when a read first finds damage (it runs inside that read: defer real work); returns the unsubscribe */
  onDamage(listener: (err: StoreError) => void): () => void {
    this.#damageListeners.add(listener);
    return () => this.#damageListeners.delete(listener);
  }

  /**
   * Run `fn` in one durable transaction; map failures to StoreError; nothing is visible on failure.
   * `fn` only writes what it captured (the callers update their in-memory mirrors after it returns),
   * so running it again is safe: a transaction that lmdb-js's own free-space bookkeeping fails at
   * commit (MDB_BAD_TXN, seen under sustained writes: the transaction is aborted and the file is as
   * the last commit left it) is tried again, up to TRANSIENT_ATTEMPTS times in all, each retry logged.
   */
  write(what: string, fn: () => void, durability: Durability = 'durable'): void {
    for (let attempt = 1; ; attempt++) {
      try {
        this.#writeOnce(what, fn, durability);
        if (attempt > 1) this.log?.warn({ dataDir: this.dataDir, what, attempt }, `store ${this.dataDir}: ${what} succeeded on attempt ${attempt}`);
        return;
      } catch (err) {
        const cause = err instanceof StoreError && err.code === 'IO' ? err.cause : undefined;
        if (attempt >= TRANSIENT_ATTEMPTS || !isTransientTxnFailure(cause)) throw err;
        this.log?.warn(
          { dataDir: this.dataDir, what, attempt, err: (cause as Error).message },
          `store ${this.dataDir}: ${what} failed in LMDB's transaction bookkeeping (${(cause as Error).message.trim()}); nothing of it was written, trying again`,
        );
      }
    }
  }

  #writeOnce(what: string, fn: () => void, durability: Durability): void {
    this.assertOpen();
    if (this.damaged) throw this.damaged;
    const limit = this.#limitBytes;
    try {
      this.env.transactionSync(() => {
        const before = limit === undefined ? 0 : this.#usedBytes();
        fn();
        if (limit !== undefined) {
          const after = this.#usedBytes();
          // a write that shrinks the store (compaction, deletes) is always allowed
          if (after > limit && after > before) {
            throw new StoreError(
              'FULL',
              `store ${this.dataDir} is full: ${what} needs ${after} bytes but store.maxBytes is ${limit} ` +
                '(the size limit set in the `conclave run` config; mapSizeBytes in startController). ' +
                'Nothing of this write was stored and the store is still readable: restart the node with a larger ' +
                'store.maxBytes (or none), or let it keep less (a lower raft.snapshotEveryBytes compacts the log sooner; delete keys you no longer need)',
              { dataDir: this.dataDir },
            );
          }
        }
      }, TXN_FLAGS[durability]);
      this.#orderedPending = durability === 'ordered';
    } catch (err) {
      if (err instanceof StoreError) {
        this.log?.error({ dataDir: this.dataDir, code: err.code }, err.message);
        throw err;
      }
      if (isFullError(err) || (isIoError(err) && diskAlmostFull(this.dataDir))) {
        const e = new StoreError(
          'FULL',
          `store ${this.dataDir} is full (${(err as Error).message}): ${what} was not stored. ` +
            'Free disk space on that filesystem (or move the data dir), then retry; the store is still readable',
          { dataDir: this.dataDir, cause: err },
        );
        this.log?.error({ dataDir: this.dataDir, code: e.code }, e.message);
        throw e;
      }
      throw new StoreError('IO', `store ${this.dataDir}: ${what} failed: ${(err as Error).message}`, {
        dataDir: this.dataDir,
        cause: err,
      });
    }
  }

  /** pages in use (all trees incl. the free list, plus the two meta pages), inside the current txn */
  #usedBytes(): number {
    const env = this.env.getStats() as LmdbStats & { root: LmdbStats; free: LmdbStats };
    let pages = 2 + treePages(env.root) + treePages(env.free);
    for (const name of DB_NAMES) pages += treePages(this.db[name].getStats() as LmdbStats);
    if (this.#spare) pages += treePages(this.#spare.getStats() as LmdbStats);
    return pages * env.pageSize;
  }
}

interface LmdbStats {
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
}

function treePages(s: LmdbStats): number {
  return s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
}

/** the identity record, frozen (with its nested contact record) so it can be shared without copies */
function frozen(identity: StoreIdentity): StoreIdentity {
  if (identity.contactedBy) Object.freeze(identity.contactedBy);
  return Object.freeze(identity);
}

/** attempts in all for a write that fails in LMDB's transaction bookkeeping (StoreCore.write) */
const TRANSIENT_ATTEMPTS = 3;

/**
 * LMDB refused to go on with a write transaction (MDB_BAD_TXN: lmdb-js's free-space bookkeeping,
 * e.g. "reserved freelist had a data entry with zero-size"): the transaction is aborted, nothing of
 * it is on disk, and a new one may succeed. Reads that meet MDB_BAD_TXN are damage (isLmdbDamage).
 */
export function isTransientTxnFailure(err: unknown): boolean {
  return err instanceof Error && /MDB_BAD_TXN/.test(err.message);
}
