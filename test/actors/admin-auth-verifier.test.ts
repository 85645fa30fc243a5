// The verifier of member-signed admin requests (runtime/wire/adminAuth.ts, issue 11), without a bus:
// what it takes, what it refuses and why, and that its nonce memory stays bounded without ever
// letting a replay through (a forgotten nonce's time is refused from then on).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { AdminAuthVerifier, MEMBER_AUTH_SKEW_MS, signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { decode, encode, type Sender } from '../../runtime/wire/codec.ts';
import { publicKeyText } from '../../runtime/store/memberKey.ts';

const SUBJECT = 'p.node.n2.admin';
const CLUSTER = '0199aaaa-0000-7000-8000-000000000002';
const sender: Sender = { name: 'n1', nodeId: '0199aaaa-0000-7000-8000-000000000001', clusterId: CLUSTER, generation: 1 };
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

function verifier(now: { t: number }, maxNonces?: number) {
  return new AdminAuthVerifier(
    { adminSubject: SUBJECT, clusterId: () => CLUSTER, memberKey: (id) => (id === sender.nodeId ? { key: publicKeyText(publicKey) } : null), now: () => now.t },
    maxNonces,
  );
}

function check(v: AdminAuthVerifier, data: Uint8Array) {
  const decoded = decode(data, { 'member.removed': { safeParse: (b: unknown) => ({ success: true, data: b }) } as never, propose: { safeParse: (b: unknown) => ({ success: true, data: b }) } as never });
  assert.ok(decoded.ok, 'decodes');
  return v.check(decoded.envelope, decoded.body, data)?.reason ?? null;
}

describe('member-signed admin requests: the verifier', () => {
  it('takes a fresh signed notice once; refuses it replayed, unsigned, signed by another key, for another subject, or from an unknown id', () => {
    const now = { t: 1_000_000_000 };
    const v = verifier(now);
    const signed = signAdminRequest({ key: privateKey, now: () => now.t }, SUBJECT, sender, 'member.removed', {});
    assert.equal(check(v, signed), null);
    assert.equal(check(v, signed), 'replayed');
    assert.equal(check(v, encode(sender, 'member.removed', {})), 'unsigned');
    assert.equal(check(v, signAdminRequest({ key: other.privateKey, now: () => now.t }, SUBJECT, sender, 'member.removed', {})), 'bad-signature');
    assert.equal(check(v, signAdminRequest({ key: privateKey, now: () => now.t }, 'p.node.n3.admin', sender, 'member.removed', {})), 'bad-signature');
    assert.equal(check(v, encode({ ...sender, nodeId: '0199aaaa-0000-7000-8000-00000000000f' }, 'member.removed', {})), 'unknown-sender');
    assert.equal(check(v, encode({ ...sender, clusterId: '0199aaaa-0000-7000-8000-00000000000e' }, 'member.removed', {})), 'foreign-cluster');
  });

  it('refuses a time more than the skew away either way; a request that claims no member authority is not checked', () => {
    const now = { t: 1_000_000_000 };
    const v = verifier(now);
    for (const off of [-MEMBER_AUTH_SKEW_MS - 1, MEMBER_AUTH_SKEW_MS + 1]) {
      assert.equal(check(v, signAdminRequest({ key: privateKey, now: () => now.t + off }, SUBJECT, sender, 'propose', { command: 1, forwarded: true })), 'stale-time');
    }
    assert.equal(check(v, encode(sender, 'propose', { command: 1 })), null);
  });

  it('remembers a bounded number of nonces, and refuses what it may have forgotten', () => {
    const now = { t: 1_000_000_000 };
    const v = verifier(now, 4);
    const first = signAdminRequest({ key: privateKey, now: () => now.t }, SUBJECT, sender, 'member.removed', {});
    assert.equal(check(v, first), null);
    now.t += 1;
    for (let i = 0; i < 4; i++) assert.equal(check(v, signAdminRequest({ key: privateKey, now: () => now.t }, SUBJECT, sender, 'member.removed', {})), null);
    // the first nonce was forgotten to stay within 4: its replay is still refused, by its time
    assert.equal(check(v, first), 'replayed');
    // past the window, memory is freed and a replay is refused by its time
    now.t += MEMBER_AUTH_SKEW_MS + 10;
    assert.equal(check(v, first), 'stale-time');
    assert.equal(check(v, signAdminRequest({ key: privateKey, now: () => now.t }, SUBJECT, sender, 'member.removed', {})), null);
  });
});
