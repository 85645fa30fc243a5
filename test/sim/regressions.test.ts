// Seeds that once broke an invariant, replayed as they were found (the same configuration as
// `npm run sim -- --seed S --nodes N`). A change to the simulator's random draws may move such a run
// elsewhere, so each also names the fix and the unit test that pins the behaviour down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation } from './simulator.ts';

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
