// The pure raft consensus core, etcd-raft style: input is a tick, a message or a request; output is
// a Ready (what to persist, send and apply). No clocks, no I/O, no awaits, no ambient randomness.
import { invariant, RaftLog } from './log.ts';
import type { AppendRequest, AppendResponse, Heartbeat, HeartbeatResponse, RaftMessage, SnapshotMessage, VoteRequest } from './messages.ts';
import { Progress } from './progress.ts';
import { committedIndex, learnersOf, majority, votersOf, voteResult } from './quorum.ts';
import { entriesBytes, limitBytes } from './size.ts';
import type { Entry, EntryType, HardState, Member, Membership, PeerId, ReadState, Role, SnapshotMeta } from './types.ts';

export interface RaftRestore {
  hardState: HardState;
  /** the last saved state snapshot, or null (then the log starts at index 1) */
  snapshot: SnapshotMeta | null;
  /** the persisted log after the snapshot, contiguous */
  entries: Entry[];
  /** the index the host's state machine has applied (at least the snapshot's index) */
  applied: number;
}

/** Deliberate bugs for proving that the tests and the simulator catch them. Never set in production. */
export interface RaftTestHooks {
  /** each granted vote counts twice: two leaders can win one term */
  countVotesTwice?: boolean;
  /** commit an earlier term's entry by counting replicas (the raft paper's figure 8 mistake) */
  commitPriorTermByCount?: boolean;
  /** an append (or heartbeat, the paper's empty append) of an older term is taken as if it were current: a deposed leader is followed */
  appendSkipsTermCheck?: boolean;
}

export interface RaftCoreOptions {
  id: PeerId;
  /** election timeout in ticks; the randomized timeout is drawn from [electionTicks, 2*electionTicks) */
  electionTicks: number;
  heartbeatTicks: number;
  /** uniform in [0, 1); the only source of randomness */
  random: () => number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxEntriesPerMessage?: number;
  /**
   * the most bytes of entries (as JSON, see size.ts) one append carries, like etcd's MaxSizePerMsg:
   * the host derives it from its bus's max payload. An append always carries at least one entry
   * (the host refuses commands too large to travel alone). Default: unlimited.
   */
  maxBytesPerMessage?: number;
  maxInflight?: number;
  /** the most bytes of entries in flight to one follower (etcd's MaxInflightBytes); default unlimited */
  maxInflightBytes?: number;
  /**
   * No heartbeat to a follower that appends kept busy since the last heartbeat round (see
   * bcastHeartbeat): fewer messages under load. Default off (a heartbeat to every follower every round).
   */
  quietHeartbeats?: boolean;
  restore: RaftRestore;
  testHooks?: RaftTestHooks;
}

export interface SoftState {
  role: Role;
  leader: PeerId | null;
  term: number;
}

export interface Ready {
  /** persist when present (changed since the last Ready) */
  hardState?: HardState;
  /** persist durably BEFORE sending messages; if entries[0].index <= the last persisted index, truncate the persisted log from there */
  entries: Entry[];
  /** a snapshot received from the leader: install it (and drop the persisted log) before applying */
  snapshot?: SnapshotMeta;
  /** committed entries to apply, in order */
  committed: Entry[];
  /** send AFTER persisting this Ready (and every earlier one) */
  messages: RaftMessage[];
  readStates: ReadState[];
  failedReads: string[];
  softState?: SoftState;
  /** peer messages refused since the last Ready (they would break an invariant of this node): count and log them */
  refused: RaftRefusal[];
}

/** A peer's message the core refused: input from others is never an assertion (ARCHITECTURE.md, trust boundaries). */
export interface RaftRefusal {
  reason: 'two-leaders' | 'ack-beyond-last' | 'commit-beyond-log' | 'bad-entries';
  from: PeerId;
  detail: string;
}

export type ProposeResult =
  | { ok: true; firstIndex: number; term: number }
  | { ok: false; reason: 'not-leader' | 'transferring' | 'config-change-pending' | 'invalid-config'; leader: PeerId | null };

export type TransferResult =
  | { ok: true; to: PeerId }
  | { ok: false; reason: 'not-leader' | 'no-target' | 'not-a-voter'; leader: PeerId | null };

export interface PeerProgress {
  matchIndex: number;
  nextIndex: number;
  state: Progress['state'];
  recentActive: boolean;
  voter: boolean;
}

export interface RaftStatus {
  id: PeerId;
  role: Role;
  term: number;
  vote: PeerId | null;
  leader: PeerId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  lastTerm: number;
  firstIndex: number;
  membership: Membership;
  /** leader only: one row per other member */
  progress: Record<PeerId, PeerProgress>;
  transferringTo: PeerId | null;
}

interface PendingRead {
  requestId: string;
  index: number;
  acks: Set<PeerId>;
}

const DEFAULT_MAX_ENTRIES = 64;
const DEFAULT_MAX_INFLIGHT = 64;

export class RaftCore {
  readonly id: PeerId;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly quietHeartbeats: boolean;
  private readonly random: () => number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;
  private readonly hooks: RaftTestHooks;

  private readonly log: RaftLog;
  private term: number;
  private vote: PeerId | null;
  private role: Role = 'follower';
  private lead: PeerId | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private voters: PeerId[] = [];
  private selfMember: Member | undefined;
  private readonly votes = new Map<PeerId, boolean>();
  private readonly progress = new Map<PeerId, Progress>();
  private leadTransferee: PeerId | null = null;

  private msgs: RaftMessage[] = [];
  private readStates: ReadState[] = [];
  private failedReads: string[] = [];
  private refused: RaftRefusal[] = [];
  private pendingReads: PendingRead[] = [];
  private readsAwaitingCommit: string[] = [];

  private prevHard: HardState;
  private prevSoft: SoftState;
  /** highest committed index already handed to the host in a Ready */
  private applyingTo: number;
  private readonly scratch: number[] = [];

  constructor(options: RaftCoreOptions) {
    invariant(options.electionTicks > options.heartbeatTicks && options.heartbeatTicks > 0, 'electionTicks must exceed heartbeatTicks > 0');
    this.id = options.id;
    this.electionTicks = options.electionTicks;
    this.heartbeatTicks = options.heartbeatTicks;
    this.random = options.random;
    this.preVote = options.preVote ?? true;
    this.checkQuorum = options.checkQuorum ?? true;
    this.maxEntries = Math.max(1, options.maxEntriesPerMessage ?? DEFAULT_MAX_ENTRIES);
    this.maxBytes = Math.max(1, options.maxBytesPerMessage ?? Number.POSITIVE_INFINITY);
    this.maxInflight = Math.max(1, options.maxInflight ?? DEFAULT_MAX_INFLIGHT);
    this.maxInflightBytes = Math.max(1, options.maxInflightBytes ?? Number.POSITIVE_INFINITY);
    this.quietHeartbeats = options.quietHeartbeats ?? false;
    this.hooks = options.testHooks ?? {};
    const { hardState, snapshot, entries, applied } = options.restore;
    this.log = new RaftLog(snapshot, entries, hardState.commit, applied);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.applyingTo = this.log.applied;
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.applyMembership();
    this.becomeFollower(this.term, null);
    this.prevSoft = this.softState();
  }

  // ---------------------------------------------------------------- inputs

  /** one unit of logical time: drives election timeouts, heartbeats and check-quorum */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  step(m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'pre-vote') {
        // leader lease: while we hear from a live leader, ignore disruptive candidates (§4.2.3)
        const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === 'pre-vote') {
        // a pre-vote never changes our term
      } else if (m.type === 'pre-vote-response' && m.granted) {
        // granted pre-votes carry the future term we asked about
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term && !(this.hooks.appendSkipsTermCheck && (m.type === 'append' || m.type === 'heartbeat'))) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // tell a stale leader about the newer term so it steps down
        this.send({ type: 'append-response', from: this.id, to: m.from, term: this.term, index: 0, reject: false, rejectHint: 0, hintTerm: 0 });
      } else if (m.type === 'pre-vote') {
        this.send({ type: 'pre-vote-response', from: this.id, to: m.from, term: this.term, granted: false });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'pre-vote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      default:
        this.stepFollower(m);
    }
  }

  propose(items: ReadonlyArray<{ type: EntryType; data: unknown }>): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not-leader', leader: this.lead };
    if (this.leadTransferee !== null) return { ok: false, reason: 'transferring', leader: this.lead };
    let config: Membership | null = null;
    for (const item of items) {
      if (item.type !== 'config') continue;
      // one change at a time, and only once this term has committed an entry (single-server change fix)
      if (config !== null || this.log.lastConfigIndex() > this.log.committed || this.log.term(this.log.committed) !== this.term) {
        return { ok: false, reason: 'config-change-pending', leader: this.lead };
      }
      config = item.data as Membership;
      if (!isSingleServerChange(this.log.membership(), config)) return { ok: false, reason: 'invalid-config', leader: this.lead };
    }
    const firstIndex = this.log.lastIndex() + 1;
    const entries: Entry[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      entries[i] = { index: firstIndex + i, term: this.term, type: item.type, data: item.data };
    }
    this.log.append(entries);
    if (config !== null) this.applyMembership();
    this.bcastAppend();
    return { ok: true, firstIndex, term: this.term };
  }

  /** linearizable read (dissertation §6.4): a ReadState appears once a heartbeat quorum confirms leadership */
  readIndex(requestId: string): void {
    if (this.role !== 'leader') {
      this.failedReads.push(requestId);
      return;
    }
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsAwaitingCommit.push(requestId);
      return;
    }
    this.startRead(requestId);
  }

  /** hand leadership to `to`, or to the most up-to-date voter (dissertation §3.10) */
  transferLeadership(to?: PeerId): TransferResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not-leader', leader: this.lead };
    let target = to;
    if (target === undefined) {
      let best = -1;
      for (const voter of this.voters) {
        if (voter === this.id) continue;
        const match = this.progress.get(voter)?.match ?? 0;
        if (match > best) {
          best = match;
          target = voter;
        }
      }
      if (target === undefined) return { ok: false, reason: 'no-target', leader: this.lead };
    }
    if (target === this.id) return { ok: true, to: target };
    if (!this.voters.includes(target)) return { ok: false, reason: 'not-a-voter', leader: this.lead };
    if (this.leadTransferee === target) return { ok: true, to: target };
    this.leadTransferee = target;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    const pr = this.progress.get(target)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.maybeSendAppend(target, true);
    return { ok: true, to: target };
  }

  /** the metadata for a state snapshot the host takes at `index` (must be applied) */
  snapshotMetaAt(index: number): SnapshotMeta {
    invariant(index <= this.log.applied && index >= this.log.snapshotIndex(), `snapshot at ${index} outside [${this.log.snapshotIndex()}, ${this.log.applied}]`);
    if (index === this.log.snapshotIndex()) return this.log.snapshotMeta();
    return { index, term: this.log.term(index), membership: this.log.membershipAt(index) };
  }

  /** the host saved a state snapshot at meta.index: the log up to it is no longer needed */
  compact(meta: SnapshotMeta): void {
    this.log.compact(meta);
  }

  /**
   * The host reports the outcome of streaming snapshot `index` to a follower: delivered in full (ok)
   * or abandoned. `index` is what the host streamed, which may differ from the snapshot the core
   * asked for last (the log may have been compacted further since).
   */
  reportSnapshot(to: PeerId, ok: boolean, index: number): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (ok) pr.snapshotDelivered(index);
    else pr.becomeProbe();
    pr.probeSent = true; // wait for the follower's answer (or the next heartbeat) before probing
  }

  // ---------------------------------------------------------------- Ready

  hasReady(): boolean {
    if (this.msgs.length > 0 || this.readStates.length > 0 || this.failedReads.length > 0 || this.refused.length > 0) return true;
    if (this.log.unstableFrom <= this.log.lastIndex() || this.log.pendingSnapshot !== null) return true;
    if (this.log.committed > this.applyingTo) return true;
    const hard = this.prevHard;
    if (hard.term !== this.term || hard.vote !== this.vote || hard.commit !== this.log.committed) return true;
    const soft = this.prevSoft;
    return soft.role !== this.role || soft.leader !== this.lead || soft.term !== this.term;
  }

  /** everything the host must do now; hand it back through advance() once done, in order */
  ready(): Ready {
    const log = this.log;
    const rd: Ready = {
      entries: log.unstableFrom <= log.lastIndex() ? log.slice(log.unstableFrom, log.lastIndex()) : [],
      committed: [],
      messages: this.msgs,
      readStates: this.readStates,
      failedReads: this.failedReads,
      refused: this.refused,
    };
    log.unstableFrom = log.lastIndex() + 1;
    if (log.pendingSnapshot !== null) {
      rd.snapshot = log.pendingSnapshot;
      log.pendingSnapshot = null;
      this.applyingTo = Math.max(this.applyingTo, rd.snapshot.index);
    }
    if (log.committed > this.applyingTo) {
      rd.committed = log.slice(this.applyingTo + 1, log.committed);
      this.applyingTo = log.committed;
    }
    this.msgs = [];
    this.readStates = [];
    this.failedReads = [];
    this.refused = [];
    const hard = this.prevHard;
    if (hard.term !== this.term || hard.vote !== this.vote || hard.commit !== log.committed) {
      rd.hardState = { term: this.term, vote: this.vote, commit: log.committed };
      this.prevHard = rd.hardState;
    }
    const soft = this.prevSoft;
    if (soft.role !== this.role || soft.leader !== this.lead || soft.term !== this.term) {
      rd.softState = this.softState();
      this.prevSoft = rd.softState;
    }
    return rd;
  }

  /** the host persisted, sent and applied `rd` */
  advance(rd: Ready): void {
    const log = this.log;
    if (rd.snapshot !== undefined) log.applied = Math.max(log.applied, rd.snapshot.index);
    const lastApplied = rd.committed[rd.committed.length - 1];
    if (lastApplied !== undefined) log.applied = Math.max(log.applied, lastApplied.index);
    const lastPersisted = rd.entries[rd.entries.length - 1];
    // if the log was truncated since, only what still matches counts as persisted (log matching)
    if (lastPersisted !== undefined && log.matchTerm(lastPersisted.index, lastPersisted.term)) {
      log.stableIndex = Math.max(log.stableIndex, lastPersisted.index);
    }
    if (this.role === 'leader' && this.maybeCommit()) this.bcastAppend();
  }

  status(): RaftStatus {
    const progress: Record<PeerId, PeerProgress> = {};
    for (const [peer, pr] of this.progress) {
      progress[peer] = { matchIndex: pr.match, nextIndex: pr.next, state: pr.state, recentActive: pr.recentActive, voter: !pr.isLearner };
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      firstIndex: this.log.firstIndex(),
      membership: this.log.membership(),
      progress,
      transferringTo: this.leadTransferee,
    };
  }

  /** cheap accessors for hosts and the simulator's invariant checks */
  get currentRole(): Role {
    return this.role;
  }
  get currentTerm(): number {
    return this.term;
  }
  get leader(): PeerId | null {
    return this.lead;
  }

  /** the configuration in force (the latest appended, per single-server changes); cheap, unlike status() */
  get membership(): Membership {
    return this.log.membership();
  }
  get commitIndex(): number {
    return this.log.committed;
  }
  get lastIndex(): number {
    return this.log.lastIndex();
  }
  /** the term at `index`, or -1 if compacted or absent */
  termAt(index: number): number {
    return this.log.term(index);
  }
  entryAt(index: number): Entry | undefined {
    return this.log.entry(index);
  }
  get snapshotIndex(): number {
    return this.log.snapshotIndex();
  }

  // ---------------------------------------------------------------- roles

  private softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term };
  }

  private promotable(): boolean {
    return this.selfMember?.voter === true;
  }

  private reset(term: number): void {
    invariant(term >= this.term, `term would go back from ${this.term} to ${term}`);
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    if (this.role === 'leader') this.abortReads();
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + Math.min(this.electionTicks - 1, Math.floor(this.random() * this.electionTicks));
    this.votes.clear();
    this.leadTransferee = null;
    this.progress.clear();
  }

  private becomeFollower(term: number, lead: PeerId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = this.selfMember !== undefined && !this.selfMember.voter ? 'learner' : 'follower';
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // the term and vote stay: a pre-vote must not disturb anyone (dissertation §9.6)
    this.votes.clear();
    this.lead = null;
    this.role = 'pre-candidate';
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', `only a candidate can become leader (was ${this.role})`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const next = this.log.lastIndex() + 1;
    for (const member of this.log.membership().members) {
      if (member.nodeId === this.id) continue;
      const pr = new Progress(next, !member.voter);
      pr.recentActive = true;
      this.progress.set(member.nodeId, pr);
    }
    // a no-op of our own term lets earlier entries commit (raft §5.4.2, §8)
    this.log.append([{ index: next, term: this.term, type: 'noop', data: null }]);
    this.bcastAppend();
  }

  private campaign(kind: 'pre-vote' | 'vote', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'pre-vote') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (this.tally() === 'won') {
      // a single voter wins at once
      if (kind === 'pre-vote') this.campaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const voter of this.voters) {
      if (voter === this.id) continue;
      this.send({ type: kind, from: this.id, to: voter, term: voteTerm, lastIndex, lastTerm, transfer });
    }
  }

  private tally(): 'won' | 'lost' | 'pending' {
    return voteResult(this.voters, this.votes, this.hooks.countVotesTwice ? 2 : 1);
  }

  private tickElection(): void {
    this.electionElapsed++;
    // the only voter has nobody to hear from or split a vote with: it campaigns at its first tick
    const soleVoter = this.voters.length === 1 && this.voters[0] === this.id;
    if (this.promotable() && (soleVoter || this.electionElapsed >= this.randomizedElectionTimeout)) {
      this.electionElapsed = 0;
      this.campaign(this.preVote ? 'pre-vote' : 'vote', false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        let active = this.selfMember?.voter === true ? 1 : 0;
        for (const voter of this.voters) {
          if (voter !== this.id && this.progress.get(voter)?.recentActive === true) active++;
        }
        for (const pr of this.progress.values()) pr.recentActive = false;
        if (active < majority(this.voters.length)) {
          this.becomeFollower(this.term, null);
          return;
        }
      }
      this.leadTransferee = null; // a transfer that did not finish in an election timeout is abandoned
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      const last = this.pendingReads[this.pendingReads.length - 1];
      this.bcastHeartbeat(last?.requestId ?? null);
    }
  }

  // ---------------------------------------------------------------- votes

  private handleVoteRequest(m: VoteRequest): void {
    const isPreVote = m.type === 'pre-vote';
    const canVote =
      this.vote === m.from || (this.vote === null && this.lead === null) || (isPreVote && m.term > this.term);
    const responseType = isPreVote ? 'pre-vote-response' : 'vote-response';
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type: responseType, from: this.id, to: m.from, term: m.term, granted: true });
      if (!isPreVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, from: this.id, to: m.from, term: this.term, granted: false });
    }
  }

  private stepCandidate(m: RaftMessage): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'vote-response':
      case 'pre-vote-response': {
        if ((m.type === 'pre-vote-response') !== (this.role === 'pre-candidate')) return;
        this.votes.set(m.from, m.granted);
        const result = this.tally();
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.campaign('vote', false);
          else this.becomeLeader();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower

  private stepFollower(m: RaftMessage): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeout-now':
        if (this.promotable()) this.campaign('vote', true);
        return;
      default:
        return;
    }
  }

  private respondAppend(to: PeerId, index: number, reject: boolean, rejectHint = 0, hintTerm = 0): void {
    this.send({ type: 'append-response', from: this.id, to, term: this.term, index, reject, rejectHint, hintTerm });
  }

  private handleAppend(m: AppendRequest): void {
    const log = this.log;
    if (m.prevIndex < log.committed) {
      this.respondAppend(m.from, log.committed, false);
      return;
    }
    const bad = badEntries(m);
    if (bad !== null) {
      this.refuse('bad-entries', m.from, bad);
      return;
    }
    const appended = log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (appended !== null) {
      log.commitTo(Math.min(m.commit, appended.lastNew));
      if (appended.changedConfig) this.applyMembership();
      this.respondAppend(m.from, appended.lastNew, false);
      return;
    }
    const hint = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm);
    this.respondAppend(m.from, m.prevIndex, true, hint.index, hint.term);
  }

  private handleHeartbeat(m: Heartbeat): void {
    if (m.commit > this.log.lastIndex()) {
      // a leader sends at most the follower's match index: this one was not sent by our leader as it should be
      this.refuse('commit-beyond-log', m.from, `heartbeat commit ${m.commit} beyond our last index ${this.log.lastIndex()}`);
    } else {
      this.log.commitTo(m.commit);
    }
    this.send({ type: 'heartbeat-response', from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const log = this.log;
    const meta = m.snapshot;
    if (meta.index <= log.committed) {
      this.respondAppend(m.from, log.committed, false);
      return;
    }
    if (log.matchTerm(meta.index, meta.term)) {
      // we already have the snapshot's entries: just fast-forward the commit
      log.commitTo(meta.index);
      this.respondAppend(m.from, log.committed, false);
      return;
    }
    log.restore(meta);
    this.applyMembership();
    this.respondAppend(m.from, meta.index, false);
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: RaftMessage): void {
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      // raft elects one leader per term: whoever claims to be another is not believed
      this.refuse('two-leaders', m.from, `${m.type} from ${m.from} in term ${this.term}, which ${this.id} leads`);
      return;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    if (m.type === 'append-response') this.handleAppendResponse(m, pr);
    else if (m.type === 'heartbeat-response') this.handleHeartbeatResponse(m, pr);
  }

  private handleAppendResponse(m: AppendResponse, pr: Progress): void {
    pr.recentActive = true;
    pr.answerSinceHeartbeat = true;
    if (m.reject) {
      const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.hintTerm).index : m.rejectHint;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    if (m.index > this.log.lastIndex()) {
      this.refuse('ack-beyond-last', m.from, `${m.from} acknowledged index ${m.index}, beyond our last ${this.log.lastIndex()}`);
      return;
    }
    const wasPaused = pr.isPaused(this.maxInflight, this.maxInflightBytes);
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    if (this.maybeCommit()) {
      if (this.role !== 'leader') return; // our own removal committed
      this.bcastAppend();
    } else if (wasPaused) {
      this.maybeSendAppend(m.from, true); // even if empty: it carries the commit index it missed
    }
    while (this.maybeSendAppend(m.from, false)) {
      // pipeline while the window allows
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: HeartbeatResponse, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.isPaused(this.maxInflight, this.maxInflightBytes)) pr.freeInflight(1);
    if (pr.state === 'snapshot' && ++pr.snapshotWait >= this.electionTicks) pr.becomeProbe(); // retry a lost snapshot, from what the follower is known to hold
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);
    if (m.context !== null) this.ackRead(m.context, m.from);
  }

  /** send the next append to `to` if its window allows; returns whether a message went out */
  private maybeSendAppend(to: PeerId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused(this.maxInflight, this.maxInflightBytes)) return false;
    const log = this.log;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm < 0) {
      invariant(prevIndex < log.snapshotIndex(), `progress of ${to} points past our log (next ${pr.next}, last ${log.lastIndex()})`);
      const snapshot = log.snapshotMeta();
      this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
      pr.becomeSnapshot(snapshot.index);
      return false;
    }
    const entries = pr.next <= log.lastIndex() ? limitBytes(log.slice(pr.next, log.lastIndex(), this.maxEntries), this.maxBytes) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', from: this.id, to, term: this.term, prevIndex, prevTerm, entries, commit: log.committed });
    pr.sentEntries(prevIndex + entries.length, entries.length, entriesBytes(entries));
    pr.appendSinceHeartbeat = true;
    pr.commitSent = log.committed;
    return true;
  }

  private bcastAppend(): void {
    for (const peer of this.progress.keys()) this.maybeSendAppend(peer, true);
  }

  /**
   * A heartbeat to every follower. With quietHeartbeats, one that is being replicated to, that was
   * sent an append since the last round carrying the commit index as it is now, and that answered
   * an append since then, gets none: the appends did a heartbeat's work (they reset its election
   * timer, carry the commit index, and their answers count for check-quorum), so under load
   * heartbeats do not add to the messages. Since it answered within the round, it heard from this
   * leader within it, and it hears again at the latest one round later. A follower that did not
   * answer gets its heartbeat, as does every follower for a read's round (context): its answers
   * confirm the leadership.
   */
  private bcastHeartbeat(context: string | null): void {
    const committed = this.log.committed;
    for (const [peer, pr] of this.progress) {
      const streaming = pr.appendSinceHeartbeat && pr.answerSinceHeartbeat && pr.state === 'replicate' && pr.commitSent >= committed;
      pr.appendSinceHeartbeat = false;
      pr.answerSinceHeartbeat = false;
      if (this.quietHeartbeats && context === null && streaming) continue;
      this.send({ type: 'heartbeat', from: this.id, to: peer, term: this.term, commit: Math.min(pr.match, committed), context });
    }
  }

  private sendTimeoutNow(to: PeerId): void {
    this.send({ type: 'timeout-now', from: this.id, to, term: this.term });
  }

  /** commit what a majority of voters hold, if it is of our term (§5.4.2); true when commit moved */
  private maybeCommit(): boolean {
    const log = this.log;
    const index = committedIndex(this.voters, this.matchOf, this.scratch);
    if (index <= log.committed) return false;
    if (log.term(index) !== this.term && !this.hooks.commitPriorTermByCount) return false;
    log.commitTo(index);
    this.onCommitAdvanced();
    return true;
  }

  private readonly matchOf = (peer: PeerId): number =>
    peer === this.id ? this.log.stableIndex : (this.progress.get(peer)?.match ?? 0);

  private onCommitAdvanced(): void {
    if (this.readsAwaitingCommit.length > 0 && this.log.term(this.log.committed) === this.term) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const requestId of waiting) this.startRead(requestId);
    }
    // a leader removed (or demoted) by a config change steps down once that change commits
    if (this.selfMember?.voter !== true && this.log.committed >= this.log.lastConfigIndex()) {
      this.becomeFollower(this.term, null);
    }
  }

  // ---------------------------------------------------------------- reads

  private startRead(requestId: string): void {
    const index = this.log.committed;
    if (this.voters.length === 1 && this.voters[0] === this.id) {
      this.readStates.push({ requestId, index });
      return;
    }
    const acks = new Set<PeerId>();
    if (this.selfMember?.voter === true) acks.add(this.id);
    this.pendingReads.push({ requestId, index, acks });
    this.bcastHeartbeat(requestId);
  }

  private ackRead(context: string, from: PeerId): void {
    const at = this.pendingReads.findIndex((read) => read.requestId === context);
    if (at < 0) return;
    const read = this.pendingReads[at]!;
    if (this.voters.includes(from)) read.acks.add(from);
    let acked = 0;
    for (const voter of this.voters) if (read.acks.has(voter)) acked++;
    if (acked < majority(this.voters.length)) return;
    // leadership confirmed after this read and every earlier one arrived
    for (const done of this.pendingReads.splice(0, at + 1)) this.readStates.push({ requestId: done.requestId, index: done.index });
  }

  private abortReads(): void {
    for (const read of this.pendingReads) this.failedReads.push(read.requestId);
    for (const requestId of this.readsAwaitingCommit) this.failedReads.push(requestId);
    this.pendingReads = [];
    this.readsAwaitingCommit = [];
  }

  // ---------------------------------------------------------------- membership

  /** the latest config in the log is in force as soon as it is appended (dissertation §4.1) */
  private applyMembership(): void {
    const membership = this.log.membership();
    this.voters = votersOf(membership);
    this.selfMember = membership.members.find((member) => member.nodeId === this.id);
    if (this.role === 'leader') {
      const next = this.log.lastIndex() + 1;
      const present = new Set<PeerId>();
      for (const member of membership.members) {
        present.add(member.nodeId);
        if (member.nodeId === this.id) continue;
        const pr = this.progress.get(member.nodeId);
        if (pr === undefined) {
          const added = new Progress(next, !member.voter);
          added.recentActive = true;
          this.progress.set(member.nodeId, added);
        } else {
          pr.isLearner = !member.voter;
        }
      }
      for (const peer of [...this.progress.keys()]) {
        if (!present.has(peer)) this.progress.delete(peer);
      }
      if (this.leadTransferee !== null && !this.voters.includes(this.leadTransferee)) this.leadTransferee = null;
      // fewer voters may mean a smaller majority already holds more entries
      if (this.maybeCommit() && this.role === 'leader') this.bcastAppend();
      return;
    }
    const promotable = this.promotable();
    if (this.role === 'learner' && promotable) this.role = 'follower';
    else if (this.role === 'follower' && this.selfMember !== undefined && !promotable) this.role = 'learner';
    else if ((this.role === 'candidate' || this.role === 'pre-candidate') && !promotable) this.becomeFollower(this.term, null);
  }

  private send(m: RaftMessage): void {
    this.msgs.push(m);
  }

  private refuse(reason: RaftRefusal['reason'], from: PeerId, detail: string): void {
    if (this.refused.length < 1024) this.refused.push({ reason, from, detail });
  }
}

/** why an append's entries cannot continue the log at prevIndex (a gap, or terms out of order), or null */
function badEntries(m: AppendRequest): string | null {
  let term = m.prevTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.index !== m.prevIndex + 1 + i) return `entry ${i} has index ${e.index}, expected ${m.prevIndex + 1 + i}`;
    if (e.term < term || e.term > m.term) return `entry ${e.index} has term ${e.term}, outside [${term}, ${m.term}]`;
    term = e.term;
  }
  return null;
}

/** at most one voter added or removed; learners may come and go freely */
export function isSingleServerChange(from: Membership, to: Membership): boolean {
  const before = new Set(votersOf(from));
  const after = new Set(votersOf(to));
  let changed = 0;
  for (const voter of after) if (!before.has(voter)) changed++;
  for (const voter of before) if (!after.has(voter)) changed++;
  const ids = new Set(to.members.map((member) => member.nodeId));
  return changed <= 1 && ids.size === to.members.length && learnersOf(to).every((id) => !after.has(id));
}

/** the restore for a brand-new cluster: every founding member starts from the same config entry */
export function bootstrapRestore(membership: Membership): RaftRestore {
  return {
    hardState: { term: 1, vote: null, commit: 1 },
    snapshot: null,
    entries: [{ index: 1, term: 1, type: 'config', data: membership }],
    applied: 0,
  };
}

/** the restore for a node that has never been part of a cluster (it learns everything from a leader) */
export function blankRestore(): RaftRestore {
  return { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [], applied: 0 };
}
