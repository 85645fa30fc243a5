// The simulator must catch deliberately broken cores, a deliberately broken recovery plan (the one
// `conclave recover` follows), deliberately broken member code (ready loop, inbound filter,
// forwarding) and a deliberately broken controller (the join rule skipped in the join handshake and
// auto-join, membership operations) — each planted in the real code the simulator runs, behind its
// test-only switch; a reported seed must replay exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RaftTestHooks } from '../../machines/raft/core.ts';
import { HARSH_PROFILE, runSimulation, SIM_MAX_PAYLOAD, type SimBugs, type SimConfig } from './simulator.ts';

const HARSH = HARSH_PROFILE;

const MAX_SEEDS = 400;

async function hunt(testHooks: RaftTestHooks, base: Omit<SimConfig, 'seed' | 'testHooks'>): Promise<SimConfig> {
  for (let seed = 1; seed <= MAX_SEEDS; seed++) {
    const config: SimConfig = { ...base, seed, testHooks };
    if ((await runSimulation(config)).violation !== null) return config;
  }
  assert.fail(`no violation found in ${MAX_SEEDS} seeds with ${JSON.stringify(testHooks)}`);
}

async function huntBug(bugs: SimBugs, base: Omit<SimConfig, 'seed' | 'bugs'>): Promise<SimConfig> {
  for (let seed = 1; seed <= MAX_SEEDS; seed++) {
    const config: SimConfig = { ...base, seed, bugs };
    if ((await runSimulation(config)).violation !== null) return config;
  }
  assert.fail(`no violation found in ${MAX_SEEDS} seeds with ${JSON.stringify(bugs)}`);
}

async function assertReplays(config: SimConfig): Promise<void> {
  const first = await runSimulation(config);
  const second = await runSimulation(config);
  assert.ok(first.violation !== null);
  assert.deepEqual(second.violation, first.violation, 'the same seed must give the same violation and trace');
  assert.deepEqual(second.stats, first.stats);
  assert.ok(first.violation.trace.length > 10, 'the report carries a trace');
  console.log(`found ${first.violation.invariant} at seed ${config.seed}, step ${first.violation.step}: ${first.violation.message.split('\n')[0]}`);
}

test('counting each vote twice is caught (two leaders in one term)', async () => {
  const config = await hunt({ countVotesTwice: true }, { nodes: 3, steps: 5000 });
  await assertReplays(config);
  const violation = (await runSimulation(config)).violation!;
  assert.match(violation.invariant, /election safety|log matching|leader completeness|state machine safety|core assertion/);
});

test("committing an earlier term's entry by counting replicas is caught (figure 8)", async () => {
  const config = await hunt({ commitPriorTermByCount: true }, { nodes: 3, steps: 5000, profile: HARSH });
  await assertReplays(config);
});

test('the correct core passes the same harsh profile', async () => {
  for (let seed = 1; seed <= 100; seed++) {
    const result = await runSimulation({ seed, nodes: 3, steps: 5000, profile: HARSH });
    assert.equal(result.violation, null, result.violation?.message);
  }
});

// ---- the membership layer: the cluster-id invariants must catch each of these

test('a controller that skips the join rule is caught both ways — a foreign node accepts an offer, a leader admits its request and adds it — and each replays from its seed', async () => {
  // planted in the real code (ControllerTestFaults.joinSkipsRule): the node's join handshake, the
  // leader's admission of an auto-join request and its check of an offer's answer
  const offer = 'join rule';
  const request = 'one cluster id';
  const found = new Map<string, SimConfig>();
  for (let seed = 1; seed <= MAX_SEEDS && found.size < 2; seed++) {
    const config: SimConfig = { seed, nodes: 3, steps: 5000, bugs: { joinSkipsRule: true } };
    const violation = (await runSimulation(config)).violation;
    if (violation === null) continue;
    assert.ok(violation.invariant === offer || violation.invariant === request, `seed ${seed}: unexpected ${violation.invariant}: ${violation.message}`);
    if (!found.has(violation.invariant)) found.set(violation.invariant, config);
  }
  assert.ok(found.has(offer) && found.has(request), `in ${MAX_SEEDS} seeds found only: ${[...found.keys()].join(', ') || 'nothing'}`);

  // the offer: the leader's real offerJoin, the foreign node's real join handshake accepts it
  const offered = found.get(offer)!;
  await assertReplays(offered);
  assert.match((await runSimulation(offered)).violation!.message, /^x1 of cluster-foreign\/g1 accepted the offer of n\d+ of cluster-main\/g\d+$/);

  // the request: the foreign node's real auto-join request, the leader's real admission, its
  // membership operation offers, the foreign node accepts, and the cluster counts it as a member
  const requested = found.get(request)!;
  await assertReplays(requested);
  const whole = await runSimulation({ ...requested, traceSize: 1_000_000 });
  assert.match(whole.violation!.message, /counts x1 as a (learner|voter), but x1 belongs to cluster-foreign/);
  const asked = whole.trace.findIndex((line) => /x1 \(cluster-foreign generation 1\) asks to join cluster-main on sim\.discover: the real request$/.test(line));
  assert.ok(asked >= 0, 'the trace shows the request');
  assert.ok(whole.trace.slice(asked).some((line) => /deliver n\d+→x1 join\.offer/.test(line)), "the trace shows the admitting leader's join offer after it");

  // the same seeds with the controller as it ships keep every invariant: the planted fault is what broke them
  for (const config of [offered, requested]) {
    const shipped = await runSimulation({ ...config, bugs: {} });
    assert.equal(shipped.violation, null, shipped.violation?.message);
  }
});

test('a recovery that keeps the old identity generation is caught (stale members not fenced off)', async () => {
  const config = await huntBug({ recoveryKeepsGeneration: true }, { nodes: 3, steps: 5000 });
  await assertReplays(config);
  const violation = (await runSimulation(config)).violation!;
  // a generation that did not change shows as the old one reaching the new: the stale member reaches a
  // core of the new generation, is counted in its configuration, or accepts the new generation's join
  // offer (the real handshake: scenarios.ts realOffer); or a blank node takes an offer that names the
  // kept (old) generation and is counted by a member of the new one
  assert.ok(['stale generation fenced off', 'one cluster id'].includes(violation.invariant), `${violation.invariant}: ${violation.message}`);
  assert.match(
    violation.message,
    /\(cluster-main\/g\d+\) processed .* of cluster-main\/g\d+|of cluster-main\/g\d+ counts n\d+ as a (learner|voter), but n\d+ belongs to cluster-main\/g\d+|n\d+ of cluster-main\/g\d+ accepted the offer of n\d+ of cluster-main\/g\d+|of cluster-main\/g\d+ counts n\d+ as a (learner|voter), but n\d+ belongs to nothing \(blank, joining cluster-main\/g\d+\)/,
  );
});

test('a recovery that keeps less than the survivor committed is caught', async () => {
  const config = await huntBug({ recoveryLosesCommitted: true }, { nodes: 3, steps: 5000 });
  await assertReplays(config);
  const violation = (await runSimulation(config)).violation!;
  assert.match(violation.invariant, /committed entries never lost|state machine safety|leader completeness|log matching/);
});

// ---- message size (issue 17): the simulated bus enforces a max payload

test('appends batched by entry count only (before issue 17) are caught: with large commands a batch cannot be sent', async () => {
  const config = await huntBug({ appendsIgnoreBytes: true }, { nodes: 3, steps: 5000, profile: { largeCommands: true, longLags: true } });
  await assertReplays(config);
  assert.equal((await runSimulation(config)).violation!.invariant, 'message size');
});

test('the correct core with large commands and long lags sends every message within the max payload', async () => {
  let largest = 0;
  let large = 0;
  let tooLarge = 0;
  let lags = 0;
  let snapshots = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const result = await runSimulation({ seed, nodes: 3, steps: 5000, profile: { largeCommands: true, longLags: true } });
    assert.equal(result.violation, null, result.violation?.message);
    largest = Math.max(largest, result.stats.largestMessage);
    large += result.stats.largeCommands;
    tooLarge += result.stats.commandsTooLarge;
    lags += result.stats.longLags;
    snapshots += result.stats.snapshotsSent;
  }
  console.log(`sim size: 60 seeds, ${large} large commands, ${tooLarge} refused at the door, ${lags} long lags, ${snapshots} snapshots, largest message ${largest} of ${SIM_MAX_PAYLOAD} bytes`);
  assert.ok(large > 0 && tooLarge > 0 && lags > 0, 'large commands, refusals at the door and long lags all came up');
  assert.ok(largest > SIM_MAX_PAYLOAD / 2, 'appends were filled up to their byte budget');
});

// ---- the member's own ready loop (actors/readyLoop.ts), which the simulator runs

test('a ready loop that sends before it persists (a vote before the vote is durable) is caught, and replays from its seed', async () => {
  // a follower that acknowledged what it then lost may also wedge replication (liveness); hunt for a broken safety property
  const safety = /election safety|log matching|leader completeness|state machine safety|committed entries never lost/;
  let config: SimConfig | null = null;
  for (let seed = 1; seed <= MAX_SEEDS && config === null; seed++) {
    const candidate: SimConfig = { seed, nodes: 3, steps: 5000, bugs: { sendBeforePersist: true } };
    const found = (await runSimulation(candidate)).violation;
    if (found !== null && safety.test(found.invariant)) config = candidate;
  }
  assert.ok(config !== null, `no safety violation found in ${MAX_SEEDS} seeds with the ready loop sending before persisting`);
  await assertReplays(config);
  // the same seed with the ready loop as it ships keeps every invariant: the planted fault is what broke it
  const shipped = await runSimulation({ ...config, bugs: {} });
  assert.equal(shipped.violation, null, shipped.violation?.message);
});

// ---- the member's inbound filter (actors/inbound.ts), which the simulator runs

test('an inbound filter that skips the join rule (raft traffic of another cluster reaches the core) is caught, and replays from its seed', async () => {
  const config = await huntBug({ inboundSkipsJoinRule: true }, { nodes: 3, steps: 5000 });
  await assertReplays(config);
  const violation = (await runSimulation(config)).violation!;
  assert.equal(violation.invariant, 'one cluster id');
  assert.match(violation.message, /processed .* of cluster-foreign\/g1/);
  // the same seed with the inbound filter as it ships keeps every invariant: the planted fault is what broke it
  const shipped = await runSimulation({ ...config, bugs: {} });
  assert.equal(shipped.violation, null, shipped.violation?.message);
});

// ---- the member's forwarding (actors/forwarding.ts), which the simulator runs: clients write and read through any member

/** the planted fault found, its seed replayed, and the same seed with the code as it ships keeps every invariant */
async function assertForwardingBugCaught(bugs: SimBugs, invariant: string | RegExp, message: RegExp): Promise<void> {
  const config = await huntBug(bugs, { nodes: 3, steps: 5000 });
  await assertReplays(config);
  const violation = (await runSimulation(config)).violation!;
  if (typeof invariant === 'string') assert.equal(violation.invariant, invariant);
  else assert.match(violation.invariant, invariant);
  assert.match(violation.message, message);
  const shipped = await runSimulation({ ...config, bugs: {} });
  assert.equal(shipped.violation, null, shipped.violation?.message);
}

test('forwarding that waits out its full timeout on a leader its node stopped following is caught (forward fails fast), and replays from its seed', async () => {
  await assertForwardingBugCaught({ forwardIgnoresLeaderLoss: true }, 'forward fails fast', /forwarded at t=\d+ms to n\d, is still pending \d+ ms after n\d stopped following n\d/);
});

test('forwarding that answers a write abandoned with its leader NO_LEADER (not applied) is caught when the leader applied it, and replays from its seed', async () => {
  await assertForwardingBugCaught({ forwardLossSaysNotApplied: true }, 'refused write not applied', /NO_LEADER \(not applied\)/);
});

test('forwarding that sends a write again to the new leader after leadership moved is caught (applied twice, or applied after a clear refusal), and replays from its seed', async () => {
  await assertForwardingBugCaught({ forwardRetriesOnNewLeader: true }, /no write applied twice|refused write not applied|forward fails fast/, /applied|still pending/);
});

// ---- the leader's membership operations (actors/controller/membership.ts, removal.ts), which the simulator runs

test('a removal whose notice goes out before the removal commits is caught (the node leaves for good while still a member), and replays from its seed', async () => {
  const config = await huntBug({ removalNoticeBeforeCommit: true }, { nodes: 3, steps: 5000 });
  await assertReplays(config);
  const violation = (await runSimulation(config)).violation!;
  assert.equal(violation.invariant, 'removed only by a committed configuration');
  assert.match(violation.message, /n\d+ left cluster-main\/g\d+ for good as removed, but the latest configuration .* still lists it as a (voter|learner)/);
  assert.ok(violation.trace.some((line) => / cluster remove n\d+ \(membership operation\)$/.test(line)), 'the trace shows the membership operation');
  // the same seed with the membership operations as they ship keeps every invariant: the planted fault is what broke it
  const shipped = await runSimulation({ ...config, bugs: {} });
  assert.equal(shipped.violation, null, shipped.violation?.message);
});
