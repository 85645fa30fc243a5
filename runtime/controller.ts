// startController: one controller = store + bus + the bootstrap actor (and, while a member, the
// consensus runtime). Identity is loaded from the store BEFORE any connection to the bus.
import { v7 as uuidv7 } from 'uuid';
import { type Actor, createActor, fromCallback, fromPromise, type InspectionEvent, waitFor } from 'xstate';
import { validNodeName } from '../machines/identity/index.ts';
import {
  type BootstrapCluster,
  type BootstrapDone,
  bootstrapMachine,
  type ContactRecord,
  initRefusal,
  type Phase,
  phaseOf,
} from '../machines/bootstrap/machine.ts';
import type { HardState, Membership, SnapshotMeta } from '../machines/raft/types.ts';
import { DEFAULT_RAFT, type RaftTiming } from './config/config.ts';
import { ConclaveError, codeOf } from './errors.ts';
import { type Logger, silentLogger } from './log/logger.ts';
import { AdminServer, type AdminHandlers } from './admin.ts';
import { attachInspectionPublisher, type InspectionPublisher } from './inspect/publisher.ts';
import type { Refusal } from './inspect/protocol.ts';
import { type InitSource, readInitSource } from './state/initSource.ts';
import { type NodeStore, openStore } from './store/index.ts';
import { connectNats, createInProcessBus, type Bus, type InProcessBus, type NatsTransportOptions } from './transport/index.ts';
import { NoRespondersError, RequestTimeoutError } from './transport/types.ts';
import { decodeReply, encode } from './wire/codec.ts';
import { createMemberRuntime, type MemberRuntime, type MemberStatus } from '../actors/member.ts';

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
  /** names to add once bootstrapped (membership issue) */
  initialMembers?: string[];
  raft?: Partial<RaftTiming>;
  logger?: Logger;
  /** observe every XState inspection event of this controller's actors */
  inspect?: (event: InspectionEvent) => void;
  /** LMDB map size; tests use a small one to exercise disk-full */
  mapSizeBytes?: number;
}

export interface ControllerStatus extends MemberStatus {
  name: string;
  nodeId: string;
  clusterId: string | null;
  phase: Phase;
}

let processBus: InProcessBus | null = null;
/** The embedded default transport: one in-process bus shared by every controller of this process. */
export function defaultInProcessBus(): InProcessBus {
  processBus ??= createInProcessBus();
  return processBus;
}

const NO_MEMBER_STATUS: MemberStatus = {
  role: 'none',
  term: 0,
  leader: null,
  commitIndex: 0,
  appliedIndex: 0,
  members: [],
};

export class Controller {
  readonly name: string;
  readonly prefix: string;
  readonly actor: Actor<typeof bootstrapMachine>;
  private member: MemberRuntime | null = null;
  private stopping: Promise<void> | null = null;
  private readonly admin: AdminServer;
  private readonly inspectionListeners = new Set<(event: InspectionEvent) => void>();
  private readonly refusalListeners = new Set<(refusal: Refusal) => void>();
  private publisher: InspectionPublisher | null = null;
  /** every XState inspection event of this controller's actors (bootstrap, raft role, …) */
  private readonly inspectionSink = (event: InspectionEvent): void => {
    for (const listener of this.inspectionListeners) listener(event);
  };
  private readonly log: Logger;

  constructor(
    opts: ControllerOptions,
    readonly store: NodeStore,
    readonly bus: Bus,
    baseLogger: Logger,
    private initSource: InitSource | null = null,
  ) {
    this.name = opts.name;
    this.prefix = opts.prefix ?? 'conclave';
    const identity = store.identity();
    if (opts.inspect) this.inspectionListeners.add(opts.inspect);
    // every line carries node, node id, cluster id and phase; the last two change, so they are
    // added per line rather than bound once
    this.log = baseLogger.child(
      { node: this.name, nodeId: identity.nodeId },
      { formatters: { log: (line) => ({ ...line, clusterId: this.store.identity().clusterId, phase: this.currentPhase() }) } },
    );
    const machine = bootstrapMachine.provide({
      actors: {
        bootstrapCluster: fromPromise<BootstrapDone, BootstrapCluster>(({ input }) => this.bootstrapCluster(input)),
        recordContact: fromPromise<void, ContactRecord>(({ input }) => this.store.updateIdentity({ contactedBy: input })),
        memberRuntime: fromCallback(({ sendBack }) => {
          const runtime = createMemberRuntime({
            name: this.name,
            prefix: this.prefix,
            store: this.store,
            bus: this.bus,
            logger: this.logFor('member'),
            timing: { ...DEFAULT_RAFT, ...opts.raft },
            inspect: this.inspectionSink,
            onFatal: (error) => sendBack({ type: 'FAIL', error: { code: codeOf(error) ?? 'FATAL', message: (error as Error).message } }),
            onRemoved: () => sendBack({ type: 'REMOVED' }),
            onRefused: (refusal) => {
              this.logFor('member').warn({ refusal }, refusal.message);
              for (const listener of this.refusalListeners) listener(refusal);
            },
          });
          this.member = runtime;
          runtime.start().catch((error: unknown) => {
            sendBack({ type: 'FAIL', error: { code: codeOf(error) ?? 'FATAL', message: (error as Error).message } });
          });
          return () => {
            this.member = null;
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

  /** Observe the join rule's refusals (foreign peer messages, refused joins). */
  onRefusal(listener: (refusal: Refusal) => void): () => void {
    this.refusalListeners.add(listener);
    return () => this.refusalListeners.delete(listener);
  }

  /** a child logger with the identity fields every line carries */
  logFor(component: string): Logger {
    return this.log.child({ component });
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
    // publishes on <prefix>.inspect.<name> only while an inspector watches
    this.publisher = attachInspectionPublisher(this, { logger: this.logFor('inspect') });
    this.actor.start();
    // Settle out of the transient states so callers see a stable phase.
    const settled = await waitFor(this.actor, (s) => s.value !== 'loading' && s.value !== 'bootstrapping' && s.value !== 'contacted', {
      timeout: 60_000,
    });
    if (settled.value === 'failed') {
      const error = settled.context.error ?? { code: 'FATAL', message: 'bootstrap failed' };
      throw new ConclaveError(error.code, error.message);
    }
  }

  status(): ControllerStatus {
    const id = this.store.identity();
    return {
      name: this.name,
      nodeId: id.nodeId,
      clusterId: this.actor.getSnapshot().context.clusterId,
      phase: this.phase,
      ...(this.member ? this.member.status() : NO_MEMBER_STATUS),
    };
  }

  /** Explicit initialization: bootstrap a one-member cluster. Returns the new cluster id. */
  async init(): Promise<string> {
    const snapshot = this.actor.getSnapshot();
    const refusal = initRefusal(snapshot.context, this.phase);
    if (refusal) throw new ConclaveError(refusal.code, refusal.message);
    this.actor.send({ type: 'INIT' });
    const done = await waitFor(this.actor, (s) => s.value === 'member' || s.value === 'uninitialized' || s.value === 'failed', {
      timeout: 60_000,
    });
    if (done.value !== 'member') {
      const error = done.context.error ?? { code: 'FATAL', message: 'initialization failed' };
      throw new ConclaveError(error.code, error.message);
    }
    return done.context.clusterId!;
  }

  /** Wait until the member runtime reports a leader (or time out). */
  async waitForLeader(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = this.member?.status().leader;
      if (leader) return leader;
      if (Date.now() > deadline) throw new ConclaveError('NO_LEADER', `${this.name}: no leader after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  memberRuntime(): MemberRuntime {
    if (!this.member) {
      throw new ConclaveError('NOT_A_MEMBER', `${this.name} is ${this.phase}, not a member of a cluster: run \`conclave init --node ${this.name}\` or add it to a cluster`);
    }
    return this.member;
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.admin.stop();
      this.actor.stop();
      await this.member?.stop();
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
      throw new ConclaveError('ALREADY_INITIALIZED', `init refused: ${this.name} is already a member of cluster ${identity.clusterId}`);
    }
    const clusterId = uuidv7();
    const membership: Membership = { members: [{ nodeId: identity.nodeId, name: this.name, voter: true }] };
    // The bootstrap state is a snapshot at index 1, term 1: the imported data (if any) and a
    // one-voter configuration. The node then elects itself; later members catch up from it.
    const meta: SnapshotMeta = { index: 1, term: 1, membership };
    const hardState: HardState = { term: 1, vote: null, commit: 1 };
    await this.store.initializeCluster({
      clusterId,
      meta,
      pairs: source?.pairs ?? [],
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
      whois: async () => this.sender(),
      status: async () => this.status(),
      init: async () => ({ clusterId: await this.init() }),
      propose: async (body) => this.memberRuntime().handleAdmin('propose', body),
      read: async (body) => this.memberRuntime().handleAdmin('read', body),
    };
  }
}

/** Ask whoever answers `<prefix>.node.<name>.admin` who they are; null when nobody does. */
async function whoAnswers(bus: Bus, prefix: string, name: string, sender: { name: string; nodeId: string; clusterId: string | null }): Promise<{ nodeId: string } | null> {
  try {
    const reply = await bus.request(`${prefix}.node.${name}.admin`, encode(sender, 'whois', {}), { timeoutMs: 1000 });
    const decoded = decodeReply(reply.data);
    if (decoded.ok && decoded.body && typeof decoded.body === 'object') return decoded.body as { nodeId: string };
    return null;
  } catch (err) {
    if (err instanceof NoRespondersError || err instanceof RequestTimeoutError) return null;
    throw err;
  }
}

export async function startController(opts: ControllerOptions): Promise<Controller> {
  if (!validNodeName(opts.name)) {
    throw new ConclaveError('CONFIG', `node name ${JSON.stringify(opts.name)} is invalid: it must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
  }
  const baseLogger = opts.logger ?? silentLogger();
  // 1. identity first, before any connection
  const store = await openStore({ dataDir: opts.dataDir, name: opts.name, logger: baseLogger, mapSizeBytes: opts.mapSizeBytes });
  let initSource: InitSource | null = null;
  try {
    const id = store.identity();
    if (opts.initFrom && id.clusterId === null && !id.removed) {
      // validated completely before any connection and before anything is written
      initSource = await readInitSource(opts.initFrom);
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
    const other = await whoAnswers(bus, prefix, opts.name, { name: opts.name, nodeId: identity.nodeId, clusterId: identity.clusterId });
    if (other && other.nodeId !== identity.nodeId) {
      throw new ConclaveError(
        'NAME_CONFLICT',
        `name ${opts.name} is already answered on prefix "${prefix}" by node ${other.nodeId}; this data dir is node ${identity.nodeId}. Stop the other process or pick another --name`,
      );
    }
  } catch (err) {
    await bus.close();
    await store.close();
    throw err;
  }
  const controller = new Controller(opts, store, bus, baseLogger, initSource);
  try {
    await controller.start();
  } catch (err) {
    await controller.stop();
    throw err;
  }
  return controller;
}

async function connect(opts: ControllerOptions, logger: Logger): Promise<Bus> {
  const transport = opts.transport ?? { bus: defaultInProcessBus() };
  const onError = (err: unknown, subject: string) => logger.error({ node: opts.name, err, subject }, 'message handler failed');
  if ('bus' in transport) return transport.bus.connect(opts.name, { onError });
  return connectNats({ name: `conclave-${opts.name}`, onError, ...transport.nats });
}

