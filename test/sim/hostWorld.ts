// The simulation as the hosts' members reach it (HostWorld): their raft cores (observed), their
// stores' writes (faults armed by the seed), and what they report when they stop or refuse.
import type { RaftCoreOptions } from '../../machines/raft/core.ts';
import type { RaftTiming } from '../../runtime/config/config.ts';
import type { MemberRuntimeOptions } from '../../actors/memberTypes.ts';
import type { ControllerTestFaults } from '../../actors/controller/context.ts';
import type { JoinAccepted } from '../../machines/bootstrap/machine.ts';
import type { Scheduler } from './clock.ts';
import { ViolationError } from './config.ts';
import { clusterOfLineage, lineageKey } from './ghost.ts';
import type { HostWorld, SimHost } from './host.ts';
import { ObservedCore } from './observedCore.ts';
import { foreignChatter } from './scenarios.ts';
import type { Simulation } from './simulator.ts';
import { CRASHED, losePower, type WriteHooks } from './store.ts';

/** a disk-full write: it fails, and the member halts (nothing that depended on it is sent) */
class DiskFull extends Error {}

export class SimHostWorld implements HostWorld {
  readonly testFaults: MemberRuntimeOptions['testFaults'];
  readonly controllerFaults: ControllerTestFaults;

  constructor(private readonly sim: Simulation) {
    const bugs = sim.config.bugs;
    this.testFaults = {
      sendBeforePersist: bugs.sendBeforePersist === true,
      skipJoinRule: bugs.inboundSkipsJoinRule === true,
      forwardIgnoresLeaderLoss: bugs.forwardIgnoresLeaderLoss === true,
      forwardLossSaysNotApplied: bugs.forwardLossSaysNotApplied === true,
      forwardRetriesOnNewLeader: bugs.forwardRetriesOnNewLeader === true,
    };
    this.controllerFaults = { removalNoticeBeforeCommit: bugs.removalNoticeBeforeCommit === true, joinSkipsRule: bugs.joinSkipsRule === true };
  }

  get prefix(): string {
    return this.sim.prefix;
  }
  get timing(): RaftTiming {
    return this.sim.timing;
  }
  get maxPayload(): number {
    return this.sim.maxPayload;
  }
  get scheduler(): Scheduler {
    return this.sim;
  }
  get network() {
    return this.sim.network;
  }
  get random(): () => number {
    return this.sim.random;
  }

  makeCore(host: SimHost, options: RaftCoreOptions): ObservedCore {
    const p = this.sim.profile;
    return new ObservedCore(
      {
        ...options,
        preVote: p.preVote,
        checkQuorum: p.checkQuorum,
        ...(this.sim.config.bugs.appendsIgnoreBytes ? { maxBytesPerMessage: undefined } : {}),
        testHooks: host === this.sim.foreign ? {} : (this.sim.config.testHooks ?? {}),
      },
      {
        ready: (rd) => this.sim.guard(() => this.sim.invariants.onReady(host, rd)),
        step: (m) => this.sim.guard(() => this.sim.invariants.onStep(host, m, this.sim.deliveringLineage)),
        advanced: (rd) => this.sim.guard(() => {
          for (const e of rd.committed) this.sim.invariants.onApplied(host, e);
        }),
        failed: (err) => this.sim.fail(err),
      },
    );
  }

  writeHooks(host: SimHost): WriteHooks {
    return {
      before: () => {
        if (host.diskFull) throw new DiskFull(`${host.name}: disk full`);
        // half the armed crashes hit during the write (lost), half after it (durable, nothing sent yet)
        if (this.sim.crashArmed.has(host.id) && this.sim.crashRng.chance(0.5)) this.crashAtWrite(host, 'while writing: the write is lost');
      },
      after: () => {
        if (this.sim.crashArmed.has(host.id)) this.crashAtWrite(host, 'after persisting, before sending');
      },
      persisted: (entries, prevTerm) => this.sim.guard(() => this.sim.invariants.onPersisted(host, entries, prevTerm)),
      adopted: () => this.sim.guard(() => this.sim.invariants.onAdopted(host)),
      compacted: () => {
        this.sim.stats.compactions++;
      },
      installed: () => {
        this.sim.stats.snapshotsInstalled++;
      },
      stateWritten: (carried) => {
        if (carried) this.sim.stats.stateWritesCarried++;
        else this.sim.stats.stateWritesAlone++;
      },
    };
  }

  private crashAtWrite(host: SimHost, when: string): never {
    this.sim.crashArmed.delete(host.id);
    this.sim.stats.crashes++;
    // every third crash is the machine's (power lost: the applies not yet durable are undone), the
    // others the process's; counted, not drawn, so that each seed's random streams stay as they were
    const powerLoss = this.sim.stats.crashes % 3 === 0;
    this.sim.note(`${host.name} crashes ${when}${powerLoss ? '; the power is lost with it' : ''}`);
    host.crash();
    if (powerLoss) {
      this.sim.stats.powerLosses++;
      this.sim.stats.appliesUndone += losePower(host.disk);
    }
    this.sim.scheduleRestart(host.id);
    throw CRASHED;
  }

  fatal(host: SimHost, err: unknown): void {
    if (err === CRASHED) return;
    host.crash();
    if (err instanceof DiskFull) {
      this.sim.stats.diskFullCrashes++;
      this.sim.note(`${host.name} stops: disk full on write`);
      this.sim.scheduleRestart(host.id);
      return;
    }
    if ((err as { code?: string }).code === 'STALE_GENERATION') {
      host.halted = true;
      this.sim.stats.staleHalted++;
      this.sim.note(`${host.name} (generation ${host.generation}) halts: ${(err as Error).message}`);
      return;
    }
    this.sim.fail(new ViolationError('member stopped', `${host.name} stopped: ${(err as Error).stack ?? String(err)}`));
  }

  removed(host: SimHost): void {
    this.sim.note(`${host.name} learns it was removed; it stops for good`);
    this.sim.invariants.leftRemoved(host);
    this.sim.stats.leftRemoved++;
    host.crash();
    host.halted = true;
  }

  accepted(host: SimHost, join: JoinAccepted): void {
    const leader = this.sim.nodeIdOf(join.leader);
    const current = leader === null ? undefined : this.sim.lineageOf.get(leader);
    if (leader === null || current == null) {
      this.sim.fail(new ViolationError('join rule', `${host.name} accepted an offer of ${join.leader}, which belongs to no cluster the simulation knows`));
      return;
    }
    // the lineage the offer was made in: its leader may have been recovered into a newer generation
    // since it sent it (seed 114387: the node then joins the generation the offer names, not the leader's new one)
    const lineage = join.generation === undefined ? current : lineageKey(clusterOfLineage(current), join.generation);
    if (!(this.sim.lineageHistory.get(leader) ?? []).includes(lineage)) {
      this.sim.fail(new ViolationError('join rule', `${host.name} accepted an offer of ${join.leader} for ${lineage}, a lineage that leader never belonged to`));
      return;
    }
    host.joining = { clusterId: join.clusterId, generation: join.generation };
    this.sim.offeredBy.set(host.id, lineage);
    this.sim.note(`${host.name} accepted the offer of ${join.leader}: it joins ${lineage}`);
    host.start();
    // a foreign node talks to the blank node while it joins: it must listen only to the cluster it joins
    if (this.sim.foreign !== null && this.sim.rng.chance(0.5)) foreignChatter(this.sim, host.id);
  }

  refused(host: SimHost, refusal: { reason: string; from: string; message: string }): void {
    if (refusal.reason === 'foreign-cluster') this.sim.stats.foreignDropped++;
    else if (refusal.reason === 'stale-generation') this.sim.stats.staleDropped++;
    // the handshakes' refusals, at each end (an auto-join admission's offer runs out of the simulator's sight)
    else if (refusal.reason === 'join-offer' || refusal.reason === 'auto-join') this.sim.note(`${host.name} reports a refused ${refusal.reason} (${refusal.from}): ${refusal.message}`);
  }
}
