// A member's snapshots: streaming its applied state to a follower that is too far behind for the
// log (leader side, in chunks with flow control: snapshotStream.ts), and receiving one in chunks,
// acknowledging each, then installing it in one durable write (follower side). The member composes
// this and keeps its own bookkeeping (membership, indexes, joining) around install().
import type { RaftMessage } from '../machines/raft/messages.ts';
import type { SnapshotMeta } from '../machines/raft/types.ts';
import { conclaveError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import { HOST_STATE_KEY, hostSnapshotFromPairs } from '../runtime/state/host.ts';
import { encode, encodeJsonBody, encodeTailed, type Sender } from '../runtime/wire/codec.ts';
import { parseRecords, type StoredRecord } from '../runtime/wire/records.ts';
import type { DeferredState, HostAppliedState } from './appliedState.ts';
import type { PeerChunk } from './peerWire.ts';
import type { Clock, MemberBus, MemberStore, TimerHandle } from './ports.ts';
import { type ChunkAck, cpuMicros, OutgoingSnapshots, roundedStages, type SnapshotChunk, TRANSFER_GIVEN_UP, type TransferReport } from './snapshotStream.ts';

/** what the snapshots need of the member that composes them */
export interface SnapshotsHost {
  name: string;
  store: MemberStore;
  bus: MemberBus;
  log: Logger;
  dropLog: RateLimitedLog;
  /** joining mode: the cluster id this blank node accepted (written with its first snapshot) */
  joiningClusterId: string | null;
  /** the applied state (the leader streams it; a received snapshot supersedes what is pending) */
  state: DeferredState;
  /** the host's state, or null for the built-in KV */
  hostState: HostAppliedState | null;
  nodeId(): string;
  sender(): Sender;
  peerSubject(nodeId: string): string | null;
  nameOf(nodeId: string): string | null;
  /** count and log (rate-limited) a refused peer message */
  drop(reason: string, detail: string, from?: string): void;
  /** the whole snapshot is here: hand its message to the core; true when the core will ask to install it */
  deliver(message: RaftMessage & { type: 'snapshot' }): boolean;
  /** chunks keep arriving: `chunks` and `bytes` received so far (at most every PROGRESS_EVERY_MS, the last count always) */
  progress(chunks: number, bytes: number): void;
  /** the core's snapshot meta at an applied index */
  snapshotMetaAt(index: number): SnapshotMeta;
  /** leader: a transfer of snapshot `index` to `to` ended, acknowledged in full (ok) or abandoned */
  transferEnded(to: string, ok: boolean, index: number): void;
  /** the member's clock (the simulator's is virtual) */
  clock: Clock;
}

export interface SnapshotsTiming {
  chunkBytes: number;
  recordsChunkBytes: number;
  window: number;
  windowBytes: number;
  stallMs: number;
  graceMs: number;
}

/**
 * Bytes of state per snapshot chunk. Under 128 KiB with its envelope: on V8 a string or buffer
 * larger than that is a large object, several times costlier to make, and every chunk is one
 * string at the receiver (measured: a 256 KiB chunk decoded at a third of the speed of two of 120 KiB).
 * A pair larger than this travels alone.
 */
const SNAPSHOT_CHUNK_BYTES = 120 * 1024;
/** Bytes of stored records per chunk in format `records`: a buffer, not a string, so larger is cheaper. */
const RECORDS_CHUNK_BYTES = 256 * 1024;
/** chunks in flight to one follower, unacknowledged */
const SNAPSHOT_WINDOW = 32;
/** bytes in flight to one follower, unacknowledged: the sender holds no more than these */
const SNAPSHOT_WINDOW_BYTES = 4 * 1024 * 1024;

/** chunk size (bounded by what fits one message on this bus), window, and when a transfer is given up */
export function snapshotTiming(commandBytes: number, electionTimeoutMs: number): SnapshotsTiming {
  const stallMs = Math.max(5000, 4 * electionTimeoutMs);
  return {
    chunkBytes: Math.min(SNAPSHOT_CHUNK_BYTES, commandBytes),
    recordsChunkBytes: Math.min(RECORDS_CHUNK_BYTES, commandBytes),
    window: SNAPSHOT_WINDOW,
    windowBytes: SNAPSHOT_WINDOW_BYTES,
    stallMs,
    graceMs: stallMs,
  };
}

/** what install() wrote */
export interface Installed {
  keys: number;
  /** the cluster id written with this (first) snapshot of a joining node, else null */
  adoptedClusterId: string | null;
}

/** where a receiver's time went (ms since performance's origin; ms): decoding chunks, writing them to the staging area */
interface ReceiveStages {
  startedAt: number;
  /** the process's CPU time (µs) at the first chunk */
  cpuAtStart: number;
  decodeMs: number;
  writeMs: number;
}

/** how often a receiver reports that chunks keep arriving (a joining node's timeout starts over) */
const PROGRESS_EVERY_MS = 250;
/** a receiver writes what it received to the store's staging area in batches of about this size (one 'ordered' write each: one flush of its pages) */
const STAGE_BATCH_BYTES = 4 * 1024 * 1024;

export class MemberSnapshots {
  /**
   * The snapshot being received: its pairs go to the store's staging area as they arrive, a batch
   * at a time (`batch`, at most STAGE_BATCH_BYTES held here), never the whole state.
   */
  /** the last transfer this receiver gave up on a gap and told its sender so */
  private gaveUp: string | null = null;
  private incoming: {
    id: string;
    next: number;
    batch: Array<[string, unknown]>;
    records: StoredRecord[];
    batchBytes: number;
    /** bytes of the chunks received in this transfer */
    bytes: number;
    stages: ReceiveStages;
    /** a record larger than a chunk, arriving in pieces: its key, the pieces so far, their bytes, and the record's */
    piece: { key: string; parts: Uint8Array[]; got: number; of: number } | null;
  } | null = null;
  /** a fully received (and staged) snapshot the core is about to hand back in ready().snapshot (with its sender's generation) */
  private receivedSnapshot: { meta: SnapshotMeta; generation?: number } | null = null;
  /** snapshots being streamed to followers (leader) */
  private readonly outgoing: OutgoingSnapshots;
  /** chunks and bytes received so far, and whether a report of them is due */
  private readonly received = { chunks: 0, bytes: 0, reported: 0 };
  /** transfers since the member started, for /metrics: sent and received in full (bytes, seconds), and abandoned */
  readonly transfers = { sent: 0, sentBytes: 0, sentSeconds: 0, received: 0, receivedBytes: 0, receivedSeconds: 0, abandoned: 0 };
  private progressTimer: TimerHandle | null = null;

  constructor(
    private readonly host: SnapshotsHost,
    timing: SnapshotsTiming,
  ) {
    this.outgoing = new OutgoingSnapshots({
      publish: (to, chunk) => this.publishChunk(to, chunk),
      finished: (ok, report) => this.onTransferEnded(ok, report),
      ...timing,
      clock: host.clock,
    });
  }

  // ---- leader: sending ----

  /** stream the current applied state as a snapshot, in chunks, without blocking (snapshotStream.ts) */
  send(m: RaftMessage & { type: 'snapshot' }): void {
    if (!this.host.peerSubject(m.to)) return;
    this.outgoing.request(m.to, m.snapshot.index, () => {
      // the state as applied now (committed data only), which is at or past the core's snapshot
      const source = this.host.state.openSnapshot();
      const meta: SnapshotMeta = source.appliedIndex >= m.snapshot.index ? this.host.snapshotMetaAt(source.appliedIndex) : m.snapshot;
      return { source, message: { ...m, snapshot: meta } };
    });
  }

  onAck(from: string, ack: ChunkAck): void {
    this.outgoing.onAck(from, ack);
  }

  /** leadership lost or stopping: abandon every transfer */
  cancel(reason: unknown): void {
    this.outgoing.cancel(undefined, reason);
    if (this.progressTimer) this.host.clock.clearTimeout(this.progressTimer);
    this.progressTimer = null;
  }

  /** bytes of snapshot `nodeId` acknowledged in the transfer under way (0 when none) */
  streamed(nodeId: string): number {
    return this.outgoing.acknowledgedBytes(nodeId);
  }

  private publishChunk(to: string, chunk: SnapshotChunk): void {
    const subject = this.host.peerSubject(to);
    if (!subject) throw conclaveError('NOT_A_MEMBER', `${to} is not in the configuration any more`);
    const sender = this.host.sender();
    let data: Uint8Array;
    if (chunk.format === 'json') data = encodeJsonBody(sender, 'snapshot-chunk', chunk.parts);
    else {
      const { tail } = chunk;
      const write = (out: Buffer, at: number) => {
        out.set(tail, at);
        return at + tail.byteLength;
      };
      data = encodeTailed(sender, 'snapshot-chunk', chunk.body, { bytes: tail.byteLength, write });
    }
    this.host.bus.publish(subject, data);
  }

  private onTransferEnded(ok: boolean, report: TransferReport): void {
    const mbPerS = report.ms > 0 ? Math.round(report.bytes / 1e3 / report.ms) : 0;
    const fields = { to: this.host.nameOf(report.to), index: report.index, keys: report.keys, bytes: report.bytes, chunks: report.chunks, ms: report.ms, mbPerS, ...report.stages };
    if (ok) {
      this.transfers.sent++;
      this.transfers.sentBytes += report.bytes;
      this.transfers.sentSeconds += report.ms / 1000;
      this.host.log.info(fields, 'sent snapshot');
    } else {
      this.transfers.abandoned++;
      this.host.dropLog.warn(`snap:${report.to}`, { ...fields, err: report.error }, 'snapshot transfer abandoned');
    }
    this.host.transferEnded(report.to, ok, report.index);
  }

  // ---- follower: receiving ----

  onChunk(chunk: PeerChunk, from: string | null, generation: number | undefined, bytes: number, decodeMs = 0): void {
    if (chunk.message.type !== 'snapshot' || chunk.message.from !== from || chunk.message.to !== this.host.nodeId()) {
      this.host.drop('bad-snapshot-chunk', 'snapshot chunk with a mismatched header', from ?? undefined);
      return;
    }
    if (this.receivedSnapshot !== null) {
      // the staged snapshot waits for the core (its next ready cycle): a new transfer must not clear it; its sender retries
      this.host.drop('snapshot-install-pending', `snapshot ${chunk.id}: another snapshot is being installed`, from ?? undefined);
      return;
    }
    if (chunk.seq === 0 && !this.startTransfer(chunk.id)) return;
    const transfer = this.incoming?.id === chunk.id ? this.incoming : null;
    if (!transfer || transfer.next !== chunk.seq) {
      if (transfer) this.abandon('a chunk is missing'); // one transfer at a time: a gap ends it
      this.host.drop('snapshot-gap', `snapshot ${chunk.id}: expected chunk ${transfer?.next ?? 0}, got ${chunk.seq}`, from ?? undefined);
      // tell the sender once per transfer, so it starts over now rather than when its stall timer fires
      if (this.gaveUp !== chunk.id) {
        this.gaveUp = chunk.id;
        this.ackChunk(from, chunk.id, TRANSFER_GIVEN_UP);
      }
      return;
    }
    const checkStart = performance.now();
    const records = this.chunkRecords(chunk, from, transfer);
    if (records === null) return;
    transfer.next++;
    transfer.stages.decodeMs += decodeMs + performance.now() - checkStart;
    // acknowledged before it is staged: the sender's next chunks travel while this one is written
    this.ackChunk(from, chunk.id, chunk.seq);
    this.received.chunks++;
    this.received.bytes += bytes;
    this.reportProgress();
    for (const p of chunk.pairs ?? []) transfer.batch.push(p);
    for (const r of records) transfer.records.push(r);
    transfer.batchBytes += bytes;
    transfer.bytes += bytes;
    if ((transfer.batchBytes >= STAGE_BATCH_BYTES || chunk.last) && !this.stage(transfer)) return;
    if (!chunk.last) return;
    this.incoming = null;
    const { startedAt, cpuAtStart, ...stages } = transfer.stages;
    const cpuMs = (cpuMicros() - cpuAtStart) / 1000;
    const ms = performance.now() - startedAt;
    this.transfers.received++;
    this.transfers.receivedBytes += transfer.bytes;
    this.transfers.receivedSeconds += ms / 1000;
    this.host.log.info({ id: chunk.id, chunks: transfer.next, ms: Math.round(ms), ...roundedStages({ ...stages, cpuMs }) }, 'received snapshot');
    // the core may refuse it (it already has that state): then nothing will ask to install it
    this.receivedSnapshot = { meta: chunk.message.snapshot, generation };
    if (this.host.deliver(chunk.message)) return;
    this.receivedSnapshot = null;
    this.clearStaged('the raft core refused it');
  }

  /**
   * The stored records a chunk in format `records` carries, each checked as this store would have
   * written it ([] for a chunk in format `json`); null when the chunk is refused (counted, logged,
   * and the transfer ends: nothing of it will be installed).
   */
  private chunkRecords(chunk: PeerChunk, from: string | null, transfer: NonNullable<MemberSnapshots['incoming']>): StoredRecord[] | null {
    const staging = this.host.store.snapshotStaging();
    let refusal: string | null = null;
    let records: StoredRecord[] | string = [];
    if (chunk.records === undefined && chunk.tail === undefined) {
      if (transfer.piece !== null) refusal = `the record ${JSON.stringify(transfer.piece.key)} is unfinished (${transfer.piece.got} of ${transfer.piece.of} bytes)`;
    } else if (chunk.records === undefined || chunk.tail === undefined || chunk.pairs !== undefined) refusal = 'a binary tail must come with a count of records, and without pairs';
    else if (staging.checkRecords === undefined) refusal = 'this node does not read stored records';
    else {
      records = parseRecords(chunk.tail, chunk.records);
      if (typeof records !== 'string') records = chunk.part === undefined ? (transfer.piece === null ? records : `the record ${JSON.stringify(transfer.piece.key)} is unfinished`) : assemble(transfer, records, chunk.part);
      refusal = typeof records === 'string' ? records : staging.checkRecords(records);
    }
    if (refusal === null && chunk.last && transfer.piece !== null) refusal = `the last chunk leaves the record ${JSON.stringify(transfer.piece.key)} unfinished`;
    if (refusal !== null || typeof records === 'string') {
      this.abandon('a chunk was refused');
      this.host.drop('bad-snapshot-chunk', `snapshot ${chunk.id} chunk ${chunk.seq}: ${refusal}`, from ?? undefined);
      return null;
    }
    return records;
  }

  /** the transfer under way ends unfinished: what it staged is scratch */
  private abandon(why: string): void {
    this.incoming = null;
    this.clearStaged(why);
  }

  /** drop what is staged (a failure only leaves scratch, cleared by the next transfer or the next open) */
  private clearStaged(why: string): void {
    try {
      this.host.store.snapshotStaging().clear();
    } catch (err) {
      this.host.dropLog.warn('snap-stage', { err, why }, 'could not clear a received snapshot that will not be installed');
    }
  }

  /** a new transfer (one at a time: it supersedes an unfinished one): the staging area starts empty */
  private startTransfer(id: string): boolean {
    this.incoming = null;
    try {
      this.host.store.snapshotStaging().clear();
    } catch (err) {
      this.host.dropLog.warn('snap-stage', { err }, 'cannot receive a snapshot: clearing the staging area failed');
      return false;
    }
    this.incoming = { id, next: 0, batch: [], records: [], batchBytes: 0, bytes: 0, stages: { startedAt: performance.now(), cpuAtStart: cpuMicros(), decodeMs: 0, writeMs: 0 }, piece: null };
    return true;
  }

  /** write the batch to the staging area; a failure (disk full, damage) ends the transfer (the sender stalls and retries later) */
  private stage(transfer: NonNullable<MemberSnapshots['incoming']>): boolean {
    const t0 = performance.now();
    try {
      this.host.store.snapshotStaging().add(transfer.batch, transfer.records);
      transfer.stages.writeMs += performance.now() - t0;
    } catch (err) {
      this.host.dropLog.warn('snap-stage', { err }, 'cannot receive a snapshot: writing it to the staging area failed');
      this.abandon('writing it failed');
      return false;
    }
    transfer.batch = [];
    transfer.records = [];
    transfer.batchBytes = 0;
    return true;
  }

  /** throttled: at once when none was reported for PROGRESS_EVERY_MS, else at the end of that period */
  private reportProgress(): void {
    if (this.progressTimer !== null) return;
    const report = () => {
      if (this.received.reported === this.received.chunks) {
        this.progressTimer = null;
        return;
      }
      this.received.reported = this.received.chunks;
      this.host.progress(this.received.chunks, this.received.bytes);
      this.progressTimer = this.host.clock.setTimeout(report, PROGRESS_EVERY_MS);
    };
    report();
  }

  /** flow control: the sender keeps only a few chunks in flight, and sends more as we acknowledge */
  private ackChunk(to: string | null, id: string, seq: number): void {
    const subject = to === null ? null : this.host.peerSubject(to);
    if (subject === null) return;
    try {
      const ack: ChunkAck = this.host.store.snapshotStaging().readsRecords === true ? { id, seq, accepts: ['records'] } : { id, seq };
      this.host.bus.publish(subject, encode(this.host.sender(), 'snapshot-ack', ack));
    } catch (err) {
      this.host.dropLog.warn(`snap-ack:${to}`, { err, to }, 'could not acknowledge a snapshot chunk');
    }
  }

  /**
   * The core asks to install snapshot `meta`: write the received state durably, replacing the
   * state (and, on a joining node, with the cluster id in the same write), and restore the host's.
   */
  async install(meta: SnapshotMeta): Promise<Installed> {
    const { store, joiningClusterId } = this.host;
    const received = this.receivedSnapshot;
    if (!received || received.meta.index !== meta.index) {
      throw conclaveError('SNAPSHOT', `the core asked to install snapshot ${meta.index} but no such snapshot was received`);
    }
    this.receivedSnapshot = null;
    const staged = store.snapshotStaging();
    const keys = staged.pairs;
    // a snapshot of the other kind of state (KV vs host) must not be written, let alone misread
    const hostSnapshot = this.checkSnapshotKind(staged.first(2));
    // the snapshot is newer than anything applied here: pending state writes are superseded
    this.host.state.discard();
    const hs = store.hardState();
    const adoptedClusterId = store.identity().clusterId === null ? joiningClusterId : null;
    if (adoptedClusterId !== null) {
      // the first state of a joining node: cluster id + state + hard state in one durable write
      // ... and the cluster's current identity generation (the leader's), in the same write
      await store.initializeCluster({
        clusterId: adoptedClusterId,
        meta,
        pairs: staged,
        hardState: { ...hs, commit: Math.max(hs.commit, meta.index) },
        generation: received.generation,
      });
    } else {
      await store.installSnapshot(meta, staged, { ...hs, commit: Math.max(hs.commit, meta.index) });
    }
    this.host.hostState?.restoreFrom(hostSnapshot);
    return { keys, adoptedClusterId };
  }

  /** the host snapshot a received snapshot carries (null for the KV); throws STATE_MISMATCH on the other kind */
  private checkSnapshotKind(pairs: Array<[string, unknown]>): unknown {
    if (this.host.hostState) return hostSnapshotFromPairs(pairs, 'the snapshot received from the leader');
    if (pairs.length > 0 && pairs[0]![0] === HOST_STATE_KEY) {
      throw conclaveError(
        'STATE_MISMATCH',
        `the snapshot received from the leader holds a host application's replicated state, but ${this.host.name} runs the built-in key-value state; start it with the same \`state\` as the other members`,
      );
    }
    return null;
  }
}

/**
 * One piece of a record larger than a chunk (the chunk's one record, its value bytes from `part.at`):
 * added to the record in arrival, which must be in order and within its length. The whole record
 * once its last piece is here, [] before, or what is wrong.
 */
function assemble(transfer: NonNullable<MemberSnapshots['incoming']>, records: StoredRecord[], part: { at: number; of: number }): StoredRecord[] | string {
  if (records.length !== 1) return `a piece of a record must come alone (${records.length} records)`;
  const [key, bytes] = records[0]!;
  if (bytes.byteLength === 0) return 'an empty piece of a record';
  if (part.at === 0) {
    if (transfer.piece !== null) return `the record ${JSON.stringify(transfer.piece.key)} is unfinished`;
    transfer.piece = { key, parts: [], got: 0, of: part.of };
  }
  const piece = transfer.piece;
  if (piece === null || piece.key !== key || piece.of !== part.of || piece.got !== part.at) return `a piece at byte ${part.at} of a ${part.of}-byte record out of order`;
  if (piece.got + bytes.byteLength > piece.of) return `pieces past the ${piece.of} bytes of the record`;
  piece.parts.push(Uint8Array.from(bytes)); // the chunk's buffer is the bus's: copied
  piece.got += bytes.byteLength;
  if (piece.got < piece.of) return [];
  transfer.piece = null;
  return [[key, Buffer.concat(piece.parts)]];
}
