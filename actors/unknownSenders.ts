// Senders the configuration does not know (member identity, issue 11). In a configuration where every
// member's key is committed, a peer message under a node id that is not in it is not given to the raft
// core unless a member of that configuration vouches for the id: this node asks its members
// (`member-query`, over the authenticated peer channel) and a member that holds the id in its own
// configuration answers with its name, key and voter flag (`member-answer`). The real case is a member
// that was away while a node was added which then became leader: it must hear that leader to catch up
// to the entry that added it. A vouch lasts until this node's configuration changes or VOUCH_MS pass;
// under it the sender's messages are checked like a member's (its key, actors/inbound.ts).
// This module is the table only: who was asked when, who is vouched for, every table bounded.
import type { Member, Membership } from '../machines/raft/types.ts';

/** how long a member's answer vouches for a node id (shorter when this node's configuration changes) */
export const VOUCH_MS = 60_000;
/** a vouch this close to its end is renewed while its sender is heard, so a leader is not dropped when it ends */
export const RENEW_BEFORE_MS = 10_000;
/** one query per unknown node id per this long */
export const ASK_EVERY_MS = 1000;
/** an answer is taken only for a query asked at most this long ago */
export const ANSWER_WITHIN_MS = 10_000;
/** at most this many node ids asked about per second, whatever the bus sends (each query goes to every member) */
export const ASKS_PER_SECOND = 8;
/** the most node ids asked about, and vouched for, at once */
export const MAX_ASKED = 64;
export const MAX_VOUCHED = 64;

/** what a member answered about a node id in its configuration */
export interface MemberAnswer {
  nodeId: string;
  name: string;
  voter: boolean;
  /** absent: the member holds no key for it (a node of a release before member keys) */
  key?: string;
}

interface Vouch {
  member: Member;
  /** the member whose answer it is */
  by: string;
  until: number;
  /** the configuration it was given under: a vouch ends when this node's configuration changes */
  membership: Membership;
}

export class UnknownSenders {
  /** node id → when this node last asked about it */
  private readonly asked = new Map<string, number>();
  private readonly vouches = new Map<string, Vouch>();
  private windowStart = 0;
  private asksInWindow = 0;

  /**
   * Whether messages under node ids outside `membership` are held back at all: only when every member
   * has a committed key. With a member that has none, anyone can already speak under that member's id,
   * so holding back unknown ids would protect nothing — and its node, of an older release, would not
   * answer a query. An empty configuration (a node still joining) checks nothing, as before.
   */
  static guards(membership: Membership): boolean {
    return membership.members.length > 0 && membership.members.every((m) => m.key !== undefined);
  }

  /** the member `nodeId` is vouched for under `membership` at `now`, or null (an ended vouch is forgotten) */
  vouched(nodeId: string, membership: Membership, now: number): Member | null {
    const vouch = this.vouches.get(nodeId);
    if (vouch === undefined) return null;
    if (vouch.membership !== membership || now >= vouch.until) {
      this.vouches.delete(nodeId);
      return null;
    }
    return vouch.member;
  }

  /** whether the vouch for `nodeId` ends soon enough to be renewed */
  renewable(nodeId: string, now: number): boolean {
    const vouch = this.vouches.get(nodeId);
    return vouch !== undefined && vouch.until - now <= RENEW_BEFORE_MS;
  }

  /** whether to ask the members about `nodeId` now (and if so, it is recorded as asked) */
  shouldAsk(nodeId: string, now: number): boolean {
    const last = this.asked.get(nodeId);
    if (last !== undefined && now - last < ASK_EVERY_MS) return false;
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.asksInWindow = 0;
    }
    if (this.asksInWindow >= ASKS_PER_SECOND) return false;
    this.asksInWindow++;
    this.asked.delete(nodeId);
    if (this.asked.size >= MAX_ASKED) this.asked.delete(this.asked.keys().next().value!);
    this.asked.set(nodeId, now);
    return true;
  }

  /**
   * An answer from `by`, a member of `membership` whose message was authenticated by its committed
   * key. Taken only for a node id this node asked about lately and that is not in `membership`; true
   * when it now vouches for it.
   */
  answered(answer: MemberAnswer, by: string, membership: Membership, now: number): boolean {
    const asked = this.asked.get(answer.nodeId);
    if (asked === undefined || now - asked > ANSWER_WITHIN_MS) return false;
    if (membership.members.some((m) => m.nodeId === answer.nodeId)) return false;
    const member: Member = { nodeId: answer.nodeId, name: answer.name, voter: answer.voter };
    if (answer.key !== undefined) member.key = answer.key;
    this.vouches.delete(answer.nodeId);
    if (this.vouches.size >= MAX_VOUCHED) this.vouches.delete(this.vouches.keys().next().value!);
    this.vouches.set(answer.nodeId, { member, by, until: now + VOUCH_MS, membership });
    return true;
  }

  /** how many node ids are vouched for and asked about (for tests and status) */
  get size(): { vouched: number; asked: number } {
    return { vouched: this.vouches.size, asked: this.asked.size };
  }
}
