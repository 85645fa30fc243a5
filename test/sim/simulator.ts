// Deterministic simulation of a raft cluster: one seed drives the clock, the network, the faults,
// the clients and every core's randomness. Invariants are checked after every step; a violation
// carries the seed and a readable trace, and the same seed replays it exactly.
import { blankRestore, bootstrapRestore, RaftCore, type RaftRestore, type RaftTestHooks } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Entry, Member, Membership, PeerId } from '../../machines/raft/types.ts';
import { EventHeap } from './heap.ts';
import { type Envelope, type HostObserver, type KvCommand, SimHost } from './host.ts';
import { Prng } from './prng.ts';

export interface SimConfig {
  seed: number;
  nodes: number;
  /** events processed before the faults are healed and liveness is checked */
  steps: number;
  testHooks?: RaftTestHooks;
  /** add learner → promote → remove cycles (default true) */
  membership?: boolean;
  /** a node of another cluster that talks to members (default true) */
  foreign?: boolean;
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
}

export interface SimResult {
  seed: number;
  nodes: number;
  violation: Violation | null;
  stats: SimStats;
}

const TICK_MS = 10;
const MAIN_CLUSTER = 'cluster-main';
const FOREIGN_CLUSTER = 'cluster-foreign';
const FOREIGN_ID = 'x1';

type SimEvent =
  | { time: number; seq: number; kind: 'tick'; node: PeerId }
  | { time: number; seq: number; kind: 'deliver'; envelope: Envelope }
  | { time: number; seq: number; kind: 'chaos' }
  | { time: number; seq: number; kind: 'client' }
  | { time: number; seq: number; kind: 'restart'; node: PeerId }
  | { time: number; seq: number; kind: 'disk-ok'; node: PeerId }
  | { time: number; seq: number; kind: 'heal' };

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
}

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
  private readonly config: Required<Omit<SimConfig, 'testHooks' | 'profile'>> & { testHooks: RaftTestHooks };
  private readonly profile: SimProfile;
  private readonly heap = new EventHeap<SimEvent>();
  private seq = 0;
  private now = 0;
  private step = 0;
  private readonly hosts = new Map<PeerId, SimHost>();
  private readonly clusterOf = new Map<PeerId, string>();
  private foreign: SimHost | null = null;
  private nextNodeNumber: number;
  private faultsOn = true;

  // network faults
  private readonly blocked = new Set<string>();
  private readonly crashAfterPersistArmed = new Set<PeerId>();

  // ghost state for the invariants
  private readonly leaderOfTerm = new Map<number, PeerId>();
  private readonly entryAt = new Map<string, string>();
  private readonly predecessorTerm = new Map<string, number>();
  private readonly committedTerm: number[] = [0];
  private readonly committedInTerm: number[] = [0];
  private readonly appliedKey: Array<string | undefined> = [];
  private ghostCommit = 0;
  private readonly checkedCommit = new Map<PeerId, number>();
  private readonly leaderSeen = new Map<PeerId, number>();
  private readonly readIssuedAt = new Map<string, number>();
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
  };

  private readonly observer: HostObserver = {
    softState: (host, soft) => {
      if (soft.role === 'leader' && host.clusterId === MAIN_CLUSTER) this.checkElectionSafety(host.id, soft.term);
    },
    persisted: (host, rd) => this.onPersisted(host, rd.entries),
    applied: (host, entry) => this.onApplied(host, entry),
    readServed: (host, requestId, index) => this.onReadServed(host, requestId, index),
    readFailed: () => {},
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
      traceSize: 50,
      livenessMs: 5000,
      testHooks: {},
      ...config,
    };
    this.rng = new Prng(config.seed);
    const r = this.rng;
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
      while (!this.liveDone) {
        if (this.now > deadline) {
          throw new ViolationError('liveness', `no leader committed a fresh proposal within ${this.config.livenessMs} ms of healing every fault\n${this.describeNodes()}`);
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
      maxInflight: this.profile.maxInflight,
      restore,
      testHooks: id === FOREIGN_ID ? {} : this.config.testHooks,
    });

  private setup(): void {
    const members: Member[] = [];
    for (let i = 1; i <= this.config.nodes; i++) members.push({ nodeId: `n${i}`, name: `n${i}`, voter: true });
    for (const member of members) this.addHost(member.nodeId, MAIN_CLUSTER, bootstrapRestore({ members }));
    this.committedTerm[1] = 1;
    this.committedInTerm[1] = 1;
    this.ghostCommit = 1;
    if (this.config.foreign) {
      this.foreign = this.addHost(FOREIGN_ID, FOREIGN_CLUSTER, bootstrapRestore({ members: [{ nodeId: FOREIGN_ID, name: 'x1', voter: true }] }));
    }
    this.schedule({ time: this.rng.between(20, 100), seq: 0, kind: 'chaos' });
    this.schedule({ time: this.rng.between(1, 30), seq: 0, kind: 'client' });
  }

  private addHost(id: PeerId, clusterId: string, restore: RaftRestore): SimHost {
    const host = new SimHost(id, clusterId, restore, this.makeCore);
    this.hosts.set(id, host);
    this.clusterOf.set(id, clusterId);
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
        if (host === undefined || host.alive) break;
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
    if (host === undefined || host.core === null || this.blocked.has(`${msg.from}>${msg.to}`)) {
      this.stats.dropped++;
      return;
    }
    // the join rule on every peer message: a different cluster id is dropped, never processed
    if (envelope.clusterId !== host.clusterId) {
      this.stats.foreignDropped++;
      return;
    }
    if (this.clusterOf.get(msg.from) !== host.clusterId) {
      throw new ViolationError('one cluster id', `${host.id} (${host.clusterId}) accepted a message from ${msg.from} of ${this.clusterOf.get(msg.from)}`);
    }
    this.stats.delivered++;
    host.receive(envelope);
    this.settle(host);
  }

  private scheduleRestart(id: PeerId): void {
    this.schedule({ time: this.now + this.rng.between(20, 600), seq: 0, kind: 'restart', node: id });
  }

  // ---------------------------------------------------------------- faults

  private memberIds(): PeerId[] {
    const ids: PeerId[] = [];
    for (const id of this.hosts.keys()) if (id !== FOREIGN_ID) ids.push(id);
    return ids;
  }

  private currentLeader(): SimHost | null {
    let best: SimHost | null = null;
    for (const host of this.hosts.values()) {
      if (host.id === FOREIGN_ID || host.core === null || host.core.currentRole !== 'leader') continue;
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
        this.note(`armed crash-after-persist on ${id}`);
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
      case 10:
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
      if ((status.progress[learner.nodeId]?.matchIndex ?? 0) < status.commit) return; // still catching up
      next = { members: members.map((m) => (m.nodeId === learner.nodeId ? { ...m, voter: true } : m)) };
      what = `promote ${learner.nodeId}`;
    } else if (voters.length > this.config.nodes) {
      const victim = this.rng.pick(voters);
      next = { members: members.filter((m) => m.nodeId !== victim.nodeId) };
      what = `remove ${victim.nodeId}`;
    } else {
      if (this.hosts.size > this.config.nodes + 6) return; // bound the number of nodes a run creates
      newNode = `n${this.nextNodeNumber}`;
      next = { members: [...members, { nodeId: newNode, name: newNode, voter: false }] };
      what = `add learner ${newNode}`;
    }
    const result = core.propose([{ type: 'config', data: next }]);
    this.note(`${leader.id}: ${what}: ${result.ok ? `proposed at ${result.firstIndex}` : result.reason}`);
    if (!result.ok) return;
    this.stats.configChanges++;
    if (newNode !== null) {
      this.nextNodeNumber++;
      this.addHost(newNode, MAIN_CLUSTER, blankRestore());
    }
    this.settle(leader);
  }

  /** a node of another cluster addresses members; every such message must be dropped */
  private foreignChatter(): void {
    const foreign = this.foreign!;
    const to = this.rng.pick(this.memberIds());
    const term = (foreign.core?.currentTerm ?? 1) + 100;
    const msg: RaftMessage = this.rng.chance(0.5)
      ? { type: 'heartbeat', from: FOREIGN_ID, to, term, commit: 0, context: null }
      : { type: 'vote', from: FOREIGN_ID, to, term, lastIndex: 1_000_000, lastTerm: term, transfer: true };
    this.note(`foreign ${FOREIGN_ID} (${FOREIGN_CLUSTER}) sends ${msg.type} to ${to}`);
    this.send({ clusterId: FOREIGN_CLUSTER, msg });
  }

  private healEverything(): void {
    this.faultsOn = false;
    this.blocked.clear();
    this.crashAfterPersistArmed.clear();
    this.note('--- heal every fault; liveness check begins ---');
    for (const host of this.hosts.values()) {
      host.diskFull = false;
      if (!host.alive) this.schedule({ time: this.now + 1, seq: 0, kind: 'restart', node: host.id });
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
    if (r.chance(0.2)) {
      const requestId = `r${++this.requestSeq}`;
      this.readIssuedAt.set(requestId, this.ghostCommit);
      core.readIndex(requestId);
      this.settle(host);
      return;
    }
    const count = r.between(1, 3);
    const items: Array<{ type: 'command'; data: KvCommand }> = [];
    for (let i = 0; i < count; i++) {
      items.push({ type: 'command', data: { op: r.chance(0.9) ? 'put' : 'del', key: `k${r.int(8)}`, value: `v${this.requestSeq}`, id: `p${++this.requestSeq}` } });
    }
    const result = core.propose(items);
    if (result.ok) this.settle(host);
  }

  private livenessClient(leader: SimHost | null): void {
    if (this.liveProposal !== null) {
      const owner = this.hosts.get(this.liveProposal.leader)!;
      if (owner.core === null || owner.core.currentRole !== 'leader') this.liveProposal = null;
      else if (owner.applied >= this.liveProposal.index) {
        if (this.appliedKey[this.liveProposal.index] === this.liveProposal.id) {
          this.liveDone = true;
          this.note(`liveness: ${owner.id} committed ${this.liveProposal.id} at ${this.liveProposal.index}`);
        } else this.liveProposal = null;
      }
      return;
    }
    if (leader === null) return;
    const id = `live${++this.requestSeq}`;
    const result = leader.core!.propose([{ type: 'command', data: { op: 'put', key: 'live', value: id, id } }]);
    if (!result.ok) return;
    this.liveProposal = { id, index: result.firstIndex, leader: leader.id };
    this.settle(leader);
  }

  // ---------------------------------------------------------------- invariants

  private onPersisted(host: SimHost, entries: Entry[]): void {
    if (entries.length === 0 || host.clusterId !== MAIN_CLUSTER) return;
    const first = entries[0]!;
    // the term before the first new entry, from the store as it is now
    const store = host.store;
    const offset = store.snapshot?.meta.index ?? 0;
    let prevTerm = first.index - 1 === offset ? (store.snapshot?.meta.term ?? 0) : (store.entries[first.index - 2 - offset]?.term ?? -1);
    for (const entry of entries) {
      const at = `${entry.term}:${entry.index}`;
      const key = entryKey(entry);
      const seen = this.entryAt.get(at);
      if (seen === undefined) this.entryAt.set(at, key);
      else if (seen !== key) {
        throw new ViolationError('log matching', `${host.id} persisted ${describeEntry(entry)} but another log holds ${seen} at ${at}`);
      }
      if (prevTerm >= 0) {
        const seenPrev = this.predecessorTerm.get(at);
        if (seenPrev === undefined) this.predecessorTerm.set(at, prevTerm);
        else if (seenPrev !== prevTerm) {
          throw new ViolationError('log matching', `${host.id}: entry ${at} follows term ${prevTerm}, elsewhere it follows term ${seenPrev}`);
        }
      }
      prevTerm = entry.term;
    }
  }

  private onApplied(host: SimHost, entry: Entry): void {
    if (host.clusterId !== MAIN_CLUSTER) return;
    const key = entryKey(entry);
    const seen = this.appliedKey[entry.index];
    if (seen === undefined) {
      this.appliedKey[entry.index] = key;
      this.stats.committed = Math.max(this.stats.committed, entry.index);
    } else if (seen !== key) {
      throw new ViolationError('state machine safety', `${host.id} applied ${describeEntry(entry)} at ${entry.index}, another node applied ${seen}`);
    }
  }

  private onReadServed(host: SimHost, requestId: string, index: number): void {
    this.stats.reads++;
    const issuedAt = this.readIssuedAt.get(requestId);
    this.readIssuedAt.delete(requestId);
    if (issuedAt !== undefined && index < issuedAt) {
      throw new ViolationError('linearizable read', `${host.id} served read ${requestId} at index ${index}, but ${issuedAt} was already committed when it was issued`);
    }
  }

  private checkInvariants(): void {
    for (const host of this.hosts.values()) {
      const core = host.core;
      if (core === null) continue;
      if (host.id === FOREIGN_ID) {
        if (core.leader !== null && core.leader !== FOREIGN_ID) throw new ViolationError('one cluster id', `foreign node follows ${core.leader}`);
        continue;
      }
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
          this.stats.elections++;
          this.checkLeaderCompleteness(host, term);
        }
      }
      // committed prefixes agree: what this node commits is what every other node committed
      let checked = this.checkedCommit.get(host.id) ?? 0;
      while (checked < commit) {
        checked++;
        const t = core.termAt(checked);
        if (t < 0) continue; // inside its snapshot
        if (checked <= this.ghostCommit) {
          if (this.committedTerm[checked] !== t) {
            throw new ViolationError('committed entries never lost', `${host.id} commits index ${checked} with term ${t}, but term ${this.committedTerm[checked]} was committed there`);
          }
        } else {
          if (checked !== this.ghostCommit + 1) continue;
          this.committedTerm[checked] = t;
          this.committedInTerm[checked] = term;
          this.ghostCommit = checked;
        }
      }
      this.checkedCommit.set(host.id, checked);
      // the join rule among members: one cluster id across leader and configuration
      if (core.leader !== null && this.clusterOf.get(core.leader) !== host.clusterId) {
        throw new ViolationError('one cluster id', `${host.id} of ${host.clusterId} follows ${core.leader} of ${this.clusterOf.get(core.leader)}`);
      }
    }
  }

  /** election safety: at most one leader per term (also seen in Readies, so a leader that crashes within its first step counts) */
  private checkElectionSafety(id: PeerId, term: number): void {
    const other = this.leaderOfTerm.get(term);
    if (other === undefined) this.leaderOfTerm.set(term, id);
    else if (other !== id) throw new ViolationError('election safety', `two leaders in term ${term}: ${other} and ${id}`);
  }

  /** leader completeness (§5.4): every entry committed in an earlier term is in the new leader's log */
  private checkLeaderCompleteness(host: SimHost, term: number): void {
    const core = host.core!;
    for (let i = core.snapshotIndex + 1; i <= this.ghostCommit; i++) {
      if (this.committedInTerm[i]! >= term) continue;
      if (core.termAt(i) !== this.committedTerm[i]) {
        throw new ViolationError(
          'leader completeness',
          `${host.id} became leader of term ${term} without committed entry ${this.committedTerm[i]}:${i} (its log has term ${core.termAt(i)} there)`,
        );
      }
    }
    for (const member of core.status().membership.members) {
      if (this.clusterOf.get(member.nodeId) !== host.clusterId) {
        throw new ViolationError('one cluster id', `${host.id} counts ${member.nodeId} of another cluster as a member`);
      }
    }
  }

  private checkFinalCompleteness(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const core = leader.core!;
    for (let i = core.snapshotIndex + 1; i <= this.ghostCommit; i++) {
      if (core.termAt(i) !== this.committedTerm[i]) {
        throw new ViolationError('committed entries never lost', `final leader ${leader.id} lacks committed entry ${this.committedTerm[i]}:${i}`);
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
      if (core === null) rows.push(`  ${host.id}: crashed`);
      else rows.push(`  ${host.id}: ${core.currentRole} term=${core.currentTerm} leader=${core.leader ?? '-'} commit=${core.commitIndex} last=${core.lastIndex}`);
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
