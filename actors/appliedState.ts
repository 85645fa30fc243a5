// The replicated state as applied, with its durable write deferred a moment. Committed entries are
// already durable in the log, so the state need not be fsynced before the client hears the result
// (as etcd answers from its backend before the batch commits): on a crash the node re-applies the
// log from the last durable applied index. Reads see the pending writes; anything that must match
// the durable state (snapshots, compaction, export) flushes first.
//
// Two kinds: the built-in KV (AppliedState: pending key writes) and a host state
// (HostAppliedState: the host's own object; its snapshot() is taken once per flush and stored as
// one pair under a reserved key, with the applied index).
import { type AnyReplicatedState, HOST_STATE_KEY, hostSnapshotFromPairs, hostStateRecord } from '../runtime/state/host.ts';
import type { StateOp, StateReader } from '../runtime/state/kv.ts';
import { type MemberStore, realClock } from './ports.ts';
import type { StageTimes } from './stageTimes.ts';

/** The deferred durable write shared by both kinds: at most one flush per turn of the event loop. */
export abstract class DeferredState {
  protected pendingIndex = 0;
  private scheduled = false;
  private failed: unknown = null;
  private closed = false;

  constructor(
    protected readonly store: MemberStore,
    /** a deferred write failed (disk full, I/O): the member must halt */
    private readonly onFlushError: (err: unknown) => void,
    /** run once the current turn's work is done (the member's clock) */
    private readonly soon: (fn: () => void) => void = realClock.soon,
    /** the store's write is timed here (stageTimes.ts: stateWrite) */
    private readonly stageTimes: StageTimes | null = null,
  ) {}

  /** the ops that make the durable state match what is applied (called once per flush) */
  protected abstract takeOps(): StateOp[];
  /** forget the pending effects (their index is reset by the caller) */
  protected abstract dropPending(): void;

  /** the applied index, including what is not yet durable */
  appliedIndex(): number {
    return this.pendingIndex > 0 ? this.pendingIndex : this.store.appliedIndex();
  }

  protected markApplied(index: number): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new Error('the applied state is closed');
    this.pendingIndex = index;
    if (!this.scheduled) {
      this.scheduled = true;
      // after the replies of this turn have gone out
      this.soon(() => {
        this.scheduled = false;
        this.flushReporting();
      });
    }
  }

  /** write what is pending now (synchronously durable; throws what the store throws) */
  flush(): void {
    if (this.failed) throw this.failed;
    if (this.pendingIndex === 0) return;
    const index = this.pendingIndex;
    let ops: StateOp[];
    try {
      ops = this.takeOps();
    } catch (err) {
      // the host's snapshot() threw: nothing can be made durable from here on
      this.fail(err);
      throw err;
    }
    this.pendingIndex = 0;
    try {
      // the store writes synchronously inside the call; its promise only reports completion
      const started = this.stageTimes?.now() ?? 0;
      this.store.applyState(index, ops).catch((err: unknown) => this.fail(err));
      this.stageTimes?.observe('stateWrite', started);
    } catch (err) {
      this.fail(err);
      throw err;
    }
    if (this.failed) throw this.failed;
  }

  /** forget what is pending: a snapshot replaces the state wholesale */
  discard(): void {
    this.dropPending();
    this.pendingIndex = 0;
  }

  exportState(): { appliedIndex: number; pairs: Array<[string, unknown]> } {
    this.flush();
    return this.store.exportState();
  }

  /** the durable state as applied now, read lazily (see NodeStore.stateSnapshot); call done() */
  openSnapshot(): ReturnType<MemberStore['stateSnapshot']> {
    this.flush();
    return this.store.stateSnapshot();
  }

  /** write what is pending and stop: nothing is written after this (the store is about to close) */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
    }
  }

  private flushReporting(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch {
      // already reported through fail()
    }
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = err;
    this.onFlushError(err);
  }
}

/** The built-in KV as applied. */
export class AppliedState extends DeferredState implements StateReader {
  /** key → value written since the last flush (undefined = deleted) */
  private pending = new Map<string, unknown>();

  stateGet(key: string): unknown | undefined {
    return this.pending.has(key) ? this.pending.get(key) : this.store.stateGet(key);
  }

  stateRange(opts?: { prefix?: string; limit?: number }): Iterable<[string, unknown]> {
    this.flush();
    return this.store.stateRange(opts);
  }

  /** record the effects of entries applied up to `index`; written durably soon, in one batch */
  record(index: number, ops: readonly StateOp[]): void {
    this.markApplied(index);
    for (const op of ops) this.pending.set(op.key, op.value);
  }

  protected takeOps(): StateOp[] {
    const ops: StateOp[] = [];
    for (const [key, value] of this.pending) ops.push(value === undefined ? { key } : { key, value });
    this.pending = new Map();
    return ops;
  }

  protected dropPending(): void {
    this.pending = new Map();
  }
}

/** A host-supplied state as applied: the host object is the live state; its snapshot() the durable one. */
export class HostAppliedState extends DeferredState {
  constructor(
    store: MemberStore,
    readonly host: AnyReplicatedState,
    onFlushError: (err: unknown) => void,
    soon: (fn: () => void) => void = realClock.soon,
    stageTimes: StageTimes | null = null,
  ) {
    super(store, onFlushError, soon, stageTimes);
  }

  /** at start: the host state as of the durable applied index (the log replays from there) */
  load(): void {
    const record = this.store.stateGet(HOST_STATE_KEY);
    const pairs: Array<[string, unknown]> = record === undefined ? [] : [[HOST_STATE_KEY, record]];
    this.host.restore(hostSnapshotFromPairs(pairs, 'the data dir'));
  }

  /** after a received snapshot was written: the host state becomes it */
  restoreFrom(snapshot: unknown): void {
    this.host.restore(snapshot);
  }

  /** entries up to `index` were applied to the host object; its snapshot is taken at the next flush */
  record(index: number): void {
    this.markApplied(index);
  }

  protected takeOps(): StateOp[] {
    return [{ key: HOST_STATE_KEY, value: hostStateRecord(this.host.snapshot()) }];
  }

  protected dropPending(): void {
    // nothing held here: the host object itself is replaced by restore()
  }
}
