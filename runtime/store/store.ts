// The node's persistent store: one LMDB environment per data dir, five named databases.
//
//   identity   'identity'  → StoreIdentity (node id, name, cluster id, format version)
//   hardstate  'hardState' → HardState,  'applied' → applied index (so state and index move together)
//   log        index (ordered-binary number, safe to 2^53) → [term, type, data]
//   snapshot   'meta'      → SnapshotMeta of the last snapshot / compaction point
//   state      key         → value: the replicated state
//
// Every value is stored checksummed (frame.ts, format ≥ 2) and checked when read: a damaged record
// is a CORRUPT error (and the store refuses every write from then on), never a wrong value served.
// Before LMDB maps an existing store, files.ts checks its files and walks every record in a child
// process, so that damage LMDB would crash on is a refusal, not a crash.
//
// Every write is ONE synchronous LMDB transaction (`transactionSync`) committed with fdatasync
// (overlappingSync: false). Why synchronous: it is truly atomic (an exception aborts it, which is
// what makes FULL leave nothing half-written), it gives errors where they happen, and lmdb-js's
// asynchronous callback transactions (`env.transaction(fn)`) never ran their callback on our dev
// machines (Node 20.20, lmdb 3.5.6): the promise hangs and process.exit() then hangs too.
// The cost is that the event loop waits for the fsync (≈0.3–1 ms per commit): callers group-commit.
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync, statSync, utimesSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Database, type DatabaseOptions, open, type RootDatabase } from 'lmdb';
import { v7 as uuidv7 } from 'uuid';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../../machines/raft/types.ts';
import type { Logger } from '../log/logger.ts';
import { isFullError, isIoError, StoreError } from './errors.ts';
import { belowAFile, classifyDir, corrupt, DATA_FILE, describeDamage, type StoreMarker, type StoreWalk, walkInChild, writeMarker } from './files.ts';
import { checksummedCodec, DamagedRecordError, unframe, type ValueCodec } from './frame.ts';
import {
  type DbName,
  FRAMED_SINCE,
  type IdentityPatch,
  MIGRATIONS,
  type Migration,
  type MigrationContext,
  type MigrationDb,
  peekFormat,
  STORE_FORMAT,
  STORE_FORMAT_VERSION,
  type StoreIdentity,
  validateIdentity,
} from './identity.ts';
import { checkLmdbDataFile } from './lmdb-file.ts';
import { acquireLock, checkNotLocked, type LockHandle } from './lock.ts';
import { SnapshotStaging } from './snapshotStaging.ts';

const DB_NAMES: readonly DbName[] = ['identity', 'hardstate', 'log', 'snapshot', 'state'];
const K_IDENTITY = 'identity';
const K_HARD = 'hardState';
const K_APPLIED = 'applied';
const K_META = 'meta';

export interface OpenStoreOptions {
  dataDir: string;
  /**
   * the node name; a store created under another name is refused (NAME_MISMATCH). null: whichever
   * node's store is there (offline tools, with create: false; a store never written is NOT_A_STORE)
   */
  name: string | null;
  logger?: Logger;
  /**
   * Upper bound on the store's size in bytes (pages in use). lmdb-js grows its memory map on
   * demand and never reports MDB_MAP_FULL by itself, so the store enforces this limit: a write
   * that would exceed it fails with StoreError('FULL') and is rolled back. Default: no limit
   * (a full disk still surfaces as FULL).
   */
  mapSizeBytes?: number;
  /** create a new store in an empty or missing dir (default true); false → NOT_A_STORE there */
  create?: boolean;
  /** for tests only: pretend the current format is `formatVersion`, with these migrations */
  testHooks?: { formatVersion?: number; migrations?: readonly Migration[] };
}

type StoredEntry = [term: number, type: EntryType, data: unknown];

/** what recoverAsSoleVoter wrote */
export interface RecoveryWrite {
  clusterId: string;
  previousGeneration: number;
  generation: number;
  previousTerm: number;
  term: number;
  /** the snapshot's index (the state as applied) */
  appliedIndex: number;
  /** the committed index kept: entries up to it are applied on the next start */
  commitIndex: number;
  /** committed entries after the applied index, applied on the next start */
  pendingEntries: number;
  /** uncommitted entries dropped */
  droppedEntries: number;
  keys: number;
  /** the membership in force before the recovery */
  previousMembers: Array<{ name: string; nodeId: string; voter: boolean }>;
}
type Dbs = Record<DbName, Database<unknown, string | number>>;

export async function openStore(opts: OpenStoreOptions): Promise<NodeStore> {
  const dataDir = resolve(opts.dataDir);
  const create = opts.create ?? true;
  const target = opts.testHooks?.formatVersion ?? STORE_FORMAT_VERSION;
  const migrations = opts.testHooks?.migrations ?? MIGRATIONS;
  const log = opts.logger;

  const { kind, marker } = classifyDir(dataDir, create);
  if (kind === 'store') {
    checkNotLocked(dataDir);
    // Validate read-only first, so that a store we refuse is left exactly as we found it.
    const before = snapshotDir(dataDir);
    try {
      const exam = await examineStore(dataDir, opts.name, target, marker);
      refuseDamage(dataDir, exam.walk);
      if (exam.name === null && opts.name === null) throw neverWritten(dataDir);
      log?.debug({ dataDir, checkMs: Math.round(exam.walk?.ms ?? 0) }, 'store checked');
    } catch (err) {
      restoreDir(dataDir, before);
      throw err;
    }
  } else if (kind === 'missing') {
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' || code === 'EEXIST') throw belowAFile(dataDir);
      throw new StoreError('IO', `cannot create data dir ${dataDir}: ${(err as Error).message}`, { dataDir, cause: err });
    }
  }

  const lock = acquireLock(dataDir, log);
  let env: RootDatabase | undefined;
  try {
    env = openEnv(dataDir, false);
    const framed = target >= FRAMED_SINCE;
    const dbs = openDbs(env, framed);
    const identity = loadOrCreateIdentity(env, dbs, dataDir, opts.name, target, migrations, log);
    // the marker goes with the store from its first commit on (and onto stores made before it existed)
    if (!marker) writeMarker(dataDir, { format: STORE_FORMAT, nodeId: identity.nodeId, name: identity.name, createdAt: identity.createdAt });
    const store = new NodeStore(dataDir, env, dbs, lock, identity, opts.mapSizeBytes, log);
    log?.info(
      { dataDir, nodeId: identity.nodeId, clusterId: identity.clusterId, lastIndex: store.lastIndex() },
      'store opened',
    );
    return store;
  } catch (err) {
    if (env) await env.close().catch(() => {});
    lock.release();
    if (err instanceof StoreError) throw err;
    throw new StoreError('IO', `cannot open store in ${dataDir}: ${(err as Error).message}`, { dataDir, cause: err });
  }
}

export class NodeStore {
  readonly dataDir: string;
  readonly #env: RootDatabase;
  readonly #db: Dbs;
  readonly #lock: LockHandle;
  readonly #limitBytes: number | undefined;
  readonly #log: Logger | undefined;
  #closed = false;
  /** set when a read found damage: from then on nothing is written (CORRUPT) */
  #damaged: StoreError | null = null;
  // In-memory mirrors of what is committed; updated only after a commit succeeded.
  #identity: StoreIdentity;
  #hard: HardState;
  #applied: number;
  #snap: SnapshotMeta | null;
  #first: number;
  #last: number;
  #staging: SnapshotStaging | null = null;

  /** @internal use openStore() */
  constructor(
    dataDir: string,
    env: RootDatabase,
    dbs: Dbs,
    lock: LockHandle,
    identity: StoreIdentity,
    limitBytes: number | undefined,
    log: Logger | undefined,
  ) {
    this.dataDir = dataDir;
    this.#env = env;
    this.#db = dbs;
    this.#lock = lock;
    this.#limitBytes = limitBytes;
    this.#log = log;
    this.#identity = frozen(identity);
    this.#hard = { ...(this.#read('hard state', () => dbs.hardstate.get(K_HARD) as HardState | undefined) ?? { term: 0, vote: null, commit: 0 }) };
    this.#applied = this.#read('applied index', () => dbs.hardstate.get(K_APPLIED) as number | undefined) ?? 0;
    this.#snap = this.#read('snapshot meta', () => dbs.snapshot.get(K_META) as SnapshotMeta | undefined) ?? null;
    const firstKey = firstOf(dbs.log.getKeys({ limit: 1 }));
    const lastKey = firstOf(dbs.log.getKeys({ reverse: true, limit: 1 }));
    this.#first = this.#snap ? this.#snap.index + 1 : typeof firstKey === 'number' ? firstKey : 1;
    this.#last = Math.max(typeof lastKey === 'number' ? lastKey : 0, this.#first - 1);
    // the cheap full check: the log's first and last entries decode and pass their checksums
    if (typeof firstKey === 'number') this.#read(`log entry ${firstKey}`, () => dbs.log.get(firstKey));
    if (typeof lastKey === 'number') this.#read(`log entry ${lastKey}`, () => dbs.log.get(lastKey));
  }

  /** the damage a read found (then every write is refused), or null */
  damage(): StoreError | null {
    return this.#damaged;
  }

  // ---- identity --------------------------------------------------------------------------

  identity(): StoreIdentity {
    // frozen and replaced on every change, so callers on hot paths (every message, every log line)
    // may read it without a copy
    return this.#identity;
  }

  async updateIdentity(patch: IdentityPatch): Promise<void> {
    const next = this.#mergeIdentity(patch);
    this.#write('identity update', () => {
      this.#db.identity.putSync(K_IDENTITY, next);
    });
    this.#identity = frozen(next);
  }

  // ---- raft log and hard state -------------------------------------------------------------

  hardState(): HardState {
    return { ...this.#hard };
  }

  /** first index still in the log (after compaction: snapshot index + 1) */
  firstIndex(): number {
    return this.#first;
  }

  /** last index of the log (the snapshot index when the log is empty after it) */
  /** raft state exists (a snapshot, log entries or a term): with no cluster id, an older cluster's member */
  hasRaftState(): boolean {
    return this.#snap !== null || this.#last > 0 || this.#hard.term > 0;
  }

  lastIndex(): number {
    return this.#last;
  }

  /**
   * Entries [lo, hiExclusive), clipped at lastIndex()+1. Throws RangeError when lo is below
   * firstIndex() (compacted: send the snapshot instead).
   */
  entries(lo: number, hiExclusive: number): Entry[] {
    this.#assertOpen();
    if (lo < this.#first) {
      throw new RangeError(`entries(${lo}, ${hiExclusive}): index ${lo} is compacted (first index is ${this.#first})`);
    }
    const hi = Math.min(hiExclusive, this.#last + 1);
    const out: Entry[] = [];
    if (lo >= hi) return out;
    return this.#read(`a log entry in [${lo}, ${hi})`, () => {
      for (const { key, value } of this.#db.log.getRange({ start: lo, end: hi })) {
        const [term, type, data] = value as StoredEntry;
        out.push({ index: key as number, term, type, data });
      }
      return out;
    });
  }

  /** term of the entry at `index`: 0 for index 0, the snapshot's term at its index, undefined if unknown/compacted */
  term(index: number): number | undefined {
    this.#assertOpen();
    if (index === 0) return 0;
    if (this.#snap && index === this.#snap.index) return this.#snap.term;
    if (index < this.#first || index > this.#last) return undefined;
    const v = this.#read(`log entry ${index}`, () => this.#db.log.get(index) as StoredEntry | undefined);
    return v?.[0];
  }

  snapshotMeta(): SnapshotMeta | null {
    return this.#snap ? structuredClone(this.#snap) : null;
  }

  /**
   * THE durable write raft depends on: hard state and appended entries in ONE transaction.
   * Entries must be contiguous, starting at most at lastIndex()+1 and above the snapshot.
   * Raft's rule (§5.3): leading entries the log already has with the same term are kept as they
   * are; from the first conflicting entry (same index, other term) the log is truncated and the
   * rest appended. (Truncating a matching suffix would drop entries the leader already counts.)
   */
  async persist(batch: { hardState?: HardState; entries?: Entry[] }): Promise<void> {
    this.#assertOpen();
    const all = batch.entries ?? [];
    const hs = batch.hardState;
    if (all.length === 0 && !hs) return;
    const last = this.#last;
    const from = all[0]?.index;
    if (from !== undefined) {
      for (let i = 1; i < all.length; i++) {
        if (all[i]!.index !== from + i) {
          throw new RangeError(`persist: entries are not contiguous (index ${all[i]!.index} after ${from + i - 1})`);
        }
      }
      if (from < this.#first) {
        throw new RangeError(`persist: entry ${from} is at or below the snapshot (first index is ${this.#first})`);
      }
      if (from > last + 1) throw new RangeError(`persist: entry ${from} would leave a gap after last index ${last}`);
    }
    let skip = 0;
    while (skip < all.length && all[skip]!.index <= last && this.term(all[skip]!.index) === all[skip]!.term) skip++;
    const entries = skip === 0 ? all : all.slice(skip);
    const start = entries[0]?.index;
    if (start === undefined && !hs) return;

    const hsCopy = hs ? { term: hs.term, vote: hs.vote, commit: hs.commit } : undefined;
    const logDb = this.#db.log;
    this.#write(`persist of ${entries.length} entries`, () => {
      if (hsCopy) this.#db.hardstate.putSync(K_HARD, hsCopy);
      if (start === undefined) return;
      for (let i = start; i <= last; i++) logDb.removeSync(i); // the conflicting suffix
      for (const e of entries) logDb.putSync(e.index, [e.term, e.type, e.data] satisfies StoredEntry);
    });
    if (hsCopy) this.#hard = hsCopy;
    if (start !== undefined) this.#last = start + entries.length - 1;
  }

  // ---- replicated state ------------------------------------------------------------------

  stateGet(key: string): unknown | undefined {
    this.#assertOpen();
    return this.#read(`state key ${JSON.stringify(key)}`, () => this.#db.state.get(key));
  }

  /** keys in order; materialized (no cursor is held across an await) */
  stateRange(opts: { prefix?: string; limit?: number } = {}): Iterable<[string, unknown]> {
    this.#assertOpen();
    const { prefix, limit } = opts;
    const out: Array<[string, unknown]> = [];
    if (limit !== undefined && limit <= 0) return out;
    return this.#read(`a state value${prefix ? ` under ${JSON.stringify(prefix)}` : ''}`, () => {
      for (const { key, value } of this.#db.state.getRange(prefix ? { start: prefix } : {})) {
        const k = key as string;
        if (prefix && !k.startsWith(prefix)) break;
        out.push([k, value]);
        if (limit !== undefined && out.length >= limit) break;
      }
      return out;
    });
  }

  appliedIndex(): number {
    return this.#applied;
  }

  /** apply committed entries' effects atomically with the new applied index */
  async applyState(appliedIndex: number, ops: Array<{ key: string; value?: unknown }>): Promise<void> {
    this.#assertOpen();
    if (appliedIndex < this.#applied) {
      throw new RangeError(`applyState: applied index ${appliedIndex} is below the current ${this.#applied}`);
    }
    const state = this.#db.state;
    this.#write(`apply up to ${appliedIndex}`, () => {
      for (const op of ops) {
        if (op.value === undefined) state.removeSync(op.key);
        else state.putSync(op.key, op.value);
      }
      this.#db.hardstate.putSync(K_APPLIED, appliedIndex);
    });
    this.#applied = appliedIndex;
  }

  // ---- snapshots -------------------------------------------------------------------------

  /** a consistent dump of the replicated state and the index it reflects */
  exportState(): { appliedIndex: number; pairs: Array<[string, unknown]> } {
    this.#assertOpen();
    const pairs: Array<[string, unknown]> = [];
    this.#read('a state value', () => {
      for (const { key, value } of this.#db.state.getRange({})) pairs.push([key as string, value]);
    });
    return { appliedIndex: this.#applied, pairs };
  }

  /**
   * A consistent view of the replicated state and the index it reflects, read lazily: one read
   * transaction holds the view until done() (call it, also when giving up), so a large state is
   * streamed a few pairs at a time instead of copied into memory.
   */
  stateSnapshot(): { appliedIndex: number; pairs: Iterator<[string, unknown]>; done(): void } {
    this.#assertOpen();
    const transaction = this.#db.state.useReadTransaction();
    const appliedIndex = (this.#db.hardstate.get(K_APPLIED, { transaction }) as number | undefined) ?? 0;
    const range = this.#db.state.getRange({ transaction })[Symbol.iterator]();
    let open = true;
    return {
      appliedIndex,
      pairs: {
        next: () => {
          const r = range.next();
          return r.done ? { done: true, value: undefined } : { done: false, value: [r.value.key as string, r.value.value] };
        },
      },
      done: () => {
        if (!open) return;
        open = false;
        range.return?.();
        transaction.done();
      },
    };
  }

  /** records meta (the state db at meta.index is the snapshot) and deletes log entries <= meta.index */
  async saveSnapshotAndCompact(meta: SnapshotMeta): Promise<void> {
    this.#assertOpen();
    if (this.#snap && meta.index < this.#snap.index) {
      throw new RangeError(`saveSnapshotAndCompact: index ${meta.index} is older than the current snapshot ${this.#snap.index}`);
    }
    if (meta.index > this.#applied) {
      // the state db only reflects entries up to the applied index: compacting beyond would lose entries
      throw new RangeError(`saveSnapshotAndCompact: index ${meta.index} is beyond the applied index ${this.#applied}`);
    }
    if (meta.index > this.#last) {
      throw new RangeError(`saveSnapshotAndCompact: index ${meta.index} is beyond the last index ${this.#last}`);
    }
    const t = this.term(meta.index);
    if (t !== undefined && t !== meta.term) {
      throw new RangeError(`saveSnapshotAndCompact: term ${meta.term} does not match the log's term ${t} at index ${meta.index}`);
    }
    const copy = structuredClone(meta);
    const first = this.#first;
    this.#write(`snapshot at ${meta.index}`, () => {
      this.#db.snapshot.putSync(K_META, copy);
      for (let i = first; i <= copy.index; i++) this.#db.log.removeSync(i);
    });
    this.#snap = copy;
    this.#first = copy.index + 1;
  }

  /** where a snapshot being received is written as it arrives (snapshotStaging.ts); pass it as `pairs` to install it */
  snapshotStaging(): SnapshotStaging {
    this.#assertOpen();
    this.#staging ??= new SnapshotStaging(this.#env, this.#db.state, 'state', (what, fn) => this.#write(what, fn));
    return this.#staging;
  }

  /** replace the whole replicated state by a received snapshot, atomically with its meta, the log reset and the hard state */
  async installSnapshot(meta: SnapshotMeta, pairs: Array<[string, unknown]> | SnapshotStaging, hardState: HardState): Promise<void> {
    this.#assertOpen();
    if (meta.index < this.#applied) {
      throw new RangeError(`installSnapshot: snapshot index ${meta.index} is older than the applied index ${this.#applied}`);
    }
    this.#replaceState(`install snapshot at ${meta.index}`, meta, pairs, hardState, null);
  }

  /**
   * One durable write that makes a blank node a member: cluster id + initial snapshot/state +
   * hard state (init, initFrom, and a joining node adopting the cluster id with the state it receives).
   */
  async initializeCluster(args: {
    clusterId: string;
    meta: SnapshotMeta;
    pairs: Array<[string, unknown]> | SnapshotStaging;
    hardState: HardState;
    importedFrom?: string;
    /** a joining node adopts the cluster's current identity generation (disaster recovery bumps it) */
    generation?: number;
  }): Promise<void> {
    this.#assertOpen();
    const current = this.#identity.clusterId;
    if (current !== null) {
      throw new Error(`initializeCluster: the store in ${this.dataDir} is already a member of cluster ${current}`);
    }
    const patch: IdentityPatch = { clusterId: args.clusterId, initializedAt: new Date().toISOString() };
    if (args.importedFrom !== undefined) patch.importedFrom = args.importedFrom;
    if (args.generation !== undefined) patch.generation = args.generation;
    const identity = this.#mergeIdentity(patch);
    this.#replaceState(`initialize cluster ${args.clusterId}`, args.meta, args.pairs, args.hardState, identity);
  }

  /**
   * Disaster recovery, in ONE durable write: this store becomes the sole voter of its cluster,
   * keeping the cluster id and the committed data. The snapshot moves to the applied index with
   * membership = {this node as voter}; committed entries not yet applied stay in the log (config
   * entries among them become no-ops, so the new membership holds) and are applied on the next
   * start; the uncommitted tail is dropped; the term is bumped; the identity generation is bumped.
   * The caller (recover.ts) checks that this store is a member that may be recovered.
   */
  recoverAsSoleVoter(): RecoveryWrite {
    this.#assertOpen();
    const id = this.#identity;
    if (id.clusterId === null) throw new Error(`recoverAsSoleVoter: the store in ${this.dataDir} is not a member of a cluster`);
    const applied = this.#applied;
    const commit = Math.max(applied, Math.min(Math.max(this.#hard.commit, applied), this.#last));
    const snapTerm = this.term(applied);
    if (snapTerm === undefined) throw corrupt(this.dataDir, `the term of its applied index ${applied} is unknown (neither in the snapshot nor in the log)`);
    // the membership in force at the commit point (what the operator is recovering from)
    let previous = this.#snap?.membership ?? { members: [] };
    const pending = commit > applied ? this.entries(applied + 1, commit + 1) : [];
    const atApplied = this.#first <= applied ? this.entries(this.#first, applied + 1) : [];
    for (const e of [...atApplied, ...pending]) if (e.type === 'config') previous = e.data as SnapshotMeta['membership'];
    const meta: SnapshotMeta = { index: applied, term: snapTerm, membership: { members: [{ nodeId: id.nodeId, name: id.name, voter: true }] } };
    const hs: HardState = { term: this.#hard.term + 1, vote: null, commit };
    const identity = this.#mergeIdentity({ generation: id.generation + 1, contactedBy: null });
    const { first, last } = { first: this.#first, last: this.#last };
    const db = this.#db;
    this.#write('recovery', () => {
      for (let i = first; i <= applied; i++) db.log.removeSync(i);
      for (const e of pending) if (e.type === 'config') db.log.putSync(e.index, [e.term, 'noop', null] satisfies StoredEntry);
      for (let i = commit + 1; i <= last; i++) db.log.removeSync(i);
      db.snapshot.putSync(K_META, meta);
      db.hardstate.putSync(K_HARD, hs);
      db.identity.putSync(K_IDENTITY, identity);
    });
    const before = { term: this.#hard.term, generation: id.generation };
    this.#snap = meta;
    this.#hard = hs;
    this.#first = applied + 1;
    this.#last = commit;
    this.#identity = frozen(identity);
    return {
      clusterId: id.clusterId,
      previousGeneration: before.generation,
      generation: identity.generation,
      previousTerm: before.term,
      term: hs.term,
      appliedIndex: applied,
      commitIndex: commit,
      pendingEntries: pending.length,
      droppedEntries: Math.max(0, last - commit),
      keys: db.state.getKeysCount(),
      previousMembers: previous.members.map((m) => ({ name: m.name, nodeId: m.nodeId, voter: m.voter })),
    };
  }

  /** closes the environment and releases the data-dir lock; idempotent */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#env.close();
    } finally {
      this.#lock.release();
    }
    this.#log?.debug({ dataDir: this.dataDir }, 'store closed');
  }

  // ---- internals ---------------------------------------------------------------------------

  #replaceState(
    what: string,
    meta: SnapshotMeta,
    pairs: Array<[string, unknown]> | SnapshotStaging,
    hardState: HardState,
    identity: StoreIdentity | null,
  ): void {
    const metaCopy = structuredClone(meta);
    const hs: HardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    // Raft §7: keep the log after the snapshot if it already has the snapshot's last entry.
    const keepTail = this.term(meta.index) === meta.term && meta.index <= this.#last && meta.index >= this.#first;
    const { first, last } = { first: this.#first, last: this.#last };
    const db = this.#db;
    this.#write(what, () => {
      for (const key of db.state.getKeys({})) db.state.removeSync(key);
      if (pairs instanceof SnapshotStaging) pairs.moveIntoState();
      else for (const [k, v] of pairs) if (v !== undefined) db.state.putSync(k, v);
      const upTo = keepTail ? meta.index : last;
      for (let i = first; i <= upTo; i++) db.log.removeSync(i);
      db.snapshot.putSync(K_META, metaCopy);
      db.hardstate.putSync(K_APPLIED, metaCopy.index);
      db.hardstate.putSync(K_HARD, hs);
      if (identity) db.identity.putSync(K_IDENTITY, identity);
    });
    this.#snap = metaCopy;
    this.#applied = metaCopy.index;
    this.#hard = hs;
    this.#first = metaCopy.index + 1;
    this.#last = keepTail ? Math.max(last, metaCopy.index) : metaCopy.index;
    if (identity) this.#identity = frozen(identity);
  }

  #mergeIdentity(patch: IdentityPatch): StoreIdentity {
    const merged: Record<string, unknown> = { ...this.#identity, ...patch };
    merged.format = STORE_FORMAT;
    merged.formatVersion = this.#identity.formatVersion;
    merged.nodeId = this.#identity.nodeId;
    for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
    const res = validateIdentity(merged);
    if (!res.ok) throw new TypeError(`invalid identity update: ${res.reason}`);
    return res.identity;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`store ${this.dataDir} is closed`);
  }

  /**
   * A read, with damage (a checksum mismatch, or LMDB's MDB_CORRUPTED / MDB_PAGE_NOTFOUND) turned
   * into CORRUPT, remembered: the store writes nothing after it found damage.
   */
  #read<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof DamagedRecordError) && !isLmdbDamage(err)) throw err;
      const e = corrupt(this.dataDir, `${join(this.dataDir, DATA_FILE)}: ${what} is damaged (${(err as Error).message})`, err);
      if (!this.#damaged) {
        this.#damaged = e;
        this.#log?.fatal({ dataDir: this.dataDir, code: e.code }, e.message);
      }
      throw e;
    }
  }

  /** run `fn` in one durable transaction; map failures to StoreError; nothing is visible on failure */
  #write(what: string, fn: () => void): void {
    this.#assertOpen();
    if (this.#damaged) throw this.#damaged;
    const limit = this.#limitBytes;
    try {
      this.#env.transactionSync(() => {
        const before = limit === undefined ? 0 : this.#usedBytes();
        fn();
        if (limit !== undefined) {
          const after = this.#usedBytes();
          // a write that shrinks the store (compaction, deletes) is always allowed
          if (after > limit && after > before) {
            throw new StoreError(
              'FULL',
              `store ${this.dataDir} is full: ${what} needs ${after} bytes but the limit is ${limit}. ` +
                'Nothing of this write was stored and the store is still readable: compact the log (snapshot) ' +
                'or raise the store size limit, then retry',
              { dataDir: this.dataDir },
            );
          }
        }
      });
    } catch (err) {
      if (err instanceof StoreError) {
        this.#log?.error({ dataDir: this.dataDir, code: err.code }, err.message);
        throw err;
      }
      if (isFullError(err) || (isIoError(err) && diskAlmostFull(this.dataDir))) {
        const e = new StoreError(
          'FULL',
          `store ${this.dataDir} is full (${(err as Error).message}): ${what} was not stored. ` +
            'Free disk space on that filesystem (or move the data dir), then retry; the store is still readable',
          { dataDir: this.dataDir, cause: err },
        );
        this.#log?.error({ dataDir: this.dataDir, code: e.code }, e.message);
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
    const env = this.#env.getStats() as LmdbStats & { root: LmdbStats; free: LmdbStats };
    let pages = 2 + treePages(env.root) + treePages(env.free);
    for (const name of DB_NAMES) pages += treePages(this.#db[name].getStats() as LmdbStats);
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

/** LMDB turns a short write on a full filesystem into EIO: tell that apart from a failing disk. */
function diskAlmostFull(dataDir: string): boolean {
  try {
    const fs = statfsSync(dataDir);
    return fs.bavail * fs.bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

function firstOf<T>(it: Iterable<T>): T | undefined {
  for (const v of it) return v;
  return undefined;
}

// ---- opening -----------------------------------------------------------------------------

function openEnv(dataDir: string, readOnly: boolean): RootDatabase {
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
function openDbs(env: RootDatabase, framed: boolean): Dbs {
  // env.encoder is lmdb-js's own msgpack encoder (no shared structures): framing wraps the very
  // bytes a format-1 store holds, so the upgrade only prefixes each record with its checksum
  const encoder = framed ? checksummedCodec(lmdbCodec(env)) : undefined;
  const db = (name: DbName) => env.openDB<unknown, string | number>((encoder ? { name, encoder } : { name }) as DatabaseOptions & { name: string });
  return { identity: db('identity'), hardstate: db('hardstate'), log: db('log'), snapshot: db('snapshot'), state: db('state') };
}

/** lmdb-js's msgpack encoder of the environment (its `encoder`, typed `any` by lmdb-js) */
function lmdbCodec(env: RootDatabase): ValueCodec {
  return (env as unknown as { encoder: ValueCodec }).encoder;
}

/** lmdb-js errors that mean the pages are damaged (not a bug of ours, not a full disk) */
function isLmdbDamage(err: unknown): boolean {
  return err instanceof Error && /MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_TXN|MDB_INVALID|MDB_BAD_VALSIZE/.test(err.message);
}

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

function neverWritten(dataDir: string): StoreError {
  return new StoreError('NOT_A_STORE', `the store in ${dataDir} was never written (its creation was interrupted): there is nothing in it`, { dataDir });
}

/** the identity record of a node store opened by someone else (e.g. refused as an init source), any format */
export function readStoredIdentity(env: RootDatabase): unknown {
  const stored = decodeIdentity(env, env.openDB<Uint8Array, string>({ name: 'identity', encoding: 'binary' }).getBinary('identity'));
  return stored?.raw;
}

/**
 * The node name an existing store was created for, read without changing anything (for offline
 * tools such as `conclave recover`). Refuses NOT_A_STORE / LOCKED / CORRUPT / NEWER_FORMAT.
 */
export async function readStoreName(dataDir: string): Promise<string> {
  const exam = await examineOffline(dataDir);
  refuseDamage(exam.dataDir, exam.walk);
  return exam.name;
}

/**
 * examineStore for offline tools: a store that exists and was written, not in use by a live
 * process (LOCKED), left as found. Damaged records are listed, not thrown.
 */
export async function examineOffline(dataDirIn: string): Promise<Examination & { dataDir: string; name: string; walk: StoreWalk }> {
  const dataDir = resolve(dataDirIn);
  const { marker } = classifyDir(dataDir, false);
  checkNotLocked(dataDir);
  const before = snapshotDir(dataDir);
  try {
    const exam = await examineStore(dataDir, null, STORE_FORMAT_VERSION, marker);
    if (exam.name === null || !exam.walk) throw neverWritten(dataDir);
    return { ...exam, dataDir, name: exam.name, walk: exam.walk };
  } finally {
    restoreDir(dataDir, before);
  }
}

/** What examineStore found: the node name (null: never written) and the walk of every record. */
export interface Examination {
  name: string | null;
  identity: unknown;
  walk: StoreWalk | null;
  pageSize: number | null;
}

/**
 * Read-only checks of an existing store, every record walked in a child process. Throws CORRUPT /
 * NOT_A_STORE / NEWER_FORMAT / NAME_MISMATCH for the store as a whole; damaged records are listed
 * in `walk.damaged` (the caller refuses, or reports them). `name` null: any node's store.
 */
export async function examineStore(dataDir: string, name: string | null, target: number, marker: StoreMarker | null): Promise<Examination> {
  const file = join(dataDir, DATA_FILE);
  const held = marker ? `, but this directory held the store of node ${marker.name} (node id ${marker.nodeId})` : '';
  let check: ReturnType<typeof checkLmdbDataFile>;
  try {
    // empty: LMDB died between creating the file and writing its meta pages; nothing was committed,
    // unless the marker says a store was written here
    if (statSync(file).size === 0) {
      if (marker) throw corrupt(dataDir, `${file} is empty (0 bytes)${held}`);
      return { name: null, identity: undefined, walk: null, pageSize: null };
    }
    check = checkLmdbDataFile(file);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('IO', `cannot read ${file}: ${(err as Error).message}`, { dataDir, cause: err });
  }
  if (!check.ok) throw corrupt(dataDir, check.reason);

  const walk = await walkInChild(dataDir);
  const names = Object.keys(walk.dbs);
  if (names.length === 0) {
    if (marker) throw corrupt(dataDir, `${file} holds no data${held}`);
    return { name: null, identity: undefined, walk, pageSize: check.info.pageSize }; // created but never written: a blank store
  }
  if (!names.includes('identity')) {
    throw new StoreError(
      'NOT_A_STORE',
      `data dir ${dataDir} holds an LMDB environment that is not a Conclave store (databases: ${names.slice(0, 5).join(', ')}): ` +
        'choose another --data-dir',
      { dataDir },
    );
  }
  const hasData = names.some((n) => n !== 'identity' && (walk.dbs[n]?.records ?? 0) > 0);
  const identityRecords = walk.dbs.identity?.records ?? 0;
  if (identityRecords === 0 && !hasData) {
    if (marker) throw corrupt(dataDir, `${file} holds no identity and no data${held}`);
    return { name: null, identity: undefined, walk, pageSize: check.info.pageSize }; // creation was interrupted before the identity was written
  }
  if (walk.identity === null && identityRecords > 0) throw corrupt(dataDir, `${file}: its identity record is damaged (it fails its checksum or cannot be decoded)`);
  checkIdentity(identityRecords === 0 ? undefined : walk.identity, dataDir, name, target);
  const nodeId = (walk.identity as { nodeId?: unknown }).nodeId;
  if (marker && nodeId !== marker.nodeId) {
    throw corrupt(dataDir, `${file} holds the store of node id ${String(nodeId)}, but this directory was created for node id ${marker.nodeId}`);
  }
  return { name: String(peekFormat(walk.identity)?.name), identity: walk.identity, walk, pageSize: check.info.pageSize };
}

/** CORRUPT when the walk found damaged records, naming the first ones; else null */
export function damageError(dataDir: string, walk: StoreWalk | null): StoreError | null {
  if (!walk || walk.damagedCount === 0) return null;
  const first = walk.damaged.slice(0, 3).map(describeDamage).join(', ');
  const more = walk.damagedCount > 3 ? ', …' : '';
  return corrupt(dataDir, `${join(dataDir, DATA_FILE)} is damaged: ${first}${more}`);
}

function refuseDamage(dataDir: string, walk: StoreWalk | null): void {
  const err = damageError(dataDir, walk);
  if (err) throw err;
}

/** Throws unless `raw` is an identity this build can open (possibly after migration) for node `name`. */
function checkIdentity(raw: unknown, dataDir: string, name: string | null, target: number): void {
  if (raw === undefined) throw corrupt(dataDir, 'its identity record is missing');
  const peek = peekFormat(raw);
  if (!peek || peek.format !== STORE_FORMAT) throw corrupt(dataDir, 'its identity record is not a Conclave identity');
  const v = peek.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw corrupt(dataDir, `its identity record has an invalid format version (${String(v)})`);
  }
  if (v > target) {
    throw new StoreError(
      'NEWER_FORMAT',
      `the store in ${dataDir} has format version ${v}, but this Conclave supports format version ${target} at most: ` +
        'upgrade Conclave to open it (the store was left unchanged)',
      { dataDir },
    );
  }
  if (v === target) {
    const res = validateIdentity(raw);
    if (!res.ok) throw corrupt(dataDir, `its identity record is invalid (${res.reason})`);
  }
  if (name !== null && peek.name !== name) {
    throw new StoreError('NAME_MISMATCH', `data dir ${dataDir} belongs to node ${String(peek.name)}, not ${name}`, { dataDir });
  }
}

function loadOrCreateIdentity(
  env: RootDatabase,
  dbs: Dbs,
  dataDir: string,
  name: string | null,
  target: number,
  migrations: readonly Migration[],
  log: Logger | undefined,
): StoreIdentity {
  let result: StoreIdentity | undefined;
  // raw bytes, and the plain (format < 2) encoding older migration steps read and write
  const bin = {} as Record<DbName, Database<Uint8Array, string | number>>;
  for (const n of DB_NAMES) bin[n] = env.openDB<Uint8Array, string | number>({ name: n, encoding: 'binary' });
  const plain = openDbs(env, false);
  const run = () => {
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
        m.up({ db: (n) => dbsOf[n] as unknown as MigrationDb, raw: (n) => bin[n] as unknown as ReturnType<MigrationContext['raw']>, identity: record });
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
  if (!result) throw corrupt(dataDir, 'its identity could not be loaded');
  return result;
}

// ---- leaving a refused directory exactly as found ------------------------------------------

/** times in seconds (fractional): utimes keeps microseconds this way, a Date only milliseconds */
interface Times {
  atime: number;
  mtime: number;
}
export interface DirSnapshot {
  dir: Times;
  entries: Map<string, Times>;
}

export function snapshotDir(dataDir: string): DirSnapshot {
  const entries = new Map<string, Times>();
  for (const n of readdirSync(dataDir)) entries.set(n, timesOf(join(dataDir, n)));
  return { dir: timesOf(dataDir), entries };
}

function timesOf(p: string): Times {
  const s = statSync(p);
  return { atime: s.atimeMs / 1000, mtime: s.mtimeMs / 1000 };
}

/**
 * Opening LMDB read-only still rewrites its lock file (lock.mdb, the reader table) and creates it
 * when absent. Undo that for a refused store: remove what we created, and put back the timestamps
 * of what changed (only those: utimes is precise to about a microsecond, not a nanosecond).
 */
export function restoreDir(dataDir: string, snap: DirSnapshot): void {
  const restore = (p: string, t: Times) => {
    const now = timesOf(p);
    if (now.mtime !== t.mtime || now.atime !== t.atime) utimesSync(p, t.atime, t.mtime);
  };
  try {
    for (const n of readdirSync(dataDir)) {
      if (!snap.entries.has(n)) rmSync(join(dataDir, n), { force: true });
    }
    for (const [n, t] of snap.entries) {
      const p = join(dataDir, n);
      if (existsSync(p)) restore(p, t);
    }
    restore(dataDir, snap.dir);
  } catch {
    /* best effort: the refusal itself is what matters */
  }
}

export { STORE_FORMAT_VERSION, StoreError, type StoreIdentity };

/** the identity record, frozen (with its nested contact record) so it can be shared without copies */
function frozen(identity: StoreIdentity): StoreIdentity {
  if (identity.contactedBy) Object.freeze(identity.contactedBy);
  return Object.freeze(identity);
}
