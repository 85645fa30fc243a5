// The verifier of operator-signed admin requests (runtime/wire/operatorAuth.ts, issue 11 "Operators"),
// without a bus: which requests need an operator's signature, which keys and times it takes, and that
// a replay, a request signed for another node and an operator key on an internal request are refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { publicKeyText } from '../../runtime/store/memberKey.ts';
import { ROOT } from '../helpers/cli.ts';
import { MEMBER_AUTH_SKEW_MS, signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { decode, encode, type Sender } from '../../runtime/wire/codec.ts';
import { OperatorAuthVerifier, requiresOperatorAuth, unusableOperatorKeys } from '../../runtime/wire/operatorAuth.ts';

const SUBJECT = 'p.node.n2.admin';
const CLI: Sender = { name: 'cli', nodeId: null, clusterId: null };
const MEMBER: Sender = { name: 'n1', nodeId: '0199aaaa-0000-7000-8000-000000000001', clusterId: '0199aaaa-0000-7000-8000-000000000002', generation: 1 };
const LEGACY: Sender = { ...MEMBER, name: 'n3', nodeId: '0199aaaa-0000-7000-8000-000000000003' };
const ops = generateKeyPairSync('ed25519');
const second = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const anyBody = { safeParse: (b: unknown) => ({ success: true, data: b }) } as never;

function verifier(now: { t: number }) {
  return new OperatorAuthVerifier({
    adminSubject: SUBJECT,
    keys: [publicKeyText(ops.publicKey), publicKeyText(second.publicKey)],
    memberForwards: (id) => id === MEMBER.nodeId,
    now: () => now.t,
  });
}

function check(v: OperatorAuthVerifier, data: Uint8Array) {
  const decoded = decode(data, { propose: anyBody, status: anyBody, read: anyBody, 'cluster.remove': anyBody, 'member.removed': anyBody, 'join.offer': anyBody, init: anyBody });
  assert.ok(decoded.ok, 'decodes');
  return v.check(decoded.envelope, decoded.body, data)?.reason ?? null;
}

describe('operator-signed admin requests: the verifier', () => {
  it('asks an operator for what changes the cluster, not for reads nor internal requests', () => {
    for (const op of ['init', 'propose', 'cluster.add', 'cluster.remove', 'cluster.transfer', 'snapshot.begin', 'snapshot.page']) assert.equal(requiresOperatorAuth(op, {}), true, op);
    for (const op of ['status', 'read', 'cluster.list', 'whois', 'join.offer', 'member.removed']) assert.equal(requiresOperatorAuth(op, {}), false, op);
    assert.equal(requiresOperatorAuth('propose', { command: 1, forwarded: true }), false, 'a forward is a member’s (adminAuth.ts checks it)');
  });

  it('takes a request signed by any listed key once; refuses it unsigned, replayed, by another key, for another node, or out of time', () => {
    const now = { t: 1_000_000_000 };
    const v = verifier(now);
    const sign = (key = ops.privateKey, subject = SUBJECT, at = now.t) => signAdminRequest({ key, now: () => at }, subject, CLI, 'propose', { command: { op: 'put', key: 'k', value: 1 } });
    const signed = sign();
    assert.equal(check(v, signed), null);
    assert.equal(check(v, signed), 'replayed');
    assert.equal(check(v, sign(second.privateKey)), null, 'the second listed key');
    assert.equal(check(v, encode(CLI, 'propose', { command: 1 })), 'unsigned');
    assert.equal(check(v, sign(stranger.privateKey)), 'bad-signature');
    assert.equal(check(v, sign(ops.privateKey, 'p.node.n3.admin')), 'bad-signature');
    assert.equal(check(v, sign(ops.privateKey, SUBJECT, now.t - MEMBER_AUTH_SKEW_MS - 1)), 'stale-time');
    assert.equal(check(v, sign(ops.privateKey, SUBJECT, now.t + MEMBER_AUTH_SKEW_MS + 1)), 'stale-time');
    assert.equal(check(v, encode(CLI, 'status', {})), null, 'a read needs no key');
  });

  it('with no operator key listed, refuses every change (no-operators), signed or not, and still answers reads', () => {
    const now = { t: 1_000_000_000 };
    const v = new OperatorAuthVerifier({ adminSubject: SUBJECT, keys: [], memberForwards: (id) => id === MEMBER.nodeId, now: () => now.t });
    const put = { command: { op: 'put', key: 'k', value: 1 } };
    assert.equal(check(v, encode(CLI, 'propose', put)), 'no-operators');
    assert.equal(check(v, signAdminRequest({ key: ops.privateKey, now: () => now.t }, SUBJECT, CLI, 'propose', put)), 'no-operators', 'a signature by a key nobody listed');
    assert.equal(check(v, encode(CLI, 'init', {})), 'no-operators');
    assert.equal(check(v, encode(CLI, 'status', {})), null, 'a read needs no key');
    assert.equal(check(v, encode(CLI, 'read', { query: { op: 'get', key: 'k' } })), null);
    assert.equal(check(v, encode(MEMBER, 'propose', { command: 1, forwarded: true })), null, "a forward is a member's: adminAuth.ts checked its signature");
  });

  it("takes a forward only from a member whose key is committed; an operator key does not make an internal request the operator's", () => {
    const v = verifier({ t: 1_000_000_000 });
    assert.equal(check(v, encode(MEMBER, 'propose', { command: 1, forwarded: true })), null, 'adminAuth.ts has checked its member signature');
    assert.equal(check(v, encode(LEGACY, 'propose', { command: 1, forwarded: true })), 'unsigned-forward');
    assert.equal(check(v, signAdminRequest({ key: ops.privateKey }, SUBJECT, CLI, 'propose', { command: 1, forwarded: true })), 'unsigned-forward');
    assert.equal(check(v, encode(CLI, 'join.offer', {})), null, 'the join handshake is not an operator’s (the join secret guards it)');
  });

  it("with reads 'signed', a read needs an operator or read-only key; a read-only key signs no change", () => {
    const now = { t: 1_000_000_000 };
    const reader = generateKeyPairSync('ed25519');
    const v = new OperatorAuthVerifier({ adminSubject: SUBJECT, keys: [publicKeyText(ops.publicKey)], readKeys: [publicKeyText(reader.publicKey)], reads: 'signed', memberForwards: () => true, now: () => now.t });
    const sign = (key: typeof ops.privateKey, type: string, body: unknown) => signAdminRequest({ key, now: () => now.t }, SUBJECT, CLI, type, body);
    assert.equal(check(v, encode(CLI, 'status', {})), 'unsigned');
    assert.equal(check(v, encode(CLI, 'read', { query: 1, stale: true })), 'unsigned');
    assert.equal(check(v, sign(reader.privateKey, 'status', {})), null);
    assert.equal(check(v, sign(ops.privateKey, 'read', { query: 1 })), null);
    assert.equal(check(v, sign(stranger.privateKey, 'status', {})), 'bad-signature');
    assert.equal(check(v, sign(reader.privateKey, 'propose', { command: 1 })), 'read-only-key');
    assert.equal(check(v, sign(ops.privateKey, 'propose', { command: 1 })), null);
    assert.equal(check(v, encode(CLI, 'join.offer', {})), null, 'whois and the join handshake stay as they are');
    // with reads open (the default), a read-only key still signs no change
    const open = new OperatorAuthVerifier({ adminSubject: SUBJECT, keys: [publicKeyText(ops.publicKey)], readKeys: [publicKeyText(reader.publicKey)], memberForwards: () => true, now: () => now.t });
    assert.equal(check(open, encode(CLI, 'status', {})), null);
    assert.equal(check(open, sign(reader.privateKey, 'propose', { command: 1 })), 'read-only-key');
  });

  it('names the keys that are not Ed25519 public keys', () => {
    assert.deepEqual(unusableOperatorKeys([publicKeyText(ops.publicKey), 'nope']), ['nope']);
  });
});

describe('the bench-only switch CONCLAVE_UNSAFE_NO_PEER_AUTH', () => {
  it('turns member authentication off, never the check of operator keys', () => {
    // the switch is read once when peerSignature.ts loads: a process of its own, with it set
    const script = `
      import { generateKeyPairSync } from 'node:crypto';
      import { publicKeyText } from './runtime/store/memberKey.ts';
      import { signAdminRequest } from './runtime/wire/adminAuth.ts';
      import { decode } from './runtime/wire/codec.ts';
      import { OperatorAuthVerifier } from './runtime/wire/operatorAuth.ts';
      import { UNSAFE_NO_PEER_AUTH } from './runtime/wire/peerSignature.ts';
      const ops = generateKeyPairSync('ed25519');
      const stranger = generateKeyPairSync('ed25519');
      const v = new OperatorAuthVerifier({ adminSubject: '${SUBJECT}', keys: [publicKeyText(ops.publicKey)], memberForwards: () => false });
      const data = signAdminRequest({ key: stranger.privateKey }, '${SUBJECT}', { name: 'cli', nodeId: null, clusterId: null }, 'propose', { command: 1 });
      const d = decode(data, { propose: { safeParse: (b) => ({ success: true, data: b }) } });
      console.log(JSON.stringify({ on: UNSAFE_NO_PEER_AUTH, refusal: d.ok ? v.check(d.envelope, d.body, data)?.reason ?? null : 'undecodable' }));
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, CONCLAVE_UNSAFE_NO_PEER_AUTH: '1' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { on: true, refusal: 'bad-signature' });
  });
});
