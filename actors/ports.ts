// What the member needs from the world, as small interfaces: the store it persists to, the bus it
// talks on, the clock it schedules with, and its randomness. Production passes the real NodeStore,
// bus and clock; the deterministic simulator (test/sim) passes its own, so it runs the same code.
import type { HardState, SnapshotMeta } from '../machines/raft/types.ts';
import type { NodeStore } from '../runtime/store/index.ts';
import type { Bus } from '../runtime/transport/types.ts';
import type { StoredRecord } from '../runtime/wire/records.ts';

/** the NodeStore calls the member makes (raft log and hard state, the applied state, the identity) */
export type MemberStore = Pick<
  NodeStore,
  | 'identity'
  | 'updateIdentity'
  | 'hardState'
  | 'firstIndex'
  | 'lastIndex'
  | 'entries'
  | 'snapshotMeta'
  | 'persist'
  | 'appliedIndex'
  | 'applyState'
  | 'stateGet'
  | 'stateRange'
  | 'exportState'
  | 'stateSnapshot'
  | 'saveSnapshotAndCompact'
> &
  /**
   * onDamage: told when a read finds damage; memberKey: signs its peer messages (absent: unsigned, as
   * before member keys); boot: the boot counter its MACed messages carry (absent: the clock at start)
   */
  Partial<Pick<NodeStore, 'onDamage' | 'memberKey' | 'boot'>> & {
  /** where a snapshot being received is written as it arrives */
  snapshotStaging(): SnapshotStagingPort;
  installSnapshot(meta: SnapshotMeta, pairs: Array<[string, unknown]> | SnapshotStagingPort, hardState: HardState): Promise<void>;
  initializeCluster(args: Omit<Parameters<NodeStore['initializeCluster']>[0], 'pairs'> & { pairs: Array<[string, unknown]> | SnapshotStagingPort }): Promise<void>;
};

/** the store's staging area for a snapshot being received (runtime/store/snapshotStaging.ts), as the member uses it */
export interface SnapshotStagingPort {
  readonly pairs: number;
  clear(): void;
  add(pairs: ReadonlyArray<readonly [string, unknown]>, records?: readonly StoredRecord[]): void;
  /** whether it takes stored records as they are (a snapshot chunk in format `records`); absent: never */
  readonly readsRecords?: boolean;
  /** why stored records from a peer may not be staged, or null (SnapshotStaging.checkRecords) */
  checkRecords?(records: readonly StoredRecord[]): string | null;
  first(n: number): Array<[string, unknown]>;
}

/** the bus calls the member makes: peer messages out and in, admin requests to the leader, the max payload */
export type MemberBus = Pick<Bus, 'publish' | 'subscribe' | 'request' | 'flush' | 'maxPayload' | 'deferredWrites'>;

/** a timer handle, opaque to the member */
export type TimerHandle = unknown;

/** time as the member sees it: wall-clock milliseconds and scheduling */
export interface Clock {
  now(): number;
  /** a timer that does not keep the process alive (production: unref'd) */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  /** run `fn` once the current turn's work is done (production: setImmediate) */
  soon(fn: () => void): void;
}

/** uniformly in [0, 1) */
export type Random = () => number;

/** the process's clock */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
  soon: (fn) => {
    setImmediate(fn);
  },
};

/**
 * The process's clock, its timeouts keeping the process alive as Node's and XState's own do: the
 * controller's default, since what it waits for (a start to settle, a retry, a leader) is what the
 * process is there for.
 */
export const keepAliveClock: Clock = { ...realClock, setTimeout: (fn, ms) => setTimeout(fn, ms) };
