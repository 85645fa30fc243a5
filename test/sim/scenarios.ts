// What happens to the simulated cluster: faults (partitions, crashes, full disks, crashes at a
// write, long lags), the controller's part: a blank node's join through the real handshake (the
// leader's offer, the node's join and bootstrap charts); modelled still: membership changes through
// the leader's member, foreign and stale nodes' handshakes, disaster recovery, a foreign cluster's
// chatter. The clients are in clients.ts.
import { checkJoin } from '../../machines/identity/index.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { PeerId } from '../../machines/raft/types.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { ViolationError } from './config.ts';
import { CLUSTER_IDS, clusterLabel, FOREIGN_CLUSTER, lineageKey, MAIN_CLUSTER, nodeUuid } from './ghost.ts';
import type { SimHost } from './host.ts';
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

/** one single-server change through the leader's member: promote a caught-up learner, remove a voter, or add a blank node */
function membershipChange(sim: Simulation): void {
  const leader = sim.currentLeader();
  if (leader === null) return;
  const status = leader.core!.status();
  const members = status.membership.members;
  const learner = members.find((m) => !m.voter);
  const voters = members.filter((m) => m.voter);
  const member = leader.member!;
  const refused = (what: string) => (err: Error) => sim.note(`${leader.name}: ${what} refused: ${err.message}`);
  if (learner !== undefined) {
    const host = sim.hosts.get(learner.nodeId);
    if (host?.running && host.clusterId === null && host.joining === null) {
      // a blank learner that restarted before its first state forgot the offer: the cluster offers again
      offerToBlank(sim, leader, host, () => {});
      return;
    }
    if ((status.progress[learner.nodeId]?.matchIndex ?? 0) < status.commit) return; // still catching up
    sim.stats.configChanges++;
    sim.note(`${leader.name}: promote ${sim.nameOf(learner.nodeId)}`);
    member.changeMembership({ type: 'promote', nodeId: learner.nodeId }).catch(refused('promote'));
    return;
  }
  if (voters.length > sim.config.nodes) {
    const victim = sim.rng.pick(voters);
    sim.stats.configChanges++;
    sim.note(`${leader.name}: remove ${victim.name}`);
    member.changeMembership({ type: 'remove', nodeId: victim.nodeId }).catch(refused(`remove ${victim.name}`));
    return;
  }
  // bound the number of nodes a run creates (a recovery adds back a cluster's worth)
  if (sim.hosts.size > sim.config.nodes * (1 + sim.recoveriesDone) + 6) return;
  const n = sim.nextNodeNumber++;
  const id = nodeUuid(n);
  const name = `n${n}`;
  // a blank node: the cluster offers, the node's join chart decides, then the learner is proposed
  const host = sim.addHost(id, name, null, null);
  host.start();
  offerToBlank(sim, leader, host, () => {
    sim.stats.configChanges++;
    sim.note(`${leader.name}: add blank learner ${name}`);
    // refused (a change is pending), or its outcome unknown: the blank node stays, joining, and is offered again later
    member.changeMembership({ type: 'add-learner', member: { name, nodeId: id } }).catch(refused(`add ${name}`));
    // a foreign node talks to the blank node while it joins: it must listen only to the cluster it joins
    if (sim.foreign !== null && sim.rng.chance(0.5)) foreignChatter(sim, id);
  });
}

/**
 * The join handshake with a blank node, both halves real: the leader's offer travels the simulated
 * bus to the node's admin subject, where its join chart records the contact and enters joining
 * (hostController.ts). Accepted, `then` runs while the same leader process still runs; refused by a
 * node that is still blank and in no cluster, the join rule is broken; unanswered, the node stays blank.
 */
function offerToBlank(sim: Simulation, leader: SimHost, host: SimHost, then: () => void): void {
  const member = leader.member;
  sim.note(`${leader.name}: offers ${host.name} to join`);
  leader.offer(host.name).then(
    (reply) => {
      if (reply.accepted) {
        if (leader.member === member) then();
        return;
      }
      sim.stats.joinsRefused++;
      sim.note(`${host.name} refused the offer of ${leader.name}: ${reply.message}`);
      if (host.clusterId === null && reply.code === 'JOIN_REFUSED') sim.fail(new ViolationError('join rule', `blank ${host.name} refused the offer of ${leader.name}: ${reply.message}`));
    },
    (err: Error) => sim.note(`${leader.name}: the offer to ${host.name} failed: ${err.message}`),
  );
}

/**
 * The join handshake of a foreign or stale node (offer from the cluster, or request from the node),
 * as a model: both ends state cluster id and generation and apply the join rule; a refusal is made
 * at both ends.
 */
function handshake(sim: Simulation, member: SimHost, node: SimHost, kind: 'offer' | 'request'): boolean {
  const a = { name: member.name, clusterId: member.clusterId };
  const b = { name: node.name, clusterId: node.clusterId };
  const atNode = checkJoin(b, a);
  const atMember = checkJoin(a, b);
  if (atNode.allowed !== atMember.allowed) throw new ViolationError('join rule', `${kind} ${member.name} ↔ ${node.name}: allowed at one end only`);
  const sameCluster = member.clusterId !== null && member.clusterId === node.clusterId;
  const generationsDiffer = sameCluster && member.generation !== node.generation;
  const allowed = (atNode.allowed && !generationsDiffer) || sim.config.bugs.joinSkipsRule === true;
  if (!allowed) {
    sim.stats.joinsRefused++;
    const why = atNode.allowed ? `generation ${node.generation} vs ${member.generation} of ${clusterLabel(member.clusterId)}` : atNode.message;
    sim.note(`${kind} ${member.name} ↔ ${node.name} refused at both ends: ${why}`);
    return false;
  }
  return true;
}

/** nodes of another cluster, or of an older generation of this one, are offered or ask to join: refused at both ends */
function foreignJoin(sim: Simulation): void {
  const leader = sim.currentLeader();
  if (leader === null) return;
  const stale = [...sim.hosts.values()].filter((h) => h.alive && h !== sim.foreign && clusterLabel(h.clusterId) === MAIN_CLUSTER && sim.lineageOf.get(h.id) !== sim.mainLineage);
  const r = sim.rng;
  const candidates: SimHost[] = [...(sim.foreign?.alive ? [sim.foreign] : []), ...(stale.length > 0 ? [r.pick(stale)] : [])];
  if (candidates.length === 0) return;
  const node = r.pick(candidates);
  const kind = r.chance(0.5) ? 'offer' : 'request';
  if (!handshake(sim, leader, node, kind)) return;
  if (leader.core!.membership.members.some((m) => m.nodeId === node.id)) return;
  sim.stats.configChanges++;
  sim.note(`${leader.name}: add learner ${node.name} (${clusterLabel(node.clusterId)} generation ${node.generation})`);
  leader.member!.changeMembership({ type: 'add-learner', member: { name: node.name, nodeId: node.id } }).catch(() => {});
}

/**
 * Disaster recovery: the majority is lost. Every member but one survivor stops (they come back
 * later, stale); the survivor's store is made the sole voter under a new identity generation,
 * keeping what it had committed; the cluster then adds blank nodes back.
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
  const { commitPoint: keep } = survivor.recover(bugs.recoveryKeepsGeneration ? survivor.generation : sim.mainGeneration, bugs.recoveryLosesCommitted ? 3 : 0);
  const old = sim.ghosts.get(lineage)!;
  const next = lineageKey(MAIN_CLUSTER, sim.mainGeneration);
  sim.ghosts.set(next, old.derive(keep));
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
function foreignChatter(sim: Simulation, target?: PeerId): void {
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
