// The cluster version (issue #15, actors/clusterVersion.ts): the leader's decision, the configuration
// change that raises it, what a ping's statement counts for, the refusal of a store at a version this
// build does not speak (a downgrade), and how `status` shows it.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { ClusterVersion, planClusterVersion, refuseNewerClusterVersion, SPEAKS } from '../../actors/clusterVersion.ts';
import { applyChange } from '../../machines/membership/config.ts';
import type { Membership } from '../../machines/raft/types.ts';
import { formatStatus } from '../../runtime/cli/format.ts';
import { ConclaveError } from '../../runtime/errors.ts';
import { openStore } from '../../runtime/store/index.ts';
import type { StatusReply } from '../../runtime/wire/adminProtocol.ts';
import { PROTOCOL_VERSION } from '../../runtime/wire/envelope.ts';
import { proveMemberKey, publicKeyText } from '../../runtime/wire/peerSignature.ts';
import { baseEnv, type CliResult, runCli } from '../helpers/cli.ts';
import { startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-cluster-version-');
after(() => tmp.cleanup());

const CLUSTER = uuidv7();
const [A, B, C] = [uuidv7(), uuidv7(), uuidv7()];
const keyPair = () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { key: publicKeyText(publicKey), privateKey };
};
const [ka, kb, kc] = [keyPair(), keyPair(), keyPair()];
/** a configuration of release 0.1: no version, no keys */
const old: Membership = {
  members: [
    { nodeId: A, name: 'a', voter: true },
    { nodeId: B, name: 'b', voter: true },
    { nodeId: C, name: 'c', voter: false },
  ],
};
const statement = (max: number, key: string | null, at = 1000, conflict = false) => ({ speaks: { min: 1, max }, key, conflict, at });

describe('the leader raises the cluster version', () => {
  const self = { nodeId: A, key: ka.key };

  it('to the highest every voter and learner speaks, with the keys they stated', () => {
    const plan = planClusterVersion(old, self, new Map([[B, statement(2, kb.key)], [C, statement(2, kc.key)]]), 1000, 5000);
    assert.deepEqual(plan, { kind: 'raise', version: 2, keys: [{ nodeId: A, key: ka.key }, { nodeId: B, key: kb.key }, { nodeId: C, key: kc.key }] });
  });

  it('not while a member (a learner too) speaks only the committed version', () => {
    assert.deepEqual(planClusterVersion(old, self, new Map([[B, statement(2, kb.key)], [C, statement(1, null)]]), 1000, 5000), { kind: 'current' });
  });

  it('not before it heard every member recently', () => {
    const unheard = planClusterVersion(old, self, new Map([[B, statement(2, kb.key)]]), 1000, 5000);
    assert.equal(unheard.kind, 'waiting');
    assert.match(unheard.kind === 'waiting' ? unheard.why : '', /waits to hear from c/);
    const stale = planClusterVersion(old, self, new Map([[B, statement(2, kb.key)], [C, statement(2, kc.key, 1000)]]), 7000, 5000);
    assert.match(stale.kind === 'waiting' ? stale.why : '', /waits to hear from b, c/);
  });

  it('not without a key for every member, nor with two different keys stated for one', () => {
    const keyless = planClusterVersion(old, self, new Map([[B, statement(2, null)], [C, statement(2, kc.key)]]), 1000, 5000);
    assert.match(keyless.kind === 'waiting' ? keyless.why : '', /needs the member keys of b$/);
    const conflict = planClusterVersion(old, self, new Map([[B, statement(2, kb.key, 1000, true)], [C, statement(2, kc.key)]]), 1000, 5000);
    assert.match(conflict.kind === 'waiting' ? conflict.why : '', /b \(two different keys stated for it\)/);
  });

  it('never lowers it, and a committed key is kept', () => {
    const atTwo: Membership = { ...old, version: 2, members: old.members.map((m, i) => ({ ...m, key: [ka, kb, kc][i]!.key })) };
    assert.deepEqual(planClusterVersion(atTwo, self, new Map([[B, statement(1, null)], [C, statement(1, null)]]), 1000, 5000), { kind: 'current' });
    assert.equal(applyChange(atTwo, { type: 'raise-version', version: 1, keys: [] }).ok, false);
    assert.equal(applyChange(atTwo, { type: 'raise-version', version: 2, keys: [] }).ok, false);
    const raised = applyChange({ ...old, members: [{ ...old.members[0]!, key: ka.key }, ...old.members.slice(1)] }, { type: 'raise-version', version: 2, keys: [{ nodeId: A, key: kb.key }, { nodeId: B, key: kb.key }] });
    assert.ok(raised.ok);
    assert.equal(raised.next.version, 2);
    assert.deepEqual(
      raised.next.members.map((m) => m.key),
      [ka.key, kb.key, undefined],
      "a's committed key stays; b's is added; c stated none",
    );
  });
});

describe("a member's ping", () => {
  const logged: string[] = [];
  const versions = (membership: Membership = old) =>
    new ClusterVersion({
      nodeId: A,
      clock: { now: () => 1000, setTimeout: () => 0 as never, clearTimeout: () => {}, setInterval: () => 0 as never, clearInterval: () => {}, soon: (fn: () => void) => fn() } as never,
      log: pino({ level: 'info' }, { write: (line: string) => logged.push(line) }),
      membership: () => membership,
      appliedMembership: () => membership,
      clusterId: () => CLUSTER,
      ownKey: () => ({ key: ka.key, prove: (clusterId) => proveMemberKey(ka.privateKey, clusterId, A, ka.key) }),
      isLeader: () => true,
      raise: async () => {},
    });

  it('of release 0.1 (an empty body) says it speaks 1 only; this build says 1..2, and its key while that is not committed', () => {
    const v = versions();
    v.heard(B, 'b', {});
    assert.deepEqual(v.speaksOf(B), { min: 1, max: 1 });
    assert.deepEqual(v.speaksOf(A), SPEAKS);
    const body = v.pingBody();
    assert.deepEqual(body.speaks, { min: 1, max: PROTOCOL_VERSION });
    assert.equal(body.key?.key, ka.key);
    const committed = versions({ ...old, members: [{ ...old.members[0]!, key: ka.key }, ...old.members.slice(1)] });
    assert.equal(committed.pingBody().key, undefined, 'a committed key is not stated again');
  });

  it('counts a key only with a proof made by that key, for that node and cluster; two proven keys for one node are a conflict, logged', () => {
    const v = versions();
    const proof = (k: ReturnType<typeof keyPair>, nodeId: string, clusterId = CLUSTER) => ({ key: k.key, proof: proveMemberKey(k.privateKey, clusterId, nodeId, k.key) });
    v.heard(B, 'b', { speaks: { min: 1, max: 2 }, key: { key: kb.key, proof: proof(kc, B).proof } });
    v.heard(C, 'c', { speaks: { min: 1, max: 2 }, key: proof(kc, C, uuidv7()) });
    const plan = () => planClusterVersion(old, { nodeId: A, key: ka.key }, (v as unknown as { statements: Map<string, never> }).statements, 1000, 5000);
    assert.match(plan().kind === 'waiting' ? (plan() as { why: string }).why : '', /needs the member keys of b, c/, 'a proof by another key, or for another cluster, counts for nothing');
    v.heard(B, 'b', { speaks: { min: 1, max: 2 }, key: proof(kb, B) });
    v.heard(C, 'c', { speaks: { min: 1, max: 2 }, key: proof(kc, C) });
    assert.equal(plan().kind, 'raise');
    v.heard(C, 'c', { speaks: { min: 1, max: 2 }, key: proof(kb, C) });
    assert.match((plan() as { why: string }).why, /c \(two different keys stated for it\)/);
    assert.equal(logged.filter((l) => l.includes('two different member keys are stated for c')).length, 1);
  });
});

describe('a store at a cluster version this build does not speak (a downgrade)', () => {
  it('refuseNewerClusterVersion names both versions and what to do', () => {
    assert.doesNotThrow(() => refuseNewerClusterVersion('n1', CLUSTER, { ...old, version: PROTOCOL_VERSION }));
    assert.throws(
      () => refuseNewerClusterVersion('n1', CLUSTER, { ...old, version: PROTOCOL_VERSION + 1 }),
      (e: unknown) =>
        e instanceof ConclaveError &&
        e.code === 'PROTOCOL_VERSION' &&
        e.message.includes(`runs at cluster version ${PROTOCOL_VERSION + 1}, and this release speaks 1..${PROTOCOL_VERSION}`) &&
        e.message.includes(`run a release that speaks ${PROTOCOL_VERSION + 1}`),
    );
  });

  it('`conclave run` on it exits with one error line naming both versions, and writes nothing', async () => {
    const dir = join(tmp.make(), 'n1');
    const store = await openStore({ dataDir: dir, name: 'n1' });
    const nodeId = store.identity().nodeId;
    const key = store.memberKey().publicKey;
    await store.initializeCluster({ clusterId: CLUSTER, meta: { index: 1, term: 1, membership: { members: [{ nodeId, name: 'n1', voter: true, key }], version: PROTOCOL_VERSION + 1 } }, pairs: [], hardState: { term: 1, vote: null, commit: 1 } });
    await store.close();
    const nats = await startNatsServer();
    let r: CliResult;
    try {
      r = await runCli(['run', '--name', 'n1', '--data-dir', dir], { env: baseEnv({ NATS_URL: nats.url }) });
    } finally {
      await nats.stop();
    }
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, r.stdout + r.stderr);
    assert.match(errors[0]!, new RegExp(`n1 cannot start: its cluster ${CLUSTER} runs at cluster version ${PROTOCOL_VERSION + 1}, and this release speaks 1\\.\\.${PROTOCOL_VERSION}`));
    assert.notEqual(r.code, 0);
    const again = await openStore({ dataDir: dir, name: 'n1' });
    assert.deepEqual([again.hardState().term, again.lastIndex()], [1, 1], 'nothing was written');
    await again.close();
  });
});

describe('`conclave status` shows the cluster version', () => {
  const base: StatusReply = {
    name: 'a',
    nodeId: A,
    clusterId: CLUSTER,
    phase: 'member',
    role: 'leader',
    term: 2,
    leader: 'a',
    commitIndex: 5,
    appliedIndex: 5,
    members: [{ name: 'a', nodeId: A, voter: true, leader: true, reachable: true, matchIndex: 5 }],
    bus: { kind: 'nats', connected: true, server: 'nats://x', reconnects: 0 },
  };

  it('with what each member speaks and a mark for a key not committed; a status of release 0.1 shows neither', () => {
    const text = formatStatus({
      ...base,
      members: [{ ...base.members[0]!, speaks: { min: 1, max: 2 }, keyCommitted: false }],
      clusterVersion: { version: 1, speaks: { min: 1, max: 2 }, authentication: 'off', note: 'mixed versions: peer messages are not authenticated until b runs a release that speaks 2' },
    });
    assert.match(text, /^version: {4}cluster 1, this node speaks 1\.\.2; peer authentication off$/m);
    assert.match(text, /mixed versions: .* until b runs a release that speaks 2/);
    assert.match(text, /speaks 1\.\.2 {2}no key$/m);
    const old = formatStatus(base);
    assert.doesNotMatch(old, /version:|speaks|no key/);
  });
});
