// The invariants, checked after every step and as the members' cores report: election safety, log
// matching, leader completeness, state machine safety, commit monotonic, committed entries never
// lost, no acknowledged write lost, no write applied twice, no write applied that a client was told
// was not, linearizable reads — each within a lineage — and the cluster identity: a node holds state
// of one lineage only and processes messages of that lineage only.
import type { Ready } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Entry, Membership, PeerId } from '../../machines/raft/types.ts';
import { type SimStats, ViolationError } from './config.ts';
import { clusterLabel, clusterOfLineage, describeEntry, entryKey, type Ghost, type SimCommand } from './ghost.ts';
import type { SimHost } from './host.ts';
import { describeMessage } from './trace.ts';

/** the simulation's ghost state, as the invariants read it */
export interface Lineages {
  readonly hosts: ReadonlyMap<PeerId, SimHost>;
  readonly lineageOf: Map<PeerId, string | null>;
  readonly lineageHistory: Map<PeerId, string[]>;
  /** blank nodes: the lineage whose join offer they accepted */
  readonly offeredBy: Map<PeerId, string>;
  readonly ghosts: Map<string, Ghost>;
  /** the lineage each client command was proposed in */
  readonly originOf: Map<string, string>;
  readonly mainLineage: string;
  readonly foreignLineage: string;
  readonly stats: SimStats;
  note(text: string): void;
  nameOf(nodeId: string): string;
  setLineage(id: PeerId, lineage: string | null): void;
}

/** the answers that tell a client its write was not applied (OUTCOME_UNKNOWN, UNREACHABLE, STOPPING do not) */
const NOT_APPLIED = new Set(['NOT_LEADER', 'NO_LEADER', 'BUSY', 'BAD_REQUEST', 'COMMAND_TOO_LARGE', 'NOT_A_MEMBER']);

export class Invariants {
  private readonly checkedCommit = new Map<PeerId, number>();
  private readonly lastCommit = new Map<PeerId, number>();
  private readonly leaderSeen = new Map<PeerId, number>();
  private readonly lastRole = new Map<PeerId, string>();
  /** the configuration object last checked per node (the core's membership is replaced when it changes) */
  readonly checkedMembership = new Map<PeerId, Membership>();
  /** acknowledged writes: proposal id → lineage it was acknowledged in */
  readonly acknowledged = new Map<string, string>();
  /** writes refused with an answer that says they were not applied: proposal id → that answer */
  private readonly refused = new Map<string, { lineage: string; code: string; by: string }>();
  /** nodes that left for good as removed during this step (checked once the step's commits are known) */
  private readonly leftAsRemoved: Array<{ id: PeerId; lineage: string }> = [];

  constructor(private readonly s: Lineages) {}

  /** a process (re)started: its commit is learned afresh */
  restarted(id: PeerId): void {
    this.checkedCommit.delete(id);
    this.lastCommit.delete(id);
    this.leaderSeen.delete(id);
  }

  forget(id: PeerId): void {
    this.restarted(id);
    this.lastRole.delete(id);
  }

  private ghostOf(host: SimHost): Ghost | null {
    const lineage = this.s.lineageOf.get(host.id);
    return lineage == null ? null : this.s.ghosts.get(lineage)!;
  }

  /** a Ready as the core hands it out: a new leader is checked before anything is persisted or sent */
  onReady(host: SimHost, rd: Ready): void {
    if (rd.softState?.role === 'leader') this.checkElectionSafety(host.id, rd.softState.term);
    for (const m of rd.messages) if (m.type === 'snapshot') this.s.stats.snapshotsSent++;
  }

  /** a message reaches a core: it must come from the node's own lineage (a blank node: the one it joins) */
  onStep(host: SimHost, m: RaftMessage, from: string | null | undefined): void {
    if (from === null || from === undefined) return; // a blank sender carries no state; or not from the bus
    const mine = this.s.lineageOf.get(host.id) ?? null;
    const expected = mine ?? this.s.offeredBy.get(host.id) ?? null;
    if (from === expected) return;
    const stale = expected !== null && clusterOfLineage(from) === clusterOfLineage(expected);
    throw new ViolationError(
      stale ? 'stale generation fenced off' : 'one cluster id',
      `${host.name} (${mine ?? `blank, joining ${expected ?? 'nothing'}`}) processed ${describeMessage(m, (id) => this.s.nameOf(id))} of ${from}`,
    );
  }

  /** a blank node wrote its first state: from now on it belongs to the lineage whose offer it accepted */
  onAdopted(host: SimHost): void {
    const joined = this.s.offeredBy.get(host.id);
    if (joined === undefined) throw new ViolationError('one cluster id', `${host.name} adopted cluster ${clusterLabel(host.clusterId)} without having accepted any offer`);
    this.s.setLineage(host.id, joined);
    this.s.offeredBy.delete(host.id);
    this.checkedMembership.clear();
    this.s.stats.blankJoins++;
    this.s.note(`${host.name} adopts ${clusterLabel(host.clusterId)} (generation ${host.generation}) with its first state`);
  }

  onPersisted(host: SimHost, entries: Entry[], prevTermAtFirst: number): void {
    const ghost = this.ghostOf(host);
    if (ghost === null) {
      if (entries.some((e) => e.type === 'command')) throw new ViolationError('one cluster id', `blank ${host.name} persisted ${describeEntry(entries[0]!)} before adopting a cluster id`);
      return;
    }
    const lineage = this.s.lineageOf.get(host.id)!;
    let prevTerm = prevTermAtFirst;
    for (const entry of entries) {
      // no node holds state of two clusters (or of two generations of one)
      if (entry.type === 'command') {
        const origin = this.s.originOf.get(entryKey(entry));
        if (origin !== undefined && origin !== lineage) {
          throw new ViolationError(clusterOfLineage(origin) === clusterOfLineage(lineage) ? 'stale generation fenced off' : 'one cluster id', `${host.name} of ${lineage} persisted ${describeEntry(entry)}, proposed in ${origin}`);
        }
      }
      const at = `${entry.term}:${entry.index}`;
      const key = entryKey(entry);
      const seen = ghost.entryAt.get(at);
      if (seen === undefined) ghost.entryAt.set(at, key);
      else if (seen !== key) throw new ViolationError('log matching', `${host.name} persisted ${describeEntry(entry)} but another log holds ${seen} at ${at}`);
      if (prevTerm >= 0) {
        const seenPrev = ghost.predecessorTerm.get(at);
        if (seenPrev === undefined) ghost.predecessorTerm.set(at, prevTerm);
        else if (seenPrev !== prevTerm) throw new ViolationError('log matching', `${host.name}: entry ${at} follows term ${prevTerm}, elsewhere it follows term ${seenPrev}`);
      }
      prevTerm = entry.term;
    }
  }

  onApplied(host: SimHost, entry: Entry): void {
    const ghost = this.ghostOf(host);
    if (ghost === null) throw new ViolationError('one cluster id', `blank ${host.name} applied ${describeEntry(entry)}`);
    const key = entryKey(entry);
    const seen = ghost.appliedKey[entry.index];
    if (seen === undefined) {
      this.checkAppliedOnce(host, ghost, entry, key);
      ghost.appliedKey[entry.index] = key;
      ghost.appliedCommand[entry.index] = entry.type === 'command' ? (entry.data as SimCommand) : null;
      if (this.s.lineageOf.get(host.id) === this.s.mainLineage) this.s.stats.committed = Math.max(this.s.stats.committed, entry.index);
    } else if (seen !== key) {
      throw new ViolationError('state machine safety', `${host.name} applied ${describeEntry(entry)} at ${entry.index}, another node applied ${seen}`);
    }
  }

  /** a proposal is applied at one index only, and never after its client was told it was not applied */
  private checkAppliedOnce(host: SimHost, ghost: Ghost, entry: Entry, key: string): void {
    if (entry.type !== 'command' || (entry.data as SimCommand).op !== 'put') return;
    const before = ghost.appliedAt.get(key);
    if (before !== undefined && before !== entry.index) {
      throw new ViolationError('no write applied twice', `${host.name} applied ${describeEntry(entry)}, which was already applied at ${before}`);
    }
    ghost.appliedAt.set(key, entry.index);
    const refusal = this.refused.get(key);
    if (refusal !== undefined && this.s.lineageOf.get(host.id) === refusal.lineage) {
      throw new ViolationError('refused write not applied', `${host.name} applied ${describeEntry(entry)}, but ${refusal.by} told its client ${refusal.code} (not applied)`);
    }
  }

  /** a client was told its write failed: with an answer that says it was not applied, it must never be */
  onRefused(id: string, lineage: string, code: string | undefined, host: SimHost): void {
    if (code === undefined || !NOT_APPLIED.has(code)) return;
    this.s.stats.writesRefused++;
    const index = this.s.ghosts.get(lineage)?.appliedAt.get(id);
    if (index !== undefined) throw new ViolationError('refused write not applied', `${host.name} told its client ${code} (not applied) for ${id}, which was applied at ${index}`);
    this.refused.set(id, { lineage, code, by: host.name });
  }

  /** a linearizable read returned `value`: the key had it at some point between the read's start and its end */
  onRead(host: SimHost, lineage: string, key: string, commitAtIssue: number, value: string | null): void {
    this.s.stats.reads++;
    const ghost = this.s.ghosts.get(lineage);
    if (ghost === undefined || this.s.lineageOf.get(host.id) !== lineage) return;
    // whatever any node applied is committed (the ghost's commit is learned only after the step)
    const appliedUpTo = ghost.appliedKey.length - 1;
    const values = ghost.valuesOf(key, commitAtIssue, Math.max(ghost.commit, appliedUpTo));
    if (values !== undefined && !values.has(value)) {
      throw new ViolationError('linearizable read', `${host.name} read ${key} = ${JSON.stringify(value)?.slice(0, 40)}, but from index ${commitAtIssue} (committed when the read began) to ${Math.max(ghost.commit, appliedUpTo)} it held only ${[...values].map((v) => JSON.stringify(v)?.slice(0, 40)).join(', ')}`);
    }
  }

  /** a node left for good because it was removed (its member applied it, or a leader told it so) */
  leftRemoved(host: SimHost): void {
    const lineage = this.s.lineageOf.get(host.id);
    if (lineage != null) this.leftAsRemoved.push({ id: host.id, lineage });
  }

  check(): void {
    this.checkHosts();
    this.checkRemovals();
  }

  /**
   * Removed only by a committed configuration: a node that leaves its cluster for good is not a
   * member of the latest configuration its lineage committed (as far as the ghost knows it, once the
   * step's commits are recorded). A removal acted on before it commits may be lost with its leader,
   * leaving the cluster a voter that will never answer again.
   */
  private checkRemovals(): void {
    while (this.leftAsRemoved.length > 0) {
      const { id, lineage } = this.leftAsRemoved.shift()!;
      const ghost = this.s.ghosts.get(lineage)!;
      for (let i = ghost.commit; i >= 1; i--) {
        const t = ghost.committedTerm[i];
        if (t === undefined) break; // an entry the ghost knows only as committed (inside a snapshot): the latest configuration is unknown
        const key = ghost.entryAt.get(`${t}:${i}`);
        if (key === undefined || !key.startsWith('config:')) continue;
        const membership = JSON.parse(key.slice('config:'.length)) as Membership;
        const still = membership.members.find((m) => m.nodeId === id);
        if (still !== undefined) {
          throw new ViolationError(
            'removed only by a committed configuration',
            `${this.s.nameOf(id)} left ${lineage} for good as removed, but the latest configuration ${lineage} committed (index ${i}, commit ${ghost.commit}) still lists it as a ${still.voter ? 'voter' : 'learner'}`,
          );
        }
        break;
      }
    }
  }

  private checkHosts(): void {
    for (const host of this.s.hosts.values()) {
      const core = host.core;
      if (core === null) continue;
      const lineage = this.s.lineageOf.get(host.id) ?? null;
      // the node's durable cluster id is the one of the lineage it belongs to (null while blank)
      if (clusterLabel(host.clusterId) !== (lineage === null ? null : clusterOfLineage(lineage))) {
        throw new ViolationError('one cluster id', `${host.name} holds cluster ${clusterLabel(host.clusterId)} but belongs to ${lineage ?? `nothing yet (joining ${this.s.offeredBy.get(host.id)})`}`);
      }
      if (lineage === null) continue; // blank: no state yet
      const ghost = this.s.ghosts.get(lineage)!;
      const term = core.currentTerm;
      const commit = core.commitIndex;
      const role = `${core.currentRole} term ${term}`;
      if (this.lastRole.get(host.id) !== role) {
        this.lastRole.set(host.id, role);
        this.s.note(`${host.name} is ${role}`);
      }
      // commit never goes back while the process lives
      const last = this.lastCommit.get(host.id) ?? 0;
      if (commit < last) throw new ViolationError('commit monotonic', `${host.name} commit went from ${last} to ${commit}`);
      this.lastCommit.set(host.id, commit);
      if (core.currentRole === 'leader') {
        this.checkElectionSafety(host.id, term);
        if (this.leaderSeen.get(host.id) !== term) {
          this.leaderSeen.set(host.id, term);
          if (lineage === this.s.mainLineage) this.s.stats.elections++;
          this.checkLeaderCompleteness(host, ghost, term);
        }
      }
      this.checkCommitted(host, ghost, lineage, commit, term);
      this.checkMembers(host, lineage);
    }
  }

  /** committed prefixes agree: what this node commits is what every other node of its lineage committed */
  private checkCommitted(host: SimHost, ghost: Ghost, lineage: string, commit: number, term: number): void {
    const core = host.core!;
    let checked = this.checkedCommit.get(host.id) ?? core.snapshotIndex;
    while (checked < commit) {
      checked++;
      const t = core.termAt(checked);
      if (t < 0) {
        // inside its snapshot, so committed in its lineage (a snapshot holds applied entries only), its
        // term no longer known: the ghost's commit moves over it, or it would wait forever for an index
        // every node has compacted (a removal committed after it then looked uncommitted: seed 95332)
        if (checked === ghost.commit + 1) ghost.commit = checked;
        continue;
      }
      if (checked <= ghost.commit) {
        if (ghost.committedTerm[checked] !== undefined && ghost.committedTerm[checked] !== t) {
          throw new ViolationError('committed entries never lost', `${host.name} commits index ${checked} with term ${t}, but term ${ghost.committedTerm[checked]} was committed there in ${lineage}`);
        }
      } else {
        if (checked !== ghost.commit + 1) continue;
        ghost.committedTerm[checked] = t;
        ghost.committedInTerm[checked] = term;
        ghost.commit = checked;
      }
    }
    this.checkedCommit.set(host.id, checked);
  }

  /** the join rule among members: a node follows only a leader of its lineage, and counts only members of it */
  private checkMembers(host: SimHost, lineage: string): void {
    const core = host.core!;
    // (a leader that was of its lineage before a recovery moved it on counts: a stale member may have heard from it)
    if (core.leader !== null && this.s.lineageOf.get(core.leader) !== lineage && !this.s.lineageHistory.get(core.leader)?.includes(lineage)) {
      throw new ViolationError('one cluster id', `${host.name} of ${lineage} follows ${this.s.nameOf(core.leader)} of ${this.s.lineageOf.get(core.leader) ?? 'no cluster'}`);
    }
    if (lineage !== this.s.mainLineage && lineage !== this.s.foreignLineage) return;
    const membership = core.membership;
    if (this.checkedMembership.get(host.id) === membership) return;
    for (const member of membership.members) {
      const theirs = this.s.lineageOf.get(member.nodeId) ?? null;
      if (theirs === lineage || (theirs === null && this.s.offeredBy.get(member.nodeId) === lineage)) continue;
      const name = this.s.nameOf(member.nodeId);
      throw new ViolationError(
        theirs !== null && clusterOfLineage(theirs) === clusterOfLineage(lineage) ? 'stale generation fenced off' : 'one cluster id',
        `${host.name} of ${lineage} counts ${name} as a ${member.voter ? 'voter' : 'learner'}, but ${name} belongs to ${theirs ?? `nothing (blank, joining ${this.s.offeredBy.get(member.nodeId) ?? 'nothing'})`}`,
      );
    }
    this.checkedMembership.set(host.id, membership);
  }

  /** election safety: at most one leader per term in each lineage */
  checkElectionSafety(id: PeerId, term: number): void {
    const lineage = this.s.lineageOf.get(id);
    if (lineage == null) throw new ViolationError('one cluster id', `blank ${this.s.nameOf(id)} became leader of term ${term}`);
    const leaderOfTerm = this.s.ghosts.get(lineage)!.leaderOfTerm;
    const other = leaderOfTerm.get(term);
    if (other === undefined) leaderOfTerm.set(term, id);
    else if (other !== id) throw new ViolationError('election safety', `two leaders in term ${term} of ${lineage}: ${this.s.nameOf(other)} and ${this.s.nameOf(id)}`);
  }

  /** leader completeness (§5.4): every entry committed in an earlier term is in the new leader's log */
  private checkLeaderCompleteness(host: SimHost, ghost: Ghost, term: number): void {
    const core = host.core!;
    for (let i = core.snapshotIndex + 1; i <= ghost.commit; i++) {
      if (ghost.committedInTerm[i] === undefined || ghost.committedInTerm[i]! >= term) continue;
      if (core.termAt(i) !== ghost.committedTerm[i]) {
        throw new ViolationError('leader completeness', `${host.name} became leader of term ${term} without committed entry ${ghost.committedTerm[i]}:${i} (its log has term ${core.termAt(i)} there)`);
      }
    }
  }

  /** at the end: the final leader holds every committed entry, and every acknowledged write of its lineage was applied */
  checkFinal(leader: SimHost | null): void {
    const ghost = this.s.ghosts.get(this.s.mainLineage)!;
    if (leader !== null) {
      const core = leader.core!;
      for (let i = core.snapshotIndex + 1; i <= ghost.commit; i++) {
        if (ghost.committedTerm[i] !== undefined && core.termAt(i) !== ghost.committedTerm[i]) {
          throw new ViolationError('committed entries never lost', `final leader ${leader.name} lacks committed entry ${ghost.committedTerm[i]}:${i}`);
        }
      }
    }
    for (const [id, lineage] of this.acknowledged) {
      if (lineage !== this.s.mainLineage) continue;
      const index = ghost.indexOf(id);
      if (index < 0) throw new ViolationError('no acknowledged write lost', `write ${id} was acknowledged in ${lineage} but no node applied it`);
      const core = leader?.core;
      if (!core || index <= core.snapshotIndex) continue; // in its snapshot: state machine safety vouches for it
      const held = core.entryAt(index);
      if (index > core.commitIndex || held === undefined || entryKey(held) !== id) {
        throw new ViolationError('no acknowledged write lost', `write ${id} was acknowledged at ${index} in ${lineage}, but the final leader ${leader!.name} holds ${held ? describeEntry(held) : 'nothing'} there (commit ${core.commitIndex})`);
      }
    }
  }

  /** a recovery starts `next` from `old` up to `keep`: acknowledged writes up to there carry over, the rest are discarded with it */
  recovered(old: string, next: string, keep: number): void {
    const ghost = this.s.ghosts.get(old)!;
    for (const [id, lineage] of this.acknowledged) {
      if (lineage !== old) continue;
      const index = ghost.indexOf(id);
      if (index >= 0 && index <= keep) this.acknowledged.set(id, next);
    }
  }
}
