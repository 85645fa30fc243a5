// Member-signed admin requests. Some admin operations speak for the cluster and only a member may
// send them: a removal notice (`member.removed`) and any request a member forwards to the leader on a
// client's behalf (`forwarded: true`, which the leader takes without forwarding again). The sending
// member signs such a request with its member key (runtime/store/memberKey.ts), with the same
// signature as its peer messages (runtime/wire/peerSignature.ts) — or, to a member whose key is
// committed, MACs it with the pairwise key the two share (pairwiseKeys.ts), as its peer messages
// are, ≈20× cheaper for the receiver: a forward costs no signature. Either covers the whole envelope — operation,
// body, sender name and node id, cluster id, generation — plus a time and a nonce (`auth`), bound to
// the receiver's admin subject. The receiver checks it against the key committed for that node id in
// its own configuration, refuses a time more than MEMBER_AUTH_SKEW_MS away from its own and a nonce
// it has seen. No zod here: the CLI's client side loads the signing half.
import { type KeyObject, randomBytes } from 'node:crypto';
import type { Envelope } from './codec.ts';
import { encode, type Sender } from './envelope.ts';
import type { OperatorSessions } from './operatorSession.ts';
import type { PairKeys } from './pairwiseKeys.ts';
import { checkPeerAuth, macPeerMessage, memberPublicKey, nextPeerSeq, signPeerMessage } from './peerSignature.ts';

/** how far a signed request's time may be from the receiver's clock, either way */
export const MEMBER_AUTH_SKEW_MS = 60_000;
/** nonces remembered at most (each for as long as its time is within the skew) */
export const MAX_REMEMBERED_NONCES = 65_536;

/** what a member signs its internal admin requests with, and an operator its requests (runtime/operatorKey.ts) */
export interface AdminSigner {
  key: KeyObject;
  /** wall-clock milliseconds (Date.now by default) */
  now?: () => number;
  /**
   * An operator's sessions (operatorSession.ts): with them, adminCall sends each request MACed in a
   * session with its node (opened with one signed request) instead of signing it; without, it signs each.
   */
  sessions?: OperatorSessions;
  /**
   * A member's pairwise keys with the member named (pairwiseKeys.ts): with them, a request to a
   * member whose key is committed is MACed instead of signed (≈10 µs instead of ≈100 to make and
   * ≈250 to check); null or 'unchecked' (this member's own key is not committed): signed.
   */
  pairWith?: (receiver: string) => PairKeys | null | 'unchecked';
}

/** whether only a member may send this request: a removal notice, or a request that says a member forwarded it */
export function requiresMemberAuth(type: string, body: unknown): boolean {
  if (type === 'member.removed') return true;
  return typeof body === 'object' && body !== null && (body as { forwarded?: unknown }).forwarded === true;
}

/**
 * The request encoded and signed by `signer` for the admin endpoint at `adminSubject` (the node's
 * `.admin` subject, wherever it is sent) — or MACed with the pairwise key it shares with `receiver`
 * (the node's name), when the signer has one: the MAC's counter is the time and a number of this
 * process (peerSignature.ts), its freshness the `auth` time and nonce, as a signature's.
 */
export function signAdminRequest(signer: AdminSigner, adminSubject: string, sender: Sender, type: string, body: unknown, receiver?: string): Uint8Array {
  const auth = { ts: Math.floor((signer.now ?? Date.now)()), nonce: randomBytes(16).toString('hex') };
  const data = encode(sender, type, body, auth);
  const pair = receiver === undefined ? null : (signer.pairWith?.(receiver) ?? null);
  if (pair !== null && pair !== 'unchecked' && auth.ts >= 1) return macPeerMessage(pair.send, adminSubject, data, { boot: auth.ts, seq: nextPeerSeq() });
  return signPeerMessage(signer.key, adminSubject, data);
}

export interface AdminAuthRefusal {
  reason: 'unknown-sender' | 'unsigned' | 'bad-signature' | 'foreign-cluster' | 'stale-time' | 'replayed';
  detail: string;
}

/** what the verifier needs of the receiving node */
export interface AdminAuthHands {
  /** the node's own `.admin` subject: what a signature is bound to */
  adminSubject: string;
  /** this node's cluster id */
  clusterId(): string | null;
  /**
   * The member with this node id in this node's current configuration: its committed key (undefined:
   * a member of an older release, without one), or null when no member has that id.
   */
  memberKey(nodeId: string): { key: string | undefined } | null;
  /** the pairwise keys this node shares with the member whose committed key is `memberKey` (a MACed request is checked with them); null: none */
  pairWith?(memberKey: string): PairKeys | null;
  now?: () => number;
}

/**
 * The nonces of signed requests seen within the allowed skew: a nonce seen before is a replay. Bounded:
 * when full it forgets the oldest, and refuses from then on every request signed at or before the
 * time of one it forgot.
 */
export class NonceCache {
  /** `${signer} ${nonce}` → its time, in arrival order (bounded) */
  private readonly nonces = new Map<string, number>();
  /** requests at or before this time are refused: their nonces may have been forgotten (the cache was full) */
  private floor = Number.NEGATIVE_INFINITY;

  constructor(private readonly maxNonces = MAX_REMEMBERED_NONCES) {}

  /** true when `id` is new (and now remembered); false when it is a replay */
  remember(id: string, ts: number, now: number): boolean {
    // forget what is past the window: a replay of it is refused by its time
    for (const [seen, at] of this.nonces) {
      if (now - at <= MEMBER_AUTH_SKEW_MS) break;
      this.nonces.delete(seen);
    }
    if (this.nonces.has(id) || ts <= this.floor) return false;
    while (this.nonces.size >= this.maxNonces) {
      const [oldest, at] = this.nonces.entries().next().value!;
      this.nonces.delete(oldest);
      this.floor = Math.max(this.floor, at);
    }
    this.nonces.set(id, ts);
    return true;
  }
}

export class AdminAuthVerifier {
  private readonly nonces: NonceCache;

  constructor(
    private readonly hands: AdminAuthHands,
    maxNonces = MAX_REMEMBERED_NONCES,
  ) {
    this.nonces = new NonceCache(maxNonces);
  }

  /** null when the request may be handled (it needs no member authority, or carries a valid one); else why not */
  check(envelope: Envelope, body: unknown, data: Uint8Array): AdminAuthRefusal | null {
    if (!requiresMemberAuth(envelope.type, body)) return null;
    const who = `${envelope.type} from ${envelope.from} (node ${envelope.nodeId ?? 'none'})`;
    const clusterId = this.hands.clusterId();
    if (clusterId === null || envelope.clusterId !== clusterId) return { reason: 'foreign-cluster', detail: `${who} names cluster ${envelope.clusterId}, this node is of ${clusterId ?? 'no cluster'}` };
    const member = envelope.nodeId === null ? null : this.hands.memberKey(envelope.nodeId);
    if (member === null) return { reason: 'unknown-sender', detail: `${who}: no member of this node's configuration has that node id` };
    // a member without a committed key (an older release) is taken as before, as its peer messages are
    if (member.key === undefined) return null;
    const key = memberPublicKey(member.key);
    const check = key === null ? 'bad-signature' : checkPeerAuth(key, this.hands.pairWith?.(member.key) ?? null, this.hands.adminSubject, data).check;
    if (check === 'unsigned' || envelope.auth === undefined || !('nonce' in envelope.auth)) return { reason: 'unsigned', detail: `${who} is not signed, and its member key is committed` };
    if (check === 'bad-signature') return { reason: 'bad-signature', detail: `${who} is neither signed with its committed member key nor MACed with the key this node shares with it` };
    const now = (this.hands.now ?? Date.now)();
    const { ts, nonce } = envelope.auth;
    if (Math.abs(now - ts) > MEMBER_AUTH_SKEW_MS) return { reason: 'stale-time', detail: `${who} is signed at ${new Date(ts).toISOString()}, more than ${MEMBER_AUTH_SKEW_MS / 1000} s from this node's clock` };
    if (!this.nonces.remember(`${envelope.nodeId} ${nonce}`, ts, now)) return { reason: 'replayed', detail: `${who} was seen before (its nonce was used already)` };
    return null;
  }
}
