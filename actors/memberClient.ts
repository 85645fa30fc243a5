// Client operations on the member: propose (batched, refused at the door when too large), reads
// (linearizable by read index, or stale), membership changes, leadership transfer, export — and the
// admin requests a follower forwards to its leader.
import type { AdminReply, AdminRequest, ForwardedOp, ProposeOutcome } from '../runtime/wire/adminProtocol.ts';
import type { z } from 'zod';
import { applyChange, type MembershipChange } from '../machines/membership/config.ts';
import type { RaftCore } from '../machines/raft/core.ts';
import type { raftRoleMachine } from '../machines/raft/roleMachine.ts';
import { jsonBytes } from '../machines/raft/size.ts';
import { type ConclaveError, conclaveError, wireError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log/logger.ts';
import { kvCommandSchema, kvQuerySchema, queryKv } from '../runtime/state/kv.ts';
import type { Sender, WireLimits } from '../runtime/wire/codec.ts';
import { valueRefusal } from '../runtime/wire/limits.ts';
import type { Actor } from 'xstate';
import type { AppliedState, DeferredState, HostAppliedState } from './appliedState.ts';
import type { Applier } from './memberApply.ts';
import { FORWARD_TIMEOUT_MS, proposeBatchBody, proposeBody, readBody } from './peerWire.ts';
import type { Random } from './ports.ts';
import type { StageTimes } from './stageTimes.ts';

/** what client operations need of the member around it */
export interface ClientHands {
  readonly name: string;
  /** where a write's time goes (stageTimes.ts): a proposal's clock starts here */
  readonly stageTimes: StageTimes;
  sender(): Sender;
  readonly log: Logger;
  readonly limits: WireLimits;
  readonly state: DeferredState;
  readonly kv: AppliedState | null;
  readonly hostState: HostAppliedState | null;
  readonly applier: Applier;
  /** the member's randomness (seeded in the simulator): read-index request ids */
  readonly random: Random;
  core(): RaftCore;
  role(): Actor<typeof raftRoleMachine> | null;
  /** null while it takes requests; else why not (shutting down, halted) */
  refusing(): string | null;
  /** run the ready loop soon */
  kick(): void;
  nameOf(nodeId: string | null): string | null;
  notLeaderError(): ConclaveError;
  forwardToLeader<O extends ForwardedOp>(type: O, body: AdminRequest<O>, opts: { timeoutMs: number; changesState: boolean }): Promise<AdminReply<O>>;
}

/** the client operations a member answers (on the leader, or forwarded there) */
export type ClientOp = 'propose' | 'propose.batch' | 'read';

/** Deliberate faults for planted-bug tests (actors/plantedBugs.ts): never set by the controller, config or bus. */
export interface ClientFaults {
  /** a follower answers a linearizable read from its own applied state, without read index or its leader */
  followerReadsLocally?: boolean;
}

interface QueuedProposal {
  command: unknown;
  /** stageTimes' clock */
  startedAt: number;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export class ClientOps {
  /** proposals collected since the last kick: one PROPOSE event (one core call) per batch */
  private proposalQueue: QueuedProposal[] = [];
  /** read-index requests by id, answered by the ready loop */
  readonly reads = new Map<string, { resolve(index: number): void; reject(err: Error): void }>();
  private readSeq = 0;

  constructor(
    private readonly hands: ClientHands,
    private readonly faults: ClientFaults = {},
  ) {}

  /** what nests too deep cannot even be sized (JSON.stringify recurses), let alone stored on every node */
  private refuseTooDeep(command: unknown): void {
    const tooDeep = this.hands.hostState ? valueRefusal(command, 'the command') : valueRefusal(command, 'the value', 1);
    if (tooDeep !== null) throw conclaveError('BAD_REQUEST', `invalid command: ${tooDeep}`);
  }

  private refuseWhenStopping(): void {
    const why = this.hands.refusing();
    if (why !== null) throw conclaveError('STOPPING', `${this.hands.name} is ${why}`);
  }

  async propose(command: unknown): Promise<unknown> {
    let admitted: unknown;
    try {
      admitted = this.admit(command);
    } catch (err) {
      this.hands.stageTimes.proposals.refused++;
      throw err;
    }
    return new Promise<unknown>((resolve, reject) => {
      this.proposalQueue.push({ command: admitted, startedAt: this.hands.stageTimes.now(), resolve, reject });
      this.hands.kick();
    });
  }

  /** the command as it will travel in the log, or why it is refused at the door (invalid, too large, stopping) */
  private admit(command: unknown): unknown {
    this.refuseTooDeep(command);
    const { limits } = this.hands;
    let size: number;
    if (this.hands.hostState) {
      // a host command crosses the log as JSON: the leader applies exactly what the followers decode
      const { json, why } = jsonOf(command);
      if (json === undefined) throw conclaveError('BAD_REQUEST', `invalid command: a command must be a JSON value (an object, array, string, number, boolean or null): ${why}`);
      size = Buffer.byteLength(json, 'utf8');
      command = JSON.parse(json);
    } else {
      const check = kvCommandSchema.safeParse(command);
      if (!check.success) throw conclaveError('BAD_REQUEST', `invalid command: ${check.error.issues[0]?.message}`);
      size = jsonBytes(command);
    }
    // every command must travel alone in one append message: larger ones are refused at the door
    const limit = limits.commandBytes;
    if (size > limit) {
      throw conclaveError(
        'COMMAND_TOO_LARGE',
        `command is ${size} bytes (as JSON), over the ${limit}-byte limit for one command (the bus's max payload is ${limits.messageBytes} bytes); store large values elsewhere, or split them over several keys`,
        { bytes: size, limit },
      );
    }
    this.refuseWhenStopping();
    return command;
  }

  /** hand every queued proposal to the core in one event: one batch of entries, one durable write */
  flushProposals(): void {
    const role = this.hands.role();
    if (this.proposalQueue.length === 0 || !role) return;
    const batch = this.proposalQueue;
    this.proposalQueue = [];
    role.send({ type: 'PROPOSE', items: batch.map((p) => ({ type: 'command' as const, data: p.command })) });
    const result = role.getSnapshot().context.lastProposal!;
    if (!result.ok) {
      const err = result.reason === 'not-leader' ? this.hands.notLeaderError() : conclaveError('BUSY', `proposal refused (${result.reason}); retry shortly`);
      this.hands.stageTimes.proposals.refused += batch.length;
      for (const p of batch) p.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      this.hands.applier.waiters.set(result.firstIndex + i, { term: result.term, startedAt: p.startedAt, resolve: p.resolve, reject: p.reject });
    }
  }

  async exportSnapshot(): Promise<{ index: number; term: number; pairs: Array<[string, unknown]> }> {
    if (this.hands.core().currentRole !== 'leader' || !this.hands.role()) throw this.hands.notLeaderError();
    // a linearizable read point (read index: leadership confirmed by a quorum), then the state as applied there
    const index = await this.confirmLeadership();
    await this.hands.applier.waitApplied(index);
    const { appliedIndex, pairs } = this.hands.state.exportState();
    return { index: appliedIndex, term: Math.max(0, this.hands.core().termAt(appliedIndex)), pairs };
  }

  async changeMembership(change: MembershipChange): Promise<void> {
    this.refuseWhenStopping();
    const role = this.hands.role();
    const core = this.hands.core();
    if (core.currentRole !== 'leader' || !role) throw this.hands.notLeaderError();
    const next = applyChange(core.membership, change);
    if (!next.ok) throw conclaveError('BAD_REQUEST', `membership change refused: ${next.reason}`);
    role.send({ type: 'PROPOSE', items: [{ type: 'config', data: next.next }] });
    const result = role.getSnapshot().context.lastProposal!;
    if (!result.ok) {
      if (result.reason === 'not-leader') throw this.hands.notLeaderError();
      if (result.reason === 'config-change-pending') {
        throw conclaveError('CONFIG_CHANGE_PENDING', 'another membership change is still being committed (one change at a time); retry shortly');
      }
      if (result.reason === 'transferring') throw conclaveError('BUSY', 'leadership is being transferred; retry shortly');
      throw conclaveError('BAD_REQUEST', `membership change refused by raft (${result.reason})`);
    }
    this.hands.log.info({ change, index: result.firstIndex }, `proposed membership change ${change.type}`);
    await new Promise<unknown>((resolve, reject) => {
      this.hands.applier.waiters.set(result.firstIndex, { term: result.term, startedAt: null, resolve, reject });
    });
  }

  transferLeadership(nodeId?: string): string {
    const role = this.hands.role();
    if (!role) throw this.hands.notLeaderError();
    role.send(nodeId === undefined ? { type: 'TRANSFER' } : { type: 'TRANSFER', to: nodeId });
    const result = role.getSnapshot().context.lastTransfer!;
    if (!result.ok) {
      if (result.reason === 'not-leader') throw this.hands.notLeaderError();
      if (result.reason === 'no-target') throw conclaveError('BAD_REQUEST', `${this.hands.name} is the only voter: there is no other voter to hand leadership to`);
      throw conclaveError('BAD_REQUEST', `${this.hands.nameOf(nodeId ?? null) ?? nodeId} is not a voter: leadership can only go to a voter`);
    }
    return result.to;
  }

  /**
   * Read index: resolves with the commit index once this node has confirmed with a quorum that it
   * leads and has committed an entry of its term (so it takes writes and serves linearizable reads).
   */
  confirmLeadership(): Promise<number> {
    const role = this.hands.role();
    if (!role) return Promise.reject(this.hands.notLeaderError());
    const requestId = `${this.hands.name}-${++this.readSeq}-${Math.floor(this.hands.random() * 2 ** 32).toString(36)}`;
    return new Promise<number>((resolve, reject) => {
      this.reads.set(requestId, { resolve, reject });
      role.send({ type: 'READ_INDEX', requestId });
    });
  }

  async read(query: unknown, opts: { stale?: boolean } = {}): Promise<unknown> {
    const parsed = this.hands.hostState ? null : kvQuerySchema.safeParse(query);
    if (parsed && !parsed.success) throw conclaveError('BAD_REQUEST', `invalid query: ${parsed.error.issues[0]?.message}`);
    if (!opts.stale) await this.hands.applier.waitApplied(await this.confirmLeadership());
    if (parsed) return queryKv(this.hands.kv!, parsed.data);
    try {
      return this.hands.hostState!.host.query(query);
    } catch (err) {
      if (err instanceof Error && 'code' in err) throw err;
      throw conclaveError('QUERY_FAILED', `the replicated state could not answer the query: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** `from`: who sent it; a request forwarded by a member of another identity generation of this cluster is refused (it is fenced off) */
  async handleAdmin(type: ClientOp, body: unknown, from?: { from: string; clusterId: string | null; gen?: number }): Promise<unknown> {
    if (from !== undefined && (body as { forwarded?: unknown } | null)?.forwarded === true) this.refuseStaleForwarder(type, from);
    if (type === 'propose') {
      const req = parseRequest(proposeBody, body, 'propose');
      this.refuseTooDeep(req.command); // here too: a follower that forwards says the same as the leader
      return this.viaLeader(req.forwarded === true, () => this.propose(req.command), 'propose', { command: req.command, forwarded: true });
    }
    if (type === 'propose.batch') {
      const req = parseRequest(proposeBatchBody, body, 'propose.batch');
      return this.viaLeader(req.forwarded === true, () => this.proposeAll(req.commands), 'propose.batch', { commands: req.commands, forwarded: true });
    }
    const req = parseRequest(readBody, body, 'read');
    const plantedLocal = this.faults.followerReadsLocally === true && this.hands.core().currentRole !== 'leader'; // test-only planted bug
    if (req.stale || plantedLocal) return this.read(req.query, { stale: true });
    return this.viaLeader(req.forwarded === true, () => this.read(req.query), 'read', { query: req.query, forwarded: true });
  }

  private refuseStaleForwarder(type: string, from: { from: string; clusterId: string | null; gen?: number }): void {
    const me = this.hands.sender();
    if (from.clusterId === null || from.clusterId !== me.clusterId || from.gen === undefined || me.generation === undefined || from.gen === me.generation) return;
    throw conclaveError(
      'STALE_GENERATION',
      `${type} forwarded by ${from.from} refused: ${from.from} is of identity generation ${from.gen} of cluster ${from.clusterId}, this member of generation ${me.generation} (a recovered cluster fences off the other generation); send it to a current member`,
    );
  }

  /**
   * A batch's commands, each proposed as `propose` proposes one (in order, all in the same batch of
   * entries when they reach the core together) and answered on its own: one refused command does
   * not refuse the others.
   */
  private async proposeAll(commands: readonly unknown[]): Promise<{ results: ProposeOutcome[] }> {
    const settled = await Promise.allSettled(commands.map((command) => this.propose(command)));
    return { results: settled.map((s): ProposeOutcome => (s.status === 'fulfilled' ? { ok: true, body: s.value ?? null } : { ok: false, error: wireError(s.reason) })) };
  }

  /** run on the leader: here when we lead, else forwarded once to the leader's admin subject */
  private async viaLeader<O extends ClientOp>(forwarded: boolean, local: () => Promise<unknown>, type: O, body: AdminRequest<O>): Promise<unknown> {
    if (this.hands.core().currentRole === 'leader' || forwarded) return local();
    return this.hands.forwardToLeader(type, body, { timeoutMs: FORWARD_TIMEOUT_MS, changesState: type !== 'read' });
  }

  /** answer the ready loop's read states and failed reads */
  settleReads(readStates: ReadonlyArray<{ requestId: string; index: number }>, failed: readonly string[]): void {
    for (const r of readStates) {
      const waiter = this.reads.get(r.requestId);
      this.reads.delete(r.requestId);
      waiter?.resolve(r.index);
    }
    for (const id of failed) {
      const waiter = this.reads.get(id);
      this.reads.delete(id);
      waiter?.reject(this.hands.notLeaderError());
    }
  }

  /** reads waiting on this node's leadership cannot be confirmed any more; queued proposals fail (shutdown) */
  rejectReads(err: Error): void {
    for (const r of this.reads.values()) r.reject(err);
    this.reads.clear();
  }

  rejectQueued(err: Error): void {
    this.hands.stageTimes.proposals.refused += this.proposalQueue.length;
    for (const p of this.proposalQueue) p.reject(err);
    this.proposalQueue = [];
  }
}

/** an admin request's body, or BAD_REQUEST naming what is wrong with it */
function parseRequest<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw conclaveError('BAD_REQUEST', `invalid ${what} request: ${parsed.error.issues[0]?.path.join('.') || '(body)'} ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** the JSON text of a value, or why it has none (undefined, a function, a cycle, a BigInt) */
function jsonOf(value: unknown): { json: string | undefined; why: string } {
  try {
    return { json: JSON.stringify(value), why: `${typeof value} has no JSON form` };
  } catch (err) {
    return { json: undefined, why: (err as Error).message };
  }
}
