// Pure membership arithmetic: the next configuration for one single-server change, and what a
// requested change means against the current configuration. No I/O.
import type { RaftStatus } from '../raft/core.ts';
import type { Member, Membership } from '../raft/types.ts';

export type MembershipChange =
  | { type: 'add-learner'; member: { name: string; nodeId: string; key?: string } }
  | { type: 'promote'; nodeId: string }
  | { type: 'remove'; nodeId: string }
  /**
   * take back a learner whose node refuses to be a member (it joined elsewhere): it never was one in
   * its own view, so it is not remembered as removed (a removed node is told so, and leaves for good)
   */
  | { type: 'withdraw-learner'; nodeId: string }
  /**
   * raise the cluster version (never lower it) and commit the member keys given for members that
   * have none (a cluster upgraded from release 0.1: actors/clusterVersion.ts); no member is added or removed
   */
  | { type: 'raise-version'; version: number; keys: Array<{ nodeId: string; key: string }> };

/** how many removed node ids a configuration remembers */
export const MAX_REMEMBERED_REMOVALS = 100;

/** The configuration after `change`, or an error string when the change makes no sense here. */
export function applyChange(current: Membership, change: MembershipChange): { ok: true; next: Membership } | { ok: false; reason: string } {
  const members = current.members;
  switch (change.type) {
    case 'add-learner': {
      if (members.some((m) => m.nodeId === change.member.nodeId)) return { ok: false, reason: `node ${change.member.nodeId} is already in the configuration` };
      if (members.some((m) => m.name === change.member.name)) return { ok: false, reason: `name ${change.member.name} is already in the configuration` };
      const added: Member = { nodeId: change.member.nodeId, name: change.member.name, voter: false };
      // its member key, committed with it: from now on its peer messages must be signed with it
      if (change.member.key !== undefined) added.key = change.member.key;
      return { ok: true, next: { ...current, members: [...members, added] } };
    }
    case 'promote': {
      const target = members.find((m) => m.nodeId === change.nodeId);
      if (!target) return { ok: false, reason: `node ${change.nodeId} is not in the configuration` };
      if (target.voter) return { ok: false, reason: `${target.name} is already a voter` };
      const next: Membership = { ...current, members: members.map((m) => (m.nodeId === change.nodeId ? { ...m, voter: true } : m)) };
      // an initial member is done once it is a voter; removing it later does not bring it back
      const pending = (current.pending ?? []).filter((n) => n !== target.name);
      if (pending.length > 0) next.pending = pending;
      else delete next.pending;
      return { ok: true, next };
    }
    case 'remove': {
      const target = members.find((m) => m.nodeId === change.nodeId);
      if (!target) return { ok: false, reason: `node ${change.nodeId} is not in the configuration` };
      const next = members.filter((m) => m.nodeId !== change.nodeId);
      if (!next.some((m) => m.voter)) return { ok: false, reason: `${target.name} is the last voter: removing it would leave the cluster without voters` };
      const removed = [...(current.removed ?? []), change.nodeId].slice(-MAX_REMEMBERED_REMOVALS);
      return { ok: true, next: { ...current, members: next, removed } };
    }
    case 'raise-version': {
      const current_ = current.version ?? 1;
      if (!Number.isInteger(change.version) || change.version <= current_) return { ok: false, reason: `the cluster version is ${current_}: it is only ever raised, not set to ${change.version}` };
      const keys = new Map(change.keys.map((k) => [k.nodeId, k.key]));
      const next: Membership = { ...current, version: change.version, members: members.map((m) => (m.key === undefined && keys.has(m.nodeId) ? { ...m, key: keys.get(m.nodeId)! } : m)) };
      return { ok: true, next };
    }
    case 'withdraw-learner': {
      const target = members.find((m) => m.nodeId === change.nodeId);
      if (!target) return { ok: false, reason: `node ${change.nodeId} is not in the configuration` };
      if (target.voter) return { ok: false, reason: `${target.name} is a voter, not a learner: only a learner is withdrawn` };
      return { ok: true, next: { ...current, members: members.filter((m) => m.nodeId !== change.nodeId) } };
    }
  }
}

/** What adding `name` (answering as `nodeId`) means against the current configuration. */
export type AddPlan =
  /** already a voter with this node id: nothing to do */
  | { kind: 'noop' }
  /** a learner with this node id: continue with catch-up and promotion */
  | { kind: 'resume' }
  /** the name is held by an older node id (a wiped or replaced node): remove that one first */
  | { kind: 'replace'; staleNodeId: string }
  | { kind: 'add' };

export function planAdd(current: Membership, name: string, nodeId: string): AddPlan {
  const byId = current.members.find((m) => m.nodeId === nodeId);
  if (byId) return byId.voter ? { kind: 'noop' } : { kind: 'resume' };
  const byName = current.members.find((m) => m.name === name);
  if (byName) return { kind: 'replace', staleNodeId: byName.nodeId };
  return { kind: 'add' };
}

/** A learner's catch-up as the leader sees it (the membership chart's PROGRESS). */
export interface LearnerProgress {
  matchIndex: number;
  /** the leader's commit index (shown to the operator: "log 40 of 42") */
  commitIndex: number;
  /** the leader's last index */
  lastIndex: number;
  /** only a snapshot can catch it up: one is on its way, or the leader compacted its log past the learner's match */
  needsSnapshot: boolean;
}

/** What the leader's raft status says of learner `nodeId`'s catch-up. */
export function learnerProgress(status: Pick<RaftStatus, 'commit' | 'lastIndex' | 'firstIndex' | 'progress'>, nodeId: string): LearnerProgress {
  const p = status.progress[nodeId];
  const matchIndex = p?.matchIndex ?? 0;
  // the leader's next append to it would start at firstIndex at the earliest
  const needsSnapshot = p !== undefined && (p.state === 'snapshot' || matchIndex < status.firstIndex - 1);
  return { matchIndex, commitIndex: status.commit, lastIndex: status.lastIndex, needsSnapshot };
}

/**
 * A learner is caught up when its match index is within `lag` entries of the leader's commit and the
 * leader's log still holds what follows it. Promoted while it still needs a snapshot, it would be a
 * voter the quorum may wait on for a whole transfer (or, if transfers keep failing, for good). The
 * commit, not the last index: under a steady write load the last index runs ahead of every
 * follower by what is in flight, and a learner measured against it might never be promoted.
 */
export function caughtUp(progress: Pick<LearnerProgress, 'matchIndex' | 'commitIndex' | 'needsSnapshot'>, lag: number): boolean {
  return !progress.needsSnapshot && progress.matchIndex > 0 && progress.matchIndex >= progress.commitIndex - lag;
}
