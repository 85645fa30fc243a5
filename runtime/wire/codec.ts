// One versioned envelope for every peer and admin message, and the one place that decodes and
// validates what arrives from the bus. Decoding never throws: it returns a typed failure that the
// caller counts and logs (rate-limited).
import { Buffer, isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { MAX_MESSAGE_DEPTH, MAX_VALUE_DEPTH, textNestsDeeperThan } from './limits.ts';

/** Bumped on an incompatible change of the envelope or of a message body. */
export const PROTOCOL_VERSION = 1;
/** The oldest protocol version this build still speaks. */
export const MIN_PROTOCOL_VERSION = 1;
/** Under NATS's default max_payload (1 MiB) so a message never fails at the server. */
export const MAX_MESSAGE_BYTES = 1024 * 1024 - 1024;

/**
 * Room kept in every message for what is not the payload proper: the envelope (sender, ids,
 * generation), a raft message's header, an entry's fields, a snapshot chunk's header.
 */
export const MESSAGE_RESERVE_BYTES = 4096;

/** What fits one message on a bus whose max payload is `maxPayload` (NATS tells it; default ours). */
export interface WireLimits {
  /** the largest encoded message this node sends */
  messageBytes: number;
  /** the largest command (its JSON, in UTF-8 bytes) accepted into the log: it must travel alone in one append */
  commandBytes: number;
  /** the most bytes of entries one append carries (the raft core's maxBytesPerMessage) */
  appendBytes: number;
  /** the most bytes of entries in flight to one follower (the raft core's maxInflightBytes): heartbeats share the link */
  inflightBytes: number;
}

export function wireLimits(maxPayload: number | undefined): WireLimits {
  const messageBytes = Math.min(MAX_MESSAGE_BYTES, maxPayload ?? MAX_MESSAGE_BYTES);
  const commandBytes = Math.max(0, messageBytes - MESSAGE_RESERVE_BYTES);
  // an append of one command of the largest size still fits: reserve − the entry's fields ≥ the headers
  const appendBytes = Math.max(1, messageBytes - MESSAGE_RESERVE_BYTES / 2);
  return { messageBytes, commandBytes, appendBytes, inflightBytes: 8 * appendBytes };
}

const nodeNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);
const uuidSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

export const envelopeSchema = z.object({
  v: z.number().int().min(0),
  /** sender's node name ('cli' or another tool name for admin requests) */
  from: z.string().min(1).max(63),
  nodeId: uuidSchema.nullable(),
  clusterId: uuidSchema.nullable(),
  /** identity generation of the sender's store (disaster recovery bumps it) */
  gen: z.number().int().min(0).optional(),
  type: z.string().min(1).max(64),
  body: z.unknown(),
});
export type Envelope = z.infer<typeof envelopeSchema>;

export interface Sender {
  name: string;
  nodeId: string | null;
  clusterId: string | null;
  generation?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class MessageTooLargeError extends Error {
  readonly code = 'TOO_LARGE';
  constructor(
    readonly type: string,
    readonly bytes: number,
  ) {
    super(`message ${type} is ${bytes} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`);
    this.name = 'MessageTooLargeError';
  }
}

export function encode(sender: Sender, type: string, body: unknown): Uint8Array {
  const envelope: Envelope = {
    v: PROTOCOL_VERSION,
    from: sender.name,
    nodeId: sender.nodeId,
    clusterId: sender.clusterId,
    type,
    body,
  };
  if (sender.generation !== undefined) envelope.gen = sender.generation;
  return utf8(JSON.stringify(envelope), type);
}

/**
 * The same envelope around a body already serialized as JSON, in parts whose concatenation is the
 * body's JSON: for large bodies whose parts were stringified once already (snapshot chunks measure
 * each pair's JSON to fill a chunk). The parts are written straight into the message's bytes: no
 * string of the whole message is built (on V8 a string over 128 KiB is a costly large object).
 */
export function encodeJsonBody(sender: Sender, type: string, bodyJson: string | readonly string[]): Uint8Array {
  const head: Omit<Envelope, 'body'> = { v: PROTOCOL_VERSION, from: sender.name, nodeId: sender.nodeId, clusterId: sender.clusterId, type };
  if (sender.generation !== undefined) head.gen = sender.generation;
  const parts = [`${JSON.stringify(head).slice(0, -1)},"body":`, ...(typeof bodyJson === 'string' ? [bodyJson] : bodyJson), '}'];
  let bytes = 0;
  for (const part of parts) bytes += Buffer.byteLength(part, 'utf8');
  if (bytes > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(type, bytes);
  const buffer = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const part of parts) at += buffer.write(part, at, 'utf8');
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function utf8(text: string, type: string): Uint8Array {
  // Buffer.from is several times faster than TextEncoder on large texts; the result is a plain Uint8Array, as before
  const buffer = Buffer.from(text, 'utf8');
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (bytes.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(type, bytes.byteLength);
  return bytes;
}

export type DecodeFailure = 'too-large' | 'too-deep' | 'not-utf8' | 'not-json' | 'bad-envelope' | 'bad-version' | 'bad-body';
export type Decoded<T> =
  | { ok: true; envelope: Envelope; body: T }
  | { ok: false; failure: DecodeFailure; detail: string; version?: number };

/** Decode and validate an envelope; `bodies` maps a message type to the schema of its body. */
export function decode<T>(data: Uint8Array, bodies: Record<string, z.ZodType<T>>): Decoded<T> {
  if (data.byteLength > MAX_MESSAGE_BYTES) {
    return { ok: false, failure: 'too-large', detail: `${data.byteLength} bytes > ${MAX_MESSAGE_BYTES}` };
  }
  let text: string;
  try {
    text = utf8Text(data);
  } catch {
    return { ok: false, failure: 'not-utf8', detail: 'payload is not valid UTF-8' };
  }
  // parsing and validating recurse: bound the nesting first
  if (textNestsDeeperThan(text, MAX_MESSAGE_DEPTH)) {
    return {
      ok: false,
      failure: 'too-deep',
      detail: `message nests arrays/objects more than ${MAX_MESSAGE_DEPTH} levels deep (a value may nest at most ${MAX_VALUE_DEPTH} levels)`,
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, failure: 'not-json', detail: (err as Error).message };
  }
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, failure: 'bad-envelope', detail: summarizeIssues(parsed.error) };
  const envelope = parsed.data;
  if (envelope.v < MIN_PROTOCOL_VERSION || envelope.v > PROTOCOL_VERSION) {
    return {
      ok: false,
      failure: 'bad-version',
      version: envelope.v,
      detail: `protocol version ${envelope.v} is not supported (this node speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION})`,
    };
  }
  const schema = bodies[envelope.type];
  if (!schema) return { ok: false, failure: 'bad-body', detail: `unknown message type ${JSON.stringify(envelope.type)}` };
  const body = schema.safeParse(envelope.body);
  if (!body.success) return { ok: false, failure: 'bad-body', detail: `${envelope.type}: ${summarizeIssues(body.error)}` };
  return { ok: true, envelope, body: body.data };
}

/** the text of UTF-8 bytes; throws on invalid UTF-8 (validated natively: several times faster than a fatal TextDecoder) */
function utf8Text(data: Uint8Array): string {
  if (!isUtf8(data)) throw new TypeError('invalid UTF-8');
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
}

function summarizeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

// ---- admin replies: request/reply between tools (CLI, inspector) and a node ----

export const replySchema = z.union([
  z.object({ ok: z.literal(true), body: z.unknown() }),
  z.object({
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  }),
]);
export type Reply = z.infer<typeof replySchema>;

export function encodeReply(reply: Reply): Uint8Array {
  return encoder.encode(JSON.stringify(reply));
}

export function decodeReply(data: Uint8Array): Reply {
  let raw: unknown;
  try {
    const text = decoder.decode(data);
    if (textNestsDeeperThan(text, MAX_MESSAGE_DEPTH)) throw new Error(`it nests more than ${MAX_MESSAGE_DEPTH} levels deep`);
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: { code: 'BAD_REPLY', message: `unreadable reply: ${(err as Error).message}` } };
  }
  const parsed = replySchema.safeParse(raw);
  if (!parsed.success) return { ok: false, error: { code: 'BAD_REPLY', message: `malformed reply: ${summarizeIssues(parsed.error)}` } };
  return parsed.data;
}

export { nodeNameSchema, uuidSchema };
