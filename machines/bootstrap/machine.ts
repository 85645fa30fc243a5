// How a node comes to belong to a cluster. Pure statechart: the work (importing a source, writing
// the store, running raft) is done by actors the host supplies with `.provide({ actors })`.
//
//   loading ─┬─ removed            (the store says this node was removed)
//            ├─ joining            (it took a cluster's state while joining, but no committed
//            │                      configuration it knows includes it yet)
//            ├─ member             (the store has a cluster id: resume)
//            ├─ member             (an older store: raft state but no cluster id yet — the leader
//            │                      commits one through raft, CLUSTER_ID adopts it)
//            ├─ bootstrapping      (blank + initFrom configured: automatic initialization)
//            └─ uninitialized ─ INIT ─> bootstrapping ─> member   (explicit initialization)
//                             └ JOIN_ACCEPTED ─> joining ─ JOINED ─> member (added by a cluster)
//                                                       └ JOIN_TIMEOUT / JOIN_FAILED ─> uninitialized
//   (JOINED: a committed configuration includes the node. Once it holds the cluster's state and id
//    — ADOPTED — it can only ever join that cluster: no timeout takes it back to uninitialized.)
//   The join timeout counts from the last sign of life of the transfer: every JOIN_PROGRESS (chunks
//   of the cluster's state arriving) starts it over, so a large state may take as long as it needs
//   while a stalled transfer still ends, saying how much had arrived.
import { assign, cancel, fromCallback, fromPromise, raise, setup } from 'xstate';

export type Phase = 'uninitialized' | 'bootstrapping' | 'joining' | 'member' | 'removed' | 'failed';
export const PHASES: readonly Phase[] = ['uninitialized', 'bootstrapping', 'joining', 'member', 'removed', 'failed'];

export const DEFAULT_JOIN_TIMEOUT_MS = 60_000;

export interface ContactRecord {
  clusterId: string;
  by: string;
  at: string;
  /** the generation of the cluster that made the contact (absent: a contact recorded by an older release) */
  generation?: number;
}

export interface BootstrapInput {
  name: string;
  nodeId: string;
  clusterId: string | null;
  removed: boolean;
  contactedBy: ContactRecord | null;
  /** configured automatic-initialization source, if any */
  initFrom: string | null;
  /** how long a joining node waits for the first state from the cluster before it is blank again (default 60 s) */
  joinTimeoutMs?: number;
  /** the store holds raft state of a cluster created without an id (an older Conclave): resume as a member */
  legacyMember?: boolean;
  /** the store holds a cluster's id and state, taken while joining, but no committed configuration it applied includes this node */
  awaitingMembership?: boolean;
}

export interface BootstrapContext extends BootstrapInput {
  /** how the current or last bootstrap was started */
  source: 'explicit' | 'initFrom' | null;
  error: { code: string; message: string } | null;
  /** joining: how much of the cluster's state has arrived so far (snapshot chunks and their bytes) */
  received: { chunks: number; bytes: number };
}

export interface BootstrapCluster {
  source: 'explicit' | 'initFrom';
  initFrom: string | null;
}

export interface BootstrapDone {
  clusterId: string;
}

export interface JoinAccepted {
  clusterId: string;
  leader: string;
  /** the generation of the cluster the offer came from (absent: an older leader stated none) */
  generation?: number;
}

export type BootstrapEvent =
  | { type: 'INIT' }
  /** a cluster tried to add this blank node: from now on it must join, never fork a second cluster */
  | { type: 'CONTACTED'; contact: ContactRecord }
  /** the join handshake succeeded: the node adopts the cluster id together with the state it receives */
  | { type: 'JOIN_ACCEPTED'; join: JoinAccepted }
  /** chunks of the cluster's state are arriving: the join is alive (its timeout starts over) */
  | { type: 'JOIN_PROGRESS'; chunks: number; bytes: number }
  /** the join timeout passed without progress (raised by the machine itself) */
  | { type: 'JOIN_TIMEOUT' }
  /** the first state from the cluster is installed, durably together with the cluster id */
  | { type: 'ADOPTED'; clusterId: string }
  /** a committed configuration that includes this node is applied: it is a member */
  | { type: 'JOINED'; clusterId: string }
  | { type: 'JOIN_FAILED'; error: { code: string; message: string } }
  | { type: 'REMOVED' }
  /** upgrade of a cluster created without an id: the id committed through raft is now durable here */
  | { type: 'CLUSTER_ID'; clusterId: string }
  | { type: 'FAIL'; error: { code: string; message: string } };

/** Why an INIT request is refused in the current context, or null when it may proceed. */
export function initRefusal(ctx: Pick<BootstrapContext, 'clusterId' | 'contactedBy' | 'name'>, phase: Phase): { code: string; message: string } | null {
  if (ctx.clusterId !== null) {
    return {
      code: 'ALREADY_INITIALIZED',
      message: `init refused: ${ctx.name} is already a member of cluster ${ctx.clusterId}`,
    };
  }
  if (ctx.contactedBy) {
    return {
      code: 'CONTACTED',
      message: `init refused: ${ctx.name} was already contacted by cluster ${ctx.contactedBy.clusterId} (via ${ctx.contactedBy.by}); it must join that cluster, not fork a second one. If that cluster will never add it (its add failed for good, or the offer was not genuine), stop ${ctx.name}, run \`conclave store forget-contact --data-dir <its data dir>\` and init it again`,
    };
  }
  if (phase !== 'uninitialized') {
    return { code: 'BUSY', message: `init refused: ${ctx.name} is ${phase}, not uninitialized` };
  }
  return null;
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    return { code: typeof e.code === 'string' ? e.code : 'ERROR', message: typeof e.message === 'string' ? e.message : String(err) };
  }
  return { code: 'ERROR', message: String(err) };
}

export const bootstrapMachine = setup({
  types: {
    context: {} as BootstrapContext,
    events: {} as BootstrapEvent,
    input: {} as BootstrapInput,
  },
  actors: {
    /** validate the source (if any), make a cluster id, write it with the initial state in one durable write */
    bootstrapCluster: fromPromise<BootstrapDone, BootstrapCluster>(async () => {
      throw new Error('bootstrapCluster is supplied by the controller');
    }),
    /**
     * run raft in joining mode (traffic from the joined cluster id only) until the first snapshot is
     * installed with the cluster id in one durable write; reports JOINED or JOIN_FAILED
     */
    joinCluster: fromCallback<BootstrapEvent, JoinAccepted>(() => () => {}),
    /** durable record that a cluster contacted this blank node */
    recordContact: fromPromise<void, ContactRecord>(async () => {}),
    /** consensus and replicated state while the node is a member */
    memberRuntime: fromCallback(() => () => {}),
  },
  guards: {
    isRemoved: ({ context }) => context.removed,
    hasClusterId: ({ context }) => context.clusterId !== null,
    isLegacyMember: ({ context }) => context.legacyMember === true,
    isAwaitingMembership: ({ context }) => context.clusterId !== null && context.awaitingMembership === true,
    hasNoClusterId: ({ context }) => context.clusterId === null,
    hasInitFrom: ({ context }) => context.initFrom !== null,
    mayInit: ({ context }) => initRefusal(context, 'uninitialized') === null,
    startedFromInitFrom: ({ context }) => context.source === 'initFrom',
  },
  actions: {
    markInitFromSource: assign({ source: 'initFrom' as const, error: null }),
    markExplicitSource: assign({ source: 'explicit' as const, error: null }),
    adoptClusterId: assign({
      clusterId: (_, params: { clusterId: string }) => params.clusterId,
      contactedBy: null,
    }),
    rememberContact: assign({ contactedBy: (_, params: { contact: ContactRecord }) => params.contact }),
    recordAdoptedClusterId: assign({ clusterId: (_, params: { clusterId: string }) => params.clusterId }),
    recordError: assign({ error: (_, params: { error: unknown }) => errorOf(params.error) }),
    markRemoved: assign({ removed: true }),
    recordJoinTimeout: assign({
      error: ({ context }) => {
        const ms = context.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS;
        const { chunks, bytes } = context.received;
        const what =
          chunks === 0
            ? `received no state within ${ms} ms`
            : `received ${chunks} chunks (${(bytes / 1e6).toFixed(1)} MB) of its state, then nothing for ${ms} ms (the transfer stalled)`;
        return { code: 'TIMEOUT', message: `${context.name} accepted to join cluster ${context.contactedBy?.clusterId ?? '?'} but ${what}; it waits to be added again` };
      },
    }),
    forgetProgress: assign({ received: { chunks: 0, bytes: 0 } }),
    recordProgress: assign({ received: (_, params: { chunks: number; bytes: number }) => params }),
    armJoinTimeout: raise({ type: 'JOIN_TIMEOUT' }, { id: 'joinTimeout', delay: 'joinTimeout' }),
    disarmJoinTimeout: cancel('joinTimeout'),
  },
  delays: {
    joinTimeout: ({ context }) => context.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS,
  },
}).createMachine({
  id: 'bootstrap',
  context: ({ input }) => ({ ...input, source: null, error: null, received: { chunks: 0, bytes: 0 } }),
  initial: 'loading',
  states: {
    loading: {
      always: [
        { guard: 'isRemoved', target: 'removed' },
        { guard: 'isAwaitingMembership', target: 'joining' },
        { guard: 'hasClusterId', target: 'member' },
        { guard: 'isLegacyMember', target: 'member' },
        { guard: 'hasInitFrom', target: 'bootstrapping', actions: 'markInitFromSource' },
        { target: 'uninitialized' },
      ],
    },
    uninitialized: {
      on: {
        INIT: { guard: 'mayInit', target: 'bootstrapping', actions: 'markExplicitSource' },
        CONTACTED: { target: 'contacted' },
        JOIN_ACCEPTED: { target: 'joining' },
      },
    },
    /** a transient step that makes the contact record durable before anything else happens */
    contacted: {
      entry: { type: 'rememberContact', params: ({ event }) => ({ contact: (event as { contact: ContactRecord }).contact }) },
      invoke: {
        src: 'recordContact',
        input: ({ context }) => context.contactedBy!,
        onDone: { target: 'uninitialized' },
        onError: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    bootstrapping: {
      invoke: {
        src: 'bootstrapCluster',
        input: ({ context }) => ({ source: context.source ?? 'explicit', initFrom: context.initFrom }),
        onDone: {
          target: 'member',
          actions: { type: 'adoptClusterId', params: ({ event }) => ({ clusterId: event.output.clusterId }) },
        },
        onError: [
          // a bad configured source is a configuration error: the process stops, nothing written
          {
            guard: 'startedFromInitFrom',
            target: 'failed',
            actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) },
          },
          { target: 'uninitialized', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
        ],
      },
    },
    joining: {
      entry: ['forgetProgress', 'armJoinTimeout'],
      exit: 'disarmJoinTimeout',
      invoke: {
        id: 'joinCluster',
        src: 'joinCluster',
        // entered from loading (a restart while joining): the cluster whose id the store holds
        input: ({ context, event }) => (event as { join?: JoinAccepted }).join ?? { clusterId: context.clusterId!, leader: context.contactedBy?.by ?? 'its leader' },
      },
      on: {
        ADOPTED: { actions: { type: 'recordAdoptedClusterId', params: ({ event }) => ({ clusterId: event.clusterId }) } },
        JOINED: { target: 'member', actions: { type: 'adoptClusterId', params: ({ event }) => ({ clusterId: event.clusterId }) } },
        JOIN_FAILED: { target: 'uninitialized', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
        JOIN_PROGRESS: { actions: [{ type: 'recordProgress', params: ({ event }) => ({ chunks: event.chunks, bytes: event.bytes }) }, 'disarmJoinTimeout', 'armJoinTimeout'] },
        JOIN_TIMEOUT: { guard: 'hasNoClusterId', target: 'uninitialized', actions: 'recordJoinTimeout' },
      },
    },
    member: {
      invoke: { id: 'memberRuntime', src: 'memberRuntime' },
      on: {
        REMOVED: { target: 'removed', actions: 'markRemoved' },
        CLUSTER_ID: { actions: { type: 'adoptClusterId', params: ({ event }) => ({ clusterId: event.clusterId }) } },
        FAIL: { target: 'failed', actions: { type: 'recordError', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    removed: {},
    failed: {},
  },
});

export type BootstrapMachine = typeof bootstrapMachine;

/** The phase a bootstrap state stands for: `loading` and `contacted` are transient steps of a blank node. */
export function phaseOf(value: unknown): Phase {
  return (PHASES as readonly unknown[]).includes(value) ? (value as Phase) : 'uninitialized';
}
