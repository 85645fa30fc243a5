// Where a snapshot being received is written as it arrives: the state database that is not
// current (lmdbEnv.ts: `state` and `state2`), so that a large state is never held in memory and
// every byte is written once. Installing it is the one durable write that makes that database the
// current one (hardstate's `stateDb`) and empties the old one, together with the snapshot meta,
// applied index, hard state and, on a joining node, its cluster id (snapshots.ts replaceState): the
// state is never half old and half new, and a crash mid-transfer leaves the old state as it was.
// What a crash leaves received is scratch, cleared when the store opens.
import { asBinary } from 'lmdb';
import { jsonValueRefusal, MAX_MESSAGE_DEPTH } from '../wire/limits.ts';
import type { StoredRecord } from '../wire/records.ts';
import { isChecksummed, type ValueCodec } from './frame.ts';
import { K_STATE_DB } from './lmdbEnv.ts';
import type { StoreCore } from './storeCore.ts';

export class SnapshotStaging {
  readonly #core: StoreCore;
  #pairs = 0;

  constructor(core: StoreCore) {
    this.#core = core;
  }

  /** whether a half-received snapshot is on disk (a transfer a crash interrupted) */
  holdsLeftovers(): boolean {
    const spare = this.#core.spareState(false);
    return spare !== null && spare.getKeysCount({ limit: 1 }) > 0;
  }

  /** pairs staged since the last clear */
  get pairs(): number {
    return this.#pairs;
  }

  /** start over: drop whatever is staged (a superseded or refused transfer, or what a crash left) */
  clear(): void {
    const spare = this.#core.spareState(false);
    if (spare !== null) this.#core.write('clearing a received snapshot', () => spare.clearSync());
    this.#pairs = 0;
  }

  /**
   * Add pairs, and stored records that passed checkRecords (the snapshot's next ones), in one
   * write. An 'ordered' one (storeCore.ts Durability): its pages are flushed, LMDB's meta page is
   * not. What is staged is scratch until the install, and the install is a durable write, which
   * makes everything staged before it durable with it; an operating-system crash before then may
   * undo the last batches, and what it leaves is cleared when the store opens, as after any
   * interrupted transfer. Half the flushes per batch received.
   */
  add(pairs: ReadonlyArray<readonly [string, unknown]>, records: readonly StoredRecord[] = []): void {
    const spare = this.#core.spareState(true)!;
    this.#core.write(`receiving ${pairs.length + records.length} pairs of a snapshot`, () => {
      for (const [key, value] of pairs) if (value !== undefined) spare.putSync(key, value);
      // the very bytes checkRecords decoded: written as they are, not encoded again
      for (const [key, value] of records) spare.putSync(key, asBinary(value));
    }, 'ordered');
    this.#pairs += pairs.length + records.length;
  }

  /** whether this store holds checksummed records, so that it can check and take them as they are (checkRecords) */
  get readsRecords(): boolean {
    return this.#codec() !== undefined;
  }

  /**
   * Why stored records received from a peer may not be staged, or null: each must be a record
   * this store would have written itself from a chunk in format `json`: its checksum holds, and
   * it decodes to a JSON value that nests no deeper than a message may.
   */
  checkRecords(records: readonly StoredRecord[]): string | null {
    const codec = this.#codec();
    if (codec === undefined) return 'this store does not hold checksummed records';
    for (const [key, bytes] of records) {
      let value: unknown;
      try {
        value = codec.decode(bytes);
      } catch (err) {
        return `the value of ${JSON.stringify(key.slice(0, 64))}: ${(err as Error).message}`;
      }
      const refusal = jsonValueRefusal(value, MAX_MESSAGE_DEPTH);
      if (refusal !== null) return `the value of ${JSON.stringify(key.slice(0, 64))} is not one a JSON chunk could carry: ${refusal}`;
    }
    return null;
  }

  /** the value encoding of the state databases (frame.ts), undefined when not checksummed */
  #codec(): ValueCodec | undefined {
    const { encoder } = this.#core.db.state as unknown as { encoder?: unknown };
    return isChecksummed(encoder) ? encoder : undefined;
  }

  /** the first `n` staged pairs (which kind of state the snapshot holds) */
  first(n: number): Array<[string, unknown]> {
    const out: Array<[string, unknown]> = [];
    const spare = this.#core.spareState(false);
    if (spare === null) return out;
    this.#core.read('a received snapshot', () => {
      for (const { key, value } of spare.getRange({ limit: n })) out.push([key as string, value]);
    });
    return out;
  }

  /**
   * Inside the transaction that installs the snapshot: the received state becomes the current
   * one and the old one is emptied (its pages freed, not rewritten). Call committed() after the commit.
   */
  adopt(): void {
    this.#core.spareState(true); // a snapshot of an empty state may have written nothing
    this.#core.db.state.clearSync();
    this.#core.db.hardstate.putSync(K_STATE_DB, this.#core.stateDb === 'state' ? 'state2' : 'state');
  }

  /** the install committed: reads go to the received state from now on */
  committed(): void {
    this.#core.switchState();
    this.#pairs = 0;
  }
}
