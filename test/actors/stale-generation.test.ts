// A stale survivor believes "member X was recovered to generation N" only when X's answer to `whois`
// carries key rotations signed with the key this node's configuration holds for X (issue 11: anyone
// on the bus can answer on X's admin subject; only X's key holder can sign its rotation).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Membership } from '../../machines/raft/types.ts';
import { unconfirmedClaim } from '../../actors/staleGeneration.ts';
import { type MemberKey, newMemberKey, readMemberKey, rotatedMemberKey } from '../../runtime/store/memberKey.ts';
import type { Bus, BusMessage } from '../../runtime/transport/types.ts';
import { encodeReply } from '../../runtime/wire/envelope.ts';

const CLUSTER = '3f0c2a8e-5b1d-4c7a-9e2f-6a8b0c1d2e3f';
const NODE_A = '0b4e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b';

function keyOf(stored: ReturnType<typeof newMemberKey>): MemberKey {
  const key = readMemberKey(stored, stored.nodeId);
  if (typeof key === 'string') throw new Error(key);
  return key;
}

/** a bus whose only answer to any request is `body` (what a forger, or the real member, replies) */
function answering(body: unknown): Pick<Bus, 'request'> {
  return {
    request: async (subject: string): Promise<BusMessage> => ({ subject, data: encodeReply({ ok: true, body }), respond: () => false }),
  };
}

const asker = { name: 'b', nodeId: null, clusterId: CLUSTER };
const claim = { name: 'a', nodeId: NODE_A, clusterId: CLUSTER, generation: 2 };

describe('stale generation: a claim is believed only with a rotation signed by the committed key', () => {
  const old = keyOf(newMemberKey(NODE_A, 1));
  const membership: Membership = { members: [{ name: 'a', nodeId: NODE_A, voter: true, key: old.publicKey }, { name: 'b', nodeId: 'b-id', voter: true }] };
  const recovered = rotatedMemberKey(old, NODE_A, CLUSTER, 2);
  const answer = { name: 'a', nodeId: NODE_A, clusterId: CLUSTER, generation: 2 };

  it('the real recovered member (its rotation signed by the old key) is believed', async () => {
    const why = await unconfirmedClaim(answering({ ...answer, keyRotations: recovered.rotations }), 'p', asker, claim, membership, 1);
    assert.equal(why, null);
  });

  it('a forged answer without rotations, or with one signed by another key, is not', async () => {
    const bare = await unconfirmedClaim(answering(answer), 'p', asker, claim, membership, 1);
    assert.match(bare ?? '', /does not prove generation 2/);
    const stranger = keyOf(newMemberKey(NODE_A, 1));
    const forged = rotatedMemberKey(stranger, NODE_A, CLUSTER, 2);
    const why = await unconfirmedClaim(answering({ ...answer, keyRotations: forged.rotations }), 'p', asker, claim, membership, 1);
    assert.match(why ?? '', /does not prove generation 2/);
  });

  it('a real rotation does not prove a higher generation than it names, nor another cluster or node', async () => {
    const higher = await unconfirmedClaim(answering({ ...answer, generation: 3, keyRotations: recovered.rotations }), 'p', asker, { ...claim, generation: 3 }, membership, 1);
    assert.match(higher ?? '', /does not prove generation 3/);
    const tampered = recovered.rotations?.map((r) => ({ ...r, generation: 3 }));
    const why = await unconfirmedClaim(answering({ ...answer, generation: 3, keyRotations: tampered }), 'p', asker, { ...claim, generation: 3 }, membership, 1);
    assert.match(why ?? '', /does not prove generation 3/);
  });

  it('a chain of two recoveries is followed from the committed key', async () => {
    const third = rotatedMemberKey(keyOf(recovered), NODE_A, CLUSTER, 3);
    assert.equal(third.rotations?.length, 2);
    const why = await unconfirmedClaim(answering({ ...answer, generation: 3, keyRotations: third.rotations }), 'p', asker, { ...claim, generation: 3 }, membership, 1);
    assert.equal(why, null);
  });

  it('malformed rotations prove nothing and do not throw', async () => {
    for (const keyRotations of ['x', [{ generation: 'two' }], Array.from({ length: 100 }, () => recovered.rotations?.[0])]) {
      const why = await unconfirmedClaim(answering({ ...answer, keyRotations }), 'p', asker, claim, membership, 1);
      assert.match(why ?? '', /does not prove generation 2/);
    }
  });
});
