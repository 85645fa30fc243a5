// What goes on the bus between members, by what the configuration holds (issue 11): with every key
// committed, each peer message carries a MAC (never a signature: the receiver holds the sender's key);
// in a configuration from before member keys nobody can check anything, so members send their
// messages as they are instead of paying ≈100 µs per message for a signature nobody checks.
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

/** the trailers of every peer message seen while the cluster forms and takes a write */
async function trailers(commitKeys: boolean): Promise<{ mac: number; sig: number; none: number }> {
  const dir = tmp.make();
  const nodes = ['w1', 'w2', 'w3'].map((name) => ({ name, dataDir: join(dir, name) }));
  await seedStaticCluster(nodes, [], { commitKeys });
  const hub = createInProcessBus();
  const spy = hub.connect('spy');
  const seen = { mac: 0, sig: 0, none: 0 };
  spy.subscribe('pw.node.*.peer', (msg) => {
    const text = Buffer.from(msg.data).toString('latin1');
    if (text.includes('"mac":"')) seen.mac++;
    else if (text.includes('"sig":"')) seen.sig++;
    else seen.none++;
  });
  const controllers: Controller[] = [];
  try {
    for (const n of nodes) controllers.push(await startController({ name: n.name, dataDir: n.dataDir, prefix: 'pw', transport: { bus: hub }, raft: { heartbeatMs: 20, electionTimeoutMs: 300 } }));
    await waitUntil(() => controllers.some((c) => c.status().role === 'leader'), { timeoutMs: 20_000, what: 'a leader' });
    const leader = controllers.find((c) => c.status().role === 'leader')!;
    await leader.propose({ op: 'put', key: 'k', value: 1 });
    await waitUntil(() => controllers.every((c) => c.store.stateGet('k') === 1), { timeoutMs: 20_000, what: 'every node to apply k' });
    return { ...seen };
  } finally {
    for (const c of controllers) await c.stop();
    await spy.close();
    await hub.close();
  }
}

describe('peer authentication on the wire', () => {
  it('keys committed: every peer message between members carries a MAC', async () => {
    const seen = await trailers(true);
    assert.ok(seen.mac > 0, JSON.stringify(seen));
    assert.deepEqual({ sig: seen.sig, none: seen.none }, { sig: 0, none: 0 }, JSON.stringify(seen));
  });

  it('a configuration without keys: messages go as they are, unsigned (nobody could check them)', async () => {
    const seen = await trailers(false);
    assert.ok(seen.none > 0, JSON.stringify(seen));
    assert.deepEqual({ sig: seen.sig, mac: seen.mac }, { sig: 0, mac: 0 }, JSON.stringify(seen));
  });
});
