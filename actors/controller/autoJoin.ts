// Auto-join, both ends. A blank node configured with `join.cluster` announces itself on
// `<prefix>.discover` — again after the shared backoff, until that cluster has added it; the leader
// of the addressed cluster checks the request (join secret, protocol, join rule) and adds the node in
// the background (runtime/join/autoJoin.ts holds the request's wire form and its proof).
import { assign, createActor, fromPromise, setup } from 'xstate';
import { backoffDelay } from '../../machines/backoff.ts';
import { checkJoin } from '../../machines/identity/index.ts';
import { isUnreachable } from '../../runtime/admin.ts';
import { ConclaveError, codeOf, conclaveError, type ErrorCode } from '../../runtime/errors.ts';
import {
  answerProofSchema,
  DEFAULT_MAX_VOTERS,
  type JoinAdmission,
  type JoinAnswer,
  joinAdmissionSchema,
  type JoinRequest,
  joinRequestSchema,
  makeJoinRequest,
  NonceCache,
  proveJoinAnswer,
  type VerifyResult,
  verifyJoinAnswer,
  verifyJoinRequest,
} from '../../runtime/join/autoJoin.ts';
import type { BusMessage, BusSubscription } from '../../runtime/transport/types.ts';
import { decode, decodeReply, encode, encodeReply, type Envelope, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../runtime/wire/codec.ts';
import type { ControllerContext } from './context.ts';
import type { MembershipOps } from './membership.ts';

const DISCOVER_BODIES = { 'join.request': joinRequestSchema };
const AUTO_JOIN = {
  /** asking again after no answer or a refusal: 1 s, 2 s, 4 s, 5 s, … */
  retry: { baseMs: 1000, maxMs: 5000 },
  /** admitted: the join offer is on its way; ask again only if it does not come */
  afterAdmissionMs: 3000,
  requestTimeoutMs: 2000,
  logEveryMs: 10_000,
  addDeadlineMs: 60_000,
} as const;

type Answer = 'admitted' | 'refused' | 'unanswered';

/** what came of one auto-join request */
export type JoinRequestOutcome =
  | { answer: 'admitted'; admission: JoinAdmission }
  | { answer: 'refused'; code: string; message: string }
  /** no leader of that cluster answered (no responders, or a timeout); `dropped`: answers that did not prove the join secret */
  | { answer: 'unanswered'; error: unknown; dropped: number };

/** an answer as it came, with the proof it carried */
function joinAnswerOf(data: Uint8Array): { answer: JoinAnswer | null; proof: string | undefined } {
  const reply = decodeReply(data);
  if (reply.ok) {
    const admission = joinAdmissionSchema.safeParse(reply.body);
    return { answer: admission.success ? admission.data : null, proof: answerProofSchema.safeParse(reply.body).data?.proof };
  }
  return { answer: { admitted: false, code: reply.error.code, message: reply.error.message }, proof: answerProofSchema.safeParse(reply.error.details).data?.proof };
}

/**
 * One auto-join request: this node asks on `<prefix>.discover` to join `cluster` (proven with the join
 * secret, if it has one, and stamped with the node's clock); the leader of that cluster answers. With
 * a secret, only an answer that proves it is taken: whoever else hears `<prefix>.discover` could
 * answer first; such an answer is dropped, counted and logged, and the request keeps waiting. The
 * announce loop below repeats it; the simulator (test/sim) sends it as it is.
 */
export async function requestJoin(ctx: ControllerContext, joinSecret: Uint8Array | null, cluster: string): Promise<JoinRequestOutcome> {
  const req = makeJoinRequest(joinSecret, { cluster, name: ctx.name, nodeId: ctx.store.identity().nodeId, protocolVersion: PROTOCOL_VERSION }, ctx.clock.now());
  const subject = `${ctx.prefix}.discover`;
  const nonces = new NonceCache();
  let dropped = 0;
  const proven = (reply: BusMessage): boolean => {
    if (joinSecret === null) return true;
    const { answer, proof } = joinAnswerOf(reply.data);
    const verdict: VerifyResult =
      answer === null
        ? { ok: false, code: 'JOIN_AUTH', reason: 'no-proof', message: `auto-join answer dropped: a malformed answer to ${ctx.name}'s request to join cluster ${cluster}` }
        : verifyJoinAnswer(joinSecret, req, answer, proof, nonces, ctx.clock.now());
    if (verdict.ok) return true;
    dropped++;
    // what it claimed, said as a claim: the diagnostic of a cluster without (or with another) secret
    const claim = answer === null ? '' : answer.admitted ? `; it claimed an admission by ${answer.leader}` : `; it said: ${answer.message}`;
    ctx.reportRefusal('autojoin', { reason: `answer-auth:${verdict.reason}`, from: subject, localClusterId: null, remoteClusterId: cluster, message: `${verdict.message}${claim}` });
    return false;
  };
  let data: Uint8Array;
  try {
    const reply = await ctx.bus.request(subject, encode(ctx.sender(), 'join.request', req), { timeoutMs: AUTO_JOIN.requestTimeoutMs, ...(joinSecret === null ? {} : { accept: proven }) });
    data = reply.data;
  } catch (err) {
    if (!isUnreachable(err)) throw err;
    return { answer: 'unanswered', error: err, dropped };
  }
  const decoded = decodeReply(data);
  if (decoded.ok) {
    const admission = joinAdmissionSchema.safeParse(decoded.body);
    if (!admission.success) return { answer: 'refused', code: 'BAD_REPLY', message: `auto-join: a malformed answer to the request to join cluster ${cluster}` };
    return { answer: 'admitted', admission: admission.data };
  }
  return { answer: 'refused', code: decoded.error.code, message: decoded.error.message };
}

/** the blank node's side: ask, wait, ask again — until a member, removed or failed */
export const announceMachine = setup({
  types: { context: {} as { attempt: number; admitted: boolean }, events: {} as { type: 'PHASE' } },
  actors: {
    /** provided by the controller: one announcement, and what came of it */
    announce: fromPromise<Answer>(async () => 'unanswered'),
  },
  actions: {
    recordAnswer: assign(({ context }, answer: Answer) => ({ admitted: answer === 'admitted', attempt: answer === 'admitted' ? 0 : context.attempt + 1 })),
    logMember: () => {},
    logStopped: (_, _params: { error: unknown }) => {},
  },
  guards: {
    /** provided by the controller: the node's phase */
    isMember: () => false,
    hasEnded: () => false,
    isBlank: () => false,
  },
  delays: {
    retry: ({ context }) => (context.admitted ? AUTO_JOIN.afterAdmissionMs : backoffDelay(AUTO_JOIN.retry, context.attempt)),
  },
}).createMachine({
  id: 'announce',
  context: { attempt: 0, admitted: false },
  initial: 'checking',
  states: {
    checking: {
      always: [{ guard: 'isMember', target: 'member' }, { guard: 'hasEnded', target: 'ended' }, { guard: 'isBlank', target: 'asking' }, { target: 'waiting' }],
    },
    asking: {
      invoke: {
        src: 'announce',
        onDone: { target: 'waiting', actions: { type: 'recordAnswer', params: ({ event }) => event.output } },
        onError: { target: 'ended', actions: { type: 'logStopped', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    waiting: { after: { retry: 'checking' }, on: { PHASE: 'checking' } },
    member: { type: 'final', entry: 'logMember' },
    ended: { type: 'final' },
  },
});

export class AutoJoin {
  private readonly nonces = new NonceCache();
  private readonly admitting = new Set<string>();
  private subscription: BusSubscription | null = null;
  private stopAnnouncing: (() => void) | null = null;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly membership: MembershipOps,
    private readonly joinSecret: Uint8Array | null,
  ) {}

  /** every member hears `<prefix>.discover` (the leader answers) */
  listen(): void {
    this.subscription = this.ctx.bus.subscribe(`${this.ctx.prefix}.discover`, (msg) => this.onDiscover(msg));
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.stopAnnouncing?.();
    this.stopAnnouncing = null;
  }

  /** `<prefix>.discover`: the leader of the addressed cluster answers */
  private onDiscover(msg: BusMessage): void {
    const ctx = this.ctx;
    // only a leader answers: the others do not even decode the request
    if (ctx.phase() !== 'member' || ctx.member()?.status().role !== 'leader') return;
    const decoded = decode(msg.data, DISCOVER_BODIES);
    if (!decoded.ok) {
      ctx.logFor('autojoin').debug({ failure: decoded.failure, detail: decoded.detail }, 'dropped a malformed discover message');
      return;
    }
    const req = decoded.body;
    const clusterId = ctx.store.identity().clusterId;
    // addressed to another cluster on the same prefix, or not ours to answer: stay silent
    if (clusterId === null || req.cluster !== clusterId) return;
    // the answer to a request that proved the secret (once: not to a copy of it, which is `replayed`)
    // is proven over that request, so the node can tell it from a forged one
    const proof = { verified: false };
    const proofOf = (answer: JoinAnswer) => (this.joinSecret === null || !proof.verified ? {} : { proof: proveJoinAnswer(this.joinSecret, req, answer) });
    const reply = (r: Parameters<typeof encodeReply>[0]) => {
      if (msg.reply) msg.respond(encodeReply(r));
    };
    this.admit(req, decoded.envelope, proof).then(
      (admission) => reply({ ok: true, body: { ...admission, ...proofOf(admission) } }),
      (err: unknown) => {
        const code = codeOf(err) ?? 'INTERNAL';
        const message = (err as Error).message;
        if (!(err instanceof ConclaveError)) ctx.log.error({ err }, 'auto-join admission failed');
        reply({ ok: false, error: { code, message, details: { clusterId, ...proofOf({ admitted: false, code, message }) } } });
      },
    );
  }

  /** the leader's decision on one auto-join request (`proof.verified`: its proof passed); the add itself runs in the background */
  private async admit(req: JoinRequest, envelope: Envelope, proof: { verified: boolean }): Promise<JoinAdmission> {
    const ctx = this.ctx;
    const clusterId = ctx.store.identity().clusterId!;
    const refuse = (code: ErrorCode, message: string): never => {
      ctx.reportRefusal('autojoin', { reason: 'auto-join', from: req.name, localClusterId: clusterId, remoteClusterId: envelope.clusterId, message });
      throw conclaveError(code, message, { clusterId });
    };
    if (envelope.from !== req.name || envelope.nodeId !== req.nodeId) {
      refuse('BAD_REQUEST', `auto-join refused: the request names ${req.name} (${req.nodeId}) but was sent by ${envelope.from} (${envelope.nodeId ?? 'no node id'})`);
    }
    if (this.joinSecret === null) {
      refuse(
        'JOIN_AUTH',
        `auto-join refused: auto-join is off in cluster ${clusterId} (no joinSecretFile configured on its members); add ${req.name} with \`conclave cluster add ${req.name} --via ${ctx.name}\`, or configure joinSecretFile`,
      );
    }
    if (req.protocolVersion < MIN_PROTOCOL_VERSION || req.protocolVersion > PROTOCOL_VERSION) {
      refuse('PROTOCOL_VERSION', `auto-join refused: ${req.name} speaks protocol version ${req.protocolVersion} but ${ctx.name} speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`);
    }
    // a request states the newest version its node speaks: below the cluster's, it could not follow
    const clusterVersion = ctx.sender().version ?? MIN_PROTOCOL_VERSION;
    if (req.protocolVersion < clusterVersion) {
      refuse('PROTOCOL_VERSION', `auto-join refused: ${req.name} speaks protocol versions up to ${req.protocolVersion}, and cluster ${clusterId} runs at cluster version ${clusterVersion}; upgrade ${req.name} to a release that speaks ${clusterVersion}`);
    }
    const verdict = verifyJoinRequest(this.joinSecret!, req, this.nonces, ctx.clock.now());
    if (!verdict.ok) refuse(verdict.code, verdict.message);
    proof.verified = true;
    const rule = checkJoin({ name: ctx.name, clusterId }, { name: req.name, clusterId: envelope.clusterId });
    // (ctx.testFaults: the simulator's planted bug, never set in production)
    if (!rule.allowed && ctx.testFaults?.joinSkipsRule !== true) refuse('JOIN_REFUSED', rule.message);
    const maxVoters = ctx.opts.join?.maxVoters ?? DEFAULT_MAX_VOTERS;
    const membership = ctx.requireLeader().raftStatus().membership;
    const current = membership.members.find((m) => m.nodeId === req.nodeId);
    const voter = current?.voter === true || membership.members.filter((m) => m.voter).length < maxVoters;
    if (!this.admitting.has(req.nodeId)) {
      this.admitting.add(req.nodeId);
      const log = ctx.logFor('autojoin');
      log.info({ joiner: req.name, joinerId: req.nodeId, voter }, `auto-join: admitting ${req.name} (${req.nodeId}) as ${voter ? 'a voter' : 'a learner (maxVoters reached)'}`);
      this.membership
        .runChange({ op: 'add', target: req.name, maxAttempts: 3, deadlineMs: AUTO_JOIN.addDeadlineMs, maxVoters, expectNodeId: req.nodeId })
        .then(
          (out) => log.info({ joiner: req.name, outcome: out.outcome }, `auto-join: ${req.name} ${out.outcome}`),
          (err: unknown) => log.warn({ joiner: req.name, err: (err as Error).message }, `auto-join: adding ${req.name} failed: ${(err as Error).message}; it will ask again`),
        )
        .finally(() => this.admitting.delete(req.nodeId));
    }
    return { admitted: true, leader: ctx.name, clusterId, voter };
  }

  /** a blank node with `join.cluster`: ask on `<prefix>.discover` until that cluster has added it */
  announceUntilAdmitted(cluster: string): void {
    if (this.stopAnnouncing) return;
    const ctx = this.ctx;
    const log = ctx.logFor('autojoin');
    const subject = `${ctx.prefix}.discover`;
    let lastProblem = '';
    let lastLog = Number.NEGATIVE_INFINITY;
    if (this.joinSecret === null) log.warn({ cluster }, `auto-join to cluster ${cluster} without a join secret: the cluster will refuse; set join.secretFile`);
    const announce = async (): Promise<Answer> => {
      const outcome = await requestJoin(ctx, this.joinSecret, cluster);
      switch (outcome.answer) {
        case 'admitted': {
          const { admission } = outcome;
          log.info({ cluster, leader: admission.leader, voter: admission.voter }, `auto-join: admitted by ${admission.leader}; waiting for its join offer`);
          lastProblem = '';
          return 'admitted';
        }
        case 'refused':
          if (outcome.message !== lastProblem) ctx.reportRefusal('autojoin', { reason: 'auto-join', from: subject, localClusterId: null, remoteClusterId: cluster, message: outcome.message });
          lastProblem = outcome.message;
          return 'refused';
        case 'unanswered':
          if (ctx.stopping()) throw outcome.error;
          lastProblem =
            outcome.dropped > 0
              ? `no answer proven with the join secret came from cluster ${cluster} on ${subject} yet (${outcome.dropped} unproven dropped)`
              : `no leader of cluster ${cluster} answered on ${subject} yet`;
          if (ctx.clock.now() - lastLog >= AUTO_JOIN.logEveryMs) {
            lastLog = ctx.clock.now();
            log.info({ cluster }, `auto-join: ${lastProblem}; still asking`);
          }
          return 'unanswered';
      }
    };
    const actor = createActor(
      announceMachine.provide({
        actors: { announce: fromPromise(announce) },
        guards: {
          isMember: () => ctx.phase() === 'member',
          hasEnded: () => ctx.stopping() || ctx.phase() === 'removed' || ctx.phase() === 'failed',
          isBlank: () => ctx.phase() === 'uninitialized',
        },
        actions: {
          logMember: () => log.info({ cluster }, `auto-join: member of cluster ${ctx.store.identity().clusterId}`),
          logStopped: (_, { error }) => {
            if (!ctx.stopping()) log.error({ err: error }, `auto-join stopped: ${(error as Error).message}`);
          },
        },
      }),
      { id: `announce:${ctx.name}`, clock: ctx.clock },
    );
    const offPhase = ctx.events.on('phaseChanged', () => actor.send({ type: 'PHASE' }));
    this.stopAnnouncing = () => {
      offPhase();
      actor.stop();
    };
    actor.start();
  }
}
