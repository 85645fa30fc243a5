// What this node answers on `<prefix>.node.<name>.admin`: one handler per operation of the admin
// protocol (runtime/wire/adminProtocol.ts), each given its validated body. Membership operations and
// snapshot exports run on the leader: any other member forwards them there once.
import type { AdminHandlers } from '../../runtime/admin.ts';
import { SNAPSHOT_PAGE_BYTES, SnapshotExports } from '../../runtime/state/snapshotExport.ts';
import type { ClusterList, ProposeOutcome, StatusReply } from '../../runtime/wire/adminProtocol.ts';
import { wireLimits } from '../../runtime/wire/codec.ts';
import type { ControllerContext } from './context.ts';
import type { JoinHandshake } from './joinHandshake.ts';
import type { MembershipOps } from './membership.ts';
import type { Removal } from './removal.ts';
import { whoisAnswer } from './whois.ts';

export interface AdminParts {
  status(): StatusReply;
  init(): Promise<string>;
  list(): ClusterList;
  membership: MembershipOps;
  join: JoinHandshake;
  removal: Removal;
}

export function adminHandlers(ctx: ControllerContext, parts: AdminParts): AdminHandlers {
  const { membership } = parts;
  /** `snapshot save` sessions served by this node while it leads */
  const snapshotExports = new SnapshotExports();
  return {
    whois: async () => whoisAnswer(ctx),
    status: async () => parts.status(),
    init: async () => ({ clusterId: await parts.init() }),
    propose: async (body, envelope) => ctx.memberRuntime().handleAdmin('propose', body, envelope),
    'propose.batch': async (body, envelope) => ctx.memberRuntime().handleAdmin('propose.batch', body, envelope) as Promise<{ results: ProposeOutcome[] }>,
    read: async (body, envelope) => ctx.memberRuntime().handleAdmin('read', body, envelope),
    'join.offer': (body, envelope) => parts.join.onOffer(body, envelope),
    'member.removed': async (_body, envelope) => parts.removal.onNotice(envelope),
    'cluster.add': async (body) =>
      membership.onLeader('cluster.add', body, () => {
        const { progressMs, timeoutMs } = body;
        return progressMs === undefined ? membership.add(body.name, { timeoutMs }) : membership.addFollowed(body.name, { progressMs, timeoutMs });
      }),
    'cluster.remove': async (body) => membership.onLeader('cluster.remove', body, () => membership.remove(body.name, { timeoutMs: body.timeoutMs })),
    'cluster.list': async (body) => membership.onLeader('cluster.list', body, async () => parts.list()),
    'cluster.transfer': async (body) => membership.transfer(body),
    'snapshot.begin': async (body) =>
      membership.onLeader('snapshot.begin', body, async () => {
        const snap = await ctx.requireLeader().exportSnapshot();
        // a page must fit one reply on this bus (a pair of the largest command travels alone)
        const pageBytes = Math.min(SNAPSHOT_PAGE_BYTES, wireLimits(ctx.bus.maxPayload).commandBytes);
        return snapshotExports.begin(ctx.name, { clusterId: ctx.store.identity().clusterId, ...snap }, pageBytes);
      }),
    'snapshot.page': async (body) => snapshotExports.page(body.session, body.seq),
  };
}
