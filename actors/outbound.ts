// Outbound peer traffic: raft messages to their peers, one bus message per peer per batch, split
// where it would exceed the bus's max payload (snapshots go their own way, in chunks).
import type { RaftMessage } from '../machines/raft/messages.ts';
import type { Membership } from '../machines/raft/types.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import { encode, type Sender, type WireLimits } from '../runtime/wire/codec.ts';
import { packByBytes, RAFT_MESSAGE_BYTES } from './peerWire.ts';
import type { MemberBus } from './ports.ts';

export interface OutboundHands {
  readonly prefix: string;
  readonly bus: MemberBus;
  readonly limits: WireLimits;
  readonly dropLog: RateLimitedLog;
  /** names of peers heard from (a learner not yet in its own configuration) */
  readonly peerNames: ReadonlyMap<string, string>;
  sender(): Sender;
  /** the configuration in force, then the one as applied: where a peer's name is found */
  membership(): Membership;
  appliedMembership(): Membership;
  sendSnapshot(m: RaftMessage & { type: 'snapshot' }): void;
}

export class Outbound {
  constructor(private readonly hands: OutboundHands) {}

  send(messages: RaftMessage[]): void {
    const byPeer = new Map<string, RaftMessage[]>();
    for (const m of messages) {
      if (m.type === 'snapshot') {
        this.hands.sendSnapshot(m);
        continue;
      }
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    const sender = this.hands.sender();
    for (const [to, list] of byPeer) {
      const subject = this.peerSubject(to);
      if (!subject) continue;
      // one bus message per peer per batch, split where it would exceed the bus's max payload
      for (const part of packByBytes(list, this.hands.limits.messageBytes - RAFT_MESSAGE_BYTES)) {
        try {
          this.hands.bus.publish(subject, encode(sender, 'raft', { messages: part }));
        } catch (err) {
          this.hands.dropLog.warn(`send:${to}`, { err, to }, 'could not send raft messages');
        }
      }
    }
  }

  peerSubject(nodeId: string): string | null {
    const name =
      this.hands.membership().members.find((m) => m.nodeId === nodeId)?.name ??
      this.hands.appliedMembership().members.find((m) => m.nodeId === nodeId)?.name ??
      this.hands.peerNames.get(nodeId);
    return name ? `${this.hands.prefix}.node.${name}.peer` : null;
  }
}
