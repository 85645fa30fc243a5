// Where a snapshot being received is written as it arrives (a named database of the same LMDB
// environment), so that a large state is never held in memory. Installing it moves what is staged
// into the replicated state inside the one durable write that installs the snapshot (NodeStore
// #replaceState: state, snapshot meta, applied index, hard state and, on a joining node, its
// cluster id): the state is never half old and half new, and a crash mid-transfer leaves the old
// state as it was. What a crash leaves staged is scratch, cleared when the store opens.
//
// The values are staged exactly as the state database stores them (checksummed, frame.ts), so the
// move copies bytes: nothing is decoded or encoded twice.
import type { Database, DatabaseOptions, RootDatabase } from 'lmdb';
import type { ValueCodec } from './frame.ts';

export const STAGING_DB = 'staging';

export class SnapshotStaging {
  readonly #staged: Database<unknown, string>;
  readonly #stagedBytes: Database<Uint8Array, string>;
  readonly #stateBytes: Database<Uint8Array, string>;
  /** NodeStore's durable write: one transaction, damage and a full disk refused as StoreError */
  readonly #write: (what: string, fn: () => void) => void;
  #pairs = 0;

  constructor(env: RootDatabase, state: Database<unknown, string | number>, stateName: string, write: (what: string, fn: () => void) => void) {
    // the state database's own value encoder (lmdb-js keeps the one it was opened with)
    const encoder = (state as unknown as { encoder?: ValueCodec }).encoder;
    this.#staged = env.openDB<unknown, string>((encoder ? { name: STAGING_DB, encoder } : { name: STAGING_DB }) as DatabaseOptions & { name: string });
    this.#stagedBytes = env.openDB<Uint8Array, string>({ name: STAGING_DB, encoding: 'binary' });
    this.#stateBytes = env.openDB<Uint8Array, string>({ name: stateName, encoding: 'binary' });
    this.#write = write;
  }

  /** whether a staging area exists and holds something (a transfer a crash interrupted), without creating one */
  static holdsLeftovers(env: RootDatabase): boolean {
    for (const name of env.getKeys({})) {
      if (name === STAGING_DB) return env.openDB<Uint8Array, string>({ name: STAGING_DB, encoding: 'binary' }).getKeysCount({ limit: 1 }) > 0;
    }
    return false;
  }

  /** pairs staged since the last clear */
  get pairs(): number {
    return this.#pairs;
  }

  /** start over: drop whatever is staged (a superseded transfer, or what a crash left) */
  clear(): void {
    this.#write('clearing the snapshot staging area', () => this.#staged.clearSync());
    this.#pairs = 0;
  }

  /** add pairs (the snapshot's next ones, in key order) in one write */
  add(pairs: ReadonlyArray<readonly [string, unknown]>): void {
    this.#write(`staging ${pairs.length} pairs of a snapshot`, () => {
      for (const [key, value] of pairs) if (value !== undefined) this.#staged.putSync(key, value);
    });
    this.#pairs += pairs.length;
  }

  /** the first `n` staged pairs (which kind of state the snapshot holds) */
  first(n: number): Array<[string, unknown]> {
    const out: Array<[string, unknown]> = [];
    for (const { key, value } of this.#staged.getRange({ limit: n })) out.push([key, value]);
    return out;
  }

  /** Inside the transaction that installs the snapshot, after the state was emptied: the state takes what is staged. */
  moveIntoState(): void {
    for (const { key, value } of this.#stagedBytes.getRange({})) this.#stateBytes.putSync(key, value);
    this.#staged.clearSync();
    this.#pairs = 0;
  }
}
