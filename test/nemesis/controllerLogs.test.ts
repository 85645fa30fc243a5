import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkOneLeaderPerTerm, lastErrorLine } from './controllerLogs.ts';

const line = (fields: object) => JSON.stringify({ level: 30, ...fields });

test('controller logs: two leaders in a term and a refused second leader are problems, with the times they were seen', () => {
  const refusal = { level: 40, reason: 'two-leaders', detail: 'heartbeat from B in term 4, which A leads', msg: 'dropped peer message' };
  const n1 = [line({ time: 1000, msg: 'role leader, term 2, leader n1' }), line({ time: 5000, ...refusal }), line({ time: 5300, ...refusal }), line({ time: 6000, msg: 'role leader, term 5, leader n1' })].join('\n');
  const n2 = [line({ time: 3000, msg: 'role leader, term 2, leader n2' }), line({ time: 4000, msg: 'role follower, term 4, leader n3' }), 'error: raft invariant violated: term would go back from 5 to 4'].join('\n');
  const problems: string[] = [];
  const sightings = checkOneLeaderPerTerm(
    [
      { name: 'n1', text: n1 },
      { name: 'n2', text: n2 },
    ],
    problems,
  );
  assert.deepEqual(problems, ['n1 saw two leaders in one term: heartbeat from B in term 4, which A leads', 'term 2 had 2 leaders: n1, n2']);
  assert.deepEqual(sightings, [
    { problem: problems[0], first: 5000, last: 5300 },
    { problem: problems[1], first: 1000, last: 3000 },
  ]);
  assert.equal(lastErrorLine(n2), 'error: raft invariant violated: term would go back from 5 to 4');
});

test('controller logs: one leader per term is no problem; no leadership at all is one', () => {
  const problems: string[] = [];
  assert.deepEqual(checkOneLeaderPerTerm([{ name: 'n1', text: line({ time: 1, msg: 'role leader, term 2, leader n1' }) }, { name: 'n2', text: line({ time: 2, msg: 'role leader, term 3, leader n2' }) }], problems), []);
  assert.deepEqual(problems, []);
  checkOneLeaderPerTerm([{ name: 'n1', text: line({ time: 1, msg: 'role follower, term 2' }) }], problems);
  assert.deepEqual(problems, ['no controller logged a leadership (the leader-per-term check found nothing to check)']);
});
