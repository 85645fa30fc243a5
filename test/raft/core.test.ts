// Unit tests for the core's pieces, named after the paper's sections where they apply.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { blankRestore, bootstrapRestore, isSingleServerChange, RaftCore } from '../../machines/raft/core.ts';
import { RaftLog } from '../../machines/raft/log.ts';
import { committedIndex, voteResult } from '../../machines/raft/quorum.ts';
import type { Entry, Membership } from '../../machines/raft/types.ts';
import { ScriptCluster } from './script.ts';

const entry = (index: number, term: number): Entry => ({ index, term, type: 'noop', data: null });
const voters = (...ids: string[]): Membership => ({ members: ids.map((id) => ({ nodeId: id, name: id, voter: true })) });

test('quorum: the commit index is the highest index on a majority of voters', () => {
  const match: Record<string, number> = { a: 5, b: 3, c: 9, d: 1, e: 3 };
  assert.equal(committedIndex(['a', 'b', 'c'], (p) => match[p]!, []), 5);
  assert.equal(committedIndex(['a', 'b', 'c', 'd'], (p) => match[p]!, []), 3);
  assert.equal(committedIndex(['a', 'b', 'c', 'd', 'e'], (p) => match[p]!, []), 3);
});

test('quorum: votes win with a majority, lose once a majority is impossible', () => {
  const v = ['a', 'b', 'c', 'd', 'e'];
  assert.equal(voteResult(v, new Map([['a', true], ['b', true]])), 'pending');
  assert.equal(voteResult(v, new Map([['a', true], ['b', true], ['c', true]])), 'won');
  assert.equal(voteResult(v, new Map([['a', true], ['b', false], ['c', false]])), 'pending');
  assert.equal(voteResult(v, new Map([['a', true], ['b', false], ['c', false], ['d', false]])), 'lost');
  assert.equal(voteResult(v, new Map([['x', true], ['y', true], ['a', true]])), 'pending', 'non-voters do not count');
});

test('log §5.3: a conflicting suffix is replaced, a matching prefix kept, a gap refused', () => {
  const log = new RaftLog(null, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)], 1, 0);
  assert.equal(log.maybeAppend(5, 2, [entry(6, 3)]), null, 'gap');
  assert.equal(log.maybeAppend(2, 2, [entry(3, 3)]), null, 'prev term mismatch');
  const result = log.maybeAppend(2, 1, [entry(3, 2), entry(4, 3), entry(5, 3)]);
  assert.deepEqual(result, { lastNew: 5, changedConfig: false });
  assert.deepEqual([1, 2, 3, 4, 5].map((i) => log.term(i)), [1, 1, 2, 3, 3]);
  assert.equal(log.unstableFrom, 4, 'the host must rewrite from index 4');
  assert.deepEqual(log.findConflictByTerm(5, 2), { index: 3, term: 2 });
});

test('log: a conflict at a committed index is an invariant violation, not a silent rewrite', () => {
  const log = new RaftLog(null, [entry(1, 1), entry(2, 1), entry(3, 2)], 3, 0);
  assert.throws(() => log.maybeAppend(1, 1, [entry(2, 5)]), /conflict at committed index/);
});

test('§5.2: the randomized election timeout lies in [electionTicks, 2*electionTicks)', () => {
  for (const r of [0, 0.5, 0.999999]) {
    const core = new RaftCore({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => r, restore: bootstrapRestore(voters('a', 'b', 'c')) });
    let ticks = 0;
    while (core.currentRole === 'follower' && ticks < 100) {
      core.tick();
      ticks++;
    }
    assert.equal(ticks, 10 + Math.floor(r * 10));
  }
});

test('a single-voter leader commits only what it has persisted (advance), then applies it', () => {
  const core = new RaftCore({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => 0, restore: bootstrapRestore(voters('a')) });
  for (let i = 0; i < 10; i++) core.tick();
  assert.equal(core.currentRole, 'leader');
  let rd = core.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [2]);
  assert.equal(core.commitIndex, 1, 'not committed before the host persisted it');
  core.advance(rd);
  assert.equal(core.commitIndex, 2);
  const result = core.propose([
    { type: 'command', data: 'x' },
    { type: 'command', data: 'y' },
  ]);
  assert.deepEqual(result, { ok: true, firstIndex: 3, term: 2 });
  rd = core.ready();
  assert.deepEqual(rd.committed.map((e) => e.index), [2]);
  assert.deepEqual(rd.entries.map((e) => e.index), [3, 4]);
  core.advance(rd);
  rd = core.ready();
  assert.deepEqual(rd.committed.map((e) => e.data), ['x', 'y']);
  assert.equal(rd.hardState?.commit, 4);
  core.readIndex('r1');
  assert.deepEqual(core.ready().readStates, [{ requestId: 'r1', index: 4 }]);
});

test('a blank node (in no configuration) never campaigns', () => {
  const core = new RaftCore({ id: 'z', electionTicks: 10, heartbeatTicks: 1, random: () => 0, restore: blankRestore() });
  for (let i = 0; i < 100; i++) core.tick();
  assert.equal(core.currentRole, 'follower');
  assert.equal(core.currentTerm, 0);
  assert.equal(core.hasReady(), false);
});

test('membership: only single-server changes are accepted', () => {
  assert.equal(isSingleServerChange(voters('a', 'b', 'c'), voters('a', 'b', 'c', 'd')), true);
  assert.equal(isSingleServerChange(voters('a', 'b', 'c'), voters('a', 'b', 'd')), false);
  assert.equal(isSingleServerChange(voters('a', 'b', 'c'), voters('a')), false);
});

test('figure 8 scenario fails when the core commits earlier-term entries by counting', () => {
  const script = readFileSync(new URL('./testdata/figure8.txt', import.meta.url), 'utf8').replace('nodes 5 ', 'nodes 5 hooks=commitPriorTermByCount ');
  assert.throws(() => new ScriptCluster().run(script, 'figure8.txt'), /expect commit 1 2/);
});

test('scenario messages survive a JSON round trip (the wire format is plain data)', () => {
  new ScriptCluster().run(readFileSync(new URL('./testdata/snapshot.txt', import.meta.url), 'utf8'), 'snapshot.txt');
});

test('appends are batched by bytes (maxBytesPerMessage), at least one entry each, and bytes in flight are bounded (maxInflightBytes)', () => {
  const core = new RaftCore({
    id: 'a',
    electionTicks: 10,
    heartbeatTicks: 1,
    random: () => 0,
    preVote: false,
    checkQuorum: false,
    maxEntriesPerMessage: 512,
    maxBytesPerMessage: 8000,
    maxInflightBytes: 30_000,
    restore: bootstrapRestore(voters('a', 'b')),
  });
  while (core.currentRole !== 'candidate') core.tick();
  core.step({ type: 'vote-response', from: 'b', to: 'a', term: core.currentTerm, granted: true });
  assert.equal(core.currentRole, 'leader');
  const settle = () => {
    const rd = core.ready();
    core.advance(rd);
    return rd.messages.filter((m) => m.type === 'append');
  };
  const [first] = settle();
  assert.ok(first?.type === 'append');
  core.step({ type: 'append-response', from: 'b', to: 'a', term: core.currentTerm, index: first.prevIndex + first.entries.length, reject: false, rejectHint: 0, hintTerm: 0 });
  settle();
  // 40 commands of ~3 KB: 120 KB, far over one message of 8,000 bytes of entries
  core.propose(Array.from({ length: 40 }, (_, i) => ({ type: 'command' as const, data: { op: 'put', key: `k${i}`, value: 'x'.repeat(3000) } })));
  const bytesOf = (m: (typeof first)[]) => m.reduce((sum, a) => sum + a.entries.reduce((n, e) => n + JSON.stringify(e).length + 1, 0), 0);
  let appends = settle() as (typeof first)[];
  assert.ok(appends.some((m) => m.entries.length > 0));
  let delivered = 0;
  let rounds = 0;
  while (appends.length > 0) {
    for (const m of appends) {
      // (an append without entries only carries the commit index)
      assert.ok(bytesOf([m]) <= 8000, `an append carries ${bytesOf([m])} bytes of entries`);
      delivered += m.entries.length;
    }
    // what is in flight at once stays within the window (30,000 bytes, plus the append that crossed it)
    assert.ok(bytesOf(appends) < 30_000 + 8000, `in flight at once: ${bytesOf(appends)} bytes`);
    const last = appends[appends.length - 1]!;
    core.step({ type: 'append-response', from: 'b', to: 'a', term: core.currentTerm, index: last.prevIndex + last.entries.length, reject: false, rejectHint: 0, hintTerm: 0 });
    appends = settle() as (typeof first)[];
    rounds++;
  }
  assert.equal(delivered, 40);
  assert.ok(rounds >= 3, `pipelined in several windows (${rounds})`);
  // a single entry larger than the budget still travels (alone): the host refuses such commands at the door
  core.propose([{ type: 'command', data: 'y'.repeat(9000) }]);
  const rest = settle();
  assert.ok(rest.some((m) => m.type === 'append' && m.entries.some((e) => e.data === 'y'.repeat(9000)) && m.entries.length === 1));
});
