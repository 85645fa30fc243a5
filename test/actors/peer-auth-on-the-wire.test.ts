// What goes on the bus between members, by what the configuration holds (issue 11): with every key
// committed, each peer message carries a MAC (never a signature: the receiver holds the sender's key);
// in a configuration from before member keys (cluster version 1) nobody can check anything, so
// members send their messages as they are instead of paying ≈100 µs per message for a signature
// nobody checks — until the leader raises the cluster version with the keys they state (issue 15).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import { createInProcessBus } from '../../runtime/transport/inProcess.ts';
import { waitUntil } from '../helpers/cli.ts';
import { seedStaticCluster } from '../helpers/staticCluster.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-peer-auth-wire-');
after(() => tmp.cleanup());

type Trailer = 'mac' | 'sig' | 'none';

/**
 * The trailer of every peer message, in order, while the cluster forms and takes a write; then, when
 * `untilRaised`, until every member has applied cluster version 2 (`raisedAt`: how many had been seen
 * by then) and each has sent ten more.
 */
async function trailers(commitKeys: boolean, untilRaised = false): Promise<{ seen: Array<{ from: string; trailer: Trailer }>; raisedAt: number }> {
  const dir = tmp.make();
  const nodes = ['w1', 'w2', 'w3'].map((name) => ({ name, dataDir: join(dir, name) }));
  await seedStaticCluster(nodes, [], { commitKeys });
  const hub = createInProcessBus();
  const spy = hub.connect('spy');
  const seen: Array<{ from: string; trailer: Trailer }> = [];
  spy.subscribe('pw.node.*.peer', (msg) => {
    const text = Buffer.from(msg.data).toString('latin1');
    const from = /"from":"([^"]+)"/.exec(text)?.[1] ?? '?';
    seen.push({ from, trailer: text.includes('"mac":"') ? 'mac' : text.includes('"sig":"') ? 'sig' : 'none' });
  });
  const controllers: Controller[] = [];
  try {
    for (const n of nodes) controllers.push(await startController({ name: n.name, dataDir: n.dataDir, prefix: 'pw', transport: { bus: hub }, raft: { heartbeatMs: 20, electionTimeoutMs: 300 } }));
    await waitUntil(() => controllers.some((c) => c.status().role === 'leader'), { timeoutMs: 20_000, what: 'a leader' });
    const leader = controllers.find((c) => c.status().role === 'leader')!;
    await leader.propose({ op: 'put', key: 'k', value: 1 });
    await waitUntil(() => controllers.every((c) => c.store.stateGet('k') === 1), { timeoutMs: 20_000, what: 'every node to apply k' });
    let raisedAt = -1;
    if (untilRaised) {
      await waitUntil(() => controllers.every((c) => c.status().clusterVersion?.version === 2), { timeoutMs: 20_000, what: 'cluster version 2 on every member' });
      raisedAt = seen.length;
      await waitUntil(() => nodes.every((n) => seen.slice(raisedAt).filter((s) => s.from === n.name).length >= 10), { timeoutMs: 20_000, what: 'ten messages from each member after the raise' });
    }
    return { seen: [...seen], raisedAt };
  } finally {
    for (const c of controllers) await c.stop();
    await spy.close();
    await hub.close();
  }
}

const count = (seen: Array<{ trailer: Trailer }>) => ({ mac: seen.filter((s) => s.trailer === 'mac').length, sig: seen.filter((s) => s.trailer === 'sig').length, none: seen.filter((s) => s.trailer === 'none').length });

describe('peer authentication on the wire', () => {
  it('keys committed: every peer message between members carries a MAC', async () => {
    const seen = count((await trailers(true)).seen);
    assert.ok(seen.mac > 0, JSON.stringify(seen));
    assert.deepEqual({ sig: seen.sig, none: seen.none }, { sig: 0, none: 0 }, JSON.stringify(seen));
  });

  it('a configuration without keys (release 0.1): messages go as they are (nobody could check them) until the leader raises the cluster version and commits the keys; then every one carries a MAC', async () => {
    const { seen, raisedAt } = await trailers(false, true);
    // before the first MAC, nothing was signed: an unsigned prefix
    const firstMac = seen.findIndex((s) => s.trailer === 'mac');
    assert.ok(firstMac > 0, JSON.stringify(count(seen)));
    assert.deepEqual(count(seen.slice(0, firstMac)), { mac: 0, sig: 0, none: firstMac });
    const after = count(seen.slice(raisedAt));
    assert.ok(after.mac >= 30, JSON.stringify(after));
    assert.deepEqual({ sig: after.sig, none: after.none }, { sig: 0, none: 0 }, `after the raise: ${JSON.stringify(after)}`);
  });
});
