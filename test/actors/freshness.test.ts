// The fresh-answer exchange that starts a member's replay window (actors/freshness.ts), between
// members that start one after the other: the first asks before the second listens.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANSWER_EVERY_MS, ASK_EVERY_MS, Freshness } from '../../actors/freshness.ts';
import type { Clock, MemberBus } from '../../actors/ports.ts';
import type { Member } from '../../machines/raft/types.ts';
import { RateLimitedLog } from '../../runtime/log/rateLimit.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { ReplayWindow } from '../../runtime/wire/replayWindow.ts';

const n1: Member = { nodeId: 'id-n1', name: 'n1', voter: true };
const n3: Member = { nodeId: 'id-n3', name: 'n3', voter: true };

/** n1's side: what it publishes, on a clock the test moves */
function node1(members: () => Member[] = () => [n1, n3]) {
  let now = 1_000;
  const sent: Array<{ to: string; type: string; nonce: string }> = [];
  const synced: string[] = [];
  const bus = {
    publish: (subject: string, data: Uint8Array) => {
      const { type, body } = JSON.parse(Buffer.from(data).toString('utf8')) as { type: string; body: { nonce: string } };
      sent.push({ to: subject.split('.')[2]!, type, nonce: body.nonce });
    },
  } as unknown as MemberBus;
  const replay = new ReplayWindow();
  const freshness = new Freshness(
    {
      prefix: 'conclave',
      bus,
      clock: { now: () => now } as Clock,
      dropLog: new RateLimitedLog(silentLogger()),
      sender: () => ({ name: 'n1', nodeId: n1.nodeId, clusterId: 'c' }),
      membership: () => ({ members: members() }),
      synced: (id) => synced.push(id),
    },
    replay,
  );
  return { freshness, replay, sent, synced, advance: (ms: number) => (now += ms) };
}

test('a member asked by one it asked before that one listened sends its question again at once: one exchange starts both windows', () => {
  const n = node1();
  n.freshness.ask(n3); // at n1's start; n3 does not listen yet: lost
  assert.deepEqual(n.sent.map((m) => m.type), ['fresh-ask']);
  const first = n.sent[0]!.nonce;
  n.advance(20); // n3 starts and asks n1, well within ASK_EVERY_MS of n1's question
  assert.ok(20 < ASK_EVERY_MS);
  n.freshness.answer(n3, 'n3-question');
  assert.deepEqual(n.sent.slice(1), [
    { to: 'n3', type: 'fresh-answer', nonce: 'n3-question' },
    { to: 'n3', type: 'fresh-ask', nonce: first },
  ], 'answered, and the open question sent again as it was');
  // n3 answers it: n1's window for n3 starts now, not when n1 would ask again
  n.freshness.take(n3, first, { boot: 7, seq: 3 });
  assert.ok(n.replay.knows(n3.nodeId));
  assert.deepEqual(n.synced, [n3.nodeId]);
});

test('asking again is bounded: not more often than answers, and never once the window started', () => {
  const n = node1();
  n.freshness.ask(n3);
  n.advance(5);
  n.freshness.answer(n3, 'q1');
  n.advance(ANSWER_EVERY_MS - 10);
  n.freshness.answer(n3, 'q2'); // within ANSWER_EVERY_MS of the last answer: neither answered nor asked again
  assert.deepEqual(n.sent.map((m) => m.type), ['fresh-ask', 'fresh-answer', 'fresh-ask']);
  n.freshness.take(n3, n.sent[0]!.nonce, { boot: 1, seq: 1 });
  n.advance(ANSWER_EVERY_MS);
  n.freshness.answer(n3, 'q3');
  assert.deepEqual(n.sent.slice(3).map((m) => m.type), ['fresh-answer'], 'its window started: answered only');
});

test('a question that stays unanswered is asked again as peer messages arrive, the same question, until the window starts', () => {
  // n3 holds a committed key; n1 asked it when n3 did not hold n1 yet (dropped), and n3 never sends n1 anything else
  const keyed: Member = { ...n3, key: 'k3' };
  const n = node1(() => [n1, keyed]);
  n.freshness.ask(keyed);
  const question = n.sent[0]!.nonce;
  n.advance(ASK_EVERY_MS - 1);
  n.freshness.askAgain();
  assert.equal(n.sent.length, 1, 'not before ASK_EVERY_MS');
  n.advance(1);
  n.freshness.askAgain();
  assert.deepEqual(n.sent.slice(1), [{ to: 'n3', type: 'fresh-ask', nonce: question }], 'asked again, the same question');
  n.advance(ASK_EVERY_MS);
  n.freshness.askAgain();
  assert.equal(n.sent.length, 3, 'and again while it stays open');
  n.freshness.take(keyed, question, { boot: 2, seq: 5 });
  assert.ok(n.replay.knows(keyed.nodeId), 'an answer to any copy starts the window');
  n.advance(ASK_EVERY_MS);
  n.freshness.askAgain();
  assert.equal(n.sent.length, 3, 'never once the window started');
});

test('a member gone from the configuration is not asked again', () => {
  const keyed: Member = { ...n3, key: 'k3' };
  let members: Member[] = [n1, keyed];
  const n = node1(() => members);
  n.freshness.ask(keyed);
  members = [n1];
  n.advance(ASK_EVERY_MS);
  n.freshness.askAgain();
  n.advance(ASK_EVERY_MS);
  n.freshness.askAgain();
  assert.equal(n.sent.length, 1);
});
