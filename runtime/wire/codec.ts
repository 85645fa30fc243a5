// One versioned envelope for every peer and admin message, and the one place that decodes and
// validates what a node receives from the bus. Decoding never throws: it returns a typed failure that
// the caller counts and logs (rate-limited). The encoding half and the admin replies (what the CLI
// needs, without zod) are in envelope.ts, re-exported here.
import { Buffer, isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { MAX_MESSAGE_BYTES, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, TAILED, TAILED_HEADER } from './envelope.ts';
import { MAX_MESSAGE_DEPTH, MAX_VALUE_DEPTH, textNestsDeeperThan } from './limits.ts';

export * from './envelope.ts';

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
  /**
   * a signed admin request's time and nonce (runtime/wire/adminAuth.ts; the signature is the `sig`
   * field), or the operator session of a MACed one (operatorSession.ts; the MAC is the `mac` field)
   */
  auth: z.union([z.object({ ts: z.number().int().min(0), nonce: z.string().regex(/^[0-9a-f]{32}$/) }), z.object({ session: z.string().regex(/^[0-9a-f]{32}$/) })]).optional(),
});
export type Envelope = z.infer<typeof envelopeSchema>;

export type DecodeFailure = 'too-large' | 'too-deep' | 'not-utf8' | 'not-json' | 'bad-envelope' | 'bad-version' | 'bad-body';
export type Decoded<T> =
  | { ok: true; envelope: Envelope; body: T; tail?: Uint8Array }
  | { ok: false; failure: DecodeFailure; detail: string; version?: number };

/**
 * Decode and validate an envelope; `bodies` maps a message type to the schema of its body, `tailed`
 * names the types that may carry a binary tail (envelope.ts, encodeTailed): on any other a tail is refused.
 */
export function decode<T>(data: Uint8Array, bodies: Record<string, z.ZodType<T>>, tailed: ReadonlySet<string> = NONE): Decoded<T> {
  if (data.byteLength > MAX_MESSAGE_BYTES) {
    return { ok: false, failure: 'too-large', detail: `${data.byteLength} bytes > ${MAX_MESSAGE_BYTES}` };
  }
  let tail: Uint8Array | undefined;
  if (data.byteLength > 0 && data[0] === TAILED) {
    const headerBytes = data.byteLength >= TAILED_HEADER ? new DataView(data.buffer, data.byteOffset + 1, 4).getUint32(0) : Number.POSITIVE_INFINITY;
    if (TAILED_HEADER + headerBytes > data.byteLength) return { ok: false, failure: 'bad-envelope', detail: 'the envelope of a message with a binary tail is past its end' };
    tail = data.subarray(TAILED_HEADER + headerBytes);
    data = data.subarray(TAILED_HEADER, TAILED_HEADER + headerBytes);
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
      detail: `protocol version ${envelope.v} is not supported (this node speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}): ${
        envelope.v > PROTOCOL_VERSION ? `the sender's cluster runs a newer version; upgrade this node to a release that speaks ${envelope.v}` : "the sender's release is too old for this one; upgrade the sender"
      }`,
    };
  }
  const schema = bodies[envelope.type];
  if (!schema) return { ok: false, failure: 'bad-body', detail: `unknown message type ${JSON.stringify(envelope.type)}` };
  if (tail !== undefined && !tailed.has(envelope.type)) return { ok: false, failure: 'bad-body', detail: `${envelope.type}: a binary tail this type does not carry` };
  const body = schema.safeParse(envelope.body);
  if (!body.success) return { ok: false, failure: 'bad-body', detail: `${envelope.type}: ${summarizeIssues(body.error)}` };
  return tail === undefined ? { ok: true, envelope, body: body.data } : { ok: true, envelope, body: body.data, tail };
}

const NONE: ReadonlySet<string> = new Set();

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

export { nodeNameSchema, uuidSchema };
