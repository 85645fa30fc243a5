// Issue 17 item 2, in the pure core: what a peer sends is never an assertion. A message that would
// break an invariant of this node (a second leader in our term, an acknowledgement beyond our log,
// a commit beyond our log, entries that do not continue the log) is refused and reported in
// Ready.refused; the core keeps running and nothing about its own state changes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapRestore, RaftCore } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Membership } from '../../machines/raft/types.ts';

const voters = (...ids: string[]): Membership => ({ members: ids.map((id) => ({ nodeId: id, name: id, voter: true })) });

function core(id: string): RaftCore {
  return new RaftCore({ id, electionTicks: 10, heartbeatTicks: 1, random: () => 0, restore: bootstrapRestore(voters('a', 'b', 'c')) });
}

/** drain every Ready as a host would (all persisted, sent and applied) */
function settle(c: RaftCore): { refused: Array<{ reason: string; from: string }> } {
  const refused: Array<{ reason: string; from: string }> = [];
  while (c.hasReady()) {
    const rd = c.ready();
    for (const r of rd.refused) refused.push({ reason: r.reason, from: r.from });
    c.advance(rd);
  }
  return { refused };
}

/** `a` leads term 2 of {a, b, c} */
function leaderA(): RaftCore {
  const a = core('a');
  for (let i = 0; i < 10; i++) a.tick();
  assert.equal(a.currentRole, 'pre-candidate');
  a.step({ type: 'pre-vote-response', from: 'b', to: 'a', term: 2, granted: true });
  assert.equal(a.currentRole, 'candidate');
  a.step({ type: 'vote-response', from: 'b', to: 'a', term: 2, granted: true });
  assert.equal(a.currentRole, 'leader');
  settle(a);
  return a;
}

/** `b` follows leader `a` in term 2 with a log of [1:1, 2:2] all committed */
function followerB(): RaftCore {
  const b = core('b');
  b.step({ type: 'append', from: 'a', to: 'b', term: 2, prevIndex: 1, prevTerm: 1, entries: [{ index: 2, term: 2, type: 'noop', data: null }], commit: 2 });
  settle(b);
  assert.equal(b.commitIndex, 2);
  return b;
}

function snapshotOf(c: RaftCore) {
  const s = c.status();
  return { role: s.role, term: s.term, leader: s.leader, commit: s.commit, lastIndex: s.lastIndex, lastTerm: s.lastTerm, membership: s.membership };
}

describe('raft core: peer input that would break an invariant is refused, not asserted', () => {
  it('(2a) a heartbeat (or append, or snapshot) in our own term from another "leader" is refused; the leader keeps leading', () => {
    const a = leaderA();
    const before = snapshotOf(a);
    const forged: RaftMessage[] = [
      { type: 'heartbeat', from: 'b', to: 'a', term: 2, commit: 0, context: null },
      { type: 'append', from: 'c', to: 'a', term: 2, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
      { type: 'snapshot', from: 'b', to: 'a', term: 2, snapshot: { index: 50, term: 2, membership: voters('b') } },
    ];
    for (const m of forged) assert.doesNotThrow(() => a.step(m));
    const { refused } = settle(a);
    assert.deepEqual(refused.map((r) => r.reason), ['two-leaders', 'two-leaders', 'two-leaders']);
    assert.deepEqual(snapshotOf(a), before);
  });

  it('(2b) an acknowledgement beyond our last index is refused and leaves the follower progress as it was', () => {
    const a = leaderA();
    const before = snapshotOf(a);
    const progress = a.status().progress.b;
    assert.doesNotThrow(() => a.step({ type: 'append-response', from: 'b', to: 'a', term: 2, index: before.lastIndex + 5, reject: false, rejectHint: 0, hintTerm: 0 }));
    const { refused } = settle(a);
    assert.deepEqual(refused, [{ reason: 'ack-beyond-last', from: 'b' }]);
    assert.deepEqual(snapshotOf(a), before);
    assert.deepEqual(a.status().progress.b, progress);
  });

  it('a commit index beyond our log (heartbeat or append) is refused: nothing is committed that we do not hold', () => {
    const b = followerB();
    const before = snapshotOf(b);
    assert.doesNotThrow(() => b.step({ type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 99, context: null }));
    const { refused } = settle(b);
    assert.deepEqual(refused, [{ reason: 'commit-beyond-log', from: 'a' }]);
    assert.deepEqual(snapshotOf(b), before);
  });

  it('entries that do not continue the log (gaps, decreasing terms, terms above the message) are refused whole', () => {
    const b = followerB();
    const before = snapshotOf(b);
    const bad: RaftMessage[] = [
      { type: 'append', from: 'a', to: 'b', term: 2, prevIndex: 2, prevTerm: 2, entries: [{ index: 4, term: 2, type: 'noop', data: null }], commit: 2 },
      { type: 'append', from: 'a', to: 'b', term: 2, prevIndex: 2, prevTerm: 2, entries: [{ index: 3, term: 1, type: 'noop', data: null }], commit: 2 },
      {
        type: 'append',
        from: 'a',
        to: 'b',
        term: 2,
        prevIndex: 2,
        prevTerm: 2,
        entries: [
          { index: 3, term: 2, type: 'noop', data: null },
          { index: 4, term: 3, type: 'noop', data: null },
        ],
        commit: 2,
      },
    ];
    for (const m of bad) assert.doesNotThrow(() => b.step(m));
    const { refused } = settle(b);
    assert.deepEqual(refused.map((r) => r.reason), ['bad-entries', 'bad-entries', 'bad-entries']);
    assert.deepEqual(snapshotOf(b), before);
  });
});
