// startController: one controller = store + bus + the bootstrap actor (and, while a member, the
// consensus runtime). Identity is loaded from the store BEFORE any connection to the bus.
import { v7 as uuidv7 } from 'uuid';
import { type Actor, createActor, fromCallback, fromPromise, type InspectionEvent, toPromise, waitFor } from 'xstate';
import { checkJoin, validNodeName } from '../machines/identity/index.ts';
import { checkGeneration } from '../machines/identity/generation.ts';
import { type ContactRecordInput, joinMachine, type JoinOutput } from '../machines/join/machine.ts';
import type { MembershipChange } from '../machines/membership/config.ts';
import { type MembershipInput, membershipMachine, type MembershipOutput, type OfferReply } from '../machines/membership/machine.ts';
import {
  type BootstrapCluster,
  type BootstrapDone,
  bootstrapMachine,
  type ContactRecord,
  initRefusal,
  type BootstrapEvent,
  type JoinAccepted,
  type Phase,
  phaseOf,
} from '../machines/bootstrap/machine.ts';
import type { HardState, Membership, SnapshotMeta } from '../machines/raft/types.ts';
import { checkRaftTiming, DEFAULT_RAFT, type RaftTiming } from './config/config.ts';
import { ConclaveError, conclaveError, codeOf } from './errors.ts';
import { type Logger, silentLogger } from './log/logger.ts';
import { RateLimitedLog } from './log/rateLimit.ts';
import { AdminServer, type AdminHandlers, adminCall, isUnreachable } from './admin.ts';
import { attachInspectionPublisher, type InspectionPublisher } from './inspect/publisher.ts';
import type { Refusal } from './inspect/protocol.ts';
import { type InitSource, readInitSource } from './state/initSource.ts';
import { type AnyReplicatedState, checkStoredStateKind, hostSnapshotFromPairs, initialStatePairs, validateReplicatedState } from './state/host.ts';
import { type ControllerEventName, ControllerEventHub, type ControllerListener } from './events.ts';
import { SNAPSHOT_PAGE_BYTES, SnapshotExports } from './state/snapshotExport.ts';
import { type NodeStore, openStore } from './store/index.ts';
import { type BusState, connectNats, createInProcessBus, type Bus, type InProcessBus, type NatsStatus, type NatsTransportOptions } from './transport/index.ts';
import { type BusMessage, type BusSubscription, NoRespondersError, RequestTimeoutError } from './transport/types.ts';
import { decode, decodeReply, encode, encodeReply, type Envelope, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, type Sender, uuidSchema, wireLimits } from './wire/codec.ts';
import { DEFAULT_MAX_VOTERS, type JoinAdmission, type JoinRequest, joinRequestSchema, makeJoinRequest, MIN_SECRET_BYTES, NonceCache, readJoinSecret, verifyJoinRequest } from './join/autoJoin.ts';
import { appliedMembershipIncludes, createMemberRuntime, type MemberInfo, type MemberRuntime, type MemberRuntimeOptions, type MemberStatus } from '../actors/member.ts';
import { type GenerationClaim, unconfirmedClaim, unprovenClaim } from '../actors/staleGeneration.ts';
import { z } from 'zod';

export type TransportOption = { nats: NatsTransportOptions } | { bus: InProcessBus };

export interface ControllerOptions {
  name: string;
  dataDir: string;
  /** subject prefix; default 'conclave' */
  prefix?: string;
  /** default: the process-wide in-process bus, so controllers in one process see each other */
  transport?: TransportOption;
  /** automatic initialization source (seed JSON or snapshot file), used only on a blank store */
  initFrom?: string;
  /** names the leader adds as soon as they answer, retried with backoff until they are voters */
  initialMembers?: string[];
  /** how long a joining node waits for its first state before it is blank again (default 60 s) */
  joinTimeoutMs?: number;
  raft?: Partial<RaftTiming>;
  logger?: Logger;
  /** observe every XState inspection event of this controller's actors */
  inspect?: (event: InspectionEvent) => void;
  /** LMDB map size; tests use a small one to exercise disk-full */
  mapSizeBytes?: number;
  /**
   * Auto-join. On a member: with a secret, the leader admits nodes that prove it (voters up to
   * `maxVoters`, default 5, learners beyond); without one auto-join is off. On a blank node: with
   * `cluster`, it announces itself on `<prefix>.discover` until that cluster adds it.
   */
  join?: { cluster?: string; secret?: string | Uint8Array; secretFile?: string; maxVoters?: number };
  /** a member without a leader for longer than this warns, and keeps warning at this period (default 10 s) */
  warnWhenLeaderlessForMs?: number;
  /**
   * the replicated state: the host's own (`apply`/`query`/`snapshot`/`restore`, or
   * `replicatedMachine(machine)`); default the built-in key-value state. A data dir keeps the kind
   * it was created with.
   */
  state?: AnyReplicatedState;
}

export interface ControllerStatus extends MemberStatus {
  name: string;
  nodeId: string;
  clusterId: string | null;
  phase: Phase;
  /** this node's bus connection: transport, connected now, server, reconnects so far */
  bus: BusState;
}

let processBus: InProcessBus | null = null;
/** The embedded default transport: one in-process bus shared by every controller of this process. */
export function defaultInProcessBus(): InProcessBus {
  processBus ??= createInProcessBus();
  return processBus;
}

/** `cluster list`: the leader's view of the configuration */
export interface ClusterList {
  clusterId: string | null;
  leader: string | null;
  term: number;
  members: MemberInfo[];
}

export interface AddResult {
  name: string;
  nodeId: string;
  outcome: 'added' | 'already-member';
}

const nameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);
const offerBody = z.object({ protocolVersion: z.number().int() });
const addBody = z.object({ name: nameSchema, timeoutMs: z.number().int().positive().optional(), forwarded: z.boolean().optional() });
const removeBody = z.object({ name: nameSchema, timeoutMs: z.number().int().positive().optional(), forwarded: z.boolean().optional() });
const transferBody = z.object({ name: nameSchema.optional(), timeoutMs: z.number().int().positive().optional(), forwarded: z.boolean().optional() });
const listBody = z.object({ forwarded: z.boolean().optional() });
const snapshotBeginBody = z.object({ forwarded: z.boolean().optional() });
const snapshotPageBody = z.object({ session: z.string().min(1).max(64), seq: z.number().int().min(0) });

function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw conclaveError('BAD_REQUEST', `${what}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'} ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** Membership timing: CLI timeouts are longer than these waits (see runtime/cli/cluster.ts). */
const DISCOVER_BODIES = { 'join.request': joinRequestSchema };
const DEFAULT_LEADERLESS_WARN_MS = 10_000;
/** a non-member talking to the leader longer than this is reported (its messages are dropped from the start) */
const NON_MEMBER_GRACE_MS = 5000;
const AUTO_JOIN = { firstDelayMs: 500, afterAdmissionMs: 3000, maxDelayMs: 5000, requestTimeoutMs: 2000, logEveryMs: 10_000 } as const;

function joinSecretOf(join: ControllerOptions['join']): Uint8Array | null {
  if (join?.secret !== undefined) {
    const secret = typeof join.secret === 'string' ? Buffer.from(join.secret, 'utf8') : join.secret;
    if (secret.length < MIN_SECRET_BYTES) throw conclaveError('CONFIG', `join.secret is ${secret.length} bytes; at least ${MIN_SECRET_BYTES} are required`);
    return secret;
  }
  return join?.secretFile ? readJoinSecret(join.secretFile) : null;
}

const MEMBERSHIP_TIMING = {
  offerTimeoutMs: 2000,
  catchUpLag: 16,
  catchUpTimeoutMs: 10_000,
  backoffBaseMs: 250,
  backoffMaxMs: 5000,
  /** an add or remove requested by an operator gives up after this long unless the request says less */
  defaultDeadlineMs: 25_000,
  /** how long a request waits for a leader to appear before it says there is none */
  leaderWaitMs: 3000,
  /** initialMembers: retry delay per name grows to this, progress is logged this often */
  initialRetryMaxMs: 10_000,
  initialLogEveryMs: 10_000,
} as const;

/** how long `init` waits for the new one-voter cluster to elect itself (it campaigns at its first tick) */
const INIT_LEADS_WITHIN_MS = 30_000;

const NO_MEMBER_STATUS: MemberStatus = {
  role: 'none',
  term: 0,
  leader: null,
  commitIndex: 0,
  appliedIndex: 0,
  members: [],
};

type ChangeSpec = Pick<MembershipInput, 'op' | 'target' | 'maxAttempts' | 'deadlineMs' | 'maxVoters' | 'expectNodeId'>;

export class Controller {
  readonly name: string;
  readonly prefix: string;
  readonly actor: Actor<typeof bootstrapMachine>;
  private readonly opts: ControllerOptions;
  private member: MemberRuntime | null = null;
  /** the runtime started in joining mode, handed to the member phase once the first state is durable */
  private joiningRuntime: MemberRuntime | null = null;
  /** join offers are decided one at a time, and so are membership changes (one change at a time) */
  private offerQueue: Promise<unknown> = Promise.resolve();
  private changeQueue: Promise<unknown> = Promise.resolve();
  private initialMembersRunning = false;
  private readonly removedNotices = new Map<string, number>();
  /** nodes outside the configuration that talk to this leader: when first heard, when last reported */
  private readonly nonMembers = new Map<string, { first: number; reported: number }>();
  private stopping: Promise<void> | null = null;
  private readonly admin: AdminServer;
  private readonly inspectionListeners = new Set<(event: InspectionEvent) => void>();
  private readonly refusalListeners = new Set<(refusal: Refusal) => void>();
  /** refusals reported at this end, by component and reason (their log lines are rate-limited) */
  readonly refusals = new Map<string, number>();
  private readonly refusalLog: RateLimitedLog;
  /** a claim that this node is stale is being checked with the member that made it */
  private confirmingGeneration = false;
  /** `snapshot save` sessions served by this node while it leads */
  private readonly snapshotExports = new SnapshotExports();
  private publisher: InspectionPublisher | null = null;
  /** every XState inspection event of this controller's actors (bootstrap, raft role, …) */
  private readonly inspectionSink = (event: InspectionEvent): void => {
    for (const listener of this.inspectionListeners) listener(event);
  };
  private readonly log: Logger;
  private readonly joinSecret: Uint8Array | null;
  private readonly nonces = new NonceCache();
  private discoverSub: BusSubscription | null = null;
  private announcing = false;
  private healthTimer: NodeJS.Timeout | null = null;
  private readonly events: ControllerEventHub;

  constructor(
    opts: ControllerOptions,
    readonly store: NodeStore,
    readonly bus: Bus,
    baseLogger: Logger,
    private initSource: InitSource | null = null,
    joinSecret: Uint8Array | null = null,
  ) {
    this.opts = opts;
    this.name = opts.name;
    this.prefix = opts.prefix ?? 'conclave';
    this.joinSecret = joinSecret;
    const identity = store.identity();
    if (opts.inspect) this.inspectionListeners.add(opts.inspect);
    // every line carries node, node id, cluster id and phase; the last two change, so they are
    // added per line rather than bound once
    this.log = baseLogger.child(
      { node: this.name, nodeId: identity.nodeId },
      { formatters: { log: (line) => ({ ...line, clusterId: this.store.identity().clusterId, phase: this.currentPhase() }) } },
    );
    this.events = new ControllerEventHub(this.logFor('events'));
    this.refusalLog = new RateLimitedLog(this.log);
    const machine = bootstrapMachine.provide({
      actors: {
        bootstrapCluster: fromPromise<BootstrapDone, BootstrapCluster>(({ input }) => this.bootstrapCluster(input)),
        recordContact: fromPromise<void, ContactRecord>(({ input }) => this.store.updateIdentity({ contactedBy: input })),
        joinCluster: fromCallback<BootstrapEvent, JoinAccepted>(({ input }) => {
          let handedOver = false;
          const runtime = this.createRuntime({
            joining: { clusterId: input.clusterId },
            onAdopted: (clusterId) => this.actor.send({ type: 'ADOPTED', clusterId }),
            // #17 item 11: a large state takes a while; while it arrives the join is alive
            onSnapshotProgress: (chunks, bytes) => this.actor.send({ type: 'JOIN_PROGRESS', chunks, bytes }),
            onJoined: (clusterId) => {
              handedOver = true;
              this.actor.send({ type: 'JOINED', clusterId });
            },
          });
          this.member = runtime;
          this.joiningRuntime = runtime;
          this.logFor('join').info({ joining: input.clusterId, leader: input.leader }, `joining cluster ${input.clusterId} (offered by ${input.leader}); waiting for its state`);
          runtime.start().catch((error: unknown) => {
            this.actor.send({ type: 'JOIN_FAILED', error: { code: codeOf(error) ?? 'FATAL', message: (error as Error).message } });
          });
          return () => {
            if (handedOver) return;
            this.joiningRuntime = null;
            if (this.member === runtime) this.member = null;
            runtime.stop().catch((error: unknown) => this.log.error({ err: error }, 'joining runtime did not stop cleanly'));
          };
        }),
        memberRuntime: fromCallback(() => {
          // a node that just joined keeps the runtime that received its first state
          const runtime = this.joiningRuntime ?? this.createRuntime({});
          const adopted = runtime === this.joiningRuntime;
          this.joiningRuntime = null;
          this.member = runtime;
          if (!adopted) {
            runtime.start().catch((error: unknown) => {
              this.actor.send({ type: 'FAIL', error: { code: codeOf(error) ?? 'FATAL', message: (error as Error).message } });
            });
          }
          void this.runInitialMembers();
          return () => {
            if (this.member === runtime) this.member = null;
            runtime.stop().catch((error: unknown) => this.log.error({ err: error }, 'member runtime did not stop cleanly'));
          };
        }),
      },
    });
    this.actor = createActor(machine, {
      id: `bootstrap:${this.name}`,
      input: {
        name: this.name,
        nodeId: identity.nodeId,
        clusterId: identity.clusterId,
        removed: identity.removed === true,
        contactedBy: identity.contactedBy ?? null,
        initFrom: opts.initFrom ?? null,
        joinTimeoutMs: opts.joinTimeoutMs,
        legacyMember: identity.clusterId === null && identity.removed !== true && store.hasRaftState(),
        awaitingMembership: identity.clusterId !== null && identity.removed !== true && !appliedMembershipIncludes(store, identity.nodeId),
      },
      inspect: this.inspectionSink,
    });
    let lastPhase: Phase | null = null;
    this.actor.subscribe((snapshot) => {
      const phase = phaseOf(snapshot.value);
      if (phase !== lastPhase) {
        lastPhase = phase;
        const ctx = snapshot.context;
        this.logFor('bootstrap').info(ctx.error ? { error: ctx.error } : {}, `phase ${phase}`);
        this.events.emit('phaseChanged', { phase });
      }
    });
    this.admin = new AdminServer(this.bus, `${this.prefix}.node.${this.name}.admin`, this.adminHandlers(), this.logFor('admin'));
  }

  /**
   * Observe the inspection events of every actor of this controller (the inspector publishes
   * them on `<prefix>.inspect.<name>`). Returns the function that stops observing.
   */
  onInspection(listener: (event: InspectionEvent) => void): () => void {
    this.inspectionListeners.add(listener);
    return () => this.inspectionListeners.delete(listener);
  }

  /**
   * Subscribe to an event: `leaderChanged`, `membershipChanged`, `phaseChanged`, `applied`.
   * Returns the function that unsubscribes. Listeners run synchronously: keep them short.
   */
  on<E extends ControllerEventName>(event: E, listener: ControllerListener<E>): () => void {
    return this.events.on(event, listener);
  }

  /** Observe the join rule's refusals (foreign peer messages, refused joins). */
  onRefusal(listener: (refusal: Refusal) => void): () => void {
    this.refusalListeners.add(listener);
    return () => this.refusalListeners.delete(listener);
  }

  /** a child logger with the identity fields every line carries */
  logFor(component: string): Logger {
    return this.log.child({ component });
  }

  /** one refusal, reported at this end: logged, and given to every refusal listener (inspector timeline) */
  private reportRefusal(component: string, refusal: Refusal): void {
    const key = `${component}:${refusal.reason}`;
    const count = (this.refusals.get(key) ?? 0) + 1;
    this.refusals.set(key, count);
    // keyed by what was refused: a sender that changes its name gets no more lines than a few per interval
    this.refusalLog.warn(key, { component, refusal, refused: count }, refusal.message, refusal.from);
    for (const listener of this.refusalListeners) listener(refusal);
  }

  private createRuntime(extra: Pick<MemberRuntimeOptions, 'joining' | 'onAdopted' | 'onJoined' | 'onSnapshotProgress'>): MemberRuntime {
    // callbacks go to the bootstrap actor itself: a joining runtime outlives the state that started it
    return createMemberRuntime({
      name: this.name,
      prefix: this.prefix,
      store: this.store,
      bus: this.bus,
      logger: this.logFor('member'),
      timing: { ...DEFAULT_RAFT, ...this.opts.raft },
      inspect: this.inspectionSink,
      onFatal: (error) => this.actor.send({ type: 'FAIL', error: { code: codeOf(error) ?? 'FATAL', message: (error as Error).message } }),
      onRemoved: () => void this.markRemoved('the committed configuration no longer lists it'),
      onRefused: (refusal) => this.reportRefusal('member', refusal),
      onClusterId: (clusterId) => {
        this.logFor('upgrade').info({ adopted: clusterId }, `this cluster, created without an id, now has cluster id ${clusterId}`);
        this.actor.send({ type: 'CLUSTER_ID', clusterId });
      },
      onNonMember: (name, nodeId) => this.onNonMember(name, nodeId),
      state: this.opts.state,
      events: this.events.memberEvents(),
      ...extra,
    });
  }

  /**
   * Raft traffic to the leader from a node outside the configuration (already dropped). A node the
   * cluster removed is told so, whichever leader removed it. Anything else that keeps talking past
   * a grace period (a learner a new leader never had, a misconfigured node) is reported, once a minute.
   */
  private onNonMember(name: string, nodeId: string): void {
    const removed = this.member?.raftStatus().membership.removed ?? [];
    if (removed.includes(nodeId)) {
      this.noticeRemoved(name);
      return;
    }
    const now = Date.now();
    const seen = this.nonMembers.get(nodeId) ?? { first: now, reported: 0 };
    if (!this.nonMembers.has(nodeId)) {
      if (this.nonMembers.size >= 1024) this.nonMembers.delete(this.nonMembers.keys().next().value!);
      this.nonMembers.set(nodeId, seen);
    }
    if (now - seen.first >= NON_MEMBER_GRACE_MS && now - seen.reported >= 60_000) {
      seen.reported = now;
      const clusterId = this.store.identity().clusterId;
      this.reportRefusal('membership', {
        reason: 'non-member',
        from: name,
        localClusterId: clusterId,
        remoteClusterId: clusterId,
        message: `${name} (node ${nodeId}) has kept sending raft traffic for ${Math.round((now - seen.first) / 1000)} s but is not a member of cluster ${clusterId}; its messages are dropped — add it with \`conclave cluster add ${name} --via ${this.name}\`, or stop it`,
      });
    }
  }

  /** persist `removed` durably, then leave the member phase for good */
  private async markRemoved(why: string): Promise<void> {
    if (this.phase !== 'member' || this.stopping) return;
    try {
      await this.store.updateIdentity({ removed: true });
    } catch (err) {
      this.log.error({ err }, 'could not record the removal durably; stopping the member runtime anyway');
    }
    this.logFor('membership').warn({ why }, `${this.name} was removed from cluster ${this.store.identity().clusterId}: ${why}; it will not rejoin by itself`);
    this.actor.send({ type: 'REMOVED' });
  }

  /** tell a removed node so (rate-limited per name): it may have missed the config that removed it */
  private noticeRemoved(name: string): void {
    const now = Date.now();
    if (now - (this.removedNotices.get(name) ?? 0) < 2000) return;
    this.removedNotices.set(name, now);
    void this.sendRemovedNotice(name);
  }

  private async sendRemovedNotice(name: string): Promise<void> {
    try {
      await adminCall(this.bus, this.prefix, name, this.sender(), 'member.removed', {}, 1000);
    } catch (err) {
      // best effort: the node may be down; it is told again when it next talks to the leader
      this.logFor('membership').debug({ err, to: name }, 'removal notice not delivered');
    }
  }

  private currentPhase(): Phase | 'starting' {
    // the logger may be used before the actor exists (constructor) or after it stopped
    return this.actor ? phaseOf(this.actor.getSnapshot().value) : 'starting';
  }

  sender() {
    const id = this.store.identity();
    return { name: this.name, nodeId: id.nodeId, clusterId: id.clusterId, generation: id.generation };
  }

  get phase(): Phase {
    return phaseOf(this.actor.getSnapshot().value);
  }

  async start(): Promise<void> {
    await this.admin.start();
    this.discoverSub = this.bus.subscribe(`${this.prefix}.discover`, (msg) => this.onDiscover(msg));
    // publishes on <prefix>.inspect.<name> only while an inspector watches
    this.publisher = attachInspectionPublisher(this, { logger: this.logFor('inspect') });
    this.actor.start();
    // Settle out of the transient states so callers see a stable phase.
    const settled = await waitFor(this.actor, (s) => s.value !== 'loading' && s.value !== 'bootstrapping' && s.value !== 'contacted', {
      timeout: 60_000,
    });
    if (settled.value === 'failed') {
      const error = settled.context.error ?? { code: 'FATAL', message: 'bootstrap failed' };
      throw conclaveError(error.code, error.message);
    }
    if (this.opts.join?.cluster) void this.announceUntilAdmitted(this.opts.join.cluster);
    this.startHealthWatch();
  }

  status(): ControllerStatus {
    const id = this.store.identity();
    return {
      name: this.name,
      nodeId: id.nodeId,
      clusterId: this.actor.getSnapshot().context.clusterId,
      phase: this.phase,
      ...(this.member ? this.member.status() : NO_MEMBER_STATUS),
      bus: this.bus.state(),
    };
  }

  /** Explicit initialization: bootstrap a one-member cluster. Returns the new cluster id. */
  async init(): Promise<string> {
    const snapshot = this.actor.getSnapshot();
    const refusal = initRefusal(snapshot.context, this.phase);
    if (refusal) throw conclaveError(refusal.code, refusal.message);
    this.actor.send({ type: 'INIT' });
    const done = await waitFor(this.actor, (s) => s.value === 'member' || s.value === 'uninitialized' || s.value === 'failed', {
      timeout: 60_000,
    });
    if (done.value !== 'member') {
      const error = done.context.error ?? { code: 'FATAL', message: 'initialization failed' };
      throw conclaveError(error.code, error.message);
    }
    await this.awaitOwnLeadership(INIT_LEADS_WITHIN_MS);
    return done.context.clusterId!;
  }

  /** the only voter of a fresh cluster elects itself at once: wait until it leads and has committed an entry of its term */
  private async awaitOwnLeadership(timeoutMs: number): Promise<void> {
    const member = this.memberRuntime();
    if (member.status().leader !== this.name) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(conclaveError('NO_LEADER', `${this.name} initialized its cluster but did not become its leader within ${timeoutMs} ms; check its log, then retry the write`));
        }, timeoutMs);
        const off = this.on('leaderChanged', ({ leader }) => {
          if (leader !== this.name) return;
          clearTimeout(timer);
          off();
          resolve();
        });
      });
    }
    await member.confirmLeadership();
  }

  /** Wait until the member runtime reports a leader (or time out). */
  async waitForLeader(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = this.member?.status().leader;
      if (leader) return leader;
      if (Date.now() > deadline) throw conclaveError('NO_LEADER', `${this.name}: no leader after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  memberRuntime(): MemberRuntime {
    if (!this.member) {
      throw conclaveError('NOT_A_MEMBER', `${this.name} is ${this.phase}, not a member of a cluster: run \`conclave init --node ${this.name}\` or add it to a cluster`);
    }
    return this.member;
  }

  /** Propose a command to the replicated state from any member (forwarded to the leader); resolves with its result once applied. */
  async propose(command: unknown): Promise<unknown> {
    return this.memberRuntime().handleAdmin('propose', { command });
  }

  /** Read the replicated state: linearizable (read index on the leader) unless `stale`, which reads this node's copy. */
  async read(query: unknown, opts: { stale?: boolean } = {}): Promise<unknown> {
    return this.memberRuntime().handleAdmin('read', { query, stale: opts.stale === true });
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.admin.stop();
      this.discoverSub?.unsubscribe();
      this.discoverSub = null;
      if (this.healthTimer) clearInterval(this.healthTimer);
      this.healthTimer = null;
      // stopping the actor stops the member runtime's invocation (and forgets it): keep a handle so
      // the bus and store close only after it has handed leadership over and flushed
      const member = this.member;
      this.actor.stop();
      await member?.stop();
      if (this.joiningRuntime && this.joiningRuntime !== this.member) await this.joiningRuntime.stop();
      this.joiningRuntime = null;
      this.publisher?.stop();
      this.member = null;
      await this.bus.close();
      await this.store.close();
      this.log.info('stopped');
    })();
    return this.stopping;
  }

  private async bootstrapCluster(input: BootstrapCluster): Promise<BootstrapDone> {
    let source: InitSource | null = null;
    if (input.source === 'initFrom') {
      // Validated completely before anything is written: a bad source leaves the store blank.
      source = this.initSource ?? (await readInitSource(input.initFrom!));
      this.initSource = null;
    }
    const identity = this.store.identity();
    if (identity.clusterId !== null) {
      throw conclaveError('ALREADY_INITIALIZED', `init refused: ${this.name} is already a member of cluster ${identity.clusterId}`);
    }
    const clusterId = uuidv7();
    const membership: Membership = { members: [{ nodeId: identity.nodeId, name: this.name, voter: true }] };
    // initialMembers travel in the replicated configuration, so whichever node leads later carries on
    const pending = [...new Set((this.opts.initialMembers ?? []).filter((n) => n !== this.name))];
    if (pending.length > 0) membership.pending = pending;
    // The bootstrap state is a snapshot at index 1, term 1: the imported data (if any) and a
    // one-voter configuration. The node then elects itself; later members catch up from it.
    const meta: SnapshotMeta = { index: 1, term: 1, membership };
    const hardState: HardState = { term: 1, vote: null, commit: 1 };
    await this.store.initializeCluster({
      clusterId,
      meta,
      pairs: source?.pairs ?? initialStatePairs(this.opts.state),
      hardState,
      importedFrom: source?.path,
    });
    this.logFor('bootstrap').info(
      { clusterId, source: input.source, ...(source ? { importedFrom: source.path, keys: source.pairs.length } : {}) },
      source ? `initialized cluster ${clusterId} from ${source.path}` : `initialized cluster ${clusterId}`,
    );
    return { clusterId };
  }

  private adminHandlers(): AdminHandlers {
    return {
      whois: async () => {
        // a blank node about to initialize from initFrom says so: peers racing to do the same wait
        const ctx = this.actor.getSnapshot().context;
        const initializing = ctx.clusterId === null && ctx.initFrom !== null && (this.phase === 'bootstrapping' || this.phase === 'uninitialized') && !ctx.error;
        return initializing ? { ...this.sender(), autoInit: 'initializing' as AutoInitState } : this.sender();
      },
      status: async () => this.status(),
      init: async () => ({ clusterId: await this.init() }),
      propose: async (body) => this.memberRuntime().handleAdmin('propose', body),
      read: async (body) => this.memberRuntime().handleAdmin('read', body),
      'join.offer': (body, envelope) => this.serializeOffer(() => this.onJoinOffer(body, envelope)),
      'member.removed': async (_body, envelope) => this.onRemovedNotice(envelope),
      'cluster.add': async (body) => {
        const req = parseBody(addBody, body, 'cluster add');
        return this.onLeader('cluster.add', req, req.forwarded === true, req.timeoutMs, () => this.add(req.name, { timeoutMs: req.timeoutMs }));
      },
      'cluster.remove': async (body) => {
        const req = parseBody(removeBody, body, 'cluster remove');
        return this.onLeader('cluster.remove', req, req.forwarded === true, req.timeoutMs, () => this.remove(req.name, { timeoutMs: req.timeoutMs }));
      },
      'cluster.list': async (body) => {
        const req = parseBody(listBody, body, 'cluster list');
        return this.onLeader('cluster.list', req, req.forwarded === true, undefined, async () => this.list());
      },
      'snapshot.begin': async (body) => {
        const req = parseBody(snapshotBeginBody, body, 'snapshot save');
        return this.onLeader('snapshot.begin', req, req.forwarded === true, undefined, async () => {
          const snap = await this.requireLeader().exportSnapshot();
          // a page must fit one reply on this bus (a pair of the largest command travels alone)
          const pageBytes = Math.min(SNAPSHOT_PAGE_BYTES, wireLimits(this.bus.maxPayload).commandBytes);
          return this.snapshotExports.begin(this.name, { clusterId: this.store.identity().clusterId, ...snap }, pageBytes);
        });
      },
      'snapshot.page': async (body) => {
        const req = parseBody(snapshotPageBody, body, 'snapshot page');
        return this.snapshotExports.page(req.session, req.seq);
      },
      'cluster.transfer': async (body) => {
        const req = parseBody(transferBody, body, 'cluster transfer-leadership');
        return this.onLeader('cluster.transfer', req, req.forwarded === true, req.timeoutMs, () => this.transferLeadership(req.name));
      },
    };
  }

  // ---- membership: the library API (`.cluster`) and the admin handlers run here, on the leader ----

  /** `controller.cluster.add/remove/list/transferLeadership`: run on this node, which must lead */
  readonly cluster = {
    add: (name: string, opts: { timeoutMs?: number } = {}) => this.add(name, opts),
    remove: (name: string, opts: { timeoutMs?: number } = {}) => this.remove(name, opts),
    list: () => this.list(),
    transferLeadership: (name?: string) => this.transferLeadership(name),
  };

  /** run `local` when this node leads; otherwise forward the request once to the leader's admin subject */
  private async onLeader(type: string, body: object, forwarded: boolean, timeoutMs: number | undefined, local: () => Promise<unknown>): Promise<unknown> {
    const member = this.memberRuntime();
    if (member.status().role === 'leader') return local();
    if (forwarded) throw conclaveError('NOT_LEADER', `${this.name} is not the leader any more; retry`);
    const leader = await this.awaitLeader();
    if (leader === this.name) return local();
    const changesState = type !== 'cluster.list' && type !== 'snapshot.begin';
    return member.forwardToLeader(type, { ...body, forwarded: true }, { timeoutMs: (timeoutMs ?? 5000) + 1000, changesState });
  }

  /** the leader's name, waiting briefly for an election; a clear NO_LEADER error otherwise */
  private async awaitLeader(): Promise<string> {
    const deadline = Date.now() + MEMBERSHIP_TIMING.leaderWaitMs;
    for (;;) {
      const status = this.memberRuntime().status();
      if (status.leader) return status.leader;
      if (Date.now() > deadline) {
        const voters = status.members.filter((m) => m.voter);
        const reachable = voters.filter((m) => m.reachable).length;
        throw conclaveError(
          'NO_LEADER',
          `cluster has no leader: ${this.name} has heard from no leader in term ${status.term} (${reachable} of ${voters.length} voters reachable from here; a majority is needed). Start the missing members, or retry if an election is under way`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private requireLeader(): MemberRuntime {
    const member = this.memberRuntime();
    if (member.status().role !== 'leader') {
      const leader = member.status().leader;
      throw conclaveError('NOT_LEADER', `${this.name} is not the leader${leader ? ` (the leader is ${leader})` : ''}; send the request to the leader or through \`--via\` any member`, { leader });
    }
    return member;
  }

  async list(): Promise<ClusterList> {
    const s = this.status();
    return { clusterId: s.clusterId, leader: s.leader, term: s.term, members: s.members };
  }

  async add(name: string, opts: { timeoutMs?: number } = {}): Promise<AddResult> {
    if (!validNodeName(name)) throw conclaveError('BAD_REQUEST', `cannot add ${JSON.stringify(name)}: a node name must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
    if (name === this.name) {
      this.requireLeader();
      return { name, nodeId: this.store.identity().nodeId, outcome: 'already-member' };
    }
    const output = await this.runChange({ op: 'add', target: name, maxAttempts: 3, deadlineMs: deadlineFor(opts.timeoutMs) });
    return { name, nodeId: output.node!.nodeId, outcome: output.outcome === 'already-member' ? 'already-member' : 'added' };
  }

  async remove(name: string, opts: { timeoutMs?: number } = {}): Promise<{ name: string; nodeId: string; outcome: 'removed' }> {
    if (!validNodeName(name)) throw conclaveError('BAD_REQUEST', `cannot remove ${JSON.stringify(name)}: a node name must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
    if (name === this.name) return this.removeSelfAsLeader(opts);
    const output = await this.runChange({ op: 'remove', target: name, maxAttempts: 3, deadlineMs: deadlineFor(opts.timeoutMs) });
    return { name, nodeId: output.node!.nodeId, outcome: 'removed' };
  }

  /** removing the leader (as etcd does): hand leadership to the most up-to-date voter, which removes this node */
  private async removeSelfAsLeader(opts: { timeoutMs?: number }): Promise<{ name: string; nodeId: string; outcome: 'removed' }> {
    const member = this.requireLeader();
    const clusterId = this.store.identity().clusterId;
    const others = member.raftStatus().membership.members.filter((m) => m.voter && m.nodeId !== this.store.identity().nodeId);
    if (others.length === 0) {
      throw conclaveError('BAD_REQUEST', `cannot remove ${this.name}: it is the only voter of cluster ${clusterId}; add another member first`);
    }
    const { leader } = await this.transferLeadership();
    this.logFor('membership').info({ to: leader }, `removing ${this.name}, the leader: handed leadership to ${leader}, which removes it`);
    const wait = (opts.timeoutMs ?? MEMBERSHIP_TIMING.defaultDeadlineMs) + 1000;
    try {
      return (await adminCall(this.bus, this.prefix, leader, this.sender(), 'cluster.remove', { name: this.name, timeoutMs: opts.timeoutMs, forwarded: true }, wait)) as {
        name: string;
        nodeId: string;
        outcome: 'removed';
      };
    } catch (err) {
      if (isUnreachable(err)) throw conclaveError('UNREACHABLE', `${this.name} handed leadership to ${leader} to be removed, but ${leader} did not answer within ${wait} ms; check \`conclave cluster list\` and retry`);
      throw err;
    }
  }

  async transferLeadership(name?: string): Promise<{ leader: string; transferred: boolean }> {
    const member = this.requireLeader();
    const membership = member.raftStatus().membership;
    const clusterId = this.store.identity().clusterId;
    let nodeId: string | undefined;
    if (name !== undefined) {
      const target = membership.members.find((m) => m.name === name);
      if (!target) throw conclaveError('NOT_FOUND', `cannot transfer leadership to ${name}: it is not a member of cluster ${clusterId}; \`conclave cluster list\` shows the voters`);
      if (!target.voter) throw conclaveError('NOT_A_VOTER', `cannot transfer leadership to ${name}: it is a learner, not a voter; wait until it is promoted (\`conclave cluster list\`) or pick a voter`);
      if (target.nodeId === this.store.identity().nodeId) return { leader: this.name, transferred: false };
      nodeId = target.nodeId;
    }
    const to = member.transferLeadership(nodeId);
    const toName = membership.members.find((m) => m.nodeId === to)?.name ?? to;
    const timing = { ...DEFAULT_RAFT, ...this.opts.raft };
    const deadline = Date.now() + 2 * timing.electionTimeoutMs + 1000;
    while (Date.now() < deadline) {
      const s = member.raftStatus();
      if (s.role !== 'leader' && s.leader === to) {
        this.logFor('membership').info({ to: toName }, `handed leadership to ${toName}`);
        return { leader: toName, transferred: true };
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw conclaveError('TRANSFER_INCOMPLETE', `leadership transfer to ${toName} did not complete within ${2 * timing.electionTimeoutMs + 1000} ms (is it reachable and caught up?); ${this.name} stays leader — retry`);
  }

  /** one membership change at a time: queue behind the previous one, then run the membership machine */
  private runChange(spec: ChangeSpec): Promise<MembershipOutput> {
    const run = this.changeQueue.then(() => this.runMembershipActor(spec));
    this.changeQueue = run.catch(() => undefined);
    return run;
  }

  private async runMembershipActor(spec: ChangeSpec): Promise<MembershipOutput> {
    const member = this.requireLeader();
    const identity = this.store.identity();
    if (identity.clusterId === null) {
      throw conclaveError('BUSY', `cluster of ${this.name} has no cluster id yet (an older cluster being upgraded: the leader is committing one); retry in a moment`);
    }
    const leader = { name: this.name, nodeId: identity.nodeId, clusterId: identity.clusterId! };
    const log = this.logFor('membership');
    const machine = membershipMachine.provide({
      actors: {
        offerJoin: fromPromise<OfferReply, { target: string }>(({ input }) => this.offerJoin(input.target)),
        readMembership: fromPromise(async () => this.requireLeader().raftStatus().membership),
        proposeChange: fromPromise<void, MembershipChange>(({ input }) => this.requireLeader().changeMembership(input)),
        watchProgress: fromCallback<{ type: 'PROGRESS'; matchIndex: number; commitIndex: number; streamed?: number }, { nodeId: string }>(({ sendBack, input }) => {
          const poll = () => {
            const s = member.raftStatus();
            sendBack({ type: 'PROGRESS', matchIndex: s.progress[input.nodeId]?.matchIndex ?? 0, commitIndex: s.commit, streamed: member.snapshotStreamed(input.nodeId) });
          };
          const timer = setInterval(poll, 50);
          poll();
          return () => clearInterval(timer);
        }),
        notifyRemoved: fromPromise<void, { name: string }>(({ input }) => this.sendRemovedNotice(input.name)),
      },
    });
    const actor = createActor(machine, {
      id: `membership:${spec.op}:${spec.target}`,
      input: {
        ...spec,
        leader,
        catchUpLag: MEMBERSHIP_TIMING.catchUpLag,
        catchUpTimeoutMs: MEMBERSHIP_TIMING.catchUpTimeoutMs,
        backoffBaseMs: MEMBERSHIP_TIMING.backoffBaseMs,
        backoffMaxMs: MEMBERSHIP_TIMING.backoffMaxMs,
      },
      inspect: this.inspectionSink,
    });
    let lastState = '';
    actor.subscribe((snap) => {
      const state = JSON.stringify(snap.value);
      if (state === lastState) return;
      lastState = state;
      log.info({ op: spec.op, target: spec.target, state: snap.value, attempt: snap.context.attempt }, `${spec.op} ${spec.target}: ${typeof snap.value === 'string' ? snap.value : Object.values(snap.value).join('.')}`);
    });
    actor.start();
    const output = (await toPromise(actor)) as MembershipOutput;
    const final = actor.getSnapshot().value;
    if (final === 'done') {
      log.info({ op: spec.op, target: spec.target, outcome: output.outcome, nodeId: output.node?.nodeId }, `${spec.op} ${spec.target}: ${output.outcome}`);
      return output;
    }
    const error = output.error ?? { code: 'FATAL', message: `${spec.op} ${spec.target} failed` };
    if (final === 'refused') {
      this.reportRefusal('membership', {
        reason: 'join-offer',
        from: spec.target,
        localClusterId: leader.clusterId,
        remoteClusterId: error.remoteClusterId ?? output.node?.clusterId ?? null,
        message: error.message,
      });
      throw conclaveError(error.code === 'REMOVED' ? 'REMOVED' : 'JOIN_REFUSED', error.message);
    }
    log.warn({ op: spec.op, target: spec.target, error }, `${spec.op} ${spec.target} failed: ${error.message}`);
    throw conclaveError(error.code, error.message);
  }

  /** the leader's half of the handshake: offer membership to `target` on its admin subject */
  private async offerJoin(target: string): Promise<OfferReply> {
    const subject = `${this.prefix}.node.${target}.admin`;
    let data: Uint8Array;
    try {
      const reply = await this.bus.request(subject, encode(this.sender(), 'join.offer', { protocolVersion: PROTOCOL_VERSION }), { timeoutMs: MEMBERSHIP_TIMING.offerTimeoutMs });
      data = reply.data;
    } catch (err) {
      if (err instanceof NoRespondersError) throw conclaveError('NO_RESPONDERS', `${target} is not answering on ${subject}; is \`conclave run --name ${target}\` running on the same NATS and prefix?`);
      if (err instanceof RequestTimeoutError) throw conclaveError('TIMEOUT', `${target} did not answer the join offer within ${MEMBERSHIP_TIMING.offerTimeoutMs} ms`);
      throw err;
    }
    const decoded = decodeReply(data);
    const partySchema = z.object({ name: z.string(), nodeId: z.string(), clusterId: z.string().nullable() });
    if (decoded.ok) {
      const party = partySchema.safeParse(decoded.body);
      if (!party.success) throw conclaveError('BAD_REPLY', `${target} answered the join offer with a malformed reply`);
      return { accepted: true, party: party.data };
    }
    const details = partySchema.safeParse(decoded.error.details);
    if (decoded.error.code === 'PROTOCOL_VERSION' && !details.success) {
      // the node could not even read our envelope: name both versions
      return { accepted: false, party: null, code: 'PROTOCOL_VERSION', message: `join refused: ${target} does not speak protocol version ${PROTOCOL_VERSION} of ${this.name} (${decoded.error.message})` };
    }
    if (decoded.error.code === 'JOIN_REFUSED' || decoded.error.code === 'REMOVED' || decoded.error.code === 'PROTOCOL_VERSION' || details.success) {
      return { accepted: false, party: details.success ? details.data : null, code: decoded.error.code, message: decoded.error.message };
    }
    throw conclaveError(decoded.error.code, decoded.error.message);
  }

  private serializeOffer<T>(work: () => Promise<T>): Promise<T> {
    const run = this.offerQueue.then(work);
    this.offerQueue = run.catch(() => undefined);
    return run;
  }

  /** the node's half of the handshake: the join machine decides; refusals are reported here too */
  private async onJoinOffer(body: unknown, envelope: Envelope): Promise<{ name: string; nodeId: string; clusterId: string | null }> {
    const offer = parseBody(offerBody, body, 'join offer');
    const identity = this.store.identity();
    const phase = this.phase;
    const party = (clusterId: string | null) => ({ name: this.name, nodeId: identity.nodeId, clusterId });
    if (phase === 'bootstrapping' || phase === 'failed') {
      throw conclaveError('BUSY', `${this.name} is ${phase} and cannot answer a join offer now; retry shortly`);
    }
    // same cluster, other identity generation (disaster recovery): refused at both ends
    const generation = checkGeneration(
      { name: this.name, clusterId: identity.clusterId, generation: identity.clusterId === null ? undefined : identity.generation },
      { name: envelope.from, clusterId: envelope.clusterId, generation: envelope.gen },
    );
    if (generation.conflict) {
      this.reportRefusal('join', { reason: 'stale-generation', from: envelope.from, localClusterId: identity.clusterId, remoteClusterId: envelope.clusterId, message: generation.message });
      if (generation.stale === 'local' && phase === 'member') {
        const claim = { name: envelope.from, nodeId: envelope.nodeId, clusterId: generation.clusterId, generation: generation.remoteGeneration };
        this.checkStaleClaim(claim, generation.message, generation.localGeneration);
      }
      throw conclaveError('JOIN_REFUSED', generation.message, party(identity.clusterId));
    }
    const joiningClusterId = phase === 'joining' ? (this.actor.getSnapshot().context.contactedBy?.clusterId ?? null) : null;
    const machine = joinMachine.provide({
      actors: {
        recordContact: fromPromise<void, ContactRecordInput>(async ({ input }) => {
          if (this.phase !== 'uninitialized') return;
          this.actor.send({ type: 'CONTACTED', contact: { ...input, at: new Date().toISOString() } });
          const s = await waitFor(this.actor, (x) => x.value !== 'contacted', { timeout: 10_000 });
          if (s.value === 'failed') throw new Error(s.context.error?.message ?? 'recording the contact failed');
        }),
        enterJoining: fromPromise<void, { clusterId: string; leader: string }>(async ({ input }) => {
          if (this.phase === 'uninitialized') this.actor.send({ type: 'JOIN_ACCEPTED', join: input });
          if (this.phase !== 'joining' && this.phase !== 'member') throw new Error(`${this.name} could not enter the joining phase (it is ${this.phase})`);
        }),
      },
    });
    const actor = createActor(machine, {
      id: `join:${envelope.from}`,
      input: {
        name: this.name,
        nodeId: identity.nodeId,
        clusterId: identity.clusterId,
        joiningClusterId,
        removed: identity.removed === true,
        offer: { name: envelope.from, nodeId: envelope.nodeId, clusterId: envelope.clusterId, protocolVersion: offer.protocolVersion },
        targetClusterId: this.opts.join?.cluster ?? null,
        protocol: { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION },
      },
      inspect: this.inspectionSink,
    });
    actor.start();
    const output = (await toPromise(actor)) as JoinOutput;
    if (output.accepted) {
      this.logFor('join').info({ by: envelope.from, clusterId: envelope.clusterId }, `accepted join offer from ${envelope.from} (cluster ${envelope.clusterId})`);
      return party(output.clusterId);
    }
    const error = output.error ?? { code: 'JOIN_REFUSED', message: 'join refused' };
    if (error.code === 'JOIN_REFUSED' || error.code === 'REMOVED' || error.code === 'PROTOCOL_VERSION') {
      this.reportRefusal('join', { reason: 'join-offer', from: envelope.from, localClusterId: output.clusterId, remoteClusterId: envelope.clusterId, message: error.message });
    } else {
      this.refusalLog.warn(`join:${error.code}`, { component: 'join', by: envelope.from, error }, error.message, envelope.from);
    }
    throw conclaveError(error.code, error.message, party(output.clusterId));
  }

  /** a join offer says this member is stale: believed only from a configured member that confirms it (actors/staleGeneration.ts) */
  private checkStaleClaim(claim: GenerationClaim, message: string, localGeneration: number): void {
    const membership = this.member?.raftStatus().membership;
    const why = membership ? unprovenClaim(membership, claim) : 'this node has no configuration to check the claim against';
    if (why !== null) {
      this.reportRefusal('join', { reason: 'unproven-generation', from: claim.name, localClusterId: claim.clusterId, remoteClusterId: claim.clusterId, message: `not stale: ${why}` });
      return;
    }
    if (this.confirmingGeneration) return;
    this.confirmingGeneration = true;
    unconfirmedClaim(this.bus, this.prefix, this.sender(), claim)
      .then((unconfirmed) => {
        if (this.stopping || this.phase !== 'member') return;
        if (unconfirmed !== null) {
          this.reportRefusal('join', { reason: 'unconfirmed-generation', from: claim.name, localClusterId: claim.clusterId, remoteClusterId: claim.clusterId, message: `not stale: ${unconfirmed}` });
          return;
        }
        this.logFor('join').error({ generation: localGeneration, clusterGeneration: claim.generation }, message);
        this.actor.send({ type: 'FAIL', error: { code: 'STALE_GENERATION', message } });
      })
      .finally(() => {
        this.confirmingGeneration = false;
      });
  }

  // ---- auto-join ----

  /** `<prefix>.discover`: every member hears it; the leader of the addressed cluster answers */
  private onDiscover(msg: BusMessage): void {
    // only a leader answers: the others do not even decode the request
    if (this.phase !== 'member' || this.member?.status().role !== 'leader') return;
    const decoded = decode(msg.data, DISCOVER_BODIES);
    if (!decoded.ok) {
      this.logFor('autojoin').debug({ failure: decoded.failure, detail: decoded.detail }, 'dropped a malformed discover message');
      return;
    }
    const req = decoded.body;
    const clusterId = this.store.identity().clusterId;
    // addressed to another cluster on the same prefix, or not ours to answer: stay silent
    if (clusterId === null || req.cluster !== clusterId) return;
    const reply = (r: Parameters<typeof encodeReply>[0]) => {
      if (msg.reply) msg.respond(encodeReply(r));
    };
    this.admitJoin(req, decoded.envelope).then(
      (body) => reply({ ok: true, body }),
      (err: unknown) => {
        const code = codeOf(err) ?? 'INTERNAL';
        if (!(err instanceof ConclaveError)) this.log.error({ err }, 'auto-join admission failed');
        reply({ ok: false, error: { code, message: (err as Error).message, details: { clusterId } } });
      },
    );
  }

  private readonly admitting = new Set<string>();

  /** the leader's decision on one auto-join request; the add itself runs in the background */
  private async admitJoin(req: JoinRequest, envelope: Envelope): Promise<JoinAdmission> {
    const clusterId = this.store.identity().clusterId!;
    const refuse = (code: string, message: string): never => {
      this.reportRefusal('autojoin', { reason: 'auto-join', from: req.name, localClusterId: clusterId, remoteClusterId: envelope.clusterId, message });
      throw conclaveError(code, message, { clusterId });
    };
    if (envelope.from !== req.name || envelope.nodeId !== req.nodeId) {
      refuse('BAD_REQUEST', `auto-join refused: the request names ${req.name} (${req.nodeId}) but was sent by ${envelope.from} (${envelope.nodeId ?? 'no node id'})`);
    }
    if (this.joinSecret === null) {
      refuse(
        'JOIN_AUTH',
        `auto-join refused: auto-join is off in cluster ${clusterId} (no joinSecretFile configured on its members); add ${req.name} with \`conclave cluster add ${req.name} --via ${this.name}\`, or configure joinSecretFile`,
      );
    }
    if (req.protocolVersion < MIN_PROTOCOL_VERSION || req.protocolVersion > PROTOCOL_VERSION) {
      refuse('PROTOCOL_VERSION', `auto-join refused: ${req.name} speaks protocol version ${req.protocolVersion} but ${this.name} speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`);
    }
    const verdict = verifyJoinRequest(this.joinSecret!, req, this.nonces);
    if (!verdict.ok) refuse(verdict.code, verdict.message);
    const rule = checkJoin({ name: this.name, clusterId }, { name: req.name, clusterId: envelope.clusterId });
    if (!rule.allowed) refuse('JOIN_REFUSED', rule.message);
    const maxVoters = this.opts.join?.maxVoters ?? DEFAULT_MAX_VOTERS;
    const membership = this.requireLeader().raftStatus().membership;
    const current = membership.members.find((m) => m.nodeId === req.nodeId);
    const voter = current?.voter === true || membership.members.filter((m) => m.voter).length < maxVoters;
    if (!this.admitting.has(req.nodeId)) {
      this.admitting.add(req.nodeId);
      const log = this.logFor('autojoin');
      log.info({ joiner: req.name, joinerId: req.nodeId, voter }, `auto-join: admitting ${req.name} (${req.nodeId}) as ${voter ? 'a voter' : 'a learner (maxVoters reached)'}`);
      this.runChange({ op: 'add', target: req.name, maxAttempts: 3, deadlineMs: 60_000, maxVoters, expectNodeId: req.nodeId })
        .then(
          (out) => log.info({ joiner: req.name, outcome: out.outcome }, `auto-join: ${req.name} ${out.outcome}`),
          (err: unknown) => log.warn({ joiner: req.name, err: (err as Error).message }, `auto-join: adding ${req.name} failed: ${(err as Error).message}; it will ask again`),
        )
        .finally(() => this.admitting.delete(req.nodeId));
    }
    return { admitted: true, leader: this.name, clusterId, voter };
  }

  /** a blank node with `join.cluster`: ask on `<prefix>.discover` until that cluster has added it */
  private async announceUntilAdmitted(cluster: string): Promise<void> {
    if (this.announcing) return;
    this.announcing = true;
    const log = this.logFor('autojoin');
    const subject = `${this.prefix}.discover`;
    let delay: number = AUTO_JOIN.firstDelayMs;
    let lastProblem = '';
    let lastLog = 0;
    if (this.joinSecret === null) log.warn({ cluster }, `auto-join to cluster ${cluster} without a join secret: the cluster will refuse; set join.secretFile`);
    try {
      while (!this.stopping) {
        const phase = this.phase;
        if (phase === 'member') {
          log.info({ cluster }, `auto-join: member of cluster ${this.store.identity().clusterId}`);
          return;
        }
        if (phase === 'removed' || phase === 'failed') return;
        if (phase === 'uninitialized') {
          const identity = this.store.identity();
          const req = makeJoinRequest(this.joinSecret, { cluster, name: this.name, nodeId: identity.nodeId, protocolVersion: PROTOCOL_VERSION });
          let problem = '';
          try {
            const reply = await this.bus.request(subject, encode(this.sender(), 'join.request', req), { timeoutMs: AUTO_JOIN.requestTimeoutMs });
            const decoded = decodeReply(reply.data);
            if (decoded.ok) {
              const admission = decoded.body as JoinAdmission;
              log.info({ cluster, leader: admission.leader, voter: admission.voter }, `auto-join: admitted by ${admission.leader}; waiting for its join offer`);
              delay = AUTO_JOIN.afterAdmissionMs;
            } else {
              problem = decoded.error.message;
              if (problem !== lastProblem) {
                this.reportRefusal('autojoin', { reason: 'auto-join', from: subject, localClusterId: null, remoteClusterId: cluster, message: problem });
              }
              delay = Math.min(AUTO_JOIN.maxDelayMs, delay * 2);
            }
          } catch (err) {
            if (this.stopping) return;
            if (!isUnreachable(err)) throw err;
            problem = `no leader of cluster ${cluster} answered on ${subject} yet`;
            if (Date.now() - lastLog >= AUTO_JOIN.logEveryMs) {
              lastLog = Date.now();
              log.info({ cluster }, `auto-join: ${problem}; still asking`);
            }
            delay = Math.min(AUTO_JOIN.maxDelayMs, delay * 2);
          }
          lastProblem = problem;
        }
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    } catch (err) {
      log.error({ err }, `auto-join stopped: ${(err as Error).message}`);
    } finally {
      this.announcing = false;
    }
  }

  // ---- health ----

  /** a member without a leader for longer than warnWhenLeaderlessFor warns, at that period */
  private startHealthWatch(): void {
    const warnAfter = this.opts.warnWhenLeaderlessForMs ?? DEFAULT_LEADERLESS_WARN_MS;
    let since: number | null = null;
    let lastWarn = 0;
    const log = this.logFor('health');
    this.healthTimer = setInterval(
      () => {
        if (this.phase !== 'member' || !this.member) {
          since = null;
          return;
        }
        const s = this.member.status();
        const now = Date.now();
        if (s.leader !== null) {
          if (since !== null && lastWarn > since) log.info({ leader: s.leader, leaderlessMs: now - since }, `leader ${s.leader} is back after ${now - since} ms without one`);
          since = null;
          return;
        }
        since ??= now;
        if (now - since >= warnAfter && now - lastWarn >= warnAfter) {
          lastWarn = now;
          const unreachable = s.members.filter((m) => !m.reachable).map((m) => m.name);
          log.warn(
            { leaderlessMs: now - since, term: s.term, unreachable },
            `no leader for ${((now - since) / 1000).toFixed(1)} s (term ${s.term}); unreachable members: ${unreachable.join(', ') || 'none'} — a majority of voters must be up and connected`,
          );
        }
      },
      Math.min(1000, Math.max(50, Math.floor(warnAfter / 4))),
    );
    this.healthTimer.unref();
  }

  /** the leader says this node was removed; believed only from a member of this node's own cluster */
  private async onRemovedNotice(envelope: Envelope): Promise<{ removed: boolean }> {
    const clusterId = this.store.identity().clusterId;
    if (this.phase === 'removed') return { removed: true };
    if (clusterId === null || envelope.clusterId !== clusterId || this.phase !== 'member') return { removed: false };
    const status = this.member?.raftStatus();
    if (!status) return { removed: false };
    // believed only from a member of our own configuration ...
    if (!status.membership.members.some((m) => m.nodeId === envelope.nodeId)) return { removed: false };
    // ... that does not contradict another leader still keeping us (a stale notice)
    if (status.leader !== null && status.leader !== envelope.nodeId) return { removed: false };
    await this.markRemoved(`told so by ${envelope.from}`);
    return { removed: true };
  }

  /**
   * initialMembers: while this node leads, add every name still pending in the replicated
   * configuration (the bootstrapping node's initialMembers, cleared name by name as each is added,
   * so a member removed later is not added back), as soon as each answers, retrying with backoff for
   * as long as it takes; progress is logged every ~10 s. Runs on every member, acts on the leader.
   */
  private async runInitialMembers(): Promise<void> {
    if (this.initialMembersRunning) return;
    this.initialMembersRunning = true;
    const log = this.logFor('initialMembers');
    const retryAt = new Map<string, number>();
    const delay = new Map<string, number>();
    const lastError = new Map<string, string>();
    let lastLog = Date.now();
    let announced = false;
    let waited = false;
    try {
      while (!this.stopping && this.phase === 'member') {
        const member = this.member;
        if (member && member.status().role === 'leader' && this.store.identity().clusterId !== null) {
          const membership = member.raftStatus().membership;
          const voters = new Set(membership.members.filter((m) => m.voter).map((m) => m.name));
          const wanted = (membership.pending ?? []).filter((n) => n !== this.name);
          const missing = wanted.filter((n) => !voters.has(n));
          if (missing.length === 0) {
            if (waited && !announced) log.info('all initial members are voters');
            announced = true;
          } else {
            announced = false;
            waited = true;
            if (Date.now() - lastLog >= MEMBERSHIP_TIMING.initialLogEveryMs) {
              lastLog = Date.now();
              log.info({ missing, lastErrors: Object.fromEntries(missing.map((n) => [n, lastError.get(n) ?? null])) }, `waiting for initial members: ${missing.join(', ')}`);
            }
            const next = missing.find((n) => (retryAt.get(n) ?? 0) <= Date.now());
            if (next) {
              try {
                await this.runChange({ op: 'add', target: next, maxAttempts: 1, deadlineMs: 60_000 });
                log.info({ name: next }, `initial member ${next} is a voter`);
                delay.delete(next);
              } catch (err) {
                const d = Math.min(MEMBERSHIP_TIMING.initialRetryMaxMs, (delay.get(next) ?? 250) * 2);
                delay.set(next, d);
                retryAt.set(next, Date.now() + d);
                lastError.set(next, (err as Error).message);
                log.debug({ name: next, err: (err as Error).message, retryInMs: d }, `initial member ${next} not added yet`);
              }
              continue;
            }
          }
        }
        // quick while names are missing, slow when there is nothing to do (a follower, or all added)
        await new Promise((r) => setTimeout(r, announced || !waited ? 1000 : 200).unref());
      }
    } finally {
      this.initialMembersRunning = false;
    }
  }
}

function deadlineFor(timeoutMs: number | undefined): number {
  // answer before the caller gives up: its timeout includes the forwarding hop
  return timeoutMs === undefined ? MEMBERSHIP_TIMING.defaultDeadlineMs : Math.max(1000, timeoutMs - 1500);
}

/** Ask whoever answers `<prefix>.node.<name>.admin` who they are; null when nobody does. */
interface WhoisAnswer {
  nodeId: string | null;
  clusterId: string | null;
  /** a blank node deciding whether to initialize from initFrom says where it stands */
  autoInit?: AutoInitState;
}

/** Who answers for `name` on this prefix (null: nobody does). An error the node replies with is thrown. */
async function whois(bus: Bus, prefix: string, name: string, sender: Sender): Promise<WhoisAnswer | null> {
  let body: unknown;
  try {
    body = await adminCall(bus, prefix, name, sender, 'whois', {}, 1000);
  } catch (err) {
    if (isUnreachable(err)) return null;
    throw err;
  }
  if (!body || typeof body !== 'object') return null;
  const b = body as Record<string, unknown>;
  return {
    nodeId: typeof b.nodeId === 'string' ? b.nodeId : null,
    clusterId: typeof b.clusterId === 'string' ? b.clusterId : null,
    autoInit: b.autoInit === 'probing' || b.autoInit === 'initializing' || b.autoInit === 'waiting' ? b.autoInit : undefined,
  };
}

export async function startController(opts: ControllerOptions): Promise<Controller> {
  if (!validNodeName(opts.name)) {
    throw conclaveError('CONFIG', `node name ${JSON.stringify(opts.name)} is invalid: it must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
  }
  if (opts.join?.cluster !== undefined && !uuidSchema.safeParse(opts.join.cluster).success) {
    throw conclaveError('CONFIG', `join.cluster ${JSON.stringify(opts.join.cluster)} is not a cluster id (a UUID as printed by \`conclave init\`)`);
  }
  if (opts.join?.maxVoters !== undefined && !(Number.isInteger(opts.join.maxVoters) && opts.join.maxVoters >= 1)) {
    throw conclaveError('CONFIG', `join.maxVoters must be a whole number ≥ 1, got ${opts.join.maxVoters}`);
  }
  checkRaftTiming({ ...DEFAULT_RAFT, ...opts.raft });
  const joinSecret = joinSecretOf(opts.join);
  if (opts.state !== undefined) validateReplicatedState(opts.state);
  const baseLogger = opts.logger ?? silentLogger();
  // 1. identity first, before any connection
  const store = await openStore({ dataDir: opts.dataDir, name: opts.name, logger: baseLogger.child({ node: opts.name }), mapSizeBytes: opts.mapSizeBytes });
  let initSource: InitSource | null = null;
  try {
    // a store keeps the kind of replicated state it was created with (KV or the host's)
    checkStoredStateKind(store, opts.state !== undefined, `data dir ${opts.dataDir}`);
    const id = store.identity();
    if (opts.join?.cluster && id.clusterId !== null && id.clusterId !== opts.join.cluster) {
      throw conclaveError(
        'JOIN_REFUSED',
        `join refused: ${opts.name} is configured to join cluster ${opts.join.cluster} but its store belongs to cluster ${id.clusterId}; remove join.cluster from its configuration, or wipe its data dir to make it a new node`,
      );
    }
    if (opts.initFrom && id.clusterId === null && !id.removed) {
      // validated completely before any connection and before anything is written
      initSource = await readInitSource(opts.initFrom);
      if (opts.state !== undefined) hostSnapshotFromPairs(initSource.pairs, `initFrom ${opts.initFrom}`);
    } else if (opts.initFrom) {
      baseLogger.info({ node: opts.name, nodeId: id.nodeId, clusterId: id.clusterId, initFrom: opts.initFrom }, 'initFrom ignored: this node is already initialized (a store is never imported twice)');
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  let bus: Bus;
  try {
    bus = await connect(opts, baseLogger);
  } catch (err) {
    await store.close();
    throw err;
  }
  const prefix = opts.prefix ?? 'conclave';
  const identity = store.identity();
  try {
    // 2. a name is answered by one node only
    const other = await whois(bus, prefix, opts.name, { name: opts.name, nodeId: identity.nodeId, clusterId: identity.clusterId });
    if (other && other.nodeId !== identity.nodeId) {
      throw conclaveError(
        'NAME_CONFLICT',
        `name ${opts.name} is already answered on prefix "${prefix}" by node ${other.nodeId}; this data dir is node ${identity.nodeId}. Stop the other process or pick another --name`,
      );
    }
  } catch (err) {
    await bus.close();
    await store.close();
    throw err;
  }
  // Never fork: a blank node configured with initFrom AND initialMembers does not initialize when
  // one of those members already is (or is becoming) a member of a cluster; it waits to be added.
  let effective = opts;
  let probe: InitProbe | null = null;
  if (initSource && (opts.initialMembers ?? []).length > 0) {
    const sender = { name: opts.name, nodeId: identity.nodeId, clusterId: identity.clusterId };
    try {
      probe = await probeBeforeInitFrom(bus, prefix, opts.name, opts.initialMembers!.filter((n) => n !== opts.name), sender);
    } catch (err) {
      await bus.close();
      await store.close();
      throw err;
    }
    if (probe.wait) {
      baseLogger.warn({ node: opts.name, nodeId: identity.nodeId, initFrom: opts.initFrom, because: probe.wait }, `initFrom not used: ${probe.wait}; ${opts.name} waits to be added instead of forking a second cluster`);
      initSource = null;
      effective = { ...opts, initFrom: undefined };
    }
  }
  const controller = new Controller(effective, store, bus, baseLogger, initSource, joinSecret);
  try {
    await controller.start();
  } catch (err) {
    probe?.close();
    await controller.stop();
    throw err;
  }
  // the controller answers for itself now (its whois says "initializing" while it bootstraps)
  probe?.close();
  return controller;
}

/** what a blank node with initFrom says while it decides whether to initialize */
type AutoInitState = 'probing' | 'initializing' | 'waiting';

interface InitProbe {
  /** why this node must not initialize (someone else is or will be the cluster), or null */
  wait: string | null;
  close(): void;
}

/** how long a node with initFrom + initialMembers listens before deciding, so peers started together see each other */
const INIT_PROBE_SETTLE_MS = 1500;

/**
 * Decide whether a blank node with initFrom and initialMembers may initialize. It first answers
 * `whois` itself (state "probing"), waits for peers started at the same moment to do the same, then
 * asks every initial member: one that is a member, or is initializing, means wait; among nodes still
 * probing the smallest name initializes and the others wait to be added. The decision is then
 * announced ("initializing" / "waiting") until the controller answers for itself.
 */
async function probeBeforeInitFrom(bus: Bus, prefix: string, name: string, others: string[], sender: Sender): Promise<InitProbe> {
  let state: AutoInitState = 'probing';
  const responder = new AdminServer(
    bus,
    `${prefix}.node.${name}.admin`,
    {
      whois: async () => ({ ...sender, autoInit: state }),
      status: async () => ({ name, nodeId: sender.nodeId, clusterId: null, phase: 'uninitialized', role: 'none', term: 0, leader: null, commitIndex: 0, appliedIndex: 0, members: [] }),
      'join.offer': async () => {
        throw conclaveError('BUSY', `${name} is starting (deciding whether to initialize from initFrom); retry shortly`);
      },
    },
    silentLogger(),
  );
  await responder.start();
  const close = () => void responder.stop();
  try {
    await new Promise((r) => setTimeout(r, INIT_PROBE_SETTLE_MS));
    // a node that answers with an error (busy, stopping) is not one we can count on
    const answerOf = (other: string) => whois(bus, prefix, other, sender).catch((err: unknown) => (err instanceof ConclaveError ? null : Promise.reject(err)));
    const answers = await Promise.all(others.map(async (other) => ({ other, who: await answerOf(other) })));
    let wait: string | null = null;
    for (const { other, who } of answers) {
      if (!who) continue;
      if (who.clusterId) wait ??= `initial member ${other} already belongs to cluster ${who.clusterId}`;
      else if (who.autoInit === 'initializing') wait ??= `initial member ${other} is initializing a cluster from its initFrom`;
      else if (who.autoInit === 'probing' && other < name) wait ??= `initial member ${other} is starting with initFrom too, and the smallest name initializes`;
    }
    state = wait ? 'waiting' : 'initializing';
    return { wait, close };
  } catch (err) {
    close();
    throw err;
  }
}


async function connect(opts: ControllerOptions, logger: Logger): Promise<Bus> {
  const transport = opts.transport ?? { bus: defaultInProcessBus() };
  // a handler that throws is a bug, but the input that made it throw may come from anyone: rate-limited
  const failures = new RateLimitedLog(logger);
  const onError = (err: unknown, subject: string) => failures.warn('handler-failed', { node: opts.name, err, subject }, 'message handler failed');
  if ('bus' in transport) return transport.bus.connect(opts.name, { onError });
  return connectNats({ name: `conclave-${opts.name}`, onError, onStatus: natsStatusLogger(logger.child({ node: opts.name, component: 'bus' })), ...transport.nats });
}

/** the NATS connection dropping (warn) and coming back (info), with the server and how long it was gone */
function natsStatusLogger(log: Logger): (s: NatsStatus) => void {
  let lostAt: number | null = null;
  return (s) => {
    const server = typeof s.data === 'string' ? s.data : undefined;
    if (s.type === 'disconnect') {
      lostAt = Date.now();
      log.warn({ server }, `lost the NATS connection to ${server ?? 'the server'}; reconnecting`);
    } else if (s.type === 'reconnect') {
      const downMs = lostAt === null ? undefined : Date.now() - lostAt;
      lostAt = null;
      log.info({ server, downMs }, `reconnected to NATS at ${server ?? 'the server'}${downMs === undefined ? '' : ` after ${downMs} ms`}`);
    }
  };
}

