// The consensus runtime of a member: the pure raft core given hands. It persists what the core
// asks (durably, BEFORE sending the messages that depend on it), sends one bus message per peer
// per batch, applies committed entries to the replicated state, streams snapshots in chunks and
// installs received ones without restarting. Peer messages are checked against the join rule.
//
// This module starts the parts and holds what they share; each concern lives in its own module:
// peerWire.ts (wire schema), inbound.ts (filtering), readyLoop.ts (persist → send → apply →
// advance), memberApply.ts (apply), memberClient.ts (client operations), forwarding.ts (to the
// leader), liveness.ts (pings), written against ports.ts (store, bus, clock, random).
import type { AdminReply, AdminRequest, ForwardedOp } from '../runtime/wire/adminProtocol.ts';
import { RaftCore, type RaftStatus, type Ready } from '../machines/raft/core.ts';
import { raftRoleMachine } from '../machines/raft/roleMachine.ts';
import type { Membership, SnapshotMeta } from '../machines/raft/types.ts';
import type { MembershipChange } from '../machines/membership/config.ts';
import { type ConclaveError, conclaveError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log/logger.ts';
import { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import { AppliedState, type DeferredState, HostAppliedState } from './appliedState.ts';
import type { BusSubscription } from '../runtime/transport/types.ts';
import { type Sender, type WireLimits, wireLimits } from '../runtime/wire/codec.ts';
import { entryBytes } from '../machines/raft/size.ts';
import { MemberSnapshots, snapshotTiming } from './snapshots.ts';
import { type Actor, createActor } from 'xstate';
import { Forwarding } from './forwarding.ts';
import { Inbound } from './inbound.ts';
import { Liveness } from './liveness.ts';
import { Applier } from './memberApply.ts';
import { ClientOps } from './memberClient.ts';
import type { MemberRuntime, MemberRuntimeOptions, MemberStatus } from './memberTypes.ts';
import { type Clock, realClock } from './ports.ts';
import { ReadyLoop } from './readyLoop.ts';
import { Leadership } from './leadership.ts';
import { Outbound } from './outbound.ts';

export { appliedMembershipIncludes } from './memberApply.ts';
export type { MemberEvents, MemberInfo, MemberRuntime, MemberRuntimeOptions, MemberStatus } from './memberTypes.ts';

export function createMemberRuntime(opts: MemberRuntimeOptions): MemberRuntime {
  return new RaftMember(opts);
}

class RaftMember implements MemberRuntime {
  private core!: RaftCore;
  private subscription: BusSubscription | null = null;
  private role: Actor<typeof raftRoleMachine> | null = null;
  private stopped = false;
  /** the ready loop failed (e.g. disk full): nothing more is persisted, sent or applied */
  private halted = false;
  readonly log: Logger;
  readonly dropLog: RateLimitedLog;
  readonly clock: Clock;
  /** joining mode: onJoined was called */
  private joinedReported = false;
  /** membership as of the applied index (what a snapshot must record) */
  appliedMembership!: Membership;
  private snapshotIndex = 0;

  /** what fits one message on this bus (from its max payload): commands, appends, snapshot chunks */
  readonly limits: WireLimits;
  /** snapshots streamed to followers (leader) and received from the leader (snapshots.ts) */
  private readonly snapshots: MemberSnapshots;
  /** bytes of the log entries applied since the last snapshot (compaction by bytes) */
  private logBytesSinceSnapshot = 0;

  /** the replicated state as applied (durable write deferred; see appliedState.ts): the KV or the host's */
  readonly state: DeferredState;
  /** the built-in KV (null when the host supplied its own state) */
  readonly kv: AppliedState | null = null;
  /** the host's state (null for the built-in KV) */
  readonly hostState: HostAppliedState | null = null;

  private readonly loop: ReadyLoop;
  readonly applier: Applier;
  private readonly client: ClientOps;
  private readonly forwarding: Forwarding;
  readonly liveness: Liveness;
  private readonly inbound: Inbound;
  private readonly outbound: Outbound;
  private readonly leadership: Leadership;

  constructor(private readonly opts: MemberRuntimeOptions) {
    this.log = opts.logger;
    this.dropLog = new RateLimitedLog(opts.logger);
    this.clock = opts.clock ?? realClock;
    this.limits = wireLimits(opts.bus.maxPayload);
    if (opts.state) {
      this.hostState = new HostAppliedState(opts.store, opts.state, (err) => this.halt(err));
      this.state = this.hostState;
    } else {
      this.kv = new AppliedState(opts.store, (err) => this.halt(err));
      this.state = this.kv;
    }
    this.snapshots = new MemberSnapshots(
      {
        name: opts.name,
        store: opts.store,
        bus: opts.bus,
        log: this.log,
        dropLog: this.dropLog,
        state: this.state,
        hostState: this.hostState,
        joiningClusterId: opts.joining?.clusterId ?? null,
        nodeId: () => this.nodeId,
        sender: () => this.sender(),
        peerSubject: (nodeId) => this.outbound.peerSubject(nodeId),
        nameOf: (nodeId) => this.nameOf(nodeId),
        drop: (reason, detail, from) => this.inbound.drop(reason, detail, from),
        deliver: (message) => {
          // the core restores its log to the snapshot (and then asks to install it) or refuses it, at once
          const before = this.core.snapshotIndex;
          this.role?.send({ type: 'PEER_MESSAGE', messages: [message] });
          return before !== message.snapshot.index && this.core.snapshotIndex === message.snapshot.index;
        },
        progress: (chunks, bytes) => opts.onSnapshotProgress?.(chunks, bytes),
        snapshotMetaAt: (index) => this.core.snapshotMetaAt(index),
        transferEnded: (to, ok) => {
          if (this.stopped || this.halted || this.core.currentRole !== 'leader') return;
          this.core.reportSnapshot(to, ok);
          this.kick();
        },
      },
      snapshotTiming(this.limits.commandBytes, opts.timing.electionTimeoutMs),
    );
    const member = this;
    this.loop = new ReadyLoop(
      {
        core: () => this.core,
        persist: (batch) => opts.store.persist(batch),
        installSnapshot: (meta) => this.installSnapshot(meta),
        send: (messages) => this.outbound.send(messages),
        apply: (committed) => this.applier.apply(committed),
        settle: (rd) => this.settleReady(rd),
        advanced: (rd) => this.advanced(rd),
        beforeRound: () => this.client.flushProposals(),
        done: () => this.stopped || this.halted,
        halt: (err) => this.halt(err),
        soon: (fn) => this.clock.soon(fn),
      },
      opts.testFaults,
    );
    this.applier = new Applier(
      {
        nodeId: this.nodeId,
        store: opts.store,
        dropLog: this.dropLog,
        events: opts.events,
        get appliedMembership() {
          return member.appliedMembership;
        },
        set appliedMembership(membership: Membership) {
          member.appliedMembership = membership;
        },
        maybeJoined: () => this.maybeJoined(),
        emitMembership: () => this.emitMembership(),
        onRemoved: () => opts.onRemoved(),
        onClusterId: opts.onClusterId,
        onFatal: (err) => opts.onFatal(err),
      },
      this.kv,
      this.hostState,
      () => this.state.appliedIndex(),
    );
    const common = { name: opts.name, prefix: opts.prefix, bus: opts.bus, clock: this.clock, electionTimeoutMs: opts.timing.electionTimeoutMs, nodeId: this.nodeId };
    this.forwarding = new Forwarding({
      ...common,
      leader: () => this.core.leader,
      stopped: () => this.stopped,
      sender: () => this.sender(),
      nameOf: (nodeId) => this.nameOf(nodeId),
      notLeaderError: () => this.notLeaderError(),
    });
    this.client = new ClientOps({
      name: opts.name,
      log: this.log,
      limits: this.limits,
      state: this.state,
      kv: this.kv,
      hostState: this.hostState,
      applier: this.applier,
      core: () => this.core,
      role: () => this.role,
      refusing: () => (this.halted ? 'halted after a storage failure' : this.stopped ? 'shutting down' : null),
      kick: () => this.kick(),
      nameOf: (nodeId) => this.nameOf(nodeId),
      notLeaderError: () => this.notLeaderError(),
      forwardToLeader: (type, body, o) => this.forwarding.forwardToLeader(type, body, o),
    });
    this.liveness = new Liveness({ ...common, dropLog: this.dropLog, sender: () => this.sender(), membership: () => this.core.membership });
    this.inbound = new Inbound({
      ...common,
      log: this.log,
      dropLog: this.dropLog,
      liveness: this.liveness,
      clusterId: () => this.clusterId,
      generation: () => this.cachedSender?.generation,
      sender: () => this.sender(),
      role: () => this.core.currentRole,
      membership: () => this.core.membership,
      stopped: () => this.stopped,
      halt: (err) => this.halt(err),
      toCore: (messages) => this.role?.send({ type: 'PEER_MESSAGE', messages }),
      onSnapshotChunk: (chunk, from, generation, bytes) => this.snapshots.onChunk(chunk, from, generation, bytes),
      onSnapshotAck: (from, ack) => this.snapshots.onAck(from, ack),
      onRefused: opts.onRefused,
      onNonMember: opts.onNonMember,
    });
    this.outbound = new Outbound({
      prefix: opts.prefix,
      bus: opts.bus,
      limits: this.limits,
      dropLog: this.dropLog,
      peerNames: this.inbound.peerNames,
      sender: () => this.sender(),
      membership: () => this.core.membership,
      appliedMembership: () => this.appliedMembership,
      sendSnapshot: (m) => this.snapshots.send(m),
    });
    this.leadership = new Leadership({
      ...common,
      log: this.log,
      store: opts.store,
      events: opts.events,
      joining: opts.joining !== undefined,
      peerNames: this.inbound.peerNames,
      core: () => this.core,
      role: () => this.role,
      nameOf: (nodeId) => this.nameOf(nodeId),
      notLeaderError: () => this.notLeaderError(),
      leaderLeft: (role) => this.forwarding.onLeaderLeft(role),
      leadershipLost: (notLeader, outcomeUnknown) => {
        this.snapshots.cancel(notLeader);
        // reads waiting on our leadership cannot be confirmed any more
        this.client.rejectReads(notLeader);
        this.applier.rejectAll(outcomeUnknown);
      },
    });
  }

  /** peer input refused (malformed, foreign, or that would break an invariant), counted by reason */
  get dropped(): ReadonlyMap<string, number> {
    return this.inbound.dropped;
  }

  get nodeId(): string {
    return this.senderCache().nodeId!;
  }

  private get clusterId(): string | null {
    return this.senderCache().clusterId;
  }

  private cachedSender: Sender | null = null;
  /** identity as a sender, cached: it is read for every message and changes only on (re)join */
  private senderCache(): Sender {
    const id = this.opts.store.identity();
    // a joining node acts under the cluster id it accepted (and only that one) until it is durable
    const clusterId = id.clusterId ?? this.opts.joining?.clusterId ?? null;
    // the generation is stated only with a durable cluster id: a joining node adopts the cluster's with its first state
    const generation = id.clusterId === null ? undefined : id.generation;
    if (this.cachedSender === null || this.cachedSender.clusterId !== clusterId || this.cachedSender.generation !== generation) {
      this.cachedSender = { name: this.opts.name, nodeId: id.nodeId, clusterId, generation };
    }
    return this.cachedSender;
  }

  private sender(): Sender {
    return this.senderCache();
  }

  async start(): Promise<void> {
    const { store, timing } = this.opts;
    const snapshot = store.snapshotMeta();
    const entries = store.entries(store.firstIndex(), store.lastIndex() + 1);
    this.snapshotIndex = snapshot?.index ?? 0;
    this.appliedMembership = snapshot?.membership ?? { members: [] };
    const applied = store.appliedIndex();
    const hardState = store.hardState();
    this.loop.restore(hardState);
    // replay config entries up to the applied index so appliedMembership is current
    for (const e of entries) {
      if (e.index > applied) continue;
      if (e.type === 'config') this.appliedMembership = e.data as Membership;
      this.logBytesSinceSnapshot += entryBytes(e);
    }
    // the host state as of the durable applied index; committed entries after it are re-applied
    this.hostState?.load();
    const coreOptions = {
      id: this.nodeId,
      electionTicks: Math.max(2, Math.round(timing.electionTimeoutMs / timing.heartbeatMs)),
      heartbeatTicks: 1,
      random: this.opts.random ?? Math.random,
      maxEntriesPerMessage: timing.maxEntriesPerMessage,
      maxBytesPerMessage: this.limits.appendBytes,
      maxInflight: timing.maxInflight,
      maxInflightBytes: this.limits.inflightBytes,
      // the persisted commit index may lag (commit-only changes are not forced to disk)
      restore: { hardState: { ...hardState, commit: Math.max(hardState.commit, applied) }, snapshot, entries, applied },
    };
    this.core = this.opts.makeCore ? this.opts.makeCore(coreOptions) : new RaftCore(coreOptions);
    this.subscription = this.opts.bus.subscribe(`${this.opts.prefix}.node.${this.opts.name}.peer`, (msg) => this.inbound.onPeerMessage(msg));
    await this.opts.bus.flush();
    // the role chart owns the clock (a delayed transition per tick) and feeds the core
    this.role = createActor(raftRoleMachine.provide({ actions: { emitReady: () => this.kick() } }), {
      id: `raft:${this.opts.name}`,
      input: { core: this.core, tickMs: timing.heartbeatMs },
      inspect: this.opts.inspect,
      ...(this.opts.clock ? { clock: this.opts.clock } : {}),
    });
    this.role.start();
    this.liveness.start();
    this.log.info({ term: store.hardState().term, applied, lastIndex: store.lastIndex(), members: this.appliedMembership.members.length }, 'raft started');
    // the host learns the membership this runtime starts with (a joining node: with its first snapshot)
    if (this.appliedMembership.members.length > 0) this.emitMembership();
    this.kick();
  }

  private stopping: Promise<void> | null = null;

  /** idempotent: every caller waits for the same, complete shutdown */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (!this.halted) await this.leadership.handOver();
    this.stopped = true;
    this.role?.stop();
    this.snapshots.cancel(conclaveError('STOPPING', `${this.opts.name} is shutting down`));
    this.liveness.stop();
    this.subscription?.unsubscribe();
    const stopping = conclaveError('STOPPING', `${this.opts.name} is shutting down; retry against another member`);
    this.applier.rejectAll(stopping);
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
  private halt(err: unknown): void {
    if (this.halted) return;
    this.log.error({ err }, 'raft runtime halted');
    this.halted = true;
    this.role?.stop();
    this.opts.onFatal(err);
  }

  // ---- status ----

  private nameOf(nodeId: string | null): string | null {
    if (nodeId === null) return null;
    const m = this.core.membership.members.find((x) => x.nodeId === nodeId);
    return m?.name ?? nodeId;
  }

  status(): MemberStatus {
    const s = this.core.status();
    const reachable = this.liveness.reachable();
    return {
      role: s.role,
      term: s.term,
      leader: this.nameOf(s.leader),
      commitIndex: s.commit,
      appliedIndex: this.state.appliedIndex(),
      members: s.membership.members.map((m) => ({
        name: m.name,
        nodeId: m.nodeId,
        voter: m.voter,
        leader: m.nodeId === s.leader,
        reachable: reachable(m.nodeId),
        matchIndex: m.nodeId === this.nodeId ? s.lastIndex : (s.progress[m.nodeId]?.matchIndex ?? 0),
      })),
    };
  }

  raftStatus(): RaftStatus {
    return this.core.status();
  }

  snapshotStreamed(nodeId: string): number {
    return this.snapshots.streamed(nodeId);
  }

  // ---- client operations (memberClient.ts) and forwarding (forwarding.ts) ----

  propose(command: unknown): Promise<unknown> {
    return this.client.propose(command);
  }

  read(query: unknown, opts?: { stale?: boolean }): Promise<unknown> {
    return this.client.read(query, opts);
  }

  handleAdmin(type: 'propose' | 'read', body: unknown): Promise<unknown> {
    return this.client.handleAdmin(type, body);
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

  exportSnapshot(): Promise<{ index: number; term: number; pairs: Array<[string, unknown]> }> {
    return this.client.exportSnapshot();
  }

  forwardToLeader<O extends ForwardedOp>(type: O, body: AdminRequest<O>, opts: { timeoutMs: number; changesState: boolean }): Promise<AdminReply<O>> {
    return this.forwarding.forwardToLeader(type, body, opts);
  }

  private notLeaderError(): ConclaveError {
    const leader = this.nameOf(this.core.leader);
    return leader
      ? conclaveError('NOT_LEADER', `${this.opts.name} is not the leader (the leader is ${leader})`, { leader })
      : conclaveError('NO_LEADER', 'cluster has no leader right now (an election may be under way, or there is no quorum); retry shortly');
  }

  // ---- inbound (inbound.ts) ----

  private drop(reason: string, detail: string, from?: string): void {
    this.inbound.drop(reason, detail, from);
  }

  // ---- the ready loop (readyLoop.ts): persist → send → apply → advance ----

  /** run the ready loop soon, once, batching whatever arrives in the meantime (group commit) */
  private kick(): void {
    this.loop.kick();
  }

  /** after apply: answer reads, report role changes and refused messages */
  private settleReady(rd: Ready): void {
    this.client.settleReads(rd.readStates, rd.failedReads);
    if (rd.softState) this.leadership.onSoftState(rd.softState);
    for (const r of rd.refused) this.drop(r.reason, r.detail, this.nameOf(r.from) ?? r.from);
  }

  /** the core knows the new applied index only after advance: snapshot from here */
  private advanced(rd: Ready): void {
    if (rd.committed.length === 0) return;
    for (const e of rd.committed) this.logBytesSinceSnapshot += entryBytes(e);
    this.maybeSnapshot(rd.committed[rd.committed.length - 1]!.index);
  }

  // ---- snapshots (snapshots.ts) ----

  private async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const { keys, adoptedClusterId: joiningClusterId } = await this.snapshots.install(meta);
    if (joiningClusterId !== null) this.cachedSender = null;
    const membershipChanged = !sameMembers(this.appliedMembership, meta.membership);
    this.appliedMembership = meta.membership;
    this.snapshotIndex = meta.index;
    this.logBytesSinceSnapshot = 0;
    this.log.info({ index: meta.index, term: meta.term, keys }, 'installed snapshot (no restart)');
    if (membershipChanged) this.emitMembership();
    this.notifyApplied(meta.index);
    if (joiningClusterId !== null) {
      this.log.info({ clusterId: joiningClusterId, index: meta.index }, `took the state of cluster ${joiningClusterId}; a member once a committed configuration includes it`);
      this.opts.onAdopted?.(joiningClusterId);
    }
    this.maybeJoined();
  }

  /**
   * joining mode: the node is a member once a committed configuration it has applied (a snapshot's
   * or a log entry's) includes it. A leader's learner entry that never commits makes it none.
   */
  private maybeJoined(): void {
    if (!this.opts.joining || this.joinedReported) return;
    const clusterId = this.opts.store.identity().clusterId;
    if (clusterId === null || !this.appliedMembership.members.some((m) => m.nodeId === this.nodeId)) return;
    this.joinedReported = true;
    this.log.info({ clusterId }, `joined cluster ${clusterId}: a committed configuration includes ${this.opts.name}`);
    this.opts.onJoined?.(clusterId);
  }

  private emitMembership(): void {
    this.opts.events?.membershipChanged(this.appliedMembership.members.map((m) => ({ name: m.name, nodeId: m.nodeId, voter: m.voter })));
  }

  private notifyApplied(index: number): void {
    this.applier.notifyApplied(index);
  }

  private maybeSnapshot(applied: number): void {
    // by entries, or by bytes: a few large values make a large log long before many small ones do
    const { snapshotEvery, snapshotEveryBytes } = this.opts.timing;
    if (applied - this.snapshotIndex < snapshotEvery && this.logBytesSinceSnapshot < snapshotEveryBytes) return;
    const meta = this.core.snapshotMetaAt(applied);
    this.snapshotIndex = applied;
    this.logBytesSinceSnapshot = 0;
    // compaction may drop only log entries whose effects are durable in the state
    this.state.flush();
    // the state db already holds the snapshot's data: record its meta and drop the log below it
    this.opts.store.saveSnapshotAndCompact(meta).then(
      () => {
        this.core.compact(meta);
        this.log.info({ index: meta.index, term: meta.term }, 'snapshot taken, log compacted');
      },
      (err: unknown) => this.log.error({ err }, 'snapshot failed; the log is kept'),
    );
  }
}

function sameMembers(a: Membership, b: Membership): boolean {
  if (a.members.length !== b.members.length) return false;
  return a.members.every((m, i) => {
    const o = b.members[i]!;
    return o.nodeId === m.nodeId && o.name === m.name && o.voter === m.voter;
  });
}
