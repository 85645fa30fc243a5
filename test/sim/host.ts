// A simulated node: its disk (DurableStore, survives crashes) and, while its process runs, the real
// member (actors/member.ts, as `conclave run` runs it) over the simulator's ports — SimStore, SimBus,
// SimClock, the seeded randomness — and the admin server `conclave run` answers requests with (the
// real runtime/admin.ts: forwarded writes and reads reach the member through it; `whois`), and the
// controller's parts (hostController.ts): the bootstrap chart, the join handshake, which answers
// `join.offer`, auto-join, which answers on `<prefix>.discover` and asks there, and the membership
// operations. A crash stops the process at once: its clock, bus and store do nothing more, whatever
// its code was doing.
import { createMemberRuntime, type MemberRuntime } from '../../actors/member.ts';
import { AdminServer } from '../../runtime/admin.ts';
import { conclaveError } from '../../runtime/errors.ts';
import { planRecovery, type RecoveryFaults } from '../../runtime/store/recoveryPlan.ts';
import type { Random } from '../../actors/ports.ts';
import type { RaftCore, RaftCoreOptions } from '../../machines/raft/core.ts';
import type { Entry } from '../../machines/raft/types.ts';
import type { RaftTiming } from '../../runtime/config/config.ts';
import type { Refusal } from '../../runtime/events.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { type Scheduler, SimClock } from './clock.ts';
import { SimBus, type SimNetwork } from './bus.ts';
import { type DurableStore, SimStore, termAt, type WriteHooks } from './store.ts';
import type { MemberRuntimeOptions } from '../../actors/memberTypes.ts';
import type { JoinAccepted } from '../../machines/bootstrap/machine.ts';
import type { OfferReply } from '../../machines/membership/machine.ts';
import { SimController } from './hostController.ts';
import type { MembershipOps } from '../../actors/controller/membership.ts';
import type { JoinRequestOutcome } from '../../actors/controller/autoJoin.ts';
import type { ControllerTestFaults } from '../../actors/controller/context.ts';

/** what a host needs of the simulation */
export interface HostWorld {
  readonly prefix: string;
  readonly timing: RaftTiming;
  readonly maxPayload: number;
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly random: Random;
  readonly testFaults: MemberRuntimeOptions['testFaults'];
  /** the raft core for this host (the simulator observes it) */
  makeCore(host: SimHost, options: RaftCoreOptions): RaftCore;
  writeHooks(host: SimHost): WriteHooks;
  /** the member stopped itself (a failed write, a stale generation, an assertion) */
  fatal(host: SimHost, err: unknown): void;
  removed(host: SimHost): void;
  refused(host: SimHost, refusal: Refusal): void;
  /** the controller's planted bugs (actors/controller/context.ts ControllerTestFaults), all off unless a run plants one */
  readonly controllerFaults: ControllerTestFaults;
  /** this blank node accepted an offer (its bootstrap chart entered joining): start its member in joining mode */
  accepted(host: SimHost, join: JoinAccepted): void;
}

const logger = silentLogger();

export class SimHost {
  member: MemberRuntime | null = null;
  core: RaftCore | null = null;
  /** the process runs (a blank node that accepted no offer runs without a member) */
  running = false;
  /** stopped for good (a stale member of a recovered cluster, or removed): never restarted */
  halted = false;
  /** writes fail while set */
  diskFull = false;
  /** volatile: the cluster whose offer this blank node accepted; a restart forgets it */
  joining: { clusterId: string; generation: number | undefined } | null = null;
  /** configured (it survives restarts): auto-join asks this cluster to add the node while it is blank (`join.cluster`) */
  autoJoinCluster: string | null = null;
  private clock: SimClock | null = null;
  private bus: SimBus | null = null;
  private store: SimStore | null = null;
  private controller: SimController | null = null;

  constructor(
    private readonly world: HostWorld,
    readonly id: string,
    readonly name: string,
    readonly disk: DurableStore,
  ) {}

  get clusterId(): string | null {
    return this.disk.identity.clusterId;
  }

  get generation(): number {
    return this.disk.identity.generation;
  }

  /** the member runs */
  get alive(): boolean {
    return this.core !== null;
  }

  /** the process starts (its admin server answers at once): with a member if it has a cluster or accepted an offer, else it waits uninitialized */
  start(): void {
    if (!this.running) this.startProcess();
    if (this.member !== null || (this.clusterId === null && this.joining === null)) return;
    const w = this.world;
    const clock = this.clock!;
    const bus = this.bus!;
    const store = this.store!;
    const controller = this.controller!;
    const member = createMemberRuntime({
      name: this.name,
      prefix: w.prefix,
      store,
      bus,
      logger,
      timing: w.timing,
      clock,
      random: w.random,
      testFaults: w.testFaults,
      ...(this.clusterId === null && this.joining !== null ? { joining: { clusterId: this.joining.clusterId, generation: this.joining.generation } } : {}),
      makeCore: (options) => {
        this.core = w.makeCore(this, options);
        return this.core;
      },
      onFatal: (err) => {
        if (this.member === member) w.fatal(this, err);
      },
      // as the controller does (actors/controller/bootstrap.ts): recorded, then the bootstrap chart's `removed` phase halts the host
      onRemoved: () => {
        if (this.member === member) void controller.removal.markRemoved('the committed configuration no longer lists it');
      },
      onNonMember: (name, nodeId) => {
        if (this.member === member) controller.removal.onNonMember(name, nodeId);
      },
      events: controller.ctx.events.memberEvents(),
      onRefused: (refusal) => {
        if (this.member === member) w.refused(this, refusal);
      },
      onAdopted: (clusterId) => controller.adopted(clusterId),
      onJoined: (clusterId) => controller.joined(clusterId),
    });
    this.member = member;
    member.start().catch((err: unknown) => {
      if (this.member === member) w.fatal(this, err);
    });
  }

  private startProcess(): void {
    const w = this.world;
    this.running = true;
    this.clock = new SimClock(w.scheduler);
    this.bus = new SimBus(w.network, this.clock, this.id, w.maxPayload);
    this.store = new SimStore(this.disk, w.writeHooks(this));
    const controller = new SimController(this, w, { clock: this.clock, bus: this.bus, store: this.store });
    this.controller = controller;
    const member = () => {
      if (this.member === null) throw conclaveError('NOT_A_MEMBER', `${this.name} is not a member of a cluster yet`);
      return this.member;
    };
    // the controller's own handlers (membership operations, removal notices, the join offer, client writes and reads)
    const admin = new AdminServer(
      this.bus,
      `${w.prefix}.node.${this.name}.admin`,
      {
        ...controller.adminHandlers(),
        whois: async () => ({ name: this.name, nodeId: this.id, clusterId: this.clusterId, generation: this.generation }),
        propose: async (body, envelope) => member().handleAdmin('propose', body, envelope),
        read: async (body, envelope) => member().handleAdmin('read', body, envelope),
      },
      logger,
    );
    // (subscribes at once; the simulated bus's flush has nothing to wait for)
    void admin.start();
  }

  /** the process dies: nothing it was doing has any further effect; only the disk remains */
  crash(): void {
    this.controller?.stop();
    this.controller = null;
    this.clock?.stop();
    this.bus?.stop();
    this.store?.stop();
    this.clock = null;
    this.bus = null;
    this.store = null;
    this.member = null;
    this.core = null;
    this.running = false;
    this.joining = null;
  }

  /** the running process's membership operations (the real ones: the membership chart, removal notices), or null when it does not run */
  get membership(): MembershipOps | null {
    return this.controller?.membership ?? null;
  }

  /** the leader's half of the join handshake (the real one, over the simulated bus) */
  offer(target: string): Promise<OfferReply> {
    if (this.controller === null) return Promise.reject(new Error(`${this.name} is not running`));
    return this.controller.offer(target);
  }

  /** this node asks the leader of `clusterId` to add it (auto-join's request, the real one, over the simulated bus) */
  requestJoin(clusterId: string): Promise<JoinRequestOutcome> {
    if (this.controller === null) return Promise.reject(new Error(`${this.name} is not running`));
    return this.controller.requestJoin(clusterId);
  }

  /**
   * `conclave recover` on this (stopped) store, by the rule the CLI's recovery follows
   * (runtime/store/recoveryPlan.ts): the applied state as a snapshot with this node the sole voter,
   * committed entries kept to be applied on the next start, a new identity generation. `faults`
   * plant the recovery bugs the simulator must catch.
   */
  recover(faults: RecoveryFaults): { commitPoint: number; kept: number; generation: number; pending: Entry[] } {
    if (this.running) throw new Error(`host ${this.name}: recover runs on a stopped store`);
    const d = this.disk;
    const offset = d.snapshot?.index ?? 0;
    const plan = planRecovery(
      {
        nodeId: this.id,
        name: this.name,
        generation: d.identity.generation,
        hardState: d.hardState,
        applied: d.applied,
        firstIndex: offset + 1,
        lastIndex: offset + d.entries.length,
        snapshotMembership: d.snapshot?.membership ?? null,
        termAt: (index) => {
          const t = termAt(d, index);
          return t >= 0 ? t : undefined;
        },
        entries: (lo, hi) => d.entries.slice(lo - offset - 1, Math.max(0, hi - offset - 1)),
      },
      faults,
    );
    if ('error' in plan) throw new Error(`host ${this.name}: recover refused: ${plan.error}`);
    // one durable write, as `conclave recover`'s (runtime/store/snapshots.ts): what the store held, the
    // applies not yet durable included, is on disk from here (a later power loss goes back no further)
    d.unsynced = null;
    d.snapshot = plan.snapshot;
    d.entries = plan.pending;
    d.applied = plan.snapshot.index;
    d.hardState = plan.hardState;
    d.identity = { ...d.identity, generation: plan.generation };
    return { commitPoint: plan.commitPoint, kept: plan.hardState.commit, generation: plan.generation, pending: plan.pending };
  }
}
