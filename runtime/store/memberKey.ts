// The member key: an Ed25519 key pair that signs this node's peer messages (runtime/wire/peerSignature.ts).
// Kept in the identity database next to the identity record (its own record: the identity is read,
// copied and logged in many places, the private key must not travel with it). One key per identity
// generation: made with the identity (or, for a store of an older release, at its next open, in the
// same write transaction that loads the identity), replaced only by `recover` (a new generation).
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { z } from 'zod';

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
}

const storedSchema = z.object({
  nodeId: z.string(),
  generation: z.number().int().min(1),
  privateKey: z.instanceof(Uint8Array),
  publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  createdAt: z.string(),
});

/** the key in use: the private half never leaves this object's holder (no enumerable secret: logging it prints nothing) */
export interface MemberKey {
  readonly publicKey: string;
  readonly privateKey: KeyObject;
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

export function publicKeyText(key: KeyObject): string {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new TypeError('not an Ed25519 public key');
  return x;
}

/** the stored record as a usable key, or why it is not one (a damaged or foreign record) */
export function readMemberKey(raw: unknown, nodeId: string): MemberKey | string {
  const res = storedSchema.safeParse(raw);
  if (!res.success) return 'the member key record is malformed';
  if (res.data.nodeId !== nodeId) return `the member key was made for node ${res.data.nodeId}, not ${nodeId}`;
  try {
    const privateKey = createPrivateKey({ key: Buffer.from(res.data.privateKey), format: 'der', type: 'pkcs8' });
    if (privateKey.asymmetricKeyType !== 'ed25519' || publicKeyText(createPublicKey(privateKey)) !== res.data.publicKey) return 'the member key record does not hold a matching Ed25519 pair';
    return Object.freeze({ publicKey: res.data.publicKey, privateKey });
  } catch (err) {
    return `the member key cannot be read (${(err as Error).message})`;
  }
}
