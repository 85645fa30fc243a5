// The leader's view of one follower's replication (etcd's tracker.Progress, simplified).
import { invariant } from './log.ts';

/**
 * probe: one append in flight at a time, finding where the logs match;
 * replicate: optimistic pipelining, nextIndex ahead of matchIndex, at most maxInflight messages;
 * snapshot: a snapshot is on its way; appends pause until it is acknowledged or times out.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probe only: an append is outstanding; cleared by any response or heartbeat response */
  probeSent = false;
  /** replicate only: last index of each append in flight, oldest first */
  inflight: number[] = [];
  /** replicate only: the entries' bytes of each append in flight (parallel to `inflight`), and their sum */
  private inflightSizes: number[] = [];
  bytesInFlight = 0;
  pendingSnapshot = 0;
  /** heartbeat rounds spent waiting on a snapshot; lets a lost snapshot be retried */
  snapshotWait = 0;
  /** heard from within the current election timeout (check-quorum) */
  recentActive = false;
  /** since the leader's last heartbeat round: an append went to this follower, and it answered an append */
  appendSinceHeartbeat = false;
  answerSinceHeartbeat = false;
  /** the commit index the last append sent to it carried */
  commitSent = 0;
  isLearner: boolean;

  constructor(next: number, isLearner: boolean) {
    this.next = next;
    this.isLearner = isLearner;
  }

  /**
   * Probe from just after what the follower is known to hold. Leaving the snapshot state this way
   * assumes nothing about the snapshot asked for (it may be lost, or never sent): see snapshotDelivered.
   */
  becomeProbe(): void {
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.state = 'probe';
    this.probeSent = false;
    this.clearInflight();
  }

  /**
   * The follower received snapshot `index` in full: probe from just after it (etcd probes from its
   * pendingSnapshot + 1). The index is the one delivered, not `pendingSnapshot`: the host streams its
   * applied state, and a transfer may end after the core asked again for a later snapshot.
   */
  snapshotDelivered(index: number): void {
    this.becomeProbe();
    this.next = Math.max(this.next, index + 1);
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.clearInflight();
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotWait = 0;
    this.clearInflight();
  }

  /** the window is full: by messages, or by bytes (etcd's MaxInflightBytes: a slow link is not flooded) */
  isPaused(maxInflight: number, maxInflightBytes = Number.POSITIVE_INFINITY): boolean {
    if (this.state === 'probe') return this.probeSent;
    if (this.state === 'replicate') return this.inflight.length >= maxInflight || this.bytesInFlight >= maxInflightBytes;
    return true;
  }

  /** an append covering up to `last` (`bytes` of entries) was sent */
  sentEntries(last: number, count: number, bytes = 0): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflight.push(last);
        this.inflightSizes.push(bytes);
        this.bytesInFlight += bytes;
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** an accepting response for `index`; returns whether it told us something new */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    // acknowledged appends leave the window
    let freed = 0;
    while (freed < this.inflight.length && this.inflight[freed]! <= index) freed++;
    this.freeInflight(freed);
    return updated;
  }

  /** forget the oldest `count` appends in flight (acknowledged, or presumed lost) */
  freeInflight(count: number): void {
    if (count <= 0) return;
    this.inflight.splice(0, count);
    for (const bytes of this.inflightSizes.splice(0, count)) this.bytesInFlight -= bytes;
  }

  private clearInflight(): void {
    this.inflight.length = 0;
    this.inflightSizes.length = 0;
    this.bytesInFlight = 0;
  }

  /**
   * A rejection of the append whose prevIndex was `rejected`; `hint` is the highest index that
   * may match. Returns false when the rejection is stale (answers an older message).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    invariant(this.next > this.match, 'progress next fell to or below match');
    return true;
  }
}
