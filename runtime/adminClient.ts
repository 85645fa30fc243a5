// The client side of the admin protocol, for tools and nodes alike. No zod on this path (a one-shot
// `conclave status` loads this and little else); the node's side is runtime/admin.ts.
import { asErrorCode, ConclaveError, conclaveError } from './errors.ts';
import { type Bus, type BusMessage, NoRespondersError, PayloadTooLargeError, PermissionDeniedError, RequestTimeoutError } from './transport/types.ts';
import { adminSubjects, isReadOnlyOp } from './wire/adminSubjects.ts';
import type { AdminOp, AdminReply, AdminRequest } from './wire/adminProtocol.ts';
import { type AdminSigner, requiresMemberAuth, signAdminRequest } from './wire/adminAuth.ts';
import { type ClientSession, OPEN_SESSION, type OpenSessionReply, type OpenSessionRequest, SESSION_GONE } from './wire/operatorSession.ts';
import { decodeReply, encode, MAX_MESSAGE_BYTES, MessageTooLargeError, type Sender } from './wire/envelope.ts';

/**
 * The one client side of the admin protocol: ask `node`, get the reply's body, or throw the node's
 * error as a ConclaveError. NoRespondersError / RequestTimeoutError pass through for the caller to
 * explain in its own terms (see `isUnreachable`). `signer`: a member signs what only a member may
 * send (runtime/wire/adminAuth.ts: removal notices, requests it forwards to the leader); an operator
 * signs its requests (runtime/operatorKey.ts) — or, when its signer keeps sessions, sends them MACed
 * in a session with the node (runtime/wire/operatorSession.ts), opened on first use and opened again
 * once when the node says it does not know it. A node that cannot open one (an older release) or
 * refuses to gets the request signed, and the answer to that is the answer. A `propose` travels with
 * the others made to the same node in the same turn, in one `propose.batch` (proposeBatched below).
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
  const to: Destination = { bus, prefix, node, sender, timeoutMs, signer };
  if (type === 'propose' && (body as AdminRequest<'propose'>).forwarded !== true) return proposeBatched(to, (body as AdminRequest<'propose'>).command) as Promise<AdminReply<O>>;
  return call(to, type, body);
}

/** where a proposal goes, and as whom: proposals batch together only when all of it is the same */
interface Destination {
  bus: Pick<Bus, 'request'>;
  prefix: string;
  node: string;
  sender: Sender;
  timeoutMs: number;
  signer: AdminSigner | undefined;
}

interface Pending {
  to: Destination;
  items: Array<{ command: unknown; resolve(reply: unknown): void; reject(err: unknown): void }>;
}

/** the proposals of this turn not sent yet, per bus, per node's admin subject */
const pending = new WeakMap<Pick<Bus, 'request'>, Map<string, Pending>>();
/** per bus, the admin subjects whose node refused a batch (an older release), and until when to send it proposals one by one */
const withoutBatches = new WeakMap<Pick<Bus, 'request'>, Map<string, number>>();
/** how a node that does not know an operation refuses it (runtime/wire/codec.ts, every release) */
const UNKNOWN_TYPE = /unknown message type "propose\.batch"/;
/** how long proposals to a node that refused a batch go one by one before a batch is tried again */
const NO_BATCHES_MS = 60_000;

/**
 * A proposal, sent together with the others made to the same node in the same turn of the event
 * loop (a client with many writes in flight makes several as replies come in): they leave as one
 * `propose.batch` request — one envelope, one MAC or signature, one reply — when there is more than
 * one, as a plain `propose` otherwise. Each caller gets its own command's answer or error, as if it
 * had been sent alone.
 */
function proposeBatched(to: Destination, command: unknown): Promise<unknown> {
  const subject = adminSubjects(to.prefix, to.node).admin;
  let byBus = pending.get(to.bus);
  if (byBus === undefined) {
    byBus = new Map();
    pending.set(to.bus, byBus);
  }
  const open = byBus.get(subject);
  const batch = open !== undefined && sameDestination(open.to, to) ? open : undefined;
  return new Promise((resolve, reject) => {
    if (batch !== undefined) {
      batch.items.push({ command, resolve, reject });
      return;
    }
    const started: Pending = { to, items: [{ command, resolve, reject }] };
    // another destination for the same node (another signer or timeout) goes alone; it is rare
    if (open !== undefined) {
      void sendBatch(started);
      return;
    }
    byBus.set(subject, started);
    // after this turn's promise continuations: every proposal they make joins this batch
    process.nextTick(() => {
      byBus.delete(subject);
      void sendBatch(started);
    });
  });
}

function sameDestination(a: Destination, b: Destination): boolean {
  const x = a.sender;
  const y = b.sender;
  const sameSender = x === y || (x.name === y.name && x.nodeId === y.nodeId && x.clusterId === y.clusterId && x.generation === y.generation);
  return a.bus === b.bus && a.prefix === b.prefix && a.node === b.node && sameSender && a.timeoutMs === b.timeoutMs && a.signer === b.signer;
}

/**
 * The most proposals one request carries (at most the protocol's MAX_PROPOSE_BATCH). Fewer than a
 * busy client has in flight, on purpose: with several requests in flight the leader persists one
 * batch of entries while the previous one is being replicated; one request carrying them all would
 * make every round wait for the whole of the last.
 */
const PROPOSALS_PER_REQUEST = 16;

/** send `batch` (never rejects: each of its callers is told) */
async function sendBatch(batch: Pending): Promise<void> {
  try {
    await sendEach(batch);
  } catch (err) {
    for (const item of batch.items) item.reject(err);
  }
}

/** one `propose` for a single proposal, `propose.batch`es of at most PROPOSALS_PER_REQUEST otherwise */
async function sendEach({ to, items }: Pending): Promise<void> {
  const single = (item: Pending['items'][number]) => call(to, 'propose', { command: item.command }).then(item.resolve, item.reject);
  const subject = adminSubjects(to.prefix, to.node).admin;
  const refusedUntil = withoutBatches.get(to.bus)?.get(subject);
  if (items.length === 1 || (refusedUntil !== undefined && Date.now() < refusedUntil)) {
    await Promise.all(items.map(single));
    return;
  }
  if (items.length > PROPOSALS_PER_REQUEST) {
    const parts: Array<Promise<void>> = [];
    for (let i = 0; i < items.length; i += PROPOSALS_PER_REQUEST) parts.push(sendBatch({ to, items: items.slice(i, i + PROPOSALS_PER_REQUEST) }));
    await Promise.all(parts);
    return;
  }
  let reply: AdminReply<'propose.batch'>;
  try {
    reply = await call(to, 'propose.batch', { commands: items.map((i) => i.command) });
  } catch (err) {
    const over = tooLarge(err);
    if (over !== null) {
      // more than one message carries (the bus's max payload, or any message's limit): as many parts as
      // the size says and one more, each split again if its share is still too large, down to one
      // proposal (whose own error is its caller's)
      const parts = Math.min(items.length, Math.ceil(over.bytes / over.limit) + 1);
      const each = Math.ceil(items.length / parts);
      const sends: Array<Promise<void>> = [];
      for (let i = 0; i < items.length; i += each) sends.push(sendBatch({ to, items: items.slice(i, i + each) }));
      await Promise.all(sends);
      return;
    }
    if (err instanceof ConclaveError && err.code === 'BAD_REQUEST' && UNKNOWN_TYPE.test(err.message)) {
      // a node (or the leader it forwards to) of an older release does not know batches: one by one, for a while
      let refused = withoutBatches.get(to.bus);
      if (refused === undefined) {
        refused = new Map();
        withoutBatches.set(to.bus, refused);
      }
      refused.set(subject, Date.now() + NO_BATCHES_MS);
      await Promise.all(items.map(single));
      return;
    }
    throw err;
  }
  const results = Array.isArray(reply?.results) ? reply.results : [];
  items.forEach((item, i) => {
    const outcome = results[i];
    if (typeof outcome !== 'object' || outcome === null) {
      item.reject(conclaveError('OUTCOME_UNKNOWN', `${to.node} answered a batch of ${items.length} proposals with ${results.length} outcomes: the outcome of this one is unknown (it may have been applied)`));
    } else if (outcome.ok) item.resolve(outcome.body);
    else item.reject(conclaveError(asErrorCode(outcome.error?.code), String(outcome.error?.message), outcome.error?.details));
  });
}

/** how large a request was and what carries it, when it was refused for its size; else null */
function tooLarge(err: unknown): { bytes: number; limit: number } | null {
  if (err instanceof PayloadTooLargeError) return { bytes: err.size, limit: err.maxPayload };
  if (err instanceof MessageTooLargeError) return { bytes: err.bytes, limit: MAX_MESSAGE_BYTES };
  return null;
}

/** one request, as it is: signed, or MACed in a session */
async function call<O extends AdminOp>(to: Destination, type: O, body: AdminRequest<O>): Promise<AdminReply<O>> {
  const { bus, prefix, node, sender, timeoutMs, signer } = to;
  const subjects = adminSubjects(prefix, node);
  const sessions = signer?.sessions;
  if (signer === undefined || sessions === undefined || type === OPEN_SESSION || requiresMemberAuth(type, body)) {
    const data = signer === undefined ? encode(sender, type, body) : signAdminRequest(signer, subjects.admin, sender, type, body, node);
    return send(bus, subjects, type, data, timeoutMs);
  }
  const plain: AdminSigner = { key: signer.key, now: signer.now };
  const open = (request: OpenSessionRequest) => call({ ...to, signer: plain }, OPEN_SESSION, request) as Promise<OpenSessionReply>;
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
    if (session === null) return call({ ...to, signer: plain }, type, body);
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
