// The consensus runtime of a member: the pure raft core given hands. It persists what the core
// asks (durably, BEFORE sending the messages that depend on it), sends one bus message per peer
// per batch, applies committed entries to the replicated state, streams snapshots in chunks and
// installs received ones without restarting. Peer messages are checked against the join rule.
//
// This module owns the lifecycle (start, stop, halt) and the public surface; memberParts.ts wires
// the parts, each concern in its own module: peerWire.ts (wire schema), inbound.ts (filtering),
// outbound.ts (packing), readyLoop.ts (persist → send → apply → advance), memberApply.ts (apply),
// memberClient.ts (client operations), forwarding.ts (to the leader), liveness.ts (pings),
// compaction.ts, appliedMembership.ts, memberIdentity.ts, memberStatus.ts — all written against
// ports.ts (store, bus, clock, random), so the simulator (test/sim) runs this very code.
import type { AdminReply, AdminRequest, ForwardedOp } from '../runtime/wire/adminProtocol.ts';
import { RaftCore, type RaftStatus, type Ready } from '../machines/raft/core.ts';
import { raftRoleMachine } from '../machines/raft/roleMachine.ts';
import type { Membership, SnapshotMeta } from '../machines/raft/types.ts';
import type { MembershipChange } from '../machines/membership/config.ts';
import { type ConclaveError, conclaveError } from '../runtime/errors.ts';
import { memberStatus, nameIn, notLeaderError } from './memberStatus.ts';
import type { Logger } from '../runtime/log/logger.ts';
import { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import { AppliedState, type DeferredState, HostAppliedState } from './appliedState.ts';
import type { BusSubscription } from '../runtime/transport/types.ts';
import { type Sender, type WireLimits, wireLimits } from '../runtime/wire/codec.ts';
import type { MemberSnapshots } from './snapshots.ts';
import { type Actor, createActor } from 'xstate';
import type { Forwarding } from './forwarding.ts';
import type { Inbound } from './inbound.ts';
import type { Liveness } from './liveness.ts';
import type { Applier } from './memberApply.ts';
import type { ClientOp, ClientOps } from './memberClient.ts';
import type { MemberRuntime, MemberRuntimeOptions, MemberStatus, SnapshotCounts } from './memberTypes.ts';
import { type Clock, type Random, realClock } from './ports.ts';
import type { ReadyLoop } from './readyLoop.ts';
import { wireParts } from './memberParts.ts';
import { withPlantedBug } from './plantedBugs.ts';
import { StageTimes } from './stageTimes.ts';
import type { Compaction } from './compaction.ts';
import { MemberIdentity } from './memberIdentity.ts';
import { AppliedMembership } from './appliedMembership.ts';
import type { Leadership } from './leadership.ts';
import type { Outbound } from './outbound.ts';
import { type ClusterVersion, clusterVersionOf, refuseNewerClusterVersion } from './clusterVersion.ts';

export { appliedMembershipIncludes } from './memberApply.ts';
export type { MemberEvents, MemberInfo, MemberRuntime, MemberRuntimeOptions, MemberStatus } from './memberTypes.ts';

export function createMemberRuntime(opts: MemberRuntimeOptions): MemberRuntime {
  return new RaftMember(withPlantedBug(opts)); // test-only switch, off unless NODE_ENV=test (plantedBugs.ts)
}

class RaftMember implements MemberRuntime {
  core!: RaftCore;
  private subscription: BusSubscription | null = null;
  role: Actor<typeof raftRoleMachine> | null = null;
  stopped = false;
  /** the ready loop failed (e.g. disk full): nothing more is persisted, sent or applied */
  halted = false;
  readonly log: Logger;
  readonly dropLog: RateLimitedLog;
  readonly clock: Clock;
  readonly random: Random;
  /** membership as of the applied index (what a snapshot must record), and joining (appliedMembership.ts) */
  readonly membership: AppliedMembership;

  /** what fits one message on this bus (from its max payload): commands, appends, snapshot chunks */
  readonly limits: WireLimits;
  /** snapshots streamed to followers (leader) and received from the leader (snapshots.ts) */
  private readonly snapshots: MemberSnapshots;
  /** snapshots of the applied state and log compaction (compaction.ts) */
  private readonly compaction: Compaction;
  /** identity as a sender, cached (memberIdentity.ts) */
  readonly identity: MemberIdentity;

  /** the replicated state as applied (durable write deferred; see appliedState.ts): the KV or the host's */
  readonly state: DeferredState;
  /** the built-in KV (null when the host supplied its own state) */
  readonly kv: AppliedState | null = null;
  /** the host's state (null for the built-in KV) */
  readonly hostState: HostAppliedState | null = null;

  /** where a write's time goes on this node (stageTimes.ts) */
  readonly stageTimes = new StageTimes();

  snapshotCounts(): SnapshotCounts {
    return { taken: this.compaction.taken, ...this.snapshots.transfers };
  }

  private readonly loop: ReadyLoop;
  readonly applier: Applier;
  private readonly client: ClientOps;
  private readonly forwarding: Forwarding;
  readonly liveness: Liveness;
  private readonly inbound: Inbound;
  private readonly outbound: Outbound;
  private readonly leadership: Leadership;
  private readonly versions: ClusterVersion;

  constructor(readonly opts: MemberRuntimeOptions) {
    this.log = opts.logger;
    this.dropLog = new RateLimitedLog(opts.logger);
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.limits = wireLimits(opts.bus.maxPayload);
    this.identity = new MemberIdentity(opts.name, opts.store, opts.joining?.clusterId ?? null);
    this.membership = new AppliedMembership({
      name: opts.name,
      store: opts.store,
      log: this.log,
      events: opts.events,
      onJoined: opts.onJoined,
      joining: opts.joining !== undefined,
      nodeId: () => this.nodeId,
    });
    if (opts.state) {
      this.hostState = new HostAppliedState(opts.store, opts.state, (err) => this.halt(err), this.clock, this.stageTimes);
      this.state = this.hostState;
    } else {
      this.kv = new AppliedState(opts.store, (err) => this.halt(err), this.clock, this.stageTimes);
      this.state = this.kv;
    }
    const parts = wireParts(this);
    this.snapshots = parts.snapshots;
    this.compaction = parts.compaction;
    this.loop = parts.loop;
    this.applier = parts.applier;
    this.client = parts.client;
    this.forwarding = parts.forwarding;
    this.liveness = parts.liveness;
    this.inbound = parts.inbound;
    this.outbound = parts.outbound;
    this.leadership = parts.leadership;
    this.versions = parts.clusterVersion;
  }

  /** peer input refused (malformed, foreign, or that would break an invariant), counted by reason */
  get dropped(): ReadonlyMap<string, number> {
    return this.inbound.dropped;
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }


  sender(): Sender {
    return this.identity.sender(clusterVersionOf(this.membership.current));
  }

  async start(): Promise<void> {
    const { store, timing } = this.opts;
    const snapshot = store.snapshotMeta();
    const entries = store.entries(store.firstIndex(), store.lastIndex() + 1);
    const applied = store.appliedIndex();
    const hardState = store.hardState();
    this.loop.restore(hardState);
    // replay config entries up to the applied index so appliedMembership is current
    const appliedEntries = entries.filter((e) => e.index <= applied);
    this.membership.restore(snapshot?.membership, appliedEntries);
    refuseNewerClusterVersion(this.opts.name, this.identity.clusterId, this.membership.current);
    this.compaction.restore(snapshot?.index ?? 0, appliedEntries);
    // the host state as of the durable applied index; committed entries after it are re-applied
    this.hostState?.load();
    const coreOptions = {
      id: this.nodeId,
      electionTicks: Math.max(2, Math.round(timing.electionTimeoutMs / timing.heartbeatMs)),
      heartbeatTicks: 1,
      random: this.random,
      maxEntriesPerMessage: timing.maxEntriesPerMessage,
      maxBytesPerMessage: this.limits.appendBytes,
      maxInflight: timing.maxInflight,
      maxInflightBytes: this.limits.inflightBytes,
      quietHeartbeats: true,
      // the persisted commit index may lag (commit-only changes are not forced to disk)
      restore: { hardState: { ...hardState, commit: Math.max(hardState.commit, applied) }, snapshot, entries, applied },
    };
    this.core = this.opts.makeCore ? this.opts.makeCore(coreOptions) : new RaftCore(coreOptions);
    this.subscription = this.opts.bus.subscribe(`${this.opts.prefix}.node.${this.opts.name}.peer`, (msg) => this.inbound.onPeerMessage(msg));
    await this.opts.bus.flush();
    // before the first election timeout: the members' replay windows start from their fresh answers
    this.inbound.greet();
    if (this.opts.advanceElectionAtStart !== false) this.electionAdvance = { startedAt: this.clock.now(), electionTicks: coreOptions.electionTicks, tickMs: timing.heartbeatMs };
    // the role chart owns the clock (a delayed transition per tick) and feeds the core
    this.role = createActor(raftRoleMachine.provide({ actions: { emitReady: () => this.kick() } }), {
      id: `raft:${this.opts.name}`,
      input: { core: this.core, tickMs: timing.heartbeatMs },
      inspect: this.opts.inspect,
      ...(this.opts.clock ? { clock: this.opts.clock } : {}),
    });
    this.role.start();
    this.maybeAdvanceElection(); // now, when no window has to start first
    this.liveness.start();
    this.versions.start();
    // damage a read finds (a client's, a snapshot's, the controller's) stops the node as a failed write does
    this.offDamage = store.onDamage?.((err) => this.clock.soon(() => this.halt(err))) ?? null;
    this.log.info({ term: store.hardState().term, applied, lastIndex: store.lastIndex(), members: this.membership.current.members.length }, 'raft started');
    // the host learns the membership this runtime starts with (a joining node: with its first snapshot)
    if (this.membership.current.members.length > 0) this.membership.emit();
    this.kick();
  }

  /** the advance of this start's first election timeout, until it is made (or cannot help any more) */
  private electionAdvance: { startedAt: number; electionTicks: number; tickMs: number } | null = null;

  /**
   * Advance the election clock (advanceElectionClock) once a majority of the voters, this node
   * included, take what it sends: before that its first campaign would be dropped as unsynced
   * (freshness.ts) and cost a whole randomized timeout more, as etcd waits for its peers' connections
   * before it advances. The ticks already elapsed since the start are counted (rounded up, the role
   * chart cannot have ticked more), so the clock still stays below the smallest randomized timeout.
   * Not once a leader was heard or the core left the follower role on its own. Called at start and
   * each time a member's window starts.
   */
  maybeAdvanceElection(): void {
    const pending = this.electionAdvance;
    if (pending === null || this.core === undefined || this.stopped) return;
    const membership = this.core.membership;
    const voters = membership.members.filter((m) => m.voter);
    const synced = voters.filter((m) => m.nodeId === this.nodeId || this.inbound.syncedWith(m)).length;
    if (synced < Math.floor(voters.length / 2) + 1) return;
    this.electionAdvance = null;
    if (this.core.currentRole !== 'follower' || this.core.status().leader !== null) return;
    const elapsed = Math.ceil((this.clock.now() - pending.startedAt) / pending.tickMs);
    advanceElectionClock(this.core, pending.electionTicks, membership, this.nodeId, elapsed);
  }

  private stopping: Promise<void> | null = null;
  /** stops listening for damage the store's reads find */
  private offDamage: (() => void) | null = null;

  /** idempotent: every caller waits for the same, complete shutdown */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    // a core that never started (its store refused) leads nothing to hand over
    if (!this.halted && this.core !== undefined) await this.leadership.handOver();
    this.stopped = true;
    this.offDamage?.();
    this.role?.stop();
    this.snapshots.cancel(conclaveError('STOPPING', `${this.opts.name} is shutting down`));
    this.liveness.stop();
    this.versions.stop();
    this.subscription?.unsubscribe();
    const stopping = conclaveError('STOPPING', `${this.opts.name} is shutting down; retry against another member`);
    // a proposal already in the log may still commit (its entry may have reached followers): its outcome is unknown
    this.applier.rejectAll(conclaveError('OUTCOME_UNKNOWN', `${this.opts.name} ${this.halted ? 'halted' : 'is shutting down'} while the proposal was in its log; it may or may not have been applied — read it back and retry if needed`));
    this.client.rejectReads(stopping);
    this.client.rejectQueued(stopping);
    this.forwarding.stop();
    // let an in-flight persist finish, then make the applied state durable, before the store closes
    await this.loop.whenIdle();
    // after a halt nothing more is written: the log is the truth and is re-applied on restart
    if (this.halted) this.state.discard();
    try {
      this.state.close();
    } catch (err) {
      this.log.error({ err }, 'could not write the applied state at shutdown; it is re-applied from the log on restart');
    }
  }

  /**
   * A failed durable write (disk full, I/O error): nothing that depends on it may be sent or
   * acknowledged. Stop persisting, sending and applying, and report.
   */
  halt(err: unknown): void {
    if (this.halted) return;
    this.log.error({ err }, 'raft runtime halted');
    this.halted = true;
    this.role?.stop();
    this.opts.onFatal(err);
  }

  // ---- status (memberStatus.ts) ----

  nameOf(nodeId: string | null): string | null {
    return nameIn(this.core.membership, nodeId);
  }

  status(): MemberStatus {
    // before the core exists (starting, or its store refused it): no role, nothing known of others
    if (this.core === undefined) return { role: 'none', term: this.opts.store.hardState().term, leader: null, commitIndex: 0, appliedIndex: this.state.appliedIndex(), members: [] };
    return memberStatus(this.core, {
      nodeId: this.nodeId,
      appliedIndex: this.state.appliedIndex(),
      reachable: this.liveness.reachable(),
      speaks: (nodeId) => this.versions.speaksOf(nodeId),
      clusterVersion: this.versions.view(),
    });
  }

  raftStatus(): RaftStatus {
    return this.core.status();
  }

  appliedMembership(): Membership {
    return this.membership.current;
  }

  clusterVersion(): number {
    return clusterVersionOf(this.membership.current);
  }

  snapshotStreamed(nodeId: string): number {
    return this.snapshots.streamed(nodeId);
  }

  private readonly progressListeners = new Set<() => void>();

  onProgress(listener: () => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  private progressScheduled = false;

  /**
   * Followers' progress may have moved: tell who listens, once the current turn is done (a listener
   * may act on the member — propose a promotion — which must not happen inside a round of the ready
   * loop). A listener's failure is its own, not the member's.
   */
  progressed(): void {
    if (this.progressScheduled || this.progressListeners.size === 0) return;
    this.progressScheduled = true;
    this.clock.soon(() => {
      this.progressScheduled = false;
      for (const listener of this.progressListeners) {
        try {
          listener();
        } catch (err) {
          this.log.error({ err }, 'a progress listener failed');
        }
      }
    });
  }

  // ---- client operations (memberClient.ts) and forwarding (forwarding.ts) ----

  propose(command: unknown): Promise<unknown> {
    return this.client.propose(command);
  }

  read(query: unknown, opts?: { stale?: boolean }): Promise<unknown> {
    return this.client.read(query, opts);
  }

  /** `from`: the request's envelope (a forward from a fenced-off generation is refused) */
  handleAdmin(type: ClientOp, body: unknown, from?: { from: string; clusterId: string | null; gen?: number }): Promise<unknown> {
    return this.client.handleAdmin(type, body, from);
  }

  confirmLeadership(): Promise<number> {
    return this.client.confirmLeadership();
  }

  changeMembership(change: MembershipChange): Promise<void> {
    return this.client.changeMembership(change);
  }

  transferLeadership(nodeId?: string): string {
    return this.client.transferLeadership(nodeId);
  }

  appliedState(): { appliedIndex: number; pairs: Array<[string, unknown]> } {
    return this.state.exportState();
  }

  exportSnapshot(): Promise<{ index: number; term: number; pairs: Array<[string, unknown]> }> {
    return this.client.exportSnapshot();
  }

  forwardToLeader<O extends ForwardedOp>(type: O, body: AdminRequest<O>, opts: { timeoutMs: number; changesState: boolean }): Promise<AdminReply<O>> {
    return this.forwarding.forwardToLeader(type, body, opts);
  }

  notLeaderError(): ConclaveError {
    return notLeaderError(this.opts.name, this.nameOf(this.core.leader));
  }

  // ---- inbound (inbound.ts) ----

  private drop(reason: string, detail: string, from?: string): void {
    this.inbound.drop(reason, detail, from);
  }

  // ---- the ready loop (readyLoop.ts): persist → send → apply → advance ----

  /** run the ready loop soon, once, batching whatever arrives in the meantime (group commit) */
  kick(): void {
    this.loop.kick();
  }

  /** after apply: answer reads, report role changes and refused messages */
  settleReady(rd: Ready): void {
    this.client.settleReads(rd.readStates, rd.failedReads);
    if (rd.softState) this.leadership.onSoftState(rd.softState);
    for (const r of rd.refused) this.drop(r.reason, r.detail, this.nameOf(r.from) ?? r.from);
    this.progressed();
  }


  // ---- snapshots (snapshots.ts) ----

  async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const { keys, adoptedClusterId } = await this.snapshots.install(meta);
    this.compaction.installed(meta.index);
    this.log.info({ index: meta.index, term: meta.term, keys }, 'installed snapshot (no restart)');
    this.membership.installed(meta.membership);
    this.applier.notifyApplied(meta.index);
    if (adoptedClusterId !== null) {
      this.log.info({ clusterId: adoptedClusterId, index: meta.index }, `took the state of cluster ${adoptedClusterId}; a member once a committed configuration includes it`);
      this.opts.onAdopted?.(adoptedClusterId);
    }
    this.membership.maybeJoined();
  }
}

/**
 * A start's first election timeout, cut from [T, 2T) to [1, T] ticks (T = electionTicks): the core's
 * election clock is advanced by T − 1 ticks before the role chart starts ticking it, as etcd does at
 * start (`--initial-election-tick-advance`, on by default). A process that has just started has heard
 * from no leader, so waiting a whole timeout first only delays a cluster's formation (≈T on average);
 * a later timeout, after a leader was heard, is the full randomized one. Timing only: Raft's safety
 * does not rest on timeouts (§5.2), and the elapsed ticks stay below the smallest randomized timeout,
 * so this never campaigns by itself and candidates still spread over T ticks. A node restarted into
 * a cluster with a live leader does not disrupt it: its campaign starts with a pre-vote, which members
 * that hear from the leader ignore (leader lease), and which bumps no term.
 * A sole voter campaigns at its first tick anyway; a learner or a node outside the configuration never does.
 * `elapsedTicks`: ticks the role chart may have given the core since the start (not repeated).
 */
export function advanceElectionClock(core: Pick<RaftCore, 'tick'>, electionTicks: number, membership: Membership, self: string, elapsedTicks = 0): void {
  const voters = membership.members.filter((m) => m.voter);
  if (voters.length < 2 || !voters.some((m) => m.nodeId === self)) return;
  for (let i = elapsedTicks; i < electionTicks - 1; i++) core.tick();
}
