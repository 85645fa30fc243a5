// Replay protection over a real nats-server (issue 11, member identity): a bus user who records a
// member's MACed peer messages — it may read the peer subjects in this setup — and publishes the same
// bytes again gets nothing: each carries its sender's (boot, seq), covered by the MAC, and a receiver
// takes a sender's messages only in increasing order (runtime/wire/replayWindow.ts). The copies are
// dropped and counted as `replayed`; term, leader, configuration and data stay. The liveness case: the
// heartbeats of a leader that died, replayed to its followers without a pause, do not keep them from
// electing a new leader. A member restarted (its boot counter grew) keeps being heard, and its old
// messages replayed after the restart are refused; a member that restarts after its leader died
// takes none of that leader's replayed heartbeats (its windows start from fresh answers, and the dead
// leader gives none: actors/freshness.ts). Three controllers in this process, each with its
// own NATS connection; the forger has its own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { clusterState, drops, leaderOf, startVoters, natsWithForger, stopAll } from './helpers.ts';

// slow enough that no election happens by itself on a busy machine while a test compares terms
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };
const PREFIX = 'rp';

/** what a forger recorded on one node's peer subject, from one sender, by kind */
interface Recording {
  heartbeats: Buffer[];
  appends: Buffer[];
  pings: Buffer[];
  other: Buffer[];
  stop(): void;
}

describe('replayed peer messages over NATS (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-replay-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let root: string;
  let nodes: Controller[] = [];
  /** cut off from the bus, no longer counted among the nodes; stopped at the end */
  const dead: Controller[] = [];

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    root = tmp.make();
    await startVoters(nodes, nats.url, root, PREFIX, ['r1', 'r2', 'r3'], RAFT);
    await nodes[0]!.propose({ op: 'put', key: 'before', value: 1 });
    await waitUntil(() => nodes.every((c) => c.store.stateGet('before') === 1), { timeoutMs: 30_000, what: 'every node to hold the data written before' });
  });
  after(async () => {
    await stopAll([...nodes, ...dead], forger, nats, tmp);
    nodes = [];
  });

  const followers = () => nodes.filter((c) => c !== leaderOf(nodes));
  const replayed = () => nodes.reduce((n, c) => n + drops(c, 'replayed'), 0);
  const refusedAuth = () => nodes.reduce((n, c) => n + drops(c, 'bad-signature') + drops(c, 'unsigned'), 0);

  async function stillServing(key: string): Promise<void> {
    const leader = leaderOf(nodes);
    await leader.propose({ op: 'put', key, value: key });
    await waitUntil(() => nodes.every((c) => c.store.stateGet(key) === key), { timeoutMs: 30_000, what: `every node to apply ${key}` });
  }

  /** record, as a bus user can, what `from` sends to `to` (copies of the bytes as they went over the bus) */
  async function record(to: Controller, from: Controller): Promise<Recording> {
    const rec: Recording = { heartbeats: [], appends: [], pings: [], other: [], stop: () => sub.unsubscribe() };
    const sub = forger.subscribe(`${PREFIX}.node.${to.name}.peer`, (msg) => {
      const bytes = Buffer.from(msg.data);
      const text = bytes.toString('latin1');
      if (!text.includes(`"from":"${from.name}"`)) return;
      if (text.includes('"type":"ping"')) rec.pings.push(bytes);
      else if (text.includes('"type":"heartbeat"')) rec.heartbeats.push(bytes);
      else if (text.includes('"type":"append"')) rec.appends.push(bytes);
      else rec.other.push(bytes);
    });
    await forger.flush();
    return rec;
  }

  const publishTo = (to: Controller, data: Uint8Array) => forger.publish(`${PREFIX}.node.${to.name}.peer`, data);

  it('between members, no genuine message is ever refused as a replay (one sender, one subject, in order)', async () => {
    await stillServing('genuine');
    assert.equal(replayed(), 0);
    assert.equal(refusedAuth(), 0);
  });

  it("a leader's recorded heartbeats, appends and pings, published again to a follower, are dropped as replayed and change nothing", async () => {
    const leader = leaderOf(nodes);
    const [follower] = followers();
    const rec = await record(follower!, leader);
    await stillServing('recorded');
    await waitUntil(() => rec.heartbeats.length >= 3 && rec.appends.length >= 1 && rec.pings.length >= 1, { timeoutMs: 30_000, what: 'heartbeats, an append and a ping from the leader on the bus' });
    rec.stop();
    // every one is a MAC with (boot, seq): `"mac":"<boot>.<seq>.<mac>"}` at the end of the envelope
    for (const data of [...rec.heartbeats, ...rec.appends, ...rec.pings]) assert.match(data.toString('latin1'), /,"mac":"[1-9][0-9]*\.[1-9][0-9]*\.[A-Za-z0-9_-]{43}"}/);
    const copies = [...rec.heartbeats.slice(0, 3), rec.appends[0]!, rec.pings[0]!];
    const state = clusterState(nodes);
    const before = drops(follower!, 'replayed');
    const authBefore = refusedAuth();
    for (const data of copies) publishTo(follower!, data);
    await waitUntil(() => drops(follower!, 'replayed') >= before + copies.length, { timeoutMs: 30_000, what: 'the follower to drop every copy as replayed' });
    assert.equal(drops(follower!, 'replayed'), before + copies.length);
    assert.equal(refusedAuth(), authBefore, 'their MACs still check: it is the (boot, seq) that refuses them');
    assert.deepEqual(clusterState(nodes), state);
    // status shows them with the other refusals
    assert.ok(follower!.refusedCounts().some((r) => r.source === 'peer' && r.reason === 'replayed' && r.count >= copies.length));
    await stillServing('after-replay');
    assert.equal(leaderOf(nodes), leader, 'the leader is the same');
  });

  it('a restarted member (its boot counter grew) keeps being heard; what it sent before the restart, replayed, is refused', async () => {
    const leader = leaderOf(nodes);
    const [follower] = followers();
    const name = follower!.name;
    const rec = await record(leader, follower!);
    await stillServing('before-restart');
    await waitUntil(() => rec.pings.length >= 1 && rec.other.length >= 1, { timeoutMs: 30_000, what: `a ping and a raft answer from ${name} on the bus` });
    rec.stop();
    const bootBefore = follower!.store.boot();
    await follower!.stop();
    nodes = nodes.filter((c) => c !== follower);
    const again = await startController({ name, dataDir: `${root}/${name}`, prefix: PREFIX, transport: { nats: { servers: nats.url } }, raft: RAFT });
    nodes.push(again);
    assert.ok(again.store.boot() > bootBefore, `boot ${again.store.boot()} after ${bootBefore}`);
    await waitUntil(() => again.status().phase === 'member' && again.status().leader === leader.name, { timeoutMs: 30_000, what: `${name} to be a member again under ${leader.name}` });
    const replayedBefore = replayed();
    await stillServing('after-restart');
    assert.equal(replayed(), replayedBefore, 'nothing the restarted member sent was refused');
    const copies = [rec.pings[0]!, rec.other[0]!];
    const before = drops(leader, 'replayed');
    for (const data of copies) publishTo(leader, data);
    await waitUntil(() => drops(leader, 'replayed') >= before + copies.length, { timeoutMs: 30_000, what: `the leader to refuse ${name}'s messages from before its restart` });
    await stillServing('after-restart-replay');
  });

  it("the heartbeats of a leader that died, replayed to its followers without a pause, do not keep them from electing a new one", async () => {
    const leader = leaderOf(nodes);
    const term = leader.status().term;
    const fs = followers();
    const recs = await Promise.all(fs.map((f) => record(f, leader)));
    await waitUntil(() => recs.every((r) => r.heartbeats.length >= 20), { timeoutMs: 30_000, what: "20 of the leader's heartbeats to each follower on the bus" });
    for (const r of recs) r.stop();
    const before = fs.map((f) => drops(f, 'replayed'));
    // the leader dies (or is cut off) at once: its bus connection closes, without the hand-over a stop does
    nodes = nodes.filter((c) => c !== leader);
    dead.push(leader);
    await leader.bus.close();
    assert.ok(fs.every((f) => f.status().role === 'follower' && f.status().term === term), 'no election yet');
    // a copy to each follower every 10 ms, far more often than the leader sent them
    let i = 0;
    const pump = setInterval(() => {
      for (const [n, f] of fs.entries()) publishTo(f, recs[n]!.heartbeats[i % recs[n]!.heartbeats.length]!);
      i++;
    }, 10);
    try {
      await waitUntil(() => fs.some((f) => f.status().role === 'leader' && f.status().term > term), { timeoutMs: 45_000, what: 'a follower to be elected leader while the dead leader’s heartbeats are replayed' });
    } finally {
      clearInterval(pump);
    }
    assert.ok(fs.every((f, n) => drops(f, 'replayed') > before[n]!), 'each follower refused the copies');
    await stillServing('new-leader');
  });

  it("a member restarted after its leader died takes none of that leader's heartbeats replayed to it (its window starts only from a fresh answer)", async () => {
    const leader = leaderOf(nodes);
    const [follower] = followers();
    const name = follower!.name;
    const rec = await record(follower!, leader);
    await waitUntil(() => rec.heartbeats.length >= 5, { timeoutMs: 30_000, what: `5 of the leader's heartbeats to ${name} on the bus` });
    rec.stop();
    await follower!.stop();
    nodes = nodes.filter((c) => c !== follower);
    // the leader dies while the follower is down
    nodes = nodes.filter((c) => c !== leader);
    dead.push(leader);
    await leader.bus.close();
    const again = await startController({ name, dataDir: `${root}/${name}`, prefix: PREFIX, transport: { nats: { servers: nats.url } }, raft: RAFT });
    nodes.push(again);
    let i = 0;
    const pump = setInterval(() => publishTo(again, rec.heartbeats[i++ % rec.heartbeats.length]!), 10);
    try {
      await waitUntil(() => drops(again, 'unsynced') >= 20, { timeoutMs: 30_000, what: `${name} to hold back 20 replayed heartbeats of the dead leader` });
      // before the fix, the first copy started its window and every later one was taken: it followed the dead leader
      assert.equal(again.status().leader, null, `${name} follows nobody: ${JSON.stringify(again.status())}`);
      assert.equal(drops(again, 'replayed'), 0);
    } finally {
      clearInterval(pump);
    }
  });
});
