// What happens to the simulated cluster: faults (partitions, crashes, full disks, crashes at a
// write, long lags), the controller's part: membership operations on the leader through the real
// MembershipOps and membership chart (adds offer blank nodes through the real join handshake,
// removals send the real removal notice); disaster recovery by the rule `conclave recover` applies
// (runtime/store/recoveryPlan.ts); foreign and stale nodes offered membership through the real
// handshake, and asking for it through the real auto-join request and the leader's real admission
// (actors/controller/autoJoin.ts) — the joinSkipsRule bug is planted in that real code. Modelled
// still: a foreign cluster's chatter (crafted raft messages). The clients are in clients.ts.
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { PeerId } from '../../machines/raft/types.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { ViolationError } from './config.ts';
import { CLUSTER_IDS, clusterLabel, FOREIGN_CLUSTER, lineageKey, MAIN_CLUSTER, nodeUuid } from './ghost.ts';
import type { SimHost } from './host.ts';
import type { MembershipOps } from '../../actors/controller/membership.ts';
import { PREFIX, type Simulation } from './simulator.ts';

export function chaos(sim: Simulation): void {
  const r = sim.rng;
  const ids = sim.memberIds();
  const p = sim.profile;
  const choice = r.int(13 + p.crashWeight + p.leaderCrashWeight);
  const nm = (id: PeerId) => sim.nameOf(id);
  switch (choice) {
    case 0:
    case 1: {
      // symmetric partition into two sides
      const side = new Set(ids.filter(() => r.chance(0.5)));
      sim.blocked.clear();
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) sim.blocked.add(`${a}>${b}`);
      sim.stats.partitions++;
      sim.note(`partition ${[...side].map(nm).join(' ')} | ${ids.filter((id) => !side.has(id)).map(nm).join(' ')}`);
      sim.schedule({ time: sim.time + r.between(50, 1500), seq: 0, kind: 'heal' });
      return;
    }
    case 2: {
      const a = r.pick(ids);
      const b = r.pick(ids);
      if (a === b) return;
      sim.blocked.add(`${a}>${b}`);
      sim.stats.partitions++;
      sim.note(`one-way block ${nm(a)} > ${nm(b)}`);
      sim.schedule({ time: sim.time + r.between(50, 1500), seq: 0, kind: 'heal' });
      return;
    }
    case 3:
      sim.blocked.clear();
      sim.note('heal network');
      return;
    case 4: {
      const host = sim.hosts.get(r.pick(ids))!;
      if (!host.alive) return;
      host.diskFull = true;
      sim.note(`disk full on ${host.name}`);
      sim.schedule({ time: sim.time + r.between(20, 500), seq: 0, kind: 'disk-ok', node: host.id });
      return;
    }
    case 5: {
      const id = r.pick(ids);
      sim.crashArmed.add(id);
      sim.note(`armed a crash at the next write on ${nm(id)}`);
      return;
    }
    case 6: {
      const leader = sim.currentLeader();
      if (leader === null) return;
      const target = r.chance(0.5) ? undefined : r.pick(ids);
      sim.stats.transfers++;
      try {
        const to = leader.member!.transferLeadership(target);
        sim.note(`transfer leadership ${leader.name} → ${nm(to)}`);
      } catch (err) {
        sim.note(`transfer leadership ${leader.name} → ${target === undefined ? '(most up to date)' : nm(target)} refused: ${(err as Error).message}`);
      }
      return;
    }
    case 7:
      if (sim.config.membership) membershipChange(sim);
      return;
    case 8:
      if (sim.foreign !== null) foreignChatter(sim);
      return;
    case 9:
      if (sim.config.membership) foreignJoin(sim);
      return;
    case 10:
      if (sim.config.recovery && sim.recoveriesDone < p.recoveries && r.chance(0.25)) recover(sim);
      return;
    case 11:
    case 12:
      return; // a quiet spell
    default: {
      const leader = sim.currentLeader();
      // leaders are where the interesting histories start: crash one mid-replication
      const host = choice >= 13 + p.crashWeight ? leader : sim.hosts.get(r.pick(ids))!;
      if (host === null || !host.running) return;
      host.crash();
      sim.stats.crashes++;
      sim.note(`crash ${host === leader ? 'leader ' : ''}${host.name}`);
      sim.scheduleRestart(host.id);
    }
  }
}

/**
 * One membership operation on the leader, as `conclave cluster add/remove` runs it there: the real
 * MembershipOps (actors/controller/membership.ts) with the membership chart — offer, learner,
 * catch-up, promotion; or removal, then the removed node's notice (actors/controller/removal.ts) —
 * on the leader's simulated clock and bus, through whatever faults come. One operation at a time
 * while the process that runs it lives: a learner left behind is resumed (a blank node offered
 * again, a caught-up one promoted), a learner of another cluster or generation removed, a voter
 * beyond the cluster's size removed (the leader too: it hands leadership over first), else a blank
 * node added.
 */
function membershipChange(sim: Simulation): void {
  const leader = sim.currentLeader();
  const ops = leader?.membership ?? null;
  if (leader === null || ops === null) return;
  const running = sim.membershipOp;
  // the operation under way goes on while the process running it lives (a crash abandons it)
  if (running !== null && [...sim.hosts.values()].some((h) => h.membership === running)) return;
  const members = leader.core!.status().membership.members;
  const learner = members.find((m) => !m.voter);
  const voters = members.filter((m) => m.voter);
  if (learner !== undefined) {
    const host = sim.hosts.get(learner.nodeId);
    const ours = host !== undefined && !host.halted && (sim.lineageOf.get(host.id) === sim.mainLineage || (host.clusterId === null && host.joining === null) || sim.offeredBy.get(host.id) === sim.mainLineage);
    if (ours) runOp(sim, leader.name, ops, 'add', learner.name, host);
    else runOp(sim, leader.name, ops, 'remove', learner.name, null);
    return;
  }
  if (voters.length > sim.config.nodes) {
    runOp(sim, leader.name, ops, 'remove', sim.rng.pick(voters).name, null);
    return;
  }
  // bound the number of nodes a run creates (a recovery adds back a cluster's worth)
  if (sim.hosts.size > sim.config.nodes * (1 + sim.recoveriesDone) + 6) return;
  const n = sim.nextNodeNumber++;
  const name = `n${n}`;
  const host = sim.addHost(nodeUuid(n), name, null, null);
  if (sim.config.autoJoin && sim.rng.chance(0.3)) {
    // a blank node configured with `join.cluster`: it asks until a leader admits it and offers (actors/controller/autoJoin.ts)
    host.autoJoinCluster = CLUSTER_IDS[MAIN_CLUSTER]!;
    sim.note(`start ${name}: blank, configured to join ${MAIN_CLUSTER} (auto-join)`);
    host.start();
    return;
  }
  // a blank node: the leader's operation offers it membership, its join chart decides
  host.start();
  runOp(sim, leader.name, ops, 'add', name, host);
}

/** run one operation and count how it ended; a blank node that refuses the cluster's offer breaks the join rule */
function runOp(sim: Simulation, leader: string, ops: MembershipOps, op: 'add' | 'remove', target: string, blank: SimHost | null): void {
  sim.membershipOp = ops;
  sim.stats.opsStarted++;
  sim.stats.configChanges++;
  sim.note(`${leader}: cluster ${op} ${target} (membership operation)`);
  const run = op === 'add' ? ops.add(target) : ops.remove(target);
  run.then(
    (result) => {
      if (result.outcome === 'added') sim.stats.opsAdds++;
      else if (result.outcome === 'removed') sim.stats.opsRemoves++;
      sim.note(`${leader}: cluster ${op} ${target}: ${result.outcome}`);
    },
    (err: unknown) => {
      sim.stats.opsFailures++;
      const code = (err as { code?: string }).code ?? 'ERROR';
      sim.note(`${leader}: cluster ${op} ${target} failed: ${code}: ${(err as Error).message}`);
      if (op === 'add' && blank !== null && blank.clusterId === null && code === 'JOIN_REFUSED') {
        sim.fail(new ViolationError('join rule', `blank ${target} refused the offer of ${leader}: ${(err as Error).message}`));
      }
    },
  ).finally(() => {
    if (sim.membershipOp === ops) sim.membershipOp = null;
  });
}

/**
 * Nodes of another cluster, or of an older generation of this one, are offered membership by the
 * leader or ask the cluster for it, each through the real code: the cluster must not take them
 * (a refusal, or an admission whose join offer the node refuses).
 */
function foreignJoin(sim: Simulation): void {
  const leader = sim.currentLeader();
  if (leader === null) return;
  const stale = [...sim.hosts.values()].filter((h) => h.alive && h !== sim.foreign && clusterLabel(h.clusterId) === MAIN_CLUSTER && sim.lineageOf.get(h.id) !== sim.mainLineage);
  const r = sim.rng;
  const candidates: SimHost[] = [...(sim.foreign?.alive ? [sim.foreign] : []), ...(stale.length > 0 ? [r.pick(stale)] : [])];
  if (candidates.length === 0) return;
  const node = r.pick(candidates);
  if (r.chance(0.5)) realOffer(sim, leader, node);
  else realRequest(sim, node);
}

/**
 * The node's real auto-join request (requestJoin) on `<prefix>.discover`, answered by the real
 * admission (AutoJoin) of whichever leader hears it. A foreign node must be refused there; a stale
 * one shares the cluster id, so it may be admitted, and then refuses the leader's join offer. What
 * a node the cluster took anyway breaks is for the invariants to find (one cluster id).
 */
function realRequest(sim: Simulation, node: SimHost): void {
  const lineage = `${clusterLabel(node.clusterId)} generation ${node.generation}`;
  sim.note(`${node.name} (${lineage}) asks to join ${MAIN_CLUSTER} on ${PREFIX}.discover: the real request`);
  node.requestJoin(CLUSTER_IDS[MAIN_CLUSTER]!).then(
    (outcome) => {
      if (outcome.answer === 'admitted') {
        sim.note(`${node.name} was admitted by ${outcome.admission.leader}: its join offer follows`);
      } else if (outcome.answer === 'refused') {
        sim.stats.joinsRefused++;
        sim.note(`${node.name}'s request to join was refused: ${outcome.code}: ${outcome.message}`);
      } else {
        sim.note(`${node.name}'s request to join was not answered: ${(outcome.error as Error).message}`);
      }
    },
    (err: unknown) => sim.note(`${node.name}'s request to join failed: ${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`),
  );
}

/** the leader's real offer (offerJoin) to a foreign or stale node, answered by that node's real join handshake: it must refuse */
function realOffer(sim: Simulation, leader: SimHost, node: SimHost): void {
  const lineage = `${clusterLabel(node.clusterId)} generation ${node.generation}`;
  sim.note(`${leader.name} offers membership to ${node.name} (${lineage}): the real handshake`);
  leader.offer(node.name).then(
    (reply) => {
      if (reply.accepted) {
        // a node of another cluster, or of an older generation of this one (its lineage is the ghost's)
        const stale = node.clusterId !== null && node.clusterId === leader.clusterId;
        const detail = `${node.name} of ${sim.lineageOf.get(node.id) ?? lineage} accepted the offer of ${leader.name} of ${sim.lineageOf.get(leader.id) ?? '?'}`;
        sim.fail(new ViolationError(stale ? 'stale generation fenced off' : 'join rule', detail));
        return;
      }
      sim.stats.joinsRefused++;
      sim.note(`${node.name} refused the offer of ${leader.name}: ${reply.code}: ${reply.message}`);
    },
    (err: unknown) => sim.note(`${leader.name}'s offer to ${node.name} failed: ${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`),
  );
}

/**
 * Disaster recovery: the majority is lost. Every member but one survivor stops (they come back
 * later, stale); the survivor's store is made the sole voter under a new identity generation,
 * keeping what it had committed (SimHost.recover: the CLI's rule); the cluster then adds blank nodes back.
 */
function recover(sim: Simulation): void {
  const lineage = sim.mainLineage;
  const survivors = [...sim.hosts.values()].filter((h) => h.alive && sim.lineageOf.get(h.id) === lineage && h.core!.membership.members.some((m) => m.nodeId === h.id && m.voter));
  if (survivors.length === 0) return;
  const survivor = sim.rng.pick(survivors);
  for (const host of sim.hosts.values()) {
    if (host === survivor || !host.running || sim.lineageOf.get(host.id) !== lineage) continue;
    host.crash();
    sim.stats.crashes++;
    sim.scheduleRestart(host.id, 200, 3000);
  }
  survivor.crash();
  sim.mainGeneration++;
  const bugs = sim.config.bugs;
  // the ghost goes on from the commit point: a recovery that keeps less has lost committed entries
  const { commitPoint: keep, generation, pending } = survivor.recover({ keepGeneration: bugs.recoveryKeepsGeneration === true, commitShortBy: bugs.recoveryLosesCommitted ? 3 : 0 });
  if (!bugs.recoveryKeepsGeneration && generation !== sim.mainGeneration) throw new Error(`simulator: ${survivor.name} recovered to generation ${generation}, but the main cluster's next is ${sim.mainGeneration}`);
  const old = sim.ghosts.get(lineage)!;
  const next = lineageKey(MAIN_CLUSTER, sim.mainGeneration);
  sim.ghosts.set(next, old.derive(keep, pending));
  sim.invariants.recovered(lineage, next, keep);
  sim.stats.discardedByRecovery += Math.max(0, old.commit - keep);
  sim.setLineage(survivor.id, next);
  sim.mainLineage = next;
  sim.recoveriesDone++;
  sim.stats.recoveries++;
  sim.invariants.checkedMembership.clear();
  sim.liveProposal = null;
  sim.note(`RECOVERY: majority of ${lineage} lost; ${survivor.name} made sole voter of ${next}, keeping ${keep} (discarding ${Math.max(0, old.commit - keep)} committed above it)`);
  sim.scheduleRestart(survivor.id, 10, 100);
}

/** a node of another cluster addresses members, and blank nodes while they join: every such message must be dropped */
export function foreignChatter(sim: Simulation, target?: PeerId): void {
  const foreign = sim.foreign!;
  const to = target ?? sim.rng.pick(sim.memberIds());
  const term = (foreign.core?.currentTerm ?? 1) + 100;
  const msg: RaftMessage = sim.rng.chance(0.5)
    ? { type: 'heartbeat', from: foreign.id, to, term, commit: 0, context: null }
    : { type: 'vote', from: foreign.id, to, term, lastIndex: 1_000_000, lastTerm: term, transfer: true };
  sim.note(`foreign ${foreign.name} (${FOREIGN_CLUSTER}) sends ${msg.type} to ${sim.nameOf(to)}`);
  const sender = { name: foreign.name, nodeId: foreign.id, clusterId: CLUSTER_IDS[FOREIGN_CLUSTER]!, generation: 1 };
  sim.network.publish(foreign.id, `${PREFIX}.node.${sim.nameOf(to)}.peer`, encode(sender, 'raft', { messages: [msg] }));
}

export function healEverything(sim: Simulation): void {
  sim.faultsOn = false;
  sim.blocked.clear();
  sim.lagging = null;
  sim.crashArmed.clear();
  sim.note('--- heal every fault; liveness check begins ---');
  for (const host of sim.hosts.values()) {
    host.diskFull = false;
    if (!host.running && !host.halted) sim.schedule({ time: sim.time + 1, seq: 0, kind: 'restart', node: host.id });
  }
}

/** cut a follower off for seconds (it falls far behind), then let it catch up; and again later */
export function longLag(sim: Simulation, node: PeerId | null): void {
  const sr = sim.sizeRng;
  if (node !== null) {
    if (sim.lagging === node) sim.lagging = null;
    sim.note(`long lag of ${sim.nameOf(node)} ends`);
    if (sim.faultsOn) sim.schedule({ time: sim.time + sr.between(500, 3000), seq: 0, kind: 'lag', node: null });
    return;
  }
  if (!sim.faultsOn) return;
  const leader = sim.currentLeader();
  const followers = sim.memberIds().filter((id) => id !== leader?.id);
  if (followers.length === 0 || sim.lagging !== null) return;
  sim.lagging = sr.pick(followers);
  sim.stats.longLags++;
  sim.note(`long lag: ${sim.nameOf(sim.lagging)} cut off`);
  sim.schedule({ time: sim.time + sr.between(1000, 4000), seq: 0, kind: 'lag', node: sim.lagging });
}
