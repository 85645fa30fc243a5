// The bootstrap chart's implementations (machines/bootstrap): bootstrapping a one-member cluster
// (blank, or from initFrom), recording a contact, joining (a member runtime in joining mode until its
// first state is durable) and running as a member. The member runtime it starts is this node's.
import { SPEAKS } from '../clusterVersion.ts';
import { v7 as uuidv7 } from 'uuid';
import { fromCallback, fromPromise } from 'xstate';
import type { BootstrapCluster, BootstrapDone, BootstrapEvent, BootstrapInput, ContactRecord, JoinAccepted } from '../../machines/bootstrap/machine.ts';
import type { StoreIdentity } from '../../runtime/store/index.ts';
import type { HardState, Membership, SnapshotMeta } from '../../machines/raft/types.ts';
import { DEFAULT_RAFT } from '../../runtime/config/config.ts';
import { codeOf, conclaveError } from '../../runtime/errors.ts';
import { initialStatePairs } from '../../runtime/state/host.ts';
import { type InitSource, readInitSource } from '../../runtime/state/initSource.ts';
import { createMemberRuntime, type MemberRuntime, type MemberRuntimeOptions } from '../member.ts';
import type { ControllerContext } from './context.ts';

/** the bootstrap chart's input: what the store says of this node, and how it may start (the controller's, and the simulator's) */
export function bootstrapInput(
  name: string,
  identity: Pick<StoreIdentity, 'nodeId' | 'clusterId' | 'removed' | 'contactedBy'>,
  start: Pick<BootstrapInput, 'initFrom' | 'joinTimeoutMs' | 'legacyMember' | 'awaitingMembership'>,
): BootstrapInput {
  return { name, nodeId: identity.nodeId, clusterId: identity.clusterId, removed: identity.removed === true, contactedBy: identity.contactedBy ?? null, ...start };
}

export interface MemberHooks {
  /** a member runtime reports this node removed, or keeps hearing a non-member (./removal.ts) */
  markRemoved(why: string): Promise<void>;
  onNonMember(name: string, nodeId: string): void;
  /** runs while this node is a member (initialMembers); returns the function that stops it */
  whileMember(): () => void;
}

/** the bootstrap chart's error for a failure: its code when it has one */
const failure = (error: unknown) => ({ code: codeOf(error) ?? 'FATAL', message: (error as Error).message });

export class MemberLifecycle {
  /** the member runtime while there is one (joining or member) */
  member: MemberRuntime | null = null;
  /** the runtime started in joining mode, handed to the member phase once the first state is durable */
  private joining: MemberRuntime | null = null;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly hooks: MemberHooks,
    /** validated by startController before any connection; imported once, then forgotten */
    private initSource: InitSource | null,
  ) {}

  /** the `actors` of bootstrapMachine.provide */
  implementations() {
    const ctx = this.ctx;
    return {
      bootstrapCluster: fromPromise<BootstrapDone, BootstrapCluster>(({ input }) => this.bootstrapCluster(input)),
      recordContact: fromPromise<void, ContactRecord>(({ input }) => ctx.store.updateIdentity({ contactedBy: input })),
      joinCluster: fromCallback<BootstrapEvent, JoinAccepted>(({ input }) => {
        let handedOver = false;
        const runtime = this.createRuntime({
          joining: { clusterId: input.clusterId, generation: input.generation },
          onAdopted: (clusterId) => ctx.actor().send({ type: 'ADOPTED', clusterId }),
          // #17 item 11: a large state takes a while; while it arrives the join is alive
          onSnapshotProgress: (chunks, bytes) => ctx.actor().send({ type: 'JOIN_PROGRESS', chunks, bytes }),
          onJoined: (clusterId) => {
            handedOver = true;
            ctx.actor().send({ type: 'JOINED', clusterId });
          },
        });
        this.member = runtime;
        this.joining = runtime;
        ctx.logFor('join').info({ joining: input.clusterId, leader: input.leader }, `joining cluster ${input.clusterId} (offered by ${input.leader}); waiting for its state`);
        runtime.start().catch((error: unknown) => ctx.actor().send({ type: 'JOIN_FAILED', error: failure(error) }));
        return () => {
          if (handedOver) return;
          this.joining = null;
          if (this.member === runtime) this.member = null;
          runtime.stop().catch((error: unknown) => ctx.log.error({ err: error }, 'joining runtime did not stop cleanly'));
        };
      }),
      memberRuntime: fromCallback(() => {
        // a node that just joined keeps the runtime that received its first state
        const runtime = this.joining ?? this.createRuntime({});
        const adopted = runtime === this.joining;
        this.joining = null;
        this.member = runtime;
        if (!adopted) runtime.start().catch((error: unknown) => ctx.actor().send({ type: 'FAIL', error: failure(error) }));
        const stopWhileMember = this.hooks.whileMember();
        return () => {
          stopWhileMember();
          if (this.member === runtime) this.member = null;
          runtime.stop().catch((error: unknown) => ctx.log.error({ err: error }, 'member runtime did not stop cleanly'));
        };
      }),
    };
  }

  /** after the bootstrap actor stopped (which stops its invocations): wait for both runtimes to finish */
  async stop(member: MemberRuntime | null): Promise<void> {
    await member?.stop();
    if (this.joining && this.joining !== this.member) await this.joining.stop();
    this.joining = null;
    this.member = null;
  }

  private createRuntime(extra: Pick<MemberRuntimeOptions, 'joining' | 'onAdopted' | 'onJoined' | 'onSnapshotProgress'>): MemberRuntime {
    const ctx = this.ctx;
    // callbacks go to the bootstrap actor itself: a joining runtime outlives the state that started it
    return createMemberRuntime({
      name: ctx.name,
      prefix: ctx.prefix,
      store: ctx.store,
      bus: ctx.bus,
      logger: ctx.logFor('member'),
      timing: { ...DEFAULT_RAFT, ...ctx.opts.raft },
      inspect: ctx.inspectionSink,
      onFatal: (error) => ctx.actor().send({ type: 'FAIL', error: failure(error) }),
      onRemoved: () => void this.hooks.markRemoved('the committed configuration no longer lists it'),
      onRefused: (refusal) => ctx.reportRefusal('member', refusal),
      onClusterId: (clusterId) => {
        ctx.logFor('upgrade').info({ adopted: clusterId }, `this cluster, created without an id, now has cluster id ${clusterId}`);
        ctx.actor().send({ type: 'CLUSTER_ID', clusterId });
      },
      onNonMember: (name, nodeId) => this.hooks.onNonMember(name, nodeId),
      state: ctx.opts.state,
      events: ctx.events.memberEvents(),
      ...(ctx.opts.clock ? { clock: ctx.opts.clock } : {}),
      random: ctx.random,
      ...extra,
    });
  }

  private async bootstrapCluster(input: BootstrapCluster): Promise<BootstrapDone> {
    const ctx = this.ctx;
    let source: InitSource | null = null;
    if (input.source === 'initFrom') {
      // Validated completely before anything is written: a bad source leaves the store blank.
      source = this.initSource ?? (await readInitSource(input.initFrom!));
      this.initSource = null;
    }
    const identity = ctx.store.identity();
    if (identity.clusterId !== null) {
      throw conclaveError('ALREADY_INITIALIZED', `init refused: ${ctx.name} is already a member of cluster ${identity.clusterId}`);
    }
    const clusterId = uuidv7();
    const key = ctx.store.memberKey?.().publicKey;
    // a cluster made by this release speaks its protocol from the start (every member it adds brings a key)
    const membership: Membership = { members: [{ nodeId: identity.nodeId, name: ctx.name, voter: true, key }], ...(key === undefined ? {} : { version: SPEAKS.max }) };
    // initialMembers travel in the replicated configuration, so whichever node leads later carries on
    const pending = [...new Set((ctx.opts.initialMembers ?? []).filter((n) => n !== ctx.name))];
    if (pending.length > 0) membership.pending = pending;
    // The bootstrap state is a snapshot at index 1, term 1: the imported data (if any) and a
    // one-voter configuration. The node then elects itself; later members catch up from it.
    const meta: SnapshotMeta = { index: 1, term: 1, membership };
    const hardState: HardState = { term: 1, vote: null, commit: 1 };
    await ctx.store.initializeCluster({
      clusterId,
      meta,
      pairs: source?.pairs ?? initialStatePairs(ctx.opts.state),
      hardState,
      importedFrom: source?.path,
    });
    ctx.logFor('bootstrap').info(
      { clusterId, source: input.source, ...(source ? { importedFrom: source.path, keys: source.pairs.length } : {}) },
      source ? `initialized cluster ${clusterId} from ${source.path}` : `initialized cluster ${clusterId}`,
    );
    return { clusterId };
  }
}
