// The simulated disk of one node (DurableStore: what survives a crash) and the member's store port
// over it (SimStore, one per process). Every write goes through the simulator's hooks first, which
// fail it (disk full), or crash the process during it (lost) or right after it (durable, nothing
// sent yet). A dead process's store writes nothing.
import type { MemberStore, SnapshotStagingPort } from '../../actors/ports.ts';
import type { Entry, HardState, SnapshotMeta } from '../../machines/raft/types.ts';
import type { StoreIdentity } from '../../runtime/store/index.ts';
import type { AppliedWrite } from '../../runtime/store/replicatedState.ts';

/** what the simulated disk holds; only this survives a crash */
export interface DurableStore {
  identity: StoreIdentity;
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  /** the log after the snapshot, contiguous */
  entries: Entry[];
  /** the replicated state as applied up to `applied` (the built-in KV: key → value) */
  state: Map<string, unknown>;
  applied: number;
  /** a snapshot being received */
  staging: Array<[string, unknown]>;
  /**
   * The state, applied index and staged pairs as the last durable write left them, while applies
   * and staging made since are not yet (they are 'ordered' writes, runtime/store/storeCore.ts: an
   * operating-system crash undoes them, a process crash does not); null when everything is durable.
   * The next durable write makes them durable.
   */
  unsynced: { state: Map<string, unknown>; applied: number; staged: number } | null;
}

/** the operating system crashed (power lost): the applies and staging not yet made durable are undone; returns how many entries' applies */
export function losePower(d: DurableStore): number {
  if (d.unsynced === null) return 0;
  const undone = d.applied - d.unsynced.applied;
  d.state = d.unsynced.state;
  d.applied = d.unsynced.applied;
  d.staging.length = d.unsynced.staged;
  d.unsynced = null;
  return undone;
}

export function durableStore(nodeId: string, name: string, clusterId: string | null, generation: number): DurableStore {
  return {
    identity: { format: 'conclave-store', formatVersion: 1, nodeId, name, clusterId, generation, createdAt: '2026-01-01T00:00:00.000Z' },
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: null,
    entries: [],
    state: new Map(),
    applied: 0,
    staging: [],
    unsynced: null,
  };
}

/** the simulator's say over every write */
export interface WriteHooks {
  /** before a write: throws to fail it (disk full) or to crash the process during it (the write is lost) */
  before(what: string): void;
  /** after a write: throws to crash the process right after it */
  after(what: string): void;
  /** entries are durable; `prevTerm` is the term of the entry before the first (-1 when unknown) */
  persisted(entries: Entry[], prevTerm: number): void;
  /** a blank node wrote its first state and with it the cluster id */
  adopted(): void;
  /** the member took a snapshot and compacted its log */
  compacted(): void;
  /** a snapshot received from the leader replaced the state */
  installed(): void;
  /** the applied state was written: carried by a raft write, or alone */
  stateWritten?(carried: boolean): void;
}

export const CRASHED = new Error('the process crashed at a write');

export function termAt(d: DurableStore, index: number): number {
  const offset = d.snapshot?.index ?? 0;
  if (index === offset) return d.snapshot?.term ?? 0;
  return d.entries[index - offset - 1]?.term ?? -1;
}

function sorted(state: Map<string, unknown>): Array<[string, unknown]> {
  return [...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export class SimStore implements MemberStore {
  private alive = true;

  constructor(
    readonly d: DurableStore,
    private readonly hooks: WriteHooks,
  ) {}

  /** the process died: nothing more is written */
  stop(): void {
    this.alive = false;
  }

  /**
   * 'durable': on disk when it returns, and so is every write before it; 'ordered': an apply or a
   * staged batch (see DurableStore.unsynced). `written` tells the checker what is now on disk: it runs before the
   * simulator may crash the process right after the write, since the write survives that crash.
   */
  private write(what: string, change: () => void, durability: 'durable' | 'ordered' = 'durable', written?: () => void): void {
    if (!this.alive) throw CRASHED;
    this.hooks.before(what);
    if (durability === 'durable') this.d.unsynced = null;
    else this.d.unsynced ??= { state: new Map(this.d.state), applied: this.d.applied, staged: this.d.staging.length };
    change();
    written?.();
    this.hooks.after(what);
  }

  identity(): StoreIdentity {
    return this.d.identity;
  }

  async updateIdentity(patch: Partial<StoreIdentity>): Promise<void> {
    this.write('identity', () => {
      this.d.identity = { ...this.d.identity, ...patch };
    });
  }

  hardState(): HardState {
    return { ...this.d.hardState };
  }

  private get offset(): number {
    return this.d.snapshot?.index ?? 0;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.d.entries.length;
  }

  entries(lo: number, hiExclusive: number): Entry[] {
    if (lo < this.firstIndex()) throw new RangeError(`entries: ${lo} is compacted (first index ${this.firstIndex()})`);
    return this.d.entries.slice(lo - this.offset - 1, Math.max(0, hiExclusive - this.offset - 1));
  }

  snapshotMeta(): SnapshotMeta | null {
    return this.d.snapshot;
  }

  /** `applied`: the applied state's pending write, in the same (durable) write */
  async persist(batch: { hardState?: HardState; entries?: Entry[]; applied?: AppliedWrite }): Promise<void> {
    const entries = batch.entries ?? [];
    const first = entries[0]?.index;
    if (first !== undefined && (first <= this.offset || first > this.lastIndex() + 1)) {
      throw new RangeError(`persist: entries from ${first} do not continue the stored log (${this.firstIndex()}..${this.lastIndex()})`);
    }
    const applied = batch.applied;
    if (applied !== undefined) this.checkApplied(applied.appliedIndex);
    const prevTerm = first === undefined ? -1 : termAt(this.d, first - 1);
    this.write(`persist of ${entries.length} entries${applied ? ` and the apply up to ${applied.appliedIndex}` : ''}`, () => {
      if (first !== undefined) {
        this.d.entries.length = first - this.offset - 1;
        for (const e of entries) this.d.entries.push(e);
      }
      if (batch.hardState) this.d.hardState = { ...batch.hardState };
      if (applied !== undefined) this.putApplied(applied.appliedIndex, applied.ops);
    }, 'durable', () => {
      if (applied !== undefined) this.hooks.stateWritten?.(true);
      if (entries.length > 0) this.hooks.persisted(entries, prevTerm);
    });
  }

  appliedIndex(): number {
    return this.d.applied;
  }

  async applyState(appliedIndex: number, ops: Array<{ key: string; value?: unknown }>): Promise<void> {
    this.checkApplied(appliedIndex);
    this.write(`apply up to ${appliedIndex}`, () => this.putApplied(appliedIndex, ops), 'ordered', () => this.hooks.stateWritten?.(false));
  }

  private checkApplied(appliedIndex: number): void {
    if (appliedIndex < this.d.applied) throw new RangeError(`applyState: ${appliedIndex} is below ${this.d.applied}`);
  }

  private putApplied(appliedIndex: number, ops: ReadonlyArray<{ key: string; value?: unknown }>): void {
    for (const op of ops) {
      if (op.value === undefined) this.d.state.delete(op.key);
      else this.d.state.set(op.key, op.value);
    }
    this.d.applied = appliedIndex;
  }

  stateGet(key: string): unknown | undefined {
    return this.d.state.get(key);
  }

  stateRange(opts: { prefix?: string; limit?: number } = {}): Iterable<[string, unknown]> {
    const out = sorted(this.d.state).filter(([k]) => opts.prefix === undefined || k.startsWith(opts.prefix));
    return opts.limit === undefined ? out : out.slice(0, opts.limit);
  }

  exportState(): { appliedIndex: number; pairs: Array<[string, unknown]> } {
    return { appliedIndex: this.d.applied, pairs: sorted(this.d.state) };
  }

  stateSnapshot(): { appliedIndex: number; pairs: Iterator<[string, unknown]>; done(): void } {
    return { appliedIndex: this.d.applied, pairs: sorted(this.d.state)[Symbol.iterator](), done: () => {} };
  }

  async saveSnapshotAndCompact(meta: SnapshotMeta): Promise<void> {
    if (meta.index > this.d.applied || meta.index > this.lastIndex() || meta.index < this.offset) {
      throw new RangeError(`saveSnapshotAndCompact: ${meta.index} outside ${this.offset}..${Math.min(this.d.applied, this.lastIndex())}`);
    }
    this.write(`snapshot at ${meta.index}`, () => {
      this.d.entries = this.d.entries.slice(meta.index - this.offset);
      this.d.snapshot = structuredClone(meta);
    }, 'durable', () => this.hooks.compacted());
  }

  snapshotStaging(): SnapshotStagingPort {
    const store = this;
    return {
      get pairs() {
        return store.d.staging.length;
      },
      clear: () => this.write('staging cleared', () => (this.d.staging = [])),
      add: (pairs) => this.write('staging', () => this.d.staging.push(...pairs.map(([k, v]): [string, unknown] => [k, v])), 'ordered'),
      first: (n) => this.d.staging.slice(0, n),
    };
  }

  async installSnapshot(meta: SnapshotMeta, pairs: Array<[string, unknown]> | SnapshotStagingPort, hardState: HardState): Promise<void> {
    if (meta.index < this.d.applied) throw new RangeError(`installSnapshot: ${meta.index} is older than the applied index ${this.d.applied}`);
    this.write(`install snapshot at ${meta.index}`, () => this.replaceState(meta, pairs, hardState), 'durable', () => this.hooks.installed());
  }

  async initializeCluster(args: { clusterId: string; meta: SnapshotMeta; pairs: Array<[string, unknown]> | SnapshotStagingPort; hardState: HardState; generation?: number }): Promise<void> {
    if (this.d.identity.clusterId !== null) throw new Error(`initializeCluster: already a member of ${this.d.identity.clusterId}`);
    this.write(`initialize cluster ${args.clusterId}`, () => {
      this.d.identity = { ...this.d.identity, clusterId: args.clusterId, generation: args.generation ?? this.d.identity.generation };
      this.replaceState(args.meta, args.pairs, args.hardState);
    }, 'durable', () => this.hooks.adopted());
  }

  /** the state, meta, hard state at once; the log after the snapshot is kept if it holds the snapshot's last entry (raft §7) */
  private replaceState(meta: SnapshotMeta, pairs: Array<[string, unknown]> | SnapshotStagingPort, hardState: HardState): void {
    const keepTail = meta.index > this.offset && meta.index <= this.lastIndex() && termAt(this.d, meta.index) === meta.term;
    if (Array.isArray(pairs)) this.d.state = new Map(pairs.filter(([, v]) => v !== undefined));
    else {
      // the staging area is this store's own (snapshotStaging()): installing makes it the state
      this.d.state = new Map(this.d.staging);
      this.d.staging = [];
    }
    this.d.entries = keepTail ? this.d.entries.slice(meta.index - this.offset) : [];
    this.d.snapshot = structuredClone(meta);
    this.d.applied = meta.index;
    this.d.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }
}
