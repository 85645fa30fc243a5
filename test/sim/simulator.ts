// Deterministic simulation of a raft cluster: one seed drives the clock, the network, the faults,
// the clients and every core's randomness. Invariants are checked after every step; a violation
// carries the seed and a readable trace, and the same seed replays it exactly.
//
// Beyond consensus, the simulator models the cluster identity: blank nodes join (the join handshake,
// then the cluster id adopted with the first state), nodes of a foreign cluster are offered or ask
// to join (refused at both ends), and disaster recovery (a survivor made the sole voter under a new
// identity generation; stale members of the old generation come back and are fenced off). Each
// node's "lineage" — cluster id and generation — is tracked by the simulator as ghost state, apart
// from what the hosts themselves believe, and the invariants are checked per lineage.
import { checkJoin } from '../../machines/identity/index.ts';
import { blankRestore, bootstrapRestore, RaftCore, type RaftRestore, type RaftTestHooks } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import { entryBytes, jsonBytes } from '../../machines/raft/size.ts';
import type { Entry, Member, Membership, PeerId } from '../../machines/raft/types.ts';
import { wireLimits } from '../../runtime/wire/codec.ts';
import { EventHeap } from './heap.ts';
import { type Envelope, type HostObserver, type KvCommand, SimHost } from './host.ts';
import { Prng } from './prng.ts';

/**
 * Deliberate bugs in the simulator's model of the membership layer (the join handshake, the
 * per-message rule, recovery), to prove the cluster-id invariants catch them. Never set otherwise.
 */
export interface SimBugs {
  /** the join handshake does not apply the join rule: a node of another cluster can be added */
  joinSkipsRule?: boolean;
  /** a blank node processes messages from any cluster, not only the one whose offer it accepted */
  blankTalksToAnyCluster?: boolean;
  /** recovery keeps the old identity generation: stale members are not fenced off */
  recoveryKeepsGeneration?: boolean;
  /** recovery keeps the survivor's state only up to a little below its commit point */
  recoveryLosesCommitted?: boolean;
  /** appends are batched by entry count only, as before issue 17 (no byte budget): large entries overflow a message */
  appendsIgnoreBytes?: boolean;
  /** the member's ready loop (actors/readyLoop.ts) sends every message before persisting what it depends on */
  sendBeforePersist?: boolean;
}
export const SIM_BUGS = ['joinSkipsRule', 'blankTalksToAnyCluster', 'recoveryKeepsGeneration', 'recoveryLosesCommitted', 'appendsIgnoreBytes', 'sendBeforePersist'] as const;

export interface SimConfig {
  seed: number;
  nodes: number;
  /** events processed before the faults are healed and liveness is checked */
  steps: number;
  testHooks?: RaftTestHooks;
  /** add learner → promote → remove cycles (default true) */
  membership?: boolean;
  /** a node of another cluster that talks to members and is offered / asks to join (default true) */
  foreign?: boolean;
  /** disaster recovery: majority lost, survivor made sole voter under a new generation (default true) */
  recovery?: boolean;
  bugs?: SimBugs;
  /** how many recent events a violation report shows (default 50) */
  traceSize?: number;
  /** simulated ms after healing within which a leader must commit a fresh proposal (default 5000) */
  livenessMs?: number;
  /** override the fault intensities otherwise drawn from the seed */
  profile?: Partial<SimProfile>;
}

export interface Violation {
  seed: number;
  nodes: number;
  step: number;
  time: number;
  invariant: string;
  message: string;
  trace: string[];
}

export interface SimStats {
  steps: number;
  simulatedMs: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  foreignDropped: number;
  crashes: number;
  diskFullCrashes: number;
  partitions: number;
  elections: number;
  committed: number;
  reads: number;
  snapshotsSent: number;
  compactions: number;
  configChanges: number;
  transfers: number;
  /** blank nodes that adopted the cluster id with their first state */
  blankJoins: number;
  /** commands of more than a quarter of the largest command, proposed */
  largeCommands: number;
  /** commands over the largest command, refused at the door */
  commandsTooLarge: number;
  /** the largest raft message sent, in bytes (as the bus would carry it) */
  largestMessage: number;
  /** followers cut off for a long time (they fall far behind, then catch up) */
  longLags: number;
  /** join offers/requests refused at both ends (another cluster, or another generation) */
  joinsRefused: number;
  /** messages of the same cluster but another identity generation, dropped */
  staleDropped: number;
  /** stale members that learned they were left behind by a recovery and stopped */
  staleHalted: number;
  recoveries: number;
  /** committed entries above the survivors' commit points, discarded by recoveries */
  discardedByRecovery: number;
}

export interface SimResult {
  seed: number;
  nodes: number;
  violation: Violation | null;
  stats: SimStats;
}

const TICK_MS = 10;
/** events after healing within which a leader must commit a fresh proposal (a healthy run takes a few hundred) */
const LIVENESS_STEPS = 100_000;
const MAIN_CLUSTER = 'cluster-main';
const FOREIGN_CLUSTER = 'cluster-foreign';
const FOREIGN_ID = 'x1';

/** a cluster id at one identity generation: the unit every consensus invariant is checked within */
function lineageKey(clusterId: string, generation: number): string {
  return `${clusterId}/g${generation}`;
}
function clusterOfLineage(lineage: string): string {
  return lineage.slice(0, lineage.lastIndexOf('/g'));
}

/** what the simulator knows one lineage has committed, independently of any node */
class Ghost {
  readonly leaderOfTerm = new Map<number, PeerId>();
  readonly entryAt = new Map<string, string>();
  readonly predecessorTerm = new Map<string, number>();
  committedTerm: number[] = [0];
  committedInTerm: number[] = [0];
  appliedKey: Array<string | undefined> = [];
  commit = 0;

  /** the lineage a recovery starts from this one: what was committed up to `keep`, nothing above */
  derive(keep: number): Ghost {
    const next = new Ghost();
    // the ghost may know less than the survivor (commits learned inside a snapshot are not recorded)
    const known = Math.min(keep, this.commit);
    next.committedTerm = this.committedTerm.slice(0, known + 1);
    next.committedInTerm = this.committedInTerm.slice(0, known + 1);
    next.appliedKey = this.appliedKey.slice(0, keep + 1);
    next.commit = known;
    for (const [at, key] of this.entryAt) if (Number(at.slice(at.indexOf(':') + 1)) <= keep) next.entryAt.set(at, key);
    for (const [at, term] of this.predecessorTerm) if (Number(at.slice(at.indexOf(':') + 1)) <= keep) next.predecessorTerm.set(at, term);
    return next;
  }
}

type SimEvent =
  | { time: number; seq: number; kind: 'tick'; node: PeerId }
  | { time: number; seq: number; kind: 'deliver'; envelope: Envelope }
  | { time: number; seq: number; kind: 'chaos' }
  | { time: number; seq: number; kind: 'client' }
  | { time: number; seq: number; kind: 'restart'; node: PeerId }
  | { time: number; seq: number; kind: 'disk-ok'; node: PeerId }
  | { time: number; seq: number; kind: 'heal' }
  | { time: number; seq: number; kind: 'lag'; node: PeerId | null }
  /** a member of a newer generation tells a stale one that it was left behind */
  | { time: number; seq: number; kind: 'stale-notice'; node: PeerId; from: PeerId; clusterId: string; generation: number };

interface TraceRecord {
  step: number;
  time: number;
  text: string | null;
  event: SimEvent | null;
}

/** per-seed fault intensities, themselves drawn from the seed */
export interface SimProfile {
  dropRate: number;
  dupRate: number;
  maxDelay: number;
  longDelayRate: number;
  chaosEveryMs: number;
  crashWeight: number;
  leaderCrashWeight: number;
  maxEntriesPerMessage: number;
  maxInflight: number;
  snapshotEvery: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** how many disaster recoveries this run may do */
  recoveries: number;
  /** the simulated bus's max payload: a raft message over it cannot be sent (a violation) */
  maxPayload: number;
  /** commands carry values up to the largest command the door accepts (and a little beyond) */
  largeCommands: boolean;
  /** now and then, a follower is cut off for seconds, then catches up (by log or snapshot) */
  longLags: boolean;
}

/** the simulated bus's max payload when a profile does not say: small, so large commands are cheap to simulate */
export const SIM_MAX_PAYLOAD = 16 * 1024;
/** what a raft message's envelope adds on the bus (sender, ids, generation) */
const SIM_ENVELOPE_BYTES = 256;

/** leaders crashing mid-replication, one entry per message: what finding figure 8 takes */
export const HARSH_PROFILE: Partial<SimProfile> = {
  maxEntriesPerMessage: 1,
  maxInflight: 1,
  leaderCrashWeight: 6,
  chaosEveryMs: 20,
  preVote: false,
  checkQuorum: false,
};

class ViolationError extends Error {
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(message);
  }
}

export function runSimulation(config: SimConfig): SimResult {
  return new Simulation(config).run();
}

class Simulation {
  private readonly rng: Prng;
  /** the randomness of message sizes and long lags: its own stream, so the other draws of a seed stay as they were */
  private readonly sizeRng: Prng;
  /** where an armed crash hits a write (during or after it): its own stream too */
  private readonly crashRng: Prng;
  /** the follower cut off by a long lag, if any */
  private lagging: PeerId | null = null;
  private readonly config: Required<Omit<SimConfig, 'testHooks' | 'profile' | 'bugs'>> & { testHooks: RaftTestHooks; bugs: SimBugs };
  private readonly profile: SimProfile;
  private readonly heap = new EventHeap<SimEvent>();
  private seq = 0;
  private now = 0;
  private step = 0;
  private readonly hosts = new Map<PeerId, SimHost>();
  private foreign: SimHost | null = null;
  // ghost identity: which lineage each node belongs to, as the simulator knows it (null: blank)
  private readonly lineageOf = new Map<PeerId, string | null>();
  /** every lineage each node has belonged to (a survivor of a recovery moves on; stale peers may still follow it) */
  private readonly lineageHistory = new Map<PeerId, string[]>();
  /** blank nodes: the lineage whose join offer they accepted */
  private readonly offeredBy = new Map<PeerId, string>();
  private readonly ghosts = new Map<string, Ghost>();
  /** the main cluster's lineage now (a recovery starts a new one) */
  private mainLineage = lineageKey(MAIN_CLUSTER, 1);
  private readonly foreignLineage = lineageKey(FOREIGN_CLUSTER, 1);
  private mainGeneration = 1;
  private recoveriesDone = 0;
  /** the configuration object last checked per node (the core's membership is replaced when it changes) */
  private readonly checkedMembership = new Map<PeerId, Membership>();
  /** the lineage each client command was proposed in */
  private readonly originOf = new Map<string, string>();
  private nextNodeNumber: number;
  private faultsOn = true;

  // network faults
  private readonly blocked = new Set<string>();
  private readonly crashAfterPersistArmed = new Set<PeerId>();

  // ghost state for the invariants (per lineage: see `ghosts`)
  private readonly checkedCommit = new Map<PeerId, number>();
  private readonly leaderSeen = new Map<PeerId, number>();
  private readonly readIssuedAt = new Map<string, { lineage: string; commit: number }>();
  private readonly lastCommit = new Map<PeerId, number>();
  private readonly lastRole = new Map<PeerId, string>();
  private requestSeq = 0;

  // liveness
  private liveProposal: { id: string; index: number; leader: PeerId } | null = null;
  private liveDone = false;

  private readonly trace: TraceRecord[] = [];
  private current: SimEvent | null = null;
  private traceAt = 0;
  readonly stats: SimStats = {
    steps: 0,
    simulatedMs: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    foreignDropped: 0,
    crashes: 0,
    diskFullCrashes: 0,
    partitions: 0,
    elections: 0,
    committed: 0,
    reads: 0,
    snapshotsSent: 0,
    compactions: 0,
    configChanges: 0,
    transfers: 0,
    blankJoins: 0,
    largeCommands: 0,
    commandsTooLarge: 0,
    largestMessage: 0,
    longLags: 0,
    joinsRefused: 0,
    staleDropped: 0,
    staleHalted: 0,
    recoveries: 0,
    discardedByRecovery: 0,
  };

  private readonly observer: HostObserver = {
    softState: (host, soft) => {
      if (soft.role === 'leader') this.checkElectionSafety(host.id, soft.term);
    },
    adopted: (host) => this.onAdopted(host),
    persisted: (host, rd) => this.onPersisted(host, rd.entries),
    applied: (host, entry) => this.onApplied(host, entry),
    readServed: (host, requestId, index) => this.onReadServed(host, requestId, index),
    readFailed: () => {},
    crashDuringWrite: (host) => {
      // half the armed crashes hit during the write (lost), half after it (durable, nothing sent yet)
      if (!this.crashAfterPersistArmed.has(host.id) || !this.crashRng.chance(0.5)) return false;
      this.crashAfterPersistArmed.delete(host.id);
      this.note(`${host.id} crashes while writing: the write is lost`);
      this.stats.crashes++;
      this.scheduleRestart(host.id);
      return true;
    },
    crashAfterPersist: (host) => {
      if (!this.crashAfterPersistArmed.has(host.id)) return false;
      this.crashAfterPersistArmed.delete(host.id);
      this.note(`${host.id} crashes after persisting, before sending`);
      this.stats.crashes++;
      this.scheduleRestart(host.id);
      return true;
    },
  };

  constructor(config: SimConfig) {
    this.config = {
      membership: true,
      foreign: true,
      recovery: true,
      traceSize: 50,
      livenessMs: 5000,
      testHooks: {},
      bugs: {},
      ...config,
    };
    this.rng = new Prng(config.seed);
    this.sizeRng = new Prng(config.seed ^ 0x9e3779b9);
    this.crashRng = new Prng(config.seed ^ 0x85ebca6b);
    const r = this.rng;
    const sr = this.sizeRng;
    this.profile = {
      dropRate: r.chance(0.3) ? 0 : r.next() * 0.15,
      dupRate: r.chance(0.5) ? 0 : r.next() * 0.05,
      maxDelay: r.between(1, 30),
      longDelayRate: r.chance(0.5) ? 0 : 0.02,
      chaosEveryMs: r.between(30, 150),
      crashWeight: r.between(1, 4),
      leaderCrashWeight: r.between(1, 2),
      maxEntriesPerMessage: r.pick([1, 2, 8, 64]),
      maxInflight: r.pick([1, 4, 64]),
      snapshotEvery: r.pick([5, 20, 100, 1_000_000]),
      preVote: r.chance(0.8),
      checkQuorum: r.chance(0.8),
      recoveries: r.pick([0, 0, 1, 1, 2]),
      maxPayload: SIM_MAX_PAYLOAD,
      largeCommands: sr.chance(0.3),
      longLags: sr.chance(0.3),
      ...config.profile,
    };
    this.nextNodeNumber = config.nodes + 1;
  }

  run(): SimResult {
    let violation: Violation | null = null;
    try {
      this.setup();
      while (this.step < this.config.steps) this.runStep();
      this.healEverything();
      const deadline = this.now + this.config.livenessMs;
      // a healed cluster settles in a few hundred events; a storm of messages that never does is a failure too
      const stepLimit = this.step + LIVENESS_STEPS;
      while (!this.liveDone) {
        if (this.now > deadline || this.step > stepLimit) {
          const within = this.now > deadline ? `${this.config.livenessMs} ms` : `${LIVENESS_STEPS} events (the messages never settle)`;
          throw new ViolationError('liveness', `no leader committed a fresh proposal within ${within} of healing every fault\n${this.describeNodes()}`);
        }
        this.runStep();
      }
      this.checkFinalCompleteness();
    } catch (error) {
      const invariant = error instanceof ViolationError ? error.invariant : 'core assertion';
      const message = error instanceof Error ? error.message : String(error);
      violation = {
        seed: this.config.seed,
        nodes: this.config.nodes,
        step: this.step,
        time: this.now,
        invariant,
        message: error instanceof ViolationError ? message : `${message}\n${(error as Error).stack?.split('\n').slice(1, 4).join('\n') ?? ''}`,
        trace: this.formatTrace(),
      };
    }
    this.stats.steps = this.step;
    this.stats.simulatedMs = this.now;
    return { seed: this.config.seed, nodes: this.config.nodes, violation, stats: this.stats };
  }

  // ---------------------------------------------------------------- setup

  private readonly makeCore = (id: PeerId, restore: RaftRestore): RaftCore =>
    new RaftCore({
      id,
      electionTicks: 10,
      heartbeatTicks: 1,
      random: this.rng.random,
      preVote: this.profile.preVote,
      checkQuorum: this.profile.checkQuorum,
      maxEntriesPerMessage: this.profile.maxEntriesPerMessage,
      // the byte budget the member derives from its bus's max payload (production's wireLimits)
      maxBytesPerMessage: this.config.bugs.appendsIgnoreBytes ? undefined : wireLimits(this.profile.maxPayload).appendBytes,
      maxInflight: this.profile.maxInflight,
      maxInflightBytes: wireLimits(this.profile.maxPayload).inflightBytes,
      restore,
      testHooks: id === FOREIGN_ID ? {} : this.config.testHooks,
    });

  private setup(): void {
    const members: Member[] = [];
    for (let i = 1; i <= this.config.nodes; i++) members.push({ nodeId: `n${i}`, name: `n${i}`, voter: true });
    for (const member of members) this.addHost(member.nodeId, MAIN_CLUSTER, bootstrapRestore({ members }));
    const ghost = new Ghost();
    ghost.committedTerm[1] = 1;
    ghost.committedInTerm[1] = 1;
    ghost.commit = 1;
    this.ghosts.set(this.mainLineage, ghost);
    if (this.config.foreign) {
      this.foreign = this.addHost(FOREIGN_ID, FOREIGN_CLUSTER, bootstrapRestore({ members: [{ nodeId: FOREIGN_ID, name: 'x1', voter: true }] }));
      const foreignGhost = new Ghost();
      foreignGhost.committedTerm[1] = 1;
      foreignGhost.committedInTerm[1] = 1;
      foreignGhost.commit = 1;
      this.ghosts.set(this.foreignLineage, foreignGhost);
    }
    this.schedule({ time: this.rng.between(20, 100), seq: 0, kind: 'chaos' });
    this.schedule({ time: this.rng.between(1, 30), seq: 0, kind: 'client' });
    if (this.profile.longLags) this.schedule({ time: this.sizeRng.between(200, 2000), seq: 0, kind: 'lag', node: null });
  }

  private addHost(id: PeerId, clusterId: string | null, restore: RaftRestore): SimHost {
    const host = new SimHost(id, clusterId, restore, this.makeCore, 1, { sendBeforePersist: this.config.bugs.sendBeforePersist === true });
    this.hosts.set(id, host);
    this.setLineage(id, clusterId === null ? null : lineageKey(clusterId, 1));
    this.checkedCommit.set(id, host.core!.commitIndex);
    this.schedule({ time: this.now + this.rng.between(1, TICK_MS), seq: 0, kind: 'tick', node: id });
    return host;
  }

  private schedule(event: SimEvent): void {
    event.seq = ++this.seq;
    this.heap.push(event);
  }

  // ---------------------------------------------------------------- the loop

  private runStep(): void {
    const event = this.heap.pop();
    if (event === undefined) throw new Error('simulation ran out of events');
    this.now = event.time;
    this.step++;
    this.current = event;
    if (event.kind !== 'tick') this.record(event);
    switch (event.kind) {
      case 'tick': {
        const host = this.hosts.get(event.node);
        if (host === undefined) break;
        this.schedule({ time: this.now + TICK_MS, seq: 0, kind: 'tick', node: event.node });
        if (host.core === null) break;
        host.core.tick();
        this.settle(host);
        break;
      }
      case 'deliver':
        this.deliver(event.envelope);
        break;
      case 'chaos':
        if (this.faultsOn) {
          this.chaos();
          this.schedule({ time: this.now + this.rng.between(1, 2 * this.profile.chaosEveryMs), seq: 0, kind: 'chaos' });
        }
        break;
      case 'client':
        this.client();
        this.schedule({ time: this.now + this.rng.between(2, this.faultsOn ? 40 : 20), seq: 0, kind: 'client' });
        break;
      case 'restart': {
        const host = this.hosts.get(event.node);
        if (host === undefined || host.alive || host.halted) break;
        if (host.diskFull && this.faultsOn) {
          this.schedule({ time: this.now + 50, seq: 0, kind: 'restart', node: event.node });
          break;
        }
        host.start();
        this.checkedCommit.set(host.id, host.core!.commitIndex);
        this.lastCommit.set(host.id, host.core!.commitIndex);
        this.leaderSeen.delete(host.id);
        this.settle(host);
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
        this.longLag(event.node);
        break;
      case 'stale-notice': {
        const host = this.hosts.get(event.node);
        if (host === undefined || host.core === null || this.blocked.has(`${event.from}>${event.node}`)) break;
        if (host.clusterId === event.clusterId && host.generation < event.generation) {
          this.halt(host, `${event.from} of generation ${event.generation} told it that its cluster was recovered without it`);
        }
        break;
      }
    }
    this.checkInvariants();
  }

  private settle(host: SimHost): void {
    const alive = host.processReady(this.send, this.observer);
    if (!alive && host.diskFull) {
      this.stats.diskFullCrashes++;
      this.note(`${host.id} crashes: disk full on write`);
      this.scheduleRestart(host.id);
    }
    if (alive && host.applied - (host.core!.snapshotIndex ?? 0) >= this.profile.snapshotEvery && host.compact()) {
      this.stats.compactions++;
    }
  }

  private readonly send = (envelope: Envelope): void => {
    const p = this.profile;
    this.checkMessageSize(envelope);
    envelope.lineage = this.lineageOf.get(envelope.msg.from) ?? null;
    if (envelope.msg.type === 'snapshot') this.stats.snapshotsSent++;
    if (this.faultsOn && this.rng.chance(p.dropRate)) {
      this.stats.dropped++;
      return;
    }
    this.schedule({ time: this.now + this.delay(), seq: 0, kind: 'deliver', envelope });
    if (this.faultsOn && this.rng.chance(p.dupRate)) {
      this.stats.duplicated++;
      this.schedule({ time: this.now + this.delay(), seq: 0, kind: 'deliver', envelope });
    }
  };

  private delay(): number {
    if (!this.faultsOn) return this.rng.between(1, 5);
    if (this.rng.chance(this.profile.longDelayRate)) return this.rng.between(50, 400);
    return this.rng.between(1, this.profile.maxDelay);
  }

  private deliver(envelope: Envelope): void {
    const msg = envelope.msg;
    const host = this.hosts.get(msg.to);
    const lagged = this.lagging !== null && (msg.to === this.lagging || msg.from === this.lagging);
    if (host === undefined || host.core === null || lagged || this.blocked.has(`${msg.from}>${msg.to}`)) {
      this.stats.dropped++;
      return;
    }
    if (!this.admits(host, envelope)) return;
    // the invariant behind the rule: a node processes messages of its own lineage only (a blank
    // node: of the lineage it agreed to join); messages of blank nodes carry no state to adopt
    const from = envelope.lineage ?? null;
    if (from !== null) {
      const mine = this.lineageOf.get(host.id) ?? null;
      const expected = mine ?? this.offeredBy.get(host.id) ?? null;
      if (from !== expected) {
        const stale = expected !== null && clusterOfLineage(from) === clusterOfLineage(expected);
        throw new ViolationError(
          stale ? 'stale generation fenced off' : 'one cluster id',
          `${host.id} (${mine ?? `blank, joining ${expected ?? 'nothing'}`}) processed ${describeMessage(msg)} from ${msg.from} of ${from}`,
        );
      }
    }
    this.stats.delivered++;
    host.receive(envelope);
    this.settle(host);
  }

  /**
   * The model of the system's per-message rule (what runs in the member runtime): a different
   * cluster id is dropped; the same cluster id at another identity generation is dropped, the newer
   * side tells the older one, and the older one stops; a blank node listens only to the cluster
   * whose offer it accepted.
   */
  private admits(host: SimHost, envelope: Envelope): boolean {
    const { clusterId, generation } = envelope;
    if (host.clusterId === null) {
      const joining = host.joining;
      if (joining !== null && clusterId === joining.clusterId && generation === joining.generation) return true;
      if (this.config.bugs.blankTalksToAnyCluster && clusterId !== null) return true;
      this.stats.foreignDropped++;
      return false;
    }
    if (clusterId === null) return true; // a blank node being added: exactly one side has an id
    if (clusterId !== host.clusterId) {
      this.stats.foreignDropped++;
      return false;
    }
    if (generation !== host.generation) {
      this.stats.staleDropped++;
      if (generation !== null && generation < host.generation) {
        this.schedule({ time: this.now + this.delay(), seq: 0, kind: 'stale-notice', node: envelope.msg.from, from: host.id, clusterId, generation: host.generation });
      } else {
        this.halt(host, `${envelope.msg.from} speaks for generation ${generation} of its cluster`);
      }
      return false;
    }
    return true;
  }

  /** a stale member learned that its cluster was recovered without it: it stops for good (wipe to re-add) */
  private halt(host: SimHost, why: string): void {
    host.crash();
    host.halted = true;
    this.stats.staleHalted++;
    this.note(`${host.id} (generation ${host.generation}) halts: ${why}`);
  }

  private scheduleRestart(id: PeerId): void {
    this.schedule({ time: this.now + this.rng.between(20, 600), seq: 0, kind: 'restart', node: id });
  }

  // ---------------------------------------------------------------- faults

  /** every node of the main cluster that has not stopped for good: current, blank or stale */
  private memberIds(): PeerId[] {
    const ids: PeerId[] = [];
    for (const [id, host] of this.hosts) if (id !== FOREIGN_ID && !host.halted) ids.push(id);
    return ids;
  }

  /** the leader of the main cluster's current lineage (stale leaders of an older one do not count) */
  private currentLeader(): SimHost | null {
    let best: SimHost | null = null;
    for (const host of this.hosts.values()) {
      if (host.core === null || host.core.currentRole !== 'leader' || this.lineageOf.get(host.id) !== this.mainLineage) continue;
      if (best === null || host.core.currentTerm > best.core!.currentTerm) best = host;
    }
    return best;
  }

  private chaos(): void {
    const r = this.rng;
    const ids = this.memberIds();
    const choice = r.int(13 + this.profile.crashWeight + this.profile.leaderCrashWeight);
    switch (choice) {
      case 0:
      case 1: {
        // symmetric partition into two sides
        const side = new Set(ids.filter(() => r.chance(0.5)));
        this.blocked.clear();
        for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
        this.stats.partitions++;
        this.note(`partition ${[...side].join(' ')} | ${ids.filter((id) => !side.has(id)).join(' ')}`);
        this.schedule({ time: this.now + r.between(50, 1500), seq: 0, kind: 'heal' });
        return;
      }
      case 2: {
        const a = r.pick(ids);
        const b = r.pick(ids);
        if (a === b) return;
        this.blocked.add(`${a}>${b}`);
        this.stats.partitions++;
        this.note(`one-way block ${a} > ${b}`);
        this.schedule({ time: this.now + r.between(50, 1500), seq: 0, kind: 'heal' });
        return;
      }
      case 3:
        this.blocked.clear();
        this.note('heal network');
        return;
      case 4: {
        const host = this.hosts.get(r.pick(ids))!;
        if (!host.alive) return;
        host.diskFull = true;
        this.note(`disk full on ${host.id}`);
        this.schedule({ time: this.now + r.between(20, 500), seq: 0, kind: 'disk-ok', node: host.id });
        return;
      }
      case 5: {
        const id = r.pick(ids);
        this.crashAfterPersistArmed.add(id);
        this.note(`armed a crash at the next write on ${id}`);
        return;
      }
      case 6: {
        const leader = this.currentLeader();
        if (leader === null) return;
        const target = r.chance(0.5) ? undefined : r.pick(ids);
        const result = leader.core!.transferLeadership(target);
        this.stats.transfers++;
        this.note(`transfer leadership ${leader.id} → ${target ?? '(most up to date)'}: ${result.ok ? `ok ${result.to}` : result.reason}`);
        this.settle(leader);
        return;
      }
      case 7:
        if (this.config.membership) this.membershipChange();
        return;
      case 8:
        if (this.foreign !== null) this.foreignChatter();
        return;
      case 9:
        if (this.config.membership) this.foreignJoin();
        return;
      case 10:
        if (this.config.recovery && this.recoveriesDone < this.profile.recoveries && r.chance(0.25)) this.recover();
        return;
      case 11:
      case 12:
        return; // a quiet spell
      default: {
        if (choice >= 13 + this.profile.crashWeight) {
          this.crashLeader();
          return;
        }
        const host = this.hosts.get(r.pick(ids))!;
        if (!host.alive) return;
        host.crash();
        this.stats.crashes++;
        this.note(`crash ${host.id}`);
        this.scheduleRestart(host.id);
        return;
      }
    }
  }

  /** leaders are where the interesting histories start: crash one mid-replication */
  private crashLeader(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    leader.crash();
    this.stats.crashes++;
    this.note(`crash leader ${leader.id}`);
    this.scheduleRestart(leader.id);
  }

  private membershipChange(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const core = leader.core!;
    const status = core.status();
    const members = status.membership.members;
    const learner = members.find((m) => !m.voter);
    const voters = members.filter((m) => m.voter);
    let next: Membership;
    let newNode: PeerId | null = null;
    let what: string;
    if (learner !== undefined) {
      const host = this.hosts.get(learner.nodeId);
      if (host?.alive && host.clusterId === null && host.joining === null) {
        // a blank learner that restarted before its first state forgot the offer: the cluster offers again
        this.handshake(leader, host, 'offer');
        return;
      }
      if ((status.progress[learner.nodeId]?.matchIndex ?? 0) < status.commit) return; // still catching up
      next = { members: members.map((m) => (m.nodeId === learner.nodeId ? { ...m, voter: true } : m)) };
      what = `promote ${learner.nodeId}`;
    } else if (voters.length > this.config.nodes) {
      const victim = this.rng.pick(voters);
      next = { members: members.filter((m) => m.nodeId !== victim.nodeId) };
      what = `remove ${victim.nodeId}`;
    } else {
      // bound the number of nodes a run creates (a recovery adds back a cluster's worth)
      if (this.hosts.size > this.config.nodes * (1 + this.recoveriesDone) + 6) return;
      newNode = `n${this.nextNodeNumber}`;
      // a blank node: the cluster offers, both ends apply the join rule, then the learner is proposed
      const host = this.addHost(newNode, null, blankRestore());
      this.nextNodeNumber++;
      if (!this.handshake(leader, host, 'offer')) throw new ViolationError('join rule', `blank ${newNode} was refused by ${leader.id}`);
      next = { members: [...members, { nodeId: newNode, name: newNode, voter: false }] };
      what = `add blank learner ${newNode}`;
      // a foreign node talks to the blank node while it joins: it must listen only to the cluster it joins
      if (this.foreign !== null && this.rng.chance(0.5)) this.foreignChatter(newNode);
    }
    if (!this.proposeConfig(leader, next, what) && newNode !== null) {
      // not proposed (a change is pending): the new node was never part of anything
      this.hosts.delete(newNode);
      this.lineageOf.delete(newNode);
      this.offeredBy.delete(newNode);
      this.checkedCommit.delete(newNode);
    }
  }

  private proposeConfig(leader: SimHost, next: Membership, what: string): boolean {
    const result = leader.core!.propose([{ type: 'config', data: next }]);
    this.note(`${leader.id}: ${what}: ${result.ok ? `proposed at ${result.firstIndex}` : result.reason}`);
    if (!result.ok) return false;
    this.stats.configChanges++;
    this.settle(leader);
    return true;
  }

  /**
   * The join handshake (offer from the cluster, or request from the node): both ends state cluster
   * id and generation and apply the join rule; a refusal is made at both ends. A blank node that
   * accepts remembers which cluster it is joining (and listens to that cluster only).
   */
  private handshake(member: SimHost, node: SimHost, kind: 'offer' | 'request'): boolean {
    const a = { name: member.id, clusterId: member.clusterId };
    const b = { name: node.id, clusterId: node.clusterId };
    const atNode = checkJoin(b, a);
    const atMember = checkJoin(a, b);
    if (atNode.allowed !== atMember.allowed) throw new ViolationError('join rule', `${kind} ${member.id} ↔ ${node.id}: allowed at one end only`);
    const sameCluster = member.clusterId !== null && member.clusterId === node.clusterId;
    const generationsDiffer = sameCluster && member.generation !== node.generation;
    const allowed = (atNode.allowed && !generationsDiffer) || this.config.bugs.joinSkipsRule === true;
    if (!allowed) {
      this.stats.joinsRefused++;
      const why = atNode.allowed ? `generation ${node.generation} vs ${member.generation} of ${member.clusterId}` : atNode.message;
      this.note(`${kind} ${member.id} ↔ ${node.id} refused at both ends: ${why}`);
      return false;
    }
    if (node.clusterId === null && member.clusterId !== null) {
      node.joining = { clusterId: member.clusterId, generation: member.generation };
      this.offeredBy.set(node.id, this.lineageOf.get(member.id)!);
      this.note(`${kind} ${member.id} → blank ${node.id} accepted: it joins ${member.clusterId} (generation ${member.generation})`);
    }
    return true;
  }

  /**
   * Nodes of another cluster, or of an older generation of this one, are offered or ask to join:
   * the handshake must refuse them at both ends, so they never become members.
   */
  private foreignJoin(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const stale = [...this.hosts.values()].filter(
      (h) => h.alive && h.id !== FOREIGN_ID && h.clusterId === MAIN_CLUSTER && this.lineageOf.get(h.id) !== this.mainLineage,
    );
    const r = this.rng;
    const candidates: SimHost[] = [...(this.foreign?.alive ? [this.foreign] : []), ...(stale.length > 0 ? [r.pick(stale)] : [])];
    if (candidates.length === 0) return;
    const node = r.pick(candidates);
    const kind = r.chance(0.5) ? 'offer' : 'request';
    if (!this.handshake(leader, node, kind)) return;
    const members = leader.core!.membership.members;
    if (members.some((m) => m.nodeId === node.id)) return;
    this.proposeConfig(leader, { members: [...members, { nodeId: node.id, name: node.id, voter: false }] }, `add learner ${node.id} (${node.clusterId} generation ${node.generation})`);
  }

  /**
   * Disaster recovery: the majority is lost. Every member but one survivor stops (they come back
   * later, stale); the survivor's store is made the sole voter under a new identity generation,
   * keeping what it had committed and discarding the rest; the cluster then adds blank nodes back.
   */
  private recover(): void {
    const lineage = this.mainLineage;
    const survivors = [...this.hosts.values()].filter(
      (h) => h.alive && this.lineageOf.get(h.id) === lineage && h.core!.membership.members.some((m) => m.nodeId === h.id && m.voter),
    );
    if (survivors.length === 0) return;
    const survivor = this.rng.pick(survivors);
    for (const host of this.hosts.values()) {
      if (host === survivor || !host.alive || this.lineageOf.get(host.id) !== lineage) continue;
      host.crash();
      this.stats.crashes++;
      this.schedule({ time: this.now + this.rng.between(200, 3000), seq: 0, kind: 'restart', node: host.id });
    }
    survivor.crash();
    this.mainGeneration++;
    const { commitPoint: keep } = survivor.recover(
      this.config.bugs.recoveryKeepsGeneration ? survivor.generation : this.mainGeneration,
      this.config.bugs.recoveryLosesCommitted ? 3 : 0,
    );
    const old = this.ghosts.get(lineage)!;
    const next = lineageKey(MAIN_CLUSTER, this.mainGeneration);
    this.ghosts.set(next, old.derive(keep));
    this.stats.discardedByRecovery += Math.max(0, old.commit - keep);
    this.setLineage(survivor.id, next);
    this.mainLineage = next;
    this.recoveriesDone++;
    this.stats.recoveries++;
    this.checkedMembership.clear();
    this.liveProposal = null;
    this.note(`RECOVERY: majority of ${lineage} lost; ${survivor.id} made sole voter of ${next}, keeping commit ${keep} (discarding ${Math.max(0, old.commit - keep)} committed above it)`);
    this.schedule({ time: this.now + this.rng.between(10, 100), seq: 0, kind: 'restart', node: survivor.id });
  }

  /** a node of another cluster addresses members, and blank nodes while they join; every such message must be dropped */
  private foreignChatter(target?: PeerId): void {
    const foreign = this.foreign!;
    const to = target ?? this.rng.pick(this.memberIds());
    const term = (foreign.core?.currentTerm ?? 1) + 100;
    const msg: RaftMessage = this.rng.chance(0.5)
      ? { type: 'heartbeat', from: FOREIGN_ID, to, term, commit: 0, context: null }
      : { type: 'vote', from: FOREIGN_ID, to, term, lastIndex: 1_000_000, lastTerm: term, transfer: true };
    this.note(`foreign ${FOREIGN_ID} (${FOREIGN_CLUSTER}) sends ${msg.type} to ${to}`);
    this.send({ clusterId: FOREIGN_CLUSTER, generation: 1, msg });
  }

  private healEverything(): void {
    this.faultsOn = false;
    this.blocked.clear();
    this.lagging = null;
    this.crashAfterPersistArmed.clear();
    this.note('--- heal every fault; liveness check begins ---');
    for (const host of this.hosts.values()) {
      host.diskFull = false;
      if (!host.alive && !host.halted) this.schedule({ time: this.now + 1, seq: 0, kind: 'restart', node: host.id });
    }
  }

  // ---------------------------------------------------------------- clients

  private client(): void {
    const r = this.rng;
    const leader = this.currentLeader();
    if (!this.faultsOn) {
      this.livenessClient(leader);
      return;
    }
    const ids = this.memberIds();
    const host = leader !== null && r.chance(0.8) ? leader : this.hosts.get(r.pick(ids))!;
    const core = host.core;
    if (core === null) return;
    const lineage = this.lineageOf.get(host.id) ?? null;
    if (lineage === null) return; // a blank node serves no clients
    if (r.chance(0.2)) {
      const requestId = `r${++this.requestSeq}`;
      this.readIssuedAt.set(requestId, { lineage, commit: this.ghosts.get(lineage)!.commit });
      core.readIndex(requestId);
      this.settle(host);
      return;
    }
    const count = r.between(1, 3);
    const items: Array<{ type: 'command'; data: KvCommand }> = [];
    for (let i = 0; i < count; i++) {
      const id = `p${++this.requestSeq}`;
      const data: KvCommand = { op: r.chance(0.9) ? 'put' : 'del', key: `k${r.int(8)}`, value: `v${this.requestSeq}`, id };
      if (this.profile.largeCommands && data.op === 'put' && !this.padToLargeValue(data)) continue;
      this.originOf.set(id, lineage);
      items.push({ type: 'command', data });
    }
    if (items.length === 0) return;
    const result = core.propose(items);
    if (result.ok) this.settle(host);
  }

  /**
   * Pad a put's value to a size up to a little beyond the largest command; false when the door
   * refuses it (as the member's propose() does: a command must travel alone in one message).
   */
  private padToLargeValue(data: KvCommand): boolean {
    const limit = wireLimits(this.profile.maxPayload).commandBytes;
    const target = this.sizeRng.between(0, Math.floor(limit * 1.05));
    data.value = `${data.value}:`.padEnd(target, 'x');
    if (jsonBytes(data) > limit) {
      this.stats.commandsTooLarge++;
      return false;
    }
    if (target > limit / 4) this.stats.largeCommands++;
    return true;
  }

  /** cut a follower off for seconds (it falls far behind), then let it catch up; and again later */
  private longLag(node: PeerId | null): void {
    const sr = this.sizeRng;
    if (node !== null) {
      if (this.lagging === node) this.lagging = null;
      this.note(`long lag of ${node} ends`);
      if (this.faultsOn) this.schedule({ time: this.now + sr.between(500, 3000), seq: 0, kind: 'lag', node: null });
      return;
    }
    if (!this.faultsOn) return;
    const leader = this.currentLeader();
    const followers = this.memberIds().filter((id) => id !== leader?.id);
    if (followers.length === 0 || this.lagging !== null) return;
    this.lagging = sr.pick(followers);
    this.stats.longLags++;
    this.note(`long lag: ${this.lagging} cut off`);
    this.schedule({ time: this.now + sr.between(1000, 4000), seq: 0, kind: 'lag', node: this.lagging });
  }

  /** the bus's max payload: a message over it could never be sent (NATS refuses it on every retry) */
  private checkMessageSize(envelope: Envelope): void {
    const msg = envelope.msg;
    // a snapshot's state streams in chunks of its own (actors/snapshotStream.ts): only its header counts
    let bytes = SIM_ENVELOPE_BYTES + 512;
    if (msg.type === 'append') for (const e of msg.entries) bytes += entryBytes(e) + 1;
    // the estimate above bounds the encoding from above; measure exactly only when it is near the limit
    if (bytes > this.profile.maxPayload / 2) bytes = SIM_ENVELOPE_BYTES + jsonBytes(msg);
    if (bytes > this.stats.largestMessage) this.stats.largestMessage = bytes;
    if (bytes > this.profile.maxPayload) {
      const detail = msg.type === 'append' ? ` (${msg.entries.length} entries after ${msg.prevIndex})` : '';
      throw new ViolationError('message size', `${msg.from} sent a ${msg.type} of ${bytes} bytes to ${msg.to}${detail}, over the bus's max payload of ${this.profile.maxPayload} bytes: it can never be sent`);
    }
  }

  private livenessClient(leader: SimHost | null): void {
    if (this.liveProposal !== null) {
      const owner = this.hosts.get(this.liveProposal.leader)!;
      if (owner.core === null || owner.core.currentRole !== 'leader') this.liveProposal = null;
      else if (owner.applied >= this.liveProposal.index) {
        if (this.ghosts.get(this.mainLineage)!.appliedKey[this.liveProposal.index] === this.liveProposal.id) {
          this.liveDone = true;
          this.note(`liveness: ${owner.id} committed ${this.liveProposal.id} at ${this.liveProposal.index}`);
        } else this.liveProposal = null;
      }
      return;
    }
    if (leader === null) return;
    const id = `live${++this.requestSeq}`;
    this.originOf.set(id, this.mainLineage);
    const result = leader.core!.propose([{ type: 'command', data: { op: 'put', key: 'live', value: id, id } }]);
    if (!result.ok) return;
    this.liveProposal = { id, index: result.firstIndex, leader: leader.id };
    this.settle(leader);
  }

  // ---------------------------------------------------------------- invariants

  private setLineage(id: PeerId, lineage: string | null): void {
    this.lineageOf.set(id, lineage);
    if (lineage === null) return;
    const history = this.lineageHistory.get(id);
    if (history === undefined) this.lineageHistory.set(id, [lineage]);
    else history.push(lineage);
  }

  private ghostOf(host: SimHost): Ghost | null {
    const lineage = this.lineageOf.get(host.id);
    return lineage == null ? null : this.ghosts.get(lineage)!;
  }

  /** a blank node wrote its first state: from now on it belongs to the lineage whose offer it accepted */
  private onAdopted(host: SimHost): void {
    const joined = this.offeredBy.get(host.id);
    if (joined === undefined) throw new ViolationError('one cluster id', `${host.id} adopted cluster ${host.clusterId} without having accepted any offer`);
    this.setLineage(host.id, joined);
    this.offeredBy.delete(host.id);
    this.checkedMembership.clear();
    this.stats.blankJoins++;
    this.note(`${host.id} adopts ${host.clusterId} (generation ${host.generation}) with its first state`);
  }

  private onPersisted(host: SimHost, entries: Entry[]): void {
    const ghost = this.ghostOf(host);
    if (entries.length === 0 || ghost === null) return;
    const lineage = this.lineageOf.get(host.id)!;
    const first = entries[0]!;
    // the term before the first new entry, from the store as it is now
    const store = host.store;
    const offset = store.snapshot?.meta.index ?? 0;
    let prevTerm = first.index - 1 === offset ? (store.snapshot?.meta.term ?? 0) : (store.entries[first.index - 2 - offset]?.term ?? -1);
    for (const entry of entries) {
      // no node holds state of two clusters (or of two generations of one)
      if (entry.type === 'command') {
        const origin = this.originOf.get((entry.data as KvCommand).id);
        if (origin !== lineage) {
          throw new ViolationError(origin !== undefined && clusterOfLineage(origin) === clusterOfLineage(lineage) ? 'stale generation fenced off' : 'one cluster id', `${host.id} of ${lineage} persisted ${describeEntry(entry)}, proposed in ${origin}`);
        }
      }
      const at = `${entry.term}:${entry.index}`;
      const key = entryKey(entry);
      const seen = ghost.entryAt.get(at);
      if (seen === undefined) ghost.entryAt.set(at, key);
      else if (seen !== key) {
        throw new ViolationError('log matching', `${host.id} persisted ${describeEntry(entry)} but another log holds ${seen} at ${at}`);
      }
      if (prevTerm >= 0) {
        const seenPrev = ghost.predecessorTerm.get(at);
        if (seenPrev === undefined) ghost.predecessorTerm.set(at, prevTerm);
        else if (seenPrev !== prevTerm) {
          throw new ViolationError('log matching', `${host.id}: entry ${at} follows term ${prevTerm}, elsewhere it follows term ${seenPrev}`);
        }
      }
      prevTerm = entry.term;
    }
  }

  private onApplied(host: SimHost, entry: Entry): void {
    const ghost = this.ghostOf(host);
    if (ghost === null) throw new ViolationError('one cluster id', `blank ${host.id} applied ${describeEntry(entry)}`);
    const key = entryKey(entry);
    const seen = ghost.appliedKey[entry.index];
    if (seen === undefined) {
      ghost.appliedKey[entry.index] = key;
      if (this.lineageOf.get(host.id) === this.mainLineage) this.stats.committed = Math.max(this.stats.committed, entry.index);
    } else if (seen !== key) {
      throw new ViolationError('state machine safety', `${host.id} applied ${describeEntry(entry)} at ${entry.index}, another node applied ${seen}`);
    }
  }

  private onReadServed(host: SimHost, requestId: string, index: number): void {
    this.stats.reads++;
    const issued = this.readIssuedAt.get(requestId);
    this.readIssuedAt.delete(requestId);
    if (issued !== undefined && issued.lineage === this.lineageOf.get(host.id) && index < issued.commit) {
      throw new ViolationError('linearizable read', `${host.id} served read ${requestId} at index ${index}, but ${issued.commit} was already committed when it was issued`);
    }
  }

  private checkInvariants(): void {
    for (const host of this.hosts.values()) {
      const core = host.core;
      if (core === null) continue;
      const lineage = this.lineageOf.get(host.id) ?? null;
      // the node's durable cluster id is the one of the lineage it belongs to (null while blank)
      if (host.clusterId !== (lineage === null ? null : clusterOfLineage(lineage))) {
        throw new ViolationError('one cluster id', `${host.id} holds cluster ${host.clusterId} but belongs to ${lineage ?? `nothing yet (joining ${this.offeredBy.get(host.id)})`}`);
      }
      if (lineage === null) continue; // blank: no state yet
      const ghost = this.ghosts.get(lineage)!;
      const term = core.currentTerm;
      const commit = core.commitIndex;
      const role = `${core.currentRole} term ${term}`;
      if (this.lastRole.get(host.id) !== role) {
        this.lastRole.set(host.id, role);
        this.note(`${host.id} is ${role}`);
      }
      // commit never goes back while the process lives
      const last = this.lastCommit.get(host.id) ?? 0;
      if (commit < last) throw new ViolationError('commit monotonic', `${host.id} commit went from ${last} to ${commit}`);
      this.lastCommit.set(host.id, commit);
      if (core.currentRole === 'leader') {
        this.checkElectionSafety(host.id, term);
        if (this.leaderSeen.get(host.id) !== term) {
          this.leaderSeen.set(host.id, term);
          if (lineage === this.mainLineage) this.stats.elections++;
          this.checkLeaderCompleteness(host, ghost, term);
        }
      }
      // committed prefixes agree: what this node commits is what every other node of its lineage committed
      let checked = this.checkedCommit.get(host.id) ?? 0;
      while (checked < commit) {
        checked++;
        const t = core.termAt(checked);
        if (t < 0) continue; // inside its snapshot
        if (checked <= ghost.commit) {
          if (ghost.committedTerm[checked] !== t) {
            throw new ViolationError('committed entries never lost', `${host.id} commits index ${checked} with term ${t}, but term ${ghost.committedTerm[checked]} was committed there in ${lineage}`);
          }
        } else {
          if (checked !== ghost.commit + 1) continue;
          ghost.committedTerm[checked] = t;
          ghost.committedInTerm[checked] = term;
          ghost.commit = checked;
        }
      }
      this.checkedCommit.set(host.id, checked);
      // the join rule among members: a node follows only a leader of its own lineage (or one that was,
      // before a recovery moved it on: a stale member may have heard from it before) …
      if (core.leader !== null && this.lineageOf.get(core.leader) !== lineage && !this.lineageHistory.get(core.leader)?.includes(lineage)) {
        throw new ViolationError('one cluster id', `${host.id} of ${lineage} follows ${core.leader} of ${this.lineageOf.get(core.leader) ?? 'no cluster'}`);
      }
      // … and every member of a cluster (as it is now) holds that cluster's id, or is blank and joining it
      if (lineage === this.mainLineage || lineage === this.foreignLineage) {
        const membership = core.membership;
        if (this.checkedMembership.get(host.id) !== membership) {
          for (const member of membership.members) {
            const theirs = this.lineageOf.get(member.nodeId) ?? null;
            if (theirs === lineage || (theirs === null && this.offeredBy.get(member.nodeId) === lineage)) continue;
            throw new ViolationError(
              theirs !== null && clusterOfLineage(theirs) === clusterOfLineage(lineage) ? 'stale generation fenced off' : 'one cluster id',
              `${host.id} of ${lineage} counts ${member.nodeId} as a ${member.voter ? 'voter' : 'learner'}, but ${member.nodeId} belongs to ${theirs ?? `nothing (blank, joining ${this.offeredBy.get(member.nodeId) ?? 'nothing'})`}`,
            );
          }
          this.checkedMembership.set(host.id, membership);
        }
      }
    }
  }

  /** election safety: at most one leader per term in each lineage (also seen in Readies, so a leader that crashes within its first step counts) */
  private checkElectionSafety(id: PeerId, term: number): void {
    const lineage = this.lineageOf.get(id);
    if (lineage == null) throw new ViolationError('one cluster id', `blank ${id} became leader of term ${term}`);
    const leaderOfTerm = this.ghosts.get(lineage)!.leaderOfTerm;
    const other = leaderOfTerm.get(term);
    if (other === undefined) leaderOfTerm.set(term, id);
    else if (other !== id) throw new ViolationError('election safety', `two leaders in term ${term} of ${lineage}: ${other} and ${id}`);
  }

  /** leader completeness (§5.4): every entry committed in an earlier term is in the new leader's log */
  private checkLeaderCompleteness(host: SimHost, ghost: Ghost, term: number): void {
    const core = host.core!;
    for (let i = core.snapshotIndex + 1; i <= ghost.commit; i++) {
      if (ghost.committedInTerm[i]! >= term) continue;
      if (core.termAt(i) !== ghost.committedTerm[i]) {
        throw new ViolationError(
          'leader completeness',
          `${host.id} became leader of term ${term} without committed entry ${ghost.committedTerm[i]}:${i} (its log has term ${core.termAt(i)} there)`,
        );
      }
    }
  }

  private checkFinalCompleteness(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const core = leader.core!;
    const ghost = this.ghosts.get(this.mainLineage)!;
    for (let i = core.snapshotIndex + 1; i <= ghost.commit; i++) {
      if (core.termAt(i) !== ghost.committedTerm[i]) {
        throw new ViolationError('committed entries never lost', `final leader ${leader.id} lacks committed entry ${ghost.committedTerm[i]}:${i}`);
      }
    }
  }

  // ---------------------------------------------------------------- trace

  private record(event: SimEvent): void {
    const size = this.config.traceSize;
    const slot = this.traceAt++ % size;
    const record = this.trace[slot];
    if (record === undefined) this.trace[slot] = { step: this.step, time: this.now, text: null, event };
    else {
      record.step = this.step;
      record.time = this.now;
      record.text = null;
      record.event = event;
    }
  }

  private note(text: string): void {
    const size = this.config.traceSize;
    const slot = this.traceAt++ % size;
    this.trace[slot] = { step: this.step, time: this.now, text, event: null };
  }

  private formatTrace(): string[] {
    const size = this.config.traceSize;
    const lines: string[] = [];
    const start = Math.max(0, this.traceAt - size);
    for (let i = start; i < this.traceAt; i++) {
      const record = this.trace[i % size]!;
      const text = record.text ?? describeEvent(record.event!);
      lines.push(`#${record.step} t=${record.time}ms ${text}`);
    }
    if (this.current?.kind === 'tick') lines.push(`#${this.step} t=${this.now}ms ${describeEvent(this.current)}  ← during this step`);
    return lines;
  }

  private describeNodes(): string {
    const rows: string[] = [];
    for (const host of this.hosts.values()) {
      const core = host.core;
      const lineage = this.lineageOf.get(host.id) ?? 'blank';
      if (core === null) rows.push(`  ${host.id} (${lineage}): ${host.halted ? 'halted' : 'crashed'}`);
      else rows.push(`  ${host.id} (${lineage}): ${core.currentRole} term=${core.currentTerm} leader=${core.leader ?? '-'} commit=${core.commitIndex} last=${core.lastIndex}`);
    }
    return rows.join('\n');
  }
}

function entryKey(entry: Entry): string {
  if (entry.type === 'command') return (entry.data as KvCommand).id;
  if (entry.type === 'noop') return 'noop';
  return `${entry.type}:${JSON.stringify(entry.data)}`;
}

function describeEntry(entry: Entry): string {
  return `${entry.term}:${entry.index} ${entry.type === 'command' ? (entry.data as KvCommand).id : entry.type}`;
}

export function describeMessage(m: RaftMessage): string {
  const head = `${m.from}→${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'vote':
    case 'pre-vote':
      return `${head} last=${m.lastTerm}:${m.lastIndex}${m.transfer ? ' transfer' : ''}`;
    case 'vote-response':
    case 'pre-vote-response':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'append':
      return `${head} prev=${m.prevTerm}:${m.prevIndex} entries=[${m.entries.map((e) => `${e.term}:${e.index}`).join(' ')}] commit=${m.commit}`;
    case 'append-response':
      return m.reject ? `${head} reject ${m.index} hint=${m.hintTerm}:${m.rejectHint}` : `${head} ok ${m.index}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.context === null ? '' : ` ctx=${m.context}`}`;
    case 'heartbeat-response':
      return `${head}${m.context === null ? '' : ` ctx=${m.context}`}`;
    case 'snapshot':
      return `${head} snapshot=${m.snapshot.term}:${m.snapshot.index}`;
    case 'timeout-now':
      return head;
  }
}

function describeEvent(event: SimEvent): string {
  switch (event.kind) {
    case 'tick':
      return `tick ${event.node}`;
    case 'deliver':
      return `deliver ${describeMessage(event.envelope.msg)}`;
    case 'restart':
      return `restart ${event.node}`;
    case 'disk-ok':
      return `disk ok on ${event.node}`;
    case 'stale-notice':
      return `${event.from} tells ${event.node}: ${event.clusterId} is at generation ${event.generation}`;
    default:
      return event.kind;
  }
}

/** `replayFlags`: the options beyond seed and nodes that the run used (hooks, profile, steps) */
export function formatViolation(v: Violation, replayFlags = ''): string {
  return [
    `VIOLATION of ${v.invariant} — seed ${v.seed}, ${v.nodes} nodes, step ${v.step}, t=${v.time}ms`,
    v.message,
    `last ${v.trace.length} events:`,
    ...v.trace.map((line) => `  ${line}`),
    `replay: npm run sim -- --seed ${v.seed} --nodes ${v.nodes}${replayFlags}`,
  ].join('\n');
}
