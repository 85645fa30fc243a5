// Issue 11, "Joining": a cluster with a join secret proves its join offers, and the node's answer must
// prove the same secret too. A bus user who may subscribe to a node's admin subject sees the offer
// and its reply inbox, and can answer before the node does: (a) with an acceptance that carries its
// own member key (committed for the node, the forger could then speak for it), (b) with a refusal
// (the leader gives up the add). Over a real nats-server: such forged answers are dropped, counted
// and logged, change nothing, and the leader takes the node's own proven answer. On the in-process
// bus, where the forger's answer deterministically comes first, the leader keeps waiting within the
// same offer and takes the node's answer that comes after it.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import type { Bus, BusMessage } from '../../runtime/transport/types.ts';
import { joinRequestSchema } from '../../runtime/join/autoJoin.ts';
import type { Refusal } from '../../runtime/events.ts';
import { decode, decodeReply, encodeReply } from '../../runtime/wire/codec.ts';
import { ADMIN_PROTOCOL } from '../../runtime/wire/adminProtocol.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason } from '../helpers/natsServer.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { clusterState, codeOfCall, leaderOf, natsWithForger, stopAll } from './helpers.ts';

const PREFIX = 'jr';
const SECRET = 'a-shared-join-secret-of-32-bytes';
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };
const OFFER_BODIES = { 'join.offer': ADMIN_PROTOCOL['join.offer'].request };
const DISCOVER_BODIES = { 'join.request': joinRequestSchema };
/** what a forger answers to an auto-join request: a refusal only the real leader could give */
const FORGED_REFUSAL = { ok: false as const, error: { code: 'JOIN_AUTH', message: 'auto-join refused: forged by a bus user on discover' } };

/** what a forger answers to every offer it sees */
type Forgery = (offer: { clusterId: string | null }) => Parameters<typeof encodeReply>[0];

describe('answers to a proven join offer, over NATS: only the node answers for itself (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-join-reply-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let root: string;
  let nodes: Controller[] = [];
  let leader: Controller;

  const start = async (name: string, secret: string | null = SECRET) => {
    const c = await startController({ name, dataDir: `${root}/${name}`, prefix: PREFIX, transport: { nats: { servers: nats.url } }, raft: RAFT, ...(secret ? { join: { secret } } : {}) });
    nodes.push(c);
    return c;
  };
  const stop = async (c: Controller) => {
    await c.stop();
    nodes = nodes.filter((n) => n !== c);
  };
  /** a node's identity, then the node stopped: its admin subject has only the forger to answer */
  const blankNodeId = async (name: string) => {
    const c = await start(name);
    const nodeId = c.store.identity().nodeId;
    await stop(c);
    return nodeId;
  };
  /** answer every join offer to `target` first, as `forgery` says; returns the count of forged answers */
  const forgeAnswers = async (target: string, forgery: Forgery) => {
    const answered = { count: 0 };
    const sub = forger.subscribe(`${PREFIX}.node.${target}.admin`, (msg: BusMessage) => {
      const offer = decode(msg.data, OFFER_BODIES);
      if (!offer.ok) return;
      msg.respond(encodeReply(forgery({ clusterId: offer.envelope.clusterId })));
      answered.count++;
    });
    await forger.flush();
    return { answered, stop: () => sub.unsubscribe() };
  };
  const forgedDrops = () => leader.refusedCounts().filter((r) => r.reason.startsWith('join:join-reply-auth:')).reduce((n, r) => n + r.count, 0);
  const committed = (name: string) => leader.memberRuntime().raftStatus().membership.members.find((m) => m.name === name);

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    root = tmp.make();
    leader = await start('a1');
    await leader.init();
    await leader.waitForLeader(30_000);
  });
  after(async () => {
    await stopAll(nodes, forger, nats, tmp);
    nodes = [];
  });

  it('(a) a forged acceptance carrying the forger\'s member key is dropped, counted, and commits nothing; the node\'s own answer is taken', async () => {
    const nodeId = await blankNodeId('b1');
    const forgerKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
    const forged = await forgeAnswers('b1', ({ clusterId }) => ({ ok: true, body: { name: 'b1', nodeId, clusterId, key: forgerKey } }));
    const before = clusterState([leader]);

    // b1 is down: the forger is the only one to answer
    const code = await codeOfCall(leader.cluster.add('b1', { timeoutMs: 10_000 }));
    assert.ok(forged.answered.count >= 1, 'the forger answered the offer');
    assert.equal(committed('b1')?.key === forgerKey, false, "the forger's key is not committed for b1");
    assert.notEqual(code, 'OK', 'without the node, the add does not succeed');
    assert.deepEqual(clusterState([leader]), before, 'the forged acceptance changed nothing');
    assert.ok(forgedDrops() >= 1, 'the forged answers were counted');

    // b1 is up, the forger still answers every offer: the leader takes b1's proven answer
    const b1 = await start('b1');
    const added = await leader.cluster.add('b1', { timeoutMs: 30_000 });
    assert.equal(added.nodeId, nodeId);
    assert.equal(committed('b1')?.key, b1.store.memberKey().publicKey, "b1's own key is committed");
    forged.stop();
    await waitUntil(() => b1.status().phase === 'member', { timeoutMs: 30_000, what: 'b1 to become a member' });
  });

  it('(b) a forged refusal is dropped and counted: the add is not refused by it, and goes through once the node answers', async () => {
    const nodeId = await blankNodeId('b2');
    const message = 'join refused: forged by a bus user';
    const forged = await forgeAnswers('b2', () => ({ ok: false, error: { code: 'JOIN_REFUSED', message, details: { name: 'b2', nodeId, clusterId: randomUUID() } } }));
    const before = clusterState([leader]);
    const dropsBefore = forgedDrops();

    let error: (Error & { code?: string }) | undefined;
    await leader.cluster.add('b2', { timeoutMs: 10_000 }).catch((err: Error) => {
      error = err;
    });
    assert.ok(forged.answered.count >= 1, 'the forger answered the offer');
    assert.ok(error, 'without the node, the add does not succeed');
    // before: JOIN_REFUSED at once, the leader's join rule applied to the cluster id the forger named
    assert.equal(error.code, 'TIMEOUT', `the forged refusal is not the add's outcome: ${error.message}`);
    assert.match(error.message, /b2 gave no answer proven with the join secret .* unproven answer\(s\) dropped \(no-proof \(JOIN_REFUSED\)\)/);
    assert.deepEqual(clusterState([leader]), before, 'the forged refusal changed nothing');
    assert.ok(forgedDrops() > dropsBefore, 'the forged answers were counted');

    const b2 = await start('b2');
    const added = await leader.cluster.add('b2', { timeoutMs: 30_000 });
    assert.equal(added.nodeId, nodeId);
    assert.equal(committed('b2')?.key, b2.store.memberKey().publicKey);
    forged.stop();
  });

  it('a copy of a real offer, sent to the node again by whoever saw it, gets no proven answer (one per offer)', async () => {
    const seen: Uint8Array[] = [];
    const tap = forger.subscribe(`${PREFIX}.node.b3.admin`, (msg) => {
      if (decode(msg.data, OFFER_BODIES).ok) seen.push(msg.data);
    });
    await forger.flush();
    const b3 = await start('b3');
    await leader.cluster.add('b3', { timeoutMs: 30_000 });
    tap.unsubscribe();
    assert.equal(seen.length, 1, 'one offer');
    const again = decodeReply((await forger.request(`${PREFIX}.node.b3.admin`, seen[0]!, { timeoutMs: 10_000 })).data);
    const details = (again.ok ? again.body : again.error.details) as { proof?: string } | undefined;
    assert.equal(details?.proof, undefined, `the copy's answer carries no proof: ${JSON.stringify(again)}`);
    assert.equal(committed('b3')?.key, b3.store.memberKey().publicKey);
  });

  it('auto-join: forged answers to a join request are dropped and counted at the node; the leader\'s proven admission is taken', async () => {
    const clusterId = leader.store.identity().clusterId!;
    let answered = 0;
    const sub = forger.subscribe(`${PREFIX}.discover`, (msg) => {
      if (!decode(msg.data, DISCOVER_BODIES).ok) return;
      msg.respond(encodeReply(FORGED_REFUSAL));
      answered++;
    });
    await forger.flush();
    // the cluster is down: only the forger answers
    const members = nodes.map((c) => c.name);
    for (const c of [...nodes]) await stop(c);
    const j1 = await startController({ name: 'j1', dataDir: `${root}/j1`, prefix: PREFIX, transport: { nats: { servers: nats.url } }, raft: RAFT, join: { cluster: clusterId, secret: SECRET } });
    nodes.push(j1);
    const refusals: Refusal[] = [];
    j1.onRefusal((r) => refusals.push(r));
    await waitUntil(() => answered >= 2 && refusals.length >= 1, { timeoutMs: 30_000, what: 'the forger to answer two requests of j1' });
    // before: each forged refusal was j1's answer (reason auto-join, the forger's words as the cluster's)
    assert.deepEqual(new Set(refusals.map((r) => r.reason)), new Set(['answer-auth:no-proof']), JSON.stringify(refusals));
    assert.match(refusals[0]!.message, /^auto-join answer dropped: an answer to j1's request to join cluster .* carries no proof of the join secret; .*; it said: auto-join refused: forged by a bus user/);
    assert.equal(j1.status().phase, 'uninitialized');

    // the cluster is back: its leader's proven admission is taken, and j1 joins with its own key
    const restarted = [];
    for (const name of members) restarted.push(await start(name));
    await waitUntil(() => j1.status().phase === 'member', { timeoutMs: 60_000, what: 'j1 to join' });
    leader = leaderOf(restarted);
    assert.equal(committed('j1')?.key, j1.store.memberKey().publicKey);
    assert.ok(!refusals.some((r) => r.reason === 'auto-join'), 'no forged refusal was taken as the cluster\'s');
    sub.unsubscribe();
  });
});

describe('a forged answer that comes first: the leader keeps waiting for the node\'s own (in-process bus)', () => {
  const cluster = inProcessCluster('conclave-join-reply-inproc-');
  const join = { secret: SECRET };

  it('one offer, answered first by the forger (acceptance with its key) and then by the node: the node\'s answer is taken', async () => {
    const a1 = await cluster.start('a1', { join });
    await a1.init();
    await a1.waitForLeader(30_000);
    const b1 = await cluster.start('b1', { join });
    const forger = cluster.bus.connect('forger');
    const forgerKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
    let offers = 0;
    // answered synchronously, on delivery: before b1's admin server has even decoded the offer
    forger.subscribe(`conclave.node.b1.admin`, (msg) => {
      const offer = decode(msg.data, OFFER_BODIES);
      if (!offer.ok) return;
      offers++;
      msg.respond(encodeReply({ ok: true, body: { name: 'b1', nodeId: b1.store.identity().nodeId, clusterId: offer.envelope.clusterId, key: forgerKey } }));
    });
    const added = await a1.cluster.add('b1', { timeoutMs: 30_000 });
    assert.equal(added.outcome, 'added');
    assert.equal(offers, 1, 'one offer: the leader waited past the forged answer within it');
    const committedB1 = a1.memberRuntime().raftStatus().membership.members.find((m) => m.name === 'b1');
    assert.equal(committedB1?.key, b1.store.memberKey().publicKey, "b1's own key is committed, not the forger's");
    const drops = a1.refusedCounts().find((r) => r.reason === 'join:join-reply-auth:no-proof');
    assert.equal(drops?.count, 1, 'the forged answer was counted');
  });
});

describe('a forged answer to an auto-join request that comes first: the node takes the leader\'s (in-process bus)', () => {
  const cluster = inProcessCluster('conclave-autojoin-answer-inproc-');

  it('the forged refusal is dropped and counted, the admission that comes after it is taken', async () => {
    const a1 = await cluster.start('a1', { join: { secret: SECRET } });
    await a1.init();
    await a1.waitForLeader(30_000);
    const forger = cluster.bus.connect('forger');
    let answered = 0;
    const requests: Uint8Array[] = [];
    // answered synchronously, on delivery: before the leader has even decoded the request
    forger.subscribe('conclave.discover', (msg) => {
      if (!decode(msg.data, DISCOVER_BODIES).ok) return;
      requests.push(msg.data);
      msg.respond(encodeReply(FORGED_REFUSAL));
      answered++;
    });
    const j1 = await cluster.start('j1', { join: { cluster: a1.store.identity().clusterId!, secret: SECRET } });
    const refusals = cluster.refusals(j1);
    await waitUntil(() => j1.status().phase === 'member', { timeoutMs: 30_000, what: 'j1 to join' });
    assert.ok(answered >= 1);
    assert.ok(!refusals.some((r) => r.reason === 'auto-join'), `the forged refusal was taken: ${JSON.stringify(refusals)}`);
    assert.ok(refusals.some((r) => r.reason === 'answer-auth:no-proof'), 'the forged answer was counted');

    // a copy of a request the leader answered gets no proven answer (it is refused as replayed)
    const listener = cluster.bus.connect('listener');
    // (the forger hears the copies too: only j1's own requests, as they were before)
    for (const request of requests.slice()) {
      const answers: Array<ReturnType<typeof decodeReply>> = [];
      // two answer it: the forger, and the leader
      const bothAnswered = (r: BusMessage) => {
        answers.push(decodeReply(r.data));
        return answers.length === 2;
      };
      await listener.request('conclave.discover', request, { timeoutMs: 5000, accept: bothAnswered });
      const leaders = answers.filter((a) => !a.ok && a.error.message.includes('replayed'));
      assert.equal(leaders.length, 1, JSON.stringify(answers));
      assert.equal((leaders[0] as { error: { details?: { proof?: string } } }).error.details?.proof, undefined, 'no proof on the answer to a copy');
    }
  });
});
