// The replicated state as applied, with its durable write deferred a moment. Committed entries are
// already durable in the log, so the state need not be fsynced before the client hears the result
// (as etcd answers from its backend before the batch commits): on a crash the node re-applies the
// log from the last durable applied index. Reads see the pending writes; anything that must match
// the durable state (snapshots, compaction, export) flushes first.
import type { StateOp, StateReader } from '../runtime/state/kv.ts';
import type { NodeStore } from '../runtime/store/index.ts';

export class AppliedState implements StateReader {
  /** key → value written since the last flush (undefined = deleted) */
  private pending = new Map<string, unknown>();
  private pendingIndex = 0;
  private scheduled = false;
  private failed: unknown = null;
  private closed = false;

  constructor(
    private readonly store: NodeStore,
    /** a deferred write failed (disk full, I/O): the member must halt */
    private readonly onFlushError: (err: unknown) => void,
  ) {}

  stateGet(key: string): unknown | undefined {
    return this.pending.has(key) ? this.pending.get(key) : this.store.stateGet(key);
  }

  stateRange(opts?: { prefix?: string; limit?: number }): Iterable<[string, unknown]> {
    this.flush();
    return this.store.stateRange(opts);
  }

  /** the applied index, including what is not yet durable */
  appliedIndex(): number {
    return this.pendingIndex > 0 ? this.pendingIndex : this.store.appliedIndex();
  }

  /** record the effects of entries applied up to `index`; written durably soon, in one batch */
  record(index: number, ops: readonly StateOp[]): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new Error('the applied state is closed');
    for (const op of ops) this.pending.set(op.key, op.value);
    this.pendingIndex = index;
    if (!this.scheduled) {
      this.scheduled = true;
      // after the replies of this turn have gone out
      setImmediate(() => {
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
    const ops: StateOp[] = [];
    for (const [key, value] of this.pending) ops.push(value === undefined ? { key } : { key, value });
    this.pending = new Map();
    this.pendingIndex = 0;
    try {
      // the store writes synchronously inside the call; its promise only reports completion
      this.store.applyState(index, ops).catch((err: unknown) => this.fail(err));
    } catch (err) {
      this.fail(err);
      throw err;
    }
    if (this.failed) throw this.failed;
  }

  /** forget what is pending: a snapshot replaces the state wholesale */
  discard(): void {
    this.pending = new Map();
    this.pendingIndex = 0;
  }

  exportState(): { appliedIndex: number; pairs: Array<[string, unknown]> } {
    this.flush();
    return this.store.exportState();
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
