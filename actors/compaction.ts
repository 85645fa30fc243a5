// When the member takes a snapshot of its applied state and drops the log below it: every
// `snapshotEvery` entries, or once the applied log holds `snapshotEveryBytes` (a few large values
// make a large log long before many small ones do). The state store already holds the snapshot's
// data; taking one records its meta and compacts the log.
import type { Entry, SnapshotMeta } from '../machines/raft/types.ts';
import { entryBytes } from '../machines/raft/size.ts';
import type { RaftTiming } from '../runtime/config/config.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { MemberStore } from './ports.ts';

export interface CompactionHands {
  readonly store: MemberStore;
  readonly log: Logger;
  readonly timing: Pick<RaftTiming, 'snapshotEvery' | 'snapshotEveryBytes'>;
  /** the core's snapshot meta at an applied index */
  snapshotMetaAt(index: number): SnapshotMeta;
  /** make the applied state durable (compaction may drop only entries whose effects are) */
  flushState(): void;
  /** the durable snapshot is recorded: the core may drop its log up to it */
  compacted(meta: SnapshotMeta): void;
}

export class Compaction {
  /** snapshots taken (the log compacted) since the member started, for /metrics */
  taken = 0;

  private snapshotIndex = 0;
  /** bytes of the log entries applied since the last snapshot */
  private bytesSinceSnapshot = 0;

  constructor(private readonly hands: CompactionHands) {}

  /** at start: the snapshot in the store, and the entries applied after it */
  restore(snapshotIndex: number, applied: readonly Entry[]): void {
    this.snapshotIndex = snapshotIndex;
    this.bytesSinceSnapshot = 0;
    for (const e of applied) this.bytesSinceSnapshot += entryBytes(e);
  }

  /** a received snapshot was installed: the log starts over from it */
  installed(index: number): void {
    this.snapshotIndex = index;
    this.bytesSinceSnapshot = 0;
  }

  /** entries were applied (and the core advanced): snapshot if enough has been */
  applied(committed: readonly Entry[]): void {
    if (committed.length === 0) return;
    for (const e of committed) this.bytesSinceSnapshot += entryBytes(e);
    const index = committed[committed.length - 1]!.index;
    const { snapshotEvery, snapshotEveryBytes } = this.hands.timing;
    if (index - this.snapshotIndex < snapshotEvery && this.bytesSinceSnapshot < snapshotEveryBytes) return;
    const meta = this.hands.snapshotMetaAt(index);
    this.snapshotIndex = index;
    this.bytesSinceSnapshot = 0;
    this.hands.flushState();
    this.hands.store.saveSnapshotAndCompact(meta).then(
      () => {
        this.taken++;
        this.hands.compacted(meta);
        this.hands.log.info({ index: meta.index, term: meta.term }, 'snapshot taken, log compacted');
      },
      (err: unknown) => this.hands.log.error({ err }, 'snapshot failed; the log is kept'),
    );
  }
}
