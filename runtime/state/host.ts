// A replicated state supplied by the host application instead of the built-in KV. Every committed
// command is given to `apply` on every node, in log order; `snapshot()` is its durable and
// transferable form (stored as ONE pair of the node's state db, under a reserved key the KV refuses,
// written with the applied index through the deferred flush of actors/appliedState.ts).
import { conclaveError, StateMismatchError } from '../errors.ts';

/** Where a command sits in the log when it is applied. */
export interface ApplyMeta {
  index: number;
  term: number;
}

/**
 * The host's replicated state. `apply` must be deterministic and synchronous: given the same
 * commands in the same order, every node must reach the same state and return the same results.
 * Commands, results, query results and snapshots cross the wire as JSON.
 */
export interface ReplicatedState<Command = unknown, Result = unknown, Query = unknown, QueryResult = unknown, Snapshot = unknown> {
  /** apply one committed command; the result goes back to the proposer (a throw is answered as APPLY_FAILED) */
  apply(command: Command, meta: ApplyMeta): Result;
  /** answer a read (linearizable or stale) from the current state */
  query(query: Query): QueryResult;
  /** the state as a JSON-serializable value (taken at most once per durable flush, and for snapshots) */
  snapshot(): Snapshot;
  /** replace the whole state: with a value snapshot() returned, or null for the initial (empty) state */
  restore(snapshot: Snapshot | null): void;
}

// biome-ignore lint/suspicious/noExplicitAny: a state of any command/result types is accepted where the type does not matter
export type AnyReplicatedState = ReplicatedState<any, any, any, any, any>;

/** The reserved state-db key of a host state (a NUL first character: the KV refuses such keys). */
export const HOST_STATE_KEY = '\u0000conclave.host-state';
export const HOST_STATE_FORMAT = 'conclave-host-state';
export const HOST_STATE_VERSION = 1;

/** The stored form: the host's snapshot, wrapped so a store says what kind of state it holds. */
export interface HostStateRecord {
  format: typeof HOST_STATE_FORMAT;
  version: number;
  snapshot: unknown;
}

export function hostStateRecord(snapshot: unknown): HostStateRecord {
  return { format: HOST_STATE_FORMAT, version: HOST_STATE_VERSION, snapshot: snapshot === undefined ? null : snapshot };
}

/** what a new cluster's state db starts with: nothing for the KV, the marked empty host state otherwise */
export function initialStatePairs(state: AnyReplicatedState | undefined): Array<[string, unknown]> {
  return state === undefined ? [] : [[HOST_STATE_KEY, hostStateRecord(null)]];
}

/** true when a key belongs to Conclave, not to the KV (the KV refuses to write such keys) */
export function isReservedKey(key: string): boolean {
  return key.charCodeAt(0) === 0;
}

const METHODS = ['apply', 'query', 'snapshot', 'restore'] as const;

/** Check the `state` option: an object with the four functions. Throws ConfigError otherwise. */
export function validateReplicatedState(state: unknown): asserts state is AnyReplicatedState {
  if (state === null || typeof state !== 'object') {
    throw conclaveError(
      'CONFIG',
      `option "state" must be an object with apply, query, snapshot and restore functions (got ${state === null ? 'null' : typeof state}); omit it to use the built-in key-value state`,
    );
  }
  const missing = METHODS.filter((m) => typeof (state as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) {
    throw conclaveError(
      'CONFIG',
      `option "state" is missing ${missing.map((m) => `${m}()`).join(', ')}: a replicated state needs apply(command, meta), query(query), snapshot() and restore(snapshot | null) (replicatedMachine(machine) builds one from an XState machine)`,
    );
  }
}

/**
 * Read a stored record back: the host pair of a state db (or of a received snapshot). Throws
 * StateMismatchError when the pairs are not a host state (KV data, or another format version).
 */
export function hostSnapshotFromPairs(pairs: ReadonlyArray<readonly [string, unknown]>, where: string): unknown {
  if (pairs.length === 0) return null;
  const foreign = pairs.find(([k]) => k !== HOST_STATE_KEY);
  if (foreign) {
    throw new StateMismatchError(
      `${where} holds the built-in key-value state (key ${JSON.stringify(foreign[0])}), but this controller was started with a host \`state\`; start it without \`state\` (or with the state it was created with), or use a fresh data dir`,
    );
  }
  return recordSnapshot(pairs[0]![1], where);
}

function recordSnapshot(value: unknown, where: string): unknown {
  const record = value as Partial<HostStateRecord> | null;
  if (!record || typeof record !== 'object' || record.format !== HOST_STATE_FORMAT) {
    throw new StateMismatchError(`${where} holds a host state record Conclave cannot read (no "${HOST_STATE_FORMAT}" format marker); it may be damaged: restore the data dir from a backup or start from a fresh one`);
  }
  if (typeof record.version !== 'number' || record.version > HOST_STATE_VERSION) {
    throw new StateMismatchError(`${where} holds a host state of format version ${String(record.version)}, newer than this Conclave reads (${HOST_STATE_VERSION}); upgrade Conclave`);
  }
  return record.snapshot ?? null;
}

/** What a store reader offers for the kind check (NodeStore satisfies it). */
export interface StateKindReader {
  stateGet(key: string): unknown | undefined;
  stateRange(opts?: { prefix?: string; limit?: number }): Iterable<[string, unknown]>;
}

/**
 * At start, before anything is applied: a store written with a host state is not opened as a KV,
 * and a KV store is not opened with a host state (either would misread the data).
 */
export function checkStoredStateKind(store: StateKindReader, host: boolean, where: string): void {
  const record = store.stateGet(HOST_STATE_KEY);
  if (!host) {
    if (record !== undefined) {
      throw new StateMismatchError(
        `${where} holds a host application's replicated state, but this controller was started with the built-in key-value state; start it with the \`state\` it was created with (startController({ state })), or use a fresh data dir`,
      );
    }
    return;
  }
  const pairs: Array<[string, unknown]> = [];
  for (const pair of store.stateRange({ limit: 2 })) pairs.push(pair);
  // the host key sorts after the empty key only; KV keys are never empty, so any other pair is KV data
  hostSnapshotFromPairs(pairs, where);
}
