// startController: one controller = store + bus + the bootstrap actor (and, while a member, the
// consensus runtime). Identity is loaded from the store BEFORE any connection to the bus.
// This file is the facade: it starts the parts (actors/controller/) and answers the public API.
import { type Actor, createActor, type InspectionEvent } from 'xstate';
import { bootstrapMachine, initRefusal, type Phase, phaseOf } from '../machines/bootstrap/machine.ts';
import { adminAuthenticator, GIVE_OPERATOR_KEYS, onInProcessBus } from '../actors/controller/adminAuth.ts';
import { adminHandlers } from '../actors/controller/adminApi.ts';
import { AutoJoin } from '../actors/controller/autoJoin.ts';
import type { Stage, StageHistogram } from '../actors/stageTimes.ts';
import type { SnapshotCounts } from '../actors/memberTypes.ts';
import { bootstrapInput, MemberLifecycle } from '../actors/controller/bootstrap.ts';
import { type ControllerContext, clockOf, untilLeaderChange, waitForWithin } from '../actors/controller/context.ts';
import { watchHealth } from '../actors/controller/health.ts';
import { runInitialMembers } from '../actors/controller/initialMembers.ts';
import { type InitProbe, probeBeforeInitFrom } from '../actors/controller/initProbe.ts';
import { JoinHandshake, offerJoin } from '../actors/controller/joinHandshake.ts';
import { MembershipOps } from '../actors/controller/membership.ts';
import { checkStore } from '../actors/controller/storeCheck.ts';
import { Removal } from '../actors/controller/removal.ts';
import { whois } from '../actors/controller/whois.ts';
import { appliedMembershipIncludes, type MemberRuntime, type MemberStatus } from '../actors/member.ts';
import { adminSubjects } from './wire/adminSubjects.ts';
import { AdminServer } from './admin.ts';
import { checkOperators, checkOptions, type ControllerOptions } from './config/controllerOptions.ts';
import { asErrorCode, conclaveError } from './errors.ts';
import { type ControllerEventName, ControllerEventHub, type ControllerListener, type Refusal } from './events.ts';
import { attachInspectionPublisher, type InspectionPublisher } from './inspect/publisher.ts';
import { type Logger, silentLogger } from './log/logger.ts';
import { RateLimitedLog } from './log/rateLimit.ts';
import type { InitSource } from './state/initSource.ts';
import { type NodeStore, openStore } from './store/index.ts';
import { connect } from './transport/connect.ts';
import type { Bus, BusState } from './transport/index.ts';
import type { AddResult, ClusterList, RemoveResult, StatusReply, TransferResult } from './wire/adminProtocol.ts';
import type { Sender } from './wire/codec.ts';

export type { ControllerOptions, TransportOption } from './config/controllerOptions.ts';
export { defaultInProcessBus } from './transport/connect.ts';
export type { AddResult, ClusterList } from './wire/adminProtocol.ts';

export interface ControllerStatus extends MemberStatus {
  name: string;
  nodeId: string;
  clusterId: string | null;
  phase: Phase;
  /** this node's bus connection: transport, connected now, server, reconnects so far */
  bus: BusState;
}

/** how long `init` waits for the new one-voter cluster to elect itself (it campaigns at its first tick) */
const INIT_LEADS_WITHIN_MS = 30_000;
/** how long start() and init() wait for the bootstrap chart to leave its transient states */
const SETTLE_WITHIN_MS = 60_000;

const NO_MEMBER_STATUS: MemberStatus = { role: 'none', term: 0, leader: null, commitIndex: 0, appliedIndex: 0, members: [] };

export class Controller {
  readonly name: string;
  readonly prefix: string;
  readonly actor: Actor<typeof bootstrapMachine>;
  /** refusals reported at this end, by component and reason (their log lines are rate-limited) */
  readonly refusals = new Map<string, number>();
  private readonly log: Logger;
  private readonly ctx: ControllerContext;
  private readonly lifecycle: MemberLifecycle;
  private readonly membership: MembershipOps;
  private readonly autoJoin: AutoJoin;
  private readonly admin: AdminServer;
  private readonly events: ControllerEventHub;
  private readonly inspectionListeners = new Set<(event: InspectionEvent) => void>();
  private readonly refusalListeners = new Set<(refusal: Refusal) => void>();
  private publisher: InspectionPublisher | null = null;
  private stopHealth: (() => void) | null = null;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly opts: ControllerOptions,
    readonly store: NodeStore,
    readonly bus: Bus,
    baseLogger: Logger,
    initSource: InitSource | null = null,
    joinSecret: Uint8Array | null = null,
  ) {
    this.name = opts.name;
    this.prefix = opts.prefix ?? 'conclave';
    this.operatorsInForce = opts.operators;
    const identity = store.identity();
    if (opts.inspect) this.inspectionListeners.add(opts.inspect);
    // every line carries node, node id, cluster id and phase; the last two change, so they are
    // added per line rather than bound once
    this.log = baseLogger.child(
      { node: this.name, nodeId: identity.nodeId },
      { formatters: { log: (line) => ({ ...line, clusterId: this.store.identity().clusterId, phase: this.currentPhase() }) } },
    );
    this.events = new ControllerEventHub(this.logFor('events'));
    this.ctx = this.context();
    this.warnWithoutOperators();
    const removal = new Removal(this.ctx);
    this.membership = new MembershipOps(this.ctx, { offerJoin: (target) => offerJoin(this.ctx, target, joinSecret), sendRemovedNotice: (name) => removal.send(name) });
    this.autoJoin = new AutoJoin(this.ctx, this.membership, joinSecret);
    this.lifecycle = new MemberLifecycle(
      this.ctx,
      {
        markRemoved: (why) => removal.markRemoved(why),
        onNonMember: (name, nodeId) => removal.onNonMember(name, nodeId),
        whileMember: () => runInitialMembers(this.ctx, this.membership),
      },
      initSource,
    );
    this.actor = createActor(bootstrapMachine.provide({ actors: this.lifecycle.implementations() }), {
      id: `bootstrap:${this.name}`,
      input: bootstrapInput(this.name, identity, {
        initFrom: opts.initFrom ?? null,
        joinTimeoutMs: opts.joinTimeoutMs,
        legacyMember: identity.clusterId === null && identity.removed !== true && store.hasRaftState(),
        awaitingMembership: identity.clusterId !== null && identity.removed !== true && !appliedMembershipIncludes(store, identity.nodeId),
      }),
      inspect: this.ctx.inspectionSink,
      clock: this.ctx.clock,
    });
    let lastPhase: Phase | null = null;
    this.actor.subscribe((snapshot) => {
      const phase = phaseOf(snapshot.value);
      if (phase === lastPhase) return;
      lastPhase = phase;
      const error = snapshot.context.error;
      this.logFor('bootstrap').info(error ? { error } : {}, `phase ${phase}`);
      this.events.emit('phaseChanged', { phase });
    });
    const parts = { status: () => this.status(), init: () => this.init(), list: () => this.listNow(), membership: this.membership, join: new JoinHandshake(this.ctx, joinSecret), removal };
    const subjects = adminSubjects(this.prefix, this.name);
    const auth = adminAuthenticator(this.ctx, subjects.admin);
    this.admin = new AdminServer(this.bus, subjects.admin, { ...adminHandlers(this.ctx, parts), 'operator.session': auth.openSession }, this.logFor('admin'), subjects.read, auth.authenticate);
  }

  /** what the parts in actors/controller/ share of this controller */
  private context(): ControllerContext {
    const refusalLog = new RateLimitedLog(this.log);
    return {
      name: this.name,
      prefix: this.prefix,
      store: this.store,
      bus: this.bus,
      opts: this.opts,
      events: this.events,
      clock: clockOf(this.opts),
      random: this.opts.random ?? Math.random,
      log: this.log,
      refusalLog,
      inspectionSink: (event) => {
        for (const listener of this.inspectionListeners) listener(event);
      },
      actor: () => this.actor,
      phase: () => this.phase,
      stopping: () => this.stopping !== null,
      member: () => this.lifecycle.member,
      memberRuntime: () => this.memberRuntime(),
      requireLeader: () => {
        const member = this.memberRuntime();
        if (member.status().role !== 'leader') {
          const leader = member.status().leader;
          throw conclaveError('NOT_LEADER', `${this.name} is not the leader${leader ? ` (the leader is ${leader})` : ''}; send the request to the leader or through \`--via\` any member`, { leader });
        }
        return member;
      },
      sender: () => this.sender(),
      logFor: (component) => this.logFor(component),
      operators: () => this.operatorsInForce,
      reportRefusal: (component, refusal) => {
        const key = `${component}:${refusal.reason}`;
        const count = (this.refusals.get(key) ?? 0) + 1;
        this.refusals.set(key, count);
        // keyed by what was refused: a sender that changes its name gets no more lines than a few per interval
        refusalLog.warn(key, { component, refusal, refused: count }, refusal.message, refusal.from);
        for (const listener of this.refusalListeners) listener(refusal);
      },
    };
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

  /**
   * What this node refused so far, by where and why: peer messages (`peer`, reset when the member
   * runtime is rebuilt), admin requests (`admin`) and the join rule's refusals (`join`, by component).
   * The `/metrics` endpoint exports them; `status` and the inspector show them too.
   */
  refusedCounts(): Array<{ source: string; reason: string; count: number }> {
    const out: Array<{ source: string; reason: string; count: number }> = [];
    for (const [reason, count] of this.lifecycle.member?.dropped ?? []) out.push({ source: 'peer', reason, count });
    for (const [reason, count] of this.admin.dropped) out.push({ source: 'admin', reason, count });
    for (const [key, count] of this.refusals) out.push({ source: 'join', reason: key, count });
    return out;
  }

  /**
   * Where a write's time goes on this node (actors/stageTimes.ts): a histogram per stage of the write
   * path, since the member runtime started (reset when it is rebuilt), or null while there is none.
   * The `/metrics` endpoint exports it (conclave_stage_seconds).
   */
  stageTimes(): Record<Stage, StageHistogram> | null {
    return this.lifecycle.member?.stageTimes.histograms() ?? null;
  }

  /**
   * Counts since the member runtime started (reset when it is rebuilt), or null while there is none:
   * proposals by outcome (applied, refused before the log, failed after it) and snapshots (taken,
   * sent and received with their bytes and seconds, abandoned). The `/metrics` endpoint exports them.
   */
  memberCounts(): { proposals: { applied: number; refused: number; failed: number }; snapshots: SnapshotCounts } | null {
    const member = this.lifecycle.member;
    return member ? { proposals: { ...member.stageTimes.proposals }, snapshots: member.snapshotCounts() } : null;
  }

  /** a child logger with the identity fields every line carries */
  logFor(component: string): Logger {
    return this.log.child({ component });
  }

  private currentPhase(): Phase | 'starting' {
    // the logger may be used before the actor exists (constructor) or after it stopped
    return this.actor ? phaseOf(this.actor.getSnapshot().value) : 'starting';
  }

  /** `version`: the committed cluster version while this node is a member (its join offers state it) */
  sender(): Sender {
    const id = this.store.identity();
    const version = this.lifecycle?.member?.clusterVersion();
    return { name: this.name, nodeId: id.nodeId, clusterId: id.clusterId, generation: id.generation, ...(version === undefined ? {} : { version }) };
  }

  get phase(): Phase {
    return phaseOf(this.actor.getSnapshot().value);
  }

  async start(): Promise<void> {
    await this.admin.start();
    this.autoJoin.listen();
    // publishes on <prefix>.inspect.<name> only while an inspector watches
    this.publisher = attachInspectionPublisher(this, { logger: this.logFor('inspect') });
    this.actor.start();
    // Settle out of the transient states so callers see a stable phase.
    const settled = await waitForWithin(this.ctx.clock, this.actor, (s) => s.value !== 'loading' && s.value !== 'bootstrapping' && s.value !== 'contacted', SETTLE_WITHIN_MS);
    if (settled.value === 'failed') {
      const error = settled.context.error ?? { code: 'FATAL', message: 'bootstrap failed' };
      throw conclaveError(asErrorCode(error.code), error.message);
    }
    if (this.opts.join?.cluster) this.autoJoin.announceUntilAdmitted(this.opts.join.cluster);
    this.stopHealth = watchHealth(this.ctx);
  }

  /** the operator keys requests are checked against now (setOperators) */
  private operatorsInForce: ControllerOptions['operators'];

  /**
   * Replace this node's operator keys while it runs (to add or revoke one without a restart; each member
   * checks its own list: `conclave run` rereads its config file on SIGHUP). Unusable keys: CONFIG, and the old stay.
   */
  setOperators(operators: ControllerOptions['operators']): void {
    checkOperators(operators);
    this.operatorsInForce = operators === undefined ? undefined : structuredClone(operators);
    this.logFor('admin').info({ operatorKeys: operators?.keys.length ?? 0, readKeys: operators?.readKeys?.length ?? 0, reads: operators?.reads ?? 'open' }, 'operator keys replaced');
    this.warnWithoutOperators();
  }

  /** over NATS a node without operator keys refuses every client change: say so when that is the case, and what to do */
  private warnWithoutOperators(): void {
    if ((this.operatorsInForce?.keys.length ?? 0) > 0 || onInProcessBus(this.ctx)) return;
    this.logFor('admin').warn(`no operator keys: this node takes no change from a client over NATS (init, kv put, cluster add, …); ${GIVE_OPERATOR_KEYS}`);
  }

  status(): ControllerStatus & StatusReply {
    return {
      name: this.name,
      nodeId: this.store.identity().nodeId,
      clusterId: this.actor.getSnapshot().context.clusterId,
      phase: this.phase,
      ...(this.lifecycle.member ? this.lifecycle.member.status() : NO_MEMBER_STATUS),
      bus: this.bus.state(),
    };
  }

  /** Explicit initialization: bootstrap a one-member cluster. Returns the new cluster id. */
  async init(): Promise<string> {
    const refusal = initRefusal(this.actor.getSnapshot().context, this.phase);
    if (refusal) throw conclaveError(asErrorCode(refusal.code), refusal.message);
    this.actor.send({ type: 'INIT' });
    const done = await waitForWithin(this.ctx.clock, this.actor, (s) => s.value === 'member' || s.value === 'uninitialized' || s.value === 'failed', SETTLE_WITHIN_MS);
    if (done.value !== 'member') {
      const error = done.context.error ?? { code: 'FATAL', message: 'initialization failed' };
      throw conclaveError(asErrorCode(error.code), error.message);
    }
    // the only voter of a fresh cluster elects itself at once: wait until it leads and has committed an entry of its term
    const member = this.memberRuntime();
    if (!(await untilLeaderChange(this.ctx, () => member.status().leader === this.name, INIT_LEADS_WITHIN_MS))) {
      throw conclaveError('NO_LEADER', `${this.name} initialized its cluster but did not become its leader within ${INIT_LEADS_WITHIN_MS} ms; check its log, then retry the write`);
    }
    await member.confirmLeadership();
    return done.context.clusterId!;
  }

  /** Wait until the member runtime reports a leader (or time out). */
  async waitForLeader(timeoutMs = 10_000): Promise<string> {
    const leader = () => this.lifecycle.member?.status().leader ?? null;
    if (await untilLeaderChange(this.ctx, () => leader() !== null, timeoutMs)) return leader()!;
    throw conclaveError('NO_LEADER', `${this.name}: no leader after ${timeoutMs} ms`);
  }

  memberRuntime(): MemberRuntime {
    const member = this.lifecycle.member;
    if (!member) {
      throw conclaveError('NOT_A_MEMBER', `${this.name} is ${this.phase}, not a member of a cluster: run \`conclave init --node ${this.name}\` or add it to a cluster`);
    }
    return member;
  }

  /** Propose a command to the replicated state from any member (forwarded to the leader); resolves with its result once applied. */
  async propose(command: unknown): Promise<unknown> {
    return this.memberRuntime().handleAdmin('propose', { command });
  }

  /** Read the replicated state: linearizable (read index on the leader) unless `stale`, which reads this node's copy. */
  async read(query: unknown, opts: { stale?: boolean } = {}): Promise<unknown> {
    return this.memberRuntime().handleAdmin('read', { query, stale: opts.stale === true });
  }

  // ---- membership: the library API (`.cluster`); this node must lead ----

  /** `controller.cluster.add/remove/list/transferLeadership`: run on this node, which must lead */
  readonly cluster = {
    add: (name: string, opts: { timeoutMs?: number } = {}) => this.add(name, opts),
    remove: (name: string, opts: { timeoutMs?: number } = {}) => this.remove(name, opts),
    list: () => this.list(),
    transferLeadership: (name?: string) => this.transferLeadership(name),
  };

  private listNow(): ClusterList {
    return this.membership.list(this.status());
  }

  async list(): Promise<ClusterList> {
    return this.listNow();
  }

  add(name: string, opts: { timeoutMs?: number } = {}): Promise<AddResult> {
    return this.membership.add(name, opts);
  }

  remove(name: string, opts: { timeoutMs?: number } = {}): Promise<RemoveResult> {
    return this.membership.remove(name, opts);
  }

  transferLeadership(name?: string): Promise<TransferResult> {
    return this.membership.transferLeadership(name);
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.admin.stop();
      this.autoJoin.stop();
      this.stopHealth?.();
      this.stopHealth = null;
      // stopping the actor stops the member runtime's invocation (and forgets it): keep a handle so
      // the bus and store close only after it has handed leadership over and flushed
      const member = this.lifecycle.member;
      this.actor.stop();
      await this.lifecycle.stop(member);
      this.publisher?.stop();
      await this.bus.close();
      await this.store.close();
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}

export async function startController(opts: ControllerOptions): Promise<Controller> {
  const joinSecret = checkOptions(opts);
  const baseLogger = opts.logger ?? silentLogger();
  const prefix = opts.prefix ?? 'conclave';
  // what is open so far, closed in reverse on any failure: the one cleanup path
  let store: NodeStore | null = null;
  let bus: Bus | null = null;
  let probe: InitProbe | null = null;
  let controller: Controller | null = null;
  try {
    // 1. identity first, before any connection
    store = await openStore({ dataDir: opts.dataDir, name: opts.name, logger: baseLogger.child({ node: opts.name }), mapSizeBytes: opts.mapSizeBytes, checked: opts.checkedStore });
    let initSource = await checkStore(opts, store, baseLogger);
    bus = await connect(opts.name, opts.transport, baseLogger);
    const identity = store.identity();
    const sender = { name: opts.name, nodeId: identity.nodeId, clusterId: identity.clusterId };
    // 2. a name is answered by one node only
    const other = await whois(bus, prefix, opts.name, sender);
    if (other && other.nodeId !== identity.nodeId) {
      throw conclaveError(
        'NAME_CONFLICT',
        `name ${opts.name} is already answered on prefix "${prefix}" by node ${other.nodeId}; this data dir is node ${identity.nodeId}. Stop the other process or pick another --name`,
      );
    }
    // 3. never fork: with initFrom AND initialMembers, initialize only when no initial member is (becoming) a member
    let effective = opts;
    if (initSource && (opts.initialMembers ?? []).length > 0) {
      probe = await probeBeforeInitFrom(bus, prefix, opts.name, opts.initialMembers!.filter((n) => n !== opts.name), sender, clockOf(opts));
      if (probe.wait) {
        baseLogger.warn({ node: opts.name, nodeId: identity.nodeId, initFrom: opts.initFrom, because: probe.wait }, `initFrom not used: ${probe.wait}; ${opts.name} waits to be added instead of forking a second cluster`);
        initSource = null;
        effective = { ...opts, initFrom: undefined };
      }
    }
    controller = new Controller(effective, store, bus, baseLogger, initSource, joinSecret);
    await controller.start();
    // the controller answers for itself now (its whois says "initializing" while it bootstraps)
    probe?.close();
    return controller;
  } catch (err) {
    probe?.close();
    // a controller closes its bus and store itself
    if (controller) await controller.stop();
    else {
      await bus?.close();
      await store?.close();
    }
    throw err;
  }
}
