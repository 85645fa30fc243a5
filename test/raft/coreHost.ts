// A raft host for the scripted scenarios (test/raft): one core and the member's ready loop
// (actors/readyLoop.ts) over an in-memory durable store, with the KV state machine; every step is
// driven by the script. (The deterministic simulator, test/sim, runs the whole real member instead.)
// A blank host adopts the cluster id of the cluster it is joining together with the first state it
// writes, in the same durable write.
import { RaftCore, type RaftCoreOptions, type RaftRestore, type Ready } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Entry, HardState, PeerId, SnapshotMeta } from '../../machines/raft/types.ts';
import { ReadyLoop, type ReadyHands, type ReadyLoopFaults } from '../../actors/readyLoop.ts';

export type KvData = Record<string, string>;

/** a client command in the replicated KV; `id` makes every proposal distinguishable */
export interface KvCommand {
  op: 'put' | 'del';
  key: string;
  value?: string;
  id: string;
}

/** what the simulated disk holds; only this survives a crash */
export interface DurableStore {
  /** null while the node is blank; set with the first state it receives from the cluster it joins */
  clusterId: string | null;
  /** the identity generation; `recover` makes a new one on the one store it keeps */
  generation: number;
  hardState: HardState;
  snapshot: { meta: SnapshotMeta; data: KvData } | null;
  /** the log after the snapshot, contiguous */
  entries: Entry[];
}

/** one message on the simulated wire: the raft message plus what the host attaches */
export interface Envelope {
  /** the sender's durable cluster id (null while it is blank) … */
  clusterId: string | null;
  /** … and identity generation (null while it is blank) */
  generation: number | null;
  msg: RaftMessage;
  /** the state snapshot travelling with a 'snapshot' message (the core only knows its meta) */
  snapshotData?: KvData;
  /** ghost: the lineage the simulator knows the sender belonged to when it sent (never read by hosts) */
  lineage?: string | null;
}

/** the cluster a blank host agreed to join (after a join offer it accepted) */
export interface Joining {
  clusterId: string;
  generation: number;
}

/** hooks the simulator uses to check invariants and to inject faults into the Ready loop */
export interface HostObserver {
  /** the core reported a new role/leader/term (seen before anything is persisted or sent) */
  softState?(host: SimHost, soft: NonNullable<Ready['softState']>): void;
  /** the Ready's entries/hardState/snapshot are now durable */
  persisted(host: SimHost, rd: Ready, truncatedFrom: number | null): void;
  applied(host: SimHost, entry: Entry): void;
  readServed(host: SimHost, requestId: string, index: number): void;
  readFailed(host: SimHost, requestId: string): void;
  /** asked once per Ready that wrote something: true = crash between persisting and sending */
  crashAfterPersist(host: SimHost): boolean;
  /** asked before each write: true = the process dies during it, and the write is lost */
  crashDuringWrite?(host: SimHost): boolean;
  /** a blank host just wrote its first state, and with it the cluster id it adopted */
  adopted?(host: SimHost): void;
}

export type CoreFactory = (id: PeerId, restore: RaftRestore) => RaftCore;

interface Round {
  send(envelope: Envelope): void;
  observer: HostObserver;
  /** the Ready the loop is working on */
  rd: Ready | null;
  rounds: number;
  /** an error the loop caught (an invariant the observer found broken, a host assertion): rethrown */
  failure: unknown;
}

/** a write on a full disk: it fails, and the process stops (nothing that depended on it is sent) */
class DiskFull extends Error {
  constructor(id: PeerId) {
    super(`host ${id}: disk full`);
  }
}

/** an armed crash at a write (during it, or right after it): the process is gone before it does anything more */
const CRASHED = new Error('crashed at a write');

export class SimHost {
  readonly id: PeerId;
  readonly store: DurableStore;
  /** volatile: the cluster whose offer this blank host accepted; a restart forgets it (it is offered again) */
  joining: Joining | null = null;
  /** stopped for good: a stale member told that its cluster was recovered without it (it must be wiped) */
  halted = false;
  /** where the state of the next write comes from, while blank */
  private adoptFrom: Joining | null = null;
  core: RaftCore | null = null;
  kv: KvData = {};
  applied = 0;
  /** writes fail while set: the host must crash instead of sending what depended on them */
  diskFull = false;
  private readonly makeCore: CoreFactory;
  private incomingSnapshots = new Map<number, KvData>();
  private waitingReads: Array<{ requestId: string; index: number }> = [];
  /** the processReady call under way: where the loop's hands send and report */
  private round: Round | null = null;
  private readonly loop: ReadyLoop;

  constructor(id: PeerId, clusterId: string | null, restore: RaftRestore, makeCore: CoreFactory, generation = 1, faults: ReadyLoopFaults = {}) {
    this.id = id;
    this.makeCore = makeCore;
    this.loop = new ReadyLoop(this.readyHands(), faults);
    this.store = { clusterId, generation, hardState: { ...restore.hardState }, snapshot: null, entries: restore.entries.slice() };
    this.start();
  }

  get clusterId(): string | null {
    return this.store.clusterId;
  }

  get generation(): number {
    return this.store.generation;
  }

  get alive(): boolean {
    return this.core !== null;
  }

  /** (re)build the core from the durable store alone, as a restarted process would */
  start(): void {
    const snapshot = this.store.snapshot;
    this.kv = snapshot === null ? {} : { ...snapshot.data };
    this.applied = snapshot?.meta.index ?? 0;
    this.incomingSnapshots.clear();
    this.waitingReads = [];
    this.joining = null;
    this.adoptFrom = null;
    this.loop.restore(this.store.hardState);
    this.core = this.makeCore(this.id, {
      hardState: { ...this.store.hardState },
      snapshot: snapshot?.meta ?? null,
      entries: this.store.entries.slice(),
      applied: this.applied,
    });
  }

  crash(): void {
    this.core = null;
    this.kv = {};
    this.incomingSnapshots.clear();
    this.waitingReads = [];
    this.joining = null;
    this.adoptFrom = null;
  }

  /**
   * Offline disaster recovery on this (stopped) store: keep the committed state as a snapshot at the
   * durable commit point, make this node the sole voter, record `generation`. Entries above the commit
   * point are discarded. Returns the commit point, and what was kept (the same, unless `dropCommitted`
   * plants the bug of keeping less).
   */
  recover(generation: number, dropCommitted = 0): { commitPoint: number; kept: number } {
    if (this.core !== null) throw new Error(`host ${this.id}: recover runs on a stopped store`);
    const store = this.store;
    const offset = store.snapshot?.meta.index ?? 0;
    const commitPoint = Math.min(Math.max(store.hardState.commit, offset), offset + store.entries.length);
    const keep = Math.max(offset, commitPoint - dropCommitted);
    const kv: KvData = { ...(store.snapshot?.data ?? {}) };
    for (const entry of store.entries.slice(0, keep - offset)) if (entry.type === 'command') applyCommand(kv, entry.data as KvCommand);
    const term = keep === offset ? (store.snapshot?.meta.term ?? 0) : store.entries[keep - offset - 1]!.term;
    store.snapshot = { meta: { index: keep, term, membership: { members: [{ nodeId: this.id, name: this.id, voter: true }] } }, data: kv };
    store.entries = [];
    store.hardState = { term: store.hardState.term + 1, vote: null, commit: keep };
    store.generation = generation;
    return { commitPoint, kept: keep };
  }

  /** the host receives a message: snapshot data is kept until the core asks to install it */
  receive(envelope: Envelope): void {
    const core = this.core;
    if (core === null) return;
    if (this.store.clusterId === null && envelope.clusterId !== null) this.adoptFrom = { clusterId: envelope.clusterId, generation: envelope.generation ?? 1 };
    if (envelope.msg.type === 'snapshot' && envelope.snapshotData !== undefined) {
      this.incomingSnapshots.set(envelope.msg.snapshot.index, envelope.snapshotData);
    }
    core.step(envelope.msg);
  }

  /**
   * Run the member's ready loop (actors/readyLoop.ts, the very code `conclave run` runs) until the
   * core is quiet, with this host's in-memory store as its hands; returns false if the host crashed.
   * The store answers synchronously, so the loop runs to its end inside this call.
   */
  processReady(send: (envelope: Envelope) => void, observer: HostObserver): boolean {
    if (this.core === null) return false;
    this.round = { send, observer, rd: null, rounds: 0, failure: null };
    try {
      void this.loop.drain();
      if (this.loop.busy) throw new Error(`host ${this.id}: the ready loop awaited (the simulated store must answer synchronously)`);
      if (this.round.failure !== null) throw this.round.failure;
    } finally {
      this.round = null;
    }
    return this.core !== null;
  }

  /** the member's ready loop, its hands this host's store, apply and wire */
  private readyHands(): ReadyHands {
    return {
      core: () => this.core!,
      observe: (rd) => {
        const round = this.current();
        round.rd = rd;
        if (rd.softState !== undefined) round.observer.softState?.(this, rd.softState);
      },
      beforeRound: () => {
        if (++this.current().rounds > 1000) throw new Error(`host ${this.id}: Ready loop does not settle`);
      },
      installSnapshot: (meta) => {
        this.write(() => {
          const data = this.incomingSnapshots.get(meta.index);
          if (data === undefined) throw new Error(`host ${this.id}: snapshot ${meta.index} to install but no data received`);
          this.store.snapshot = { meta, data };
          this.store.entries = [];
          this.incomingSnapshots.clear();
          return null;
        });
        this.kv = { ...this.store.snapshot!.data };
        this.applied = meta.index;
      },
      persist: (batch) => {
        this.write(() => {
          const truncatedFrom = this.appendEntries(batch.entries);
          this.store.hardState = batch.hardState;
          return truncatedFrom;
        });
      },
      send: (messages) => {
        for (const msg of messages) this.current().send(this.envelope(msg));
      },
      apply: (committed) => {
        for (const entry of committed) {
          if (entry.index !== this.applied + 1) throw new Error(`host ${this.id}: applying ${entry.index} after ${this.applied}`);
          if (entry.type === 'command') applyCommand(this.kv, entry.data as KvCommand);
          this.applied = entry.index;
          this.current().observer.applied(this, entry);
        }
      },
      settle: (rd) => {
        const { observer } = this.current();
        for (const read of rd.readStates) this.waitingReads.push(read);
        for (const requestId of rd.failedReads) observer.readFailed(this, requestId);
        if (this.waitingReads.length > 0) this.serveReads(observer);
      },
      advanced: () => {},
      done: () => this.core === null,
      halt: (err) => {
        const round = this.current();
        if (err !== CRASHED && !(err instanceof DiskFull)) round.failure = err;
        this.crash();
      },
      soon: () => {
        throw new Error('the simulator drives the ready loop itself');
      },
    };
  }

  private current(): Round {
    if (this.round === null) throw new Error(`host ${this.id}: the ready loop ran outside processReady`);
    return this.round;
  }

  /**
   * One durable write. A full disk fails it (the loop halts; the process stops). A blank node adopts
   * the cluster id with its first write. An armed crash-after-persist stops the process right after.
   */
  private write(change: () => number | null): void {
    const round = this.current();
    if (this.diskFull) throw new DiskFull(this.id);
    if (round.observer.crashDuringWrite?.(this)) throw CRASHED;
    const blank = this.store.clusterId === null;
    // a blank node adopts the cluster id only together with the first state it writes (one write)
    if (blank && this.adoptFrom !== null) {
      this.store.clusterId = this.adoptFrom.clusterId;
      this.store.generation = this.adoptFrom.generation;
      this.adoptFrom = null;
    }
    const truncatedFrom = change();
    if (blank && this.store.clusterId !== null) round.observer.adopted?.(this);
    round.observer.persisted(this, round.rd!, truncatedFrom);
    if (round.observer.crashAfterPersist(this)) throw CRASHED;
  }

  private envelope(msg: RaftMessage): Envelope {
    const envelope: Envelope = { clusterId: this.store.clusterId, generation: this.store.clusterId === null ? null : this.store.generation, msg };
    if (msg.type === 'snapshot') {
      const saved = this.store.snapshot;
      if (saved === null || saved.meta.index !== msg.snapshot.index) {
        throw new Error(`host ${this.id}: core sent snapshot ${msg.snapshot.index} but the store holds ${saved?.meta.index ?? 'none'}`);
      }
      envelope.snapshotData = saved.data;
    }
    return envelope;
  }

  private serveReads(observer: HostObserver): void {
    let served = 0;
    while (served < this.waitingReads.length && this.waitingReads[served]!.index <= this.applied) {
      const read = this.waitingReads[served]!;
      observer.readServed(this, read.requestId, read.index);
      served++;
    }
    if (served > 0) this.waitingReads.splice(0, served);
  }

  /** append after the stored log, truncating a conflicting suffix; returns where it truncated, if it did */
  private appendEntries(entries: Entry[]): number | null {
    if (entries.length === 0) return null;
    const store = this.store;
    let truncatedFrom: number | null = null;
    const first = entries[0]!.index;
    const offset = store.snapshot?.meta.index ?? 0;
    const keep = first - offset - 1;
    if (keep < 0 || keep > store.entries.length) {
      throw new Error(`host ${this.id}: entries from ${first} do not continue the stored log (${offset + 1}..${offset + store.entries.length})`);
    }
    if (keep < store.entries.length) {
      truncatedFrom = first;
      store.entries.length = keep;
    }
    for (const entry of entries) store.entries.push(entry);
    return truncatedFrom;
  }

  /** take a state snapshot at the applied index and let the core drop the log up to it */
  compact(): boolean {
    const core = this.core;
    if (core === null || this.diskFull) return false;
    const index = this.applied;
    if (index <= core.snapshotIndex) return false;
    const meta = core.snapshotMetaAt(index);
    const offset = this.store.snapshot?.meta.index ?? 0;
    this.store.snapshot = { meta, data: { ...this.kv } };
    this.store.entries = this.store.entries.slice(index - offset);
    core.compact(meta);
    return true;
  }
}

export function applyCommand(kv: KvData, command: KvCommand): void {
  if (command.op === 'put') kv[command.key] = command.value ?? '';
  else delete kv[command.key];
}

export function coreFactory(options: Omit<RaftCoreOptions, 'id' | 'restore'>): CoreFactory {
  return (id, restore) => new RaftCore({ ...options, id, restore });
}
