// Forwards MACed between members (issue 11, "Cost"): a follower forwards a client's request to the
// leader MACed with the pairwise key the two share (runtime/wire/adminAuth.ts, pairwiseKeys.ts), not
// signed with its member key. Over a real nats-server, three controllers in this process: a put
// through a follower goes to the leader with a MAC and is applied; the same bytes again are refused
// (replayed), and so is a forward MACed with a key no member has, or MACed for another node — each
// UNAUTHENTICATED, counted, and nothing changes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { adminCall } from '../../runtime/adminClient.ts';
import { CLI_SENDER } from '../../runtime/cli/client.ts';
import type { Controller } from '../../runtime/controller.ts';
import { createOperatorKey, operatorSigner } from '../../runtime/operatorKey.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { adminSubjects } from '../../runtime/wire/adminSubjects.ts';
import { decodeReply } from '../../runtime/wire/codec.ts';
import { PairwiseKeys } from '../../runtime/wire/pairwiseKeys.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { appliedValue, clusterState, leaderOf, natsWithForger, refusedCount, senderOf, startVoters, stopAll } from './helpers.ts';

const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };
const PREFIX = 'fm';

describe('forwards MACed between members (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-forward-mac-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let nodes: Controller[] = [];
  /** the forwards seen on each node's admin subject, raw */
  const forwards = new Map<string, Uint8Array[]>();

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    const root = tmp.make();
    const ops = createOperatorKey(`${root}/ops.key`);
    await startVoters(nodes, nats.url, root, PREFIX, ['f1', 'f2', 'f3'], RAFT, { operators: { keys: [ops.publicKey] } });
    for (const c of nodes) {
      forwards.set(c.name, []);
      forger.subscribe(adminSubjects(PREFIX, c.name).admin, (msg) => {
        if (/"forwarded":true/.test(Buffer.from(msg.data).toString('latin1'))) forwards.get(c.name)!.push(Buffer.from(msg.data));
      });
    }
    await forger.flush();
    await adminCall(forger, PREFIX, nodes[1]!.name, CLI_SENDER, 'propose', { command: { op: 'put', key: 'through', value: 'a follower' } }, 10_000, operatorSigner(`${root}/ops.key`));
  });
  after(async () => {
    await stopAll(nodes, forger, nats, tmp);
    nodes = [];
  });

  const state = () => clusterState(nodes);
  const refused = (reason: string) => refusedCount(nodes, `admin:unauthenticated:${reason}`);
  const ask = async (to: Controller, data: Uint8Array) => decodeReply((await forger.request(adminSubjects(PREFIX, to.name).admin, data, { timeoutMs: 10_000 })).data);

  async function assertRefused(reason: string, to: Controller, data: Uint8Array, how: string): Promise<void> {
    const before = state();
    const count = refused(reason);
    const reply = await ask(to, data);
    assert.equal(!reply.ok && reply.error.code, 'UNAUTHENTICATED', `${how}: ${JSON.stringify(reply)}`);
    assert.equal(refused(reason), count + 1, `${how}: counted as ${reason}`);
    assert.deepEqual(state(), before, `${how}: nothing changed`);
  }

  it('a put through a follower reaches the leader MACed, not signed, and is applied', async () => {
    const leader = leaderOf(nodes);
    await waitUntil(() => nodes.every((c) => c.store.stateGet('through') === 'a follower'), { timeoutMs: 30_000, what: 'every node to apply the forwarded put' });
    const seen = forwards.get(leader.name)!;
    assert.equal(seen.length, 1, 'one forward reached the leader');
    const text = Buffer.from(seen[0]!).toString('latin1');
    assert.match(text, /,"mac":"[0-9]+\.[0-9]+\.[A-Za-z0-9_-]{43}"\}$/, 'MACed');
    assert.doesNotMatch(text, /"sig":/, 'not signed');
  });

  it('the same forward again, one MACed with a key no member has, and one MACed for another node are refused', async () => {
    const leader = leaderOf(nodes);
    const [follower, other] = nodes.filter((c) => c !== leader);
    await assertRefused('replayed', leader, forwards.get(leader.name)![0]!, 'the recorded forward replayed');
    // the follower's name and node id, MACed with a pairwise key of a stranger's Ed25519 key
    const stranger = generateKeyPairSync('ed25519');
    const strangerPublic = stranger.publicKey.export({ format: 'jwk' }).x!;
    const leaderKey = leader.memberRuntime().raftStatus().membership.members.find((m) => m.name === leader.name)!.key!;
    const forged = signAdminRequest(
      { key: stranger.privateKey, pairWith: () => new PairwiseKeys(strangerPublic, stranger.privateKey).with(leaderKey) },
      adminSubjects(PREFIX, leader.name).admin,
      senderOf(follower!),
      'propose',
      { command: { op: 'put', key: 'through', value: 'forged' }, forwarded: true },
      leader.name,
    );
    assert.match(Buffer.from(forged).toString('latin1'), /"mac":/);
    await assertRefused('bad-signature', leader, forged, "a forward MACed with a stranger's key");
    // the follower's own pairwise key with the other follower, sent to the leader: not the leader's to take
    const followerKey = follower!.store.memberKey();
    const otherKey = leader.memberRuntime().raftStatus().membership.members.find((m) => m.name === other!.name)!.key!;
    const misaddressed = signAdminRequest(
      { key: followerKey.privateKey, pairWith: () => new PairwiseKeys(followerKey.publicKey, followerKey.privateKey).with(otherKey) },
      adminSubjects(PREFIX, leader.name).admin,
      senderOf(follower!),
      'propose',
      { command: { op: 'put', key: 'through', value: 'misaddressed' }, forwarded: true },
      leader.name,
    );
    await assertRefused('bad-signature', leader, misaddressed, 'a forward MACed for another member');
    assert.ok(nodes.every((c) => appliedValue(c, 'through') === 'a follower'));
  });
});
