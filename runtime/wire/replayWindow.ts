// Replay protection for MACed peer messages (peerSignature.ts): each carries its sender's (boot, seq),
// covered by the MAC — boot grows at every start of the sender (runtime/store/boot.ts), seq within
// its process. NATS (and the in-process bus) deliver one publisher's messages to one subject in the
// order it published them, and a member publishes every peer message through one path, which numbers
// them as it sends (actors/peerWire.ts authenticatingBus): so a receiver takes a sender's messages only
// in increasing (boot, seq) order, and a copy recorded from the bus and published again — a leader's
// heartbeats after it died, a ping of a member that is gone — is refused. What this node remembers
// lives in memory: after it restarts it knows no sender's (boot, seq), and takes none on a message's
// word (`unsynced`): the sender's answer to a question only this node could ask sets where it starts
// (actors/freshness.ts).
import type { PeerCounter } from './peerSignature.ts';

/** past this many senders, the ones the caller does not keep go first, then the longest known */
const DEFAULT_CAP = 1024;

export class ReplayWindow {
  /** per sender node id: the highest (boot, seq) taken from it */
  readonly #latest = new Map<string, PeerCounter>();

  constructor(private readonly cap = DEFAULT_CAP) {}

  /**
   * Null when `counter` comes after everything taken from `nodeId` (it is now the latest); else the
   * latest taken, which it does not come after (a replay); 'unsynced' when nothing is known of
   * `nodeId` yet (this node started since: see sync).
   */
  check(nodeId: string, counter: PeerCounter): PeerCounter | 'unsynced' | null {
    const latest = this.#latest.get(nodeId);
    if (latest === undefined) return 'unsynced';
    if (!after(counter, latest)) return latest;
    this.#latest.set(nodeId, counter);
    return null;
  }

  /**
   * Start `nodeId`'s window at `counter`: what its sender answered to a fresh question of this node,
   * so no earlier message of it is taken from now on. `keep`: whether a sender is worth remembering
   * when the window is full (the members of the configuration), so that its size stays bounded by the
   * configuration's.
   */
  sync(nodeId: string, counter: PeerCounter, keep: (nodeId: string) => boolean): void {
    const latest = this.#latest.get(nodeId);
    if (latest !== undefined && !after(counter, latest)) return;
    if (latest === undefined && this.#latest.size >= this.cap) this.#evict(keep);
    this.#latest.set(nodeId, counter);
  }

  /** whether a window for `nodeId` has started (sync) */
  knows(nodeId: string): boolean {
    return this.#latest.has(nodeId);
  }

  /** how many senders it remembers */
  get size(): number {
    return this.#latest.size;
  }

  #evict(keep: (nodeId: string) => boolean): void {
    for (const id of [...this.#latest.keys()]) if (!keep(id)) this.#latest.delete(id);
    // the configuration alone is larger than the cap: the oldest entry goes
    if (this.#latest.size >= this.cap) this.#latest.delete(this.#latest.keys().next().value!);
  }
}

/** whether `a` was sent after `b`: a later boot, or the same boot and a larger seq */
function after(a: PeerCounter, b: PeerCounter): boolean {
  return a.boot > b.boot || (a.boot === b.boot && a.seq > b.seq);
}
