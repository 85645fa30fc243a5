// Deterministic simulation of a cluster of real members (actors/member.ts, as `conclave run` runs
// them) over a simulated store, bus and clock: one seed drives the clock, the network, the faults,
// the clients and every core's randomness. Invariants are checked after every step; a violation
// carries the seed and a readable trace, and the same seed replays it exactly. Clients write and
// read through any member (clients.ts): followers forward to the leader over the simulated bus.
//
// Beyond consensus, the controller around the members: blank nodes join through the real join
// handshake (the leader's offer over the simulated bus; the node's join and bootstrap charts on its
// simulated clock, hostController.ts), then adopt the cluster id with the first snapshot; the leader's
// add and remove run the real membership operations and chart, and removal notices the real Removal
// (actors/controller/); disaster recovery rewrites a survivor's store by the rule `conclave recover`
// applies (a sole voter under a new identity generation; stale members come back and must be fenced
// off by the members' own inbound filter); nodes of a foreign cluster or an older generation are
// offered membership through the real handshake and must refuse, and ask for it through the real
// auto-join request on `<prefix>.discover`, which the leader's real admission must refuse (or, for
// a stale node of the same cluster id, admit and offer: the node refuses). Planted bugs are switched
// on in that real code (config.ts). Modelled still (scenarios.ts): a foreign cluster's chatter
// (crafted raft messages). Opt-in (SimConfig.autoJoin): blank nodes that ask to join through
// auto-join's announce loop. Each node's lineage — cluster and generation — is ghost state.
import type { MembershipOps } from '../../actors/controller/membership.ts';
import type { Member, PeerId } from '../../machines/raft/types.ts';
import type { Delivery, NetworkWorld } from './bus.ts';
import { SimNetwork } from './bus.ts';
import type { Scheduler } from './clock.ts';
import { drawProfile, newStats, type SimBugs, type SimConfig, type SimProfile, type SimResult, type Violation, ViolationError } from './config.ts';
import { CLUSTER_IDS, FOREIGN_CLUSTER, Ghost, lineageKey, MAIN_CLUSTER, nodeUuid } from './ghost.ts';
import { EventHeap } from './heap.ts';
import { SimHost } from './host.ts';
import { SimHostWorld } from './hostWorld.ts';
import type { RaftTiming } from '../../runtime/config/config.ts';
import { Invariants, type Lineages } from './invariants.ts';
import { Prng } from './prng.ts';
import { Clients } from './clients.ts';
import { chaos, healEverything, longLag } from './scenarios.ts';
import { durableStore } from './store.ts';
import { Trace } from './trace.ts';

export { HARSH_PROFILE, SIM_BUGS, SIM_MAX_PAYLOAD, type SimBugs, type SimConfig, type SimProfile, type SimResult, type SimStats, type Violation } from './config.ts';
export { formatViolation } from './trace.ts';

export const TICK_MS = 10;
/** events after healing within which a leader must commit a fresh proposal */
const LIVENESS_STEPS = 400_000;
export const PREFIX = 'sim';
export const FOREIGN_NAME = 'x1';

export type SimEvent =
  | { time: number; seq: number; kind: 'timer'; fire: () => void }
  | { time: number; seq: number; kind: 'deliver'; delivery: Delivery }
  | { time: number; seq: number; kind: 'chaos' }
  | { time: number; seq: number; kind: 'client' }
  | { time: number; seq: number; kind: 'restart'; node: PeerId }
  | { time: number; seq: number; kind: 'disk-ok'; node: PeerId }
  | { time: number; seq: number; kind: 'heal' }
  | { time: number; seq: number; kind: 'lag'; node: PeerId | null };

export function runSimulation(config: SimConfig): Promise<SimResult> {
  return new Simulation(config).run();
}

/** every microtask the step caused (the members' awaited writes, resolved promises) runs before the next step */
function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Simulation implements Lineages, Scheduler, NetworkWorld {
  readonly rng: Prng;
  /** the randomness of message sizes and long lags: its own stream */
  readonly sizeRng: Prng;
  /** where an armed crash hits a write (during or after it): its own stream too */
  readonly crashRng: Prng;
  /** the members' randomness (election timeouts, request ids): its own stream */
  readonly random: () => number;
  readonly config: Required<Omit<SimConfig, 'testHooks' | 'profile' | 'bugs'>> & Pick<SimConfig, 'testHooks'> & { bugs: SimBugs };
  readonly profile: SimProfile;
  private readonly heap = new EventHeap<SimEvent>();
  private seq = 0;
  time = 0;
  step = 0;
  readonly hosts = new Map<PeerId, SimHost>();
  private readonly byName = new Map<string, PeerId>();
  foreign: SimHost | null = null;
  readonly lineageOf = new Map<PeerId, string | null>();
  readonly lineageHistory = new Map<PeerId, string[]>();
  readonly offeredBy = new Map<PeerId, string>();
  readonly ghosts = new Map<string, Ghost>();
  readonly originOf = new Map<string, string>();
  mainLineage = lineageKey(MAIN_CLUSTER, 1);
  readonly foreignLineage = lineageKey(FOREIGN_CLUSTER, 1);
  mainGeneration = 1;
  recoveriesDone = 0;
  nextNodeNumber: number;
  faultsOn = true;
  readonly blocked = new Set<string>();
  lagging: PeerId | null = null;
  readonly crashArmed = new Set<PeerId>();
  requestSeq = 0;
  /** the membership operations of the process running the one under way (scenarios.ts), or null */
  membershipOp: MembershipOps | null = null;
  liveProposal: { id: string; leader: PeerId } | null = null;
  liveDone = false;
  readonly stats = newStats();
  readonly invariants = new Invariants(this);
  readonly network = new SimNetwork(this);
  readonly clients = new Clients(this);
  private readonly trace: Trace;
  /** the first violation seen (one thrown inside member code may be caught there: it is kept here) */
  private failure: unknown = null;
  /** the ghost lineage of the message being delivered */
  deliveringLineage: string | null | undefined = undefined;

  readonly prefix = PREFIX;
  readonly timing: RaftTiming;
  readonly maxPayload: number;
  /** the members' hands into the simulation (hostWorld.ts) */
  private readonly hostWorld: SimHostWorld;

  constructor(config: SimConfig) {
    this.config = { membership: true, foreign: true, recovery: true, autoJoin: false, traceSize: 50, livenessMs: 5000, bugs: {}, ...config };
    this.rng = new Prng(config.seed);
    this.sizeRng = new Prng(config.seed ^ 0x9e3779b9);
    this.crashRng = new Prng(config.seed ^ 0x85ebca6b);
    this.random = new Prng(config.seed ^ 0x27d4eb2f).random;
    this.profile = drawProfile(this.rng, this.sizeRng, config.profile);
    this.nextNodeNumber = config.nodes + 1;
    this.maxPayload = this.profile.maxPayload;
    const p = this.profile;
    this.timing = { heartbeatMs: TICK_MS, electionTimeoutMs: 10 * TICK_MS, snapshotEvery: p.snapshotEvery, snapshotEveryBytes: 64 * 1024 * 1024, maxEntriesPerMessage: p.maxEntriesPerMessage, maxInflight: p.maxInflight };
    this.hostWorld = new SimHostWorld(this);
    this.trace = new Trace(this.config.traceSize, (id) => this.nameOf(id));
  }

  async run(): Promise<SimResult> {
    let violation: Violation | null = null;
    try {
      this.setup();
      await settleMicrotasks();
      while (this.step < this.config.steps) await this.runStep();
      healEverything(this);
      const deadline = this.time + this.config.livenessMs;
      const stepLimit = this.step + LIVENESS_STEPS;
      while (!this.liveDone) {
        if (this.time > deadline || this.step > stepLimit) {
          const within = this.time > deadline ? `${this.config.livenessMs} ms` : `${LIVENESS_STEPS} events (the messages never settle)`;
          throw new ViolationError('liveness', `no leader committed a fresh proposal within ${within} of healing every fault\n${this.describeNodes()}`);
        }
        await this.runStep();
      }
      this.invariants.checkFinal(this.currentLeader());
    } catch (error) {
      const found = this.failure ?? error;
      const invariant = found instanceof ViolationError ? found.invariant : 'core assertion';
      const message = found instanceof Error ? found.message : String(found);
      violation = {
        seed: this.config.seed,
        nodes: this.config.nodes,
        step: this.step,
        time: this.time,
        invariant,
        message: found instanceof ViolationError ? message : `${message}\n${(found as Error).stack?.split('\n').slice(1, 4).join('\n') ?? ''}`,
        trace: this.trace.lines(),
      };
    }
    for (const host of this.hosts.values()) host.crash();
    this.stats.steps = this.step;
    this.stats.simulatedMs = this.time;
    this.stats.largestMessage = this.network.largestMessage;
    // the figures as the run ends: a client write still settling after it must not change a result already returned
    return { seed: this.config.seed, nodes: this.config.nodes, violation, stats: { ...this.stats }, trace: violation?.trace ?? this.trace.lines() };
  }

  // ---------------------------------------------------------------- setup

  private setup(): void {
    const members: Member[] = [];
    for (let i = 1; i <= this.config.nodes; i++) members.push({ nodeId: nodeUuid(i), name: `n${i}`, voter: true });
    for (const m of members) {
      this.addHost(m.nodeId, m.name, MAIN_CLUSTER, members).start();
      this.note(`start ${m.name}: voter of ${this.mainLineage}`);
    }
    this.ghosts.set(this.mainLineage, Ghost.bootstrapped());
    if (this.config.foreign) {
      const id = nodeUuid(0xf01);
      this.foreign = this.addHost(id, FOREIGN_NAME, FOREIGN_CLUSTER, [{ nodeId: id, name: FOREIGN_NAME, voter: true }]);
      this.foreign.start();
      this.note(`start ${FOREIGN_NAME}: sole voter of ${this.foreignLineage}`);
      this.ghosts.set(this.foreignLineage, Ghost.bootstrapped());
    }
    this.schedule({ time: this.rng.between(20, 100), seq: 0, kind: 'chaos' });
    this.schedule({ time: this.rng.between(1, 30), seq: 0, kind: 'client' });
    if (this.profile.longLags) this.schedule({ time: this.sizeRng.between(200, 2000), seq: 0, kind: 'lag', node: null });
  }

  /** a node's disk: bootstrapped as `conclave init` leaves it (a snapshot at index 1 with the configuration), or blank */
  addHost(id: PeerId, name: string, cluster: string | null, members: Member[] | null): SimHost {
    const disk = durableStore(id, name, cluster === null ? null : CLUSTER_IDS[cluster]!, 1);
    if (members !== null) {
      disk.snapshot = { index: 1, term: 1, membership: { members } };
      disk.hardState = { term: 1, vote: null, commit: 1 };
      disk.applied = 1;
    }
    const host = new SimHost(this.hostWorld, id, name, disk);
    this.hosts.set(id, host);
    this.byName.set(name, id);
    this.setLineage(id, cluster === null ? null : lineageKey(cluster, 1));
    return host;
  }

  setLineage(id: PeerId, lineage: string | null): void {
    this.lineageOf.set(id, lineage);
    if (lineage === null) return;
    const history = this.lineageHistory.get(id);
    if (history === undefined) this.lineageHistory.set(id, [lineage]);
    else history.push(lineage);
  }

  nameOf(nodeId: string): string {
    return this.hosts.get(nodeId)?.name ?? nodeId;
  }

  // ---------------------------------------------------------------- the loop (Scheduler)

  now(): number {
    return this.time;
  }

  at(time: number, fire: () => void): void {
    this.schedule({ time, seq: 0, kind: 'timer', fire });
  }

  schedule(event: SimEvent): void {
    event.seq = ++this.seq;
    this.heap.push(event);
  }

  private async runStep(): Promise<void> {
    const event = this.heap.pop();
    if (event === undefined) throw new Error('simulation ran out of events');
    this.time = event.time;
    this.step++;
    switch (event.kind) {
      case 'timer':
        event.fire();
        break;
      case 'deliver':
        this.trace.delivery(this.step, this.time, event.delivery);
        if (this.network.deliver(event.delivery)) this.stats.delivered++;
        else {
          this.stats.dropped++;
          this.trace.lost();
        }
        break;
      case 'chaos':
        if (this.faultsOn) {
          chaos(this);
          this.schedule({ time: this.time + this.rng.between(1, 2 * this.profile.chaosEveryMs), seq: 0, kind: 'chaos' });
        }
        break;
      case 'client':
        this.clients.issue();
        this.schedule({ time: this.time + this.rng.between(2, this.faultsOn ? 40 : 20), seq: 0, kind: 'client' });
        break;
      case 'restart': {
        const host = this.hosts.get(event.node);
        if (host === undefined || host.running || host.halted) break;
        if (host.diskFull && this.faultsOn) {
          this.schedule({ time: this.time + 50, seq: 0, kind: 'restart', node: event.node });
          break;
        }
        this.note(`restart ${host.name}`);
        this.invariants.restarted(host.id);
        host.start();
        break;
      }
      case 'disk-ok': {
        const host = this.hosts.get(event.node);
        if (host !== undefined) host.diskFull = false;
        break;
      }
      case 'heal':
        this.blocked.clear();
        break;
      case 'lag':
        longLag(this, event.node);
        break;
    }
    if (this.failure !== null) throw this.failure;
    await settleMicrotasks();
    if (this.failure !== null) throw this.failure;
    this.invariants.check();
    this.clients.check();
  }

  /** a violation found inside member code (which would catch it, or in a promise callback): kept, and thrown after the step */
  fail(err: unknown): void {
    this.failure ??= err;
  }

  note(text: string): void {
    this.trace.note(this.step, this.time, text);
  }

  scheduleRestart(id: PeerId, lo = 20, hi = 600): void {
    this.schedule({ time: this.time + this.rng.between(lo, hi), seq: 0, kind: 'restart', node: id });
  }

  /** every node of the main cluster that has not stopped for good: current, blank or stale */
  memberIds(): PeerId[] {
    const ids: PeerId[] = [];
    for (const [id, host] of this.hosts) if (host !== this.foreign && !host.halted) ids.push(id);
    return ids;
  }

  /** the leader of the main cluster's current lineage (stale leaders of an older one do not count) */
  currentLeader(): SimHost | null {
    let best: SimHost | null = null;
    for (const host of this.hosts.values()) {
      if (host.core === null || host.core.currentRole !== 'leader' || this.lineageOf.get(host.id) !== this.mainLineage) continue;
      if (best === null || host.core.currentTerm > best.core!.currentTerm) best = host;
    }
    return best;
  }

  // ---------------------------------------------------------------- the network (NetworkWorld)

  senderLineage(nodeId: string): string | null {
    return this.lineageOf.get(nodeId) ?? null;
  }

  nodeIdOf(name: string): string | null {
    return this.byName.get(name) ?? null;
  }

  lost(): boolean {
    return this.faultsOn && this.rng.chance(this.profile.dropRate);
  }

  cut(from: string, to: string): boolean {
    const lagged = this.lagging !== null && (to === this.lagging || from === this.lagging);
    return lagged || this.blocked.has(`${from}>${to}`);
  }

  delay(): number {
    if (!this.faultsOn) return this.rng.between(1, 5);
    if (this.rng.chance(this.profile.longDelayRate)) return this.rng.between(50, 400);
    return this.rng.between(1, this.profile.maxDelay);
  }

  duplicate(): boolean {
    const dup = this.faultsOn && this.rng.chance(this.profile.dupRate);
    if (dup) this.stats.duplicated++;
    return dup;
  }

  // NetworkWorld.schedule(time, delivery) and the event queue's schedule(event) share a name
  scheduleDelivery(time: number, delivery: Delivery): void {
    this.schedule({ time, seq: 0, kind: 'deliver', delivery });
  }

  later(ms: number, fire: () => void): void {
    this.at(this.time + ms, fire);
  }

  tooLarge(delivery: Delivery, bytes: number): void {
    const to = delivery.to === null ? delivery.subject : this.nameOf(delivery.to);
    this.failure ??= new ViolationError('message size', `${this.nameOf(delivery.from)} sent a message of ${bytes} bytes to ${to}, over the bus's max payload of ${this.maxPayload} bytes: it can never be sent`);
  }

  delivering(delivery: Delivery | null): void {
    this.deliveringLineage = delivery === null ? undefined : delivery.lineage;
  }

  handlerThrew(delivery: Delivery, err: unknown): void {
    this.failure ??= new ViolationError('hostile input', `${this.nameOf(delivery.to ?? '')} threw on a message from ${this.nameOf(delivery.from)}: ${(err as Error).message}`);
  }

  /** run a check from inside member code: a violation is kept (and thrown after the step), not thrown into the member */
  guard(check: () => void): void {
    try {
      check();
    } catch (err) {
      this.fail(err);
    }
  }

  describeNodes(): string {
    const rows: string[] = [];
    for (const host of this.hosts.values()) {
      const core = host.core;
      const lineage = this.lineageOf.get(host.id) ?? 'blank';
      if (core === null) rows.push(`  ${host.name} (${lineage}): ${host.halted ? 'halted' : host.running ? 'uninitialized' : 'crashed'}`);
      else rows.push(`  ${host.name} (${lineage}): ${core.currentRole} term=${core.currentTerm} leader=${core.leader === null ? '-' : this.nameOf(core.leader)} commit=${core.commitIndex} last=${core.lastIndex}`);
    }
    return rows.join('\n');
  }
}
