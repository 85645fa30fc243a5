// Replay protection for MACed peer messages (peerSignature.ts): each carries its sender's (boot, seq),
// covered by the MAC — boot grows at every start of the sender (runtime/store/boot.ts), seq within
// its process. NATS (and the in-process bus) deliver one publisher's messages to one subject in the
// order it published them, and a member publishes every peer message through one path, which numbers
// them as it sends (actors/peerWire.ts authenticatingBus): so a receiver takes a sender's messages only
// in increasing (boot, seq) order, and a copy recorded from the bus and published again — a leader's
// heartbeats after it died, a ping of a member that is gone — is refused. What this node remembers
// lives in memory: after it restarts, the first message it hears from a sender sets where it starts.
import type { PeerCounter } from './peerSignature.ts';

/** past this many senders, the ones the caller does not keep go first, then the longest known */
const DEFAULT_CAP = 1024;

export class ReplayWindow {
  /** per sender node id: the highest (boot, seq) taken from it */
  readonly #latest = new Map<string, PeerCounter>();

  constructor(private readonly cap = DEFAULT_CAP) {}

  /**
   * Null when `counter` comes after everything taken from `nodeId` (it is now the latest); else the
   * latest taken, which it does not come after (a replay). `keep`: whether a sender is worth
   * remembering when the window is full (the members of the configuration), so that its size stays
   * bounded by the configuration's.
   */
  check(nodeId: string, counter: PeerCounter, keep: (nodeId: string) => boolean): PeerCounter | null {
    const latest = this.#latest.get(nodeId);
    if (latest !== undefined) {
      if (counter.boot < latest.boot || (counter.boot === latest.boot && counter.seq <= latest.seq)) return latest;
    } else if (this.#latest.size >= this.cap) this.#evict(keep);
    this.#latest.set(nodeId, counter);
    return null;
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
