// The controller's side of member-signed admin requests (runtime/wire/adminAuth.ts): what this node
// signs its internal requests with, and the check its admin endpoint runs before a handler — against
// the keys committed in this node's current configuration. A refusal is an UNAUTHENTICATED reply,
// counted and logged (rate-limited) as an `admin` refusal; it never changes anything.
import type { AdminAuthenticator } from '../../runtime/admin.ts';
import { conclaveError } from '../../runtime/errors.ts';
import { AdminAuthVerifier, type AdminSigner } from '../../runtime/wire/adminAuth.ts';
import type { ControllerContext } from './context.ts';

/** this node's signer (none: a store without a member key, whose requests go unsigned as before) */
export function adminSigner(ctx: Pick<ControllerContext, 'store'>): AdminSigner | undefined {
  const key = ctx.store.memberKey?.();
  return key === undefined ? undefined : { key: key.privateKey };
}

export function memberAuthenticator(ctx: ControllerContext, adminSubject: string): AdminAuthenticator {
  const verifier = new AdminAuthVerifier({
    adminSubject,
    clusterId: () => ctx.store.identity().clusterId,
    memberKey: (nodeId) => {
      const member = ctx.member()?.raftStatus().membership.members.find((m) => m.nodeId === nodeId);
      return member === undefined ? null : { key: member.key };
    },
  });
  return (envelope, body, data) => {
    const refusal = verifier.check(envelope, body, data);
    if (refusal === null) return null;
    const message = `${envelope.type} refused: ${refusal.detail}; only a member of this cluster may send it, signed with its member key`;
    ctx.reportRefusal('admin', { reason: `unauthenticated:${refusal.reason}`, from: envelope.from, localClusterId: ctx.store.identity().clusterId, remoteClusterId: envelope.clusterId, message });
    return conclaveError('UNAUTHENTICATED', message);
  };
}
