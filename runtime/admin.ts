// The admin endpoint of a node: request/reply on `<prefix>.node.<name>.admin` for the CLI, the
// inspector and peers (forwarded proposals). Every request is an envelope; every reply is
// `{ok:true, body}` or `{ok:false, error:{code, message}}`. Malformed input is answered (when it
// carries a reply subject) or dropped, counted and logged at a limited rate — never thrown.
import type { z } from 'zod';
import { ConclaveError, wireError } from './errors.ts';
import type { Logger } from './log/logger.ts';
import { RateLimitedLog } from './log/rateLimit.ts';
import { type Bus, type BusMessage, type BusSubscription, PayloadTooLargeError } from './transport/types.ts';
import { type AdminBody, type AdminOp, type AdminReply, requestSchema } from './wire/adminProtocol.ts';
import { isReadOnlyOp } from './wire/adminSubjects.ts';
import { decode, encodeReply, type Envelope, type Reply } from './wire/codec.ts';

// the client side (the CLI loads it without zod): re-exported for the nodes' own calls
export { adminCall, isUnreachable } from './adminClient.ts';

export type AdminHandler<O extends AdminOp> = (body: AdminBody<O>, envelope: Envelope) => Promise<AdminReply<O>>;
/** the operations a node answers, each with the types of runtime/wire/adminProtocol.ts */
export type AdminHandlers = { [O in AdminOp]?: AdminHandler<O> };
/**
 * Checks a request before its handler runs (runtime/wire/adminAuth.ts: what only a member may send
 * must be signed by one): null to handle it, or the error it is refused with (its caller counts and logs).
 */
export type AdminAuthenticator = (envelope: Envelope, body: unknown, data: Uint8Array) => ConclaveError | null;

export class AdminServer {
  private subscriptions: BusSubscription[] = [];
  /** counters of dropped input, by reason (shown by status and the inspector) */
  readonly dropped = new Map<string, number>();
  private readonly rateLimited: RateLimitedLog;
  /** the request schema of every operation this server answers: a wrong body is refused before any handler runs */
  private readonly bodies: Record<string, z.ZodType<unknown>>;

  /** `readSubject`: where the read-only operations (wire/adminSubjects.ts) are answered too; others sent there are refused */
  constructor(
    private readonly bus: Bus,
    readonly subject: string,
    private readonly handlers: AdminHandlers,
    logger: Logger,
    private readonly readSubject?: string,
    private readonly authenticate?: AdminAuthenticator,
  ) {
    this.rateLimited = new RateLimitedLog(logger);
    this.bodies = Object.fromEntries((Object.keys(handlers) as AdminOp[]).map((op) => [op, requestSchema(op)]));
  }

  async start(): Promise<void> {
    this.subscriptions.push(this.bus.subscribe(this.subject, (msg) => this.onMessage(msg, false)));
    if (this.readSubject !== undefined) this.subscriptions.push(this.bus.subscribe(this.readSubject, (msg) => this.onMessage(msg, true)));
    await this.bus.flush();
  }

  async stop(): Promise<void> {
    for (const s of this.subscriptions) s.unsubscribe();
    this.subscriptions = [];
  }

  private drop(reason: string, detail: string, msg: BusMessage): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    this.rateLimited.warn(`admin:${reason}`, { reason, detail, bytes: msg.data.byteLength, subject: msg.subject }, 'dropped malformed admin message');
  }

  private onMessage(msg: BusMessage, readOnly: boolean): void {
    const decoded = decode(msg.data, this.bodies);
    if (!decoded.ok) {
      this.drop(decoded.failure, decoded.detail, msg);
      const code = decoded.failure === 'bad-version' ? 'PROTOCOL_VERSION' : 'BAD_REQUEST';
      this.reply(msg, { ok: false, error: { code, message: `request refused: ${decoded.detail}` } });
      return;
    }
    const { envelope, body } = decoded;
    if (readOnly && !isReadOnlyOp(envelope.type)) {
      this.drop('not-read-only', envelope.type, msg);
      this.reply(msg, { ok: false, error: { code: 'BAD_REQUEST', message: `request refused: ${envelope.type} changes the cluster and is not answered on ${this.readSubject}; send it on ${this.subject}` } });
      return;
    }
    const refused = this.authenticate?.(envelope, body, msg.data) ?? null;
    if (refused !== null) {
      this.reply(msg, { ok: false, error: { code: refused.code, message: refused.message, ...(refused.details === undefined ? {} : { details: refused.details }) } });
      return;
    }
    // decode() found a schema for this type, so the server has a handler for it
    const handler = this.handlers[envelope.type as AdminOp] as AdminHandler<AdminOp>;
    handler(body as AdminBody<AdminOp>, envelope).then(
      (result) => this.reply(msg, { ok: true, body: result ?? null }),
      (err: unknown) => {
        if (!(err instanceof ConclaveError)) this.rateLimited.warn(`admin-failed:${envelope.type}`, { err, type: envelope.type }, 'admin request failed');
        this.reply(msg, { ok: false, error: wireError(err) });
      },
    );
  }

  /** answer if asked; an answer that cannot go out (the bus closed while the request was handled) is logged, never thrown */
  private reply(msg: BusMessage, reply: Reply): void {
    if (!msg.reply) return;
    try {
      msg.respond(encodeReply(reply));
    } catch (err) {
      // an answer bigger than the bus carries: say so at once, rather than let the asker wait for a timeout
      if (reply.ok && err instanceof PayloadTooLargeError) {
        this.rateLimited.warn('admin-reply-too-large', { subject: msg.subject, bytes: err.size, maxPayload: err.maxPayload }, 'an admin answer is larger than the bus carries');
        this.reply(msg, {
          ok: false,
          error: {
            code: 'MAX_PAYLOAD',
            message: `the answer is ${err.size} bytes, more than the largest message the bus carries (${err.maxPayload} bytes): ask for less (kv list --prefix P --limit N, or get keys one by one) or raise nats-server's max_payload`,
          },
        });
        return;
      }
      this.rateLimited.warn('admin-reply-failed', { err, subject: msg.subject }, 'could not send an admin reply');
    }
  }
}
