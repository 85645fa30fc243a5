// The replicated state in a node store: reads, applying committed entries' effects together with
// the applied index, and consistent views of the whole state (a dump, or a lazy read transaction).
import type { StoredRecord } from '../wire/records.ts';
import { unframe, type ValueCodec } from './frame.ts';
import { K_APPLIED } from './lmdbEnv.ts';
import type { StoreCore } from './storeCore.ts';

export function stateGet(core: StoreCore, key: string): unknown | undefined {
  core.assertOpen();
  return core.read(`state key ${JSON.stringify(key)}`, () => core.db.state.get(key));
}

/** keys in order; materialized (no cursor is held across an await) */
export function stateRange(core: StoreCore, opts: { prefix?: string; limit?: number } = {}): Iterable<[string, unknown]> {
  core.assertOpen();
  const { prefix, limit } = opts;
  const out: Array<[string, unknown]> = [];
  if (limit !== undefined && limit <= 0) return out;
  return core.read(`a state value${prefix ? ` under ${JSON.stringify(prefix)}` : ''}`, () => {
    for (const { key, value } of core.db.state.getRange(prefix ? { start: prefix } : {})) {
      const k = key as string;
      if (prefix && !k.startsWith(prefix)) break;
      out.push([k, value]);
      if (limit !== undefined && out.length >= limit) break;
    }
    return out;
  });
}

/** what a write of the applied state carries: the effects of the entries applied up to `appliedIndex` */
export interface AppliedWrite {
  appliedIndex: number;
  ops: ReadonlyArray<{ key: string; value?: unknown }>;
}

/**
 * Apply committed entries' effects atomically with the new applied index. An 'ordered' write: a
 * crash of the operating system may undo the last applies, which the node applies again from its
 * log when it restarts (storeCore.ts, Durability); a crash of the process undoes nothing.
 */
export function applyState(core: StoreCore, write: AppliedWrite): void {
  core.assertOpen();
  checkApplied(core, write);
  core.write(`apply up to ${write.appliedIndex}`, () => putApplied(core, write), 'ordered');
  core.applied = write.appliedIndex;
}

/** an applied index never goes back */
export function checkApplied(core: StoreCore, write: AppliedWrite): void {
  if (write.appliedIndex < core.applied) {
    throw new RangeError(`applyState: applied index ${write.appliedIndex} is below the current ${core.applied}`);
  }
}

/** inside a write transaction: the effects and the applied index (set core.applied once it committed) */
export function putApplied(core: StoreCore, write: AppliedWrite): void {
  const state = core.db.state;
  for (const op of write.ops) {
    if (op.value === undefined) state.removeSync(op.key);
    else state.putSync(op.key, op.value);
  }
  core.db.hardstate.putSync(K_APPLIED, write.appliedIndex);
}

/** a consistent dump of the replicated state and the index it reflects */
export function exportState(core: StoreCore): { appliedIndex: number; pairs: Array<[string, unknown]> } {
  core.assertOpen();
  const pairs: Array<[string, unknown]> = [];
  core.read('a state value', () => {
    for (const { key, value } of core.db.state.getRange({})) pairs.push([key as string, value]);
  });
  return { appliedIndex: core.applied, pairs };
}

/** a consistent view of the replicated state, read lazily (stateSnapshot) */
export interface StateSnapshot {
  appliedIndex: number;
  pairs: Iterator<[string, unknown]>;
  /**
   * The same cursor as `pairs`, giving the next record as stored (key, checksummed value bytes)
   * instead of decoded: each call of either moves it on. The bytes are a view, valid until the
   * next read of the store: copy what is kept. Absent when the store cannot give them.
   */
  records?: Iterator<StoredRecord>;
  /** the value a record's bytes hold (a CORRUPT error when they are damaged) */
  decodeRecord?(bytes: Uint8Array): unknown;
  done(): void;
}

/**
 * A consistent view of the replicated state and the index it reflects, read lazily: one read
 * transaction holds the view until done() (call it, also when giving up), so a large state is
 * streamed a few pairs at a time instead of copied into memory.
 */
export function stateSnapshot(core: StoreCore): StateSnapshot {
  core.assertOpen();
  const transaction = core.db.state.useReadTransaction();
  const appliedIndex = (core.db.hardstate.get(K_APPLIED, { transaction }) as number | undefined) ?? 0;
  // a store with checksummed records is read as bytes, decoded only for `pairs`
  const raw = core.rawState();
  const range: Iterator<{ key: unknown; value: unknown }> = (raw ?? core.db.state).getRange({ transaction })[Symbol.iterator]();
  let open = true;
  const done = () => {
    if (!open) return;
    open = false;
    range.return?.();
    transaction.done();
  };
  const next = (): IteratorResult<[string, unknown]> => {
    const r = range.next();
    return r.done ? { done: true, value: undefined } : { done: false, value: [r.value.key as string, r.value.value] };
  };
  if (raw === null) return { appliedIndex, pairs: { next }, done };
  const codec = (core.db.state as unknown as { encoder: ValueCodec }).encoder;
  const decodeRecord = (bytes: Uint8Array) => core.read('a state value', () => codec.decode(bytes));
  const records: Iterator<StoredRecord> = {
    next: () => {
      const r = next();
      if (r.done) return r;
      // the receiver checks every record; a damaged one is found here first, and the store stops
      core.read('a state value', () => unframe(r.value[1] as Uint8Array));
      return r as IteratorResult<StoredRecord>;
    },
  };
  const pairs: Iterator<[string, unknown]> = {
    next: () => {
      const r = next();
      return r.done ? r : { done: false, value: [r.value[0], decodeRecord(r.value[1] as Uint8Array)] };
    },
  };
  return { appliedIndex, pairs, records, decodeRecord, done };
}
