// Senders the configuration does not know (actors/unknownSenders.ts, actors/inbound.ts; issue 11),
// without a bus. The table: who is asked about when, who is vouched for and until when, every table
// bounded. The door: with every member key committed, a message under a node id outside the
// configuration reaches the raft core only once a member of the configuration vouched for the id —
// then checked by the key it vouched for — and a TimeoutNow from such a node never does.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { followerDoor } from './followerDoor.ts';
import { realClock } from '../../actors/ports.ts';
import { ASK_EVERY_MS, ASKS_PER_SECOND, MAX_ASKED, MAX_VOUCHED, RENEW_BEFORE_MS, UnknownSenders, VOUCH_MS } from '../../actors/unknownSenders.ts';
import type { Member, Membership } from '../../machines/raft/types.ts';
import { createLogger } from '../../runtime/log/logger.ts';
import { publicKeyText } from '../../runtime/store/memberKey.ts';
import { decode, encode } from '../../runtime/wire/codec.ts';
import { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';
import { macPeerMessage, nextPeerSeq } from '../../runtime/wire/peerSignature.ts';
import { peerBodies } from '../../actors/peerWire.ts';

function keyPair(): { privateKey: KeyObject; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, key: publicKeyText(publicKey) };
}

const member = (name: string, key?: string): Member => (key === undefined ? { nodeId: randomUUID(), name, voter: true } : { nodeId: randomUUID(), name, voter: true, key });

describe('the table of unknown senders', () => {
  const config: Membership = { members: [member('a', keyPair().key), member('b', keyPair().key)] };
  const x = { nodeId: randomUUID(), name: 'x', voter: true, key: keyPair().key };

  it('guards only a configuration in which every member has a key', () => {
    assert.equal(UnknownSenders.guards(config), true);
    assert.equal(UnknownSenders.guards({ members: [...config.members, member('old')] }), false);
    assert.equal(UnknownSenders.guards({ members: [] }), false, 'a node still joining has no configuration to ask');
  });

  it('asks about a node id at most once per interval, and takes an answer only to a question it asked', () => {
    const t = new UnknownSenders();
    assert.equal(t.answered(x, 'a', config, 0), false, 'an answer nobody asked for vouches for nothing');
    assert.equal(t.shouldAsk(x.nodeId, 0), true);
    assert.equal(t.shouldAsk(x.nodeId, ASK_EVERY_MS - 1), false);
    assert.equal(t.answered(x, 'a', config, 5), true);
    assert.deepEqual(t.vouched(x.nodeId, config, 6), { nodeId: x.nodeId, name: 'x', voter: true, key: x.key });
    assert.equal(t.shouldAsk(x.nodeId, ASK_EVERY_MS), true);
  });

  it('a vouch ends after VOUCH_MS, or as soon as the configuration changes, and is renewable near its end', () => {
    const t = new UnknownSenders();
    t.shouldAsk(x.nodeId, 0);
    t.answered(x, 'a', config, 0);
    assert.equal(t.renewable(x.nodeId, VOUCH_MS - RENEW_BEFORE_MS - 1), false);
    assert.equal(t.renewable(x.nodeId, VOUCH_MS - RENEW_BEFORE_MS), true);
    assert.equal(t.vouched(x.nodeId, config, VOUCH_MS), null, 'ended');
    t.shouldAsk(x.nodeId, VOUCH_MS);
    t.answered(x, 'a', config, VOUCH_MS);
    assert.notEqual(t.vouched(x.nodeId, config, VOUCH_MS + 1), null);
    assert.equal(t.vouched(x.nodeId, { members: [...config.members] }, VOUCH_MS + 1), null, 'another configuration: ended');
    assert.equal(t.vouched(x.nodeId, config, VOUCH_MS + 2), null, 'and forgotten');
  });

  it('does not vouch for a node id its configuration already holds, nor for an answer to a question asked long ago', () => {
    const t = new UnknownSenders();
    const a = config.members[0]!;
    t.shouldAsk(a.nodeId, 0);
    assert.equal(t.answered({ nodeId: a.nodeId, name: 'a', voter: false }, 'b', config, 1), false);
    t.shouldAsk(x.nodeId, 0);
    assert.equal(t.answered(x, 'a', config, 60_000), false);
  });

  it('asks about at most ASKS_PER_SECOND node ids a second, and keeps at most MAX_ASKED asked and MAX_VOUCHED vouched', () => {
    const t = new UnknownSenders();
    let asked = 0;
    for (let i = 0; i < 1000; i++) if (t.shouldAsk(randomUUID(), 0)) asked++;
    assert.equal(asked, ASKS_PER_SECOND);
    for (let s = 1; s <= 100; s++) {
      for (let i = 0; i < ASKS_PER_SECOND; i++) {
        const nodeId = randomUUID();
        assert.equal(t.shouldAsk(nodeId, s * 1000), true);
        t.answered({ nodeId, name: 'x', voter: true }, 'a', config, s * 1000);
      }
    }
    assert.deepEqual(t.size, { asked: MAX_ASKED, vouched: MAX_VOUCHED });
  });
});

/** a follower's door (actors/inbound.ts) in `membership`, holding `selfKey`; what it publishes is recorded */
function door(membership: () => Membership, selfKey: { privateKey: KeyObject; key: string }, self: Member) {
  let now = 1_000_000;
  const log = createLogger({ level: 'silent', pretty: false });
  // its fresh questions to the members (replay windows: inbound-member-keys.test.ts) are not what these tests look at
  const { inbound, core, published } = followerDoor({
    self,
    cluster: CLUSTER,
    membership,
    pairwise: new PairwiseKeys(selfKey.key, selfKey.privateKey),
    log,
    clock: { ...realClock, now: () => now },
    record: (type) => type !== 'fresh-ask' && type !== 'fresh-answer',
  });
  const subject = `p.node.${self.name}.peer`;
  /** `type`/`body` from `from`, MACed with the key `from` (holding `fromKey`) shares with this node */
  const receive = (from: Member, fromKey: KeyObject | null, type: string, body: unknown) => {
    const data = encode({ name: from.name, nodeId: from.nodeId, clusterId: CLUSTER, generation: 1 }, type, body);
    const send = fromKey === null ? null : new PairwiseKeys(from.key!, fromKey).with(selfKey.key)!.send;
    // as if `from` had answered this node's fresh question (that exchange: inbound-member-keys.test.ts)
    if (send !== null && !inbound.replay.knows(from.nodeId)) inbound.replay.sync(from.nodeId, { boot: 1, seq: 0 }, () => true);
    inbound.onPeerMessage({ subject, data: send === null ? data : macPeerMessage(send, subject, data, { boot: 1, seq: nextPeerSeq() }), respond: () => false });
  };
  const raft = (from: Member, fromKey: KeyObject | null, message: Record<string, unknown>) =>
    receive(from, fromKey, 'raft', { messages: [{ ...message, from: from.nodeId, to: self.nodeId }] });
  return { inbound, core, published, receive, raft, advance: (ms: number) => (now += ms) };
}

const CLUSTER = randomUUID();
const heartbeat = { type: 'heartbeat', term: 2, commit: 0, context: null };

describe('the door and senders the configuration does not know', () => {
  const keys = { self: keyPair(), a: keyPair(), b: keyPair(), x: keyPair() };
  const self: Member = { ...member('self'), key: keys.self.key };
  const a: Member = { ...member('a'), key: keys.a.key };
  const b: Member = { ...member('b'), key: keys.b.key };
  const x: Member = { ...member('x'), key: keys.x.key };

  it('holds back a message from a node id outside the configuration, asks its members, and takes it once a member vouched, checked by the vouched key', () => {
    const config: Membership = { members: [self, a, b] };
    const d = door(() => config, keys.self, self);
    d.raft(x, keys.x.privateKey, heartbeat);
    assert.equal(d.core.length, 0);
    assert.equal(d.inbound.dropped.get('unknown-sender'), 1);
    assert.deepEqual(d.published.map((p) => [p.subject, p.type, p.body]), [
      ['p.node.a.peer', 'member-query', { nodeId: x.nodeId }],
      ['p.node.b.peer', 'member-query', { nodeId: x.nodeId }],
    ]);
    d.raft(x, keys.x.privateKey, heartbeat);
    assert.equal(d.published.length, 2, 'asked once per interval');
    d.receive(a, keys.a.privateKey, 'member-answer', { nodeId: x.nodeId, name: 'x', voter: true, key: keys.x.key });
    d.raft(x, keys.x.privateKey, heartbeat);
    assert.equal(d.core.length, 1, 'vouched: taken');
    // under the vouched id, not authenticated by the vouched key: refused as for a member
    d.raft(x, null, heartbeat);
    d.raft({ ...x, key: keys.a.key }, keys.a.privateKey, heartbeat);
    assert.equal(d.core.length, 1);
    assert.equal(d.inbound.dropped.get('unsigned'), 1);
    assert.equal(d.inbound.dropped.get('bad-signature'), 1);
    // a TimeoutNow from a node outside the configuration, vouched for or not, never reaches the core
    d.raft(x, keys.x.privateKey, { type: 'timeout-now', term: 2 });
    assert.equal(d.core.length, 1);
    assert.equal(d.inbound.dropped.get('unknown-sender'), 3);
  });

  it('a vouch ends when the configuration changes', () => {
    let config: Membership = { members: [self, a, b] };
    const d = door(() => config, keys.self, self);
    d.raft(x, keys.x.privateKey, heartbeat);
    d.receive(b, keys.b.privateKey, 'member-answer', { nodeId: x.nodeId, name: 'x', voter: true, key: keys.x.key });
    d.raft(x, keys.x.privateKey, heartbeat);
    assert.equal(d.core.length, 1);
    config = { members: [self, a, b, { ...member('y'), key: keyPair().key }] };
    d.raft(x, keys.x.privateKey, heartbeat);
    assert.equal(d.core.length, 1);
    assert.equal(d.inbound.dropped.get('unknown-sender'), 2);
  });

  it('an answer from a node outside the configuration, or not authenticated, vouches for nothing', () => {
    const config: Membership = { members: [self, a, b] };
    const d = door(() => config, keys.self, self);
    d.raft(x, keys.x.privateKey, heartbeat);
    // x vouching for itself, and an unauthenticated answer under a's id
    d.receive(x, keys.x.privateKey, 'member-answer', { nodeId: x.nodeId, name: 'x', voter: true, key: keys.x.key });
    d.receive(a, null, 'member-answer', { nodeId: x.nodeId, name: 'x', voter: true, key: keys.x.key });
    d.advance(ASK_EVERY_MS);
    d.raft(x, keys.x.privateKey, heartbeat);
    assert.equal(d.core.length, 0);
    assert.deepEqual(Object.fromEntries(d.inbound.dropped), { 'unknown-sender': 3, unsigned: 1 });
  });

  it('answers a member about a node id only when its configuration holds it, and never a node outside it', () => {
    const config: Membership = { members: [self, a, b, x] };
    const d = door(() => config, keys.self, self);
    d.receive(a, keys.a.privateKey, 'member-query', { nodeId: x.nodeId });
    d.receive(a, keys.a.privateKey, 'member-query', { nodeId: randomUUID() });
    const stranger: Member = { ...member('stranger'), key: keyPair().key };
    d.receive(stranger, null, 'member-query', { nodeId: x.nodeId });
    assert.deepEqual(d.published.map((p) => [p.subject, p.type, p.body]), [['p.node.a.peer', 'member-answer', { nodeId: x.nodeId, name: 'x', voter: true, key: keys.x.key }]]);
  });

  it('a configuration with a member without a key (an older release) takes a node id it does not hold, as before', () => {
    const config: Membership = { members: [self, a, member('old')] };
    const d = door(() => config, keys.self, self);
    d.raft({ ...member('ghost') }, null, { type: 'timeout-now', term: 2 });
    assert.equal(d.core.length, 1);
    assert.equal(d.published.length, 0);
  });
});

describe('mixed versions: a node whose peer schema predates member-query', () => {
  it('drops a member-query or member-answer as a message of an unknown type, and decodes what follows as before', () => {
    const older = Object.fromEntries(Object.entries(peerBodies).filter(([type]) => type !== 'member-query' && type !== 'member-answer'));
    const sender = { name: 'new', nodeId: randomUUID(), clusterId: CLUSTER, generation: 1 };
    for (const [type, body] of [['member-query', { nodeId: randomUUID() }], ['member-answer', { nodeId: randomUUID(), name: 'x', voter: true }]] as const) {
      const d = decode(encode(sender, type, body), older);
      assert.equal(d.ok, false);
      assert.equal(!d.ok && d.failure, 'bad-body', 'counted under bad-body, never thrown');
      assert.equal(decode(encode(sender, type, body), peerBodies).ok, true, 'this build reads it');
    }
    assert.equal(decode(encode(sender, 'ping', {}), older).ok, true);
  });
});
