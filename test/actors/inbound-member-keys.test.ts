// Member identity at a node's door (actors/inbound.ts, issue 11), without a bus: which peer messages
// reach the raft core given the member keys committed in the configuration. The upgrade path: a
// configuration without keys (a cluster from before member keys, or a member of an older release)
// takes unsigned messages as before; once a member's key is committed (it was added again, or joined
// with this release), its messages must be signed with that key. Refusals are counted and logged
// rate-limited. A MACed message is taken only after every one taken from its sender, by (boot, seq):
// a replay is refused as `replayed`.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { followerDoor } from './followerDoor.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import type { Member, Membership } from '../../machines/raft/types.ts';
import { createLogger } from '../../runtime/log/logger.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { publicKeyText } from '../../runtime/store/memberKey.ts';
import { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';
import { macPeerMessage, type PeerCounter, signPeerMessage } from '../../runtime/wire/peerSignature.ts';

const CLUSTER = randomUUID();
const SUBJECT = 'p.node.self.peer';
const self = { nodeId: randomUUID(), name: 'self' };

function keyPair(): { privateKey: KeyObject; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, key: publicKeyText(publicKey) };
}

function door(membership: Membership, selfKey?: { privateKey: KeyObject; key: string }) {
  const lines: Array<{ msg: string; reason?: string }> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger({ level: 'info', pretty: false, destination });
  /** what the door published: its questions and answers (fresh-ask, fresh-answer) */
  const { inbound, core, published } = followerDoor({
    self,
    cluster: CLUSTER,
    membership: () => membership,
    pairwise: selfKey ? new PairwiseKeys(selfKey.key, selfKey.privateKey) : null,
    log,
  });
  const raw = (from: Member, message: Omit<RaftMessage, 'from' | 'to'>) =>
    encode({ name: from.name, nodeId: from.nodeId, clusterId: CLUSTER, generation: 1 }, 'raft', { messages: [{ ...message, from: from.nodeId, to: self.nodeId }] });
  /** `message` from `from`, signed with `signer` if given, to this node */
  const receive = (from: Member, message: Omit<RaftMessage, 'from' | 'to'>, signer?: KeyObject) => {
    const data = raw(from, message);
    inbound.onPeerMessage({ subject: SUBJECT, data: signer ? signPeerMessage(signer, SUBJECT, data) : data, respond: () => false });
  };
  let seq = 0;
  /** `message` from `from`, MACed with `sendKey` for `subject`, sent at `counter` (by default boot 1 and the next seq) */
  const receiveMac = (from: Member, message: Omit<RaftMessage, 'from' | 'to'>, sendKey: KeyObject, subject = SUBJECT, counter: PeerCounter = { boot: 1, seq: ++seq }) => {
    inbound.onPeerMessage({ subject: SUBJECT, data: macPeerMessage(sendKey, subject, raw(from, message), counter), respond: () => false });
  };
  /** bytes as they came over the bus, again */
  const again = (data: Uint8Array) => inbound.onPeerMessage({ subject: SUBJECT, data, respond: () => false });
  /** as if `from` had answered this node's fresh question at boot `boot`, seq 0 (the exchange itself: 'fresh answers' below) */
  const windowFrom = (from: Member, boot = 1) => inbound.replay.sync(from.nodeId, { boot, seq: 0 }, () => true);
  return { inbound, core, lines, published, receive, receiveMac, again, raw, windowFrom };
}

const heartbeat = { type: 'heartbeat', term: 2, commit: 0, context: null } as Omit<RaftMessage, 'from' | 'to'>;

/** this node, a leader and another member, all with committed keys, and the windows of both started */
function pairOfMembers() {
  const selfKey = keyPair();
  const leaderKey = keyPair();
  const otherKey = keyPair();
  const leader: Member = { nodeId: randomUUID(), name: 'lead', voter: true, key: leaderKey.key };
  const other: Member = { nodeId: randomUUID(), name: 'other', voter: true, key: otherKey.key };
  const d = door({ members: [{ ...self, voter: true, key: selfKey.key }, leader, other] }, selfKey);
  d.windowFrom(leader);
  d.windowFrom(other);
  const send = new PairwiseKeys(leaderKey.key, leaderKey.privateKey).with(selfKey.key)!.send;
  const otherSend = new PairwiseKeys(otherKey.key, otherKey.privateKey).with(selfKey.key)!.send;
  const mac = (counter: PeerCounter, message = heartbeat) => macPeerMessage(send, SUBJECT, d.raw(leader, message), counter);
  return { d, leader, other, selfKey, leaderKey, otherKey, send, otherSend, mac };
}

describe('the door checks member keys (issue 11)', () => {
  it('a configuration without keys (before member keys) takes unsigned and signed messages, as before', () => {
    const leader: Member = { nodeId: randomUUID(), name: 'lead', voter: true };
    const d = door({ members: [{ ...self, voter: true }, leader] });
    d.receive(leader, heartbeat);
    d.receive(leader, heartbeat, keyPair().privateKey);
    assert.equal(d.core.length, 2);
    assert.deepEqual([...d.inbound.dropped], []);
  });

  it('once its key is committed (added again with this release), only messages signed with it are taken', () => {
    const pair = keyPair();
    const other = keyPair();
    const leader: Member = { nodeId: randomUUID(), name: 'lead', voter: true, key: pair.key };
    const old: Member = { nodeId: randomUUID(), name: 'old', voter: true };
    const d = door({ members: [{ ...self, voter: true }, leader, old] });
    d.receive(leader, heartbeat, pair.privateKey);
    assert.equal(d.core.length, 1, 'signed with the committed key: taken');
    d.receive(leader, heartbeat);
    d.receive(leader, heartbeat);
    d.receive(leader, heartbeat, other.privateKey);
    assert.equal(d.core.length, 1, 'unsigned or signed with another key: refused');
    assert.deepEqual(Object.fromEntries(d.inbound.dropped), { unsigned: 2, 'bad-signature': 1 });
    // one line per reason in the interval, not one per message
    assert.deepEqual(d.lines.filter((l) => l.msg === 'dropped peer message').map((l) => l.reason), ['unsigned', 'bad-signature']);
    // a member of an older release, in the same configuration, is still heard unsigned (mixed versions)
    d.receive(old, { type: 'vote', term: 3, lastIndex: 0, lastTerm: 0, transfer: false } as Omit<RaftMessage, 'from' | 'to'>);
    assert.equal(d.core.length, 2);
  });

  it("a member this configuration holds as a learner is heard as a leader (its promotion may not be here yet); its TimeoutNow is refused", () => {
    // seed 26895 (test/sim/autojoin-regressions.test.ts): the learner's promotion was appended by a
    // leader that lost leadership before it committed; the learner was elected on it, and the followers
    // that held it as a learner dropped its appends — the only way the promotion could reach them
    const pair = keyPair();
    const learner: Member = { nodeId: randomUUID(), name: 'learner', voter: false, key: pair.key };
    const d = door({ members: [{ ...self, voter: true }, learner] });
    const append = { type: 'append', term: 4, prevIndex: 81, prevTerm: 3, entries: [], commit: 81 } as unknown as Omit<RaftMessage, 'from' | 'to'>;
    d.receive(learner, heartbeat, pair.privateKey);
    d.receive(learner, append, pair.privateKey);
    assert.deepEqual(
      d.core.map((batch) => batch.map((m) => m.type)),
      [['heartbeat'], ['append']],
    );
    // only the leader sends it, to a member whose log matches its own: one that holds the leader as a voter
    d.receive(learner, { type: 'timeout-now', term: 4 } as Omit<RaftMessage, 'from' | 'to'>, pair.privateKey);
    assert.equal(d.core.length, 2);
    assert.equal(d.inbound.dropped.get('not-a-voter'), 1);
    d.receive(learner, { type: 'append-response', term: 4, index: 0, reject: false, rejectHint: 0, hintTerm: 0 } as Omit<RaftMessage, 'from' | 'to'>, pair.privateKey);
    assert.equal(d.core.length, 3);
  });

  it('in a configuration without keys too, a learner is heard as a leader', () => {
    const learner: Member = { nodeId: randomUUID(), name: 'learner', voter: false };
    const d = door({ members: [{ ...self, voter: true }, learner] });
    d.receive(learner, heartbeat);
    assert.equal(d.core.length, 1);
    assert.deepEqual([...d.inbound.dropped], []);
  });

  it('a member MACs with the key only it and this node share: taken; a MAC made with any other pair, reflected, or for another subject is refused', () => {
    const { d, leader, other, selfKey, leaderKey, otherKey } = pairOfMembers();
    const leaderPairs = new PairwiseKeys(leaderKey.key, leaderKey.privateKey);
    const otherPairs = new PairwiseKeys(otherKey.key, otherKey.privateKey);
    d.receiveMac(leader, heartbeat, leaderPairs.with(selfKey.key)!.send);
    assert.equal(d.core.length, 1, "MACed with the leader's key for this node: taken");
    // another member speaking as the leader: its own key with this node does not check as the leader's
    d.receiveMac(leader, heartbeat, otherPairs.with(selfKey.key)!.send);
    // the leader's key with another member, not with this node
    d.receiveMac(leader, heartbeat, leaderPairs.with(otherKey.key)!.send);
    // a message this node sent to the leader, reflected back as the leader's (the other direction's key)
    d.receiveMac(leader, heartbeat, leaderPairs.with(selfKey.key)!.receive);
    // for another subject (another receiver)
    d.receiveMac(leader, heartbeat, leaderPairs.with(selfKey.key)!.send, 'p.node.other.peer');
    assert.equal(d.core.length, 1);
    assert.equal(d.inbound.dropped.get('bad-signature'), 4);
    // the other member's own MAC, as itself: taken; the signature is still taken from a member (a node that signs)
    d.receiveMac(other, heartbeat, otherPairs.with(selfKey.key)!.send);
    d.receive(other, heartbeat, otherKey.privateKey);
    assert.equal(d.core.length, 3);
  });

  it('a node without a member key of its own cannot check a MAC and refuses it', () => {
    const leaderKey = keyPair();
    const selfKey = keyPair();
    const leader: Member = { nodeId: randomUUID(), name: 'lead', voter: true, key: leaderKey.key };
    const d = door({ members: [{ ...self, voter: true, key: selfKey.key }, leader] });
    d.receiveMac(leader, heartbeat, new PairwiseKeys(leaderKey.key, leaderKey.privateKey).with(selfKey.key)!.send);
    assert.equal(d.core.length, 0);
    assert.equal(d.inbound.dropped.get('bad-signature'), 1);
  });

  describe('replayed MACed messages (a bus user publishes a recorded copy again)', () => {

    it('the same bytes again, or an older (boot, seq), are refused as replayed, counted and logged once per interval', () => {
      const { d, mac } = pairOfMembers();
      const first = mac({ boot: 7, seq: 10 });
      d.again(first);
      assert.equal(d.core.length, 1);
      d.again(first);
      d.again(mac({ boot: 7, seq: 9 }));
      d.again(mac({ boot: 6, seq: 1000 }));
      assert.equal(d.core.length, 1, 'nothing after the first reached the core');
      assert.deepEqual(Object.fromEntries(d.inbound.dropped), { replayed: 3 });
      assert.deepEqual(d.lines.filter((l) => l.msg === 'dropped peer message').map((l) => l.reason), ['replayed']);
      // the sender goes on: the next seq is taken
      d.again(mac({ boot: 7, seq: 11 }));
      assert.equal(d.core.length, 2);
    });

    it('a restarted sender (a larger boot counter) is heard even though its seq starts again at 1; its old messages are not', () => {
      const { d, mac } = pairOfMembers();
      const old = [1, 2, 3].map((seq) => mac({ boot: 4, seq: 5000 + seq }));
      for (const data of old) d.again(data);
      assert.equal(d.core.length, 3);
      d.again(mac({ boot: 5, seq: 1 }));
      d.again(mac({ boot: 5, seq: 2 }));
      assert.equal(d.core.length, 5, 'the new process is heard from its first message');
      for (const data of old) d.again(data);
      assert.equal(d.core.length, 5);
      assert.equal(d.inbound.dropped.get('replayed'), 3);
    });

    it("each sender has its own window: one member's seq does not hold back another's", () => {
      const { d, leader, other, send, otherSend } = pairOfMembers();
      d.receiveMac(leader, heartbeat, send, SUBJECT, { boot: 9, seq: 500 });
      d.receiveMac(other, { type: 'vote', term: 3, lastIndex: 0, lastTerm: 0, transfer: false } as Omit<RaftMessage, 'from' | 'to'>, otherSend, SUBJECT, { boot: 2, seq: 3 });
      assert.equal(d.core.length, 2);
      assert.deepEqual([...d.inbound.dropped], []);
    });

    it('a replay whose MAC does not check is counted as a bad signature, not as replayed (the window moves only on a valid MAC)', () => {
      const { d, mac } = pairOfMembers();
      const forged = Buffer.from(mac({ boot: 3, seq: 100 }));
      forged[forged.length - 3] = forged[forged.length - 3]! ^ 1;
      d.again(forged);
      assert.equal(d.inbound.dropped.get('bad-signature'), 1);
      // a forged (boot, seq) moved nothing: the sender's real, smaller one is still taken
      d.again(mac({ boot: 3, seq: 1 }));
      assert.equal(d.core.length, 1);
    });

    it('fresh answers: after this node starts, a member is heard only from the (boot, seq) it answers a fresh question with', () => {
      const selfKey = keyPair();
      const leaderKey = keyPair();
      const leader: Member = { nodeId: randomUUID(), name: 'lead', voter: true, key: leaderKey.key };
      const d = door({ members: [{ ...self, voter: true, key: selfKey.key }, leader] }, selfKey);
      const send = new PairwiseKeys(leaderKey.key, leaderKey.privateKey).with(selfKey.key)!.send;
      const from = (type: string, body: unknown, counter: PeerCounter) =>
        macPeerMessage(send, SUBJECT, encode({ name: leader.name, nodeId: leader.nodeId, clusterId: CLUSTER, generation: 1 }, type, body), counter);
      const mac = (counter: PeerCounter) => macPeerMessage(send, SUBJECT, d.raw(leader, heartbeat), counter);
      // a copy recorded before this node started, published again: not taken on its word
      const recorded = mac({ boot: 3, seq: 40 });
      d.again(recorded);
      assert.equal(d.core.length, 0);
      assert.equal(d.inbound.dropped.get('unsynced'), 1);
      assert.deepEqual(d.lines.filter((l) => l.msg === 'dropped peer message'), [], 'expected after a start: counted, not logged');
      const asks = d.published.filter((p) => p.type === 'fresh-ask');
      assert.deepEqual(asks.map((p) => p.subject), ['p.node.lead.peer'], 'the member is asked');
      d.again(recorded);
      assert.equal(d.published.filter((p) => p.type === 'fresh-ask').length, 1, 'asked again only after a while');
      // an answer with another nonce, or without a valid MAC, starts nothing
      d.again(from('fresh-answer', { nonce: 'A'.repeat(22) }, { boot: 3, seq: 41 }));
      d.again(recorded);
      assert.equal(d.core.length, 0);
      // the member's answer to the question: its (boot, seq) starts the window
      d.again(from('fresh-answer', { nonce: String(asks[0]!.body.nonce) }, { boot: 3, seq: 50 }));
      d.again(recorded);
      assert.equal(d.core.length, 0, 'what it sent before its answer is not taken');
      assert.equal(d.inbound.dropped.get('replayed'), 1);
      d.again(mac({ boot: 3, seq: 51 }));
      assert.equal(d.core.length, 1, 'what it sends after is');
      // the answer itself, published again, changes nothing
      d.again(from('fresh-answer', { nonce: String(asks[0]!.body.nonce) }, { boot: 3, seq: 50 }));
      assert.equal(d.inbound.dropped.get('replayed'), 2);
    });

    it('a question from a member this node has not heard since it started is answered, and asked back', () => {
      const selfKey = keyPair();
      const otherKey = keyPair();
      const other: Member = { nodeId: randomUUID(), name: 'other', voter: true, key: otherKey.key };
      const d = door({ members: [{ ...self, voter: true, key: selfKey.key }, other] }, selfKey);
      const send = new PairwiseKeys(otherKey.key, otherKey.privateKey).with(selfKey.key)!.send;
      const nonce = 'q'.repeat(22);
      d.again(macPeerMessage(send, SUBJECT, encode({ name: other.name, nodeId: other.nodeId, clusterId: CLUSTER, generation: 1 }, 'fresh-ask', { nonce }), { boot: 2, seq: 1 }));
      // answered; and asked (on the first message this node heard: greet), then that question sent
      // once more as it was, since the member listens now (its first copy may have gone out before)
      const sent = d.published.map((p) => [p.subject, p.type, String(p.body.nonce)]);
      assert.deepEqual(sent.filter((p) => p[1] === 'fresh-answer'), [['p.node.other.peer', 'fresh-answer', nonce]]);
      const asks = sent.filter((p) => p[1] === 'fresh-ask');
      assert.equal(asks.length, 2);
      assert.notEqual(asks[0]![2], nonce, 'a question of its own');
      assert.deepEqual(asks[1], asks[0], 'the same question again');
    });

    it('signed messages (toward a node still joining) carry no (boot, seq) and are taken as before', () => {
      const pair = keyPair();
      const leader: Member = { nodeId: randomUUID(), name: 'lead', voter: true, key: pair.key };
      const d = door({ members: [{ ...self, voter: true }, leader] });
      d.receive(leader, heartbeat, pair.privateKey);
      d.receive(leader, heartbeat, pair.privateKey);
      assert.equal(d.core.length, 2);
    });
  });
});
