// Member-signed admin requests over a real nats-server (issue 11): what only a member may send on the
// admin subjects — a removal notice, a request a member forwards to the leader — must be signed with
// the member key committed for the sender's node id (a forward: MACed with the pairwise key of sender
// and receiver, test/hostile/forward-mac-nats.test.ts), recently, and once. A bus user who names the
// leader in three removal notices, forges a forwarded write, or replays a genuine forward is refused
// with UNAUTHENTICATED, counted, and changes nothing. Three controllers in this process, each with its
// own NATS connection; the forger has its own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Controller } from '../../runtime/controller.ts';
import type { Bus, BusMessage } from '../../runtime/transport/types.ts';
import { signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { adminSubjects } from '../../runtime/wire/adminSubjects.ts';
import { decodeReply, encode, type Sender } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { appliedValue, clusterState, keyOf, leaderOf, natsWithForger, refusedCount, senderOf, startVoters, stopAll } from './helpers.ts';

const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };
const PREFIX = 'aa';

describe('member-signed admin requests over NATS: only a member speaks for the cluster (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-admin-auth-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let nodes: Controller[] = [];

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    const root = tmp.make();
    await startVoters(nodes, nats.url, root, PREFIX, ['a1', 'a2', 'a3'], RAFT);
  });
  after(async () => {
    await stopAll(nodes, forger, nats, tmp);
    nodes = [];
  });

  const everyState = () => clusterState(nodes);
  const refused = (reason: string) => refusedCount(nodes, `admin:unauthenticated:${reason}`);
  const followers = () => nodes.filter((c) => c !== leaderOf(nodes));

  /** send raw bytes to a node's admin subject as the forger; the reply, decoded */
  async function ask(to: Controller, data: Uint8Array) {
    const reply = await forger.request(adminSubjects(PREFIX, to.name).admin, data, { timeoutMs: 10_000 });
    return decodeReply(reply.data);
  }
  const forwardedPut = (key: string, value: unknown) => ({ command: { op: 'put', key, value }, forwarded: true });

  it("(a) three unsigned removal notices naming the leader, sent to every node, are refused and remove nobody", async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const count = refused('unsigned');
    for (const c of nodes) {
      for (let i = 0; i < 3; i++) {
        const reply = await ask(c, encode(senderOf(leader), 'member.removed', {}));
        assert.equal(reply.ok, false, `${c.name} refuses the forged notice`);
        assert.equal(!reply.ok && reply.error.code, 'UNAUTHENTICATED');
      }
    }
    assert.equal(refused('unsigned'), count + 9, 'every refusal is counted');
    assert.deepEqual(everyState(), before);
    assert.ok(nodes.every((c) => c.status().phase === 'member'), 'every node is still a member');
  });

  it("(a') a member's own key cannot sign a notice under the leader's id; an unknown node id is refused", async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const [follower, other] = followers();
    const badSig = refused('bad-signature');
    const signed = signAdminRequest({ key: keyOf(other!) }, adminSubjects(PREFIX, follower!.name).admin, senderOf(leader), 'member.removed', {});
    const reply = await ask(follower!, signed);
    assert.equal(!reply.ok && reply.error.code, 'UNAUTHENTICATED');
    assert.equal(refused('bad-signature'), badSig + 1);
    const stranger: Sender = { ...senderOf(leader), name: 'stranger', nodeId: '00000000-0000-4000-8000-000000000000' };
    const unknown = await ask(follower!, encode(stranger, 'member.removed', {}));
    assert.equal(!unknown.ok && unknown.error.code, 'UNAUTHENTICATED');
    assert.deepEqual(everyState(), before);
  });

  it('(b) a forged forwarded write naming a follower is refused by the leader and writes nothing', async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const [follower] = followers();
    const count = refused('unsigned');
    const reply = await ask(leader, encode(senderOf(follower!), 'propose', forwardedPut('forged', 'evil')));
    assert.equal(!reply.ok && reply.error.code, 'UNAUTHENTICATED');
    assert.equal(refused('unsigned'), count + 1);
    // signed, but long ago (more than the allowed skew)
    const stale = signAdminRequest({ key: keyOf(follower!), now: () => Date.now() - 120_000 }, adminSubjects(PREFIX, leader.name).admin, senderOf(follower!), 'propose', forwardedPut('forged', 'stale'));
    const staleReply = await ask(leader, stale);
    assert.equal(!staleReply.ok && staleReply.error.code, 'UNAUTHENTICATED');
    assert.deepEqual(everyState(), before);
    assert.ok(nodes.every((c) => appliedValue(c, 'forged') === undefined));
  });

  it('(c) a genuine forward works; the same bytes replayed are refused and write nothing', async () => {
    const leader = leaderOf(nodes);
    const [follower] = followers();
    // capture what the follower forwards to the leader
    const captured: BusMessage[] = [];
    const tap = forger.subscribe(adminSubjects(PREFIX, leader.name).admin, (msg) => captured.push(msg));
    await forger.flush();
    try {
      await follower!.propose({ op: 'put', key: 'replayed', value: 1 });
    } finally {
      tap.unsubscribe();
    }
    await waitUntil(() => nodes.every((c) => c.store.stateGet('replayed') === 1), { timeoutMs: 30_000, what: 'every node to apply the forwarded write' });
    const forward = captured.find((m) => Buffer.from(m.data).toString().includes('"replayed"'));
    assert.ok(forward, 'the forward was seen on the bus');
    assert.ok(Buffer.from(forward.data).toString().includes('"mac":"'), 'the forward is MACed with the pairwise key of follower and leader');
    await leader.propose({ op: 'put', key: 'replayed', value: 2 });
    await waitUntil(() => nodes.every((c) => c.store.stateGet('replayed') === 2), { timeoutMs: 30_000, what: 'every node to apply the later write' });
    const before = everyState();
    const count = refused('replayed');
    const reply = await ask(leader, forward.data);
    assert.equal(!reply.ok && reply.error.code, 'UNAUTHENTICATED');
    assert.equal(refused('replayed'), count + 1);
    assert.deepEqual(everyState(), before);
    assert.ok(nodes.every((c) => appliedValue(c, 'replayed') === 2), 'the replay did not write its old value');
    // a fresh signed forward by a member is taken
    const fresh = signAdminRequest({ key: keyOf(follower!) }, adminSubjects(PREFIX, leader.name).admin, senderOf(follower!), 'propose', forwardedPut('fresh', 3));
    const ok = await ask(leader, fresh);
    assert.equal(ok.ok, true, `a genuine signed forward is taken: ${JSON.stringify(ok)}`);
    await waitUntil(() => nodes.every((c) => c.store.stateGet('fresh') === 3), { timeoutMs: 30_000, what: 'every node to apply the fresh forward' });
  });
});
