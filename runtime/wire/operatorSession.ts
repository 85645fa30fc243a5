// Operator sessions: an operator's requests to one node authenticated with an HMAC instead of an
// Ed25519 signature each. A signature costs the client ≈55 µs to make and the node ≈115 µs to check,
// per request (it halved the throughput of 64 writes in flight); an HMAC-SHA256 costs a few µs.
//   - Opening: the client sends `operator.session`, signed with its operator key like any signed
//     request (operatorAuth.ts: time, nonce, bound to the node's `.admin` subject, replays refused),
//     naming that key and carrying a fresh X25519 public key of its own. The node answers with a fresh
//     X25519 public key of its own, a session id and how long the session lives. Both sides agree on
//     X25519(own private, other's public) and derive the session key from it with HKDF-SHA256, whose
//     info binds the operator key, both X25519 keys, the node's `.admin` subject and the session id.
//     Nothing secret goes over the bus; a forged answer only gives the client a session the node does
//     not know (refused, opened again).
//   - Requests: the envelope's `auth` is `{session: <id>}`, and the message ends with a MAC made
//     exactly as a member's pairwise MAC (peerSignature.ts, macPeerMessage): over the whole request
//     and the node's `.admin` subject, with the session key, the counter's two numbers being the
//     client's clock (ms) and the request's number in the session (from 1). The node takes it when it
//     knows the session and it has not expired, the MAC is valid, the time is within
//     MEMBER_AUTH_SKEW_MS of its clock and the number was not taken before in that session (a window
//     of the last SEQ_WINDOW numbers: requests in flight may arrive out of order) — and when the
//     session's operator key is still listed with the rights the request needs (operatorAuth.ts).
//   - Lifecycle: at most MAX_SESSIONS per node (a new one pushes out the oldest), each for
//     SESSION_TTL_MS; the sessions of a key no longer listed are dropped when the keys change; a node
//     forgets them all when it stops. The client opens one per node on first use and opens it again,
//     once per request, when the node says it does not know it (`unknown-session`, `expired-session`).
// No zod here: the client half is loaded with the admin client.
import { createPublicKey, createSecretKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject, randomBytes } from 'node:crypto';
import { MEMBER_AUTH_SKEW_MS } from './adminAuth.ts';
import { encode, type Sender } from './envelope.ts';
import { checkPeerAuth, KEY_TEXT_PATTERN, macPeerMessage, memberPublicKey, publicKeyText } from './peerSignature.ts';

/** the admin operation that opens a session */
export const OPEN_SESSION = 'operator.session';
/** how long a session lives on the node (the client opens a new one a little before) */
export const SESSION_TTL_MS = 10 * 60_000;
/** sessions a node keeps at most */
export const MAX_SESSIONS = 1024;
/** how far behind the highest number taken a request's number may be (requests in flight arrive out of order) */
export const SEQ_WINDOW = 1024;
/** the refusals after which the client opens its session again (once per request) */
export const SESSION_GONE: ReadonlySet<string> = new Set(['unknown-session', 'expired-session']);

const SALT = Buffer.from('conclave operator session v1');

export interface OpenSessionRequest {
  /** the operator's public key (as `operators.keys` lists it) that signs this request */
  key: string;
  /** the client's fresh X25519 public key (raw 32 bytes, base64url) */
  pub: string;
}

export interface OpenSessionReply {
  session: string;
  /** the node's fresh X25519 public key (raw 32 bytes, base64url) */
  pub: string;
  ttlMs: number;
}

function x25519Public(text: string): KeyObject | null {
  if (!KEY_TEXT_PATTERN.test(text)) return null;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: text }, format: 'jwk' });
  } catch {
    return null;
  }
}

/** the session key both sides derive; null when the other's key makes no usable secret (a small-order point) */
function sessionKey(own: KeyObject, otherPublic: KeyObject, binding: { operatorKey: string; clientPub: string; nodePub: string; adminSubject: string; session: string }): KeyObject | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: own, publicKey: otherPublic });
  } catch {
    return null;
  }
  if (shared.every((b) => b === 0)) return null;
  const info = [binding.operatorKey, binding.clientPub, binding.nodePub, binding.adminSubject, binding.session].join('\0');
  return createSecretKey(Buffer.from(hkdfSync('sha256', shared, SALT, info, 32)));
}

/** which numbers of a session were taken: the highest, and the SEQ_WINDOW below it (a bit each) */
export class SeqWindow {
  private highest = 0;
  private readonly bits = new Uint32Array(SEQ_WINDOW / 32);

  /** true when `seq` is new (and now taken); false when taken before or too far behind */
  take(seq: number): boolean {
    if (seq > this.highest) {
      if (seq - this.highest >= SEQ_WINDOW) this.bits.fill(0);
      else for (let s = this.highest + 1; s <= seq; s++) this.clear(s);
      this.highest = seq;
      this.set(seq);
      return true;
    }
    if (this.highest - seq >= SEQ_WINDOW || this.has(seq)) return false;
    this.set(seq);
    return true;
  }

  private has(seq: number): boolean {
    const i = seq % SEQ_WINDOW;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private set(seq: number): void {
    const i = seq % SEQ_WINDOW;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  private clear(seq: number): void {
    const i = seq % SEQ_WINDOW;
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}

export type SessionRefusalReason = 'unknown-session' | 'expired-session' | 'bad-mac' | 'stale-time' | 'replayed';

interface NodeSession {
  operatorKey: string;
  key: KeyObject;
  expires: number;
  window: SeqWindow;
}

/** a node's sessions (in memory: a restart forgets them) */
export class SessionTable {
  /** by id, oldest first */
  private readonly sessions = new Map<string, NodeSession>();

  constructor(private readonly max = MAX_SESSIONS) {}

  get size(): number {
    return this.sessions.size;
  }

  /** a new session for `operatorKey` (the caller checked the request's signature); null when the client's key is not a usable X25519 key */
  open(request: OpenSessionRequest, adminSubject: string, now: number): OpenSessionReply | null {
    const clientPublic = x25519Public(request.pub);
    if (clientPublic === null) return null;
    const own = generateKeyPairSync('x25519');
    const session = randomBytes(16).toString('hex');
    const nodePub = publicKeyText(own.publicKey);
    const key = sessionKey(own.privateKey, clientPublic, { operatorKey: request.key, clientPub: request.pub, nodePub, adminSubject, session });
    if (key === null) return null;
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(session, { operatorKey: request.key, key, expires: now + SESSION_TTL_MS, window: new SeqWindow() });
    return { session, pub: nodePub, ttlMs: SESSION_TTL_MS };
  }

  /** drop the sessions of every operator key not `listed` (the keys changed) */
  retain(listed: (operatorKey: string) => boolean): void {
    for (const [id, s] of this.sessions) if (!listed(s.operatorKey)) this.sessions.delete(id);
  }

  /** the operator key of the session a request claims, when its MAC, time and number are good; else why not */
  verify(id: string, adminSubject: string, data: Uint8Array, now: number): { operatorKey: string } | { reason: SessionRefusalReason; detail: string } {
    const s = this.sessions.get(id);
    if (s === undefined) return { reason: 'unknown-session', detail: `this node has no operator session ${id} (it restarted, or the session was pushed out or its key revoked)` };
    if (now >= s.expires) {
      this.sessions.delete(id);
      return { reason: 'expired-session', detail: `the operator session ${id} expired at ${new Date(s.expires).toISOString()}` };
    }
    // a signature where the MAC belongs is not this session's: only the counter of a MAC is taken
    const operatorPublic = memberPublicKey(s.operatorKey);
    const mac = operatorPublic === null ? null : checkPeerAuth(operatorPublic, { send: s.key, receive: s.key }, adminSubject, data);
    if (mac === null || mac.check !== 'valid' || mac.counter === null) return { reason: 'bad-mac', detail: `the request is not MACed with the key of operator session ${id} for ${adminSubject}` };
    const { boot: ts, seq } = mac.counter;
    if (Math.abs(now - ts) > MEMBER_AUTH_SKEW_MS) {
      return { reason: 'stale-time', detail: `the request is stamped ${new Date(ts).toISOString()}, more than ${MEMBER_AUTH_SKEW_MS / 1000} s from this node's clock (${new Date(now).toISOString()})` };
    }
    if (!s.window.take(seq)) return { reason: 'replayed', detail: `request ${seq} of operator session ${id} was received before (a replay of its bytes), or is too far behind` };
    return { operatorKey: s.operatorKey };
  }
}

export interface ClientSession {
  id: string;
  key: KeyObject;
  seq: number;
  /** when to open a new one (a little before the node forgets it) */
  renewAt: number;
}

/** how early before the node's expiry the client opens a new session */
const RENEW_MARGIN_MS = 30_000;
/** how long the client signs each request to a node that cannot open sessions (an older release) before asking again */
const NO_SESSIONS_MS = 60_000;

/**
 * An operator's sessions, one per node's `.admin` subject (the client half). `open` sends the signed
 * `operator.session` request; adminCall (runtime/adminClient.ts) passes it.
 */
export class OperatorSessions {
  /** per node: the session in use, and the open under way (concurrent requests wait for the same one) */
  private readonly bySubject = new Map<string, { current?: ClientSession; opening?: Promise<ClientSession> }>();
  /** subjects whose node refused to open one for a reason other than authorization (an older release): until when to sign instead */
  private readonly without = new Map<string, number>();

  constructor(
    /** the operator's public key, as `operators.keys` lists it */
    readonly operatorKey: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The session with the node at `adminSubject`, opened by `open` when there is none (or it is about
   * to expire); null when that node opens none (its requests are signed instead).
   */
  async session(adminSubject: string, open: (request: OpenSessionRequest) => Promise<OpenSessionReply>): Promise<ClientSession | null> {
    const until = this.without.get(adminSubject);
    if (until !== undefined) {
      if (this.now() < until) return null;
      this.without.delete(adminSubject);
    }
    let entry = this.bySubject.get(adminSubject);
    if (entry === undefined) {
      entry = {};
      this.bySubject.set(adminSubject, entry);
    }
    if (entry.current !== undefined && this.now() < entry.current.renewAt) return entry.current;
    if (entry.opening === undefined) {
      const holder = entry;
      const opening = this.openWith(adminSubject, open).then((s) => {
        holder.current = s;
        return s;
      });
      holder.opening = opening;
      const done = () => {
        if (holder.opening === opening) holder.opening = undefined;
      };
      opening.then(done, done);
    }
    return entry.opening ?? null;
  }

  private async openWith(adminSubject: string, open: (request: OpenSessionRequest) => Promise<OpenSessionReply>): Promise<ClientSession> {
    const own = generateKeyPairSync('x25519');
    const clientPub = publicKeyText(own.publicKey);
    const opened = this.now();
    const reply = await open({ key: this.operatorKey, pub: clientPub });
    const nodePublic = x25519Public(reply.pub);
    const key = nodePublic === null ? null : sessionKey(own.privateKey, nodePublic, { operatorKey: this.operatorKey, clientPub, nodePub: reply.pub, adminSubject, session: reply.session });
    if (key === null) throw new Error(`the node at ${adminSubject} answered the session open with an unusable key`);
    return { id: reply.session, key, seq: 0, renewAt: opened + Math.max(0, reply.ttlMs - RENEW_MARGIN_MS) };
  }

  /** the node at `adminSubject` opens no session (an older release): sign its requests for a while */
  signInstead(adminSubject: string): void {
    this.without.set(adminSubject, this.now() + NO_SESSIONS_MS);
  }

  /** the node does not know `session` (any more): the next request opens a new one */
  forget(adminSubject: string, session: ClientSession): void {
    const entry = this.bySubject.get(adminSubject);
    if (entry?.current === session) entry.current = undefined;
  }

  /** the request encoded and MACed in `session` for the node at `adminSubject` */
  seal(session: ClientSession, adminSubject: string, sender: Sender, type: string, body: unknown): Uint8Array {
    session.seq += 1;
    return macPeerMessage(session.key, adminSubject, encode(sender, type, body, { session: session.id }), { boot: Math.floor(this.now()), seq: session.seq });
  }
}
