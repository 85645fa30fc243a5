// Signed and MACed peer messages (runtime/wire/peerSignature.ts, pairwiseKeys.ts, issue 11): whatever a
// bus user changes in an authenticated message — one byte anywhere, the subject, the tail — it never
// checks as `valid`; an authenticated message decodes to the same envelope and body as the bare one (an
// older node reads it as before). Pairwise keys agree at both ends, differ per direction and per pair.
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { peerBodies, TAILED_PEER_TYPES } from '../../actors/peerWire.ts';
import { decode, encode, encodeTailed, type Sender } from '../../runtime/wire/codec.ts';
import { publicKeyText } from '../../runtime/store/memberKey.ts';
import { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';
import { checkPeerAuth, checkPeerSignature, macPeerMessage, signPeerMessage } from '../../runtime/wire/peerSignature.ts';
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
    assert.equal(checkPeerAuth(n1.publicKey, null, SUBJECT, macPeerMessage(to2.send, SUBJECT, data)), 'bad-signature');
  });

  it('a MACed message checks valid with the receiving pair and decodes as the bare one; a signature is not a MAC and the other way round', () => {
    fc.assert(
      fc.property(message, (data) => {
        const maced = macPeerMessage(to2.send, SUBJECT, data);
        assert.equal(checkPeerAuth(n1.publicKey, at2, SUBJECT, maced), 'valid');
        assert.equal(checkPeerAuth(n1.publicKey, at2, SUBJECT, data), 'unsigned');
        assert.equal(checkPeerAuth(n1.publicKey, at2, SUBJECT, signPeerMessage(privateKey, SUBJECT, data)), 'bad-signature');
        assert.equal(checkPeerAuth(publicKey, at2, SUBJECT, signPeerMessage(privateKey, SUBJECT, data)), 'valid');
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
      fc.property(message, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom('byte', 'subject', 'pair', 'reflected'), (data, at, flip, change) => {
        const maced = Buffer.from(macPeerMessage(to2.send, SUBJECT, data));
        if (change === 'subject') assert.notEqual(checkPeerAuth(n1.publicKey, at2, 'p.node.n3.peer', maced), 'valid');
        else if (change === 'pair') assert.notEqual(checkPeerAuth(n1.publicKey, at2, SUBJECT, macPeerMessage(n3to2.send, SUBJECT, data)), 'valid');
        else if (change === 'reflected') assert.notEqual(checkPeerAuth(n1.publicKey, at2, SUBJECT, macPeerMessage(at2.send, SUBJECT, data)), 'valid');
        else {
          const i = at % maced.length;
          maced[i] = maced[i]! ^ flip;
          assert.notEqual(checkPeerAuth(n1.publicKey, at2, SUBJECT, maced), 'valid');
        }
      }),
      fuzzParams(300),
    );
  });
});
