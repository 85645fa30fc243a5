// What a simulation run is given (seed, size, planted bugs, fault profile) and what it reports.
import type { RaftTestHooks } from '../../machines/raft/core.ts';
import type { Prng } from './prng.ts';

/**
 * Deliberate bugs, to prove the invariants catch them, each switched on in the real code the
 * simulator runs: the controller's parts through their test-only switches (ControllerTestFaults in
 * actors/controller/context.ts: joinSkipsRule, removalNoticeBeforeCommit), the recovery plan
 * `conclave recover` follows (RecoveryFaults in runtime/store/recoveryPlan.ts), the member through
 * MemberRuntimeOptions.testFaults, the raft core through its options.
 */
export interface SimBugs {
  /** the controller skips the join rule wherever it checks it — the leader admitting an auto-join request or taking a join offer's answer, the node deciding on an offer: a node of another cluster can be added */
  joinSkipsRule?: boolean;
  /** recovery keeps the old identity generation: stale members are not fenced off */
  recoveryKeepsGeneration?: boolean;
  /** recovery keeps the survivor's state only up to a little below its commit point */
  recoveryLosesCommitted?: boolean;
  /** appends are batched by entry count only, as before issue 17 (no byte budget): large entries overflow a message */
  appendsIgnoreBytes?: boolean;
  /** the member's ready loop (actors/readyLoop.ts) sends every message before persisting what it depends on */
  sendBeforePersist?: boolean;
  /** the member's inbound filter (actors/inbound.ts) skips the join rule: raft traffic of another cluster reaches the core */
  inboundSkipsJoinRule?: boolean;
  /** the member's forwarding (actors/forwarding.ts) waits out the full timeout on a leader its node no longer follows */
  forwardIgnoresLeaderLoss?: boolean;
  /** the member's forwarding answers a write abandoned with its leader NO_LEADER (not applied), not OUTCOME_UNKNOWN */
  forwardLossSaysNotApplied?: boolean;
  /** the member's forwarding sends a write abandoned because leadership moved again, to the new leader */
  forwardRetriesOnNewLeader?: boolean;
  /** the leader's membership operations (actors/controller/membership.ts) tell a node it was removed as the removal is proposed, before it commits */
  removalNoticeBeforeCommit?: boolean;
}
export const SIM_BUGS = [
  'joinSkipsRule',
  'recoveryKeepsGeneration',
  'recoveryLosesCommitted',
  'appendsIgnoreBytes',
  'sendBeforePersist',
  'inboundSkipsJoinRule',
  'forwardIgnoresLeaderLoss',
  'forwardLossSaysNotApplied',
  'forwardRetriesOnNewLeader',
  'removalNoticeBeforeCommit',
] as const;

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
  /**
   * some blank nodes start with `join.cluster` and ask to join (auto-join's announce loop) instead of
   * being added by a membership operation (default false; the seeds it found are regression tests in
   * test/sim/autojoin-regressions.test.ts and regressions.test.ts)
   */
  autoJoin?: boolean;
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

export function newStats() {
  return {
    steps: 0,
    simulatedMs: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    foreignDropped: 0,
    crashes: 0,
    /** of the crashes, those of the machine: the applies not yet durable undone (store.ts losePower) */
    powerLosses: 0,
    /** entries whose apply a power loss undid (applied again from the log) */
    appliesUndone: 0,
    /** writes of the applied state carried by a raft write (actors/appliedState.ts), and made alone */
    stateWritesCarried: 0,
    stateWritesAlone: 0,
    diskFullCrashes: 0,
    partitions: 0,
    elections: 0,
    committed: 0,
    /** writes whose propose() resolved (acknowledged to the client) */
    acknowledged: 0,
    reads: 0,
    /** client requests a follower forwarded to its leader (actors/forwarding.ts), and how they ended */
    forwarded: 0,
    forwardsAnswered: 0,
    forwardsUnknown: 0,
    forwardsNoLeader: 0,
    forwardsUnreachable: 0,
    /** the longest a failed forward waited after its node stopped following the leader it went to (simulated ms) */
    slowestForwardFailMs: 0,
    /** client writes refused with an answer that says they were not applied */
    writesRefused: 0,
    /** snapshots a follower received in full and installed (actors/snapshotStream.ts → snapshots.ts) */
    snapshotsInstalled: 0,
    snapshotsSent: 0,
    compactions: 0,
    configChanges: 0,
    /** membership operations the leaders ran (actors/controller/membership.ts, the membership chart): started, and how they ended */
    opsStarted: 0,
    opsAdds: 0,
    opsRemoves: 0,
    opsFailures: 0,
    /** nodes that left for good as removed (their member applied the removal, or a leader's notice said so) */
    leftRemoved: 0,
    transfers: 0,
    /** blank nodes that adopted the cluster id with their first state */
    blankJoins: 0,
    /** commands of more than a quarter of the largest command, proposed */
    largeCommands: 0,
    /** commands over the largest command, refused at the door */
    commandsTooLarge: 0,
    /** the largest bus message sent, in bytes */
    largestMessage: 0,
    /** followers cut off for a long time (they fall far behind, then catch up) */
    longLags: 0,
    /** join offers/requests refused at both ends (another cluster, or another generation) */
    joinsRefused: 0,
    /** messages of the same cluster but another identity generation, dropped */
    staleDropped: 0,
    /** stale members that learned they were left behind by a recovery and stopped */
    staleHalted: 0,
    recoveries: 0,
    /** committed entries above the survivors' commit points, discarded by recoveries */
    discardedByRecovery: 0,
  };
}
export type SimStats = ReturnType<typeof newStats>;

export interface SimResult {
  seed: number;
  nodes: number;
  violation: Violation | null;
  stats: SimStats;
  /** the run's last `traceSize` events, as a violation would show them (two runs of one seed must agree line for line) */
  trace: string[];
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
  /** the simulated bus's max payload: a message over it cannot be sent (a violation) */
  maxPayload: number;
  /** commands carry values up to the largest command the door accepts (and a little beyond) */
  largeCommands: boolean;
  /** now and then, a follower is cut off for seconds, then catches up (by log or snapshot) */
  longLags: boolean;
}

/** the simulated bus's max payload when a profile does not say: small, so large commands are cheap to simulate */
export const SIM_MAX_PAYLOAD = 16 * 1024;

/** leaders crashing mid-replication, one entry per message: what finding figure 8 takes */
export const HARSH_PROFILE: Partial<SimProfile> = {
  maxEntriesPerMessage: 1,
  maxInflight: 1,
  leaderCrashWeight: 6,
  chaosEveryMs: 20,
  preVote: false,
  checkQuorum: false,
};

export function drawProfile(r: Prng, sr: Prng, override: Partial<SimProfile> | undefined): SimProfile {
  return {
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
    ...override,
  };
}

export class ViolationError extends Error {
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(message);
  }
}
