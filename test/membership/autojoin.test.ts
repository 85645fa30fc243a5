// Auto-join (issue #4, acceptance 6): a blank node started with `join: {cluster, secretFile}` is
// admitted by the leader only with a valid proof of the join secret; a wrong or missing secret and a
// replayed request are refused; beyond maxVoters admitted nodes stay learners. Unit checks of the
// proof first, then real `conclave run` processes over a real nats-server.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { v7 as uuidv7 } from 'uuid';
import type { MemberInfo } from '../../actors/member.ts';
import { JOIN_REQUEST_WINDOW_MS, makeJoinRequest, NonceCache, verifyJoinRequest } from '../../runtime/join/autoJoin.ts';
import type { BusMessage } from '../../runtime/transport/types.ts';
import { decodeReply, PROTOCOL_VERSION } from '../../runtime/wire/codec.ts';
import { runCli, waitUntil } from '../helpers/cli.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { cliCluster } from '../helpers/cliCluster.ts';

const SECRET = Buffer.from('a-shared-join-secret-of-32-bytes');

describe('join proof (unit)', () => {
  const fields = { cluster: uuidv7(), name: 'n9', nodeId: uuidv7(), protocolVersion: PROTOCOL_VERSION };

  it('accepts a fresh request once, refuses its replay', () => {
    const nonces = new NonceCache();
    const req = makeJoinRequest(SECRET, fields);
    assert.deepEqual(verifyJoinRequest(SECRET, req, nonces), { ok: true });
    const again = verifyJoinRequest(SECRET, req, nonces);
    assert.equal(again.ok, false);
    assert.equal(!again.ok && again.reason, 'replayed');
  });

  it('refuses a wrong secret, a missing proof, a changed field, and a request outside the window', () => {
    const nonces = new NonceCache();
    const wrong = verifyJoinRequest(SECRET, makeJoinRequest(Buffer.from('another-secret-of-enough-length!'), fields), nonces);
    assert.equal(!wrong.ok && wrong.reason, 'bad-proof');
    const none = verifyJoinRequest(SECRET, makeJoinRequest(null, fields), nonces);
    assert.equal(!none.ok && none.reason, 'no-proof');
    // every field is covered by the proof: renaming the node invalidates it
    const tampered = { ...makeJoinRequest(SECRET, fields), name: 'n10' };
    assert.equal(verifyJoinRequest(SECRET, tampered, nonces).ok, false);
    const old = makeJoinRequest(SECRET, fields, Date.now() - JOIN_REQUEST_WINDOW_MS - 1000);
    const expired = verifyJoinRequest(SECRET, old, nonces);
    assert.equal(!expired.ok && expired.reason, 'expired');
    // refused requests do not fill the replay cache
    assert.equal(nonces.size, 0);
  });

  it('keeps the replay cache bounded', () => {
    const nonces = new NonceCache(3);
    for (let i = 0; i < 10; i++) assert.equal(nonces.remember(`${i}`.padStart(32, '0'), Date.now()), true);
    assert.equal(nonces.size, 3);
  });
});

describe('auto-join over real NATS through the CLI (acceptance 6)', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'aj', tmpPrefix: 'conclave-autojoin-' });
  const PREFIX = 'aj';
  const { run, status, cli } = c;
  before(async () => {
    await writeFile(join(c.dir, 'secret'), `${SECRET.toString()}\n`);
    await writeFile(join(c.dir, 'wrong-secret'), 'not-the-cluster-secret-at-all-1234\n');
  });

  it('right secret joins (voter up to maxVoters, then learner); wrong or missing secret and a replayed request are refused', async () => {
    const leader = await run('n1', { joinSecretFile: 'secret', join: { maxVoters: 2 } });
    const init = await cli(['init', '--node', 'n1']);
    assert.equal(init.code, 0, init.stderr);
    const clusterId = init.stdout.trim();
    await waitUntil(async () => (await status('n1')).role === 'leader', { what: 'n1 leads' });

    // capture the requests as they travel, to replay one later
    const seen: Uint8Array[] = [];
    const sub = c.bus.subscribe(`${PREFIX}.discover`, (m: BusMessage) => seen.push(m.data));

    await run('j1', { join: { cluster: clusterId, secretFile: 'secret' } });
    await waitUntil(async () => (await status('n1')).members.some((m) => m.name === 'j1' && m.voter), { what: 'j1 admitted as a voter', timeoutMs: 30_000 });
    const j1 = await status('j1');
    assert.equal(j1.clusterId, clusterId);
    assert.equal(j1.phase, 'member');

    // beyond maxVoters (2) an admitted node stays a learner
    await run('j2', { join: { cluster: clusterId, secretFile: 'secret' } });
    await waitUntil(async () => (await status('n1')).members.some((m) => m.name === 'j2'), { what: 'j2 admitted', timeoutMs: 30_000 });
    await waitUntil(async () => (await status('j2')).phase === 'member', { what: 'j2 is a member', timeoutMs: 30_000 });
    const list = await cli(['cluster', 'list', '--via', 'j1', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const members = (JSON.parse(list.stdout) as { members: MemberInfo[] }).members;
    assert.deepEqual(members.map((m) => [m.name, m.voter]).sort(), [['j1', true], ['j2', false], ['n1', true]]);

    // wrong secret: refused at both ends, never a member
    const wrong = await run('w1', { join: { cluster: clusterId, secretFile: 'wrong-secret' } });
    await wrong.waitForOutput(/does not match this join secret/, 20_000);
    await leader.waitForOutput(/the proof in the request from w1 .* does not match/, 20_000);
    // missing secret: refused with a message that says what to configure
    const missing = await run('m1', { join: { cluster: clusterId } });
    await missing.waitForOutput(/carries no proof of the join secret/, 20_000);
    for (const n of ['w1', 'm1']) {
      const s = await status(n);
      assert.equal(s.phase, 'uninitialized', `${n} stays blank`);
      assert.equal(s.clusterId, null);
    }

    // replay: the exact bytes of j1's (already used) request are refused
    sub.unsubscribe();
    const j1Request = seen.find((d) => new TextDecoder().decode(d).includes('"from":"j1"'));
    assert.ok(j1Request, 'captured a request of j1');
    const reply = decodeReply((await c.bus.request(`${PREFIX}.discover`, j1Request, { timeoutMs: 2000 })).data);
    assert.equal(reply.ok, false);
    assert.equal(!reply.ok && reply.error.code, 'JOIN_AUTH');
    assert.match(!reply.ok ? reply.error.message : '', /already used \(replayed nonce/);

    const final = await status('n1');
    assert.deepEqual(final.members.map((m) => m.name).sort(), ['j1', 'j2', 'n1']);
  });

  it('a cluster without a join secret has auto-join off, and says how to add the node instead', async () => {
    await run('o1', { prefix: 'aj2' });
    const init = await runCli(['init', '--node', 'o1', '--prefix', 'aj2'], { env: c.env, timeoutMs: 30_000 });
    assert.equal(init.code, 0, init.stderr);
    const clusterId = init.stdout.trim();
    const joiner = await run('o2', { prefix: 'aj2', join: { cluster: clusterId, secretFile: 'secret' } });
    await joiner.waitForOutput(/auto-join is off in cluster .*cluster add o2 --via o1/, 20_000);
  });
});
