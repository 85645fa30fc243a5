// Signed peer messages (runtime/wire/peerSignature.ts, issue 11): whatever a bus user changes in a
// signed message — one byte anywhere, the subject, the tail — it never checks as `valid`; a signed
// message decodes to the same envelope and body as the unsigned one (an older node reads it as before).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { peerBodies, TAILED_PEER_TYPES } from '../../actors/peerWire.ts';
import { decode, encode, encodeTailed, type Sender } from '../../runtime/wire/codec.ts';
import { checkPeerSignature, signPeerMessage } from '../../runtime/wire/peerSignature.ts';
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
