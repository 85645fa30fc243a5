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
import type { NodeStore } from '../runtime/store/index.ts';
import type { Bus } from '../runtime/transport/types.ts';
import { encode, encodeJsonBody, type Sender } from '../runtime/wire/codec.ts';
import type { DeferredState, HostAppliedState } from './appliedState.ts';
import { type ChunkAck, OutgoingSnapshots, type SnapshotChunk, type TransferReport } from './snapshotStream.ts';

/** the body of a `snapshot-chunk` peer message, as decoded */
export interface SnapshotChunkBody {
  message: RaftMessage;
  id: string;
  seq: number;
  last: boolean;
  pairs: Array<[string, unknown]>;
}

/** what the snapshots need of the member that composes them */
export interface SnapshotsHost {
  name: string;
  store: NodeStore;
  bus: Bus;
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
  /** the whole snapshot is here: hand its message to the core (which then asks to install it) */
  deliver(message: RaftMessage): void;
  /** chunks keep arriving: `chunks` and `bytes` received so far (at most every PROGRESS_EVERY_MS, the last count always) */
  progress(chunks: number, bytes: number): void;
  /** the core's snapshot meta at an applied index */
  snapshotMetaAt(index: number): SnapshotMeta;
  /** leader: a transfer to `to` ended, acknowledged in full (ok) or abandoned */
  transferEnded(to: string, ok: boolean): void;
}

export interface SnapshotsTiming {
  chunkBytes: number;
  window: number;
  stallMs: number;
  graceMs: number;
}

/** what install() wrote */
export interface Installed {
  keys: number;
  /** the cluster id written with this (first) snapshot of a joining node, else null */
  adoptedClusterId: string | null;
}

/** how often a receiver reports that chunks keep arriving (a joining node's timeout starts over) */
const PROGRESS_EVERY_MS = 250;

export class MemberSnapshots {
  /** chunks of a snapshot being received, keyed by transfer id */
  private readonly incoming = new Map<string, { pairs: Array<[string, unknown]>; next: number }>();
  /** a fully received snapshot the core is about to hand back in ready().snapshot (with its sender's generation) */
  private receivedSnapshot: { meta: SnapshotMeta; pairs: Array<[string, unknown]>; generation?: number } | null = null;
  /** snapshots being streamed to followers (leader) */
  private readonly outgoing: OutgoingSnapshots;
  /** chunks and bytes received so far, and whether a report of them is due */
  private readonly received = { chunks: 0, bytes: 0, reported: 0 };
  private progressTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: SnapshotsHost,
    timing: SnapshotsTiming,
  ) {
    this.outgoing = new OutgoingSnapshots({
      publish: (to, chunk) => this.publishChunk(to, chunk),
      finished: (ok, report) => this.onTransferEnded(ok, report),
      ...timing,
    });
  }

  // ---- leader: sending ----

  /** stream the current applied state as a snapshot, in chunks, without blocking (snapshotStream.ts) */
  send(m: RaftMessage & { type: 'snapshot' }): void {
    if (!this.host.peerSubject(m.to)) return;
    this.outgoing.request(m.to, () => {
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
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = null;
  }

  /** bytes of snapshot `nodeId` acknowledged in the transfer under way (0 when none) */
  streamed(nodeId: string): number {
    return this.outgoing.acknowledgedBytes(nodeId);
  }

  private publishChunk(to: string, chunk: SnapshotChunk): void {
    const subject = this.host.peerSubject(to);
    if (!subject) throw conclaveError('NOT_A_MEMBER', `${to} is not in the configuration any more`);
    this.host.bus.publish(subject, encodeJsonBody(this.host.sender(), 'snapshot-chunk', chunk.json));
  }

  private onTransferEnded(ok: boolean, report: TransferReport): void {
    const mbPerS = report.ms > 0 ? Math.round(report.bytes / 1e3 / report.ms) : 0;
    const fields = { to: this.host.nameOf(report.to), index: report.index, keys: report.keys, bytes: report.bytes, chunks: report.chunks, ms: report.ms, mbPerS };
    if (ok) this.host.log.info(fields, 'sent snapshot');
    else this.host.dropLog.warn(`snap:${report.to}`, { ...fields, err: report.error }, 'snapshot transfer abandoned');
    this.host.transferEnded(report.to, ok);
  }

  // ---- follower: receiving ----

  onChunk(chunk: SnapshotChunkBody, from: string | null, generation: number | undefined, bytes: number): void {
    if (chunk.message.type !== 'snapshot' || chunk.message.from !== from || chunk.message.to !== this.host.nodeId()) {
      this.host.drop('bad-snapshot-chunk', 'snapshot chunk with a mismatched header', from ?? undefined);
      return;
    }
    let transfer = this.incoming.get(chunk.id);
    if (chunk.seq === 0) {
      this.incoming.clear(); // one transfer at a time: a new one supersedes an older, unfinished one
      transfer = { pairs: [], next: 0 };
      this.incoming.set(chunk.id, transfer);
    }
    if (!transfer || transfer.next !== chunk.seq) {
      this.incoming.delete(chunk.id);
      this.host.drop('snapshot-gap', `snapshot ${chunk.id}: expected chunk ${transfer?.next ?? 0}, got ${chunk.seq}`, from ?? undefined);
      return;
    }
    for (const p of chunk.pairs) transfer.pairs.push(p);
    transfer.next++;
    this.ackChunk(from, chunk.id, chunk.seq);
    this.received.chunks++;
    this.received.bytes += bytes;
    this.reportProgress();
    if (!chunk.last) return;
    this.incoming.delete(chunk.id);
    this.receivedSnapshot = { meta: chunk.message.snapshot, pairs: transfer.pairs, generation };
    this.host.deliver(chunk.message);
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
      this.progressTimer = setTimeout(report, PROGRESS_EVERY_MS);
      this.progressTimer.unref?.();
    };
    report();
  }

  /** flow control: the sender keeps only a few chunks in flight, and sends more as we acknowledge */
  private ackChunk(to: string | null, id: string, seq: number): void {
    const subject = to === null ? null : this.host.peerSubject(to);
    if (subject === null) return;
    try {
      this.host.bus.publish(subject, encode(this.host.sender(), 'snapshot-ack', { id, seq }));
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
    // a snapshot of the other kind of state (KV vs host) must not be written, let alone misread
    const hostSnapshot = this.checkSnapshotKind(received.pairs);
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
        pairs: received.pairs,
        hardState: { ...hs, commit: Math.max(hs.commit, meta.index) },
        generation: received.generation,
      });
    } else {
      await store.installSnapshot(meta, received.pairs, { ...hs, commit: Math.max(hs.commit, meta.index) });
    }
    this.host.hostState?.restoreFrom(hostSnapshot);
    return { keys: received.pairs.length, adoptedClusterId };
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
