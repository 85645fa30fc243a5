// A join offer proven with the join secret. Without it, anyone who can publish on a blank node's
// admin subject can make it accept an offer from a cluster that does not exist (and then `init` is
// refused: the node was contacted). A node that has a join secret accepts, while it belongs to no
// cluster, only offers that prove the same secret: an HMAC over the offering leader, its cluster,
// the target's name, the protocol version, a nonce and a timestamp (so an offer cannot be changed,
// sent to another node, or replayed). Leaders with a secret prove every offer; a node without one
// ignores the proof, so a secret can be introduced one side at a time.
import { randomBytes } from 'node:crypto';
import { type NonceCache, prove, type VerifyResult, verifyProof } from './autoJoin.ts';

export interface OfferFields {
  clusterId: string | null;
  leader: string;
  leaderNodeId: string | null;
  target: string;
  protocolVersion: number;
}

export interface OfferProof {
  nonce: string;
  ts: number;
  proof: string;
}

function offerText(f: OfferFields, nonce: string, ts: number): string {
  return ['conclave-offer-v1', f.clusterId ?? '', f.leader, f.leaderNodeId ?? '', f.target, String(f.protocolVersion), nonce, String(ts)].join('\n');
}

/** the leader's side: the fields to add to a join offer */
export function proveOffer(secret: Uint8Array, f: OfferFields, now = Date.now()): OfferProof {
  const nonce = randomBytes(16).toString('hex');
  return { nonce, ts: now, proof: prove(secret, offerText(f, nonce, now)) };
}

/** the node's side: the offer (with whatever proof fields it carried) checked against this node's secret */
export function verifyOffer(secret: Uint8Array, f: OfferFields, given: Partial<OfferProof>, nonces: NonceCache, now = Date.now()): VerifyResult {
  const nonce = given.nonce ?? '';
  const ts = given.ts ?? 0;
  return verifyProof(
    secret,
    offerText(f, nonce, ts),
    { proof: given.nonce === undefined || given.ts === undefined ? undefined : given.proof, nonce, ts },
    nonces,
    {
      refused: 'join offer refused',
      what: `the offer from ${f.leader} (cluster ${f.clusterId ?? 'none'})`,
      noProof: `${f.target} has a join secret and accepts only offers that prove it; configure the same joinSecretFile on the cluster's members, or start ${f.target} without one`,
      clock: `${f.target}'s`,
    },
    now,
  );
}
