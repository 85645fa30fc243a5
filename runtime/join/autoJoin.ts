// Auto-join for elastic scaling: a blank node started with `join: { cluster, secretFile }` announces
// itself on `<prefix>.discover`; the leader of that cluster admits it only with a valid proof of the
// shared join secret. The proof is an HMAC-SHA256 over every field of the request (so none can be
// changed) including a random nonce and a timestamp; the leader compares in constant time, refuses
// timestamps outside a window and nonces it has already seen (a replayed request). The leader's
// answer (admission or refusal) is proven the same way over the request and every answer field, so
// the node can tell it from one forged by whoever else hears `<prefix>.discover`.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { conclaveError } from '../errors.ts';
import { nodeNameSchema, uuidSchema } from '../wire/codec.ts';

/** a request older or newer than this (leader's clock) is refused: bounds the replay cache too */
export const JOIN_REQUEST_WINDOW_MS = 60_000;
/** the shortest secret accepted: short secrets can be guessed offline from one captured request */
export const MIN_SECRET_BYTES = 16;
export const DEFAULT_MAX_VOTERS = 5;

export const joinRequestSchema = z.strictObject({
  cluster: uuidSchema,
  name: nodeNameSchema,
  nodeId: uuidSchema,
  protocolVersion: z.number().int().min(0),
  nonce: z.string().regex(/^[0-9a-f]{32}$/, 'must be 16 random bytes in hex'),
  ts: z.number().int().min(0),
  /** HMAC-SHA256 in hex; absent when the node has no secret (then it is refused) */
  proof: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
/** the proof an answer carries beside its fields (an auto-join answer, an answer to a join offer); the fields are parsed without it */
export const answerProofSchema = z.object({ proof: joinRequestSchema.shape.proof });
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export interface JoinAdmission {
  admitted: true;
  leader: string;
  clusterId: string;
  /** the node will be promoted to voter (false: maxVoters reached, it stays a learner) */
  voter: boolean;
  /** from a leader with a join secret: the answer proven with it (proveJoinAnswer) */
  proof?: string;
}

export const joinAdmissionSchema = z.object({ admitted: z.literal(true), leader: nodeNameSchema, clusterId: uuidSchema, voter: z.boolean() });

/** the leader's answer to an auto-join request, as its proof covers it */
export type JoinAnswer = { admitted: true; leader: string; clusterId: string; voter: boolean } | { admitted: false; code: string; message: string };

/** The bytes the proof covers: every field but the proof, in a fixed order. */
function signedText(req: Omit<JoinRequest, 'proof'>): string {
  return ['conclave-join-v1', req.cluster, req.name, req.nodeId, String(req.protocolVersion), req.nonce, String(req.ts)].join('\n');
}

export function proveJoin(secret: Uint8Array, req: Omit<JoinRequest, 'proof'>): string {
  return prove(secret, signedText(req));
}

/** HMAC-SHA256 of `text` with the join secret, in hex */
export function prove(secret: Uint8Array, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}

/** A fresh, signed join request for this node. */
export function makeJoinRequest(secret: Uint8Array | null, fields: Omit<JoinRequest, 'proof' | 'nonce' | 'ts'>, now = Date.now()): JoinRequest {
  const req = { ...fields, nonce: randomBytes(16).toString('hex'), ts: now };
  return secret ? { ...req, proof: proveJoin(secret, req) } : req;
}

/** Nonces seen within the window; a second request with one of them is a replay. */
export class NonceCache {
  private readonly seen = new Map<string, number>();
  constructor(private readonly maxEntries = 10_000) {}

  /** true when the nonce is new (and remembers it), false when it was seen before */
  remember(nonce: string, now: number): boolean {
    this.expire(now);
    if (this.seen.has(nonce)) return false;
    // bounded: under a flood the oldest go first (they are the closest to leaving the window anyway)
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(nonce, now + 2 * JOIN_REQUEST_WINDOW_MS);
    return true;
  }

  private expire(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until > now) break; // insertion order = expiry order
      this.seen.delete(nonce);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}

export type VerifyResult = { ok: true } | { ok: false; code: 'JOIN_AUTH'; reason: 'no-proof' | 'bad-proof' | 'expired' | 'replayed'; message: string };

/** What the messages of a refused proof say: whose message it was, and how to make the next one pass. */
export interface ProofWords {
  /** e.g. "auto-join refused" */
  refused: string;
  /** e.g. "the request from n4 (…)" */
  what: string;
  /** the fix when no proof came at all */
  noProof: string;
  /** whose clock judged the timestamp, e.g. "the leader's" */
  clock: string;
}

/**
 * Check a proof (HMAC-SHA256 of `text` with the join secret) with its timestamp and nonce. The nonce
 * is remembered only once the proof is valid, so garbage cannot fill the cache.
 */
export function verifyProof(secret: Uint8Array, text: string, p: { proof?: string; ts: number; nonce: string }, nonces: NonceCache, words: ProofWords, now = Date.now()): VerifyResult {
  if (p.proof === undefined) return { ok: false, code: 'JOIN_AUTH', reason: 'no-proof', message: `${words.refused}: ${words.what} carries no proof of the join secret; ${words.noProof}` };
  const expected = createHmac('sha256', secret).update(text).digest();
  const given = Buffer.from(p.proof, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, code: 'JOIN_AUTH', reason: 'bad-proof', message: `${words.refused}: the proof in ${words.what} does not match this join secret; check that both use the same secret file` };
  }
  if (Math.abs(now - p.ts) > JOIN_REQUEST_WINDOW_MS) {
    return {
      ok: false,
      code: 'JOIN_AUTH',
      reason: 'expired',
      message: `${words.refused}: ${words.what} is ${Math.round((now - p.ts) / 1000)} s off ${words.clock} clock (allowed ±${JOIN_REQUEST_WINDOW_MS / 1000} s); check the clocks`,
    };
  }
  if (!nonces.remember(p.nonce, now)) return { ok: false, code: 'JOIN_AUTH', reason: 'replayed', message: `${words.refused}: ${words.what} was already used (replayed nonce ${p.nonce})` };
  return { ok: true };
}

/** The leader's check of an auto-join request's proof. */
export function verifyJoinRequest(secret: Uint8Array, req: JoinRequest, nonces: NonceCache, now = Date.now()): VerifyResult {
  return verifyProof(
    secret,
    signedText(req),
    req,
    nonces,
    { refused: 'auto-join refused', what: `the request from ${req.name} (${req.nodeId})`, noProof: "configure join.secretFile on it with the cluster's secret", clock: "the leader's" },
    now,
  );
}

/** the answer's fields after the request's own: as JSON, so no field can spill into the next */
function answerText(req: Omit<JoinRequest, 'proof'>, answer: JoinAnswer): string {
  const fields = answer.admitted ? ['admitted', answer.leader, answer.clusterId, answer.voter] : ['refused', answer.code, answer.message];
  return `${signedText(req)}\nanswer-v1\n${JSON.stringify(fields)}`;
}

/** the leader's side: the proof to add to its answer to `req` */
export function proveJoinAnswer(secret: Uint8Array, req: Omit<JoinRequest, 'proof'>, answer: JoinAnswer): string {
  return prove(secret, answerText(req, answer));
}

/** the node's side: an answer to its own request `req`, checked against its secret (`nonces`: the request's — one answer is taken) */
export function verifyJoinAnswer(secret: Uint8Array, req: JoinRequest, answer: JoinAnswer, proof: string | undefined, nonces: NonceCache, now = Date.now()): VerifyResult {
  return verifyProof(
    secret,
    answerText(req, answer),
    { proof, nonce: req.nonce, ts: req.ts },
    nonces,
    {
      refused: 'auto-join answer dropped',
      what: `an answer to ${req.name}'s request to join cluster ${req.cluster}`,
      noProof: "it is forged, or the cluster's members have no join secret (or run an older release)",
      clock: `${req.name}'s`,
    },
    now,
  );
}

/** Read a join secret file: it must exist, be readable and hold at least MIN_SECRET_BYTES after trimming. */
export function readJoinSecret(path: string): Uint8Array {
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw conclaveError('CONFIG', `cannot read the join secret file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; create it with e.g. \`openssl rand -hex 32 > ${path}\``);
  }
  const secret = Buffer.from(text.trim(), 'utf8');
  if (secret.length < MIN_SECRET_BYTES) {
    throw conclaveError('CONFIG', `the join secret in ${path} is ${secret.length} bytes; at least ${MIN_SECRET_BYTES} are required (e.g. \`openssl rand -hex 32 > ${path}\`)`);
  }
  return secret;
}
