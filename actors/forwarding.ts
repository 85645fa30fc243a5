// Forwarding: the one way a request reaches the leader from a follower, and how pending forwards
// fail fast once this node stops following the leader they went to.
import type { AdminReply, AdminRequest, ForwardedOp } from '../runtime/wire/adminProtocol.ts';
import type { Role } from '../machines/raft/types.ts';
import { adminCall, isUnreachable } from '../runtime/admin.ts';
import { type ConclaveError, conclaveError } from '../runtime/errors.ts';
import { NoRespondersError } from '../runtime/transport/types.ts';
import type { AdminSigner } from '../runtime/wire/adminAuth.ts';
import type { Sender } from '../runtime/wire/codec.ts';
import type { Clock, MemberBus, TimerHandle } from './ports.ts';

/** what forwarding needs of the member around it */
export interface ForwardHands {
  readonly name: string;
  readonly prefix: string;
  readonly bus: MemberBus;
  readonly clock: Clock;
  readonly electionTimeoutMs: number;
  readonly nodeId: string;
  /** the leader this node follows now (node id), or null */
  leader(): string | null;
  stopped(): boolean;
  sender(): Sender;
  nameOf(nodeId: string | null): string | null;
  notLeaderError(): ConclaveError;
  /** signs the forwards (runtime/wire/adminAuth.ts; absent: a store without a member key, unsigned as before) */
  readonly signer?: AdminSigner;
}

/**
 * Deliberate faults for the simulator's planted-bug tests. Only the test code constructs a member
 * with these (MemberRuntimeOptions.testFaults): no configuration file or bus message reaches them.
 */
export interface ForwardingFaults {
  /** pending forwards wait for their full timeout, even on a leader this node no longer follows */
  forwardIgnoresLeaderLoss?: boolean;
  /** a forwarded write abandoned with its leader is answered NO_LEADER (not applied), not OUTCOME_UNKNOWN */
  forwardLossSaysNotApplied?: boolean;
  /** a forwarded write abandoned because leadership moved is sent again, to the new leader */
  forwardRetriesOnNewLeader?: boolean;
}

interface PendingForward {
  leader: string;
  fail(reason: LeaderLost): void;
}

/** a forwarded request abandoned because this node no longer follows its leader (`now`: whom it follows instead) */
class LeaderLost extends Error {
  constructor(readonly now: string | null | 'stopping') {
    super('leader lost');
  }
}

export class Forwarding {
  /** requests forwarded to the leader and not answered yet */
  private readonly forwards = new Set<PendingForward>();
  /** pending forwards to a leader this node stopped following fail when this fires (see onLeaderLeft) */
  private forwardGrace: TimerHandle | null = null;

  constructor(
    private readonly hands: ForwardHands,
    private readonly faults: ForwardingFaults = {},
  ) {}

  /**
   * The one way a request reaches the leader from here: once, to the leader's admin subject. It
   * fails as soon as this node stops following that leader (its election timeout fired, or it
   * learned of another): NO_LEADER for a request that changes nothing, OUTCOME_UNKNOWN for one that
   * may have been applied — never a wait for the full timeout on a leader known to be gone.
   */
  async forwardToLeader<O extends ForwardedOp>(type: O, body: AdminRequest<O>, opts: { timeoutMs: number; changesState: boolean }): Promise<AdminReply<O>> {
    const h = this.hands;
    const leaderId = h.leader();
    const leaderName = h.nameOf(leaderId);
    if (leaderId === null || leaderName === null || leaderId === h.nodeId) throw h.notLeaderError();
    if (h.stopped()) throw conclaveError('STOPPING', `${h.name} is shutting down; retry against another member`);
    let forward!: PendingForward;
    const abandoned = new Promise<never>((_, reject) => {
      forward = { leader: leaderId, fail: reject };
    });
    this.forwards.add(forward);
    try {
      return await Promise.race([adminCall(h.bus, h.prefix, leaderName, h.sender(), type, body, opts.timeoutMs, h.signer), abandoned]);
    } catch (err) {
      if (err instanceof LeaderLost && this.faults.forwardRetriesOnNewLeader && err.now !== null && err.now !== 'stopping') return this.forwardToLeader(type, body, opts);
      if (err instanceof LeaderLost) throw this.forwardLostError(type, leaderName, err.now, opts.changesState);
      if (err instanceof NoRespondersError) {
        // nothing listens on the leader's subject: it is gone, and the request was not delivered
        throw conclaveError('NO_LEADER', `cluster has no leader right now: ${h.name} follows ${leaderName}, which no longer answers (nothing listens on its subject); an election is due, retry shortly`);
      }
      if (isUnreachable(err)) {
        throw conclaveError('UNREACHABLE', `${h.name} forwarded ${type} to the leader ${leaderName}, which did not answer within ${opts.timeoutMs} ms; retry shortly`);
      }
      throw err;
    } finally {
      this.forwards.delete(forward);
    }
  }

  private forwardLostError(type: string, leader: string, now: string | null | 'stopping', changesState: boolean): ConclaveError {
    const name = this.hands.name;
    if (now === 'stopping') return conclaveError(changesState ? 'OUTCOME_UNKNOWN' : 'STOPPING', `${name} is shutting down while its forwarded ${type} was in flight at ${leader}${changesState ? '; it may or may not have been applied — read it back and retry if needed' : '; retry against another member'}`);
    const why = now === null ? `${name} stopped hearing from the leader ${leader}` : `leadership moved from ${leader} to ${now}`;
    if (changesState && !this.faults.forwardLossSaysNotApplied) {
      return conclaveError('OUTCOME_UNKNOWN', `${why} while the forwarded ${type} was in flight; it may or may not have been applied — read it back and retry if needed`);
    }
    return conclaveError('NO_LEADER', `cluster has no leader right now: ${why} while the forwarded ${type} was in flight; retry shortly`);
  }

  /**
   * This node no longer follows the leader its pending forwards went to. Its own election timeout
   * fired (a pre-vote: it stopped hearing from that leader): they fail now. Otherwise (a vote request
   * of a higher term, a new leader, a transfer to this node) the old leader may be alive and about
   * to answer — it answers by itself when it steps down — so they fail only if no answer comes
   * within a grace period.
   */
  onLeaderLeft(role: Role): void {
    if (this.forwards.size === 0 || this.faults.forwardIgnoresLeaderLoss) return;
    if (role === 'pre-candidate') {
      this.failForwards(null);
      return;
    }
    if (this.forwardGrace) return;
    this.forwardGrace = this.hands.clock.setTimeout(() => {
      this.forwardGrace = null;
      this.failForwards(this.hands.leader());
    }, 2 * this.hands.electionTimeoutMs);
  }

  /** shutdown: every pending forward fails now */
  stop(): void {
    if (this.forwardGrace) this.hands.clock.clearTimeout(this.forwardGrace);
    this.failForwards('stopping');
  }

  /** forwards to a leader this node no longer follows fail now, not at their timeout */
  private failForwards(now: string | null | 'stopping'): void {
    for (const f of this.forwards) {
      if (now === 'stopping' || f.leader !== now) {
        this.forwards.delete(f);
        f.fail(new LeaderLost(now === 'stopping' || now === null ? now : (this.hands.nameOf(now) ?? now)));
      }
    }
  }
}
