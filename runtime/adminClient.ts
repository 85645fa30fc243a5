// The client side of the admin protocol, for tools and nodes alike. No zod on this path (a one-shot
// `conclave status` loads this and little else); the node's side is runtime/admin.ts.
import { asErrorCode, ConclaveError, conclaveError } from './errors.ts';
import { type Bus, type BusMessage, NoRespondersError, PermissionDeniedError, RequestTimeoutError } from './transport/types.ts';
import { adminSubjects, isReadOnlyOp } from './wire/adminSubjects.ts';
import type { AdminOp, AdminReply, AdminRequest } from './wire/adminProtocol.ts';
import { type AdminSigner, requiresMemberAuth, signAdminRequest } from './wire/adminAuth.ts';
import { type ClientSession, OPEN_SESSION, type OpenSessionReply, type OpenSessionRequest, SESSION_GONE } from './wire/operatorSession.ts';
import { decodeReply, encode, type Sender } from './wire/envelope.ts';

/**
 * The one client side of the admin protocol: ask `node`, get the reply's body, or throw the node's
 * error as a ConclaveError. NoRespondersError / RequestTimeoutError pass through for the caller to
 * explain in its own terms (see `isUnreachable`). `signer`: a member signs what only a member may
 * send (runtime/wire/adminAuth.ts: removal notices, requests it forwards to the leader); an operator
 * signs its requests (runtime/operatorKey.ts) — or, when its signer keeps sessions, sends them MACed
 * in a session with the node (runtime/wire/operatorSession.ts), opened on first use and opened again
 * once when the node says it does not know it. A node that cannot open one (an older release) or
 * refuses to gets the request signed, and the answer to that is the answer.
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
  const sessions = signer?.sessions;
  if (signer === undefined || sessions === undefined || type === OPEN_SESSION || requiresMemberAuth(type, body)) {
    const data = signer === undefined ? encode(sender, type, body) : signAdminRequest(signer, subjects.admin, sender, type, body, node);
    return send(bus, subjects, type, data, timeoutMs);
  }
  const plain: AdminSigner = { key: signer.key, now: signer.now };
  const open = (request: OpenSessionRequest) => adminCall(bus, prefix, node, sender, OPEN_SESSION, request, timeoutMs, plain) as Promise<OpenSessionReply>;
  for (let attempt = 1; ; attempt++) {
    let session: ClientSession | null;
    try {
      session = await sessions.session(subjects.admin, open);
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err;
      // an older release knows no sessions: sign its requests for a while; any other refusal is the signed request's to explain
      if (err.code === 'BAD_REQUEST') sessions.signInstead(subjects.admin);
      session = null;
    }
    if (session === null) return adminCall(bus, prefix, node, sender, type, body, timeoutMs, plain);
    try {
      return await send(bus, subjects, type, sessions.seal(session, subjects.admin, sender, type, body), timeoutMs);
    } catch (err) {
      const reason = err instanceof ConclaveError ? (err.details as { reason?: unknown } | undefined)?.reason : undefined;
      if (attempt > 1 || typeof reason !== 'string' || !SESSION_GONE.has(reason)) throw err;
      sessions.forget(subjects.admin, session);
    }
  }
}

async function send<O extends AdminOp>(bus: Pick<Bus, 'request'>, subjects: { admin: string; read: string }, type: O, data: Uint8Array, timeoutMs: number): Promise<AdminReply<O>> {
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
