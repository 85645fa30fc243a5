// A start's first election timeout is cut from [T, 2T) to [1, T] ticks (actors/member.ts,
// advanceElectionClock), without campaigning by itself and only where a campaign can win a vote.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advanceElectionClock } from '../../actors/member.ts';
import { bootstrapRestore, RaftCore } from '../../machines/raft/core.ts';
import type { Membership } from '../../machines/raft/types.ts';

const T = 10;
const members = (voters: string[], learners: string[] = []): Membership => ({
  members: [...voters.map((id) => ({ nodeId: id, name: id, voter: true })), ...learners.map((id) => ({ nodeId: id, name: id, voter: false }))],
});
const core = (id: string, m: Membership, r: number) => new RaftCore({ id, electionTicks: T, heartbeatTicks: 1, random: () => r, restore: bootstrapRestore(m) });

/** ticks until the core campaigns (stops at 100) */
function ticksToCampaign(c: RaftCore): number {
  let ticks = 0;
  while ((c.currentRole === 'follower' || c.currentRole === 'learner') && ticks < 100) {
    c.tick();
    ticks++;
  }
  return ticks;
}

test('a voter of three campaigns within T ticks of its start, for every randomized timeout; the advance itself never campaigns', () => {
  const m = members(['a', 'b', 'c']);
  for (const r of [0, 0.5, 0.999999]) {
    const c = core('a', m, r);
    advanceElectionClock(c, T, m, 'a');
    assert.equal(c.currentRole, 'follower', `random ${r}: the advance campaigned`);
    // the timeout is T + ⌊r·T⌋ ticks; T − 1 of them have passed
    assert.equal(ticksToCampaign(c), 1 + Math.floor(r * T), `random ${r}`);
    assert.equal(c.currentRole, 'pre-candidate');
  }
});

test('the advance is for a start only: a follower that heard from a leader waits the whole randomized timeout again', () => {
  const m = members(['a', 'b', 'c']);
  const c = core('a', m, 0.999999);
  advanceElectionClock(c, T, m, 'a');
  c.step({ type: 'heartbeat', from: 'b', to: 'a', term: 2, commit: 0, context: null });
  assert.equal(c.status().leader, 'b');
  assert.equal(ticksToCampaign(c), 2 * T - 1);
});

test('a sole voter, a learner and a node outside the configuration are left as they are', () => {
  const sole = members(['a']);
  const c1 = core('a', sole, 0.5);
  advanceElectionClock(c1, T, sole, 'a');
  assert.equal(ticksToCampaign(c1), 1, 'a sole voter campaigns at its first tick, advanced or not');
  const withLearner = members(['a', 'b'], ['l']);
  const learner = core('l', withLearner, 0);
  advanceElectionClock(learner, T, withLearner, 'l');
  assert.equal(ticksToCampaign(learner), 100, 'a learner never campaigns');
  const outsider = core('x', members(['a', 'b']), 0);
  advanceElectionClock(outsider, T, members(['a', 'b']), 'x');
  assert.equal(ticksToCampaign(outsider), 100);
  // what the advance does is counted in ticks: for the learner it would have been T − 1 ticks (none campaign)
  let ticked = 0;
  advanceElectionClock({ tick: () => ticked++ }, T, withLearner, 'l');
  advanceElectionClock({ tick: () => ticked++ }, T, sole, 'a');
  assert.equal(ticked, 0);
  advanceElectionClock({ tick: () => ticked++ }, T, withLearner, 'a');
  assert.equal(ticked, T - 1);
});

test('ticks the role chart may already have given the core are not given again: the clock still stays below every randomized timeout', () => {
  const m = members(['a', 'b', 'c']);
  for (const elapsed of [0, 3, T - 1, T + 5]) {
    const c = core('a', m, 0);
    for (let i = 0; i < Math.min(elapsed, T - 1); i++) c.tick(); // what the role chart ticked (never a campaign: the timeout is T)
    advanceElectionClock(c, T, m, 'a', elapsed);
    assert.equal(c.currentRole, 'follower', `elapsed ${elapsed}: the advance campaigned`);
    assert.equal(ticksToCampaign(c), 1, `elapsed ${elapsed}`);
  }
  let ticked = 0;
  advanceElectionClock({ tick: () => ticked++ }, T, m, 'a', 4);
  assert.equal(ticked, T - 1 - 4);
});
