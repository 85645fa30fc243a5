// Member identity (issue 11): each store holds one Ed25519 member key, made with the identity, kept
// across restarts, given at its next open to a store of a release before member keys, and never
// carried in the identity record (which is read, copied and logged in many places).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { openStore } from '../../runtime/store/index.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { checkPeerSignature, MEMBER_KEY_PATTERN, memberPublicKey, signPeerMessage } from '../../runtime/wire/peerSignature.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-member-key-');
after(() => tmp.cleanup());

describe('store: member key', () => {
  it('is made once with the identity, survives a restart, and is not part of the identity record', async () => {
    const dir = join(tmp.make(), 'data');
    let s = await openStore({ dataDir: dir, name: 'ctrl1' });
    const key = s.memberKey();
    assert.match(key.publicKey, MEMBER_KEY_PATTERN);
    assert.equal(key.privateKey.asymmetricKeyType, 'ed25519');
    assert.doesNotMatch(JSON.stringify(s.identity()), /key/i, 'the identity record carries no key');
    assert.equal(JSON.stringify(key.privateKey), '{}', 'logging the key prints nothing of it');
    await s.close();
    s = await openStore({ dataDir: dir, name: 'ctrl1' });
    assert.equal(s.memberKey().publicKey, key.publicKey, 'the same key after a restart');
    // what it signs verifies against its public half, as committed in the configuration
    const signed = signPeerMessage(s.memberKey().privateKey, 'p.node.ctrl2.peer', encode({ name: 'ctrl1', nodeId: s.identity().nodeId, clusterId: null }, 'ping', {}));
    assert.equal(checkPeerSignature(memberPublicKey(key.publicKey)!, 'p.node.ctrl2.peer', signed), 'valid');
    await s.close();
  });

  it('a store without one (written by a release before member keys) gets one at its next open, then keeps it', async () => {
    const dir = join(tmp.make(), 'data');
    let s = await openStore({ dataDir: dir, name: 'ctrl1' });
    const nodeId = s.identity().nodeId;
    const first = s.memberKey().publicKey;
    await s.close();
    // what an older release leaves: the identity database without the member key record
    const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
    assert.equal(env.openDB({ name: 'identity', encoding: 'binary' }).removeSync('memberKey'), true);
    await env.close();

    s = await openStore({ dataDir: dir, name: 'ctrl1' });
    const made = s.memberKey().publicKey;
    assert.equal(s.identity().nodeId, nodeId, 'the same node');
    assert.notEqual(made, first, 'a new key, made at this open');
    await s.close();
    s = await openStore({ dataDir: dir, name: 'ctrl1' });
    assert.equal(s.memberKey().publicKey, made, 'never a second key for the same identity');
    await s.close();
  });
});
