// Issue 17 item 2: messages from the bus crash processes. Each forged message below made a node
// exit (or fail) before; now it is refused, counted and logged (rate-limited), the node keeps its
// term, leader, configuration and data, and answers. In-process bus, real LMDB stores. Those sent
// under a member's id are signed with that member's own key (as a compromised member could): the
// checks behind member identity are what they test (member identity itself: member-identity.test.ts).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { Controller } from '../../runtime/controller.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';
import { drops, forgePeer, keyOf, leaderOf, senderOf, stateOf } from './helpers.ts';

// slow enough that no election happens by itself on a busy machine while a test looks at the term
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 2000 };

describe('forged peer messages never crash a node (issue 17 item 2)', () => {
  const cluster = inProcessCluster('conclave-hostile-peer-');
  let nodes: Controller[] = [];
  let client: Bus;

  before(async () => {
    client = cluster.bus.connect('forger');
    nodes = [await cluster.start('h1', { raft: RAFT }), await cluster.start('h2', { raft: RAFT }), await cluster.start('h3', { raft: RAFT })];
    await nodes[0]!.init();
    await nodes[0]!.waitForLeader(30_000);
    await nodes[0]!.cluster.add('h2');
    await nodes[0]!.cluster.add('h3');
    await nodes[0]!.propose({ op: 'put', key: 'before', value: 1 });
    await waitUntil(() => nodes.every((c) => c.status().members.length === 3 && c.status().leader === 'h1'), { timeoutMs: 30_000, what: 'three members that agree on the leader' });
  });

  const everyState = () => nodes.map(stateOf);
  async function stillServing(leader: Controller, key: string): Promise<void> {
    await leader.propose({ op: 'put', key, value: key });
    assert.deepEqual(await leader.read({ op: 'get', key }), { key, found: true, value: key });
    for (const c of nodes) {
      const reply = await ask(c.name, 'status');
      assert.ok(reply.ok, `${c.name} answers status`);
    }
  }
  async function ask(name: string, type: string, body: unknown = {}, sender = { name: 'cli', nodeId: null, clusterId: null } as Parameters<typeof encode>[0]) {
    const reply = await client.request(`conclave.node.${name}.admin`, encode(sender, type, body), { timeoutMs: 5000 });
    return decodeReply(reply.data);
  }

  /** an append under the leader's id into a follower, continuing the follower's log with `entries(lastIndex, term)` */
  function forgeAppendAsLeader(entries: (lastIndex: number, term: number) => unknown[]): { leader: Controller; follower: Controller } {
    const leader = leaderOf(nodes);
    const follower = nodes.find((c) => c !== leader)!;
    const raft = follower.memberRuntime().raftStatus();
    const message = { type: 'append', from: leader.status().nodeId, to: follower.status().nodeId, term: raft.term, prevIndex: raft.lastIndex, prevTerm: raft.lastTerm, entries: entries(raft.lastIndex, raft.term), commit: 0 };
    forgePeer(client, 'conclave', follower.name, senderOf(leader), 'raft', { messages: [message] }, keyOf(leader));
    return { leader, follower };
  }

  it('(a) a heartbeat in the current term sent to the leader under another member id is refused ("two leaders" was an assertion)', async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const follower = nodes.find((c) => c !== leader)!;
    const term = leader.status().term;
    const message = { type: 'heartbeat', from: follower.status().nodeId, to: leader.status().nodeId, term, commit: 0, context: null };
    forgePeer(client, 'conclave', leader.name, senderOf(follower), 'raft', { messages: [message] }, keyOf(follower));
    await waitUntil(() => drops(leader, 'two-leaders') >= 1, { timeoutMs: 20_000, what: 'the leader to refuse the second leader' });
    assert.deepEqual(everyState(), before);
    await stillServing(leader, 'after-a');
  });

  it('(b) an append claiming the leader id, slipped into a follower, does not make the real leader exit when the follower answers', async () => {
    const before = everyState();
    const { leader } = forgeAppendAsLeader((last, term) => [1, 2, 3].map((i) => ({ index: last + i, term, type: 'noop', data: null })));
    await waitUntil(() => drops(leader, 'ack-beyond-last') >= 1, { timeoutMs: 20_000, what: "the leader to refuse the follower's acknowledgement beyond its log" });
    assert.deepEqual(everyState(), before);
    await stillServing(leader, 'after-b');
  });

  it('(c) a ping with a higher identity generation and no node id leaves every recipient a member', async () => {
    const before = everyState();
    const clusterId = nodes[0]!.status().clusterId;
    for (const c of nodes) forgePeer(client, 'conclave', c.name, { name: 'ghost', nodeId: null, clusterId, generation: 99 }, 'ping', {});
    await waitUntil(() => nodes.every((c) => drops(c, 'unproven-generation') >= 1), { timeoutMs: 20_000, what: 'every node to refuse the anonymous generation claim' });
    assert.deepEqual(everyState(), before);
    await stillServing(leaderOf(nodes), 'after-c');
  });

  it('(c) a higher generation claimed under a member id is checked with that member, which denies it: nobody fails', async () => {
    const before = everyState();
    const [h1, h2] = [nodes[0]!, nodes[1]!];
    forgePeer(client, 'conclave', h1.name, senderOf(h2, { generation: 99 }), 'ping', {}, keyOf(h2));
    await waitUntil(() => drops(h1, 'unconfirmed-generation') >= 1, { timeoutMs: 20_000, what: 'h1 to find the claim unconfirmed by h2' });
    assert.deepEqual(everyState(), before);
    await stillServing(leaderOf(nodes), 'after-c2');
  });

  it('(d) a join offer with a higher generation is refused and the member keeps running', async () => {
    const before = everyState();
    const target = nodes[2]!;
    const clusterId = target.status().clusterId;
    const reply = await ask(target.name, 'join.offer', { protocolVersion: 1 }, { name: 'ghost', nodeId: randomUUID(), clusterId, generation: 99 });
    assert.equal(reply.ok, false);
    assert.equal(!reply.ok && reply.error.code, 'JOIN_REFUSED');
    const status = await ask(target.name, 'status');
    assert.equal(status.ok && (status.body as { phase: string }).phase, 'member');
    assert.deepEqual(everyState(), before);
    await stillServing(leaderOf(nodes), 'after-d');
  });

  it('a snapshot message outside a snapshot transfer is refused (it used to halt the node: "no such snapshot was received")', async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const follower = nodes.find((c) => c !== leader)!;
    const raft = follower.memberRuntime().raftStatus();
    const message = { type: 'snapshot', from: leader.status().nodeId, to: follower.status().nodeId, term: raft.term, snapshot: { index: raft.lastIndex + 100, term: raft.term, membership: raft.membership } };
    forgePeer(client, 'conclave', follower.name, senderOf(leader), 'raft', { messages: [message] }, keyOf(leader));
    await waitUntil(() => drops(follower, 'snapshot-outside-transfer') >= 1, { timeoutMs: 20_000, what: 'the follower to refuse the bare snapshot message' });
    assert.deepEqual(everyState(), before);
    await stillServing(leader, 'after-snapshot');
  });

  it('a config entry whose data is not a configuration is refused at decoding (it used to throw inside the core)', async () => {
    const before = everyState();
    const { leader, follower } = forgeAppendAsLeader((last, term) => [{ index: last + 1, term, type: 'config', data: 5 }]);
    await waitUntil(() => drops(follower, 'bad-body') >= 1, { timeoutMs: 20_000, what: 'the follower to refuse the malformed config entry' });
    assert.deepEqual(everyState(), before);
    await stillServing(leader, 'after-config');
  });
});
