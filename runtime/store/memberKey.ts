// The member key: an Ed25519 key pair that signs this node's peer messages (runtime/wire/peerSignature.ts).
// Kept in the identity database next to the identity record (its own record: the identity is read,
// copied and logged in many places, the private key must not travel with it). One key per identity
// generation: made with the identity (or, for a store of an older release, at its next open, in the
// same write transaction that loads the identity), replaced only by `recover` (a new generation).
// `recover` signs the new key with the old one (a key rotation), and the record keeps every rotation
// of the node: a stale survivor of the cluster, which holds the old key in its configuration, can then
// tell a real "this member was recovered to generation N" (provenGeneration) from a forged one.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { z } from 'zod';
import { KEY_TEXT_PATTERN, memberPublicKey, publicKeyText } from '../wire/peerSignature.ts';

export const K_MEMBER_KEY = 'memberKey';

/** the record as stored */
export interface StoredMemberKey {
  /** the node id it was made for */
  nodeId: string;
  /** the identity generation it was made for */
  generation: number;
  /** PKCS#8 DER */
  privateKey: Uint8Array;
  /** the raw 32-byte public key, base64url (the form committed in the configuration) */
  publicKey: string;
  createdAt: string;
  /** the rotations that led to this key, oldest first (none: the node's first key) */
  rotations?: KeyRotation[];
}

/** `recover` gave the node `key` for `generation`; `signature`: by the key it had before, over rotationStatement(…) */
export interface KeyRotation {
  generation: number;
  key: string;
  signature: string;
}

const rotationSchema = z.object({ generation: z.number().int().min(1), key: z.string().regex(KEY_TEXT_PATTERN), signature: z.string().max(128) });
/** a node is recovered a handful of times in its life; a bound keeps a hostile answer small to check */
const MAX_ROTATIONS = 64;

const storedSchema = z.object({
  nodeId: z.string(),
  generation: z.number().int().min(1),
  privateKey: z.instanceof(Uint8Array),
  publicKey: z.string().regex(KEY_TEXT_PATTERN),
  createdAt: z.string(),
  rotations: z.array(rotationSchema).max(MAX_ROTATIONS).optional(),
});

/** the key in use: the private half never leaves this object's holder (no enumerable secret: logging it prints nothing) */
export interface MemberKey {
  readonly publicKey: string;
  readonly privateKey: KeyObject;
  /** public: what a `whois` answer shows, so that a stale survivor can check the recovery */
  readonly rotations: readonly KeyRotation[];
}

export function newMemberKey(nodeId: string, generation: number): StoredMemberKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    nodeId,
    generation,
    privateKey: new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' })),
    publicKey: publicKeyText(publicKey),
    createdAt: new Date().toISOString(),
  };
}

export { publicKeyText };

/** the stored record as a usable key, or why it is not one (a damaged or foreign record) */
export function readMemberKey(raw: unknown, nodeId: string): MemberKey | string {
  const res = storedSchema.safeParse(raw);
  if (!res.success) return 'the member key record is malformed';
  if (res.data.nodeId !== nodeId) return `the member key was made for node ${res.data.nodeId}, not ${nodeId}`;
  try {
    const privateKey = createPrivateKey({ key: Buffer.from(res.data.privateKey), format: 'der', type: 'pkcs8' });
    if (privateKey.asymmetricKeyType !== 'ed25519' || publicKeyText(createPublicKey(privateKey)) !== res.data.publicKey) return 'the member key record does not hold a matching Ed25519 pair';
    return Object.freeze({ publicKey: res.data.publicKey, privateKey, rotations: Object.freeze(res.data.rotations ?? []) });
  } catch (err) {
    return `the member key cannot be read (${(err as Error).message})`;
  }
}

function rotationStatement(nodeId: string, clusterId: string, generation: number, key: string): Buffer {
  return Buffer.from(`conclave member key rotation v1\0${JSON.stringify([nodeId, clusterId, generation, key])}`);
}

/** a new key for `generation` (recover), signed by `previous`, the node's key until now */
export function rotatedMemberKey(previous: MemberKey, nodeId: string, clusterId: string, generation: number): StoredMemberKey {
  const next = newMemberKey(nodeId, generation);
  const signature = sign(null, rotationStatement(nodeId, clusterId, generation, next.publicKey), previous.privateKey).toString('base64url');
  const rotations = [...previous.rotations, { generation, key: next.publicKey, signature }].slice(-MAX_ROTATIONS);
  return { ...next, rotations };
}

/**
 * The highest generation that `rotations` (as a `whois` answer shows them, so unchecked) prove for the
 * member `nodeId` of `clusterId` starting from `committedKey`, the key this node's configuration holds
 * for it at `committedGeneration`: each rotation must be signed by the key before it. Rotations the
 * chain does not reach prove nothing.
 */
export function provenGeneration(committedKey: string, committedGeneration: number, rotations: unknown, nodeId: string, clusterId: string): number {
  const parsed = z.array(rotationSchema).max(MAX_ROTATIONS).safeParse(rotations ?? []);
  if (!parsed.success) return committedGeneration;
  let key = committedKey;
  let generation = committedGeneration;
  for (const r of [...parsed.data].sort((a, b) => a.generation - b.generation)) {
    if (r.generation <= generation) continue;
    const signer = memberPublicKey(key);
    const signature = Buffer.from(r.signature, 'base64url');
    if (signer === null || signature.length !== 64 || !verify(null, rotationStatement(nodeId, clusterId, r.generation, r.key), signer, signature)) continue;
    key = r.key;
    generation = r.generation;
  }
  return generation;
}
