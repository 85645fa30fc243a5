// Streaming snapshots to followers without blocking the leader. The state is read lazily from one
// read transaction, one chunk at a time; each chunk goes out in its own turn of the event loop (so
// ticks and heartbeats keep flowing), and at most `window` chunks are unacknowledged by the
// receiver (flow control: memory stays at a few chunks whatever the state's size). A transfer that
// runs is never restarted because the core asks again; one that stalls is abandoned and reported.
import { randomUUID } from 'node:crypto';
import type { SnapshotMessage } from '../machines/raft/messages.ts';
import { byteLength } from '../machines/raft/size.ts';
import type { StateSnapshot } from '../runtime/store/replicatedState.ts';
import { MAX_RECORD_BYTES, recordBytes, writeRecord } from '../runtime/wire/records.ts';
import type { ChunkFormat } from './peerWire.ts';
import type { Clock, TimerHandle } from './ports.ts';

/** a consistent, lazily read state (NodeStore.stateSnapshot: `records`, when given, and `pairs` share one cursor) */
export type SnapshotSource = StateSnapshot;

/**
 * Format `json`: a chunk's body { message, id, seq, last, pairs } as JSON, in parts to be written
 * one after the other (encodeJsonBody): each pair is stringified once, to measure and to send, and
 * no string of the whole chunk is built. Format `records`: the body { message, id, seq, last,
 * records } and the message's binary tail, the stored records (peerWire.ts), valid until the next
 * chunk is made (publish copies it into the message).
 */
export type SnapshotChunk =
  | { seq: number; last: boolean; format: 'json'; parts: string[] }
  | { seq: number; last: boolean; format: 'records'; body: RecordsChunkBody; tail: Uint8Array };

/**
 * A chunk's body in format `records`. A record larger than a chunk travels in pieces, one per
 * chunk, in order: `part` says where this piece's value bytes start (`at`) in a value of `of` bytes,
 * and the tail holds that one record with the piece as its value.
 */
export interface RecordsChunkBody {
  message: SnapshotMessage;
  id: string;
  seq: number;
  last: boolean;
  records: number;
  part?: { at: number; of: number };
}

/** `seq` of a ChunkAck that says the receiver gave the transfer up (it missed a chunk): start over */
export const TRANSFER_GIVEN_UP = -1;

export interface ChunkAck {
  id: string;
  /** the last chunk received in order, or TRANSFER_GIVEN_UP */
  seq: number;
  /** the chunk formats besides `json` the receiver reads (peerWire.ts) */
  accepts?: string[];
}

export interface TransferReport {
  to: string;
  index: number;
  keys: number;
  bytes: number;
  chunks: number;
  ms: number;
  /** where the time went (ms): reading and encoding the chunks, publishing them, waiting with the window full; the process's CPU time meanwhile */
  stages: { encodeMs: number; publishMs: number; windowWaitMs: number; cpuMs: number };
  /** why it failed (a stall, a refused publish, leadership lost) */
  error?: unknown;
}

export interface OutgoingSnapshotsOptions {
  /** publish one chunk to `to`; throws when the bus refuses it */
  publish(to: string, chunk: SnapshotChunk): void;
  /** the transfer ended: ok when the receiver acknowledged every chunk */
  finished(ok: boolean, report: TransferReport): void;
  /** bytes of pairs per chunk (a single larger pair travels alone) */
  chunkBytes: number;
  /** the same in format `records` (no JSON string is built: larger chunks cost less per byte) */
  recordsChunkBytes: number;
  /** chunks in flight, unacknowledged */
  window: number;
  /** bytes of chunks in flight, unacknowledged (the sender holds no more) */
  windowBytes: number;
  /** no acknowledgement for this long: the transfer is abandoned */
  stallMs: number;
  /** a completed transfer is not repeated within this time (the receiver is installing it) */
  graceMs: number;
  /** the member's clock (the simulator's is virtual) */
  clock: Clock;
}

/**
 * Bytes of chunks sent in one turn of the event loop, at most (and at least one chunk): ticks and
 * heartbeats run between turns. Counted in bytes, not time, so that the simulator replays it exactly.
 */
const PUMP_TURN_BYTES = 1024 * 1024;

class Transfer {
  readonly id = randomUUID();
  readonly startedAt: number;
  nextSeq = 0;
  acked = -1;
  /** bytes of the chunks acknowledged so far */
  ackedBytes = 0;
  /** bytes of each chunk sent and not yet acknowledged, oldest first, and their sum */
  readonly unacked: number[] = [];
  unackedBytes = 0;
  lastSeq = -1;
  keys = 0;
  bytes = 0;
  pumpScheduled = false;
  /** stage timings (TransferReport.stages); `windowFullAt`: when the window filled, or null */
  readonly stages = { encodeMs: 0, publishMs: 0, windowWaitMs: 0, cpuMs: 0 };
  /** the process's CPU time (µs) when the transfer started */
  readonly cpuAtStart = cpuMicros();
  windowFullAt: number | null = null;
  stallTimer: TimerHandle | null = null;
  /** the chunk format: `json` until the receiver says it reads `records` (and the source gives them) */
  format: ChunkFormat = 'json';
  /** where a chunk's records are written (format `records`), reused from chunk to chunk */
  private scratch: Buffer = Buffer.alloc(0);
  /**
   * The next pair, read and not yet sent (or not sent whole): as stored (`bytes`, when the source
   * gives records) or decoded, its JSON once measured, and in pieces how much of `bytes` went out (`at`).
   */
  private carry: { key: string; bytes?: Uint8Array; value?: unknown; json?: string; at?: number } | null = null;
  /** the chunk body's JSON before its pairs */
  private readonly head: string;
  private exhausted = false;

  constructor(
    readonly to: string,
    readonly message: SnapshotMessage,
    private readonly source: SnapshotSource,
    clock: Clock,
  ) {
    this.startedAt = clock.now();
    this.head = `{"message":${JSON.stringify(message)},"id":${JSON.stringify(this.id)}`;
  }

  get sentAll(): boolean {
    return this.lastSeq >= 0;
  }

  /** whether the source gives stored records (format `records` is possible) */
  get hasRecords(): boolean {
    return this.source.records !== undefined;
  }

  /**
   * Whether the first chunk is out and its ack, which says what the receiver reads, is awaited:
   * when the source gives records, chunk 0 carries nothing and the rest waits for the answer, so
   * that no state travels as JSON to a receiver that reads records (a record larger than a chunk
   * can only travel in format `records`, in pieces).
   */
  get probing(): boolean {
    return this.hasRecords && this.nextSeq > 0 && this.acked < 0;
  }

  /**
   * The next chunk: pairs up to `chunkBytes` (at least one), `last` once the state is exhausted.
   * In format `records` its tail is this transfer's scratch buffer: valid until the next call.
   */
  nextChunk(chunkBytes: number): SnapshotChunk {
    const records = this.format === 'records';
    const parts = [this.head, '', ',"pairs":['];
    let bytes = 0;
    let count = 0;
    // the probe (see `probing`): chunk 0 carries nothing when the receiver may read records
    for (; this.nextSeq > 0 || !this.hasRecords; count++) {
      const carry = this.carry ?? this.read();
      if (carry === null) break;
      if (records && count === 0 && (carry.at !== undefined || recordBytes(carry.key, carry.bytes!) > chunkBytes)) return this.piece(carry, chunkBytes);
      let size: number;
      if (records) size = recordBytes(carry.key, carry.bytes!);
      else {
        carry.json ??= JSON.stringify([carry.key, 'value' in carry ? carry.value : this.source.decodeRecord!(carry.bytes!)]);
        size = byteLength(carry.json) + 1;
      }
      if (bytes + size > chunkBytes && count > 0) {
        // kept for the next chunk: a record read from the store is a view, valid until its next read
        if (carry.bytes !== undefined && this.carry === null) carry.bytes = Uint8Array.from(carry.bytes);
        this.carry = carry;
        break;
      }
      if (records) {
        if (this.scratch.length < bytes + size) this.scratch = grown(this.scratch, bytes + size);
        writeRecord(this.scratch, bytes, carry.key, carry.bytes!);
      } else parts.push(count > 0 ? `,${carry.json}` : carry.json!);
      bytes += size;
      this.carry = null;
    }
    const seq = this.nextSeq++;
    if (this.exhausted) this.lastSeq = seq;
    this.unacked.push(bytes);
    this.unackedBytes += bytes;
    this.keys += count;
    this.bytes += bytes;
    if (records) {
      const body = { message: this.message, id: this.id, seq, last: this.exhausted, records: count };
      return { seq, last: this.exhausted, format: 'records', body, tail: this.scratch.subarray(0, bytes) };
    }
    parts[1] = `,"seq":${seq},"last":${this.exhausted}`;
    parts.push(']}');
    return { seq, last: this.exhausted, format: 'json', parts };
  }

  /**
   * The next piece of a record larger than a chunk (format `records`): as much of its value as fits
   * with its key, alone in the chunk. The record stays the carry until its last piece is out.
   */
  private piece(carry: NonNullable<Transfer['carry']>, chunkBytes: number): SnapshotChunk {
    const value = carry.bytes!;
    if (carry.at === undefined) {
      if (value.byteLength > MAX_RECORD_BYTES) throw new Error(`the record ${JSON.stringify(carry.key)} is ${value.byteLength} bytes, over the ${MAX_RECORD_BYTES}-byte limit of a snapshot record`);
      // a view into the store's read, valid until the next read: kept for the pieces to come
      if (this.carry === null) carry.bytes = Uint8Array.from(value);
      carry.at = 0;
      this.carry = carry;
    }
    const at = carry.at;
    const room = Math.max(1, chunkBytes - recordBytes(carry.key, new Uint8Array(0)));
    const slice = carry.bytes!.subarray(at, Math.min(carry.bytes!.byteLength, at + room));
    const bytes = recordBytes(carry.key, slice);
    if (this.scratch.length < bytes) this.scratch = grown(this.scratch, bytes);
    writeRecord(this.scratch, 0, carry.key, slice);
    carry.at = at + slice.byteLength;
    const whole = carry.at === carry.bytes!.byteLength;
    if (whole) {
      this.carry = null;
      this.keys++;
      // whether the state ends with this record: read ahead now, so that its last piece says `last`
      const next = this.read();
      if (next !== null) this.carry = { ...next, bytes: Uint8Array.from(next.bytes!) };
    }
    const seq = this.nextSeq++;
    if (this.exhausted) this.lastSeq = seq;
    this.unacked.push(bytes);
    this.unackedBytes += bytes;
    this.bytes += bytes;
    const body: RecordsChunkBody = { message: this.message, id: this.id, seq, last: this.exhausted, records: 1, part: { at, of: carry.bytes!.byteLength } };
    return { seq, last: this.exhausted, format: 'records', body, tail: this.scratch.subarray(0, bytes) };
  }

  /** the source's next pair, or null once it is exhausted */
  private read(): NonNullable<Transfer['carry']> | null {
    if (this.source.records) {
      const r = this.source.records.next();
      if (!r.done) return { key: r.value[0], bytes: r.value[1] };
    } else {
      const r = this.source.pairs.next();
      if (!r.done) return { key: r.value[0], value: r.value[1] };
    }
    this.exhausted = true;
    this.release();
    return null;
  }

  /**
   * Release the read transaction (idempotent). The stall timer is not this one's to stop: once the
   * state is read, its last chunks (or their acknowledgements) may still be lost.
   */
  release(): void {
    this.source.done();
  }
}

export class OutgoingSnapshots {
  private readonly transfers = new Map<string, Transfer>();
  /** when a transfer to a peer last completed, and at which index */
  private readonly completed = new Map<string, { at: number; index: number }>();

  constructor(private readonly opts: OutgoingSnapshotsOptions) {}

  /**
   * The core wants `to` to get a snapshot at `index` or later. Starts a transfer, unless one to
   * `to` is running or one that reached `index` just completed (the follower is installing it:
   * starting over would only cost a full copy). One that completed below `index` does not count:
   * the log was compacted past it since, and the follower cannot catch up from it.
   */
  request(to: string, index: number, open: () => { source: SnapshotSource; message: SnapshotMessage }): 'started' | 'running' | 'recent' {
    if (this.transfers.has(to)) return 'running';
    const done = this.completed.get(to);
    if (done !== undefined && done.index >= index && this.opts.clock.now() - done.at < this.opts.graceMs) return 'recent';
    const { source, message } = open();
    const transfer = new Transfer(to, message, source, this.opts.clock);
    this.transfers.set(to, transfer);
    this.armStall(transfer);
    this.schedule(transfer);
    return 'started';
  }

  /** the receiver acknowledged chunk `seq` (and every earlier one) */
  onAck(from: string, ack: ChunkAck): void {
    const transfer = this.transfers.get(from);
    if (transfer === undefined || transfer.id !== ack.id) return;
    if (ack.seq === TRANSFER_GIVEN_UP) {
      // the receiver saw a gap and dropped what it had: waiting for the stall timer would only delay the retry
      this.end(transfer, false, new Error(`${from} missed a chunk and gave the transfer up`));
      return;
    }
    if (ack.seq <= transfer.acked || ack.seq >= transfer.nextSeq) return;
    for (const bytes of transfer.unacked.splice(0, ack.seq - transfer.acked)) {
      transfer.ackedBytes += bytes;
      transfer.unackedBytes -= bytes;
    }
    transfer.acked = ack.seq;
    if (transfer.format === 'json' && transfer.hasRecords && ack.accepts?.includes('records')) transfer.format = 'records';
    if (transfer.windowFullAt !== null) {
      transfer.stages.windowWaitMs += performance.now() - transfer.windowFullAt;
      transfer.windowFullAt = null;
    }
    if (transfer.sentAll && transfer.acked === transfer.lastSeq) {
      this.end(transfer, true);
      return;
    }
    this.armStall(transfer);
    this.schedule(transfer);
  }

  /** leadership lost, peer removed or stopping: abandon every transfer (or the one to `to`) */
  cancel(to?: string, reason: unknown = new Error('transfer cancelled')): void {
    for (const transfer of [...this.transfers.values()]) if (to === undefined || transfer.to === to) this.end(transfer, false, reason);
    if (to === undefined) this.completed.clear();
  }

  get active(): number {
    return this.transfers.size;
  }

  /** bytes `to` acknowledged in the transfer under way (0 when none) */
  acknowledgedBytes(to: string): number {
    return this.transfers.get(to)?.ackedBytes ?? 0;
  }

  private schedule(transfer: Transfer): void {
    if (transfer.pumpScheduled) return;
    transfer.pumpScheduled = true;
    this.opts.clock.soon(() => {
      transfer.pumpScheduled = false;
      this.pump(transfer);
    });
  }

  /** chunks of about PUMP_TURN_BYTES per turn of the event loop, while the window allows */
  private pump(transfer: Transfer): void {
    for (let sent = 0; sent < PUMP_TURN_BYTES; ) {
      if (this.transfers.get(transfer.to) !== transfer || transfer.sentAll) return;
      if (transfer.probing || transfer.nextSeq - 1 - transfer.acked >= this.opts.window || transfer.unackedBytes >= this.opts.windowBytes) {
        transfer.windowFullAt ??= performance.now();
        return;
      }
      try {
        const t0 = performance.now();
        const chunk = transfer.nextChunk(transfer.format === 'records' ? this.opts.recordsChunkBytes : this.opts.chunkBytes);
        const t1 = performance.now();
        this.opts.publish(transfer.to, chunk);
        transfer.stages.encodeMs += t1 - t0;
        transfer.stages.publishMs += performance.now() - t1;
        sent += transfer.unacked.at(-1) ?? 0;
      } catch (err) {
        this.end(transfer, false, err);
        return;
      }
    }
    if (!transfer.sentAll) this.schedule(transfer);
  }

  private armStall(transfer: Transfer): void {
    if (transfer.stallTimer) this.opts.clock.clearTimeout(transfer.stallTimer);
    transfer.stallTimer = this.opts.clock.setTimeout(() => {
      this.end(transfer, false, new Error(`no chunk acknowledged for ${this.opts.stallMs} ms`));
    }, this.opts.stallMs);
  }

  private end(transfer: Transfer, ok: boolean, error?: unknown): void {
    if (this.transfers.get(transfer.to) !== transfer) return;
    this.transfers.delete(transfer.to);
    transfer.release();
    if (transfer.stallTimer) this.opts.clock.clearTimeout(transfer.stallTimer);
    transfer.stallTimer = null;
    if (ok) this.completed.set(transfer.to, { at: this.opts.clock.now(), index: transfer.message.snapshot.index });
    const report: TransferReport = {
      to: transfer.to,
      index: transfer.message.snapshot.index,
      keys: transfer.keys,
      bytes: transfer.bytes,
      chunks: transfer.nextSeq,
      ms: this.opts.clock.now() - transfer.startedAt,
      stages: roundedStages({ ...transfer.stages, cpuMs: (cpuMicros() - transfer.cpuAtStart) / 1000 }),
    };
    if (!ok) report.error = error;
    this.opts.finished(ok, report);
  }
}

/** the process's CPU time so far (user + system, µs): what a transfer cost, whatever else the machine runs */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** stage timings in whole milliseconds (for the log) */
export function roundedStages<T extends Record<string, number>>(stages: T): T {
  return Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round(v)])) as T;
}

/** a larger scratch buffer (at least `bytes`), holding what `buf` held */
function grown(buf: Buffer, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(Math.max(bytes, 2 * buf.length));
  buf.copy(out);
  return out;
}
