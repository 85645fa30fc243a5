// The replicated state as applied, with its durable write deferred. Committed entries are already
// durable in the log, so the state need not be written before the client hears the result (as etcd
// answers from its backend before the batch commits): on a crash the node re-applies the log from
// the last durable applied index. The next raft write carries what is pending in its own transaction
// (takeForWrite: no write of its own), so under load the state costs no disk flush; what no raft
// write has carried within STATE_WRITE_DELAY_MS is written alone. Reads see the pending writes;
// anything that must match the durable state (snapshots, compaction, export) flushes first.
//
// Two kinds: the built-in KV (AppliedState: pending key writes) and a host state
// (HostAppliedState: the host's own object; its snapshot() is taken once per flush and stored as
// one pair under a reserved key, with the applied index).
import { type AnyReplicatedState, HOST_STATE_KEY, hostSnapshotFromPairs, hostStateRecord } from '../runtime/state/host.ts';
import type { StateOp, StateReader } from '../runtime/state/kv.ts';
import type { AppliedWrite } from '../runtime/store/replicatedState.ts';
import { type Clock, type MemberStore, realClock, type TimerHandle } from './ports.ts';
import type { StageTimes } from './stageTimes.ts';

/**
 * How long applied entries may wait for a raft write to carry them before they are written alone.
 * Under load a raft write comes every round, so this is reached only when the writes stop (a node's
 * last applies, a follower learning the last commit from a heartbeat); a crash costs at most this
 * much re-applying from the log.
 */
export const STATE_WRITE_DELAY_MS = 20;

/** The deferred durable write shared by both kinds: carried by the next raft write, or alone after STATE_WRITE_DELAY_MS. */
export abstract class DeferredState {
  protected pendingIndex = 0;
  /** when the oldest apply not yet written was made (null: nothing pending) */
  private pendingSince: number | null = null;
  private timer: TimerHandle | null = null;
  private failed: unknown = null;
  private closed = false;

  constructor(
    protected readonly store: MemberStore,
    /** a deferred write failed (disk full, I/O): the member must halt */
    private readonly onFlushError: (err: unknown) => void,
    /** the member's clock: the write alone is timed by it */
    private readonly clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'> = realClock,
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
    this.pendingSince ??= this.clock.now();
    if (this.timer === null) this.arm(STATE_WRITE_DELAY_MS);
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.due(), ms);
  }

  /** the timer: write what has waited STATE_WRITE_DELAY_MS; what is younger (a raft write carried the older) waits on */
  private due(): void {
    this.timer = null;
    if (this.closed || this.pendingSince === null) return;
    const waited = this.clock.now() - this.pendingSince;
    if (waited < STATE_WRITE_DELAY_MS) this.arm(STATE_WRITE_DELAY_MS - waited);
    else this.flushReporting();
  }

  /**
   * What is pending, for the raft write about to be made to carry it in its transaction (null:
   * nothing). Taken: the caller writes it, or the member halts (the log re-applies it at restart).
   */
  takeForWrite(): AppliedWrite | null {
    if (this.failed) throw this.failed;
    if (this.pendingIndex === 0 || this.closed) return null;
    const appliedIndex = this.pendingIndex;
    const ops = this.takeOpsReporting();
    this.clearPending();
    return { appliedIndex, ops };
  }

  private clearPending(): void {
    this.pendingIndex = 0;
    this.pendingSince = null;
  }

  private takeOpsReporting(): StateOp[] {
    try {
      return this.takeOps();
    } catch (err) {
      // the host's snapshot() threw: nothing can be made durable from here on
      this.fail(err);
      throw err;
    }
  }

  /** write what is pending now (synchronously durable; throws what the store throws) */
  flush(): void {
    if (this.failed) throw this.failed;
    if (this.pendingIndex === 0) return;
    const index = this.pendingIndex;
    const ops = this.takeOpsReporting();
    this.clearPending();
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
    this.clearPending();
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
      if (this.timer !== null) this.clock.clearTimeout(this.timer);
      this.timer = null;
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
    clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'> = realClock,
    stageTimes: StageTimes | null = null,
  ) {
    super(store, onFlushError, clock, stageTimes);
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
