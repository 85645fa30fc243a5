// The encoding half of the codec, and the admin replies: what a tool (the CLI) needs to ask a node
// and read its answer, without zod. A one-shot `conclave status` spends its time loading modules,
// and zod alone costs more than the whole budget (see README, "The CLI's start-up"): the reply is two
// shapes, checked here by `checkReply`; test/fuzz/reply.test.ts holds it equal to the zod schema it
// replaced. Everything a NODE decodes (envelopes, bodies) is validated by zod in codec.ts.
import { Buffer } from 'node:buffer';
import type { Envelope } from './codec.ts';
import { MAX_MESSAGE_DEPTH, textNestsDeeperThan } from './limits.ts';

/**
 * The newest protocol version this build speaks. A member sends what its cluster's committed cluster
 * version says (the configuration's `version`, actors/clusterVersion.ts), so a mixed-version cluster
 * speaks what its oldest member reads; a node of a release that does not speak it refuses the message
 * (decode: `bad-version`), naming both. The versions:
 *   1  release 0.1: members without keys, peer messages unauthenticated;
 *   2  every member's key is committed in the configuration: peer messages are MACed or signed
 *      (peerSignature.ts), forwards are member-signed, and a node of release 0.1 is refused.
 */
export const PROTOCOL_VERSION = 2;
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

export interface Sender {
  name: string;
  nodeId: string | null;
  clusterId: string | null;
  generation?: number;
  /** the protocol version its messages state (a member: its cluster's committed version); absent: MIN_PROTOCOL_VERSION, which every release reads */
  version?: number;
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

/** `auth`: the time and nonce of a signed admin request (runtime/wire/adminAuth.ts), or the operator session of a MACed one (operatorSession.ts) */
export function encode(sender: Sender, type: string, body: unknown, auth?: { ts: number; nonce: string } | { session: string }): Uint8Array {
  const envelope: Envelope = {
    v: sender.version ?? MIN_PROTOCOL_VERSION,
    from: sender.name,
    nodeId: sender.nodeId,
    clusterId: sender.clusterId,
    type,
    body,
  };
  if (sender.generation !== undefined) envelope.gen = sender.generation;
  if (auth !== undefined) envelope.auth = auth;
  return utf8(JSON.stringify(envelope), type);
}

/**
 * The same envelope around a body already serialized as JSON, in parts whose concatenation is the
 * body's JSON: for large bodies whose parts were stringified once already (snapshot chunks measure
 * each pair's JSON to fill a chunk). The parts are written straight into the message's bytes: no
 * string of the whole message is built (on V8 a string over 128 KiB is a costly large object).
 */
export function encodeJsonBody(sender: Sender, type: string, bodyJson: string | readonly string[]): Uint8Array {
  const head: Omit<Envelope, 'body'> = { v: sender.version ?? MIN_PROTOCOL_VERSION, from: sender.name, nodeId: sender.nodeId, clusterId: sender.clusterId, type };
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

/**
 * A message with a binary tail: [TAILED][the envelope's length: u32 BE][the envelope as JSON][the tail].
 * JSON text never starts with a NUL byte, so a decoder tells the two kinds apart by the first byte;
 * a node that does not know this kind refuses it as not JSON. Sent only to a peer that said it reads
 * it (the snapshot ack's `accepts`, actors/peerWire.ts). The tail's bytes are written by `tail.write`.
 */
export const TAILED = 0x00;
/** the bytes before a tailed message's envelope */
export const TAILED_HEADER = 5;

export function encodeTailed(sender: Sender, type: string, body: unknown, tail: { bytes: number; write(out: Buffer, at: number): number }): Uint8Array {
  const head: Envelope = { v: sender.version ?? MIN_PROTOCOL_VERSION, from: sender.name, nodeId: sender.nodeId, clusterId: sender.clusterId, type, body };
  if (sender.generation !== undefined) head.gen = sender.generation;
  const json = JSON.stringify(head);
  const headBytes = Buffer.byteLength(json, 'utf8');
  const bytes = TAILED_HEADER + headBytes + tail.bytes;
  if (bytes > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(type, bytes);
  const out = Buffer.allocUnsafe(bytes);
  out[0] = TAILED;
  out.writeUInt32BE(headBytes, 1);
  out.write(json, TAILED_HEADER, 'utf8');
  if (tail.write(out, TAILED_HEADER + headBytes) !== bytes) throw new Error(`encodeTailed: the tail of ${type} is not the ${tail.bytes} bytes it announced`);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function utf8(text: string, type: string): Uint8Array {
  // Buffer.from is several times faster than TextEncoder on large texts; the result is a plain Uint8Array, as before
  const buffer = Buffer.from(text, 'utf8');
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (bytes.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(type, bytes.byteLength);
  return bytes;
}

// ---- admin replies: request/reply between tools (CLI, inspector) and a node ----

export type Reply = { ok: true; body: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } };

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
  const reply = checkReply(raw);
  if (typeof reply === 'string') return { ok: false, error: { code: 'BAD_REPLY', message: `malformed reply: ${reply}` } };
  return reply;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{ok: true, body}` or `{ok: false, error: {code, message, details?}}`, unknown keys dropped; else what is wrong */
export function checkReply(raw: unknown): Reply | string {
  if (!isRecord(raw)) return '(root): not an object';
  if (raw.ok === true) return 'body' in raw ? { ok: true, body: raw.body } : 'body: missing';
  if (raw.ok !== false) return 'ok: must be true or false';
  const error = raw.error;
  if (!isRecord(error)) return 'error: not an object';
  if (typeof error.code !== 'string') return 'error.code: not a string';
  if (typeof error.message !== 'string') return 'error.message: not a string';
  return { ok: false, error: 'details' in error ? { code: error.code, message: error.message, details: error.details } : { code: error.code, message: error.message } };
}
