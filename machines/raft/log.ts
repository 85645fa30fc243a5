// The raft log as the core sees it: a snapshot boundary, then one array of entries.
// Entries are immutable once created, so slices share them without copying.
import type { Entry, Membership, SnapshotMeta } from './types.ts';

export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError';
}

export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(`raft invariant violated: ${message}`);
}

const NO_MEMBERSHIP: Membership = Object.freeze({ members: Object.freeze([]) as unknown as Membership['members'] });

export class RaftLog {
  /** the last index covered by the snapshot (0: none); entries[0].index === offset + 1 */
  private offset: number;
  private offsetTerm: number;
  private snapshotMembership: Membership;
  private entries: Entry[];
  /** indexes of 'config' entries still in `entries`, ascending */
  private configIndexes: number[] = [];

  committed: number;
  applied: number;
  /** highest index the host has durably persisted (acknowledged through advance) */
  stableIndex: number;
  /** lowest index the host has not yet been given to persist (a truncation lowers it) */
  unstableFrom: number;
  /** a snapshot received from the leader that the host has not installed yet */
  pendingSnapshot: SnapshotMeta | null = null;

  constructor(snapshot: SnapshotMeta | null, entries: Entry[], commit: number, applied: number) {
    this.offset = snapshot?.index ?? 0;
    this.offsetTerm = snapshot?.term ?? 0;
    this.snapshotMembership = snapshot?.membership ?? NO_MEMBERSHIP;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      invariant(entry.index === this.offset + 1 + i, `restored entry ${i} has index ${entry.index}, expected ${this.offset + 1 + i}`);
      if (i > 0) invariant(entry.term >= entries[i - 1]!.term, `restored log terms decrease at index ${entry.index}`);
      if (entry.type === 'config') this.configIndexes.push(entry.index);
    }
    invariant(entries.length === 0 || entries[0]!.term >= this.offsetTerm, 'restored log starts below the snapshot term');
    this.entries = entries.slice();
    this.committed = Math.max(commit, this.offset);
    invariant(this.committed <= this.lastIndex(), `restored commit ${commit} beyond last index ${this.lastIndex()}`);
    this.applied = Math.max(applied, this.offset);
    invariant(this.applied <= this.committed, `restored applied ${applied} beyond commit ${this.committed}`);
    this.stableIndex = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
  }

  snapshotIndex(): number {
    return this.offset;
  }

  snapshotTerm(): number {
    return this.offsetTerm;
  }

  snapshotMeta(): SnapshotMeta {
    return { index: this.offset, term: this.offsetTerm, membership: this.snapshotMembership };
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length === 0 ? this.offsetTerm : this.entries[this.entries.length - 1]!.term;
  }

  /** the term at `index`, or -1 when it is compacted away or beyond the end */
  term(index: number): number {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset || index > this.lastIndex()) return -1;
    return this.entries[index - this.offset - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    return this.entries[index - this.offset - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** entries in [lo, hi] (inclusive), at most `max` of them; shares the Entry objects */
  slice(lo: number, hi: number, max = Number.POSITIVE_INFINITY): Entry[] {
    invariant(lo > this.offset, `slice from ${lo} reaches into the snapshot (${this.offset})`);
    const end = Math.min(hi, this.lastIndex(), lo + max - 1);
    if (end < lo) return [];
    return this.entries.slice(lo - this.offset - 1, end - this.offset);
  }

  /** the latest membership: the last config entry in the log, else the snapshot's */
  membership(): Membership {
    const last = this.configIndexes[this.configIndexes.length - 1];
    if (last === undefined) return this.snapshotMembership;
    return this.entry(last)!.data as Membership;
  }

  /** the membership in force at `index` (for building snapshot metadata) */
  membershipAt(index: number): Membership {
    for (let i = this.configIndexes.length - 1; i >= 0; i--) {
      const at = this.configIndexes[i]!;
      if (at <= index) return this.entry(at)!.data as Membership;
    }
    return this.snapshotMembership;
  }

  lastConfigIndex(): number {
    return this.configIndexes[this.configIndexes.length - 1] ?? 0;
  }

  /** leader append: entries must continue the log exactly */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      invariant(entry.index === this.lastIndex() + 1, `append of index ${entry.index} after ${this.lastIndex()}`);
      invariant(entry.term >= this.lastTerm(), `append of term ${entry.term} after term ${this.lastTerm()}`);
      this.entries.push(entry);
      if (entry.type === 'config') this.configIndexes.push(entry.index);
    }
  }

  /**
   * Follower append (raft §5.3): if our log matches (prevIndex, prevTerm), drop any conflicting
   * suffix and append what is new. Returns the last index known to match, or -1 on mismatch.
   * `changedConfig` reports whether the set of config entries changed.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): { lastNew: number; changedConfig: boolean } | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    let changedConfig = false;
    // find the first entry that is not already in our log with the same term
    let from = 0;
    while (from < entries.length) {
      const entry = entries[from]!;
      if (entry.index <= this.offset) {
        from++; // already covered by our snapshot: committed, hence identical
        continue;
      }
      if (!this.matchTerm(entry.index, entry.term)) break;
      from++;
    }
    if (from < entries.length) {
      const first = entries[from]!;
      invariant(first.index === prevIndex + 1 + from, 'append entries are not contiguous');
      if (first.index <= this.lastIndex()) {
        invariant(first.index > this.committed, `conflict at committed index ${first.index} (commit ${this.committed})`);
        changedConfig = this.truncateFrom(first.index) || changedConfig;
      }
      for (let i = from; i < entries.length; i++) {
        const entry = entries[i]!;
        this.entries.push(entry);
        if (entry.type === 'config') {
          this.configIndexes.push(entry.index);
          changedConfig = true;
        }
      }
    }
    return { lastNew, changedConfig };
  }

  /** drop entries >= index; returns whether a config entry went with them */
  private truncateFrom(index: number): boolean {
    invariant(index > this.offset && index <= this.lastIndex(), `truncate at ${index} outside the log`);
    this.entries.length = index - this.offset - 1;
    if (index <= this.stableIndex) this.stableIndex = index - 1;
    if (index < this.unstableFrom) this.unstableFrom = index;
    let dropped = false;
    while (this.configIndexes.length > 0 && this.configIndexes[this.configIndexes.length - 1]! >= index) {
      this.configIndexes.pop();
      dropped = true;
    }
    return dropped;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    invariant(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  /** etcd's findConflictByTerm: the largest index <= `index` whose term is <= `term` */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let at = Math.min(index, this.lastIndex());
    while (at > this.offset) {
      const t = this.term(at);
      if (t <= term) return { index: at, term: t };
      at--;
    }
    return { index: at, term: this.term(at) };
  }

  /** install a snapshot received from the leader: the whole log is replaced by it */
  restore(meta: SnapshotMeta): void {
    invariant(meta.index > this.committed, `restore of snapshot ${meta.index} at or below commit ${this.committed}`);
    this.offset = meta.index;
    this.offsetTerm = meta.term;
    this.snapshotMembership = meta.membership;
    this.entries = [];
    this.configIndexes = [];
    this.committed = meta.index;
    this.stableIndex = meta.index;
    this.unstableFrom = meta.index + 1;
    this.pendingSnapshot = meta;
  }

  /** the host saved a state snapshot at meta.index: drop the log up to it */
  compact(meta: SnapshotMeta): void {
    if (meta.index <= this.offset) return;
    invariant(meta.index <= this.applied, `compact at ${meta.index} beyond applied ${this.applied}`);
    invariant(meta.index <= this.stableIndex, `compact at ${meta.index} beyond persisted ${this.stableIndex}`);
    invariant(this.term(meta.index) === meta.term, `compact at ${meta.index}: term ${meta.term} is not the log's ${this.term(meta.index)}`);
    this.entries = this.entries.slice(meta.index - this.offset);
    this.offset = meta.index;
    this.offsetTerm = meta.term;
    this.snapshotMembership = meta.membership;
    let drop = 0;
    while (drop < this.configIndexes.length && this.configIndexes[drop]! <= meta.index) drop++;
    if (drop > 0) this.configIndexes = this.configIndexes.slice(drop);
  }
}
