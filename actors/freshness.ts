// After this node starts it knows nothing of what its members sent before, so a message recorded from
// the bus back then and published again would look new (runtime/wire/replayWindow.ts). The first MACed
// message from a member is therefore not taken on its own word: this node asks that member
// (`fresh-ask {nonce}`, a nonce only it knows) and starts the member's window at the (boot, seq) under
// which the member answers (`fresh-answer {nonce}`, MACed as every peer message). What the member sent
// before its answer is dropped (`unsynced`, counted); raft sends what it needs again. A member asked
// by one it does not know yet asks back, so one exchange starts both windows. This module is the
// questions and answers: one question per member at a time, asked again after ASK_EVERY_MS, bounded.
import { randomBytes } from 'node:crypto';
import type { Member, Membership } from '../machines/raft/types.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import { encode, type Sender } from '../runtime/wire/codec.ts';
import type { PeerCounter } from '../runtime/wire/peerSignature.ts';
import type { ReplayWindow } from '../runtime/wire/replayWindow.ts';
import type { Clock, MemberBus } from './ports.ts';

/** what the questions need of the member (inbound.ts's hands) */
export interface FreshnessHands {
  readonly prefix: string;
  readonly bus: MemberBus;
  readonly clock: Clock;
  readonly dropLog: RateLimitedLog;
  sender(): Sender;
  membership(): Membership;
  /** this node's window for `nodeId` has just started (its answer taken): its messages count from now on */
  synced?(nodeId: string): void;
}

/** a member is asked again when no answer came for this long (a question or an answer may be lost) */
export const ASK_EVERY_MS = 200;
/** answers to one asker at most this often (a replayed question costs the answerer little) */
export const ANSWER_EVERY_MS = 50;
const MAX_OPEN = 1024;

export class Freshness {
  private readonly asked = new Map<string, { nonce: string; at: number }>();
  private readonly answeredAt = new Map<string, number>();

  constructor(
    private readonly hands: FreshnessHands,
    private readonly replay: ReplayWindow,
  ) {}

  /**
   * Ask `member` for a fresh answer. A question stays open until answered, and is sent again — the
   * same question: an answer to any copy starts the window, however late it comes — once
   * ASK_EVERY_MS has passed, or at once when `again`: the member has just asked this node, so it
   * listens now, and the question may have gone out before it did (members that start one after the
   * other would otherwise wait ASK_EVERY_MS for their windows, their first campaigns dropped as
   * unsynced meanwhile).
   */
  ask(member: Member, again = false): void {
    const now = this.hands.clock.now();
    const open = this.asked.get(member.nodeId);
    if (open !== undefined) {
      if (!again && now - open.at < ASK_EVERY_MS) return;
      open.at = now;
      this.send(member, 'fresh-ask', open.nonce);
      return;
    }
    if (this.asked.size >= MAX_OPEN) this.asked.delete(this.asked.keys().next().value!);
    const nonce = randomBytes(16).toString('base64url');
    this.asked.set(member.nodeId, { nonce, at: now });
    this.send(member, 'fresh-ask', nonce);
  }

  /**
   * Ask again each member whose question has stayed open for ASK_EVERY_MS (called as peer messages
   * arrive). A question may be lost — sent before the member listened, or dropped by a member that
   * did not hold this node yet — and a member that never sends this node anything else would
   * otherwise stay unsynced until it does: a new voter's first vote request would be dropped, and
   * its election (a leadership transfer to it) lost. A member gone from the configuration, or whose
   * window started, is no longer asked.
   */
  askAgain(): void {
    if (this.asked.size === 0) return;
    const now = this.hands.clock.now();
    const members = this.hands.membership().members;
    for (const [nodeId, open] of this.asked) {
      if (now - open.at < ASK_EVERY_MS) continue;
      const member = members.find((m) => m.nodeId === nodeId);
      if (member === undefined || member.key === undefined || this.replay.knows(nodeId)) this.asked.delete(nodeId);
      else this.ask(member);
    }
  }

  /** `member` (its MAC checked) asks: answered (rate-limited), and asked back while its own window has not started */
  answer(member: Member, nonce: string): void {
    const now = this.hands.clock.now();
    const last = this.answeredAt.get(member.nodeId);
    if (last !== undefined && now - last < ANSWER_EVERY_MS) return;
    if (last === undefined && this.answeredAt.size >= MAX_OPEN) this.answeredAt.clear();
    this.answeredAt.set(member.nodeId, now);
    this.send(member, 'fresh-answer', nonce);
    // bounded as the answers are (ANSWER_EVERY_MS), and only until this node's window for it starts
    if (!this.replay.knows(member.nodeId)) this.ask(member, true);
  }

  /** `member` answers under `counter` (its MAC checked): if `nonce` is this node's open question to it, its window starts there */
  take(member: Member, nonce: string, counter: PeerCounter): void {
    const open = this.asked.get(member.nodeId);
    if (open === undefined || open.nonce !== nonce) return;
    this.asked.delete(member.nodeId);
    const members = this.hands.membership().members;
    this.replay.sync(member.nodeId, counter, (id) => members.some((m) => m.nodeId === id));
    this.hands.synced?.(member.nodeId);
  }

  private send(member: Member, type: 'fresh-ask' | 'fresh-answer', nonce: string): void {
    const h = this.hands;
    try {
      h.bus.publish(`${h.prefix}.node.${member.name}.peer`, encode(h.sender(), type, { nonce }));
    } catch (err) {
      h.dropLog.warn(type, { err, to: member.name }, `could not send ${type} to a member`, member.name);
    }
  }
}
