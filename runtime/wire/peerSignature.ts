// Authenticated peer messages (member identity). A member authenticates every message it publishes
// on a peer subject, once per bus message — a raft batch, a ping, a snapshot chunk or ack — never per
// entry, in one of two ways, as the envelope's last field:
//   {…the envelope…,"mac":"<boot>.<seq>.<HMAC-SHA256, base64url>"}  to a member whose key is committed:
//       with the key that only the two of them share (pairwiseKeys.ts), ≈10 µs to make or check; boot
//       and seq (decimal) say when it was sent — the sender's boot counter (runtime/store/boot.ts)
//       and a counter of this process that only grows (nextPeerSeq) — so that the receiver takes
//       each sender's messages only in increasing (boot, seq) order (runtime/wire/replayWindow.ts):
//       a copy recorded from the bus and published again is refused;
//   {…the envelope…,"sig":"<Ed25519 signature, base64url>"}  to anyone else (a node still joining):
//       with its member key (runtime/store/memberKey.ts), ≈100 µs to make and ≈250 µs to check.
// A node of an older release, whose envelope schema drops unknown keys, reads either as before.
// What is covered: a domain tag, the subject (which names the receiver and the prefix), a MAC's
// (boot, seq), and the whole message as it would be without the field (sender name, node id, cluster id, generation, type and
// body — the raft messages' from/to/term — and a snapshot chunk's binary tail), hashed in parts, so
// neither side copies the message to sign or check it. Member-signed admin requests (adminAuth.ts)
// always use the signature: every member must be able to check them.
import { createHash, createHmac, createPublicKey, type Hash, type Hmac, type KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import { TAILED, TAILED_HEADER } from './envelope.ts';
import type { PairKeys } from './pairwiseKeys.ts';

/** a raw 32-byte public key as text, base64url (publicKeyText below): member, operator and session keys */
export const KEY_TEXT_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** a member key as committed in the configuration: raw 32-byte Ed25519 public key, base64url */
export const MEMBER_KEY_PATTERN = KEY_TEXT_PATTERN;

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
// v2: the MAC covers (boot, seq); no release sent v1 (`mac` without them), which is refused
const MAC_DOMAIN = Buffer.from('conclave peer message mac v2\0');
const SIG_FIELD = Buffer.from(',"sig":"');
const MAC_FIELD = Buffer.from(',"mac":"');
/** an Ed25519 signature (64 bytes) in base64url */
const SIG_CHARS = 86;
/** an HMAC-SHA256 (32 bytes) in base64url */
const MAC_CHARS = 43;
/** what signing adds to the envelope: `,"sig":"…"` before its closing brace */
export const SIGNATURE_BYTES = SIG_FIELD.length + SIG_CHARS + 1;
/** the most a boot counter or seq may have in digits (both stay safe integers) */
const COUNTER_DIGITS = 16;
/** what a pairwise MAC adds at most: `,"mac":"<boot>.<seq>.…"` before the closing brace */
export const MAC_BYTES = MAC_FIELD.length + 2 * (COUNTER_DIGITS + 1) + MAC_CHARS + 1;
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

/** when a MACed message was sent: its sender's boot counter, and a number of its process that only grows */
export interface PeerCounter {
  readonly boot: number;
  readonly seq: number;
}

let lastSeq = 0;

/** the next seq of this process: every MACed message it publishes gets a larger one than the last */
export function nextPeerSeq(): number {
  return ++lastSeq;
}

/** the unsigned message in its parts, hashed (a signature) or MACed (`hash` seeded with the key; `counter`: its text, covered too) */
function digestInto(hash: Hash | Hmac, domain: Buffer, subject: string, parts: readonly Uint8Array[], counter?: string): Buffer {
  hash.update(domain).update(subject).update('\0');
  if (counter !== undefined) hash.update(counter, 'latin1').update('\0');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** `data` with `field` and `text` put before its envelope's closing brace */
function withField(data: Uint8Array, field: Buffer, text: string, end: number): Uint8Array {
  const added = field.length + text.length + 1;
  const out = Buffer.allocUnsafe(data.byteLength + added);
  out.set(data.subarray(0, end - 1), 0);
  let at = end - 1;
  at += field.copy(out, at);
  at += out.write(text, at, 'latin1');
  at += QUOTE_CLOSE.copy(out, at);
  out.set(data.subarray(end), at);
  if (data[0] === TAILED) out.writeUInt32BE(end + added - TAILED_HEADER, 1);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function envelopeEndOf(data: Uint8Array, caller: string): number {
  const end = envelopeEnd(data);
  if (end < 1 || data[end - 1] !== 0x7d) throw new TypeError(`${caller}: not an encoded envelope`);
  return end;
}

/** `data` (an encoded peer message, envelope.ts) signed with `key` for `subject` */
export function signPeerMessage(key: KeyObject, subject: string, data: Uint8Array): Uint8Array {
  const end = envelopeEndOf(data, 'signPeerMessage');
  const signature = sign(null, digestInto(createHash('sha256'), DOMAIN, subject, [data]), key).toString('base64url');
  return withField(data, SIG_FIELD, signature, end);
}

function counterNumber(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1;
}

/**
 * `data` authenticated for `subject` with the pairwise key `sendKey` (pairwiseKeys.ts: only its
 * receiver can check it), sent at `counter` (its sender's boot counter and nextPeerSeq(), both ≥ 1)
 */
export function macPeerMessage(sendKey: KeyObject, subject: string, data: Uint8Array, counter: PeerCounter): Uint8Array {
  const end = envelopeEndOf(data, 'macPeerMessage');
  if (!counterNumber(counter.boot) || !counterNumber(counter.seq)) throw new TypeError(`macPeerMessage: boot and seq must be safe integers ≥ 1 (${counter.boot}, ${counter.seq})`);
  const text = `${counter.boot}.${counter.seq}`;
  const mac = digestInto(createHmac('sha256', sendKey), MAC_DOMAIN, subject, [data], text).toString('base64url');
  return withField(data, MAC_FIELD, `${text}.${mac}`, end);
}

export type SignatureCheck = 'valid' | 'unsigned' | 'bad-signature';

/** checkPeerAuth's verdict; `counter`: a valid MAC's (boot, seq), null for a signature or a refusal */
export interface PeerAuthCheck {
  readonly check: SignatureCheck;
  readonly counter: PeerCounter | null;
}

interface Trailer {
  kind: 'sig' | 'mac';
  /** the authenticator, decoded */
  value: Buffer;
  /** the message without the field, in parts */
  parts: Uint8Array[];
  /** a MAC's (boot, seq), and their text as covered */
  counter?: PeerCounter;
  counterText?: string;
}

/** a MAC trailer's value: `<boot>.<seq>.<mac>`, each number canonical (no leading zero, ≥ 1) */
const MAC_VALUE = new RegExp(`^([1-9][0-9]{0,${COUNTER_DIGITS - 1}})\\.([1-9][0-9]{0,${COUNTER_DIGITS - 1}})\\.([A-Za-z0-9_-]{${MAC_CHARS}})$`);

/**
 * The `mac` field a message's envelope (ending with `"}` at `end`) ends with: where it starts, its
 * (boot, seq) and their text; null when there is none; 'bad' when its value is not of that form (a
 * MAC without (boot, seq), as no release sent, included).
 */
function macField(bytes: Buffer, end: number): { at: number; counter: PeerCounter; text: string } | null | 'bad' {
  // base64url and digits hold neither `,` nor `"`: the last field start in reach is the trailer's
  // (in reach: twice what a valid one takes, so that one a little too long is refused, not ignored)
  const from = Math.max(1, end - 2 * MAC_BYTES);
  const found = bytes.subarray(from, end - 2).lastIndexOf(MAC_FIELD);
  if (found < 0) return null;
  const at = from + found;
  const value = MAC_VALUE.exec(bytes.toString('latin1', at + MAC_FIELD.length, end - 2));
  if (value === null) return 'bad';
  const counter = { boot: Number(value[1]), seq: Number(value[2]) };
  if (!counterNumber(counter.boot) || !counterNumber(counter.seq)) return 'bad';
  return { at, counter, text: `${value[1]}.${value[2]}` };
}

/** the `sig` or `mac` field a message ends with; null when it has none; 'bad' when its text is not canonical */
function trailer(data: Uint8Array): Trailer | null | 'bad' {
  const end = envelopeEnd(data);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (end < 2 || !bytes.subarray(end - 2, end).equals(QUOTE_CLOSE)) return null;
  for (const [kind, field, chars, length] of [['sig', SIG_FIELD, SIG_CHARS, 64], ['mac', MAC_FIELD, MAC_CHARS, 32]] as const) {
    // where the field starts: it replaced the envelope's closing brace
    let at = end - (field.length + chars + 1) - 1;
    let mac: ReturnType<typeof macField> = null;
    if (kind === 'mac') {
      const found = macField(bytes, end);
      if (found === null) continue;
      if (found === 'bad') return 'bad';
      mac = found;
      at = mac.at;
    } else if (at < 1 || !bytes.subarray(at, at + field.length).equals(field)) continue;
    const text = bytes.toString('latin1', end - 2 - chars, end - 2);
    const value = Buffer.from(text, 'base64url');
    // Node's base64 decoder skips what is not base64: only the one canonical text of the right length is taken
    if (value.length !== length || value.toString('base64url') !== text) return 'bad';
    const parts: Uint8Array[] = [];
    if (data[0] === TAILED) {
      const header = Buffer.from(bytes.subarray(0, TAILED_HEADER));
      header.writeUInt32BE(at + 1 - TAILED_HEADER, 1);
      parts.push(header, bytes.subarray(TAILED_HEADER, at), CLOSE, bytes.subarray(end));
    } else parts.push(bytes.subarray(0, at), CLOSE);
    return mac === null ? { kind, value, parts } : { kind, value, parts, counter: mac.counter, counterText: mac.text };
  }
  return null;
}

/** whether `data` carries a signature by `publicKey` for `subject` (a pairwise MAC does not count: see checkPeerAuth) */
export function checkPeerSignature(publicKey: KeyObject, subject: string, data: Uint8Array): SignatureCheck {
  const found = trailer(data);
  if (found === 'bad') return 'bad-signature';
  if (found === null || found.kind !== 'sig') return 'unsigned';
  return verify(null, digestInto(createHash('sha256'), DOMAIN, subject, found.parts), publicKey, found.value) ? 'valid' : 'bad-signature';
}

const UNSIGNED: PeerAuthCheck = Object.freeze({ check: 'unsigned', counter: null });
const BAD: PeerAuthCheck = Object.freeze({ check: 'bad-signature', counter: null });
const SIGNED: PeerAuthCheck = Object.freeze({ check: 'valid', counter: null });

/**
 * Whether `data` comes from the member whose key is `publicKey`: signed with it, or MACed with the
 * key `pair` shares between that member and this one (pairwiseKeys.ts; null: none can be made, so a
 * MAC cannot be checked and is refused). A valid MAC comes with the (boot, seq) it covers: whether
 * the message is new is the caller's to judge (replayWindow.ts).
 */
export function checkPeerAuth(publicKey: KeyObject, pair: PairKeys | null, subject: string, data: Uint8Array): PeerAuthCheck {
  const found = trailer(data);
  if (found === 'bad') return BAD;
  if (found === null) return UNSIGNED;
  if (found.kind === 'sig') return verify(null, digestInto(createHash('sha256'), DOMAIN, subject, found.parts), publicKey, found.value) ? SIGNED : BAD;
  if (pair === null || found.counter === undefined) return BAD;
  const expected = digestInto(createHmac('sha256', pair.receive), MAC_DOMAIN, subject, found.parts, found.counterText);
  return timingSafeEqual(expected, found.value) ? { check: 'valid', counter: found.counter } : BAD;
}

const publicKeys = new Map<string, KeyObject | null>();

/** a public Ed25519 or X25519 key as text: its raw 32 bytes in base64url (how member, operator and session keys travel) */
export function publicKeyText(key: KeyObject): string {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new TypeError(`not an Ed25519 or X25519 public key (${key.asymmetricKeyType})`);
  return x;
}

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

// ---- key proofs: a member of a cluster upgraded from 0.1 shows the key it will be known by ----

const KEY_PROOF_DOMAIN = 'conclave member key proof v1\n';
/** an Ed25519 signature (64 bytes) in base64url */
export const KEY_PROOF_PATTERN = /^[A-Za-z0-9_-]{86}$/;

function keyProofText(clusterId: string, nodeId: string, key: string): Buffer {
  return Buffer.from(`${KEY_PROOF_DOMAIN}${clusterId}\n${nodeId}\n${key}`);
}

/**
 * Proof that the holder of member key `key` states it for node `nodeId` of cluster `clusterId`: signed
 * with the key itself. It proves possession, not identity — in a cluster whose members have no
 * committed keys nothing on the bus is authenticated, and the key a member states there is taken on
 * first use (actors/clusterVersion.ts says how a conflict is handled).
 */
export function proveMemberKey(privateKey: KeyObject, clusterId: string, nodeId: string, key: string): string {
  return sign(null, keyProofText(clusterId, nodeId, key), privateKey).toString('base64url');
}

export function checkMemberKeyProof(clusterId: string, nodeId: string, key: string, proof: string): boolean {
  const publicKey = memberPublicKey(key);
  if (publicKey === null || !KEY_PROOF_PATTERN.test(proof)) return false;
  return verify(null, keyProofText(clusterId, nodeId, key), publicKey, Buffer.from(proof, 'base64url'));
}
