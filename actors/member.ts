// The consensus runtime of a member: the pure raft core given hands. It persists what the core
// asks (durably, BEFORE sending the messages that depend on it), sends one bus message per peer
// per batch, applies committed entries to the replicated state, streams snapshots in chunks and
// installs received ones without restarting. Peer messages are checked against the join rule.
import { randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { checkJoin, validNodeName } from '../machines/identity/index.ts';
import { checkGeneration } from '../machines/identity/generation.ts';
import { applyChange, type MembershipChange } from '../machines/membership/config.ts';
import { RaftCore, type RaftStatus, type Ready } from '../machines/raft/core.ts';
import { raftRoleMachine } from '../machines/raft/roleMachine.ts';
import type { RaftMessage } from '../machines/raft/messages.ts';
import type { Entry, Membership, Role, SnapshotMeta } from '../machines/raft/types.ts';
import type { RaftTiming } from '../runtime/config/config.ts';
import { adminCall, isUnreachable } from '../runtime/admin.ts';
import { ApplyFailedError, type ConclaveError, conclaveError } from '../runtime/errors.ts';
import type { Refusal } from '../runtime/inspect/protocol.ts';
import type { Logger } from '../runtime/log/logger.ts';
import { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import type { AnyReplicatedState } from '../runtime/state/host.ts';
import { applyKvBatch, kvCommandSchema, kvQuerySchema, queryKv } from '../runtime/state/kv.ts';
import { AppliedState, type DeferredState, HostAppliedState } from './appliedState.ts';
import { type GenerationClaim, unconfirmedClaim, unprovenClaim } from './staleGeneration.ts';
import type { NodeStore } from '../runtime/store/index.ts';
import { type Bus, type BusMessage, type BusSubscription, NoRespondersError } from '../runtime/transport/types.ts';
import { decode, encode, type Sender, type WireLimits, wireLimits } from '../runtime/wire/codec.ts';
import { entryBytes, jsonBytes } from '../machines/raft/size.ts';
import type { ChunkAck } from './snapshotStream.ts';
import { MemberSnapshots, type SnapshotChunkBody, snapshotTiming } from './snapshots.ts';
import { valueRefusal } from '../runtime/wire/limits.ts';
import { type Actor, createActor, type InspectionEvent } from 'xstate';

export interface MemberInfo {
  name: string;
  nodeId: string;
  voter: boolean;
  leader: boolean;
  reachable: boolean;
  matchIndex: number;
}

export interface MemberStatus {
  role: Role | 'none';
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  members: MemberInfo[];
}

export interface MemberRuntimeOptions {
  name: string;
  prefix: string;
  store: NodeStore;
  bus: Bus;
  logger: Logger;
  timing: RaftTiming;
  inspect?: (event: InspectionEvent) => void;
  onFatal(error: unknown): void;
  onRemoved(): void;
  /** the join rule refused a peer message: reported to the inspector and the log */
  onRefused?(refusal: Refusal): void;
  /** seeded randomness for election timeouts (tests); default Math.random */
  random?: () => number;
  /**
   * joining mode: this blank node accepted to join `clusterId`; it takes raft traffic from that
   * cluster only, and its first installed snapshot is written with the cluster id in one durable write
   */
  joining?: { clusterId: string };
  /** joining mode: the first snapshot, and with it the cluster id, is durable (the node is not a member yet) */
  onAdopted?(clusterId: string): void;
  /** joining mode: chunks of a snapshot keep arriving, `chunks` and `bytes` so far (throttled; the join is alive) */
  onSnapshotProgress?(chunks: number, bytes: number): void;
  /** joining mode: a committed configuration this node has applied includes it — it is a member */
  onJoined?(clusterId: string): void;
  /** upgrade of a cluster created without an id: the committed id is now durable in this store */
  onClusterId?(clusterId: string): void;
  /** leader only: a peer of this cluster that is no longer in the configuration keeps talking (it was removed) */
  onNonMember?(name: string, nodeId: string): void;
  /** the host's replicated state; default the built-in KV */
  state?: AnyReplicatedState;
  /** what a host can observe (see Controller.on) */
  events?: MemberEvents;
}

export interface MemberEvents {
  /** asked once per applied batch: the per-entry `applied` events are built only while someone listens */
  wantsApplied(): boolean;
  applied(index: number, command: unknown, result: unknown): void;
  leaderChanged(leader: string | null, term: number): void;
  membershipChanged(members: Array<{ name: string; nodeId: string; voter: boolean }>): void;
}

export interface MemberRuntime {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): MemberStatus;
  propose(command: unknown): Promise<unknown>;
  read(query: unknown, opts?: { stale?: boolean }): Promise<unknown>;
  /** admin requests that the controller forwards here (propose/read, possibly forwarded by a peer) */
  handleAdmin(type: 'propose' | 'read', body: unknown): Promise<unknown>;
  /** read index without a query: resolves once this node leads and has committed an entry of its term */
  confirmLeadership(): Promise<number>;
  /** send an admin request to the leader this node follows; fails fast when it stops following it */
  forwardToLeader(type: string, body: unknown, opts: { timeoutMs: number; changesState: boolean }): Promise<unknown>;
  /** leader only: propose one single-server configuration change; resolves once it is committed and applied */
  changeMembership(change: MembershipChange): Promise<void>;
  /** leader only: hand leadership to `nodeId` (or the most up-to-date voter); resolves with the target */
  transferLeadership(nodeId?: string): string;
  /** the core's view: configuration in force, commit index, per-peer progress (leader) */
  raftStatus(): RaftStatus;
  /** leader: bytes of snapshot that `nodeId` acknowledged in the transfer under way (0 when none) */
  snapshotStreamed(nodeId: string): number;
  /** leader only: the replicated state at a linearizable read point (for `snapshot save`) */
  exportSnapshot(): Promise<{ index: number; term: number; pairs: Array<[string, unknown]> }>;
  /** peer input refused (malformed, foreign, or that would break an invariant), counted by reason */
  readonly dropped: ReadonlyMap<string, number>;
}

// ---- peer wire: bodies of the envelopes on `<prefix>.node.<name>.peer` ----
const entrySchema = z.object({
  index: z.number().int().min(1),
  term: z.number().int().min(0),
  type: z.enum(['noop', 'command', 'config', 'clusterId']),
  data: z.unknown(),
})
  // the core reads a config entry's data as the configuration in force
  .refine((e) => e.type !== 'config' || membershipSchema.safeParse(e.data).success, { message: 'a config entry must carry a configuration', path: ['data'] });
const memberSchema = z.object({ nodeId: z.string(), name: z.string(), voter: z.boolean() });
const membershipSchema = z.object({ members: z.array(memberSchema), removed: z.array(z.string()).max(1000).optional(), pending: z.array(z.string()).max(1000).optional() });
const snapshotMetaSchema = z.object({
  index: z.number().int().min(0),
  term: z.number().int().min(0),
  membership: membershipSchema,
});
const base = { from: z.string(), to: z.string(), term: z.number().int().min(0) };
const raftMessageSchema = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.enum(['vote', 'pre-vote']), lastIndex: z.number().int(), lastTerm: z.number().int(), transfer: z.boolean() }),
  z.object({ ...base, type: z.enum(['vote-response', 'pre-vote-response']), granted: z.boolean() }),
  z.object({ ...base, type: z.literal('append'), prevIndex: z.number().int(), prevTerm: z.number().int(), entries: z.array(entrySchema), commit: z.number().int() }),
  z.object({ ...base, type: z.literal('append-response'), index: z.number().int(), reject: z.boolean(), rejectHint: z.number().int(), hintTerm: z.number().int() }),
  z.object({ ...base, type: z.literal('heartbeat'), commit: z.number().int(), context: z.string().nullable() }),
  z.object({ ...base, type: z.literal('heartbeat-response'), context: z.string().nullable() }),
  z.object({ ...base, type: z.literal('snapshot'), snapshot: snapshotMetaSchema }),
  z.object({ ...base, type: z.literal('timeout-now') }),
]);
const peerBodies: Record<string, z.ZodType<unknown>> = {
  raft: z.object({ messages: z.array(raftMessageSchema).min(1).max(10_000) }),
  'snapshot-chunk': z.object({
    message: raftMessageSchema,
    id: z.string(),
    seq: z.number().int().min(0),
    last: z.boolean(),
    pairs: z.array(z.tuple([z.string(), z.unknown()])),
  }),
  'snapshot-ack': z.object({ id: z.string().max(64), seq: z.number().int().min(0) }),
  ping: z.object({}),
};

const proposeBody = z.object({ command: z.unknown(), forwarded: z.boolean().optional() });
const readBody = z.object({ query: z.unknown(), stale: z.boolean().optional(), forwarded: z.boolean().optional() });

const PING_EVERY_MS = 1000;
/** the estimated share of one raft message (other than its entries) in a bus message */
const RAFT_MESSAGE_BYTES = 512;
const FORWARD_TIMEOUT_MS = 10_000;

interface Waiter {
  term: number;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export function createMemberRuntime(opts: MemberRuntimeOptions): MemberRuntime {
  return new RaftMember(opts);
}

class RaftMember implements MemberRuntime {
  private core!: RaftCore;
  private subscription: BusSubscription | null = null;
  private role: Actor<typeof raftRoleMachine> | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private draining = false;
  private kickScheduled = false;
  private stopped = false;
  /** the ready loop failed (e.g. disk full): nothing more is persisted, sent or applied */
  private halted = false;
  /** proposals collected since the last kick: one PROPOSE event (one core call) per batch */
  private proposalQueue: Array<{ command: unknown; resolve(result: unknown): void; reject(err: Error): void }> = [];
  private readonly log: Logger;
  private readonly dropLog: RateLimitedLog;
  readonly dropped = new Map<string, number>();
  private readonly waiters = new Map<number, Waiter>();
  private readonly reads = new Map<string, { resolve(index: number): void; reject(err: Error): void }>();
  private readonly appliedWaiters: Array<{ index: number; resolve(): void }> = [];
  private readonly lastHeard = new Map<string, number>();
  /** requests forwarded to the leader and not answered yet */
  private readonly forwards = new Set<PendingForward>();
  /** joining mode: onJoined was called */
  private joinedReported = false;
  /** pending forwards to a leader this node stopped following fail when this fires (see onLeaderLeft) */
  private forwardGrace: NodeJS.Timeout | null = null;
  /** names of peers heard from: a learner that is not yet in its own configuration answers its leader by this */
  private readonly peerNames = new Map<string, string>();
  /** membership as of the applied index (what a snapshot must record) */
  private appliedMembership!: Membership;
  private snapshotIndex = 0;
  /** stale-generation peers: when each was last reported and told (rate limit) */
  private readonly staleTold = new Map<string, number>();
  /** a claim that this node is stale is being checked with the member that made it */
  private confirmingGeneration = false;
  private lastSoft: { role: Role; leader: string | null; term: number } = { role: 'follower', leader: null, term: 0 };
  /** term and vote as last written durably */
  private durableTerm = 0;
  private durableVote: string | null = null;

  /** what fits one message on this bus (from its max payload): commands, appends, snapshot chunks */
  private readonly limits: WireLimits;
  /** snapshots streamed to followers (leader) and received from the leader (snapshots.ts) */
  private readonly snapshots: MemberSnapshots;
  /** bytes of the log entries applied since the last snapshot (compaction by bytes) */
  private logBytesSinceSnapshot = 0;

  /** the replicated state as applied (durable write deferred; see appliedState.ts): the KV or the host's */
  private readonly state: DeferredState;
  /** the built-in KV (null when the host supplied its own state) */
  private readonly kv: AppliedState | null = null;
  /** the host's state (null for the built-in KV) */
  private readonly hostState: HostAppliedState | null = null;

  constructor(private readonly opts: MemberRuntimeOptions) {
    this.log = opts.logger;
    this.dropLog = new RateLimitedLog(opts.logger);
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
        peerSubject: (nodeId) => this.peerSubject(nodeId),
        nameOf: (nodeId) => this.nameOf(nodeId),
        drop: (reason, detail, from) => this.drop(reason, detail, from),
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
  }

  private get nodeId(): string {
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
    this.durableTerm = hardState.term;
    this.durableVote = hardState.vote;
    // replay config entries up to the applied index so appliedMembership is current
    for (const e of entries) {
      if (e.index > applied) continue;
      if (e.type === 'config') this.appliedMembership = e.data as Membership;
      this.logBytesSinceSnapshot += entryBytes(e);
    }
    // the host state as of the durable applied index; committed entries after it are re-applied
    this.hostState?.load();
    this.core = new RaftCore({
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
    });
    this.subscription = this.opts.bus.subscribe(`${this.opts.prefix}.node.${this.opts.name}.peer`, (msg) => this.onPeerMessage(msg));
    await this.opts.bus.flush();
    // the role chart owns the clock (a delayed transition per tick) and feeds the core
    this.role = createActor(raftRoleMachine.provide({ actions: { emitReady: () => this.kick() } }), {
      id: `raft:${this.opts.name}`,
      input: { core: this.core, tickMs: timing.heartbeatMs },
      inspect: this.opts.inspect,
    });
    this.role.start();
    this.pingTimer = setInterval(() => this.pingPeers(), PING_EVERY_MS);
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
    if (!this.halted) await this.handOverLeadership();
    this.stopped = true;
    this.role?.stop();
    this.snapshots.cancel(conclaveError('STOPPING', `${this.opts.name} is shutting down`));
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.subscription?.unsubscribe();
    const stopping = conclaveError('STOPPING', `${this.opts.name} is shutting down; retry against another member`);
    for (const w of this.waiters.values()) w.reject(stopping);
    for (const r of this.reads.values()) r.reject(stopping);
    for (const p of this.proposalQueue) p.reject(stopping);
    this.proposalQueue = [];
    if (this.forwardGrace) clearTimeout(this.forwardGrace);
    this.failForwards('stopping');
    this.waiters.clear();
    this.reads.clear();
    // let an in-flight persist finish, then make the applied state durable, before the store closes
    while (this.draining) await new Promise((r) => setTimeout(r, 1));
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

  /** graceful shutdown: a leader with other voters hands leadership to the most up-to-date one */
  private async handOverLeadership(): Promise<void> {
    const s = this.core.status();
    const otherVoters = s.membership.members.filter((m) => m.voter && m.nodeId !== this.nodeId);
    if (s.role !== 'leader' || otherVoters.length === 0 || !this.role) return;
    this.role.send({ type: 'TRANSFER' });
    const result = this.role.getSnapshot().context.lastTransfer;
    if (!result?.ok) {
      this.log.warn({ reason: result && !result.ok ? result.reason : 'unknown' }, 'could not hand over leadership before stopping');
      return;
    }
    const deadline = Date.now() + 2 * this.opts.timing.electionTimeoutMs;
    while (this.core.currentRole === 'leader' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const handedTo = this.nameOf(this.core.leader);
    if (this.core.currentRole === 'leader') this.log.warn({ to: this.nameOf(result.to) }, 'leadership transfer did not complete before stopping');
    else this.log.info({ to: handedTo }, `handed leadership to ${handedTo ?? 'another voter'} before stopping`);
  }

  // ---- status ----

  private nameOf(nodeId: string | null): string | null {
    if (nodeId === null) return null;
    const m = this.core.membership.members.find((x) => x.nodeId === nodeId);
    return m?.name ?? nodeId;
  }

  status(): MemberStatus {
    const s = this.core.status();
    const now = Date.now();
    const window = Math.max(3 * PING_EVERY_MS, 2 * this.opts.timing.electionTimeoutMs);
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
        reachable: m.nodeId === this.nodeId || now - (this.lastHeard.get(m.nodeId) ?? 0) < window,
        matchIndex: m.nodeId === this.nodeId ? s.lastIndex : (s.progress[m.nodeId]?.matchIndex ?? 0),
      })),
    };
  }

  // ---- inbound ----

  private drop(reason: string, detail: string, from?: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    // keyed by reason: a sender that changes its name gets no more lines than a few per interval
    this.dropLog.warn(`peer:${reason}`, { reason, detail, from, dropped: this.dropped.get(reason) }, 'dropped peer message', from);
  }

  private onPeerMessage(msg: BusMessage): void {
    if (this.stopped) return;
    const decoded = decode(msg.data, peerBodies);
    if (!decoded.ok) {
      this.drop(decoded.failure, decoded.detail);
      return;
    }
    const { envelope } = decoded;
    // The join rule on every peer message: a peer whose cluster id diverges is dropped and reported.
    const verdict = checkJoin({ name: this.opts.name, clusterId: this.clusterId }, { name: envelope.from, clusterId: envelope.clusterId });
    if (!verdict.allowed) {
      this.drop('foreign-cluster', verdict.message, envelope.from);
      this.opts.onRefused?.({ reason: 'foreign-cluster', from: envelope.from, localClusterId: this.clusterId, remoteClusterId: envelope.clusterId, message: verdict.message });
      return;
    }
    // without a cluster id only a member of an older cluster that has not applied its new id yet
    if (envelope.clusterId === null && !(envelope.nodeId !== null && this.core.membership.members.some((m) => m.nodeId === envelope.nodeId))) {
      this.drop('no-cluster-id', `${envelope.from} sent raft traffic without a cluster id`, envelope.from);
      return;
    }
    // Same cluster id, other identity generation (disaster recovery): the older side is stale.
    const gen = this.cachedSender?.generation;
    if (envelope.gen !== undefined && gen !== undefined && envelope.gen !== gen && envelope.clusterId !== null) {
      this.onGenerationConflict({ name: envelope.from, nodeId: envelope.nodeId, clusterId: envelope.clusterId, generation: envelope.gen });
      return;
    }
    if (envelope.nodeId) {
      this.lastHeard.set(envelope.nodeId, Date.now());
      if (this.peerNames.get(envelope.nodeId) !== envelope.from && this.peerNames.size < 1024) this.peerNames.set(envelope.nodeId, envelope.from);
    }
    if (envelope.nodeId && this.core.currentRole === 'leader' && !this.core.membership.members.some((m) => m.nodeId === envelope.nodeId)) {
      // a member removed while it was away does not get the config that removed it: tell it
      this.drop('not-a-member', `${envelope.from} (${envelope.nodeId}) is not in the configuration`, envelope.from);
      this.opts.onNonMember?.(envelope.from, envelope.nodeId);
      return;
    }
    const body = decoded.body as Record<string, unknown>;
    switch (envelope.type) {
      case 'ping':
        return;
      case 'raft': {
        const messages = (body as { messages: RaftMessage[] }).messages;
        const addressed = messages.filter((m) => m.from === envelope.nodeId && m.to === this.nodeId && m.type !== 'snapshot');
        if (messages.some((m) => m.type === 'snapshot')) {
          // a snapshot's state comes in snapshot-chunk messages: a bare one would install nothing
          this.drop('snapshot-outside-transfer', 'a snapshot message outside a snapshot transfer', envelope.from);
        } else if (addressed.length !== messages.length) {
          this.drop('misaddressed', `${messages.length - addressed.length} message(s) not from ${envelope.nodeId} to ${this.nodeId}`, envelope.from);
        }
        if (addressed.length > 0) this.role?.send({ type: 'PEER_MESSAGE', messages: addressed });
        return;
      }
      case 'snapshot-chunk':
        this.snapshots.onChunk(body as unknown as SnapshotChunkBody, envelope.nodeId, envelope.gen, msg.data.byteLength);
        return;
      case 'snapshot-ack':
        if (envelope.nodeId) this.snapshots.onAck(envelope.nodeId, body as unknown as ChunkAck);
    }
  }

  /**
   * A peer of this cluster at another generation. It is older: drop, report (rate-limited) and
   * tell it (a ping carries our generation). We are older: this store is a stale survivor of the
   * cluster before a `conclave recover` — stop taking part (phase failed, with the reason), once the
   * member that says so confirms it (actors/staleGeneration.ts).
   */
  private onGenerationConflict(claim: GenerationClaim): void {
    const { name: from, clusterId } = claim;
    const verdict = checkGeneration({ name: this.opts.name, clusterId: this.clusterId, generation: this.cachedSender?.generation }, claim);
    if (!verdict.conflict) return;
    if (verdict.stale === 'local') {
      this.checkStaleClaim(claim, verdict.message, verdict.localGeneration);
      return;
    }
    this.dropped.set('stale-generation', (this.dropped.get('stale-generation') ?? 0) + 1);
    const now = Date.now();
    // told on its own subject, which a name that is not a node name cannot have
    if (!validNodeName(from) || now - (this.staleTold.get(from) ?? 0) < 2000) return;
    if (this.staleTold.size > 1024) this.staleTold.clear();
    this.staleTold.set(from, now);
    this.opts.onRefused?.({ reason: 'stale-generation', from, localClusterId: this.clusterId, remoteClusterId: clusterId, message: verdict.message });
    try {
      this.opts.bus.publish(`${this.opts.prefix}.node.${from}.peer`, encode(this.sender(), 'ping', {}));
    } catch (err) {
      this.dropLog.warn('stale-tell', { err, to: from }, 'could not tell a stale peer', from);
    }
  }

  private checkStaleClaim(claim: GenerationClaim, message: string, localGeneration: number): void {
    const unproven = unprovenClaim(this.core.membership, claim);
    if (unproven !== null) {
      this.drop('unproven-generation', unproven, claim.name);
      return;
    }
    if (this.confirmingGeneration) return;
    this.confirmingGeneration = true;
    unconfirmedClaim(this.opts.bus, this.opts.prefix, this.sender(), claim)
      .then((why) => {
        if (this.stopped) return;
        if (why !== null) {
          this.drop('unconfirmed-generation', why, claim.name);
          return;
        }
        const { clusterId, generation } = claim;
        this.log.error({ clusterId, generation: localGeneration, clusterGeneration: generation, from: claim.name }, message);
        this.halt(conclaveError('STALE_GENERATION', message, { clusterId, generation: localGeneration, clusterGeneration: generation }));
      })
      .finally(() => {
        this.confirmingGeneration = false;
      });
  }

  // ---- the ready loop: persist → send → apply → advance ----

  /** run the ready loop soon, once, batching whatever arrives in the meantime (group commit) */
  private kick(): void {
    if (this.kickScheduled || this.stopped || this.halted) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.stopped && !this.halted) {
        this.flushProposals();
        if (!this.core.hasReady()) break;
        const rd = this.core.ready();
        await this.handleReady(rd);
        this.core.advance(rd);
        // the core knows the new applied index only after advance: snapshot from here
        if (rd.committed.length > 0) {
          for (const e of rd.committed) this.logBytesSinceSnapshot += entryBytes(e);
          this.maybeSnapshot(rd.committed[rd.committed.length - 1]!.index);
        }
      }
    } catch (err) {
      this.halt(err);
    } finally {
      this.draining = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const { store } = this.opts;
    if (rd.snapshot) await this.installSnapshot(rd.snapshot);
    // Term and vote must be durable before any message that depends on them; a change of the commit
    // index alone need not be (it is re-learned from the leader), so it rides along with the next write.
    const hs = rd.hardState;
    const voteOrTermChanged = hs !== undefined && (hs.term !== this.durableTerm || hs.vote !== this.durableVote);
    const mustPersist = rd.entries.length > 0 || voteOrTermChanged;
    // A leader may send its appends while it writes the same entries (raft thesis §10.2.1): it
    // counts itself toward commit only once advance() reports them durable.
    const sendFirst = this.core.currentRole === 'leader' && !voteOrTermChanged && rd.snapshot === undefined;
    if (sendFirst && rd.messages.length > 0) this.send(rd.messages);
    if (mustPersist) {
      await store.persist({ hardState: hs ?? { term: this.durableTerm, vote: this.durableVote, commit: this.core.commitIndex }, entries: rd.entries });
      if (hs) {
        this.durableTerm = hs.term;
        this.durableVote = hs.vote;
      }
    }
    if (!sendFirst && rd.messages.length > 0) this.send(rd.messages);
    if (rd.committed.length > 0) await this.apply(rd.committed);
    for (const r of rd.readStates) {
      const waiter = this.reads.get(r.requestId);
      this.reads.delete(r.requestId);
      waiter?.resolve(r.index);
    }
    for (const id of rd.failedReads) {
      const waiter = this.reads.get(id);
      this.reads.delete(id);
      waiter?.reject(this.notLeaderError());
    }
    if (rd.softState) this.onSoftState(rd.softState);
    for (const r of rd.refused) this.drop(r.reason, r.detail, this.nameOf(r.from) ?? r.from);
  }

  private onSoftState(soft: { role: Role; leader: string | null; term: number }): void {
    const before = this.lastSoft;
    this.lastSoft = soft;
    if (before.leader !== soft.leader) this.onLeaderLeft(soft.role);
    if (before.leader !== soft.leader || (soft.leader !== null && before.term !== soft.term)) {
      // a learner may hear its leader before its configuration names it: the envelope told us the name
      const leader = soft.leader === null ? null : (this.core.membership.members.find((m) => m.nodeId === soft.leader)?.name ?? this.peerNames.get(soft.leader) ?? soft.leader);
      this.opts.events?.leaderChanged(leader, soft.term);
    }
    if (before.role !== soft.role || before.leader !== soft.leader) {
      this.log.info({ role: soft.role, term: soft.term, leader: this.nameOf(soft.leader) }, `role ${soft.role}, term ${soft.term}, leader ${this.nameOf(soft.leader) ?? 'none'}`);
    }
    if (soft.role === 'leader' && before.role !== 'leader' && this.opts.store.identity().clusterId === null && !this.opts.joining) {
      setImmediate(() => this.proposeClusterId());
    }
    if (before.role === 'leader' && soft.role !== 'leader') {
      this.snapshots.cancel(this.notLeaderError());
      // reads waiting on our leadership cannot be confirmed any more
      for (const r of this.reads.values()) r.reject(this.notLeaderError());
      this.reads.clear();
      // proposals in flight may still commit under the next leader, or be overwritten: say so
      // rather than leave the caller waiting for an index that may never be applied here
      const unknown = conclaveError(
        'OUTCOME_UNKNOWN',
        `${this.opts.name} lost leadership while the proposal was in flight; it may or may not have been applied — read the key and retry if needed`,
      );
      for (const w of this.waiters.values()) w.reject(unknown);
      this.waiters.clear();
    }
  }

  private send(messages: RaftMessage[]): void {
    const byPeer = new Map<string, RaftMessage[]>();
    for (const m of messages) {
      if (m.type === 'snapshot') {
        this.snapshots.send(m);
        continue;
      }
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    const sender = this.sender();
    for (const [to, list] of byPeer) {
      const subject = this.peerSubject(to);
      if (!subject) continue;
      // one bus message per peer per batch, split where it would exceed the bus's max payload
      for (const part of packByBytes(list, this.limits.messageBytes - RAFT_MESSAGE_BYTES)) {
        try {
          this.opts.bus.publish(subject, encode(sender, 'raft', { messages: part }));
        } catch (err) {
          this.dropLog.warn(`send:${to}`, { err, to }, 'could not send raft messages');
        }
      }
    }
  }

  private peerSubject(nodeId: string): string | null {
    const name =
      this.core.membership.members.find((m) => m.nodeId === nodeId)?.name ??
      this.appliedMembership.members.find((m) => m.nodeId === nodeId)?.name ??
      this.peerNames.get(nodeId);
    return name ? `${this.opts.prefix}.node.${name}.peer` : null;
  }

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

  private async apply(committed: Entry[]): Promise<void> {
    if (this.hostState) return this.applyHost(committed, this.hostState.host);
    const commands: unknown[] = [];
    const commandEntries: Entry[] = [];
    let removedSelf = false;
    let membershipChanged = false;
    for (const e of committed) {
      if (e.type === 'command') {
        commands.push(e.data);
        commandEntries.push(e);
      } else if (e.type === 'config') {
        this.appliedMembership = e.data as Membership;
        membershipChanged = true;
        if (!this.appliedMembership.members.some((m) => m.nodeId === this.nodeId)) removedSelf = true;
      } else if (e.type === 'clusterId') {
        this.adoptClusterId(e.data);
      }
    }
    const last = committed[committed.length - 1]!;
    const kv = this.kv!;
    const { results, ops } = applyKvBatch(kv, commands);
    // visible at once, durable a moment later (the entries are durable in the log already)
    kv.record(last.index, ops);
    for (let i = 0; i < commandEntries.length; i++) this.settle(commandEntries[i]!, results[i]);
    for (const e of committed) if (e.type !== 'command') this.settle(e, null);
    this.notifyApplied(last.index);
    if (membershipChanged) this.maybeJoined();
    const events = this.opts.events;
    if (events) {
      if (membershipChanged) this.emitMembership();
      if (commandEntries.length > 0 && events.wantsApplied()) {
        for (let i = 0; i < commandEntries.length; i++) events.applied(commandEntries[i]!.index, commandEntries[i]!.data, results[i]);
      }
    }
    if (removedSelf) this.opts.onRemoved();
  }

  /** the first committed `clusterId` entry gives an older cluster its id, on every member alike */
  private adoptClusterId(data: unknown): void {
    const clusterId = (data as { clusterId?: unknown } | null)?.clusterId;
    if (typeof clusterId !== 'string' || this.opts.store.identity().clusterId !== null) return;
    // synchronous and durable inside the call (the promise only reports completion)
    this.opts.store.updateIdentity({ clusterId, initializedAt: new Date().toISOString() }).catch((err: unknown) => this.opts.onFatal(err));
    this.opts.onClusterId?.(clusterId);
  }

  /** leader of a cluster created without an id: commit one through raft */
  private proposeClusterId(): void {
    if (!this.role || this.core.currentRole !== 'leader' || this.opts.store.identity().clusterId !== null || this.opts.joining) return;
    const clusterId = uuidv7();
    this.role.send({ type: 'PROPOSE', items: [{ type: 'clusterId', data: { clusterId } }] });
    const result = this.role.getSnapshot().context.lastProposal!;
    if (result.ok) this.log.info({ proposed: clusterId, index: result.firstIndex }, `upgrading: proposed cluster id ${clusterId} for this cluster created without one`);
    else this.log.warn({ reason: result.reason }, 'upgrading: could not propose a cluster id yet; retrying at the next leadership');
  }

  /**
   * A host state: each command to apply(), one at a time, in log order. A throw (or a promise, which
   * cannot be deterministic) is answered to the proposer as APPLY_FAILED on every node alike.
   */
  private applyHost(committed: Entry[], host: AnyReplicatedState): void {
    let removedSelf = false;
    let membershipChanged = false;
    // per-entry events only while someone listens
    const listening = this.opts.events?.wantsApplied() ? this.opts.events : null;
    for (const e of committed) {
      if (e.type === 'command') {
        let result: unknown;
        let failure: string | null = null;
        try {
          result = host.apply(e.data, { index: e.index, term: e.term });
          if (isThenable(result)) {
            // report a late rejection rather than let it crash the process; the command is answered now
            result.then(undefined, (err: unknown) => this.dropLog.warn('apply-async', { err, index: e.index }, 'an asynchronous apply() rejected'));
            failure = 'apply() returned a promise: a replicated state must apply commands synchronously';
            result = undefined;
          }
        } catch (err) {
          failure = err instanceof Error ? err.message : String(err);
        }
        if (failure !== null) {
          this.dropLog.warn('apply-failed', { index: e.index, error: failure }, 'the replicated state refused a command');
          this.settleFailed(e, failure);
          listening?.applied(e.index, e.data, { error: failure });
        } else {
          this.settle(e, result);
          listening?.applied(e.index, e.data, result);
        }
      } else {
        if (e.type === 'config') {
          this.appliedMembership = e.data as Membership;
          membershipChanged = true;
          if (!this.appliedMembership.members.some((m) => m.nodeId === this.nodeId)) removedSelf = true;
        } else if (e.type === 'clusterId') {
          this.adoptClusterId(e.data);
        }
        this.settle(e, null);
      }
    }
    const last = committed[committed.length - 1]!;
    // the host object is current at once; its snapshot() is taken and written once, at the next flush
    this.hostState!.record(last.index);
    this.notifyApplied(last.index);
    if (membershipChanged) this.maybeJoined();
    if (membershipChanged) this.emitMembership();
    if (removedSelf) this.opts.onRemoved();
  }

  private settleFailed(entry: Entry, message: string): void {
    const w = this.waiters.get(entry.index);
    if (!w) return;
    this.waiters.delete(entry.index);
    if (w.term === entry.term) w.reject(new ApplyFailedError(`the command was committed at index ${entry.index} but the replicated state refused it: ${message}`, { index: entry.index }));
    else w.reject(conclaveError('NOT_LEADER', 'leadership changed before the proposal committed; it was not applied — retry'));
  }

  private settle(entry: Entry, result: unknown): void {
    const w = this.waiters.get(entry.index);
    if (!w) return;
    this.waiters.delete(entry.index);
    if (w.term === entry.term) w.resolve(result);
    else w.reject(conclaveError('NOT_LEADER', 'leadership changed before the proposal committed; it was not applied — retry'));
  }

  private notifyApplied(index: number): void {
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.appliedWaiters[i]!;
      if (w.index <= index) {
        this.appliedWaiters.splice(i, 1);
        w.resolve();
      }
    }
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

  // ---- client operations ----

  private notLeaderError(): ConclaveError {
    const leader = this.nameOf(this.core.leader);
    return leader
      ? conclaveError('NOT_LEADER', `${this.opts.name} is not the leader (the leader is ${leader})`, { leader })
      : conclaveError('NO_LEADER', 'cluster has no leader right now (an election may be under way, or there is no quorum); retry shortly');
  }

  /** what nests too deep cannot even be sized (JSON.stringify recurses), let alone stored on every node */
  private refuseTooDeep(command: unknown): void {
    const tooDeep = this.hostState ? valueRefusal(command, 'the command') : valueRefusal(command, 'the value', 1);
    if (tooDeep !== null) throw conclaveError('BAD_REQUEST', `invalid command: ${tooDeep}`);
  }

  async propose(command: unknown): Promise<unknown> {
    this.refuseTooDeep(command);
    let size: number;
    if (this.hostState) {
      // a host command crosses the log as JSON: the leader applies exactly what the followers decode
      const { json, why } = jsonOf(command);
      if (json === undefined) throw conclaveError('BAD_REQUEST', `invalid command: a command must be a JSON value (an object, array, string, number, boolean or null): ${why}`);
      size = Buffer.byteLength(json, 'utf8');
      command = JSON.parse(json);
    } else {
      const check = kvCommandSchema.safeParse(command);
      if (!check.success) throw conclaveError('BAD_REQUEST', `invalid command: ${check.error.issues[0]?.message}`);
      size = jsonBytes(command);
    }
    // every command must travel alone in one append message: larger ones are refused at the door
    const limit = this.limits.commandBytes;
    if (size > limit) {
      throw conclaveError(
        'COMMAND_TOO_LARGE',
        `command is ${size} bytes (as JSON), over the ${limit}-byte limit for one command (the bus's max payload is ${this.limits.messageBytes} bytes); store large values elsewhere, or split them over several keys`,
        { bytes: size, limit },
      );
    }
    if (this.stopped || this.halted) throw conclaveError('STOPPING', `${this.opts.name} is ${this.halted ? 'halted after a storage failure' : 'shutting down'}`);
    return new Promise<unknown>((resolve, reject) => {
      this.proposalQueue.push({ command, resolve, reject });
      this.kick();
    });
  }

  /** hand every queued proposal to the core in one event: one batch of entries, one durable write */
  private flushProposals(): void {
    if (this.proposalQueue.length === 0 || !this.role) return;
    const batch = this.proposalQueue;
    this.proposalQueue = [];
    this.role.send({ type: 'PROPOSE', items: batch.map((p) => ({ type: 'command' as const, data: p.command })) });
    const result = this.role.getSnapshot().context.lastProposal!;
    if (!result.ok) {
      const err = result.reason === 'not-leader' ? this.notLeaderError() : conclaveError('BUSY', `proposal refused (${result.reason}); retry shortly`);
      for (const p of batch) p.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      this.waiters.set(result.firstIndex + i, { term: result.term, resolve: p.resolve, reject: p.reject });
    }
  }

  raftStatus(): RaftStatus {
    return this.core.status();
  }

  snapshotStreamed(nodeId: string): number {
    return this.snapshots.streamed(nodeId);
  }

  async exportSnapshot(): Promise<{ index: number; term: number; pairs: Array<[string, unknown]> }> {
    if (this.core.currentRole !== 'leader' || !this.role) throw this.notLeaderError();
    // a linearizable read point (read index: leadership confirmed by a quorum), then the state as applied there
    const requestId = randomUUID();
    const index = await new Promise<number>((resolve, reject) => {
      this.reads.set(requestId, { resolve, reject });
      this.role!.send({ type: 'READ_INDEX', requestId });
    });
    await this.waitApplied(index);
    const { appliedIndex, pairs } = this.state.exportState();
    return { index: appliedIndex, term: Math.max(0, this.core.termAt(appliedIndex)), pairs };
  }

  async changeMembership(change: MembershipChange): Promise<void> {
    if (this.stopped || this.halted) throw conclaveError('STOPPING', `${this.opts.name} is ${this.halted ? 'halted after a storage failure' : 'shutting down'}`);
    if (this.core.currentRole !== 'leader' || !this.role) throw this.notLeaderError();
    const next = applyChange(this.core.membership, change);
    if (!next.ok) throw conclaveError('BAD_REQUEST', `membership change refused: ${next.reason}`);
    this.role.send({ type: 'PROPOSE', items: [{ type: 'config', data: next.next }] });
    const result = this.role.getSnapshot().context.lastProposal!;
    if (!result.ok) {
      if (result.reason === 'not-leader') throw this.notLeaderError();
      if (result.reason === 'config-change-pending') {
        throw conclaveError('CONFIG_CHANGE_PENDING', 'another membership change is still being committed (one change at a time); retry shortly');
      }
      if (result.reason === 'transferring') throw conclaveError('BUSY', 'leadership is being transferred; retry shortly');
      throw conclaveError('BAD_REQUEST', `membership change refused by raft (${result.reason})`);
    }
    this.log.info({ change, index: result.firstIndex }, `proposed membership change ${change.type}`);
    await new Promise<unknown>((resolve, reject) => {
      this.waiters.set(result.firstIndex, { term: result.term, resolve, reject });
    });
  }

  transferLeadership(nodeId?: string): string {
    if (!this.role) throw this.notLeaderError();
    this.role.send(nodeId === undefined ? { type: 'TRANSFER' } : { type: 'TRANSFER', to: nodeId });
    const result = this.role.getSnapshot().context.lastTransfer!;
    if (!result.ok) {
      if (result.reason === 'not-leader') throw this.notLeaderError();
      if (result.reason === 'no-target') throw conclaveError('BAD_REQUEST', `${this.opts.name} is the only voter: there is no other voter to hand leadership to`);
      throw conclaveError('BAD_REQUEST', `${this.nameOf(nodeId ?? null) ?? nodeId} is not a voter: leadership can only go to a voter`);
    }
    return result.to;
  }

  private waitApplied(index: number): Promise<void> {
    if (this.state.appliedIndex() >= index) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  /**
   * Read index: resolves with the commit index once this node has confirmed with a quorum that it
   * leads and has committed an entry of its term (so it takes writes and serves linearizable reads).
   */
  confirmLeadership(): Promise<number> {
    if (!this.role) return Promise.reject(this.notLeaderError());
    const requestId = randomUUID();
    return new Promise<number>((resolve, reject) => {
      this.reads.set(requestId, { resolve, reject });
      this.role!.send({ type: 'READ_INDEX', requestId });
    });
  }

  async read(query: unknown, opts: { stale?: boolean } = {}): Promise<unknown> {
    const parsed = this.hostState ? null : kvQuerySchema.safeParse(query);
    if (parsed && !parsed.success) throw conclaveError('BAD_REQUEST', `invalid query: ${parsed.error.issues[0]?.message}`);
    if (!opts.stale) await this.waitApplied(await this.confirmLeadership());
    if (parsed) return queryKv(this.kv!, parsed.data);
    try {
      return this.hostState!.host.query(query);
    } catch (err) {
      if (err instanceof Error && 'code' in err) throw err;
      throw conclaveError('QUERY_FAILED', `the replicated state could not answer the query: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async handleAdmin(type: 'propose' | 'read', body: unknown): Promise<unknown> {
    if (type === 'propose') {
      const req = parseRequest(proposeBody, body, 'propose');
      this.refuseTooDeep(req.command); // here too: a follower that forwards says the same as the leader
      return this.viaLeader(req.forwarded === true, () => this.propose(req.command), 'propose', { command: req.command, forwarded: true });
    }
    const req = parseRequest(readBody, body, 'read');
    if (req.stale) return this.read(req.query, { stale: true });
    return this.viaLeader(req.forwarded === true, () => this.read(req.query), 'read', { query: req.query, forwarded: true });
  }

  /** run on the leader: here when we lead, else forwarded once to the leader's admin subject */
  private async viaLeader(forwarded: boolean, local: () => Promise<unknown>, type: string, body: unknown): Promise<unknown> {
    if (this.core.currentRole === 'leader' || forwarded) return local();
    return this.forwardToLeader(type, body, { timeoutMs: FORWARD_TIMEOUT_MS, changesState: type === 'propose' });
  }

  /**
   * The one way a request reaches the leader from here: once, to the leader's admin subject. It
   * fails as soon as this node stops following that leader (its election timeout fired, or it
   * learned of another): NO_LEADER for a request that changes nothing, OUTCOME_UNKNOWN for one that
   * may have been applied — never a wait for the full timeout on a leader known to be gone.
   */
  async forwardToLeader(type: string, body: unknown, opts: { timeoutMs: number; changesState: boolean }): Promise<unknown> {
    const leaderId = this.core.leader;
    const leaderName = this.nameOf(leaderId);
    if (leaderId === null || leaderName === null || leaderId === this.nodeId) throw this.notLeaderError();
    if (this.stopped) throw conclaveError('STOPPING', `${this.opts.name} is shutting down; retry against another member`);
    let forward!: PendingForward;
    const abandoned = new Promise<never>((_, reject) => {
      forward = { leader: leaderId, fail: reject };
    });
    this.forwards.add(forward);
    try {
      return await Promise.race([adminCall(this.opts.bus, this.opts.prefix, leaderName, this.sender(), type, body, opts.timeoutMs), abandoned]);
    } catch (err) {
      if (err instanceof LeaderLost) throw this.forwardLostError(type, leaderName, err.now, opts.changesState);
      if (err instanceof NoRespondersError) {
        // nothing listens on the leader's subject: it is gone, and the request was not delivered
        throw conclaveError('NO_LEADER', `cluster has no leader right now: ${this.opts.name} follows ${leaderName}, which no longer answers (nothing listens on its subject); an election is due, retry shortly`);
      }
      if (isUnreachable(err)) {
        throw conclaveError('UNREACHABLE', `${this.opts.name} forwarded ${type} to the leader ${leaderName}, which did not answer within ${opts.timeoutMs} ms; retry shortly`);
      }
      throw err;
    } finally {
      this.forwards.delete(forward);
    }
  }

  private forwardLostError(type: string, leader: string, now: string | null | 'stopping', changesState: boolean): ConclaveError {
    if (now === 'stopping') return conclaveError(changesState ? 'OUTCOME_UNKNOWN' : 'STOPPING', `${this.opts.name} is shutting down while its forwarded ${type} was in flight at ${leader}${changesState ? '; it may or may not have been applied — read it back and retry if needed' : '; retry against another member'}`);
    const why = now === null ? `${this.opts.name} stopped hearing from the leader ${leader}` : `leadership moved from ${leader} to ${now}`;
    if (changesState) {
      return conclaveError('OUTCOME_UNKNOWN', `${why} while the forwarded ${type} was in flight; it may or may not have been applied — read it back and retry if needed`);
    }
    return conclaveError('NO_LEADER', `cluster has no leader right now: ${why} while the forwarded ${type} was in flight; retry shortly`);
  }

  /**
   * This node no longer follows the leader its pending forwards went to. Its own election timeout
   * fired (a pre-vote: it stopped hearing from that leader): they fail now. Otherwise (a vote request
   * of a higher term, a new leader, a transfer to this node) the old leader may be alive and about
   * to answer — it answers by itself when it steps down — so they fail only if no answer comes
   * within a grace period.
   */
  private onLeaderLeft(role: Role): void {
    if (this.forwards.size === 0) return;
    if (role === 'pre-candidate') {
      this.failForwards(null);
      return;
    }
    if (this.forwardGrace) return;
    this.forwardGrace = setTimeout(() => {
      this.forwardGrace = null;
      this.failForwards(this.core.leader);
    }, 2 * this.opts.timing.electionTimeoutMs);
    this.forwardGrace.unref();
  }

  /** forwards to a leader this node no longer follows fail now, not at their timeout */
  private failForwards(now: string | null | 'stopping'): void {
    for (const f of this.forwards) {
      if (now === 'stopping' || f.leader !== now) {
        this.forwards.delete(f);
        f.fail(new LeaderLost(now === 'stopping' || now === null ? now : (this.nameOf(now) ?? now)));
      }
    }
  }

  private pingPeers(): void {
    const sender = this.sender();
    for (const m of this.core.membership.members) {
      if (m.nodeId === this.nodeId) continue;
      try {
        this.opts.bus.publish(`${this.opts.prefix}.node.${m.name}.peer`, encode(sender, 'ping', {}));
      } catch (err) {
        this.dropLog.warn(`ping:${m.name}`, { err, to: m.name }, 'could not ping peer');
      }
    }
  }
}

/** an admin request's body, or BAD_REQUEST naming what is wrong with it */
function parseRequest<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw conclaveError('BAD_REQUEST', `invalid ${what} request: ${parsed.error.issues[0]?.path.join('.') || '(body)'} ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

interface PendingForward {
  leader: string;
  fail(reason: LeaderLost): void;
}

/** a forwarded request abandoned because this node no longer follows its leader (`now`: whom it follows instead) */
class LeaderLost extends Error {
  constructor(readonly now: string | null | 'stopping') {
    super('leader lost');
  }
}

/**
 * Whether the configuration this store has applied (its snapshot's, then committed config entries up
 * to its applied index) includes `nodeId`: false for a node that took a cluster's state while joining
 * and is in no committed configuration yet.
 */
export function appliedMembershipIncludes(store: NodeStore, nodeId: string): boolean {
  let membership = store.snapshotMeta()?.membership ?? { members: [] };
  const applied = store.appliedIndex();
  for (const e of store.entries(store.firstIndex(), Math.min(applied, store.lastIndex()) + 1)) if (e.type === 'config') membership = e.data as Membership;
  return membership.members.some((m) => m.nodeId === nodeId);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/** the JSON text of a value, or why it has none (undefined, a function, a cycle, a BigInt) */
function jsonOf(value: unknown): { json: string | undefined; why: string } {
  try {
    return { json: JSON.stringify(value), why: `${typeof value} has no JSON form` };
  } catch (err) {
    return { json: undefined, why: (err as Error).message };
  }
}

function sameMembers(a: Membership, b: Membership): boolean {
  if (a.members.length !== b.members.length) return false;
  return a.members.every((m, i) => {
    const o = b.members[i]!;
    return o.nodeId === m.nodeId && o.name === m.name && o.voter === m.voter;
  });
}

/** group a peer's messages into bus messages of at most `maxBytes` (estimated from the entries' cached sizes) */
function packByBytes(messages: RaftMessage[], maxBytes: number): RaftMessage[][] {
  const parts: RaftMessage[][] = [];
  let part: RaftMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    let size = RAFT_MESSAGE_BYTES;
    if (m.type === 'append') for (const e of m.entries) size += entryBytes(e) + 1;
    if (bytes + size > maxBytes && part.length > 0) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(m);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}
