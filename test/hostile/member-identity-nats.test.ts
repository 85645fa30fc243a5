// Member identity over a real nats-server (issue 11): peer messages under a member's node id must be
// authenticated by the member key committed for it in the configuration (between members, a MAC
// with the key the two share; runtime/wire/peerSignature.ts). A bus user (anyone who may
// publish on the peer subjects) who claims the leader's id — with an append, a snapshot chunk, a
// heartbeat at a higher term or a TimeoutNow — is refused, counted, and changes nothing; nor can a
// member's own key make messages under another member's id accepted. Three controllers in this
// process, each with its own NATS connection; the forger has its own.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Controller } from '../../runtime/controller.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { appliedValue, clusterState, drops, forgePeer, keyOf, leaderOf, natsWithForger, senderOf, startVoters, stopAll } from './helpers.ts';

// slow enough that no election happens by itself on a busy machine while a test compares terms
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };
const PREFIX = 'mk';

describe('member identity over NATS: only a member speaks for itself (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-member-identity-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let nodes: Controller[] = [];

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    const root = tmp.make();
    await startVoters(nodes, nats.url, root, PREFIX, ['m1', 'm2', 'm3'], RAFT);
    await nodes[0]!.propose({ op: 'put', key: 'before', value: 1 });
    await waitUntil(() => nodes.every((c) => c.store.stateGet('before') === 1), { timeoutMs: 30_000, what: 'every node to hold the data written before' });
  });
  after(async () => {
    await stopAll(nodes, forger, nats, tmp);
    nodes = [];
  });

  const everyState = () => clusterState(nodes);
  const running = () => nodes.every((c) => c.status().phase === 'member');
  const followers = () => nodes.filter((c) => c !== leaderOf(nodes));
  const drop = (reason: string) => nodes.reduce((n, c) => n + drops(c, reason), 0);

  async function stillServing(key: string): Promise<void> {
    const leader = leaderOf(nodes);
    await leader.propose({ op: 'put', key, value: key });
    await waitUntil(() => nodes.every((c) => c.store.stateGet(key) === key), { timeoutMs: 30_000, what: `every node to apply ${key}` });
  }

  it('the configuration commits each member key next to its node id, as each store holds it', () => {
    for (const c of nodes) {
      const members = c.memberRuntime().raftStatus().membership.members;
      for (const other of nodes) {
        const m = members.find((x) => x.nodeId === other.status().nodeId);
        assert.equal(m?.key, other.store.memberKey().publicKey, `${c.name}'s configuration holds ${other.name}'s key`);
      }
    }
  });

  it('between members whose keys are committed, each peer message carries a pairwise MAC, not a signature, and is taken', async () => {
    const seen: string[] = [];
    const tap = forger.subscribe(`${PREFIX}.node.*.peer`, (msg) => {
      seen.push(Buffer.from(msg.data).toString('latin1'));
    });
    await forger.flush();
    const droppedBefore = drop('bad-signature') + drop('unsigned');
    await stillServing('maced');
    await waitUntil(() => seen.length >= 6, { timeoutMs: 30_000, what: 'peer messages on the bus' });
    tap.unsubscribe();
    const field = (text: string) => /,"(mac|sig)":"[A-Za-z0-9_.-]+"}$/.exec(text)?.[1] ?? 'none';
    assert.deepEqual(new Set(seen.map(field)), new Set(['mac']), 'every peer message between committed members is MACed');
    assert.equal(drop('bad-signature') + drop('unsigned'), droppedBefore, 'and every one was taken');
  });

  it("(a) an append and a snapshot chunk claiming the leader's id, published by a bus user, are refused and change nothing", async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const [follower] = followers();
    const raft = follower!.memberRuntime().raftStatus();
    const to = follower!.status().nodeId;
    const from = leader.status().nodeId;
    const entries = [1, 2].map((i) => ({ index: raft.lastIndex + i, term: raft.term, type: 'command', data: { op: 'put', key: `forged-${i}`, value: 'evil' } }));
    // unsigned, and with a signature that is not the leader's
    forgePeer(forger, PREFIX, follower!.name, senderOf(leader), 'raft', { messages: [{ type: 'append', from, to, term: raft.term, prevIndex: raft.lastIndex, prevTerm: raft.lastTerm, entries, commit: raft.lastIndex + 2 }] });
    const badSig = Buffer.from(encode(senderOf(leader), 'raft', { messages: [{ type: 'heartbeat', from, to, term: raft.term, commit: 0, context: null }] })).toString();
    forger.publish(`${PREFIX}.node.${follower!.name}.peer`, Buffer.from(`${badSig.slice(0, -1)},"sig":"${'A'.repeat(86)}"}`));
    // a snapshot whose configuration makes the follower the sole voter (a split brain) and whose state is the forger's
    const snapshot = { index: raft.lastIndex + 10, term: raft.term, membership: { members: [{ nodeId: to, name: follower!.name, voter: true }] } };
    forgePeer(forger, PREFIX, follower!.name, senderOf(leader), 'snapshot-chunk', { message: { type: 'snapshot', from, to, term: raft.term, snapshot }, id: randomUUID(), seq: 0, last: true, pairs: [['forged', 'evil']] });
    await waitUntil(() => drops(follower!, 'unsigned') >= 2 && drops(follower!, 'bad-signature') >= 1, { timeoutMs: 30_000, what: 'the follower to refuse the forged append, heartbeat and snapshot chunk' });
    assert.deepEqual(everyState(), before);
    assert.ok(running(), 'every node is still a member');
    await stillServing('after-a');
    assert.equal(appliedValue(follower!, 'forged'), undefined);
  });

  it("(b) a heartbeat at a higher term and a TimeoutNow under the leader's id cannot depose the leader", async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const from = leader.status().nodeId;
    const unsignedBefore = drop('unsigned');
    for (const f of followers()) {
      const to = f.status().nodeId;
      const term = f.status().term;
      forgePeer(forger, PREFIX, f.name, senderOf(leader), 'raft', { messages: [{ type: 'heartbeat', from, to, term: term + 5, commit: 0, context: null }] });
      forgePeer(forger, PREFIX, f.name, senderOf(leader), 'raft', { messages: [{ type: 'timeout-now', from, to, term }] });
    }
    await waitUntil(() => drop('unsigned') >= unsignedBefore + 4, { timeoutMs: 30_000, what: 'both followers to refuse both forged messages' });
    assert.deepEqual(everyState(), before);
    await stillServing('after-b');
    assert.equal(leaderOf(nodes), leader, 'the leader is the same');
  });

  it("(c) a member's own key cannot make messages under another member's id accepted", async () => {
    const before = everyState();
    const leader = leaderOf(nodes);
    const [f1, f2] = followers();
    const from = leader.status().nodeId;
    const to = f2!.status().nodeId;
    const term = f2!.status().term;
    const badBefore = drops(f2!, 'bad-signature');
    // f1 holds a committed key: signed with it, under the leader's id, to f2
    forgePeer(forger, PREFIX, f2!.name, senderOf(leader), 'raft', { messages: [{ type: 'timeout-now', from, to, term }] }, keyOf(f1!));
    forgePeer(forger, PREFIX, f2!.name, senderOf(leader), 'raft', { messages: [{ type: 'heartbeat', from, to, term: term + 5, commit: 0, context: null }] }, keyOf(f1!));
    // the leader's own signature for f1's subject, replayed to f2: the subject (the receiver) is signed
    const subject = `${PREFIX}.node.${f1!.name}.peer`;
    const { signPeerMessage } = await import('../../runtime/wire/peerSignature.ts');
    const forF1 = signPeerMessage(keyOf(leader), subject, encode(senderOf(leader), 'raft', { messages: [{ type: 'heartbeat', from, to, term: term + 5, commit: 0, context: null }] }));
    forger.publish(`${PREFIX}.node.${f2!.name}.peer`, forF1);
    await waitUntil(() => drops(f2!, 'bad-signature') >= badBefore + 3, { timeoutMs: 30_000, what: 'f2 to refuse the three messages' });
    assert.deepEqual(everyState(), before);
    await stillServing('after-c');
    assert.equal(leaderOf(nodes), leader, 'the leader is the same');
  });
});
