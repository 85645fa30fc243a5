// Signed peer messages (member identity). A member signs every message it publishes on a peer
// subject with its member key (runtime/store/memberKey.ts), once per bus message — a raft batch, a
// ping, a snapshot chunk or ack — never per entry. The signature is the envelope's last field:
//   {…the envelope…,"sig":"<Ed25519 signature, base64url>"}
// so a node of an older release, whose envelope schema drops unknown keys, reads the message as before.
// What is signed: a domain tag, the subject (which names the receiver and the prefix) and the whole
// message as it would be without the field (sender name, node id, cluster id, generation, type and
// body — the raft messages' from/to/term — and a snapshot chunk's binary tail), hashed with SHA-256
// in parts, so neither side copies the message to sign or check it.
import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { TAILED, TAILED_HEADER } from './envelope.ts';

/** a member key as committed in the configuration: raw 32-byte Ed25519 public key, base64url */
export const MEMBER_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * BENCH ONLY, UNSAFE: `CONCLAVE_UNSAFE_NO_PEER_AUTH=1` in a controller's environment turns member
 * authentication off in that process — its peer messages and forwarded admin requests go unsigned,
 * and what it receives is taken without a signature check, from anyone who can publish on its
 * subjects. It exists so that `npm run bench` can measure what authentication costs (bench/lib/authCost.ts);
 * never set it on a real cluster. Read here, once, from the environment at start-up: nothing that
 * arrives on the bus can turn it on or off. Set it on every member or none (a member with it set
 * sends unsigned messages, which a member without it drops once the sender's key is committed).
 * The member layer honours it where it signs and checks (actors/memberParts.ts, actors/inbound.ts,
 * actors/controller/adminAuth.ts); the signature functions below always sign and check, so operator
 * keys (operatorAuth.ts) are checked whatever it says.
 */
export const UNSAFE_NO_PEER_AUTH: boolean = process.env.CONCLAVE_UNSAFE_NO_PEER_AUTH === '1';

const DOMAIN = Buffer.from('conclave peer message v1\0');
const FIELD = Buffer.from(',"sig":"');
/** an Ed25519 signature (64 bytes) in base64url */
const SIG_CHARS = 86;
/** what signing adds to the envelope: `,"sig":"…"` before its closing brace */
export const SIGNATURE_BYTES = FIELD.length + SIG_CHARS + 1;
const CLOSE = Buffer.from('}');
const QUOTE_CLOSE = Buffer.from('"}');

/** where a message's JSON envelope ends (a tailed message: before its tail), or -1 when it has none */
function envelopeEnd(data: Uint8Array): number {
  if (data.byteLength > 0 && data[0] === TAILED) {
    if (data.byteLength < TAILED_HEADER) return -1;
    const end = TAILED_HEADER + Buffer.from(data.buffer, data.byteOffset, data.byteLength).readUInt32BE(1);
    return end <= data.byteLength ? end : -1;
  }
  return data.byteLength;
}

/** the digest that is signed: the unsigned message in its parts (the header of a tailed one as unsigned) */
function digest(subject: string, parts: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256').update(DOMAIN).update(subject).update('\0');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** `data` (an encoded peer message, envelope.ts) signed with `key` for `subject` */
export function signPeerMessage(key: KeyObject, subject: string, data: Uint8Array): Uint8Array {
  const end = envelopeEnd(data);
  if (end < 1 || data[end - 1] !== 0x7d) throw new TypeError('signPeerMessage: not an encoded envelope');
  const signature = sign(null, digest(subject, [data]), key).toString('base64url');
  const out = Buffer.allocUnsafe(data.byteLength + SIGNATURE_BYTES);
  out.set(data.subarray(0, end - 1), 0);
  let at = end - 1;
  at += FIELD.copy(out, at);
  at += out.write(signature, at, 'latin1');
  at += QUOTE_CLOSE.copy(out, at);
  out.set(data.subarray(end), at);
  if (data[0] === TAILED) out.writeUInt32BE(end + SIGNATURE_BYTES - TAILED_HEADER, 1);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export type SignatureCheck = 'valid' | 'unsigned' | 'bad-signature';

/** whether `data` carries a signature by `publicKey` for `subject` */
export function checkPeerSignature(publicKey: KeyObject, subject: string, data: Uint8Array): SignatureCheck {
  const end = envelopeEnd(data);
  // where the field starts: it replaced the envelope's closing brace
  const at = end - SIGNATURE_BYTES - 1;
  if (at < 1) return 'unsigned';
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (!bytes.subarray(at, at + FIELD.length).equals(FIELD) || !bytes.subarray(end - 2, end).equals(QUOTE_CLOSE)) return 'unsigned';
  const text = bytes.toString('latin1', at + FIELD.length, end - 2);
  const signature = Buffer.from(text, 'base64url');
  // Node's base64 decoder skips what is not base64: only the one canonical text of 64 bytes is taken
  if (signature.length !== 64 || signature.toString('base64url') !== text) return 'bad-signature';
  const parts: Uint8Array[] = [];
  if (data[0] === TAILED) {
    const header = Buffer.from(bytes.subarray(0, TAILED_HEADER));
    header.writeUInt32BE(at + 1 - TAILED_HEADER, 1);
    parts.push(header, bytes.subarray(TAILED_HEADER, at), CLOSE, bytes.subarray(end));
  } else parts.push(bytes.subarray(0, at), CLOSE);
  return verify(null, digest(subject, parts), publicKey, signature) ? 'valid' : 'bad-signature';
}

const publicKeys = new Map<string, KeyObject | null>();

/** the public key committed as `text` (MEMBER_KEY_PATTERN), cached; null when it is not a usable Ed25519 key */
export function memberPublicKey(text: string): KeyObject | null {
  let key = publicKeys.get(text);
  if (key !== undefined) return key;
  try {
    key = MEMBER_KEY_PATTERN.test(text) ? createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: text }, format: 'jwk' }) : null;
  } catch {
    key = null;
  }
  if (publicKeys.size >= 4096) publicKeys.clear();
  publicKeys.set(text, key);
  return key;
}
