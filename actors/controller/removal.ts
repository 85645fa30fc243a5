// Removal notices, both ends. The leader tells a node it removed when that node keeps talking (it may
// have missed the configuration that removed it) and reports other non-members past a grace period;
// a member believes such a notice only from a member of its own configuration, then leaves for good.
import type { Envelope } from '../../runtime/wire/codec.ts';
import type { ControllerContext } from './context.ts';
import { adminCall } from '../../runtime/admin.ts';
import { adminSigner } from './adminAuth.ts';

/** a non-member talking to the leader longer than this is reported (its messages are dropped from the start) */
const NON_MEMBER_GRACE_MS = 5000;
const NON_MEMBER_REPORT_EVERY_MS = 60_000;
const NOTICE_EVERY_MS = 2000;
const MAX_TRACKED_NON_MEMBERS = 1024;

export class Removal {
  /** when each removed node was last told */
  private readonly notices = new Map<string, number>();
  /** nodes outside the configuration that talk to this leader: when first heard, when last reported */
  private readonly nonMembers = new Map<string, { first: number; reported: number }>();

  constructor(private readonly ctx: ControllerContext) {}

  /**
   * Raft traffic to the leader from a node outside the configuration (already dropped). A node the
   * cluster removed is told so, whichever leader removed it. Anything else that keeps talking past
   * a grace period (a learner a new leader never had, a misconfigured node) is reported, once a minute.
   */
  onNonMember(name: string, nodeId: string): void {
    // removed by the applied (so committed) configuration, not merely the latest appended one: a removal
    // not yet committed may be lost with this leader, and the node told so would never come back
    const removed = this.ctx.member()?.appliedMembership().removed ?? [];
    if (removed.includes(nodeId)) {
      this.notice(name);
      return;
    }
    const now = this.ctx.clock.now();
    const seen = this.nonMembers.get(nodeId) ?? { first: now, reported: 0 };
    if (!this.nonMembers.has(nodeId)) {
      if (this.nonMembers.size >= MAX_TRACKED_NON_MEMBERS) this.nonMembers.delete(this.nonMembers.keys().next().value!);
      this.nonMembers.set(nodeId, seen);
    }
    if (now - seen.first >= NON_MEMBER_GRACE_MS && now - seen.reported >= NON_MEMBER_REPORT_EVERY_MS) {
      seen.reported = now;
      const clusterId = this.ctx.store.identity().clusterId;
      this.ctx.reportRefusal('membership', {
        reason: 'non-member',
        from: name,
        localClusterId: clusterId,
        remoteClusterId: clusterId,
        message: `${name} (node ${nodeId}) has kept sending raft traffic for ${Math.round((now - seen.first) / 1000)} s but is not a member of cluster ${clusterId}; its messages are dropped — add it with \`conclave cluster add ${name} --via ${this.ctx.name}\`, or stop it`,
      });
    }
  }

  /** persist `removed` durably, then leave the member phase for good */
  async markRemoved(why: string): Promise<void> {
    const ctx = this.ctx;
    if (ctx.phase() !== 'member' || ctx.stopping()) return;
    try {
      await ctx.store.updateIdentity({ removed: true });
    } catch (err) {
      ctx.log.error({ err }, 'could not record the removal durably; stopping the member runtime anyway');
    }
    ctx.logFor('membership').warn({ why }, `${ctx.name} was removed from cluster ${ctx.store.identity().clusterId}: ${why}; it will not rejoin by itself`);
    ctx.actor().send({ type: 'REMOVED' });
  }

  /** tell a removed node so (rate-limited per name): it may have missed the config that removed it */
  private notice(name: string): void {
    const now = this.ctx.clock.now();
    if (now - (this.notices.get(name) ?? 0) < NOTICE_EVERY_MS) return;
    this.notices.set(name, now);
    void this.send(name);
  }

  /** best effort: the node may be down; it is told again when it next talks to the leader */
  async send(name: string): Promise<void> {
    try {
      await adminCall(this.ctx.bus, this.ctx.prefix, name, this.ctx.sender(), 'member.removed', {}, 1000, adminSigner(this.ctx));
    } catch (err) {
      this.ctx.logFor('membership').debug({ err, to: name }, 'removal notice not delivered');
    }
  }

  /** the leader says this node was removed; believed only from a member of this node's own cluster */
  async onNotice(envelope: Envelope): Promise<{ removed: boolean }> {
    const ctx = this.ctx;
    const clusterId = ctx.store.identity().clusterId;
    if (ctx.phase() === 'removed') return { removed: true };
    if (clusterId === null || envelope.clusterId !== clusterId || ctx.phase() !== 'member') return { removed: false };
    const status = ctx.member()?.raftStatus();
    if (!status) return { removed: false };
    // believed only from a member of our own configuration ...
    if (!status.membership.members.some((m) => m.nodeId === envelope.nodeId)) return { removed: false };
    // ... that does not contradict another leader still keeping us (a stale notice)
    if (status.leader !== null && status.leader !== envelope.nodeId) return { removed: false };
    await this.markRemoved(`told so by ${envelope.from}`);
    return { removed: true };
  }
}
