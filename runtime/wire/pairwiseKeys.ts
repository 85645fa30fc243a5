// Pairwise keys between members, for the cheap per-message authenticator (peerSignature.ts, the
// `mac` field). An Ed25519 signature costs ≈100 µs to make and ≈250 µs to check on this project's
// machines, once per bus message; an HMAC-SHA256 with a key only the sender and the receiver hold
// costs ≈10 µs and says the same thing to that receiver: this member sent it. The keys come from the
// member keys already committed in the configuration, so nothing new is stored, joined or committed:
//   - each member key (Ed25519) is also used as an X25519 key, the standard birational map
//     (RFC 7748 §4.1: u = (1 + y) / (1 − y) mod 2^255 − 19 for the public key; for the private key the
//     first 32 bytes of SHA-512 of the seed, which is the scalar Ed25519 itself signs with);
//   - two members agree on X25519(own private, peer public), the same on both sides;
//   - one key per direction: HKDF-SHA256 of that secret, with the sender's and the receiver's public
//     keys in that order as its info, so a message cannot be reflected back to its sender.
// A key that cannot be used (not a point, an X25519 result of zero) gives no pairwise key: the sender
// signs such messages with Ed25519 instead, and the receiver refuses a `mac` it cannot check.
import { createHash, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';

/** the field's prime, 2^255 − 19 */
const P = (1n << 255n) - 19n;
const SALT = Buffer.from('conclave pairwise member key v1');
/** DER prefixes of an X25519 private (PKCS#8) and public (SPKI) key around their 32 raw bytes */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = base % P;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function toBytes(n: bigint): Buffer {
  const out = Buffer.alloc(32);
  let v = n;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** the X25519 public key of an Ed25519 public key given as committed (raw 32 bytes, base64url), or null */
export function montgomeryPublicKey(edPublicText: string): KeyObject | null {
  const raw = Buffer.from(edPublicText, 'base64url');
  if (raw.length !== 32) return null;
  const bytes = Buffer.from(raw);
  bytes[31] = bytes[31]! & 0x7f; // the top bit is the sign of x, which u does not depend on
  const y = littleEndian(bytes);
  if (y >= P || y === 1n) return null;
  const u = ((1n + y) * power((1n - y + P) % P, P - 2n)) % P;
  try {
    return createPublicKey({ key: Buffer.concat([X25519_SPKI, toBytes(u)]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

/** the X25519 private key of an Ed25519 private key */
export function montgomeryPrivateKey(edPrivate: KeyObject): KeyObject {
  const seed = edPrivate.export({ format: 'jwk' }).d;
  if (typeof seed !== 'string') throw new TypeError('not an Ed25519 private key');
  const scalar = createHash('sha512').update(Buffer.from(seed, 'base64url')).digest().subarray(0, 32);
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8, scalar]), format: 'der', type: 'pkcs8' });
}

export interface PairKeys {
  /** authenticates what this member sends to the peer */
  readonly send: KeyObject;
  /** checks what the peer sends to this member */
  readonly receive: KeyObject;
}

/** one member's pairwise keys with each peer, by the peer's committed public key, derived once */
export class PairwiseKeys {
  private readonly x25519: KeyObject;
  private readonly cache = new Map<string, PairKeys | null>();

  constructor(
    readonly ownPublic: string,
    ownPrivate: KeyObject,
  ) {
    this.x25519 = montgomeryPrivateKey(ownPrivate);
  }

  /** the keys shared with the member whose committed key is `peerPublic`; null when that key cannot make one */
  with(peerPublic: string): PairKeys | null {
    let keys = this.cache.get(peerPublic);
    if (keys !== undefined) return keys;
    keys = this.derive(peerPublic);
    // the committed configuration holds a handful of keys; a bound keeps hostile churn from growing it
    if (this.cache.size >= 1024) this.cache.clear();
    this.cache.set(peerPublic, keys);
    return keys;
  }

  private derive(peerPublic: string): PairKeys | null {
    const peer = montgomeryPublicKey(peerPublic);
    if (peer === null) return null;
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey: this.x25519, publicKey: peer });
    } catch {
      return null; // a small-order point: OpenSSL refuses an all-zero result
    }
    if (shared.every((b) => b === 0)) return null;
    const key = (from: string, to: string) => createSecretKey(Buffer.from(hkdfSync('sha256', shared, SALT, `${from}>${to}`, 32)));
    return { send: key(this.ownPublic, peerPublic), receive: key(peerPublic, this.ownPublic) };
  }
}
