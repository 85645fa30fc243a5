// The controller's parts a simulated node runs, as `conclave run` runs them: the bootstrap chart
// (machines/bootstrap), the node's half of the join handshake (actors/controller/joinHandshake.ts,
// with the join chart) and the leader's half (`offerJoin`), auto-join (actors/controller/autoJoin.ts:
// every member hears `<prefix>.discover`, the leader admits or refuses a request; a node's own
// request is `requestJoin`), the membership operations (actors/controller/membership.ts: add and
// remove through the membership chart) and removal notices (actors/controller/removal.ts), answering
// on the node's admin subject with the controller's own handler table (actors/controller/adminApi.ts).
// They run on the process's simulated clock, bus and store, with the simulator's planted bugs in
// their test-only switches (ControllerTestFaults). The member itself stays the host's (host.ts): the
// bootstrap chart's joinCluster asks the host to start it in joining mode; the chart's `removed`
// phase halts the host for good. A blank node configured with `join.cluster` runs auto-join's
// announce loop (it asks until the cluster adds it). Not simulated: join secrets on offers.
import { createActor, fromCallback, fromPromise } from 'xstate';
import { bootstrapInput } from '../../actors/controller/bootstrap.ts';
import type { BootstrapActor, ControllerContext } from '../../actors/controller/context.ts';
import { type AdminParts, adminHandlers } from '../../actors/controller/adminApi.ts';
import { AutoJoin, type JoinRequestOutcome, requestJoin } from '../../actors/controller/autoJoin.ts';
import { JoinHandshake, offerJoin } from '../../actors/controller/joinHandshake.ts';
import { MembershipOps } from '../../actors/controller/membership.ts';
import { Removal } from '../../actors/controller/removal.ts';
import type { AdminHandlers } from '../../runtime/admin.ts';
import type { BootstrapCluster, BootstrapDone, BootstrapEvent, ContactRecord, JoinAccepted } from '../../machines/bootstrap/machine.ts';
import { bootstrapMachine, phaseOf } from '../../machines/bootstrap/machine.ts';
import type { OfferReply } from '../../machines/membership/machine.ts';
import { conclaveError } from '../../runtime/errors.ts';
import { ControllerEventHub } from '../../runtime/events.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { RateLimitedLog } from '../../runtime/log/rateLimit.ts';
import type { SimBus } from './bus.ts';
import type { SimClock } from './clock.ts';
import type { HostWorld, SimHost } from './host.ts';
import type { SimStore } from './store.ts';

const logger = silentLogger();

/**
 * Every simulated node holds the same auto-join secret, the foreign cluster's too (as if its
 * operators reused the secret file): the proof passes, and only the join rule keeps a node of
 * another cluster out.
 */
const JOIN_SECRET = new TextEncoder().encode('the simulated clusters share this join secret');

export class SimController {
  readonly ctx: ControllerContext;
  readonly bootstrap: BootstrapActor;
  private readonly join: JoinHandshake;
  readonly removal: Removal;
  readonly membership: MembershipOps;
  private readonly autoJoin: AutoJoin;
  private stopped = false;

  constructor(host: SimHost, world: HostWorld, parts: { clock: SimClock; bus: SimBus; store: SimStore }) {
    const member = () => {
      if (host.member === null) throw conclaveError('NOT_A_MEMBER', `${host.name} is not a member of a cluster yet`);
      return host.member;
    };
    this.ctx = {
      name: host.name,
      prefix: world.prefix,
      store: parts.store,
      bus: parts.bus,
      opts: { name: host.name, dataDir: '(simulated)', ...(host.autoJoinCluster === null ? {} : { join: { cluster: host.autoJoinCluster } }) },
      events: new ControllerEventHub(logger),
      clock: parts.clock,
      random: world.random,
      testFaults: world.controllerFaults,
      inspectionSink: () => {},
      refusalLog: new RateLimitedLog(logger),
      log: logger,
      actor: () => this.bootstrap,
      phase: () => phaseOf(this.bootstrap.getSnapshot().value),
      stopping: () => this.stopped,
      member: () => host.member,
      memberRuntime: member,
      requireLeader: () => {
        const m = member();
        if (m.status().role !== 'leader') throw conclaveError('NOT_LEADER', `${host.name} is not the leader`);
        return m;
      },
      sender: () => ({ name: host.name, nodeId: host.id, clusterId: host.clusterId, generation: host.generation }),
      logFor: () => logger,
      reportRefusal: (_component, refusal) => world.refused(host, refusal),
    };
    const identity = parts.store.identity();
    this.bootstrap = createActor(
      bootstrapMachine.provide({
        actors: {
          bootstrapCluster: fromPromise<BootstrapDone, BootstrapCluster>(async () => {
            throw new Error('the simulator bootstraps its clusters on disk');
          }),
          recordContact: fromPromise<void, ContactRecord>(({ input }) => parts.store.updateIdentity({ contactedBy: input })),
          // the host runs the member in joining mode; a joining runtime that is given up is stopped with the process
          joinCluster: fromCallback<BootstrapEvent, JoinAccepted>(({ input }) => {
            world.accepted(host, input);
            return () => {};
          }),
          memberRuntime: fromCallback(() => () => {}),
        },
      }),
      {
        id: `bootstrap:${host.name}`,
        input: bootstrapInput(host.name, identity, { initFrom: null, legacyMember: false, awaitingMembership: false }),
        clock: parts.clock,
      },
    );
    this.join = new JoinHandshake(this.ctx);
    this.removal = new Removal(this.ctx);
    const removal = this.removal;
    this.membership = new MembershipOps(this.ctx, {
      offerJoin: (target) => offerJoin(this.ctx, target, null),
      sendRemovedNotice: (name) => removal.send(name),
    });
    this.autoJoin = new AutoJoin(this.ctx, this.membership, JOIN_SECRET);
    this.autoJoin.listen();
    // the chart's `removed` phase: the node leaves for good (in a microtask: not from inside the chart's own transition)
    let halted = false;
    let lastPhase = phaseOf(this.bootstrap.getSnapshot().value);
    this.bootstrap.subscribe((snapshot) => {
      // as runtime/controller.ts: a phase change is an event (auto-join's announce loop hears it)
      const phase = phaseOf(snapshot.value);
      if (phase !== lastPhase) {
        lastPhase = phase;
        this.ctx.events.emit('phaseChanged', { phase });
      }
      if (halted || phase !== 'removed') return;
      halted = true;
      queueMicrotask(() => {
        if (!this.stopped) world.removed(host);
      });
    });
    this.bootstrap.start();
    if (host.autoJoinCluster !== null) this.autoJoin.announceUntilAdmitted(host.autoJoinCluster);
  }

  /** the controller's admin handlers (actors/controller/adminApi.ts); status, init, list and snapshots are not simulated */
  adminHandlers(): AdminHandlers {
    const notSimulated = (what: string) => () => {
      throw conclaveError('BAD_REQUEST', `${what} is not simulated`);
    };
    const parts: AdminParts = {
      status: notSimulated('status'),
      init: notSimulated('init'),
      list: notSimulated('cluster list'),
      membership: this.membership,
      join: this.join,
      removal: this.removal,
    };
    return adminHandlers(this.ctx, parts);
  }

  /** the leader's half: offer membership to `target` */
  offer(target: string): Promise<OfferReply> {
    return offerJoin(this.ctx, target, null);
  }

  /** this node asks the leader of `clusterId` to add it: one auto-join request on `<prefix>.discover` */
  requestJoin(clusterId: string): Promise<JoinRequestOutcome> {
    return requestJoin(this.ctx, JOIN_SECRET, clusterId);
  }

  /** the joining member's first state is durable / it is a member */
  adopted(clusterId: string): void {
    this.bootstrap.send({ type: 'ADOPTED', clusterId });
  }

  joined(clusterId: string): void {
    this.bootstrap.send({ type: 'JOINED', clusterId });
  }

  /** the process died */
  stop(): void {
    this.stopped = true;
    this.autoJoin.stop();
    this.bootstrap.stop();
  }
}
