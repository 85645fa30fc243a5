// Membership operations, run on the leader: add, remove (the leader too, by handing leadership
// over first), transfer leadership, list — and forwarding each of them once to the leader from any
// other member. One change at a time: each runs the membership chart (machines/membership).
import { createActor, fromCallback, fromPromise, toPromise } from 'xstate';
import { validNodeName } from '../../machines/identity/index.ts';
import { learnerProgress, type MembershipChange } from '../../machines/membership/config.ts';
import { type MembershipEvent, type MembershipInput, type MembershipOutput, membershipMachine, type OfferReply } from '../../machines/membership/machine.ts';
import { adminCall, isUnreachable } from '../../runtime/admin.ts';
import { DEFAULT_RAFT } from '../../runtime/config/config.ts';
import { asErrorCode, codeOf, conclaveError } from '../../runtime/errors.ts';
import type { AddProgress, AddResult, AdminReply, AdminRequest, ClusterList, ForwardedOp, RemoveResult, TransferResult } from '../../runtime/wire/adminProtocol.ts';
import { type ControllerContext, serialQueue, untilLeaderChange } from './context.ts';
import { adminSigner } from './adminAuth.ts';

export type ChangeSpec = Pick<MembershipInput, 'op' | 'target' | 'maxAttempts' | 'deadlineMs' | 'maxVoters' | 'expectNodeId'>;

/** where a change stands, as its chart says (for `cluster add` followed with progress) */
interface ChangeProgress {
  step: string;
  matchIndex: number;
  commitIndex: number;
  snapshotBytes: number;
}

/** an add a CLI follows (`cluster add` with progressMs): it runs on, each request answers within progressMs */
interface FollowedAdd {
  startedAt: number;
  /** when it ended (on the controller's clock), once it has */
  endedAt: number | null;
  progress: ChangeProgress;
  /** settles when the add ends; never rejects */
  ended: Promise<{ ok: true; result: AddResult } | { ok: false; error: unknown }>;
}

/** Membership timing: CLI timeouts are longer than these waits (see runtime/cli/cluster.ts). */
const MEMBERSHIP_TIMING = {
  catchUpLag: 16,
  catchUpTimeoutMs: 10_000,
  /** an add or remove requested by an operator gives up after this long unless the request says less */
  defaultDeadlineMs: 25_000,
  /** how long a request waits for a leader to appear before it says there is none */
  leaderWaitMs: 3000,
  /** the chart's retries after a transient failure (machines/backoff.ts) */
  retry: { baseMs: 250, maxMs: 5000 },
  /** a followed add that ended is kept this long for its follower's next request */
  followedKeptMs: 60_000,
} as const;

/** what an add that ended tells its caller */
function addResult(name: string, output: MembershipOutput): AddResult {
  return { name, nodeId: output.node!.nodeId, outcome: output.outcome === 'already-member' ? 'already-member' : 'added' };
}

/** answer before the caller gives up: its timeout includes the forwarding hop */
function deadlineFor(timeoutMs: number | undefined): number {
  return timeoutMs === undefined ? MEMBERSHIP_TIMING.defaultDeadlineMs : Math.max(1000, timeoutMs - 1500);
}

export interface MembershipParts {
  /** the leader's half of the join handshake (./joinHandshake.ts) */
  offerJoin(target: string): Promise<OfferReply>;
  /** tell a removed node so (./removal.ts) */
  sendRemovedNotice(name: string): Promise<void>;
}

export class MembershipOps {
  /** one membership change at a time */
  private readonly oneAtATime = serialQueue();
  /** adds followed with progress, by target name */
  private readonly followed = new Map<string, FollowedAdd>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly parts: MembershipParts,
  ) {}

  /** run `local` when this node leads; otherwise forward the request once to the leader's admin subject */
  async onLeader<O extends ForwardedOp>(
    type: O,
    body: AdminRequest<O> & { forwarded?: boolean; timeoutMs?: number; progressMs?: number },
    local: () => Promise<AdminReply<O>>,
  ): Promise<AdminReply<O>> {
    const member = this.ctx.memberRuntime();
    if (member.status().role === 'leader') return local();
    if (body.forwarded === true) throw conclaveError('NOT_LEADER', `${this.ctx.name} is not the leader any more; retry`);
    const leader = await this.awaitLeader();
    if (leader === this.ctx.name) return local();
    const changesState = type !== 'cluster.list' && type !== 'snapshot.begin';
    // a followed add answers within progressMs, whatever its own deadline
    const timeoutMs = body.progressMs !== undefined ? body.progressMs + 5000 : (body.timeoutMs ?? 5000) + 1000;
    return member.forwardToLeader(type, { ...body, forwarded: true }, { timeoutMs, changesState });
  }

  /**
   * `cluster.transfer` on any member. A forwarded transfer's own success moves the leadership, so
   * its forward may be abandoned (OUTCOME_UNKNOWN) before the old leader's answer arrives; when
   * leadership did move where it was asked to, that is the answer: transferred.
   */
  async transfer(body: AdminRequest<'cluster.transfer'>): Promise<TransferResult> {
    const before = this.ctx.memberRuntime().status().leader;
    try {
      return await this.onLeader('cluster.transfer', body, () => this.transferLeadership(body.name));
    } catch (err) {
      if (codeOf(err) !== 'OUTCOME_UNKNOWN') throw err;
      const now = await this.awaitLeader().catch(() => null);
      if (now !== null && now !== before && (body.name === undefined || now === body.name)) return { leader: now, transferred: true };
      throw err;
    }
  }

  /** the leader's name, waiting briefly for an election; a clear NO_LEADER error otherwise */
  private async awaitLeader(): Promise<string> {
    const leaderNow = () => this.ctx.memberRuntime().status().leader;
    if (await untilLeaderChange(this.ctx, () => leaderNow() !== null, MEMBERSHIP_TIMING.leaderWaitMs)) return leaderNow()!;
    const status = this.ctx.memberRuntime().status();
    const voters = status.members.filter((m) => m.voter);
    const reachable = voters.filter((m) => m.reachable).length;
    throw conclaveError(
      'NO_LEADER',
      `cluster has no leader: ${this.ctx.name} has heard from no leader in term ${status.term} (${reachable} of ${voters.length} voters reachable from here; a majority is needed). Start the missing members, or retry if an election is under way`,
    );
  }

  list(status: { clusterId: string | null; leader: string | null; term: number; members: ClusterList['members']; clusterVersion?: ClusterList['clusterVersion'] }): ClusterList {
    return { clusterId: status.clusterId, leader: status.leader, term: status.term, members: status.members, ...(status.clusterVersion === undefined ? {} : { clusterVersion: status.clusterVersion }) };
  }

  async add(name: string, opts: { timeoutMs?: number } = {}): Promise<AddResult> {
    if (!validNodeName(name)) throw conclaveError('BAD_REQUEST', `cannot add ${JSON.stringify(name)}: a node name must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
    if (name === this.ctx.name) {
      this.ctx.requireLeader();
      return { name, nodeId: this.ctx.store.identity().nodeId, outcome: 'already-member' };
    }
    const output = await this.runChange({ op: 'add', target: name, maxAttempts: 3, deadlineMs: deadlineFor(opts.timeoutMs) });
    return addResult(name, output);
  }

  /**
   * `cluster add` followed with progress: start the add of `name` (or join the one under way) and
   * answer within `progressMs` — its result once it ended, else where it stands. It has no deadline
   * of its own unless the request sets `timeoutMs`: it runs while the node makes progress and ends
   * when it stalls (the chart's catch-up timeout and retries).
   */
  async addFollowed(name: string, opts: { progressMs: number; timeoutMs?: number }): Promise<AddResult | AddProgress> {
    const clock = this.ctx.clock;
    // an add nobody asked about for a while after it ended is forgotten
    for (const [target, ended] of this.followed) {
      if (ended.endedAt !== null && clock.now() - ended.endedAt >= MEMBERSHIP_TIMING.followedKeptMs) this.followed.delete(target);
    }
    let add = this.followed.get(name);
    if (add === undefined) {
      add = this.startFollowed(name, opts.timeoutMs === undefined ? null : deadlineFor(opts.timeoutMs));
      this.followed.set(name, add);
    }
    let timer: unknown;
    const answer = await Promise.race([add.ended, new Promise<null>((r) => (timer = clock.setTimeout(() => r(null), opts.progressMs)))]);
    clock.clearTimeout(timer);
    if (answer === null) return { name, outcome: 'in-progress', ...add.progress, elapsedMs: clock.now() - add.startedAt };
    if (this.followed.get(name) === add) this.followed.delete(name);
    if (!answer.ok) throw answer.error;
    return answer.result;
  }

  private startFollowed(name: string, deadlineMs: number | null): FollowedAdd {
    const progress: FollowedAdd['progress'] = { step: 'queued', matchIndex: 0, commitIndex: 0, snapshotBytes: 0 };
    const run = async (): Promise<AddResult> => {
      // a bad name is refused, this node is already a member: no change to follow
      if (!validNodeName(name) || name === this.ctx.name) return this.add(name);
      const output = await this.runChange({ op: 'add', target: name, maxAttempts: 3, deadlineMs }, (p) => Object.assign(progress, p));
      return addResult(name, output);
    };
    const add: FollowedAdd = {
      startedAt: this.ctx.clock.now(),
      endedAt: null,
      /** updated as the chart moves (it is read by every request that follows the add) */
      progress,
      ended: run().then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    };
    void add.ended.then(() => {
      add.endedAt = this.ctx.clock.now();
    });
    return add;
  }

  async remove(name: string, opts: { timeoutMs?: number } = {}): Promise<RemoveResult> {
    if (!validNodeName(name)) throw conclaveError('BAD_REQUEST', `cannot remove ${JSON.stringify(name)}: a node name must match ^[a-z0-9][a-z0-9_-]{0,62}$`);
    if (name === this.ctx.name) return this.removeSelfAsLeader(opts);
    const output = await this.runChange({ op: 'remove', target: name, maxAttempts: 3, deadlineMs: deadlineFor(opts.timeoutMs) });
    return { name, nodeId: output.node!.nodeId, outcome: 'removed' };
  }

  /** removing the leader (as etcd does): hand leadership to the most up-to-date voter, which removes this node */
  private async removeSelfAsLeader(opts: { timeoutMs?: number }): Promise<RemoveResult> {
    const ctx = this.ctx;
    const member = ctx.requireLeader();
    const clusterId = ctx.store.identity().clusterId;
    const others = member.raftStatus().membership.members.filter((m) => m.voter && m.nodeId !== ctx.store.identity().nodeId);
    if (others.length === 0) {
      throw conclaveError('BAD_REQUEST', `cannot remove ${ctx.name}: it is the only voter of cluster ${clusterId}; add another member first`);
    }
    const { leader } = await this.transferLeadership();
    ctx.logFor('membership').info({ to: leader }, `removing ${ctx.name}, the leader: handed leadership to ${leader}, which removes it`);
    const wait = (opts.timeoutMs ?? MEMBERSHIP_TIMING.defaultDeadlineMs) + 1000;
    try {
      return await adminCall(ctx.bus, ctx.prefix, leader, ctx.sender(), 'cluster.remove', { name: ctx.name, timeoutMs: opts.timeoutMs, forwarded: true }, wait, adminSigner(ctx));
    } catch (err) {
      if (isUnreachable(err)) throw conclaveError('UNREACHABLE', `${ctx.name} handed leadership to ${leader} to be removed, but ${leader} did not answer within ${wait} ms; check \`conclave cluster list\` and retry`);
      throw err;
    }
  }

  async transferLeadership(name?: string): Promise<TransferResult> {
    const ctx = this.ctx;
    const member = ctx.requireLeader();
    const membership = member.raftStatus().membership;
    const clusterId = ctx.store.identity().clusterId;
    let nodeId: string | undefined;
    if (name !== undefined) {
      const target = membership.members.find((m) => m.name === name);
      if (!target) throw conclaveError('NOT_FOUND', `cannot transfer leadership to ${name}: it is not a member of cluster ${clusterId}; \`conclave cluster list\` shows the voters`);
      if (!target.voter) throw conclaveError('NOT_A_VOTER', `cannot transfer leadership to ${name}: it is a learner, not a voter; wait until it is promoted (\`conclave cluster list\`) or pick a voter`);
      if (target.nodeId === ctx.store.identity().nodeId) return { leader: ctx.name, transferred: false };
      nodeId = target.nodeId;
    }
    const to = member.transferLeadership(nodeId);
    const toName = membership.members.find((m) => m.nodeId === to)?.name ?? to;
    const withinMs = 2 * { ...DEFAULT_RAFT, ...ctx.opts.raft }.electionTimeoutMs + 1000;
    const handedOver = () => {
      const s = member.raftStatus();
      return s.role !== 'leader' && s.leader === to;
    };
    if (await untilLeaderChange(ctx, handedOver, withinMs)) {
      ctx.logFor('membership').info({ to: toName }, `handed leadership to ${toName}`);
      return { leader: toName, transferred: true };
    }
    throw conclaveError('TRANSFER_INCOMPLETE', `leadership transfer to ${toName} did not complete within ${withinMs} ms (is it reachable and caught up?); ${ctx.name} stays leader — retry`);
  }

  /** one membership change at a time: queue behind the previous one, then run the membership machine */
  runChange(spec: ChangeSpec, onProgress?: (progress: ChangeProgress) => void): Promise<MembershipOutput> {
    return this.oneAtATime(() => this.runMembershipActor(spec, onProgress));
  }

  private async runMembershipActor(spec: ChangeSpec, onProgress?: (progress: ChangeProgress) => void): Promise<MembershipOutput> {
    const ctx = this.ctx;
    const member = ctx.requireLeader();
    const identity = ctx.store.identity();
    if (identity.clusterId === null) {
      throw conclaveError('BUSY', `cluster of ${ctx.name} has no cluster id yet (an older cluster being upgraded: the leader is committing one); retry in a moment`);
    }
    const leader = { name: ctx.name, nodeId: identity.nodeId, clusterId: identity.clusterId };
    const log = ctx.logFor('membership');
    const faults = ctx.testFaults;
    const machine = membershipMachine.provide({
      // test-only planted bug (ControllerTestFaults): the leader takes a node of any cluster
      ...(faults?.joinSkipsRule === true ? { guards: { leaderRuleRefuses: () => false } } : {}),
      actors: {
        offerJoin: fromPromise<OfferReply, { target: string }>(({ input }) => this.parts.offerJoin(input.target)),
        readMembership: fromPromise(async () => ctx.requireLeader().raftStatus().membership),
        proposeChange: fromPromise<void, MembershipChange>(({ input }) => {
          const leaderMember = ctx.requireLeader();
          if (faults?.removalNoticeBeforeCommit === true && input.type === 'remove') {
            const removed = leaderMember.raftStatus().membership.members.find((m) => m.nodeId === input.nodeId);
            if (removed !== undefined) void this.parts.sendRemovedNotice(removed.name);
          }
          return leaderMember.changeMembership(input);
        }),
        // the learner's progress as the leader's member sees it move (each ready round, each acknowledged snapshot chunk)
        watchProgress: fromCallback<MembershipEvent, { nodeId: string }>(({ sendBack, input }) => {
          let last = '';
          const report = () => {
            const progress = { type: 'PROGRESS' as const, ...learnerProgress(member.raftStatus(), input.nodeId), streamed: member.snapshotStreamed(input.nodeId) };
            const key = `${progress.matchIndex}/${progress.commitIndex}/${progress.lastIndex}/${progress.needsSnapshot}/${progress.streamed}`;
            if (key === last) return;
            last = key;
            sendBack(progress);
          };
          report();
          return member.onProgress(report);
        }),
        notifyRemoved: fromPromise<void, { name: string }>(({ input }) => this.parts.sendRemovedNotice(input.name)),
      },
    });
    const actor = createActor(machine, {
      id: `membership:${spec.op}:${spec.target}`,
      input: {
        ...spec,
        leader,
        catchUpLag: MEMBERSHIP_TIMING.catchUpLag,
        catchUpTimeoutMs: MEMBERSHIP_TIMING.catchUpTimeoutMs,
        backoffBaseMs: MEMBERSHIP_TIMING.retry.baseMs,
        backoffMaxMs: MEMBERSHIP_TIMING.retry.maxMs,
      },
      inspect: ctx.inspectionSink,
      clock: ctx.clock,
    });
    let lastState = '';
    actor.subscribe((snap) => {
      if (onProgress) {
        const p = snap.context.progress;
        const step = typeof snap.value === 'string' ? snap.value : Object.values(snap.value).join('.');
        onProgress({ step, matchIndex: p?.matchIndex ?? 0, commitIndex: p?.commitIndex ?? 0, snapshotBytes: p?.streamed ?? 0 });
      }
      const state = JSON.stringify(snap.value);
      if (state === lastState) return;
      lastState = state;
      log.info({ op: spec.op, target: spec.target, state: snap.value, attempt: snap.context.attempt }, `${spec.op} ${spec.target}: ${typeof snap.value === 'string' ? snap.value : Object.values(snap.value).join('.')}`);
    });
    actor.start();
    const output = (await toPromise(actor)) as MembershipOutput;
    const final = actor.getSnapshot().value;
    if (final === 'done') {
      log.info({ op: spec.op, target: spec.target, outcome: output.outcome, nodeId: output.node?.nodeId }, `${spec.op} ${spec.target}: ${output.outcome}`);
      return output;
    }
    const error = output.error ?? { code: 'FATAL', message: `${spec.op} ${spec.target} failed` };
    if (final === 'refused') {
      ctx.reportRefusal('membership', {
        reason: 'join-offer',
        from: spec.target,
        localClusterId: leader.clusterId,
        remoteClusterId: error.remoteClusterId ?? output.node?.clusterId ?? null,
        message: error.message,
      });
      throw conclaveError(error.code === 'REMOVED' ? 'REMOVED' : 'JOIN_REFUSED', error.message);
    }
    log.warn({ op: spec.op, target: spec.target, error }, `${spec.op} ${spec.target} failed: ${error.message}`);
    throw conclaveError(asErrorCode(error.code), error.message);
  }
}
