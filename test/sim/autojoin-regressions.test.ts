// Auto-join seeds that once broke an invariant, replayed as they were found (the same configuration
// as `npm run sim -- --seed S --nodes 5 --auto-join`). A change to the simulator's random draws may
// move such a run elsewhere, so the fix and the unit tests that pin it down are named here too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation } from './simulator.ts';

// Each of these: a blank node's broadcast join request reached both the stale leader of generation 1
// (not fenced yet) and the leader of the recovered generation 2. The node took the stale leader's
// offer, then accepted the recovered leader's offer as well (same cluster id: "already joining"),
// and that leader added it as a learner — one node counted by both generations. Fixed: a joining
// node refuses an offer of another generation of the cluster it joins (machines/join/machine.ts,
// otherGenerationWhileJoining; the generation is the durable contact's, recorded before it joins), so
// the second leader never adds it (test/membership/machines.test.ts, test/machines/bootstrap.test.ts).
// Seed 13530 (found by the sweep of seeds 10000–14999): the node accepted the recovered leader's
// offer and was listed as its learner, crashed before its first state, and after the restart took the
// stale leader's offer. The contact survives a restart and now carries the generation; a blank node
// refuses an offer older than its contact (olderGenerationThanContact, test/membership/machines.test.ts).
for (const seed of [416, 886, 1443, 2140, 3171, 13530]) {
  test(`seed ${seed}, 5 nodes, auto-join: a blank node offered by two generations of a recovered cluster is counted by one only`, async () => {
    const result = await runSimulation({ seed, nodes: 5, steps: 5000, membership: true, recovery: true, autoJoin: true });
    assert.equal(result.violation, null, result.violation?.message);
  });
}

// Seed 26895 (liveness): n1 added n6, which caught up as a learner; n1 appended its promotion and lost
// leadership before it committed. n6, a voter by that entry, was elected in term 4 with n1 and n3 (who
// held it) and n5. The other followers held n6 as a learner (n5 from the snapshot n6 sent it) and their
// door dropped its appends, heartbeats and snapshots as `not-a-voter`: the promotion could reach them
// only from n6, whose six-voter configuration needed one of them to commit. Fixed: only a TimeoutNow
// must come from a voter (actors/inbound.ts; test/actors/inbound-member-keys.test.ts).
test('seed 26895, 5 nodes, auto-join: a learner promoted by an uncommitted entry and elected on it is heard by followers that hold it as a learner', async () => {
  const result = await runSimulation({ seed: 26895, nodes: 5, steps: 5000, membership: true, recovery: true, autoJoin: true });
  assert.equal(result.violation, null, result.violation?.message);
});
