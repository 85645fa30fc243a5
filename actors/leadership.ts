// Leadership as the member lives it: what a change of role or leader means for the requests in
// flight, the cluster id an older cluster gets from its first leader, and the hand-over at shutdown.
import { v7 as uuidv7 } from 'uuid';
import type { RaftCore } from '../machines/raft/core.ts';
import type { raftRoleMachine } from '../machines/raft/roleMachine.ts';
import type { Role } from '../machines/raft/types.ts';
import { type ConclaveError, conclaveError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { Actor } from 'xstate';
import type { MemberEvents } from './memberTypes.ts';
import type { Clock, MemberStore } from './ports.ts';

export interface LeadershipHands {
  readonly name: string;
  readonly log: Logger;
  readonly store: MemberStore;
  readonly clock: Clock;
  readonly electionTimeoutMs: number;
  readonly nodeId: string;
  readonly events?: MemberEvents;
  /** joining mode: this node takes no part in giving its cluster an id */
  readonly joining: boolean;
  /** names of peers heard from (a learner hears its leader before its configuration names it) */
  readonly peerNames: ReadonlyMap<string, string>;
  core(): RaftCore;
  role(): Actor<typeof raftRoleMachine> | null;
  nameOf(nodeId: string | null): string | null;
  notLeaderError(): ConclaveError;
  /** the leader this node followed is no longer the one (forwarding.ts) */
  leaderLeft(role: Role): void;
  /** this node stopped leading: what waited on its leadership fails */
  leadershipLost(notLeader: ConclaveError, outcomeUnknown: ConclaveError): void;
}

type Soft = { role: Role; leader: string | null; term: number };

export class Leadership {
  private lastSoft: Soft = { role: 'follower', leader: null, term: 0 };
  /** who waits for this node to stop leading (the hand-over at shutdown) */
  private readonly leadershipEnded = new Set<() => void>();

  constructor(private readonly hands: LeadershipHands) {}

  onSoftState(soft: Soft): void {
    const h = this.hands;
    const before = this.lastSoft;
    this.lastSoft = soft;
    if (before.leader !== soft.leader) h.leaderLeft(soft.role);
    if (before.leader !== soft.leader || (soft.leader !== null && before.term !== soft.term)) {
      // a learner may hear its leader before its configuration names it: the envelope told us the name
      const leader = soft.leader === null ? null : (h.core().membership.members.find((m) => m.nodeId === soft.leader)?.name ?? h.peerNames.get(soft.leader) ?? soft.leader);
      h.events?.leaderChanged(leader, soft.term);
    }
    if (before.role !== soft.role || before.leader !== soft.leader) {
      h.log.info({ role: soft.role, term: soft.term, leader: h.nameOf(soft.leader) }, `role ${soft.role}, term ${soft.term}, leader ${h.nameOf(soft.leader) ?? 'none'}`);
    }
    if (soft.role === 'leader' && before.role !== 'leader' && h.store.identity().clusterId === null && !h.joining) {
      h.clock.soon(() => this.proposeClusterId());
    }
    if (before.role === 'leader' && soft.role !== 'leader') {
      for (const ended of [...this.leadershipEnded]) ended();
      // proposals in flight may still commit under the next leader, or be overwritten: say so
      // rather than leave the caller waiting for an index that may never be applied here
      h.leadershipLost(
        h.notLeaderError(),
        conclaveError(
          'OUTCOME_UNKNOWN',
          `${h.name} lost leadership while the proposal was in flight; it may or may not have been applied — read the key and retry if needed`,
        ),
      );
    }
  }

  /** leader of a cluster created without an id: commit one through raft */
  private proposeClusterId(): void {
    const h = this.hands;
    const role = h.role();
    if (!role || h.core().currentRole !== 'leader' || h.store.identity().clusterId !== null || h.joining) return;
    const clusterId = uuidv7();
    role.send({ type: 'PROPOSE', items: [{ type: 'clusterId', data: { clusterId } }] });
    const result = role.getSnapshot().context.lastProposal!;
    if (result.ok) h.log.info({ proposed: clusterId, index: result.firstIndex }, `upgrading: proposed cluster id ${clusterId} for this cluster created without one`);
    else h.log.warn({ reason: result.reason }, 'upgrading: could not propose a cluster id yet; retrying at the next leadership');
  }

  /** resolves when this node's soft state says it no longer leads, or after `ms` */
  private untilNotLeading(ms: number): Promise<void> {
    if (this.lastSoft.role !== 'leader') return Promise.resolve();
    const clock = this.hands.clock;
    return new Promise<void>((resolve) => {
      const ended = () => {
        clock.clearTimeout(timer);
        this.leadershipEnded.delete(ended);
        resolve();
      };
      const timer = clock.setTimeout(ended, ms);
      this.leadershipEnded.add(ended);
    });
  }

  /** graceful shutdown: a leader with other voters hands leadership to the most up-to-date one */
  async handOver(): Promise<void> {
    const h = this.hands;
    const core = h.core();
    const role = h.role();
    const s = core.status();
    const otherVoters = s.membership.members.filter((m) => m.voter && m.nodeId !== h.nodeId);
    if (s.role !== 'leader' || otherVoters.length === 0 || !role) return;
    role.send({ type: 'TRANSFER' });
    const result = role.getSnapshot().context.lastTransfer;
    if (!result?.ok) {
      h.log.warn({ reason: result && !result.ok ? result.reason : 'unknown' }, 'could not hand over leadership before stopping');
      return;
    }
    await this.untilNotLeading(2 * h.electionTimeoutMs);
    const handedTo = h.nameOf(core.leader);
    if (core.currentRole === 'leader') h.log.warn({ to: h.nameOf(result.to) }, 'leadership transfer did not complete before stopping');
    else h.log.info({ to: handedTo }, `handed leadership to ${handedTo ?? 'another voter'} before stopping`);
  }
}
