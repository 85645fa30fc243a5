// The node side of the join handshake, one actor per offer. Pure statechart: recording the contact
// and entering the joining phase are actors the controller supplies with `.provide({ actors })`.
//
//   checking ─┬─ refused      (removed node, incompatible protocol, the join rule, not the cluster
//             │                this node was configured to join, a malformed offer, or another
//             │                generation of the cluster it is already joining)
//             ├─ accepted     (already a member of, or already joining, the offering cluster)
//             └─ recordingContact ─> enteringJoin ─> accepted
// The contact is durable BEFORE the node answers: from then on `init` is refused on it (never fork).
import { assign, fromPromise, setup } from 'xstate';
import { checkJoin, type ClusterId } from '../identity/index.ts';

export interface JoinOffer {
  /** the offering leader's name and node id */
  name: string;
  nodeId: string | null;
  clusterId: ClusterId;
  protocolVersion: number;
  /** the offering leader's identity generation (disaster recovery bumps it), when it states one */
  generation?: number;
}

export interface JoinInput {
  name: string;
  nodeId: string;
  /** the node's persisted cluster id (null while blank) */
  clusterId: ClusterId;
  /** the cluster a blank node is currently joining (it accepted an offer and awaits the first state) */
  joiningClusterId: ClusterId;
  /** the generation of the offer it took to join that cluster (undefined: none stated, or not joining) */
  joiningGeneration?: number;
  /** the contact this blank node recorded durably (it survives a restart that the joining phase does not) */
  contactedBy?: { clusterId: string; generation?: number } | null;
  removed: boolean;
  offer: JoinOffer;
  /** the only cluster this node agrees to join (auto-join configured with `join.cluster`); null: any */
  targetClusterId?: ClusterId;
  /** the protocol versions this node speaks */
  protocol?: { min: number; max: number };
}

export interface JoinContext extends JoinInput {
  error: { code: string; message: string } | null;
}

export interface JoinOutput {
  accepted: boolean;
  error: { code: string; message: string } | null;
  /** the id the node answers under: its own, or the one it is joining */
  clusterId: ClusterId;
}

/** the contact to record; the controller stamps the time (machines read no clock) */
export interface ContactRecordInput {
  clusterId: string;
  by: string;
  generation?: number;
}

/** the cluster id a node acts under: persisted, else the one it is joining */
function effectiveClusterId(ctx: JoinInput): ClusterId {
  return ctx.clusterId ?? ctx.joiningClusterId;
}

export const joinMachine = setup({
  types: {
    context: {} as JoinContext,
    input: {} as JoinInput,
    output: {} as JoinOutput,
  },
  actors: {
    /** make the contact durable (the node's store) */
    recordContact: fromPromise<void, ContactRecordInput>(async () => {}),
    /** enter the joining phase: accept raft traffic from this cluster id only, adopt it with the first state */
    enterJoining: fromPromise<void, { clusterId: string; leader: string; generation?: number }>(async () => {}),
  },
  guards: {
    isRemoved: ({ context }) => context.removed,
    protocolIncompatible: ({ context }) =>
      context.protocol !== undefined && (context.offer.protocolVersion < context.protocol.min || context.offer.protocolVersion > context.protocol.max),
    notTheTargetCluster: ({ context }) =>
      context.clusterId === null && (context.targetClusterId ?? null) !== null && context.offer.clusterId !== context.targetClusterId,
    offerHasNoClusterId: ({ context }) => context.offer.clusterId === null,
    joinRuleRefuses: ({ context }) =>
      !checkJoin({ name: context.name, clusterId: effectiveClusterId(context) }, { name: context.offer.name, clusterId: context.offer.clusterId }).allowed,
    /**
     * Joining a cluster, offered another generation of it (a disaster recovery happened meanwhile):
     * the node took one generation's offer and listens to that generation only, so it cannot be a
     * member of the other — the offering leader must not count it.
     */
    otherGenerationWhileJoining: ({ context }) =>
      context.clusterId === null &&
      context.joiningClusterId !== null &&
      context.joiningClusterId === context.offer.clusterId &&
      context.joiningGeneration !== undefined &&
      context.offer.generation !== undefined &&
      context.offer.generation !== context.joiningGeneration,
    /**
     * A blank node contacted by one generation of a cluster, offered an older generation of it (the
     * contact survives a restart; the join it began does not): the older generation was recovered
     * past, and the newer may list this node already — never go back to the older one.
     */
    olderGenerationThanContact: ({ context }) =>
      context.clusterId === null &&
      context.contactedBy != null &&
      context.contactedBy.clusterId === context.offer.clusterId &&
      context.contactedBy.generation !== undefined &&
      context.offer.generation !== undefined &&
      context.offer.generation < context.contactedBy.generation,
    alreadyInCluster: ({ context }) => effectiveClusterId(context) !== null && effectiveClusterId(context) === context.offer.clusterId,
  },
  actions: {
    refuseRemoved: assign(({ context }) => ({
      error: {
        code: 'REMOVED',
        message: `join refused: ${context.name} was removed from cluster ${context.clusterId ?? '(unknown)'} and never rejoins by itself; wipe its data dir (it becomes a new node) to add it again`,
      },
    })),
    refuseByJoinRule: assign(({ context }) => {
      const verdict = checkJoin({ name: context.name, clusterId: effectiveClusterId(context) }, { name: context.offer.name, clusterId: context.offer.clusterId });
      return { error: { code: 'JOIN_REFUSED', message: verdict.allowed ? 'join refused' : verdict.message } };
    }),
    refuseProtocol: assign(({ context }) => ({
      error: {
        code: 'PROTOCOL_VERSION',
        message: `join refused: ${context.offer.name} speaks protocol version ${context.offer.protocolVersion} but ${context.name} speaks ${context.protocol!.min === context.protocol!.max ? context.protocol!.min : `${context.protocol!.min}..${context.protocol!.max}`}; upgrade the older side first`,
      },
    })),
    refuseOtherCluster: assign(({ context }) => ({
      error: {
        code: 'JOIN_REFUSED',
        message: `join refused: ${context.name} is configured to join cluster ${context.targetClusterId} only, but ${context.offer.name} belongs to cluster ${context.offer.clusterId}`,
      },
    })),
    refuseOtherGeneration: assign(({ context }) => ({
      error: {
        code: 'JOIN_REFUSED',
        message: `join refused: ${context.name} is already joining generation ${context.joiningGeneration} of cluster ${context.joiningClusterId}, but ${context.offer.name} offers generation ${context.offer.generation} of it (the cluster was recovered meanwhile); it stays with the offer it took, and asks again if that join fails`,
      },
    })),
    refuseOlderGeneration: assign(({ context }) => ({
      error: {
        code: 'JOIN_REFUSED',
        message: `join refused: ${context.name} was contacted by generation ${context.contactedBy?.generation} of cluster ${context.offer.clusterId}, but ${context.offer.name} offers generation ${context.offer.generation}, an older one (the cluster was recovered past it); ${context.offer.name} must be wiped and added again`,
      },
    })),
    refuseBlankOffer: assign(({ context }) => ({
      error: { code: 'BAD_REQUEST', message: `join refused: ${context.offer.name} offered membership without a cluster id; only an initialized cluster can add nodes` },
    })),
    recordError: assign({
      error: (_, params: { error: unknown }) => ({ code: 'IO', message: `could not record the join contact: ${(params.error as Error)?.message ?? String(params.error)}` }),
    }),
  },
}).createMachine({
  id: 'join',
  context: ({ input }) => ({ ...input, error: null }),
  initial: 'checking',
  states: {
    checking: {
      always: [
        { guard: 'isRemoved', target: 'refused', actions: 'refuseRemoved' },
        { guard: 'protocolIncompatible', target: 'refused', actions: 'refuseProtocol' },
        { guard: 'offerHasNoClusterId', target: 'refused', actions: 'refuseBlankOffer' },
        { guard: 'notTheTargetCluster', target: 'refused', actions: 'refuseOtherCluster' },
        { guard: 'joinRuleRefuses', target: 'refused', actions: 'refuseByJoinRule' },
        { guard: 'otherGenerationWhileJoining', target: 'refused', actions: 'refuseOtherGeneration' },
        { guard: 'olderGenerationThanContact', target: 'refused', actions: 'refuseOlderGeneration' },
        { guard: 'alreadyInCluster', target: 'accepted' },
        { target: 'recordingContact' },
      ],
    },
    recordingContact: {
      invoke: {
        src: 'recordContact',
        input: ({ context }) => ({ clusterId: context.offer.clusterId!, by: context.offer.name, ...(context.offer.generation === undefined ? {} : { generation: context.offer.generation }) }),
        onDone: { target: 'enteringJoin' },
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    enteringJoin: {
      invoke: {
        src: 'enterJoining',
        input: ({ context }) => ({ clusterId: context.offer.clusterId!, leader: context.offer.name, generation: context.offer.generation }),
        onDone: { target: 'accepted' },
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    accepted: { type: 'final' },
    refused: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({
    accepted: context.error === null,
    error: context.error,
    clusterId: context.error === null ? (context.clusterId ?? context.offer.clusterId) : effectiveClusterId(context),
  }),
});

export type JoinMachine = typeof joinMachine;
