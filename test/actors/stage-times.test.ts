// Where a write's time goes (actors/stageTimes.ts): each observation lands in the first bucket whose
// bound it does not exceed; the commit stage times only what this node appended as leader, once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STAGE_BUCKETS, StageTimes } from '../../actors/stageTimes.ts';

function clock() {
  const c = { ms: 0, now: () => c.ms };
  return c;
}

test('an observation counts in the first bucket it fits, cumulatively, with its sum in seconds', () => {
  const c = clock();
  const t = new StageTimes(c.now);
  for (const ms of [0.05, 0.08, 0.3, 2, 5000]) {
    c.ms = 1000;
    t.observe('persist', 1000 - ms);
  }
  const h = t.histograms().persist;
  assert.equal(h.count, 5);
  assert.ok(Math.abs(h.sum - (0.05 + 0.08 + 0.3 + 2 + 5000) / 1000) < 1e-9);
  const at = (le: number) => h.cumulative[STAGE_BUCKETS.indexOf(le as (typeof STAGE_BUCKETS)[number])];
  assert.equal(at(0.0001), 2, '0.05 ms and 0.08 ms');
  assert.equal(at(0.0005), 3);
  assert.equal(at(0.0025), 4);
  assert.equal(at(1), 4, '5 s is beyond the last bound');
  assert.equal(h.cumulative.at(-1), 5, '+Inf');
  assert.equal(t.histograms().apply.count, 0, 'other stages untouched');
});

test('commit: from the append of an entry by this leader to its commit, once; what was appended and never committed as appended is dropped', () => {
  const c = clock();
  const t = new StageTimes(c.now);
  t.appended([{ index: 5 }, { index: 6 }], 10);
  c.ms = 13;
  t.committed([{ index: 5 }]);
  assert.equal(t.histograms().commit.count, 1);
  assert.ok(Math.abs(t.histograms().commit.sum - 0.003) < 1e-9);
  t.committed([{ index: 5 }]);
  assert.equal(t.histograms().commit.count, 1, 'an entry is timed once');
  // 6 was appended but 7 commits first in this node's view (6 was overwritten by another leader's): 6 is dropped
  t.committed([{ index: 7 }]);
  assert.equal(t.histograms().commit.count, 1);
  c.ms = 20;
  t.committed([{ index: 6 }]);
  assert.equal(t.histograms().commit.count, 1, 'not timed after it was dropped');
  t.appended([{ index: 8 }], 20);
  t.forgetAppended();
  t.committed([{ index: 8 }]);
  assert.equal(t.histograms().commit.count, 1, 'no longer leading: not timed');
});
