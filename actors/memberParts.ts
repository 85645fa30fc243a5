// How a member's parts are connected: each part (peerWire.ts … leadership.ts) is given hands that
// reach the member (its core, role chart, identity, state) and the other parts. member.ts owns the
// lifecycle and the public surface; this module only wires.
import type { Actor } from 'xstate';
import type { RaftCore, Ready } from '../machines/raft/core.ts';
import type { raftRoleMachine } from '../machines/raft/roleMachine.ts';
import type { Membership, SnapshotMeta } from '../machines/raft/types.ts';
import type { ConclaveError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import type { Sender, WireLimits } from '../runtime/wire/codec.ts';
import { type PairKeys, PairwiseKeys } from '../runtime/wire/pairwiseKeys.ts';
import { proveMemberKey, UNSAFE_NO_PEER_AUTH } from '../runtime/wire/peerSignature.ts';
import type { AppliedMembership } from './appliedMembership.ts';
import type { AppliedState, DeferredState, HostAppliedState } from './appliedState.ts';
import { Compaction } from './compaction.ts';
import { Forwarding } from './forwarding.ts';
import { Inbound } from './inbound.ts';
import { Leadership } from './leadership.ts';
import { Liveness } from './liveness.ts';
import { ClusterVersion } from './clusterVersion.ts';
import { Applier } from './memberApply.ts';
import { ClientOps } from './memberClient.ts';
import type { MemberIdentity } from './memberIdentity.ts';
import type { MemberRuntimeOptions } from './memberTypes.ts';
import { Outbound } from './outbound.ts';
import { authenticatingBus } from './peerWire.ts';
import type { Clock, Random } from './ports.ts';
import { ReadyLoop } from './readyLoop.ts';
import { MemberSnapshots, snapshotTiming } from './snapshots.ts';
import type { StageTimes } from './stageTimes.ts';

/** what the parts reach of the member (member.ts) */
export interface MemberShell {
  readonly opts: MemberRuntimeOptions;
  readonly log: Logger;
  readonly dropLog: RateLimitedLog;
  readonly clock: Clock;
  readonly random: Random;
  readonly limits: WireLimits;
  readonly identity: MemberIdentity;
  readonly membership: AppliedMembership;
  readonly state: DeferredState;
  readonly kv: AppliedState | null;
  readonly hostState: HostAppliedState | null;
  readonly nodeId: string;
  /** where a write's time goes on this node */
  readonly stageTimes: StageTimes;
  /** set at start */
  readonly core: RaftCore;
  readonly role: Actor<typeof raftRoleMachine> | null;
  readonly stopped: boolean;
  readonly halted: boolean;
  halt(err: unknown): void;
  kick(): void;
  sender(): Sender;
  nameOf(nodeId: string | null): string | null;
  notLeaderError(): ConclaveError;
  /** after apply: answer reads, report role changes and refused messages */
  settleReady(rd: Ready): void;
  installSnapshot(meta: SnapshotMeta): Promise<void>;
  /** followers' progress may have moved (a snapshot chunk was acknowledged) */
  progressed(): void;
  /** a member's window started: the start's election advance may be due (member.ts) */
  maybeAdvanceElection(): void;
}

export interface MemberParts {
  snapshots: MemberSnapshots;
  compaction: Compaction;
  loop: ReadyLoop;
  applier: Applier;
  client: ClientOps;
  forwarding: Forwarding;
  liveness: Liveness;
  inbound: Inbound;
  outbound: Outbound;
  leadership: Leadership;
  clusterVersion: ClusterVersion;
}

export function wireParts(m: MemberShell): MemberParts {
  // every peer message this member publishes is authenticated with its member key (none: unsigned,
  // as before): MACed for a member whose key is committed, signed for anyone else
  const key = m.opts.store.memberKey?.();
  if (UNSAFE_NO_PEER_AUTH) m.log.warn({ env: 'CONCLAVE_UNSAFE_NO_PEER_AUTH' }, 'UNSAFE, bench only: member authentication is off (peer messages neither signed nor verified)');
  const pairwise = key && !UNSAFE_NO_PEER_AUTH ? new PairwiseKeys(key.publicKey, key.privateKey) : null;
  const pairFor = (name: string): PairKeys | null | 'unchecked' => {
    const members = m.core.membership.members;
    // a member whose own key is not committed (a configuration from before member keys) is heard
    // unauthenticated by every member (inbound.ts checkSender): a signature would cost ≈100 µs a
    // message and be checked by nobody
    if (members.some((member) => member.nodeId === m.nodeId && member.key === undefined)) return 'unchecked';
    const peerKey = members.find((member) => member.name === name)?.key;
    return pairwise === null || peerKey === undefined ? null : pairwise.with(peerKey);
  };
  // a store port without a boot counter (a test double): the clock at this start stands in for one
  const boot = m.opts.store.boot?.() ?? Date.now();
  const opts = key && pairwise ? { ...m.opts, bus: authenticatingBus(m.opts.bus, key.privateKey, pairFor, boot) } : m.opts;
  const parts = {} as MemberParts;
  parts.snapshots = new MemberSnapshots(
    {
      name: opts.name,
      store: opts.store,
      bus: opts.bus,
      log: m.log,
      dropLog: m.dropLog,
      state: m.state,
      hostState: m.hostState,
      joiningClusterId: opts.joining?.clusterId ?? null,
      nodeId: () => m.nodeId,
      sender: () => m.sender(),
      peerSubject: (nodeId) => parts.outbound.peerSubject(nodeId),
      nameOf: (nodeId) => m.nameOf(nodeId),
      drop: (reason, detail, from) => parts.inbound.drop(reason, detail, from),
      deliver: (message) => {
        // the core restores its log to the snapshot (and then asks to install it) or refuses it, at once
        const before = m.core.snapshotIndex;
        m.role?.send({ type: 'PEER_MESSAGE', messages: [message] });
        return before !== message.snapshot.index && m.core.snapshotIndex === message.snapshot.index;
      },
      progress: (chunks, bytes) => opts.onSnapshotProgress?.(chunks, bytes),
      snapshotMetaAt: (index) => m.core.snapshotMetaAt(index),
      clock: m.clock,
      transferEnded: (to, ok, index) => {
        if (m.stopped || m.halted || m.core.currentRole !== 'leader') return;
        m.core.reportSnapshot(to, ok, index);
        m.kick();
      },
    },
    snapshotTiming(m.limits.commandBytes, opts.timing.electionTimeoutMs),
  );
  parts.compaction = new Compaction({
    store: opts.store,
    log: m.log,
    timing: opts.timing,
    snapshotMetaAt: (index) => m.core.snapshotMetaAt(index),
    flushState: () => m.state.flush(),
    compacted: (meta) => m.core.compact(meta),
  });
  parts.loop = new ReadyLoop(
    {
      core: () => m.core,
      // the store writes synchronously inside the call (its promise only reports completion): timed around it
      persist: (batch) => {
        const times = m.stageTimes;
        const started = times.now();
        if (m.core.currentRole === 'leader') times.appended(batch.entries, started);
        else times.forgetAppended();
        // the applied state's pending write rides along: one transaction, one flush (appliedState.ts)
        const applied = m.state.takeForWrite();
        const writing = opts.store.persist(applied === null ? batch : { ...batch, applied });
        times.observe('persist', started);
        return writing;
      },
      installSnapshot: (meta) => m.installSnapshot(meta),
      send: (messages) => parts.outbound.send(messages),
      letSendsLeave: opts.bus.deferredWrites === true ? letMicrotasksRun : undefined,
      apply: (committed) => {
        const times = m.stageTimes;
        times.committed(committed);
        const started = times.now();
        const applying = parts.applier.apply(committed);
        times.observe('apply', started);
        return applying;
      },
      settle: (rd) => m.settleReady(rd),
      advanced: (rd) => parts.compaction.applied(rd.committed),
      beforeRound: () => parts.client.flushProposals(),
      done: () => m.stopped || m.halted,
      halt: (err) => m.halt(err),
      soon: (fn) => m.clock.soon(fn),
    },
    opts.testFaults,
  );
  parts.applier = new Applier(
    {
      nodeId: m.nodeId,
      store: opts.store,
      dropLog: m.dropLog,
      events: opts.events,
      get appliedMembership() {
        return m.membership.current;
      },
      set appliedMembership(applied: Membership) {
        m.membership.current = applied;
      },
      maybeJoined: () => m.membership.maybeJoined(),
      emitMembership: () => m.membership.emit(),
      onRemoved: () => opts.onRemoved(),
      onClusterId: opts.onClusterId,
      onFatal: (err) => opts.onFatal(err),
      stageTimes: m.stageTimes,
    },
    m.kv,
    m.hostState,
    () => m.state.appliedIndex(),
  );
  const common = { name: opts.name, prefix: opts.prefix, bus: opts.bus, clock: m.clock, electionTimeoutMs: opts.timing.electionTimeoutMs, nodeId: m.nodeId };
  parts.forwarding = new Forwarding({
    ...common,
    leader: () => m.core.leader,
    stopped: () => m.stopped,
    sender: () => m.sender(),
    nameOf: (nodeId) => m.nameOf(nodeId),
    notLeaderError: () => m.notLeaderError(),
    // a forward claims a member's authority: it is MACed for the leader when their keys are committed, else signed (runtime/wire/adminAuth.ts)
    signer: key ? { key: key.privateKey, pairWith: pairFor } : undefined,
  }, opts.testFaults);
  parts.client = new ClientOps({
    name: opts.name,
    sender: () => m.sender(),
    log: m.log,
    limits: m.limits,
    state: m.state,
    kv: m.kv,
    hostState: m.hostState,
    applier: parts.applier,
    stageTimes: m.stageTimes,
    random: m.random,
    core: () => m.core,
    role: () => m.role,
    refusing: () => (m.halted ? 'halted after a storage failure' : m.stopped ? 'shutting down' : null),
    kick: () => m.kick(),
    nameOf: (nodeId) => m.nameOf(nodeId),
    notLeaderError: () => m.notLeaderError(),
    forwardToLeader: (type, body, o) => parts.forwarding.forwardToLeader(type, body, o),
  }, opts.testFaults);
  parts.clusterVersion = new ClusterVersion({
    nodeId: m.nodeId,
    clock: m.clock,
    log: m.log,
    membership: () => m.core.membership,
    appliedMembership: () => m.membership.current,
    clusterId: () => m.identity.clusterId,
    ownKey: () => (key === undefined || UNSAFE_NO_PEER_AUTH ? null : { key: key.publicKey, prove: (clusterId) => proveMemberKey(key.privateKey, clusterId, m.nodeId, key.publicKey) }),
    isLeader: () => !m.stopped && !m.halted && m.core.currentRole === 'leader',
    raise: (version, keys) => parts.client.changeMembership({ type: 'raise-version', version, keys }),
  });
  parts.liveness = new Liveness({ ...common, dropLog: m.dropLog, sender: () => m.sender(), membership: () => m.core.membership, pingBody: () => parts.clusterVersion.pingBody() });
  parts.inbound = new Inbound({
    ...common,
    log: m.log,
    dropLog: m.dropLog,
    liveness: parts.liveness,
    clusterId: () => m.identity.clusterId,
    // a joining node has no generation of its own yet: the one of the leader whose offer it took
    generation: () => m.identity.generation ?? opts.joining?.generation,
    sender: () => m.sender(),
    role: () => m.core.currentRole,
    membership: () => m.core.membership,
    pairwise,
    stopped: () => m.stopped,
    halt: (err) => m.halt(err),
    toCore: (messages) => {
        m.role?.send({ type: 'PEER_MESSAGE', messages });
        // an acknowledgement moves a follower's progress even when the core then has nothing to do
        m.progressed();
      },
    onSnapshotChunk: (chunk, from, generation, bytes, decodeMs) => parts.snapshots.onChunk(chunk, from, generation, bytes, decodeMs),
    onSnapshotAck: (from, ack) => {
        parts.snapshots.onAck(from, ack);
        m.progressed();
      },
    onRefused: opts.onRefused,
    onNonMember: opts.onNonMember,
    onPing: (nodeId, name, body) => parts.clusterVersion.heard(nodeId, name, body),
    synced: () => m.maybeAdvanceElection(),
  }, opts.testFaults);
  parts.outbound = new Outbound({
    prefix: opts.prefix,
    bus: opts.bus,
    limits: m.limits,
    dropLog: m.dropLog,
    peerNames: parts.inbound.peerNames,
    sender: () => m.sender(),
    membership: () => m.core.membership,
    appliedMembership: () => m.membership.current,
    sendSnapshot: (m) => parts.snapshots.send(m),
  });
  parts.leadership = new Leadership({
    ...common,
    log: m.log,
    store: opts.store,
    events: opts.events,
    joining: opts.joining !== undefined,
    peerNames: parts.inbound.peerNames,
    core: () => m.core,
    role: () => m.role,
    nameOf: (nodeId) => m.nameOf(nodeId),
    notLeaderError: () => m.notLeaderError(),
    leaderLeft: (role) => parts.forwarding.onLeaderLeft(role),
    leadershipLost: (notLeader, outcomeUnknown) => {
      parts.snapshots.cancel(notLeader);
      // reads waiting on our leadership cannot be confirmed any more
      parts.client.rejectReads(notLeader);
      parts.applier.rejectAll(outcomeUnknown);
    },
  });
  return parts;
}

/** one microtask turn: what ran before it (the NATS client's socket write) has run */
export const letMicrotasksRun = (): Promise<void> => Promise.resolve();
