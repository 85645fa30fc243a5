// Majority arithmetic over the voters of one configuration (learners never count).
import type { Membership, PeerId } from './types.ts';

export function votersOf(membership: Membership): PeerId[] {
  const voters: PeerId[] = [];
  for (const member of membership.members) if (member.voter) voters.push(member.nodeId);
  return voters;
}

export function learnersOf(membership: Membership): PeerId[] {
  const learners: PeerId[] = [];
  for (const member of membership.members) if (!member.voter) learners.push(member.nodeId);
  return learners;
}

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index replicated on a majority of voters. `matchOf` gives each voter's match
 * index; `scratch` is reused across calls so the hot path does not allocate.
 */
export function committedIndex(voters: readonly PeerId[], matchOf: (peer: PeerId) => number, scratch: number[]): number {
  const n = voters.length;
  if (n === 0) return 0;
  scratch.length = n;
  for (let i = 0; i < n; i++) scratch[i] = matchOf(voters[i]!);
  scratch.sort((a, b) => b - a);
  return scratch[majority(n) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Tally an election: `votes` maps voter → granted; `weight` is 1 except under a planted bug. */
export function voteResult(voters: readonly PeerId[], votes: ReadonlyMap<PeerId, boolean>, weight = 1): VoteResult {
  const need = majority(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const voter of voters) {
    const vote = votes.get(voter);
    if (vote === true) granted += weight;
    else if (vote === false) rejected++;
  }
  if (granted >= need) return 'won';
  if (rejected > voters.length - need) return 'lost';
  return 'pending';
}
