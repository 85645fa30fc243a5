// Seeds that once broke an invariant, replayed as they were found (the same configuration as
// `npm run sim -- --seed S --nodes N`). A change to the simulator's random draws may move such a run
// elsewhere, so each also names the fix and the unit test that pins the behaviour down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HARSH_PROFILE, runSimulation } from './simulator.ts';

test('seed 60, 3 nodes: a follower that misses a snapshot chunk tells the leader, which starts over at once (liveness)', async () => {
  // Two followers got reordered snapshot chunks and dropped the transfers; the leader learned it only
  // from its 5 s stall timer, and no entry committed within 5 s of healing every fault. Fixed by the
  // receiver's TRANSFER_GIVEN_UP notice (actors/snapshots.ts; test/actors/snapshotStream.test.ts).
  const result = await runSimulation({ seed: 60, nodes: 3, steps: 5000, membership: true, recovery: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 17, 3 nodes, auto-join: a blank node joining a recovered cluster does not take a stale leader for it (stale generation fenced off)', async () => {
  // A blank node was admitted by a leader, was still blank when the cluster was recovered to a new
  // generation, then took the recovered leader's offer; the stale leader still listed it and its
  // appends reached the joining node, which checked their cluster id but not their generation. Fixed:
  // the joining node checks peers against the generation of the offer it took (JoinOffer.generation →
  // JoinAccepted → the member's joining mode; actors/memberParts.ts).
  const result = await runSimulation({ seed: 17, nodes: 3, steps: 10_000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 65, 3 nodes, auto-join: a snapshot transfer that ends below the snapshot the leader now needs is followed by another (liveness)', async () => {
  // A joining learner installed the leader's applied state at 124 while the leader compacted to 126
  // and asked for a snapshot again; the host, which had just completed a transfer to it, refused to
  // start one for 5 s (its "completed recently" rule ignored the index), and the core, told that
  // "the" snapshot had arrived, probed from 127 as if the follower held 126. The learner had been
  // promoted meanwhile, and nothing committed. Fixed: a completed transfer spares only a request at
  // or below its index (actors/snapshotStream.ts; test/actors/snapshotStream.test.ts), and the core
  // probes from the index the host reports delivered, or from the match index when a snapshot is
  // presumed lost (machines/raft/progress.ts; test/raft/testdata/snapshot-report.txt).
  const result = await runSimulation({ seed: 65, nodes: 3, steps: 5000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 21, 3 nodes, harsh, auto-join: two lagging followers get a newer snapshot at once, not after the grace of the last one (liveness)', async () => {
  // The leader had completed snapshot 14 to the followers, compacted to 17, and asked again: refused
  // for 5 s as "completed recently", so the leader only sent them heartbeats. Same fix as seed 65.
  const result = await runSimulation({ seed: 21, nodes: 3, steps: 5000, membership: true, recovery: true, autoJoin: true, profile: HARSH_PROFILE });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 3335, 5 nodes, auto-join: a learner that still needs a snapshot is not promoted, and a transfer whose last chunk was lost is retried (liveness)', async () => {
  // Recovery left n2 the sole voter; n6 joined, installed snapshot 71 and acknowledged it, while n2
  // compacted to 73 and committed 73: within the catch-up lag of the commit, so n6 was promoted (74)
  // though only another snapshot could catch it up, and the quorum of two needed it. The snapshot's
  // one chunk was cut by a partition; the sender, having read the whole state, had stopped the stall
  // timer, so the transfer "ran" for good and n2 never committed past 73. Fixed twice over: a learner
  // is caught up only when the leader's log holds what follows its match index and no snapshot is on
  // its way (machines/membership/config.ts; test/membership/machines.test.ts), and the stall timer
  // runs until a transfer ends (actors/snapshotStream.ts; test/actors/snapshotStream.test.ts).
  const result = await runSimulation({ seed: 3335, nodes: 5, steps: 5000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 95332, 3 nodes: a removal committed after an index every node had compacted is seen as committed (the checker, not the product)', async () => {
  // The leader committed the removal of n5 at index 112 and told it; the invariant "removed only by
  // a committed configuration" said the latest committed configuration was at 60. The checker's ghost
  // advanced its commit only over entries some node still held: index 61 was inside every node's
  // snapshot, so the ghost stopped at 60 for good. Fixed in the checker (test/sim/invariants.ts,
  // checkCommitted): an index inside a node's snapshot is committed, the ghost's commit moves over it
  // with its term unknown, and the removal check does not judge across such an entry. The same sweep
  // with the planted removalNoticeBeforeCommit and recoveryLosesCommitted bugs finds as many as before.
  const result = await runSimulation({ seed: 95332, nodes: 3, steps: 5000, membership: true, recovery: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 114387, 5 nodes, auto-join: a node that takes an offer its leader made before being recovered joins the offer\'s generation (the checker, not the product)', async () => {
  // n5 offered n6 a place in cluster-main/g2, was then recovered as sole voter of g3, and n6 accepted
  // the offer (of generation 2) just after; n5's earlier g2 heartbeat then reached n6, which took it.
  // The checker had placed n6 in the leader's lineage at acceptance (g3) and called that processing a
  // stale generation. The node joins what the offer names (JoinAccepted.generation; actors/memberParts.ts
  // checks peers against it), so the checker now places it in the offer's lineage, and fails a join
  // into a lineage its leader never belonged to (test/sim/hostWorld.ts, accepted). The planted
  // joinSkipsRule, inboundSkipsJoinRule and recoveryKeepsGeneration bugs are found as often or more.
  const result = await runSimulation({ seed: 114387, nodes: 5, steps: 5000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 132847, 3 nodes, auto-join: a recovery is a durable write in the simulated disk too (the model, not the product)', async () => {
  // n1 was recovered (its store rewritten, as `conclave recover` does in one durable transaction) while
  // applies made before its crash were still only 'ordered' in the model; a power loss after the
  // restart then put back the state and applied index of before the recovery, and a read found k5
  // missing. The model's recovery now makes what the store held durable (test/sim/host.ts recover).
  const result = await runSimulation({ seed: 132847, nodes: 3, steps: 5000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seed 151020, 5 nodes, auto-join: a write the process crashed right after is reported to the checker (the model, not the product)', async () => {
  // n6 took an offer and wrote the cluster id with its first state; the simulator crashed it right
  // after that write, and the store model told the checker of the adoption only after the write had
  // returned, so never. On restart n6 held cluster-main while the checker still had it as joining:
  // "one cluster id". The write's reports now run as part of the write (test/sim/store.ts write;
  // test/sim/store-model.test.ts).
  const result = await runSimulation({ seed: 151020, nodes: 5, steps: 5000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});

test('seeds 172221 and 174276, 5 nodes, auto-join: a recovery turns the pending config entries into no-ops, and the checker knows it (the model, not the product)', async () => {
  // n2's store had applied up to 14 durably when the majority was lost (its applied state waits for
  // raft's next write: actors/appliedState.ts); the recovery kept the committed 15, a config entry,
  // as a no-op (runtime/store/recoveryPlan.ts), and n2 applied that no-op at 15 while the checker's
  // new lineage still had the config there: "state machine safety". The new lineage's ghost now takes
  // the recovery's rewritten entries (Ghost.derive).
  for (const seed of [172221, 174276]) {
    const result = await runSimulation({ seed, nodes: 5, steps: 5000, membership: true, recovery: true, autoJoin: true });
    assert.equal(result.violation, null, `seed ${seed}: ${result.violation?.message}`);
  }
});
