// A join offer proven with the join secret, and the node's answer proven with it too. Without them,
// anyone who can publish on a blank node's admin subject can make it accept an offer from a cluster
// that does not exist (and then `init` is refused: the node was contacted); and anyone who can
// subscribe there sees the offer and its reply inbox, and can answer for the node — with an
// acceptance carrying a member key of its own (committed for the node: it could then speak for it)
// or a refusal (the add is given up).
// - The offer: an HMAC over the offering leader, its cluster, the target's name, the protocol
//   version, a nonce and a timestamp (so it cannot be changed, sent to another node, or replayed).
//   A node with a secret accepts, while it belongs to no cluster, only offers that prove it.
// - The answer (acceptance or refusal): an HMAC over that offer (its nonce included) and every field
//   of the answer — the party with its member key, or the refusal's code and message. A leader with
//   a secret takes only a proven answer; others are dropped and it keeps waiting for the node's own.
//   A node proves one answer per offer, and only to an offer that proves the secret: a copy of the
//   leader's offer sent to it again gets an unproven answer.
// A node without a secret ignores an offer's proof and answers without one: a leader with a secret
// therefore adds only nodes that have it (members need it only to add nodes; it changes nothing
// between members), and a blank node with a secret is added only by a leader with it.
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

/** what a node answered to an offer: accepted with its party, or refused with a code and a message (and its party, when it gave one) */
export type OfferAnswer =
  | { accepted: true; party: { name: string; nodeId: string; clusterId: string | null; key?: string | undefined } }
  | { accepted: false; code: string; message: string; party: { name: string; nodeId: string; clusterId: string | null; key?: string | undefined } | null };

/** the answer's fields after the offer's own: as JSON, so no field can spill into the next */
function answerText(f: OfferFields, offer: OfferProof, answer: OfferAnswer): string {
  const p = answer.party;
  const party = p === null ? null : [p.name, p.nodeId, p.clusterId, p.key ?? null];
  const outcome = answer.accepted ? ['accepted', '', ''] : ['refused', answer.code, answer.message];
  return `${offerText(f, offer.nonce, offer.ts)}\nanswer-v1\n${JSON.stringify([...outcome, party])}`;
}

/** the node's side: the proof to add to its answer to a proven offer (`f`: the offer as the node read it) */
export function proveAnswer(secret: Uint8Array, f: OfferFields, offer: OfferProof, answer: OfferAnswer): string {
  return prove(secret, answerText(f, offer, answer));
}

/**
 * The leader's side: the answer to the offer it proved (`offer`, as it sent it), checked against its
 * secret. `nonces`: the offer's — a second proven answer to the same offer is a replay.
 */
export function verifyAnswer(secret: Uint8Array, f: OfferFields, offer: OfferProof, answer: OfferAnswer, proof: string | undefined, nonces: NonceCache, now = Date.now()): VerifyResult {
  return verifyProof(
    secret,
    answerText(f, offer, answer),
    { proof, nonce: offer.nonce, ts: offer.ts },
    nonces,
    {
      refused: 'join offer answer dropped',
      what: `the answer to ${f.leader}'s join offer to ${f.target}`,
      noProof: `it is forged, or ${f.target} has no join secret (or runs an older release): a cluster with a join secret adds only nodes that prove it; configure the same joinSecretFile on ${f.target}`,
      clock: `${f.leader}'s`,
    },
    now,
  );
}
