// Writes that move the whole store at once, each ONE durable transaction: a snapshot with log
// compaction, installing a received snapshot, initializing a blank node as a member, and the
// disaster-recovery rewrite as sole voter.
import type { HardState, SnapshotMeta } from '../../machines/raft/types.ts';
import { corrupt } from './files.ts';
import type { IdentityPatch, StoreIdentity } from './identity.ts';
import { K_APPLIED, K_HARD, K_IDENTITY, K_META, type StoredEntry } from './lmdbEnv.ts';
import { K_MEMBER_KEY, readMemberKey, rotatedMemberKey } from './memberKey.ts';
import { entries, termAt } from './raftLog.ts';
import { planRecovery } from './recoveryPlan.ts';
import { SnapshotStaging } from './snapshotStaging.ts';
import type { StoreCore } from './storeCore.ts';

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

/** records meta (the state db at meta.index is the snapshot) and deletes log entries <= meta.index */
export function saveSnapshotAndCompact(core: StoreCore, meta: SnapshotMeta): void {
  core.assertOpen();
  if (core.snap && meta.index < core.snap.index) {
    throw new RangeError(`saveSnapshotAndCompact: index ${meta.index} is older than the current snapshot ${core.snap.index}`);
  }
  if (meta.index > core.applied) {
    // the state db only reflects entries up to the applied index: compacting beyond would lose entries
    throw new RangeError(`saveSnapshotAndCompact: index ${meta.index} is beyond the applied index ${core.applied}`);
  }
  if (meta.index > core.last) {
    throw new RangeError(`saveSnapshotAndCompact: index ${meta.index} is beyond the last index ${core.last}`);
  }
  const t = termAt(core, meta.index);
  if (t !== undefined && t !== meta.term) {
    throw new RangeError(`saveSnapshotAndCompact: term ${meta.term} does not match the log's term ${t} at index ${meta.index}`);
  }
  const copy = structuredClone(meta);
  const first = core.first;
  core.write(`snapshot at ${meta.index}`, () => {
    core.db.snapshot.putSync(K_META, copy);
    for (let i = first; i <= copy.index; i++) core.db.log.removeSync(i);
  });
  core.snap = copy;
  core.first = copy.index + 1;
}

/** replace the whole replicated state by a received snapshot, atomically with its meta, the log reset and the hard state */
export function installSnapshot(core: StoreCore, meta: SnapshotMeta, pairs: Array<[string, unknown]> | SnapshotStaging, hardState: HardState): void {
  core.assertOpen();
  if (meta.index < core.applied) {
    throw new RangeError(`installSnapshot: snapshot index ${meta.index} is older than the applied index ${core.applied}`);
  }
  replaceState(core, `install snapshot at ${meta.index}`, meta, pairs, hardState, null);
}

/** what makes a blank node a member (initializeCluster) */
export interface InitializeCluster {
  clusterId: string;
  meta: SnapshotMeta;
  pairs: Array<[string, unknown]> | SnapshotStaging;
  hardState: HardState;
  importedFrom?: string;
  /** a joining node adopts the cluster's current identity generation (disaster recovery bumps it) */
  generation?: number;
}

/**
 * One durable write that makes a blank node a member: cluster id + initial snapshot/state +
 * hard state (init, initFrom, and a joining node adopting the cluster id with the state it receives).
 */
export function initializeCluster(core: StoreCore, args: InitializeCluster): void {
  core.assertOpen();
  const current = core.identity.clusterId;
  if (current !== null) {
    throw new Error(`initializeCluster: the store in ${core.dataDir} is already a member of cluster ${current}`);
  }
  const patch: IdentityPatch = { clusterId: args.clusterId, initializedAt: new Date().toISOString() };
  if (args.importedFrom !== undefined) patch.importedFrom = args.importedFrom;
  if (args.generation !== undefined) patch.generation = args.generation;
  const identity = core.mergeIdentity(patch);
  replaceState(core, `initialize cluster ${args.clusterId}`, args.meta, args.pairs, args.hardState, identity);
}

/**
 * Disaster recovery, in ONE durable write: this store becomes the sole voter of its cluster,
 * keeping the cluster id and the committed data. The snapshot moves to the applied index with
 * membership = {this node as voter}; committed entries not yet applied stay in the log (config
 * entries among them become no-ops, so the new membership holds) and are applied on the next
 * start; the uncommitted tail is dropped; the term is bumped; the identity generation is bumped.
 * The caller (recover.ts) checks that this store is a member that may be recovered.
 */
export function recoverAsSoleVoter(core: StoreCore): RecoveryWrite {
  core.assertOpen();
  const id = core.identity;
  if (id.clusterId === null) throw new Error(`recoverAsSoleVoter: the store in ${core.dataDir} is not a member of a cluster`);
  const plan = planRecovery({
    nodeId: id.nodeId,
    name: id.name,
    generation: id.generation,
    hardState: core.hard,
    applied: core.applied,
    firstIndex: core.first,
    lastIndex: core.last,
    snapshotMembership: core.snap?.membership ?? null,
    termAt: (index) => termAt(core, index),
    entries: (lo, hi) => entries(core, lo, hi),
  });
  if ('error' in plan) throw corrupt(core.dataDir, plan.error);
  // a new generation, a new member key (the old one may be in the hands of whoever kept the old store),
  // signed by the old one: the stale survivors hold only that, and check the recovery with it
  const key = rotatedMemberKey(core.memberKey, id.nodeId, id.clusterId, plan.generation);
  const memberKey = readMemberKey(key, id.nodeId);
  if (typeof memberKey === 'string') throw new Error(`recoverAsSoleVoter: ${memberKey}`);
  const meta: SnapshotMeta = { ...plan.snapshot, membership: { ...plan.snapshot.membership, members: plan.snapshot.membership.members.map((m) => ({ ...m, key: key.publicKey })) } };
  const hs = plan.hardState;
  const identity = core.mergeIdentity({ generation: plan.generation, contactedBy: null });
  const { first, last } = { first: core.first, last: core.last };
  const db = core.db;
  core.write('recovery', () => {
    for (let i = first; i <= plan.dropThrough; i++) db.log.removeSync(i);
    // config entries kept as no-ops, so the new membership holds
    for (const e of plan.pending) if (e.type === 'noop') db.log.putSync(e.index, [e.term, 'noop', null] satisfies StoredEntry);
    for (let i = plan.dropFrom; i <= last; i++) db.log.removeSync(i);
    db.snapshot.putSync(K_META, meta);
    db.hardstate.putSync(K_HARD, hs);
    db.identity.putSync(K_IDENTITY, identity);
    db.identity.putSync(K_MEMBER_KEY, key);
  });
  core.memberKey = memberKey;
  const before = { term: core.hard.term, generation: id.generation };
  core.snap = meta;
  core.hard = hs;
  core.first = plan.snapshot.index + 1;
  core.last = hs.commit;
  core.setIdentity(identity);
  return {
    clusterId: id.clusterId,
    previousGeneration: before.generation,
    generation: identity.generation,
    previousTerm: before.term,
    term: hs.term,
    appliedIndex: plan.snapshot.index,
    commitIndex: hs.commit,
    pendingEntries: plan.pending.length,
    droppedEntries: plan.droppedUncommitted,
    keys: db.state.getKeysCount(),
    previousMembers: plan.previousMembership.members.map((m) => ({ name: m.name, nodeId: m.nodeId, voter: m.voter })),
  };
}

/**
 * Replaces state, snapshot meta, hard state (and the identity, if given) in one write; keeps the
 * log tail the snapshot covers. A received snapshot (SnapshotStaging) is not copied: its database
 * becomes the current state database in this write.
 */
export function replaceState(
  core: StoreCore,
  what: string,
  meta: SnapshotMeta,
  pairs: Array<[string, unknown]> | SnapshotStaging,
  hardState: HardState,
  identity: StoreIdentity | null,
): void {
  const metaCopy = structuredClone(meta);
  const hs: HardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  // Raft §7: keep the log after the snapshot if it already has the snapshot's last entry.
  const keepTail = termAt(core, meta.index) === meta.term && meta.index <= core.last && meta.index >= core.first;
  const { first, last } = { first: core.first, last: core.last };
  const db = core.db;
  const received = pairs instanceof SnapshotStaging ? pairs : null;
  core.write(what, () => {
    if (received) received.adopt();
    else {
      db.state.clearSync();
      for (const [k, v] of pairs as Array<[string, unknown]>) if (v !== undefined) db.state.putSync(k, v);
    }
    const upTo = keepTail ? meta.index : last;
    for (let i = first; i <= upTo; i++) db.log.removeSync(i);
    db.snapshot.putSync(K_META, metaCopy);
    db.hardstate.putSync(K_APPLIED, metaCopy.index);
    db.hardstate.putSync(K_HARD, hs);
    if (identity) db.identity.putSync(K_IDENTITY, identity);
  });
  received?.committed();
  core.snap = metaCopy;
  core.applied = metaCopy.index;
  core.hard = hs;
  core.first = metaCopy.index + 1;
  core.last = keepTail ? Math.max(last, metaCopy.index) : metaCopy.index;
  if (identity) core.setIdentity(identity);
}
