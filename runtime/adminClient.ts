// The client side of the admin protocol, for tools and nodes alike. No zod on this path (a one-shot
// `conclave status` loads this and little else); the node's side is runtime/admin.ts.
import { asErrorCode, conclaveError } from './errors.ts';
import { type Bus, type BusMessage, NoRespondersError, PermissionDeniedError, RequestTimeoutError } from './transport/types.ts';
import { adminSubjects, isReadOnlyOp } from './wire/adminSubjects.ts';
import type { AdminOp, AdminReply, AdminRequest } from './wire/adminProtocol.ts';
import { type AdminSigner, signAdminRequest } from './wire/adminAuth.ts';
import { decodeReply, encode, type Sender } from './wire/envelope.ts';

/**
 * The one client side of the admin protocol: ask `node`, get the reply's body, or throw the node's
 * error as a ConclaveError. NoRespondersError / RequestTimeoutError pass through for the caller to
 * explain in its own terms (see `isUnreachable`). `signer`: a member signs what only a member may
 * send (runtime/wire/adminAuth.ts: removal notices, requests it forwards to the leader).
 */
export async function adminCall<O extends AdminOp>(
  bus: Pick<Bus, 'request'>,
  prefix: string,
  node: string,
  sender: Sender,
  type: O,
  body: AdminRequest<O>,
  timeoutMs: number,
  signer?: AdminSigner,
): Promise<AdminReply<O>> {
  const subjects = adminSubjects(prefix, node);
  const data = signer === undefined ? encode(sender, type, body) : signAdminRequest(signer, subjects.admin, sender, type, body);
  let reply: BusMessage;
  if (isReadOnlyOp(type)) {
    try {
      reply = await bus.request(subjects.read, data, { timeoutMs });
    } catch (err) {
      // a node of an older release answers on .admin only, and a NATS user set up before .read existed may publish on .admin only
      if (!(err instanceof NoRespondersError) && !(err instanceof PermissionDeniedError)) throw err;
      reply = await bus.request(subjects.admin, data, { timeoutMs });
    }
  } else {
    reply = await bus.request(subjects.admin, data, { timeoutMs });
  }
  const decoded = decodeReply(reply.data);
  if (!decoded.ok) throw conclaveError(asErrorCode(decoded.error.code), decoded.error.message, decoded.error.details);
  // the node answers with the reply type of the operation (runtime/wire/adminProtocol.ts)
  return decoded.body as AdminReply<O>;
}

/** nobody answered: no subscriber, or no reply in time */
export function isUnreachable(err: unknown): boolean {
  return err instanceof NoRespondersError || err instanceof RequestTimeoutError;
}
