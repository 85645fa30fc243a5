// The ready loop: persist → send → apply → advance, batching whatever arrived meanwhile (group
// commit). Term, vote and entries are durable BEFORE the messages that depend on them are sent;
// only a leader's appends may go out while it writes the same entries (raft thesis §10.2.1).
//
// Written against small hands (ReadyHands) so the deterministic simulator runs this very loop. When
// every hand answers synchronously (the simulator's store), one drain() runs to its end inside the
// call: no step is awaited unless it returned a promise.
import type { RaftCore, Ready } from '../machines/raft/core.ts';
import type { RaftMessage } from '../machines/raft/messages.ts';
import type { Entry, HardState, SnapshotMeta } from '../machines/raft/types.ts';

/** what the loop calls: the store write, the bus, the apply path, and the member around it */
export interface ReadyHands {
  core(): RaftCore;
  /** sees each Ready as the core hands it out, before anything is done with it (the simulator's checks) */
  observe?(rd: Ready): void;
  /** make term/vote/entries durable (resolves once they are) */
  persist(batch: { hardState: HardState; entries: Entry[] }): Promise<void> | void;
  /** write a received snapshot (the core asked to install it) */
  installSnapshot(meta: SnapshotMeta): Promise<void> | void;
  send(messages: RaftMessage[]): void;
  /**
   * What was sent leaves before the loop goes on to write or apply (production: one microtask turn,
   * in which the NATS client writes what was published to its socket — it defers that to a
   * microtask, which a synchronous disk write would otherwise hold back); absent: the bus needs none
   * (the simulator's, the in-process bus).
   */
  letSendsLeave?(): Promise<void> | void;
  apply(committed: Entry[]): Promise<void> | void;
  /** after apply: answer reads, report role changes and refused messages */
  settle(rd: Ready): void;
  /** after advance (the core knows the new applied index): compaction */
  advanced(rd: Ready): void;
  /** before each round: hand queued proposals to the core (one batch, one write) */
  beforeRound(): void;
  /** stopped or halted: nothing more is persisted, sent or applied */
  done(): boolean;
  /** the loop failed (e.g. disk full) */
  halt(err: unknown): void;
  /** run `fn` once the current turn's work is done */
  soon(fn: () => void): void;
}

/**
 * Deliberate faults for the simulator's planted-bug tests. Only the test code constructs a member
 * with these (MemberRuntimeOptions.testFaults): no configuration file or bus message reaches them.
 */
export interface ReadyLoopFaults {
  /** send every message before persisting what it depends on (a vote before the vote is durable) */
  sendBeforePersist?: boolean;
  /** a follower acknowledges appended entries and writes them FOLLOWER_WRITE_LAG_MS later (an unflushed disk cache): a crash in between loses what the leader counted */
  followerAcksBeforeDurable?: boolean;
}

/** test-only (followerAcksBeforeDurable): how long acknowledged entries stay in memory only */
const FOLLOWER_WRITE_LAG_MS = 300;

export class ReadyLoop {
  private draining = false;
  private kickScheduled = false;
  private idle: Array<() => void> = [];
  /** term and vote as last written durably */
  private durableTerm = 0;
  private durableVote: string | null = null;

  constructor(
    private readonly hands: ReadyHands,
    private readonly faults: ReadyLoopFaults = {},
  ) {}

  /** test-only (followerAcksBeforeDurable): acknowledge now, write FOLLOWER_WRITE_LAG_MS later, in order */
  private lagged: Promise<void> = Promise.resolve();
  private lagWrite(rd: Ready, hardState: HardState): void {
    const hands = this.hands;
    hands.send(rd.messages);
    rd.messages.length = 0;
    const lag = new Promise((resolve) => setTimeout(resolve, FOLLOWER_WRITE_LAG_MS));
    this.lagged = Promise.all([this.lagged, lag])
      .then(() => hands.persist({ hardState, entries: rd.entries }))
      .catch((err: unknown) => hands.halt(err));
  }

  /** the hard state the store holds at start */
  restore(hardState: HardState): void {
    this.durableTerm = hardState.term;
    this.durableVote = hardState.vote;
  }

  get busy(): boolean {
    return this.draining;
  }

  /** resolves once no round is in progress (an in-flight write has finished) */
  whenIdle(): Promise<void> {
    if (!this.draining) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** run the loop soon, once, batching whatever arrives in the meantime (group commit) */
  kick(): void {
    if (this.kickScheduled || this.hands.done()) return;
    this.kickScheduled = true;
    this.hands.soon(() => {
      this.kickScheduled = false;
      void this.drain();
    });
  }

  /** send, and let what was sent leave before the loop blocks the thread (a promise when the bus needs a turn for it) */
  private send(messages: RaftMessage[]): Promise<void> | void {
    this.hands.send(messages);
    return this.hands.letSendsLeave?.();
  }

  /** run rounds until the core has nothing ready; synchronous end to end when every hand is */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const hands = this.hands;
    try {
      while (!hands.done()) {
        hands.beforeRound();
        const core = hands.core();
        if (!core.hasReady()) break;
        const rd = core.ready();
        hands.observe?.(rd);
        if (rd.snapshot) {
          const installing = hands.installSnapshot(rd.snapshot);
          if (installing) await installing;
        }
        // Term and vote must be durable before any message that depends on them; a change of the commit
        // index alone need not be (it is re-learned from the leader), so it rides along with the next write.
        const hs = rd.hardState;
        const voteOrTermChanged = hs !== undefined && (hs.term !== this.durableTerm || hs.vote !== this.durableVote);
        const mustPersist = rd.entries.length > 0 || voteOrTermChanged;
        // A leader may send its appends while it writes the same entries: it counts itself toward
        // commit only once advance() reports them durable.
        const sendFirst = this.faults.sendBeforePersist === true || (core.currentRole === 'leader' && !voteOrTermChanged && rd.snapshot === undefined);
        if (sendFirst && rd.messages.length > 0) {
          // the appends are on their way while this node writes the same entries
          const leaving = this.send(rd.messages);
          if (leaving) await leaving;
        }
        if (this.faults.followerAcksBeforeDurable && core.currentRole === 'follower' && rd.entries.length > 0 && !voteOrTermChanged) {
          this.lagWrite(rd, hs ?? { term: this.durableTerm, vote: this.durableVote, commit: core.commitIndex }); // test-only planted bug
        } else if (mustPersist) {
          const writing = hands.persist({ hardState: hs ?? { term: this.durableTerm, vote: this.durableVote, commit: core.commitIndex }, entries: rd.entries });
          if (writing) await writing;
          if (hs) {
            this.durableTerm = hs.term;
            this.durableVote = hs.vote;
          }
        }
        if (!sendFirst && rd.messages.length > 0) {
          // an acknowledgement leaves before the entries it commits are applied here
          const leaving = this.send(rd.messages);
          if (leaving) await leaving;
        }
        if (rd.committed.length > 0) {
          const applying = hands.apply(rd.committed);
          if (applying) await applying;
        }
        hands.settle(rd);
        core.advance(rd);
        hands.advanced(rd);
      }
    } catch (err) {
      hands.halt(err);
    } finally {
      this.draining = false;
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }
}
