import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkJoin, validNodeName } from '../../machines/identity/index.ts';

const A = '0199aaaa-0000-7000-8000-0000000000a1';
const B = '0199bbbb-0000-7000-8000-00000000007c';

describe('the join rule', () => {
  // all four cases of (local id, remote id), each checked in both directions
  const cases: Array<{ local: string | null; remote: string | null; allowed: boolean; adopt?: string | null }> = [
    { local: A, remote: A, allowed: true, adopt: A },
    { local: A, remote: null, allowed: true, adopt: A },
    { local: null, remote: A, allowed: true, adopt: A },
    { local: null, remote: null, allowed: true, adopt: null },
    { local: A, remote: B, allowed: false },
    { local: B, remote: A, allowed: false },
  ];
  for (const c of cases) {
    it(`local=${c.local ?? 'blank'} remote=${c.remote ?? 'blank'} → ${c.allowed ? 'allowed' : 'refused'} (both directions)`, () => {
      const there = checkJoin({ name: 'ctrl1', clusterId: c.local }, { name: 'ctrl4', clusterId: c.remote });
      const back = checkJoin({ name: 'ctrl4', clusterId: c.remote }, { name: 'ctrl1', clusterId: c.local });
      assert.equal(there.allowed, c.allowed);
      assert.equal(back.allowed, c.allowed, 'the rule is symmetric');
      if (there.allowed && back.allowed) {
        assert.equal(there.adopt, c.adopt);
        assert.equal(back.adopt, c.adopt);
      }
    });
  }

  it('a refusal names both parties and both cluster ids', () => {
    const v = checkJoin({ name: 'ctrl1', clusterId: B }, { name: 'ctrl4', clusterId: A });
    assert.equal(v.allowed, false);
    if (!v.allowed) {
      assert.equal(v.message, `join refused: ctrl4 belongs to cluster ${A} but ctrl1 belongs to cluster ${B}`);
    }
  });

  it('reports why a relation is allowed', () => {
    assert.equal(checkJoin({ name: 'a', clusterId: A }, { name: 'b', clusterId: A }).reason, 'same-cluster');
    assert.equal(checkJoin({ name: 'a', clusterId: null }, { name: 'b', clusterId: A }).reason, 'one-blank');
    assert.equal(checkJoin({ name: 'a', clusterId: null }, { name: 'b', clusterId: null }).reason, 'both-blank');
  });
});

describe('node names', () => {
  it('accepts the contract pattern and rejects the rest', () => {
    for (const ok of ['ctrl1', 'a', '0', 'node_a-1', 'x'.repeat(63)]) assert.ok(validNodeName(ok), ok);
    for (const bad of ['', 'Ctrl1', '-a', '_a', 'a.b', 'a b', 'x'.repeat(64), 'a*', 'a>']) assert.ok(!validNodeName(bad), bad);
  });
});
