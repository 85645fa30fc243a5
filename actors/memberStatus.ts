// What a member reports about itself: its status (role, term, leader, indexes, members with their
// reachability and progress), peers' names, and the error a client gets from a node that does not lead.
import type { RaftCore } from '../machines/raft/core.ts';
import type { Membership } from '../machines/raft/types.ts';
import { type ConclaveError, conclaveError } from '../runtime/errors.ts';
import type { MemberStatus } from './memberTypes.ts';
import type { ClusterVersionView, Speaks } from './clusterVersion.ts';

/** a node's name in the configuration (its id when it is not there; null for none) */
export function nameIn(membership: Membership, nodeId: string | null): string | null {
  if (nodeId === null) return null;
  return membership.members.find((x) => x.nodeId === nodeId)?.name ?? nodeId;
}

export function memberStatus(
  core: RaftCore,
  self: { nodeId: string; appliedIndex: number; reachable: (nodeId: string) => boolean; speaks: (nodeId: string) => Speaks | undefined; clusterVersion: ClusterVersionView },
): MemberStatus {
  const s = core.status();
  return {
    role: s.role,
    term: s.term,
    leader: nameIn(s.membership, s.leader),
    commitIndex: s.commit,
    appliedIndex: self.appliedIndex,
    members: s.membership.members.map((m) => ({
      name: m.name,
      nodeId: m.nodeId,
      voter: m.voter,
      leader: m.nodeId === s.leader,
      reachable: self.reachable(m.nodeId),
      matchIndex: m.nodeId === self.nodeId ? s.lastIndex : (s.progress[m.nodeId]?.matchIndex ?? 0),
      ...speaksOf(self.speaks(m.nodeId)),
      keyCommitted: m.key !== undefined,
    })),
    clusterVersion: self.clusterVersion,
  };
}

function speaksOf(speaks: Speaks | undefined): { speaks?: Speaks } {
  return speaks === undefined ? {} : { speaks };
}

/** `name` does not lead: who does, if anyone knows */
export function notLeaderError(name: string, leader: string | null): ConclaveError {
  return leader
    ? conclaveError('NOT_LEADER', `${name} is not the leader (the leader is ${leader})`, { leader })
    : conclaveError('NO_LEADER', 'cluster has no leader right now (an election may be under way, or there is no quorum); retry shortly');
}
