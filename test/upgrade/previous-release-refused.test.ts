// A node of the previous release and a cluster whose committed version it does not speak (issue #15,
// acceptance 2): added with `cluster add`, or asking to join by itself with the join secret, it is
// refused with both versions named at both ends — the CLI and the leader's log on one side, the old
// node's log on the other — and it stays blank. Real nats-server, real processes of both releases.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PROTOCOL_VERSION } from '../../runtime/wire/envelope.ts';
import { waitUntil } from '../helpers/cli.ts';
import { PREVIOUS_RELEASE } from '../helpers/previousRelease.ts';
import { eventually, type MixedCluster, mixedCluster } from './mixedCluster.ts';

describe(`a node of release ${PREVIOUS_RELEASE} and a cluster at cluster version ${PROTOCOL_VERSION}`, () => {
  let c: MixedCluster;
  let clusterId: string;

  before(async () => {
    c = await mixedCluster();
    const secret = `${c.dataDir('join')}.secret`;
    writeFileSync(secret, 'a join secret shared by the members and the old node\n');
    await c.start('ctrl1', 'new', ['--join-secret-file', secret]);
    const init = await c.cli('new', ['init', '--node', 'ctrl1']);
    assert.equal(init.code, 0, init.stderr);
    clusterId = init.stdout.trim();
    await eventually(async () => (await c.status('ctrl1')).clusterVersion?.version === PROTOCOL_VERSION, 'the new cluster at the version this build speaks');
  });
  after(() => c?.close());

  it('`cluster add` of an old node is refused, naming both versions at both ends; the old node stays blank', async () => {
    const old = await c.start('old1', 'old');
    const add = await c.cli('new', ['cluster', 'add', 'old1', '--via', 'ctrl1']);
    // the leader's end: one error line naming the cluster's version and the node's
    assert.equal(add.code, 1, add.stdout + add.stderr);
    const lines = add.stderr.trim().split('\n');
    assert.equal(lines.length, 1, add.stderr);
    assert.match(lines[0]!, new RegExp(`^error: .*old1 does not speak cluster version ${PROTOCOL_VERSION} of cluster ${clusterId}.*this node speaks 1\\.\\.1.*upgrade old1 to a release that speaks ${PROTOCOL_VERSION}`));
    await waitUntil(() => /join refused: old1 does not speak cluster version/.test(c.output('ctrl1')), { what: "the refusal in the leader's log", context: () => c.output('ctrl1') });
    // the old node's end: its log names both versions
    await waitUntil(() => new RegExp(`protocol version ${PROTOCOL_VERSION} is not supported \\(this node speaks 1\\.\\.1\\)`).test(old.stdout + old.stderr), {
      what: "the refusal in the old node's log",
      context: () => old.output(),
    });
    const s = await c.status('old1');
    assert.equal(s.phase, 'uninitialized');
    assert.equal(s.clusterId, null);
    assert.deepEqual(
      (await c.status('ctrl1')).members.map((m) => m.name),
      ['ctrl1'],
    );
  });

  it('an old node asking to join by itself (join secret, --join-cluster) is refused, naming both versions at both ends', async () => {
    const secret = `${c.dataDir('join')}.secret`;
    const old = await c.start('old2', 'old', ['--join-secret-file', secret, '--join-cluster', clusterId]);
    const refusal = new RegExp(`auto-join refused: old2 speaks protocol versions up to 1, and cluster ${clusterId} runs at cluster version ${PROTOCOL_VERSION}; upgrade old2`);
    await waitUntil(() => refusal.test(c.output('ctrl1')), { what: "the refusal in the leader's log", context: () => c.output('ctrl1') });
    await waitUntil(() => refusal.test(old.stdout + old.stderr), { what: "the refusal in the old node's log", context: () => old.output() });
    assert.equal((await c.status('old2')).clusterId, null);
    assert.deepEqual(
      (await c.status('ctrl1')).members.map((m) => m.name),
      ['ctrl1'],
    );
  });
});
