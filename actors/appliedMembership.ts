// The configuration as applied (what a snapshot must record, where a peer's name is found after it
// left the configuration in force), told to the host when it changes; and, for a joining node, the
// moment it becomes a member: once a configuration it has applied (a snapshot's or a log entry's)
// includes it. A leader's learner entry that never commits makes it none.
import type { Entry, Membership } from '../machines/raft/types.ts';
import type { MemberEvents } from '../runtime/events.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { MemberStore } from './ports.ts';

export interface AppliedMembershipHands {
  readonly name: string;
  readonly store: MemberStore;
  readonly log: Logger;
  readonly events: MemberEvents | undefined;
  /** joining mode: report that a committed configuration includes this node */
  readonly onJoined: ((clusterId: string) => void) | undefined;
  readonly joining: boolean;
  nodeId(): string;
}

export class AppliedMembership {
  current: Membership = { members: [] };
  private joinedReported = false;

  constructor(private readonly hands: AppliedMembershipHands) {}

  /** at start: the snapshot's configuration, then the config entries applied after it */
  restore(snapshot: Membership | undefined, applied: readonly Entry[]): void {
    this.current = snapshot ?? { members: [] };
    for (const e of applied) if (e.type === 'config') this.current = e.data as Membership;
  }

  /** a received snapshot was installed: its configuration is the applied one (the host is told if it changed) */
  installed(membership: Membership): void {
    const changed = !sameMembers(this.current, membership);
    this.current = membership;
    if (changed) this.emit();
  }

  /** joining mode: a member once a committed configuration it has applied includes it */
  maybeJoined(): void {
    if (!this.hands.joining || this.joinedReported) return;
    const clusterId = this.hands.store.identity().clusterId;
    if (clusterId === null || !this.current.members.some((m) => m.nodeId === this.hands.nodeId())) return;
    this.joinedReported = true;
    this.hands.log.info({ clusterId }, `joined cluster ${clusterId}: a committed configuration includes ${this.hands.name}`);
    this.hands.onJoined?.(clusterId);
  }

  /** tell the host the members as applied */
  emit(): void {
    this.hands.events?.membershipChanged(this.current.members.map((m) => ({ name: m.name, nodeId: m.nodeId, voter: m.voter })));
  }
}

function sameMembers(a: Membership, b: Membership): boolean {
  if (a.members.length !== b.members.length) return false;
  return a.members.every((m, i) => {
    const o = b.members[i]!;
    return o.nodeId === m.nodeId && o.name === m.name && o.voter === m.voter;
  });
}
