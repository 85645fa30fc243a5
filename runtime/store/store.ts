// The node's persistent store: one LMDB environment per data dir, five named databases.
//
//   identity   'identity'  → StoreIdentity (node id, name, cluster id, format version),
//              'memberKey' → the member key (memberKey.ts), 'boot' → the boot counter (boot.ts)
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
//
// This file is the public face (openStore, NodeStore). The parts: lmdbEnv.ts (the databases),
// examine.ts + dirSnapshot.ts (read-only checks before opening), loadIdentity.ts (identity,
// creation, format migration), storeCore.ts (mirrors, read/write), and NodeStore's concerns over
// it: raftLog.ts (hard state + log), replicatedState.ts, snapshots.ts (whole-store writes).
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RootDatabase } from 'lmdb';
import type { Entry, HardState, SnapshotMeta } from '../../machines/raft/types.ts';
import type { Logger } from '../log/logger.ts';
import { StoreError } from './errors.ts';
import { type CheckedDir, checkBeforeOpen } from './examine.ts';
import { belowAFile, writeMarker } from './files.ts';
import {
  FRAMED_SINCE,
  type IdentityPatch,
  MIGRATIONS,
  type Migration,
  STORE_FORMAT,
  STORE_FORMAT_VERSION,
  type StoreIdentity,
} from './identity.ts';
import { K_IDENTITY, openDbs, openEnv } from './lmdbEnv.ts';
import { loadOrCreateIdentity } from './loadIdentity.ts';
import type { MemberKey } from './memberKey.ts';
import { acquireLock } from './lock.ts';
import * as raftLog from './raftLog.ts';
import * as state from './replicatedState.ts';
import { SnapshotStaging } from './snapshotStaging.ts';
import type { InitializeCluster, RecoveryWrite } from './snapshots.ts';
import * as snapshots from './snapshots.ts';
import { StoreCore } from './storeCore.ts';

export { type DirSnapshot, restoreDir, snapshotDir } from './dirSnapshot.ts';
export { type CheckedDir, checkBeforeOpen, damageError, type Examination, examineOffline, examineStore, readStoreName } from './examine.ts';
export { readStoredIdentity } from './loadIdentity.ts';

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
  /** the read-only checks, started earlier with checkBeforeOpen for this dir, name and format; default: made here */
  checked?: Promise<CheckedDir>;
  /**
   * for tests only: pretend the current format is `formatVersion`, with these migrations; `env` sees
   * the LMDB environment once it is open (to plant faults where lmdb-js raises them)
   */
  testHooks?: { formatVersion?: number; migrations?: readonly Migration[]; env?: (env: RootDatabase) => void };
}

export async function openStore(opts: OpenStoreOptions): Promise<NodeStore> {
  const dataDir = resolve(opts.dataDir);
  const create = opts.create ?? true;
  const target = opts.testHooks?.formatVersion ?? STORE_FORMAT_VERSION;
  const migrations = opts.testHooks?.migrations ?? MIGRATIONS;
  const log = opts.logger;

  // the read-only checks: done here, or started earlier by the caller (`checked`, run.ts)
  const checked = await (opts.checked ?? checkBeforeOpen({ dataDir, name: opts.name, create, target, logger: log }));
  if (checked.dataDir !== dataDir || checked.name !== opts.name || checked.target !== target || checked.create !== create) {
    throw new Error(`openStore: the checks given were made for ${JSON.stringify(checked)}, not for ${JSON.stringify({ dataDir, name: opts.name, target, create })}`);
  }
  const { kind, marker } = checked;
  if (kind === 'missing') {
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
    opts.testHooks?.env?.(env);
    const framed = target >= FRAMED_SINCE;
    const dbs = openDbs(env, framed);
    const { identity, memberKey, boot } = loadOrCreateIdentity(env, dbs, dataDir, opts.name, target, migrations, log);
    // the marker goes with the store from its first commit on (and onto stores made before it existed)
    if (!marker) writeMarker(dataDir, { format: STORE_FORMAT, nodeId: identity.nodeId, name: identity.name, createdAt: identity.createdAt });
    const store = new NodeStore(dataDir, env, dbs, lock, identity, memberKey, boot, opts.mapSizeBytes, log);
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
  readonly #core: StoreCore;
  #staging: SnapshotStaging | null = null;

  /** @internal use openStore() */
  constructor(...args: ConstructorParameters<typeof StoreCore>) {
    this.#core = new StoreCore(...args);
    this.dataDir = this.#core.dataDir;
    // what a crash left of a snapshot being received is scratch: not kept until the next transfer
    if (this.snapshotStaging().holdsLeftovers()) this.snapshotStaging().clear();
  }

  /** the damage a read found (then every write is refused), or null */
  damage(): StoreError | null {
    return this.#core.damaged;
  }

  /** call `listener` once a read finds damage (within that read: defer real work); returns the unsubscribe */
  onDamage(listener: (err: StoreError) => void): () => void {
    return this.#core.onDamage(listener);
  }

  // ---- identity --------------------------------------------------------------------------

  identity(): StoreIdentity {
    // frozen and replaced on every change, so callers on hot paths (every message, every log line)
    // may read it without a copy
    return this.#core.identity;
  }

  /** the key that signs this node's peer messages (memberKey.ts); its public half is committed in the configuration */
  memberKey(): MemberKey {
    return this.#core.memberKey;
  }

  /** this open's boot counter (boot.ts): larger than at any earlier open of this store */
  boot(): number {
    return this.#core.boot;
  }

  async updateIdentity(patch: IdentityPatch): Promise<void> {
    const core = this.#core;
    const next = core.mergeIdentity(patch);
    core.write('identity update', () => {
      core.db.identity.putSync(K_IDENTITY, next);
    });
    core.setIdentity(next);
  }

  // ---- raft log and hard state (raftLog.ts) -------------------------------------------------

  hardState(): HardState {
    return { ...this.#core.hard };
  }

  /** first index still in the log (after compaction: snapshot index + 1) */
  firstIndex(): number {
    return this.#core.first;
  }

  /** raft state exists (a snapshot, log entries or a term): with no cluster id, an older cluster's member */
  hasRaftState(): boolean {
    const core = this.#core;
    return core.snap !== null || core.last > 0 || core.hard.term > 0;
  }

  /** last index of the log (the snapshot index when the log is empty after it) */
  lastIndex(): number {
    return this.#core.last;
  }

  /**
   * Entries [lo, hiExclusive), clipped at lastIndex()+1. Throws RangeError when lo is below
   * firstIndex() (compacted: send the snapshot instead).
   */
  entries(lo: number, hiExclusive: number): Entry[] {
    return raftLog.entries(this.#core, lo, hiExclusive);
  }

  /** term of the entry at `index`: 0 for index 0, the snapshot's term at its index, undefined if unknown/compacted */
  term(index: number): number | undefined {
    return raftLog.termAt(this.#core, index);
  }

  snapshotMeta(): SnapshotMeta | null {
    const snap = this.#core.snap;
    return snap ? structuredClone(snap) : null;
  }

  /**
   * THE durable write raft depends on: hard state and appended entries in ONE transaction.
   * Entries must be contiguous, starting at most at lastIndex()+1 and above the snapshot; leading
   * entries the log already has with the same term are kept, from the first conflict it is replaced.
   * `applied`: a pending write of the applied state, made in the same transaction (durable with it).
   */
  async persist(batch: { hardState?: HardState; entries?: Entry[]; applied?: state.AppliedWrite }): Promise<void> {
    raftLog.persist(this.#core, batch);
  }

  // ---- replicated state (replicatedState.ts) ------------------------------------------------

  stateGet(key: string): unknown | undefined {
    return state.stateGet(this.#core, key);
  }

  /** keys in order; materialized (no cursor is held across an await) */
  stateRange(opts: { prefix?: string; limit?: number } = {}): Iterable<[string, unknown]> {
    return state.stateRange(this.#core, opts);
  }

  appliedIndex(): number {
    return this.#core.applied;
  }

  /** apply committed entries' effects atomically with the new applied index */
  async applyState(appliedIndex: number, ops: Array<{ key: string; value?: unknown }>): Promise<void> {
    state.applyState(this.#core, { appliedIndex, ops });
  }

  /** a consistent dump of the replicated state and the index it reflects */
  exportState(): { appliedIndex: number; pairs: Array<[string, unknown]> } {
    return state.exportState(this.#core);
  }

  /**
   * A consistent view of the replicated state and the index it reflects, read lazily: one read
   * transaction holds the view until done() (call it, also when giving up), so a large state is
   * streamed a few pairs at a time instead of copied into memory.
   */
  stateSnapshot(): state.StateSnapshot {
    return state.stateSnapshot(this.#core);
  }

  // ---- snapshots and whole-store writes (snapshots.ts) ---------------------------------------

  /** records meta (the state db at meta.index is the snapshot) and deletes log entries <= meta.index */
  async saveSnapshotAndCompact(meta: SnapshotMeta): Promise<void> {
    snapshots.saveSnapshotAndCompact(this.#core, meta);
  }

  /** where a snapshot being received is written as it arrives (snapshotStaging.ts); pass it as `pairs` to install it */
  snapshotStaging(): SnapshotStaging {
    this.#core.assertOpen();
    this.#staging ??= new SnapshotStaging(this.#core);
    return this.#staging;
  }

  /** replace the whole replicated state by a received snapshot, atomically with its meta, the log reset and the hard state */
  async installSnapshot(meta: SnapshotMeta, pairs: Array<[string, unknown]> | SnapshotStaging, hardState: HardState): Promise<void> {
    snapshots.installSnapshot(this.#core, meta, pairs, hardState);
  }

  /**
   * One durable write that makes a blank node a member: cluster id + initial snapshot/state +
   * hard state (init, initFrom, and a joining node adopting the cluster id with the state it receives).
   */
  async initializeCluster(args: InitializeCluster): Promise<void> {
    snapshots.initializeCluster(this.#core, args);
  }

  /**
   * Disaster recovery, in ONE durable write: this store becomes the sole voter of its cluster,
   * keeping the cluster id and the committed data (details in snapshots.ts).
   * The caller (recover.ts) checks that this store is a member that may be recovered.
   */
  recoverAsSoleVoter(): RecoveryWrite {
    return snapshots.recoverAsSoleVoter(this.#core);
  }

  /** closes the environment and releases the data-dir lock; idempotent */
  async close(): Promise<void> {
    await this.#core.close();
  }
}

export type { RecoveryWrite };
export { STORE_FORMAT_VERSION, StoreError, type StoreIdentity };
