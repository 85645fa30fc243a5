// The join handshake, both halves. The leader offers membership on the target's admin subject; the
// node decides with the join chart (machines/join) — one offer at a time — and a refusal is reported
// at both ends. A claim that this member is stale (another identity generation) is believed only
// from a configured member that confirms it (actors/staleGeneration.ts).
import { createActor, fromPromise, toPromise } from 'xstate';
import { checkGeneration } from '../../machines/identity/generation.ts';
import { type ContactRecordInput, joinMachine, type JoinOutput } from '../../machines/join/machine.ts';
import type { OfferReply } from '../../machines/membership/machine.ts';
import { asErrorCode, ConclaveError, conclaveError } from '../../runtime/errors.ts';
import { type BusMessage, NoRespondersError, RequestTimeoutError } from '../../runtime/transport/types.ts';
import type { AdminBody, JoinParty } from '../../runtime/wire/adminProtocol.ts';
import { decodeReply, encode, type Envelope, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../runtime/wire/codec.ts';
import { z } from 'zod';
import { answerProofSchema, NonceCache, type VerifyResult } from '../../runtime/join/autoJoin.ts';
import { MEMBER_KEY_PATTERN } from '../../runtime/wire/peerSignature.ts';
import { type OfferAnswer, type OfferFields, proveAnswer, proveOffer, verifyAnswer, verifyOffer } from '../../runtime/join/offerProof.ts';
import { type GenerationClaim, unconfirmedClaim, unprovenClaim } from '../staleGeneration.ts';
import { type ControllerContext, serialQueue, waitForWithin } from './context.ts';

const OFFER_TIMEOUT_MS = 2000;
const partySchema = z.object({ name: z.string(), nodeId: z.string(), clusterId: z.string().nullable(), key: z.string().regex(MEMBER_KEY_PATTERN).optional() });

/** an answer as it came: accepted with a party, or refused (with the party when the node gave one) */
function answerOf(data: Uint8Array): { answer: OfferAnswer | null; proof: string | undefined } {
  const reply = decodeReply(data);
  if (reply.ok) {
    const party = partySchema.safeParse(reply.body);
    return { answer: party.success ? { accepted: true, party: party.data } : null, proof: answerProofSchema.safeParse(reply.body).data?.proof };
  }
  const party = partySchema.safeParse(reply.error.details);
  return {
    answer: { accepted: false, code: reply.error.code, message: reply.error.message, party: party.success ? party.data : null },
    proof: answerProofSchema.safeParse(reply.error.details).data?.proof,
  };
}

/**
 * The leader's half of the handshake: offer membership to `target` on its admin subject. With a join
 * secret the offer is proven, and only an answer that proves it too is taken: anyone who may
 * subscribe there sees the offer and could answer first; such an answer is dropped, counted and
 * logged, and the leader keeps waiting for the node's own until the timeout.
 */
export async function offerJoin(ctx: ControllerContext, target: string, joinSecret: Uint8Array | null): Promise<OfferReply> {
  const subject = `${ctx.prefix}.node.${target}.admin`;
  const sender = ctx.sender();
  // the offer states the cluster's committed version: a node that does not speak it refuses the offer
  const version = sender.version ?? MIN_PROTOCOL_VERSION;
  const fields = offerFields(sender, target, version);
  const proof = joinSecret === null ? null : proveOffer(joinSecret, fields);
  const nonces = new NonceCache();
  const dropped: string[] = [];
  /** with a secret: is this answer the node's own? (an unproven one is reported and passed over) */
  const proven = (reply: BusMessage): boolean => {
    if (joinSecret === null || proof === null) return true;
    const { answer, proof: given } = answerOf(reply.data);
    const verdict: VerifyResult =
      answer === null
        ? { ok: false, code: 'JOIN_AUTH', reason: 'no-proof', message: `join offer answer dropped: a malformed answer to ${sender.name}'s join offer to ${target}` }
        : verifyAnswer(joinSecret, fields, proof, answer, given, nonces);
    if (verdict.ok) return true;
    // a node that cannot read the offer's protocol version cannot prove its answer either: its refusal
    // is taken as it is — it changes nothing here, where a forged acceptance would
    if (offerUnreadable(reply.data)) return true;
    dropped.push(answer !== null && !answer.accepted ? `${verdict.reason} (${answer.code})` : verdict.reason);
    ctx.reportRefusal('join', { reason: `join-reply-auth:${verdict.reason}`, from: target, localClusterId: sender.clusterId, remoteClusterId: answer?.party?.clusterId ?? null, message: verdict.message });
    return false;
  };
  let data: Uint8Array;
  try {
    const reply = await ctx.bus.request(subject, encode(sender, 'join.offer', { protocolVersion: version, ...proof }), { timeoutMs: OFFER_TIMEOUT_MS, ...(proof === null ? {} : { accept: proven }) });
    data = reply.data;
  } catch (err) {
    if (err instanceof NoRespondersError) throw conclaveError('NO_RESPONDERS', `${target} is not answering on ${subject}; is \`conclave run --name ${target}\` running on the same NATS and prefix?`);
    if (err instanceof RequestTimeoutError && dropped.length > 0) {
      throw conclaveError(
        'TIMEOUT',
        `${target} gave no answer proven with the join secret within ${OFFER_TIMEOUT_MS} ms; ${dropped.length} unproven answer(s) dropped (${[...new Set(dropped)].join(', ')}): forged, or ${target} has no joinSecretFile, another one, or an older release; a cluster with a join secret adds only nodes that prove it`,
      );
    }
    if (err instanceof RequestTimeoutError) throw conclaveError('TIMEOUT', `${target} did not answer the join offer within ${OFFER_TIMEOUT_MS} ms`);
    throw err;
  }
  // the reply is the target's, untrusted: its party and its refusal details are checked
  const decoded = decodeReply(data);
  if (decoded.ok) {
    const party = partySchema.safeParse(decoded.body);
    if (!party.success) throw conclaveError('BAD_REPLY', `${target} answered the join offer with a malformed reply`);
    return { accepted: true, party: party.data };
  }
  const details = partySchema.safeParse(decoded.error.details);
  if (decoded.error.code === 'PROTOCOL_VERSION' && !details.success) {
    // the node could not even read our envelope: name both versions
    return {
      accepted: false,
      party: null,
      code: 'PROTOCOL_VERSION',
      message: `join refused: ${target} does not speak cluster version ${version} of cluster ${sender.clusterId ?? '(no id)'} (it answered: ${decoded.error.message}); upgrade ${target} to a release that speaks ${version} and add it again`,
    };
  }
  if (decoded.error.code === 'JOIN_REFUSED' || decoded.error.code === 'REMOVED' || decoded.error.code === 'PROTOCOL_VERSION' || details.success) {
    return { accepted: false, party: details.success ? details.data : null, code: decoded.error.code, message: decoded.error.message };
  }
  throw conclaveError(asErrorCode(decoded.error.code), decoded.error.message);
}

/** the answer of a node that could not read the offer's envelope (an older release): a refusal naming its versions */
function offerUnreadable(data: Uint8Array): boolean {
  const decoded = decodeReply(data);
  return !decoded.ok && decoded.error.code === 'PROTOCOL_VERSION' && decoded.error.details === undefined;
}

/** what an offer's proof covers: the offering leader as its envelope names it, and the target */
function offerFields(leader: { name: string; nodeId: string | null; clusterId: string | null }, target: string, protocolVersion: number): OfferFields {
  return { clusterId: leader.clusterId, leader: leader.name, leaderNodeId: leader.nodeId, target, protocolVersion };
}

/** the node's half of the handshake */
export class JoinHandshake {
  private readonly oneAtATime = serialQueue();
  /** a claim that this node is stale is being checked with the member that made it */
  private confirmingGeneration = false;
  /** nonces of proven offers seen within the window (a replayed offer is refused) */
  private readonly offerNonces = new NonceCache();
  /** nonces of the proven offers this node has proven an answer to (one answer each) */
  private readonly answeredNonces = new NonceCache();

  /** `joinSecret`: while this node belongs to no cluster, it accepts only offers that prove it */
  constructor(
    private readonly ctx: ControllerContext,
    private readonly joinSecret: Uint8Array | null = null,
  ) {}

  /**
   * Join offers are decided one at a time. The answer to a proven offer is proven with this node's
   * secret, acceptance and refusal alike, so the leader can tell it from a forged one.
   */
  async onOffer(offer: AdminBody<'join.offer'>, envelope: Envelope): Promise<JoinParty> {
    const secret = this.joinSecret;
    const fields = offerFields({ name: envelope.from, nodeId: envelope.nodeId, clusterId: envelope.clusterId }, this.ctx.name, offer.protocolVersion);
    // only an offer that proves the secret, once: a proven answer to a copy of the leader's offer
    // (sent again by whoever saw it) would be one more answer to it, and could differ (`replayed`)
    if (secret === null || offer.nonce === undefined || offer.ts === undefined || !verifyOffer(secret, fields, offer, this.answeredNonces).ok) {
      return this.oneAtATime(() => this.decide(offer, envelope));
    }
    const offerProof = { nonce: offer.nonce, ts: offer.ts, proof: offer.proof ?? '' };
    let party: JoinParty;
    try {
      party = await this.oneAtATime(() => this.decide(offer, envelope));
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err;
      const given = partySchema.safeParse(err.details);
      const refusal: OfferAnswer = { accepted: false, code: err.code, message: err.message, party: given.success ? given.data : null };
      throw conclaveError(err.code, err.message, { ...(given.success ? given.data : {}), proof: proveAnswer(secret, fields, offerProof, refusal) });
    }
    return { ...party, proof: proveAnswer(secret, fields, offerProof, { accepted: true, party }) };
  }

  /** the join machine decides; refusals are reported here too */
  private async decide(offer: AdminBody<'join.offer'>, envelope: Envelope): Promise<JoinParty> {
    const ctx = this.ctx;
    const identity = ctx.store.identity();
    const phase = ctx.phase();
    // the member key travels with the party, to be committed in the configuration with this node
    const party = (clusterId: string | null): JoinParty => ({ name: ctx.name, nodeId: identity.nodeId, clusterId, key: ctx.store.memberKey?.().publicKey });
    if (phase === 'bootstrapping' || phase === 'failed') {
      throw conclaveError('BUSY', `${ctx.name} is ${phase} and cannot answer a join offer now; retry shortly`);
    }
    if (this.joinSecret !== null && identity.clusterId === null) {
      const verdict = verifyOffer(this.joinSecret, offerFields({ name: envelope.from, nodeId: envelope.nodeId, clusterId: envelope.clusterId }, ctx.name, offer.protocolVersion), offer, this.offerNonces);
      if (!verdict.ok) {
        ctx.reportRefusal('join', { reason: `join-auth:${verdict.reason}`, from: envelope.from, localClusterId: null, remoteClusterId: envelope.clusterId, message: verdict.message });
        throw conclaveError('JOIN_AUTH', verdict.message, party(null));
      }
    }
    // same cluster, other identity generation (disaster recovery): refused at both ends
    const generation = checkGeneration(
      { name: ctx.name, clusterId: identity.clusterId, generation: identity.clusterId === null ? undefined : identity.generation },
      { name: envelope.from, clusterId: envelope.clusterId, generation: envelope.gen },
    );
    if (generation.conflict) {
      ctx.reportRefusal('join', { reason: 'stale-generation', from: envelope.from, localClusterId: identity.clusterId, remoteClusterId: envelope.clusterId, message: generation.message });
      if (generation.stale === 'local' && phase === 'member') {
        const claim = { name: envelope.from, nodeId: envelope.nodeId, clusterId: generation.clusterId, generation: generation.remoteGeneration };
        this.checkStaleClaim(claim, generation.message, generation.localGeneration);
      }
      throw conclaveError('JOIN_REFUSED', generation.message, party(identity.clusterId));
    }
    const bootstrap = ctx.actor();
    const bootstrapContext = bootstrap.getSnapshot().context;
    // the contact is the offer it took (recorded before it joins): while joining, another generation's
    // leader is refused; after a restart, an older generation's (machines/join)
    const contact = bootstrapContext.contactedBy;
    const joiningClusterId = phase === 'joining' ? (contact?.clusterId ?? null) : null;
    const joiningGeneration = phase === 'joining' ? contact?.generation : undefined;
    const machine = joinMachine.provide({
      // test-only planted bug (ControllerTestFaults): the node takes an offer of any cluster
      ...(ctx.testFaults?.joinSkipsRule === true ? { guards: { joinRuleRefuses: () => false } } : {}),
      actors: {
        recordContact: fromPromise<void, ContactRecordInput>(async ({ input }) => {
          if (ctx.phase() !== 'uninitialized') return;
          bootstrap.send({ type: 'CONTACTED', contact: { ...input, at: new Date(ctx.clock.now()).toISOString() } });
          const s = await waitForWithin(ctx.clock, bootstrap, (x) => x.value !== 'contacted', 10_000);
          if (s.value === 'failed') throw new Error(s.context.error?.message ?? 'recording the contact failed');
        }),
        enterJoining: fromPromise<void, { clusterId: string; leader: string; generation?: number }>(async ({ input }) => {
          if (ctx.phase() === 'uninitialized') bootstrap.send({ type: 'JOIN_ACCEPTED', join: input });
          if (ctx.phase() !== 'joining' && ctx.phase() !== 'member') throw new Error(`${ctx.name} could not enter the joining phase (it is ${ctx.phase()})`);
        }),
      },
    });
    const actor = createActor(machine, {
      id: `join:${envelope.from}`,
      input: {
        name: ctx.name,
        nodeId: identity.nodeId,
        clusterId: identity.clusterId,
        joiningClusterId,
        joiningGeneration,
        contactedBy: contact,
        removed: identity.removed === true,
        offer: { name: envelope.from, nodeId: envelope.nodeId, clusterId: envelope.clusterId, protocolVersion: offer.protocolVersion, generation: envelope.gen },
        targetClusterId: ctx.opts.join?.cluster ?? null,
        protocol: { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION },
      },
      inspect: ctx.inspectionSink,
      clock: ctx.clock,
    });
    actor.start();
    const output = (await toPromise(actor)) as JoinOutput;
    if (output.accepted) {
      ctx.logFor('join').info({ by: envelope.from, clusterId: envelope.clusterId }, `accepted join offer from ${envelope.from} (cluster ${envelope.clusterId})`);
      return party(output.clusterId);
    }
    const error = output.error ?? { code: 'JOIN_REFUSED', message: 'join refused' };
    if (error.code === 'JOIN_REFUSED' || error.code === 'REMOVED' || error.code === 'PROTOCOL_VERSION') {
      ctx.reportRefusal('join', { reason: 'join-offer', from: envelope.from, localClusterId: output.clusterId, remoteClusterId: envelope.clusterId, message: error.message });
    } else {
      ctx.refusalLog.warn(`join:${error.code}`, { component: 'join', by: envelope.from, error }, error.message, envelope.from);
    }
    throw conclaveError(asErrorCode(error.code), error.message, party(output.clusterId));
  }

  /** a join offer says this member is stale: believed only from a configured member that confirms it */
  private checkStaleClaim(claim: GenerationClaim, message: string, localGeneration: number): void {
    const ctx = this.ctx;
    const membership = ctx.member()?.raftStatus().membership;
    const why = membership ? unprovenClaim(membership, claim) : 'this node has no configuration to check the claim against';
    if (why !== null || !membership) {
      ctx.reportRefusal('join', { reason: 'unproven-generation', from: claim.name, localClusterId: claim.clusterId, remoteClusterId: claim.clusterId, message: `not stale: ${why}` });
      return;
    }
    if (this.confirmingGeneration) return;
    this.confirmingGeneration = true;
    unconfirmedClaim(ctx.bus, ctx.prefix, ctx.sender(), claim, membership, localGeneration)
      .then((unconfirmed) => {
        if (ctx.stopping() || ctx.phase() !== 'member') return;
        if (unconfirmed !== null) {
          ctx.reportRefusal('join', { reason: 'unconfirmed-generation', from: claim.name, localClusterId: claim.clusterId, remoteClusterId: claim.clusterId, message: `not stale: ${unconfirmed}` });
          return;
        }
        ctx.logFor('join').error({ generation: localGeneration, clusterGeneration: claim.generation }, message);
        ctx.actor().send({ type: 'FAIL', error: { code: 'STALE_GENERATION', message } });
      })
      .finally(() => {
        this.confirmingGeneration = false;
      });
  }
}
