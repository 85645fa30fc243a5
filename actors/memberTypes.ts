// The member's public surface: what the controller creates it with, and what it answers.
import type { AdminReply, AdminRequest, ForwardedOp, MemberView } from '../runtime/wire/adminProtocol.ts';
import type { MembershipChange } from '../machines/membership/config.ts';
import type { RaftCore, RaftCoreOptions, RaftStatus } from '../machines/raft/core.ts';
import type { Membership, Role } from '../machines/raft/types.ts';
import type { RaftTiming } from '../runtime/config/config.ts';
import type { MemberEvents, Refusal } from '../runtime/events.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { AnyReplicatedState } from '../runtime/state/host.ts';
import type { InspectionEvent } from 'xstate';
import type { Clock, MemberBus, MemberStore } from './ports.ts';
import type { InboundFaults } from './inbound.ts';
import type { ForwardingFaults } from './forwarding.ts';
import type { ReadyLoopFaults } from './readyLoop.ts';
import type { ClientFaults, ClientOp } from './memberClient.ts';
import type { StageTimes } from './stageTimes.ts';
import type { ClusterVersionView } from './clusterVersion.ts';

export interface SnapshotCounts {
  taken: number;
  sent: number;
  sentBytes: number;
  sentSeconds: number;
  received: number;
  receivedBytes: number;
  receivedSeconds: number;
  abandoned: number;
}

/** one member as `status` shows it: the admin protocol's type */
export type MemberInfo = MemberView;

export interface MemberStatus {
  role: Role | 'none';
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  members: MemberInfo[];
  /** the committed cluster version and what it means (absent before the core starts) */
  clusterVersion?: ClusterVersionView;
}

export interface MemberRuntimeOptions {
  name: string;
  prefix: string;
  store: MemberStore;
  bus: MemberBus;
  logger: Logger;
  timing: RaftTiming;
  inspect?: (event: InspectionEvent) => void;
  onFatal(error: unknown): void;
  onRemoved(): void;
  /** the join rule refused a peer message: reported to the inspector and the log */
  onRefused?(refusal: Refusal): void;
  /** seeded randomness for election timeouts (tests); default Math.random */
  random?: () => number;
  /**
   * joining mode: this blank node accepted to join `clusterId`; it takes raft traffic from that
   * cluster only, and its first installed snapshot is written with the cluster id in one durable write;
   * `generation`: the offering leader's, so that a leader of an older generation (a stale survivor of
   * a disaster recovery that still lists this node) is not taken for the cluster
   */
  joining?: { clusterId: string; generation?: number };
  /** joining mode: the first snapshot, and with it the cluster id, is durable (the node is not a member yet) */
  onAdopted?(clusterId: string): void;
  /** joining mode: chunks of a snapshot keep arriving, `chunks` and `bytes` so far (throttled; the join is alive) */
  onSnapshotProgress?(chunks: number, bytes: number): void;
  /** joining mode: a committed configuration this node has applied includes it — it is a member */
  onJoined?(clusterId: string): void;
  /** upgrade of a cluster created without an id: the committed id is now durable in this store */
  onClusterId?(clusterId: string): void;
  /** leader only: a peer of this cluster that is no longer in the configuration keeps talking (it was removed) */
  onNonMember?(name: string, nodeId: string): void;
  /** the host's replicated state; default the built-in KV */
  state?: AnyReplicatedState;
  /** what a host can observe (see Controller.on) */
  events?: MemberEvents;
  /** scheduling and wall-clock time; default the process's clock (the simulator passes a virtual one) */
  clock?: Clock;
  /**
   * the first election timeout after this start is [1, T] ticks instead of [T, 2T) (member.ts,
   * advanceElectionClock), made once a majority of voters take this node's messages. On unless
   * false: the controller and the simulator's hosts run the member with the default, so the
   * simulator checks what production runs; false is for tests of the plain timeout.
   */
  advanceElectionAtStart?: boolean;
  /** the simulator only: build the raft core (to inject its hooks) — never set by the controller */
  makeCore?(options: RaftCoreOptions): RaftCore;
  /** planted bugs (ready loop, inbound, forwarding, client): the simulator's, or plantedBugs.ts's from a test environment — never set by the controller, config or bus */
  testFaults?: ReadyLoopFaults & InboundFaults & ForwardingFaults & ClientFaults;
}

export type { MemberEvents };

export interface MemberRuntime {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): MemberStatus;
  propose(command: unknown): Promise<unknown>;
  read(query: unknown, opts?: { stale?: boolean }): Promise<unknown>;
  /** admin requests that the controller forwards here (propose/read, possibly forwarded by a peer) */
  /** `from`: the request's envelope (a forward from a fenced-off identity generation is refused) */
  handleAdmin(type: ClientOp, body: unknown, from?: { from: string; clusterId: string | null; gen?: number }): Promise<unknown>;
  /** read index without a query: resolves once this node leads and has committed an entry of its term */
  confirmLeadership(): Promise<number>;
  /** send an admin request to the leader this node follows; fails fast when it stops following it */
  forwardToLeader<O extends ForwardedOp>(type: O, body: AdminRequest<O>, opts: { timeoutMs: number; changesState: boolean }): Promise<AdminReply<O>>;
  /** leader only: propose one single-server configuration change; resolves once it is committed and applied */
  changeMembership(change: MembershipChange): Promise<void>;
  /** leader only: hand leadership to `nodeId` (or the most up-to-date voter); resolves with the target */
  transferLeadership(nodeId?: string): string;
  /** the core's view: configuration in force, commit index, per-peer progress (leader) */
  raftStatus(): RaftStatus;
  /** the configuration as of the applied index: committed (raftStatus()'s is the latest appended, maybe not) */
  appliedMembership(): Membership;
  /** the committed cluster version (clusterVersion.ts): what this member's messages state */
  clusterVersion(): number;
  /** leader: bytes of snapshot that `nodeId` acknowledged in the transfer under way (0 when none) */
  snapshotStreamed(nodeId: string): number;
  /**
   * `listener` is called whenever followers' progress may have moved (after peer messages reach the
   * core, each round of the ready loop, each acknowledged snapshot chunk), at most once a turn: read
   * raftStatus()/snapshotStreamed() then. Returns the unsubscribe.
   */
  onProgress(listener: () => void): () => void;
  /**
   * The replicated state as this node has applied it, with no read round (a stale read of the whole
   * state), written to the store first: the store alone may lag what is applied (actors/appliedState.ts)
   */
  appliedState(): { appliedIndex: number; pairs: Array<[string, unknown]> };
  /** leader only: the replicated state at a linearizable read point (for `snapshot save`) */
  exportSnapshot(): Promise<{ index: number; term: number; pairs: Array<[string, unknown]> }>;
  /** peer input refused (malformed, foreign, or that would break an invariant), counted by reason */
  readonly dropped: ReadonlyMap<string, number>;
  /** where a write's time goes on this node, and how its proposals ended (stageTimes.ts) */
  readonly stageTimes: StageTimes;
  /** snapshots since the member started: taken (log compacted), sent and received in full (bytes, seconds), transfers abandoned */
  snapshotCounts(): SnapshotCounts;
}
