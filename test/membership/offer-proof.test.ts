// Issue 11, "Joining": a cluster with a join secret proves its join offers, and a blank node with the
// secret accepts only proven offers — so a forged offer (anyone on the bus can send one) no longer
// makes it record a contact and refuse `init`. Unit checks of the proof, then real `conclave run`
// processes over a real nats-server: forged offers (none, wrong, replayed to another node) are
// refused, counted and logged, and leave the node blank; real adds through the CLI still work. A node
// without a secret answers without proof, so a cluster with one does not add it
// (test/hostile/join-reply-nats.test.ts: forged answers).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { NonceCache } from '../../runtime/join/autoJoin.ts';
import { type OfferFields, proveOffer, verifyOffer } from '../../runtime/join/offerProof.ts';
import type { BusMessage } from '../../runtime/transport/types.ts';
import { decodeReply, encode, PROTOCOL_VERSION } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { cliCluster } from '../helpers/cliCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';

const SECRET = Buffer.from('a-shared-join-secret-of-32-bytes');

describe('join offer proof (unit)', () => {
  const fields: OfferFields = { clusterId: randomUUID(), leader: 'a1', leaderNodeId: randomUUID(), target: 'b1', protocolVersion: PROTOCOL_VERSION };

  it('accepts a proven offer once and refuses its replay', () => {
    const nonces = new NonceCache();
    const proof = proveOffer(SECRET, fields);
    assert.deepEqual(verifyOffer(SECRET, fields, proof, nonces), { ok: true });
    const again = verifyOffer(SECRET, fields, proof, nonces);
    assert.equal(!again.ok && again.reason, 'replayed');
  });

  it('refuses no proof, another secret, another target or cluster, and an offer outside the window', () => {
    const nonces = new NonceCache();
    const reason = (r: ReturnType<typeof verifyOffer>) => (r.ok ? 'ok' : r.reason);
    assert.equal(reason(verifyOffer(SECRET, fields, {}, nonces)), 'no-proof');
    assert.equal(reason(verifyOffer(SECRET, fields, proveOffer(Buffer.from('another-secret-of-enough-length!'), fields), nonces)), 'bad-proof');
    assert.equal(reason(verifyOffer(SECRET, { ...fields, target: 'b2' }, proveOffer(SECRET, fields), nonces)), 'bad-proof');
    assert.equal(reason(verifyOffer(SECRET, { ...fields, clusterId: randomUUID() }, proveOffer(SECRET, fields), nonces)), 'bad-proof');
    const old = proveOffer(SECRET, fields, Date.now() - 10 * 60_000);
    assert.equal(reason(verifyOffer(SECRET, fields, old, nonces)), 'expired');
  });
});

describe('join offers with a join secret, over real NATS', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'offerproof', tmpPrefix: 'conclave-offer-proof-' });
  before(async () => {
    await writeFile(join(c.dir, 'secret'), `${randomBytes(32).toString('hex')}\n`);
  });
  const offer = async (target: string, body: Record<string, unknown>, sender = { name: 'mallory', nodeId: randomUUID(), clusterId: randomUUID(), generation: 1 }) => {
    const reply = await c.bus.request(`offerproof.node.${target}.admin`, encode(sender, 'join.offer', { protocolVersion: PROTOCOL_VERSION, ...body }), { timeoutMs: 10_000 });
    return decodeReply(reply.data);
  };

  it('a blank node with the secret refuses forged offers (counted, logged) and stays blank; the cluster with the secret adds it', async () => {
    const a1 = await c.run('a1', { joinSecretFile: join(c.dir, 'secret') });
    assert.equal((await c.cli(['init', '--node', 'a1'])).code, 0);
    const b1 = await c.run('b1', { joinSecretFile: join(c.dir, 'secret') });
    const b2 = await c.run('b2', { joinSecretFile: join(c.dir, 'secret') });

    // watch a real offer go by, to replay it
    const seen: BusMessage[] = [];
    const watch = c.bus.subscribe('offerproof.node.b1.admin', (m) => void seen.push(m));

    const none = await offer('b1', {});
    assert.equal(!none.ok && none.error.code, 'JOIN_AUTH');
    assert.match(!none.ok ? none.error.message : '', /join offer refused: the offer from mallory .* carries no proof of the join secret; b1 has a join secret/);
    const wrong = await offer('b1', { nonce: randomBytes(16).toString('hex'), ts: Date.now(), proof: randomBytes(32).toString('hex') });
    assert.equal(!wrong.ok && wrong.error.code, 'JOIN_AUTH');
    assert.match(!wrong.ok ? wrong.error.message : '', /does not match this join secret/);
    assert.equal((await c.status('b1')).phase, 'uninitialized', 'no contact recorded, no joining');
    await b1.waitForOutput(/join offer refused: the offer from mallory/, 20_000);

    const add = await c.cli(['cluster', 'add', 'b1', '--via', 'a1']);
    assert.equal(add.code, 0, add.stderr);
    await waitUntil(() => seen.some((m) => m.data.length > 0), { what: 'the real offer seen on the bus' });
    watch.unsubscribe();

    // the real offer, replayed to another blank node: its target is b1, so the proof fails for b2
    const real = seen[0]!;
    const replayed = decodeReply((await c.bus.request('offerproof.node.b2.admin', real.data, { timeoutMs: 10_000 })).data);
    assert.equal(!replayed.ok && replayed.error.code, 'JOIN_AUTH', JSON.stringify(replayed));
    assert.equal((await c.status('b2')).phase, 'uninitialized');
    // and b2 is still free for a real add (no contact was recorded)
    const addB2 = await c.cli(['cluster', 'add', 'b2', '--via', 'a1']);
    assert.equal(addB2.code, 0, addB2.stderr);
    const list = JSON.parse((await c.cli(['cluster', 'list', '--via', 'a1', '--json'])).stdout) as { members: Array<{ name: string }> };
    assert.deepEqual(list.members.map((m) => m.name).sort(), ['a1', 'b1', 'b2']);
    assert.ok(a1.running && b2.running);
  });

  it('a node without a secret is not added by a cluster with one (its answer proves nothing); given the secret, it is', async () => {
    const c1 = await c.run('c1');
    const add = await c.cli(['cluster', 'add', 'c1', '--via', 'a1', '--timeout', '15000']);
    assert.notEqual(add.code, 0, 'the unproven answer is not taken');
    assert.match(add.stderr, /c1 gave no answer proven with the join secret .* a cluster with a join secret adds only nodes that prove it/);
    const list = JSON.parse((await c.cli(['cluster', 'list', '--via', 'a1', '--json'])).stdout) as { members: Array<{ name: string }> };
    assert.ok(!list.members.some((m) => m.name === 'c1'));
    // it took the offer (it cannot tell the leader will not take its answer): with the secret, the add goes through
    await c1.kill('SIGTERM');
    await c.run('c1', { joinSecretFile: join(c.dir, 'secret') });
    const again = await c.cli(['cluster', 'add', 'c1', '--via', 'a1']);
    assert.equal(again.code, 0, again.stderr);
  });
});
