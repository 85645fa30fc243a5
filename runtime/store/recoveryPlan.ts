// What `conclave recover` does to a survivor's store, decided without touching it: the one rule
// both the LMDB store (snapshots.ts) and the deterministic simulator's store (test/sim) apply, so
// the simulator's disaster recoveries run the code the CLI runs.
//
// The state as applied becomes the snapshot, with this node its sole voter; committed entries not
// yet applied stay in the log, config entries among them turned into no-ops (so the new membership
// holds), and are applied on the next start; the uncommitted tail is dropped; the term and the
// identity generation are bumped.
import type { Entry, HardState, Membership } from '../../machines/raft/types.ts';

/** the survivor's store, as far as recovery reads it */
export interface RecoverySource {
  nodeId: string;
  name: string;
  generation: number;
  hardState: HardState;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  /** the membership of the stored snapshot, if any */
  snapshotMembership: Membership | null;
  /** the term at `index`, undefined when neither snapshot nor log knows it */
  termAt(index: number): number | undefined;
  entries(lo: number, hiExclusive: number): Entry[];
}

/**
 * Test-only departures from the rule, each a bug the simulator must catch (test/sim/config.ts):
 * keeping the old generation (stale members are not fenced off), and labelling the kept state with
 * a commit point `commitShortBy` entries too low (committed entries are lost).
 */
export interface RecoveryFaults {
  keepGeneration?: boolean;
  commitShortBy?: number;
}

export interface RecoveryPlan {
  /** the snapshot to write: the applied state, this node the sole voter (the caller adds its key) */
  snapshot: { index: number; term: number; membership: Membership };
  hardState: HardState;
  generation: number;
  /** the commit point the survivor had reached */
  commitPoint: number;
  /** committed entries after the snapshot, kept in the log (config entries as no-ops) */
  pending: Entry[];
  /** log entries dropped: those up to the snapshot, and the uncommitted tail */
  dropThrough: number;
  dropFrom: number;
  droppedUncommitted: number;
  /** the membership in force at the commit point: what the operator recovers from */
  previousMembership: Membership;
}

export function planRecovery(src: RecoverySource, faults: RecoveryFaults = {}): RecoveryPlan | { error: string } {
  const commitPoint = Math.max(src.applied, Math.min(Math.max(src.hardState.commit, src.applied), src.lastIndex));
  // the planted fault falls short of the commit point, never below what the snapshot holds (its term is known)
  const commit = faults.commitShortBy ? Math.max(src.firstIndex - 1, commitPoint - faults.commitShortBy) : commitPoint;
  const snapshotIndex = Math.min(src.applied, commit);
  const term = src.termAt(snapshotIndex);
  if (term === undefined) return { error: `the term of its applied index ${snapshotIndex} is unknown (neither in the snapshot nor in the log)` };
  let previous = src.snapshotMembership ?? { members: [] };
  const upToApplied = src.firstIndex <= snapshotIndex ? src.entries(src.firstIndex, snapshotIndex + 1) : [];
  const pending = commit > snapshotIndex ? src.entries(snapshotIndex + 1, commit + 1) : [];
  for (const e of [...upToApplied, ...pending]) if (e.type === 'config') previous = e.data as Membership;
  return {
    // the cluster version is kept: it is never lowered
    snapshot: { index: snapshotIndex, term, membership: { members: [{ nodeId: src.nodeId, name: src.name, voter: true }], ...(previous.version === undefined ? {} : { version: previous.version }) } },
    hardState: { term: src.hardState.term + 1, vote: null, commit },
    generation: faults.keepGeneration === true ? src.generation : src.generation + 1,
    commitPoint,
    pending: pending.map((e) => (e.type === 'config' ? { index: e.index, term: e.term, type: 'noop', data: null } : e)),
    dropThrough: snapshotIndex,
    dropFrom: commit + 1,
    droppedUncommitted: Math.max(0, src.lastIndex - commit),
    previousMembership: previous,
  };
}
