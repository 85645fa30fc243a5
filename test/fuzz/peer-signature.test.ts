// Signed and MACed peer messages (runtime/wire/peerSignature.ts, pairwiseKeys.ts, issue 11): whatever a
// bus user changes in an authenticated message — one byte anywhere, the subject, the tail — it never
// checks as `valid`; an authenticated message decodes to the same envelope and body as the bare one (an
// older node reads it as before). Pairwise keys agree at both ends, differ per direction and per pair.
// A MAC covers the (boot, seq) it carries (replay protection): another (boot, seq) in its place, or a
// MAC without them, never checks valid.
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { peerBodies, TAILED_PEER_TYPES } from '../../actors/peerWire.ts';
import { decode, encode, encodeTailed, type Sender } from '../../runtime/wire/codec.ts';
import { publicKeyText } from '../../runtime/store/memberKey.ts';
import { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';
import type { PairKeys } from '../../runtime/wire/pairwiseKeys.ts';
import { checkPeerAuth, checkPeerSignature, macPeerMessage, type PeerCounter, signPeerMessage } from '../../runtime/wire/peerSignature.ts';
import { fuzzParams } from '../helpers/fuzz.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const SUBJECT = 'p.node.n2.peer';
const sender: Sender = { name: 'n1', nodeId: '0199aaaa-0000-7000-8000-000000000001', clusterId: '0199aaaa-0000-7000-8000-000000000002', generation: 3 };
const heartbeat = (term: number, context: string | null) => ({ messages: [{ type: 'heartbeat', from: sender.nodeId, to: 'n2', term, commit: 0, context }] });

/** a plain or a tailed (snapshot chunk, format `records`) message */
const message = fc.oneof(
  fc.tuple(fc.nat(1000), fc.option(fc.string({ maxLength: 40 }))).map(([term, context]) => encode(sender, 'raft', heartbeat(term, context))),
  fc.uint8Array({ maxLength: 64 }).map((tail) => {
    const body = { message: { type: 'snapshot', from: sender.nodeId, to: 'n2', term: 1, snapshot: { index: 1, term: 1, membership: { members: [] } } }, id: 'x', seq: 0, last: true, records: 0 };
    return encodeTailed(sender, 'snapshot-chunk', body, {
      bytes: tail.length,
      write: (out, at) => {
        out.set(tail, at);
        return at + tail.length;
      },
    });
  }),
);

/** a (boot, seq) as a member sends them: a boot counter (small, or the clock in ms) and a seq */
const counterArb = fc.record({
  boot: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1_700_000_000_000, max: Number.MAX_SAFE_INTEGER - 1 })),
  seq: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
});
const ONE: PeerCounter = { boot: 1, seq: 1 };
const auth = (publicKey: KeyObject, pair: PairKeys | null, subject: string, data: Uint8Array) => checkPeerAuth(publicKey, pair, subject, data).check;

describe('signed peer messages', () => {
  it('a signed message checks valid and decodes as the unsigned one', () => {
    fc.assert(
      fc.property(message, (data) => {
        const signed = signPeerMessage(privateKey, SUBJECT, data);
        assert.equal(checkPeerSignature(publicKey, SUBJECT, signed), 'valid');
        assert.equal(checkPeerSignature(publicKey, SUBJECT, data), 'unsigned');
        assert.deepEqual(decode(signed, peerBodies, TAILED_PEER_TYPES), decode(data, peerBodies, TAILED_PEER_TYPES));
      }),
      fuzzParams(100),
    );
  });

  it('one changed byte, or another subject, never checks valid', () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (data, at, flip, otherSubject) => {
        const signed = Buffer.from(signPeerMessage(privateKey, SUBJECT, data));
        if (otherSubject) {
          assert.notEqual(checkPeerSignature(publicKey, 'p.node.n3.peer', signed), 'valid');
          return;
        }
        const i = at % signed.length;
        signed[i] = signed[i]! ^ flip;
        assert.notEqual(checkPeerSignature(publicKey, SUBJECT, signed), 'valid');
      }),
      fuzzParams(300),
    );
  });
});

function member(): { pairs: PairwiseKeys; key: string; publicKey: KeyObject } {
  const pair = generateKeyPairSync('ed25519');
  const key = publicKeyText(pair.publicKey);
  return { pairs: new PairwiseKeys(key, pair.privateKey), key, publicKey: pair.publicKey };
}

const tag = (key: KeyObject) => createHmac('sha256', key).update('probe').digest('hex');

describe('pairwise MACs between members', () => {
  const n1 = member();
  const n2 = member();
  const n3 = member();
  const to2 = n1.pairs.with(n2.key)!;
  const at2 = n2.pairs.with(n1.key)!;

  it('both ends derive the same key for each direction; the directions and the pairs differ', () => {
    for (let i = 0; i < 20; i++) {
      const a = member();
      const b = member();
      const ab = a.pairs.with(b.key)!;
      const ba = b.pairs.with(a.key)!;
      assert.equal(tag(ab.send), tag(ba.receive));
      assert.equal(tag(ab.receive), tag(ba.send));
      assert.notEqual(tag(ab.send), tag(ab.receive));
      assert.notEqual(tag(ab.send), tag(a.pairs.with(n3.key)!.send));
    }
  });

  it('a key that is not a usable point gives no pairwise key (the sender signs instead; a MAC is refused)', () => {
    const identity = Buffer.alloc(32);
    identity[0] = 1; // y = 1: the neutral point
    const minusOne = Buffer.alloc(32, 0xff);
    minusOne[0] = 0xec;
    minusOne[31] = 0x7f; // y = p − 1: order 2, u = 0
    for (const bad of [identity, minusOne, Buffer.alloc(31)]) assert.equal(n1.pairs.with(bad.toString('base64url')), null);
    const data = encode(sender, 'raft', heartbeat(1, null));
    assert.equal(auth(n1.publicKey, null, SUBJECT, macPeerMessage(to2.send, SUBJECT, data, ONE)), 'bad-signature');
  });

  it('a MACed message checks valid with the receiving pair and decodes as the bare one; a signature is not a MAC and the other way round', () => {
    fc.assert(
      fc.property(message, counterArb, (data, counter) => {
        const maced = macPeerMessage(to2.send, SUBJECT, data, counter);
        assert.deepEqual(checkPeerAuth(n1.publicKey, at2, SUBJECT, maced), { check: 'valid', counter: { ...counter } });
        assert.equal(auth(n1.publicKey, at2, SUBJECT, data), 'unsigned');
        assert.equal(auth(n1.publicKey, at2, SUBJECT, signPeerMessage(privateKey, SUBJECT, data)), 'bad-signature');
        // a signature carries no (boot, seq): a node still joining is not replay-protected
        assert.deepEqual(checkPeerAuth(publicKey, at2, SUBJECT, signPeerMessage(privateKey, SUBJECT, data)), { check: 'valid', counter: null });
        // member-signed admin requests take signatures only: a MAC proves nothing to a third member
        assert.equal(checkPeerSignature(n1.publicKey, SUBJECT, maced), 'unsigned');
        assert.deepEqual(decode(maced, peerBodies, TAILED_PEER_TYPES), decode(data, peerBodies, TAILED_PEER_TYPES));
      }),
      fuzzParams(100),
    );
  });

  it('one changed byte, another subject, another pair or the reverse direction never checks valid', () => {
    const n3to2 = n3.pairs.with(n2.key)!;
    fc.assert(
      fc.property(message, counterArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom('byte', 'subject', 'pair', 'reflected'), (data, counter, at, flip, change) => {
        const maced = Buffer.from(macPeerMessage(to2.send, SUBJECT, data, counter));
        if (change === 'subject') assert.notEqual(auth(n1.publicKey, at2, 'p.node.n3.peer', maced), 'valid');
        else if (change === 'pair') assert.notEqual(auth(n1.publicKey, at2, SUBJECT, macPeerMessage(n3to2.send, SUBJECT, data, counter)), 'valid');
        else if (change === 'reflected') assert.notEqual(auth(n1.publicKey, at2, SUBJECT, macPeerMessage(at2.send, SUBJECT, data, counter)), 'valid');
        else {
          const i = at % maced.length;
          maced[i] = maced[i]! ^ flip;
          assert.notEqual(auth(n1.publicKey, at2, SUBJECT, maced), 'valid');
        }
      }),
      fuzzParams(300),
    );
  });

  /** a MACed plain (untailed) message's text around its trailer's value, and the value's (boot, seq) and MAC */
  function split(maced: Uint8Array): { head: string; boot: string; seq: string; mac: string; tail: string } {
    const text = Buffer.from(maced).toString('latin1');
    const field = text.lastIndexOf(',"mac":"') + ',"mac":"'.length;
    const [boot, seq, mac] = text.slice(field, -2).split('.') as [string, string, string];
    return { head: text.slice(0, field), boot, seq, mac, tail: text.slice(-2) };
  }
  const join = (head: string, value: string, tail: string) => Buffer.from(head + value + tail, 'latin1');

  it('another (boot, seq) in place of the one MACed, or a MAC without them, never checks valid', () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(1000), fc.option(fc.string({ maxLength: 40 }))), counterArb, counterArb, ([term, context], counter, other) => {
        const data = encode(sender, 'raft', heartbeat(term, context));
        const { head, boot, seq, mac, tail } = split(macPeerMessage(to2.send, SUBJECT, data, counter));
        assert.equal(auth(n1.publicKey, at2, SUBJECT, join(head, `${boot}.${seq}.${mac}`, tail)), 'valid', 'the pieces put back together check');
        if (other.boot !== counter.boot || other.seq !== counter.seq) {
          assert.equal(auth(n1.publicKey, at2, SUBJECT, join(head, `${other.boot}.${other.seq}.${mac}`, tail)), 'bad-signature');
        }
        assert.equal(auth(n1.publicKey, at2, SUBJECT, join(head, `${boot}.${Number(seq) + 1}.${mac}`, tail)), 'bad-signature', 'the next seq');
        // not canonical: a leading zero, a sign, zero, no seq, or the MAC alone (as no release sent it)
        for (const value of [`0${boot}.${seq}.${mac}`, `${boot}.0${seq}.${mac}`, `${boot}.+${seq}.${mac}`, `0.${seq}.${mac}`, `${boot}.0.${mac}`, `${boot}.${mac}`, mac]) {
          const found = checkPeerAuth(n1.publicKey, at2, SUBJECT, join(head, value, tail));
          assert.deepEqual(found, { check: 'bad-signature', counter: null }, value);
        }
      }),
      fuzzParams(200),
    );
  });

  it('a MAC made under the v1 rule (without boot and seq, as before replay protection) is refused, not taken as unsigned', () => {
    const data = encode(sender, 'raft', heartbeat(1, null));
    const v1 = createHmac('sha256', to2.send).update('conclave peer message mac v1\0').update(SUBJECT).update('\0').update(data).digest('base64url');
    const text = Buffer.from(data).toString('latin1');
    const old = Buffer.from(`${text.slice(0, -1)},"mac":"${v1}"}`, 'latin1');
    assert.equal(auth(n1.publicKey, at2, SUBJECT, old), 'bad-signature');
  });

  it('macPeerMessage takes only safe integers ≥ 1', () => {
    const data = encode(sender, 'raft', heartbeat(1, null));
    for (const counter of [{ boot: 0, seq: 1 }, { boot: 1, seq: 0 }, { boot: 1.5, seq: 1 }, { boot: 1, seq: Number.MAX_SAFE_INTEGER + 1 }]) {
      assert.throws(() => macPeerMessage(to2.send, SUBJECT, data, counter), TypeError);
    }
  });
});
