// The simulated clients: writes and linearizable reads sent to any member, as a library host or the
// admin server hands them to it (MemberRuntime.handleAdmin) — the leader serves them, a follower
// forwards them once to its leader over the simulated bus (actors/forwarding.ts), with every fault
// of the network on the way there and back. What the clients are told is checked:
// - an acknowledged write is never lost, a linearizable read is linearizable (invariants.ts);
// - a write refused with a clear "not applied" answer is never applied (invariants.ts);
// - a forwarded request fails fast once its node stops following the leader it went to (within the
//   grace of two election timeouts), and never outlives its deadline (the forward's timeout).
import { jsonBytes } from '../../machines/raft/size.ts';
import type { MemberRuntime } from '../../actors/memberTypes.ts';
import { FORWARD_TIMEOUT_MS } from '../../actors/peerWire.ts';
import { wireLimits } from '../../runtime/wire/codec.ts';
import { ViolationError } from './config.ts';
import type { SimCommand } from './ghost.ts';
import type { SimHost } from './host.ts';
import type { Simulation } from './simulator.ts';

/** a forwarded request may take this much longer than its own timeout (the reply's last trip, a tick) */
const DEADLINE_SLACK_MS = 50;

/** a request a follower forwarded to its leader, not answered yet */
interface PendingForward {
  what: string;
  host: SimHost;
  /** the process it was sent to: when it dies, its client goes with it */
  member: MemberRuntime;
  /** the leader the follower followed when it forwarded */
  leader: string;
  issuedAt: number;
  /** since when the follower has followed another leader (or none), as the checks saw it */
  leftAt: number | null;
}

export class Clients {
  private readonly forwards = new Set<PendingForward>();

  constructor(private readonly sim: Simulation) {}

  /** a client event: a read, or one to three writes, to the leader or to any member */
  issue(): void {
    const sim = this.sim;
    const r = sim.rng;
    const leader = sim.currentLeader();
    if (!sim.faultsOn) {
      livenessClient(sim, leader);
      return;
    }
    // half the requests go to any member: a follower forwards them to its leader
    const host = leader !== null && r.chance(0.5) ? leader : sim.hosts.get(r.pick(sim.memberIds()))!;
    const member = host.member;
    const lineage = sim.lineageOf.get(host.id) ?? null;
    if (member === null || lineage === null) return; // a blank node serves no clients
    const core = host.core!;
    const via = core.currentRole === 'leader' ? '' : core.leader === null ? ' (no leader known: refused)' : ` (forwarded to ${sim.nameOf(core.leader)})`;
    if (r.chance(0.2)) {
      const key = `k${r.int(8)}`;
      sim.note(`client: read ${key} at ${host.name}${via}`);
      const commitAtIssue = sim.ghosts.get(lineage)!.commit;
      this.track(host, member, `read ${key}`, member.handleAdmin('read', { query: { op: 'get', key } })).then(
        (result) => {
          const { found, value } = result as { found: boolean; value: string | null };
          sim.guard(() => sim.invariants.onRead(host, lineage, key, commitAtIssue, found ? value : null));
        },
        () => {},
      );
      return;
    }
    const count = r.between(1, 3);
    sim.note(`client: ${count === 1 ? 'write' : 'writes'} p${sim.requestSeq + 1}${count === 1 ? '' : `..p${sim.requestSeq + count}`} at ${host.name}${via}`);
    for (let i = 0; i < count; i++) {
      const id = `p${++sim.requestSeq}`;
      const command: SimCommand = r.chance(0.9) ? { op: 'put', key: `k${r.int(8)}`, value: id } : { op: 'del', key: `k${r.int(8)}` };
      if (sim.profile.largeCommands && command.op === 'put') padToLargeValue(sim, command);
      if (command.op === 'put') sim.originOf.set(id, lineage);
      this.track(host, member, `write ${id}`, member.handleAdmin('propose', { command })).then(
        () => {
          if (command.op !== 'put') return;
          sim.invariants.acknowledged.set(id, sim.lineageOf.get(host.id) ?? lineage);
          sim.stats.acknowledged++;
        },
        (err: { code?: string }) => {
          if (err.code === 'COMMAND_TOO_LARGE') sim.stats.commandsTooLarge++;
          if (command.op === 'put') sim.guard(() => sim.invariants.onRefused(id, lineage, err.code, host));
        },
      );
    }
  }

  /** a request a follower forwards is watched until it settles */
  private track(host: SimHost, member: MemberRuntime, what: string, request: Promise<unknown>): Promise<unknown> {
    const core = host.core!;
    if (core.currentRole === 'leader' || core.leader === null) return request;
    const forward: PendingForward = { what, host, member, leader: core.leader, issuedAt: this.sim.time, leftAt: null };
    this.forwards.add(forward);
    this.sim.stats.forwarded++;
    const settled = (code: string | undefined) => {
      this.forwards.delete(forward);
      if (host.member !== member) return;
      const stats = this.sim.stats;
      if (code === undefined) stats.forwardsAnswered++;
      else if (code === 'OUTCOME_UNKNOWN') stats.forwardsUnknown++;
      else if (code === 'NO_LEADER' || code === 'NOT_LEADER') stats.forwardsNoLeader++;
      else if (code === 'UNREACHABLE') stats.forwardsUnreachable++;
      if (code !== undefined) this.sim.note(`client: ${host.name}'s forwarded ${what} failed: ${code}`);
      if (code !== undefined && forward.leftAt !== null) stats.slowestForwardFailMs = Math.max(stats.slowestForwardFailMs, this.sim.time - forward.leftAt);
    };
    request.then(
      () => settled(undefined),
      (err: { code?: string }) => settled(err.code ?? 'INTERNAL'),
    );
    return request;
  }

  /** after every step: no forwarded request waits on a leader its node stopped following, nor past its deadline */
  check(): void {
    const sim = this.sim;
    const grace = 2 * sim.timing.electionTimeoutMs + 2 * sim.timing.heartbeatMs;
    for (const f of this.forwards) {
      if (f.host.member !== f.member) {
        this.forwards.delete(f); // the process died, and its client with it
        continue;
      }
      const following = f.host.core!.leader;
      if (following === f.leader) f.leftAt = null;
      else f.leftAt ??= sim.time;
      const by = `${f.host.name}'s ${f.what}, forwarded at t=${f.issuedAt}ms to ${sim.nameOf(f.leader)}`;
      if (f.leftAt !== null && sim.time - f.leftAt > grace) {
        throw new ViolationError('forward fails fast', `${by}, is still pending ${sim.time - f.leftAt} ms after ${f.host.name} stopped following ${sim.nameOf(f.leader)} (it follows ${following === null ? 'nobody' : sim.nameOf(following)}); it must fail within ${grace} ms`);
      }
      if (sim.time - f.issuedAt > FORWARD_TIMEOUT_MS + DEADLINE_SLACK_MS) {
        throw new ViolationError('forward deadline', `${by}, is still pending after ${sim.time - f.issuedAt} ms, past its ${FORWARD_TIMEOUT_MS} ms timeout`);
      }
    }
  }
}

/** pad a put's value to a size up to a little beyond the largest command (the door refuses those) */
function padToLargeValue(sim: Simulation, command: SimCommand): void {
  const limit = wireLimits(sim.profile.maxPayload).commandBytes;
  const target = sim.sizeRng.between(0, Math.floor(limit * 1.05));
  command.value = `${command.value}:`.padEnd(target, 'x');
  if (jsonBytes(command) <= limit && target > limit / 4) sim.stats.largeCommands++;
}

/** after healing: a leader must commit (and acknowledge) a fresh proposal */
function livenessClient(sim: Simulation, leader: SimHost | null): void {
  if (sim.liveProposal !== null) {
    const owner = sim.hosts.get(sim.liveProposal.leader);
    if (owner?.core?.currentRole !== 'leader') sim.liveProposal = null;
    return;
  }
  if (leader === null) return;
  const id = `live${++sim.requestSeq}`;
  sim.originOf.set(id, sim.mainLineage);
  const proposal = { id, leader: leader.id };
  sim.liveProposal = proposal;
  leader.member!.propose({ op: 'put', key: 'live', value: id }).then(
    () => {
      sim.invariants.acknowledged.set(id, sim.mainLineage);
      sim.liveDone = true;
      sim.note(`liveness: ${leader.name} committed ${id}`);
    },
    () => {
      if (sim.liveProposal === proposal) sim.liveProposal = null;
    },
  );
}
