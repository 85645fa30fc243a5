// The leader side of a membership change, one change per actor (the controller runs them one at a
// time). Pure statechart: the bus request, the raft proposal and the progress feed are actors the
// controller supplies with `.provide({ actors })`.
//
//   add:    offering ─ accepted ─> planning ─> deciding ─┬─ done            (already a voter: no-op)
//              │                                          ├─ catchingUp      (a learner already: resume)
//              ├─ refused (join rule, either end)         ├─ replacing ─> planning   (name held by an old node id)
//              │    └ via withdrawing, when the refusing  └─ addingLearner ─> catchingUp ─> promoting ─> done
//              │      node is listed as a learner: it is       (auto-join with maxVoters reached: done as a learner)
//              │      taken out of the configuration
//              └─ transient error ─> backoff ─> offering
//   remove: locating ─> deciding ─> removing ─> notifying ─> done
import { assign, fromCallback, fromPromise, setup } from 'xstate';
import { backoffDelay } from '../backoff.ts';
import { checkJoin, type ClusterId } from '../identity/index.ts';
import type { Membership } from '../raft/types.ts';
import { caughtUp, type LearnerProgress, type MembershipChange, planAdd } from './config.ts';

export interface NodeParty {
  name: string;
  nodeId: string;
  clusterId: ClusterId;
  /** its member key (runtime/store/memberKey.ts), committed with it; absent from an older node */
  key?: string;
}

/** What the node answered to a join offer. */
export type OfferReply = { accepted: true; party: NodeParty } | { accepted: false; party: NodeParty | null; code: string; message: string };

export interface MembershipInput {
  op: 'add' | 'remove';
  /** the node being added or removed */
  target: string;
  /** the leader running the change */
  leader: { name: string; nodeId: string; clusterId: string };
  /** offers and proposals tried at most this often (Infinity for initialMembers) */
  maxAttempts: number;
  /** give up after this long (ms); null: never */
  deadlineMs: number | null;
  /** a learner within this many entries of the leader's commit is caught up */
  catchUpLag: number;
  catchUpTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** auto-join: promote only while the configuration has fewer voters than this; beyond, the node stays a learner */
  maxVoters?: number | null;
  /** auto-join: the node id that asked to join; an answer from another node id under that name is refused */
  expectNodeId?: string | null;
}

export interface MembershipError {
  code: string;
  message: string;
  /** the cluster ids on both ends when the join rule refused */
  localClusterId?: ClusterId;
  remoteClusterId?: ClusterId;
}

export interface MembershipContext extends MembershipInput {
  attempt: number;
  node: NodeParty | null;
  membership: Membership | null;
  /** `streamed`: snapshot bytes the learner has acknowledged so far (a large state takes a while) */
  progress: (LearnerProgress & { streamed?: number }) | null;
  error: MembershipError | null;
  /** what happened, once done */
  outcome: 'added' | 'added-learner' | 'already-member' | 'removed' | null;
  /** the end that refused: 'leader' or 'node' */
  refusedBy: 'leader' | 'node' | null;
  /** refused: the node was listed as a learner (an earlier attempt added it) and that entry was withdrawn */
  withdrawn: boolean;
}

export interface MembershipOutput {
  outcome: MembershipContext['outcome'];
  error: MembershipError | null;
  node: NodeParty | null;
  refusedBy: 'leader' | 'node' | null;
  withdrawn: boolean;
}

export type MembershipEvent = { type: 'PROGRESS'; streamed?: number } & LearnerProgress;

/** errors worth retrying: the node is not answering yet, or the log is busy with another change */
const TRANSIENT = new Set(['NO_RESPONDERS', 'TIMEOUT', 'UNREACHABLE', 'BUSY', 'CATCH_UP', 'CONFIG_CHANGE_PENDING', 'CLOSED']);

function errorOf(err: unknown): MembershipError {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    return { code: typeof e.code === 'string' ? e.code : 'ERROR', message: typeof e.message === 'string' ? e.message : String(err) };
  }
  return { code: 'ERROR', message: String(err) };
}

/** milliseconds a timer may wait (setTimeout overflows above this and fires at once) */
const MAX_TIMER_MS = 2_147_483_647;

export const membershipMachine = setup({
  types: {
    context: {} as MembershipContext,
    events: {} as MembershipEvent,
    input: {} as MembershipInput,
    output: {} as MembershipOutput,
  },
  actors: {
    /** send `join.offer` to the node's admin subject; resolve with its answer, reject when unreachable */
    offerJoin: fromPromise<OfferReply, { target: string }>(async () => {
      throw new Error('offerJoin is supplied by the controller');
    }),
    /** the configuration in force on the leader (the latest appended one) */
    readMembership: fromPromise<Membership, void>(async () => {
      throw new Error('readMembership is supplied by the controller');
    }),
    /** propose one configuration change and resolve once it is committed */
    proposeChange: fromPromise<void, MembershipChange>(async () => {
      throw new Error('proposeChange is supplied by the controller');
    }),
    /** report the learner's match index and the leader's commit index (PROGRESS), periodically */
    watchProgress: fromCallback<MembershipEvent, { nodeId: string }>(() => () => {}),
    /** tell a removed node that it was removed (best effort: it may be down) */
    notifyRemoved: fromPromise<void, { name: string }>(async () => {}),
  },
  guards: {
    isRemove: ({ context }) => context.op === 'remove',
    /** the join rule at the leader's end, on the party the node answered as */
    leaderRuleRefuses: ({ context }) => context.node !== null && !checkJoin(context.leader, context.node).allowed,
    nodeRefused: ({ context }) => context.refusedBy === 'node',
    notTheRequester: ({ context }) => (context.expectNodeId ?? null) !== null && context.node !== null && context.node.nodeId !== context.expectNodeId,
    voterLimitReached: ({ context }) =>
      (context.maxVoters ?? null) !== null && context.membership !== null && context.membership.members.filter((m) => m.voter).length >= context.maxVoters!,
    /** the node that refused is listed as a learner of this cluster under the target's name (an earlier attempt added it) */
    refusingNodeIsLearner: ({ context }) => {
      const node = context.node;
      return node !== null && (context.membership?.members.some((m) => m.nodeId === node.nodeId && m.name === context.target && !m.voter) ?? false);
    },
    alreadyVoter: ({ context }) => context.node !== null && context.membership !== null && planAdd(context.membership, context.target, context.node.nodeId).kind === 'noop',
    alreadyLearner: ({ context }) => context.node !== null && context.membership !== null && planAdd(context.membership, context.target, context.node.nodeId).kind === 'resume',
    nameHeldByOldNode: ({ context }) => context.node !== null && context.membership !== null && planAdd(context.membership, context.target, context.node.nodeId).kind === 'replace',
    learnerCaughtUp: ({ context }) => context.progress !== null && caughtUp(context.progress, context.catchUpLag),
    /** the learner moved on (its match index, or the snapshot it is receiving): the catch-up timeout starts over */
    learnerProgressed: ({ context, event }) =>
      event.type === 'PROGRESS' &&
      context.progress !== null &&
      (event.matchIndex > context.progress.matchIndex || (event.streamed ?? 0) > (context.progress.streamed ?? 0)),
    targetNotMember: ({ context }) => context.node === null,
    targetIsLeader: ({ context }) => context.node?.nodeId === context.leader.nodeId,
    errorIsTransient: ({ context }) => context.error !== null && TRANSIENT.has(context.error.code),
    attemptsExhausted: ({ context }) => context.attempt >= context.maxAttempts,
  },
  actions: {
    recordReply: assign(({ context }, params: { reply: OfferReply }) => {
      const { reply } = params;
      if (reply.accepted) return { node: reply.party, refusedBy: null, error: null };
      const remote = reply.party?.clusterId ?? null;
      return {
        node: reply.party,
        refusedBy: 'node' as const,
        error: { code: reply.code, message: reply.message, localClusterId: context.leader.clusterId, remoteClusterId: remote },
      };
    }),
    recordLeaderRefusal: assign(({ context }) => {
      const verdict = checkJoin(context.leader, context.node!);
      return {
        refusedBy: 'leader' as const,
        error: {
          code: 'JOIN_REFUSED',
          message: verdict.allowed ? 'join refused' : verdict.message,
          localClusterId: context.leader.clusterId,
          remoteClusterId: context.node!.clusterId,
        },
      };
    }),
    recordImpostor: assign(({ context }) => ({
      refusedBy: 'leader' as const,
      error: {
        code: 'JOIN_REFUSED',
        message: `join refused: node ${context.expectNodeId} asked to join as ${context.target}, but ${context.target} answered the offer as node ${context.node!.nodeId}`,
      },
    })),
    markWithdrawn: assign(({ context }) => ({
      withdrawn: true,
      error: { ...context.error!, message: `${context.error!.message} (${context.target} was listed as a learner: withdrawn from the configuration)` },
    })),
    recordWithdrawFailure: assign(({ context }, params: { error: unknown }) => ({
      error: {
        ...context.error!,
        message: `${context.error!.message} (${context.target} is still listed as a learner: withdrawing it failed: ${errorOf(params.error).message}; remove it with \`conclave cluster remove ${context.target}\`)`,
      },
    })),
    recordMembership: assign({ membership: (_, params: { membership: Membership }) => params.membership }),
    locateTarget: assign(({ context }) => {
      const found = context.membership?.members.find((m) => m.name === context.target);
      return { node: found ? { name: found.name, nodeId: found.nodeId, clusterId: context.leader.clusterId } : null };
    }),
    recordProgress: assign({
      progress: ({ event }) => ({
        matchIndex: event.matchIndex,
        commitIndex: event.commitIndex,
        lastIndex: event.lastIndex,
        needsSnapshot: event.needsSnapshot,
        streamed: event.streamed ?? 0,
      }),
    }),
    recordError: assign({ error: (_, params: { error: unknown }) => errorOf(params.error) }),
    recordCatchUpTimeout: assign(({ context }) => ({
      error: {
        code: 'CATCH_UP',
        message: `${context.target} did not catch up within ${context.catchUpTimeoutMs} ms (match ${context.progress?.matchIndex ?? 0}, leader's last index ${context.progress?.lastIndex ?? '?'}${context.progress?.needsSnapshot ? ', a snapshot still to install' : ''})`,
      },
    })),
    recordNotMember: assign(({ context }) => ({
      error: { code: 'NOT_FOUND', message: `${context.target} is not a member of cluster ${context.leader.clusterId}; \`conclave cluster list\` shows the members` },
    })),
    recordRemoveLeader: assign(({ context }) => ({
      error: {
        code: 'BUSY',
        message: `${context.target} is the leader and cannot remove itself; run \`conclave cluster transfer-leadership --via ${context.target}\` first, then remove it`,
      },
    })),
    recordDeadline: assign(({ context }) => ({
      error: {
        code: 'TIMEOUT',
        message: `${context.op} ${context.target} did not finish within ${context.deadlineMs} ms (last error: ${context.error?.message ?? 'none'}); it may still complete — check \`conclave cluster list\` and retry (adding a member twice is a no-op)`,
      },
    })),
    countAttempt: assign({ attempt: ({ context }) => context.attempt + 1, progress: null }),
    markAdded: assign({ outcome: 'added' as const, error: null }),
    markAddedAsLearner: assign({ outcome: 'added-learner' as const, error: null }),
    markAlreadyMember: assign({ outcome: 'already-member' as const, error: null }),
    markRemoved: assign({ outcome: 'removed' as const, error: null }),
  },
  delays: {
    retryDelay: ({ context }) => backoffDelay({ baseMs: context.backoffBaseMs, maxMs: context.backoffMaxMs }, context.attempt),
    catchUpTimeout: ({ context }) => context.catchUpTimeoutMs,
    deadline: ({ context }) => Math.min(MAX_TIMER_MS, context.deadlineMs ?? MAX_TIMER_MS),
  },
}).createMachine({
  id: 'membership',
  context: ({ input }) => ({ ...input, attempt: 1, node: null, membership: null, progress: null, error: null, outcome: null, refusedBy: null, withdrawn: false }),
  initial: 'choosing',
  // the deadline covers the whole change, whatever step it is in
  after: { deadline: { target: '.failed', actions: 'recordDeadline' } },
  states: {
    choosing: {
      always: [{ guard: 'isRemove', target: 'locating' }, { target: 'offering' }],
    },
    // ---- add ----
    offering: {
      invoke: {
        src: 'offerJoin',
        input: ({ context }) => ({ target: context.target }),
        onDone: { target: 'answered', actions: { type: 'recordReply', params: ({ event }) => ({ reply: event.output }) } },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    answered: {
      always: [
        // the join rule at this end too, on the ids the node reported (also when it refused)
        { guard: 'leaderRuleRefuses', target: 'withdrawing', actions: 'recordLeaderRefusal' },
        { guard: 'nodeRefused', target: 'withdrawing' },
        { guard: 'notTheRequester', target: '#membership.refused', actions: 'recordImpostor' },
        { target: 'planning' },
      ],
    },
    // refused: a learner entry an earlier attempt added for this node would stay forever (a phantom
    // the leader replicates to); it is taken out, as one more change of this one-at-a-time run
    withdrawing: {
      invoke: {
        src: 'readMembership',
        onDone: { target: 'withdrawDeciding', actions: { type: 'recordMembership', params: ({ event }) => ({ membership: event.output }) } },
        onError: { target: '#membership.refused', actions: { type: 'recordWithdrawFailure', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    withdrawDeciding: {
      always: [{ guard: 'refusingNodeIsLearner', target: 'withdrawingLearner' }, { target: '#membership.refused' }],
    },
    withdrawingLearner: {
      invoke: {
        src: 'proposeChange',
        input: ({ context }) => ({ type: 'withdraw-learner' as const, nodeId: context.node!.nodeId }),
        onDone: { target: '#membership.refused', actions: 'markWithdrawn' },
        onError: { target: '#membership.refused', actions: { type: 'recordWithdrawFailure', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    planning: {
      invoke: {
        src: 'readMembership',
        onDone: { target: 'deciding', actions: { type: 'recordMembership', params: ({ event }) => ({ membership: event.output }) } },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    deciding: {
      always: [
        { guard: 'alreadyVoter', target: '#membership.done', actions: 'markAlreadyMember' },
        { guard: 'alreadyLearner', target: 'catchingUp' },
        { guard: 'nameHeldByOldNode', target: 'replacing' },
        { target: 'addingLearner' },
      ],
    },
    replacing: {
      invoke: {
        src: 'proposeChange',
        input: ({ context }) => ({ type: 'remove' as const, nodeId: planStaleId(context) }),
        onDone: { target: 'planning' },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    addingLearner: {
      invoke: {
        src: 'proposeChange',
        input: ({ context }) => ({ type: 'add-learner' as const, member: { name: context.target, nodeId: context.node!.nodeId, ...(context.node!.key === undefined ? {} : { key: context.node!.key }) } }),
        onDone: { target: 'catchingUp' },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    catchingUp: {
      invoke: { src: 'watchProgress', input: ({ context }) => ({ nodeId: context.node!.nodeId }) },
      on: {
        PROGRESS: [
          { guard: 'learnerCaughtUp', target: 'promotingOrNot' },
          { guard: 'learnerProgressed', target: 'catchingUp', reenter: true, actions: 'recordProgress' },
          { actions: 'recordProgress' },
        ],
      },
      always: { guard: 'learnerCaughtUp', target: 'promotingOrNot' },
      after: { catchUpTimeout: { target: 'failing', actions: 'recordCatchUpTimeout' } },
    },
    promotingOrNot: {
      always: [{ guard: 'voterLimitReached', target: '#membership.done', actions: 'markAddedAsLearner' }, { target: 'promoting' }],
    },
    promoting: {
      invoke: {
        src: 'proposeChange',
        input: ({ context }) => ({ type: 'promote' as const, nodeId: context.node!.nodeId }),
        onDone: { target: '#membership.done', actions: 'markAdded' },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    // ---- remove ----
    locating: {
      invoke: {
        src: 'readMembership',
        onDone: { target: 'located', actions: [{ type: 'recordMembership', params: ({ event }) => ({ membership: event.output }) }, 'locateTarget'] },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    located: {
      always: [
        { guard: 'targetNotMember', target: '#membership.failed', actions: 'recordNotMember' },
        { guard: 'targetIsLeader', target: '#membership.failed', actions: 'recordRemoveLeader' },
        { target: 'removing' },
      ],
    },
    removing: {
      invoke: {
        src: 'proposeChange',
        input: ({ context }) => ({ type: 'remove' as const, nodeId: context.node!.nodeId }),
        onDone: { target: 'notifying' },
        onError: { target: 'failing', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    notifying: {
      invoke: {
        src: 'notifyRemoved',
        input: ({ context }) => ({ name: context.target }),
        onDone: { target: '#membership.done', actions: 'markRemoved' },
        onError: { target: '#membership.done', actions: 'markRemoved' },
      },
    },
    // ---- retries ----
    failing: {
      always: [
        { guard: 'attemptsExhausted', target: '#membership.failed' },
        { guard: 'errorIsTransient', target: 'backoff' },
        { target: '#membership.failed' },
      ],
    },
    backoff: {
      after: { retryDelay: { target: 'choosing', actions: 'countAttempt' } },
    },
    done: { type: 'final' },
    refused: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ outcome: context.outcome, error: context.error, node: context.node, refusedBy: context.refusedBy, withdrawn: context.withdrawn }),
});

function planStaleId(context: MembershipContext): string {
  const plan = context.node && context.membership ? planAdd(context.membership, context.target, context.node.nodeId) : null;
  return plan?.kind === 'replace' ? plan.staleNodeId : '';
}

export type MembershipMachine = typeof membershipMachine;
