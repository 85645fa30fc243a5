// Operator-authenticated admin requests (every member reached over NATS; an in-process bus is the host
// process's own). Every client operation that changes the cluster — init, propose (kv put/del/cas),
// cluster add/remove/transfer, snapshot save — must come from an operator key; a member that lists
// none takes no such request at all (`no-operators`). Two ways, the node takes both:
//   - signed: the signature of member-signed requests (runtime/wire/adminAuth.ts): Ed25519 over the
//     whole request, a time and a nonce, bound to the receiver's `.admin` subject; a time more than
//     MEMBER_AUTH_SKEW_MS from the receiver's clock, or a nonce it has seen, is refused (one-shot CLI
//     commands send this);
//   - in an operator session (operatorSession.ts): opened with one signed `operator.session` request
//     naming the key, then each request MACed with the session's key (the library's signer does this:
//     ≈20× cheaper than a signature for the node, which checks it on every request). The session's
//     key must still be listed, with the rights the request needs, when each request arrives.
// Read-only operations (status, cluster list, reads) need no key, unless the node is configured with
// `reads: 'signed'`: then they must come from an operator key or a read-only key (`readKeys`, which
// may authenticate nothing else, and may open a session for reads).
// Internal operations are not an operator's: a removal notice and a forwarded request must be signed
// by a member (adminAuth.ts), never by an operator, and the join offer and whois belong to the join
// handshake. A forward is taken on the member's word: the member that forwards it checked the
// operator's signature when the operator's request reached it, and its own key is committed.
// No zod here: the CLI's client side loads the signing half.
import type { KeyObject } from 'node:crypto';
import { MEMBER_AUTH_SKEW_MS, MAX_REMEMBERED_NONCES, NonceCache, requiresMemberAuth } from './adminAuth.ts';
import { isReadOnlyOp } from './adminSubjects.ts';
import type { Envelope } from './codec.ts';
import { OPEN_SESSION, type SessionRefusalReason, type SessionTable } from './operatorSession.ts';
import { checkPeerSignature, memberPublicKey } from './peerSignature.ts';

/** operations of the cluster's own machinery: no operator calls them, whatever key they carry */
const INTERNAL_OPS: ReadonlySet<string> = new Set(['whois', 'join.offer', 'member.removed']);

/** whether an operator's signature is what lets this request through (a client operation that changes the cluster) */
export function requiresOperatorAuth(type: string, body: unknown): boolean {
  return !isReadOnlyOp(type) && !INTERNAL_OPS.has(type) && !requiresMemberAuth(type, body);
}

export interface OperatorAuthRefusal {
  reason: 'no-operators' | 'unsigned' | 'bad-signature' | 'read-only-key' | 'stale-time' | 'replayed' | 'unsigned-forward' | SessionRefusalReason;
  detail: string;
}

/** what the verifier needs of the receiving node */
export interface OperatorAuthHands {
  /** the node's own `.admin` subject: what a signature is bound to */
  adminSubject: string;
  /** the operators' public keys (raw Ed25519, base64url: what `conclave operator keygen` prints) */
  keys: readonly string[];
  /** public keys that may sign read-only requests only (they matter with `reads: 'signed'`) */
  readKeys?: readonly string[];
  /** 'open' (default): read-only requests need no signature; 'signed': an operator or read-only key's */
  reads?: 'open' | 'signed';
  /**
   * whether a forward that claims to come from the member with this node id is taken: its member key
   * is committed (so adminAuth.ts checked its signature), or its cluster is at cluster version 1 — a
   * cluster of release 0.1 being upgraded, where no member has a key to check and the cluster is as
   * secure as its oldest member (actors/clusterVersion.ts)
   */
  memberForwards(nodeId: string): boolean;
  /** this node's operator sessions (absent: none is known, so every session request is refused) */
  sessions?: SessionTable;
  now?: () => number;
}

/** the public keys that are not usable Ed25519 keys (a configuration error) */
export function unusableOperatorKeys(keys: readonly string[]): string[] {
  return keys.filter((k) => memberPublicKey(k) === null);
}

export class OperatorAuthVerifier {
  private readonly keys: Array<{ text: string; key: KeyObject; mayChange: boolean }>;
  private readonly nonces: NonceCache;

  /** `nonces`: the requests seen so far, kept across a change of keys (a replay stays refused) */
  constructor(
    private readonly hands: OperatorAuthHands,
    maxNonces = MAX_REMEMBERED_NONCES,
    nonces?: NonceCache,
  ) {
    const entry = (text: string, mayChange: boolean) => {
      const key = memberPublicKey(text);
      if (key === null) throw new TypeError(`operator key ${JSON.stringify(text)} is not an Ed25519 public key`);
      return { text, key, mayChange };
    };
    this.keys = [...hands.keys.map((text) => entry(text, true)), ...(hands.readKeys ?? []).map((text) => entry(text, false))];
    this.nonces = nonces ?? new NonceCache(maxNonces);
  }

  /** null when the request may be handled; else why not */
  check(envelope: Envelope, body: unknown, data: Uint8Array): OperatorAuthRefusal | null {
    if (requiresMemberAuth(envelope.type, body)) {
      // adminAuth.ts checked the member's signature, but only when the member's key is committed
      if (envelope.nodeId !== null && this.hands.memberForwards(envelope.nodeId)) return null;
      return { reason: 'unsigned-forward', detail: `${envelope.type} from ${envelope.from} claims a member's authority, and no member key is committed for node ${envelope.nodeId ?? 'none'}` };
    }
    const now = (this.hands.now ?? Date.now)();
    if (envelope.type === OPEN_SESSION) return this.checkOpen(envelope, body, data, now);
    const changes = requiresOperatorAuth(envelope.type, body);
    const signedRead = !changes && !INTERNAL_OPS.has(envelope.type) && this.hands.reads === 'signed';
    if (!changes && !signedRead) return null;
    if (changes && this.hands.keys.length === 0) return { reason: 'no-operators', detail: 'this node lists no operator key (operators.keys), so it takes no change from a client' };
    const rule = changes ? 'this cluster takes changes only from its operators' : 'this cluster answers reads only to its operators and readers';
    const unsigned: OperatorAuthRefusal = { reason: 'unsigned', detail: `the request is not signed with an operator key, and ${rule}` };
    if (envelope.auth === undefined) return unsigned;
    const readOnly = (how: string): OperatorAuthRefusal => ({ reason: 'read-only-key', detail: `the request is ${how} a read-only key (operators.readKeys), and ${rule}` });
    if ('session' in envelope.auth) {
      const id = envelope.auth.session;
      const found = this.hands.sessions?.verify(id, this.hands.adminSubject, data, now) ?? { reason: 'unknown-session', detail: `this node keeps no operator sessions, so it has no session ${id}` };
      if ('reason' in found) return { reason: found.reason, detail: `${found.detail}, and ${rule}` };
      const key = this.keys.find((k) => k.text === found.operatorKey);
      if (key === undefined) return { reason: 'unknown-session', detail: `the key of operator session ${id} is no longer listed, and ${rule}` };
      return changes && !key.mayChange ? readOnly('in an operator session of') : null;
    }
    let signer: { text: string; mayChange: boolean } | null = null;
    for (const candidate of this.keys) {
      const check = checkPeerSignature(candidate.key, this.hands.adminSubject, data);
      if (check === 'unsigned') return unsigned;
      if (check === 'valid') {
        signer = candidate;
        break;
      }
    }
    if (signer === null) return { reason: 'bad-signature', detail: `the request is signed with a key that is not one of this node's ${this.keys.length} operator key(s), or not for ${this.hands.adminSubject}, and ${rule}` };
    if (changes && !signer.mayChange) return readOnly('signed with');
    return this.fresh(signer.text, envelope.auth, now);
  }

  /** an `operator.session` request: signed (never MACed) by the key it names, listed as an operator's or a reader's, fresh */
  private checkOpen(envelope: Envelope, body: unknown, data: Uint8Array, now: number): OperatorAuthRefusal | null {
    if (this.keys.length === 0) return { reason: 'no-operators', detail: 'this node lists no operator or read-only key (operators.keys, operators.readKeys), so it opens no operator session' };
    const unsigned: OperatorAuthRefusal = { reason: 'unsigned', detail: 'an operator session is opened only by a request signed with the key it names' };
    if (envelope.auth === undefined || !('nonce' in envelope.auth)) return unsigned;
    const named = (body as { key?: unknown }).key;
    const key = this.keys.find((k) => k.text === named);
    if (key === undefined) return { reason: 'bad-signature', detail: `the session is asked for a key that is not one of this node's ${this.keys.length} operator and read-only key(s)` };
    const check = checkPeerSignature(key.key, this.hands.adminSubject, data);
    if (check === 'unsigned') return unsigned;
    if (check === 'bad-signature') return { reason: 'bad-signature', detail: `the session request is not signed with the key it names, or not for ${this.hands.adminSubject}` };
    return this.fresh(key.text, envelope.auth, now);
  }

  /** a signed request's time is near this node's clock, and its nonce is new */
  private fresh(signer: string, auth: { ts: number; nonce: string }, now: number): OperatorAuthRefusal | null {
    const { ts, nonce } = auth;
    if (Math.abs(now - ts) > MEMBER_AUTH_SKEW_MS) {
      return { reason: 'stale-time', detail: `the request is signed at ${new Date(ts).toISOString()}, more than ${MEMBER_AUTH_SKEW_MS / 1000} s from this node's clock (${new Date(now).toISOString()})` };
    }
    if (!this.nonces.remember(`${signer} ${nonce}`, ts, now)) return { reason: 'replayed', detail: 'this signed request was received before (a replay of its bytes)' };
    return null;
  }
}
