// The controller's parts a simulated node runs, as `conclave run` runs them: the bootstrap chart
// (machines/bootstrap) and the node's half of the join handshake (actors/controller/joinHandshake.ts,
// with the join chart), answering `join.offer` on the node's admin subject; and the leader's half
// (`offerJoin`). They run on the process's simulated clock, bus and store. The member itself stays
// the host's (host.ts): the bootstrap chart's joinCluster asks the host to start it in joining mode.
import { createActor, fromCallback, fromPromise } from 'xstate';
import { bootstrapInput } from '../../actors/controller/bootstrap.ts';
import type { BootstrapActor, ControllerContext } from '../../actors/controller/context.ts';
import { JoinHandshake, offerJoin } from '../../actors/controller/joinHandshake.ts';
import type { BootstrapCluster, BootstrapDone, BootstrapEvent, ContactRecord, JoinAccepted } from '../../machines/bootstrap/machine.ts';
import { bootstrapMachine, phaseOf } from '../../machines/bootstrap/machine.ts';
import type { OfferReply } from '../../machines/membership/machine.ts';
import { conclaveError } from '../../runtime/errors.ts';
import { ControllerEventHub } from '../../runtime/events.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { RateLimitedLog } from '../../runtime/log/rateLimit.ts';
import type { AdminBody, JoinParty } from '../../runtime/wire/adminProtocol.ts';
import type { Envelope } from '../../runtime/wire/codec.ts';
import type { SimBus } from './bus.ts';
import type { SimClock } from './clock.ts';
import type { HostWorld, SimHost } from './host.ts';
import type { SimStore } from './store.ts';

const logger = silentLogger();

export class SimController {
  readonly ctx: ControllerContext;
  readonly bootstrap: BootstrapActor;
  private readonly join: JoinHandshake;
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
      opts: { name: host.name, dataDir: '(simulated)' },
      events: new ControllerEventHub(logger),
      clock: parts.clock,
      random: world.random,
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
    this.bootstrap.start();
    this.join = new JoinHandshake(this.ctx);
  }

  /** `join.offer` on this node's admin subject */
  onOffer(offer: AdminBody<'join.offer'>, envelope: Envelope): Promise<JoinParty> {
    return this.join.onOffer(offer, envelope);
  }

  /** the leader's half: offer membership to `target` */
  offer(target: string): Promise<OfferReply> {
    return offerJoin(this.ctx, target, null);
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
    this.bootstrap.stop();
  }
}
