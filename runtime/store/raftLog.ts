// The raft log and hard state of a node store: reading entries and terms, and THE durable write
// raft depends on (persist: hard state and appended entries in one transaction).
import type { Entry, HardState } from '../../machines/raft/types.ts';
import { K_HARD, type StoredEntry } from './lmdbEnv.ts';
import { type AppliedWrite, checkApplied, putApplied } from './replicatedState.ts';
import type { StoreCore } from './storeCore.ts';

/**
 * Entries [lo, hiExclusive), clipped at lastIndex()+1. Throws RangeError when lo is below
 * firstIndex() (compacted: send the snapshot instead).
 */
export function entries(core: StoreCore, lo: number, hiExclusive: number): Entry[] {
  core.assertOpen();
  if (lo < core.first) {
    throw new RangeError(`entries(${lo}, ${hiExclusive}): index ${lo} is compacted (first index is ${core.first})`);
  }
  const hi = Math.min(hiExclusive, core.last + 1);
  const out: Entry[] = [];
  if (lo >= hi) return out;
  return core.read(`a log entry in [${lo}, ${hi})`, () => {
    for (const { key, value } of core.db.log.getRange({ start: lo, end: hi })) {
      const [term, type, data] = value as StoredEntry;
      out.push({ index: key as number, term, type, data });
    }
    return out;
  });
}

/** term of the entry at `index`: 0 for index 0, the snapshot's term at its index, undefined if unknown/compacted */
export function termAt(core: StoreCore, index: number): number | undefined {
  core.assertOpen();
  if (index === 0) return 0;
  if (core.snap && index === core.snap.index) return core.snap.term;
  if (index < core.first || index > core.last) return undefined;
  const v = core.read(`log entry ${index}`, () => core.db.log.get(index) as StoredEntry | undefined);
  return v?.[0];
}

/**
 * THE durable write raft depends on: hard state and appended entries in ONE transaction.
 * Entries must be contiguous, starting at most at lastIndex()+1 and above the snapshot.
 * Raft's rule (§5.3): leading entries the log already has with the same term are kept as they
 * are; from the first conflicting entry (same index, other term) the log is truncated and the
 * rest appended. (Truncating a matching suffix would drop entries the leader already counts.)
 * `applied`: the applied state's pending write rides along in the same transaction (it saves the
 * apply's own write; entries it reflects were committed, so durable in this log before it).
 */
export function persist(core: StoreCore, batch: { hardState?: HardState; entries?: Entry[]; applied?: AppliedWrite }): void {
  core.assertOpen();
  const all = batch.entries ?? [];
  const hs = batch.hardState;
  const applied = batch.applied;
  if (applied) checkApplied(core, applied);
  if (all.length === 0 && !hs && !applied) return;
  const last = core.last;
  const from = all[0]?.index;
  if (from !== undefined) {
    for (let i = 1; i < all.length; i++) {
      if (all[i]!.index !== from + i) {
        throw new RangeError(`persist: entries are not contiguous (index ${all[i]!.index} after ${from + i - 1})`);
      }
    }
    if (from < core.first) {
      throw new RangeError(`persist: entry ${from} is at or below the snapshot (first index is ${core.first})`);
    }
    if (from > last + 1) throw new RangeError(`persist: entry ${from} would leave a gap after last index ${last}`);
  }
  let skip = 0;
  while (skip < all.length && all[skip]!.index <= last && termAt(core, all[skip]!.index) === all[skip]!.term) skip++;
  const entries = skip === 0 ? all : all.slice(skip);
  const start = entries[0]?.index;
  if (start === undefined && !hs && !applied) return;

  const hsCopy = hs ? { term: hs.term, vote: hs.vote, commit: hs.commit } : undefined;
  const logDb = core.db.log;
  core.write(`persist of ${entries.length} entries${applied ? ` and the apply up to ${applied.appliedIndex}` : ''}`, () => {
    if (hsCopy) core.db.hardstate.putSync(K_HARD, hsCopy);
    if (applied) putApplied(core, applied);
    if (start === undefined) return;
    for (let i = start; i <= last; i++) logDb.removeSync(i); // the conflicting suffix
    for (const e of entries) logDb.putSync(e.index, [e.term, e.type, e.data] satisfies StoredEntry);
  });
  if (hsCopy) core.hard = hsCopy;
  if (applied) core.applied = applied.appliedIndex;
  if (start !== undefined) core.last = start + entries.length - 1;
}
