// `npm start` runs `conclave demo`: it must reach an initialized cluster, print a status with a
// cluster id, keep running, and stop cleanly on Ctrl-C (SIGINT, exit 0).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliProcess, waitUntil } from '../helpers/cli.ts';

describe('the demo (npm start)', () => {
  it('initializes a cluster, prints its status with a cluster id, serves the inspector, and stops cleanly on SIGINT', async () => {
    const demo = new CliProcess(['demo', '--inspect', '127.0.0.1:0']);
    await demo.waitForOutput(/press Ctrl-C to stop/, 30_000);
    const url = /Inspector: (http:\/\/\S+)/.exec(demo.stdout)?.[1];
    assert.ok(url, `the demo prints the inspector URL:\n${demo.output()}`);
    // the inspector polls each node's status; the first answer comes within a moment
    let cluster: { nodes: Array<{ name: string; role?: string }> } = { nodes: [] };
    await waitUntil(
      async () => {
        cluster = (await (await fetch(new URL('/api/cluster', url))).json()) as typeof cluster;
        return cluster.nodes.some((n) => n.name === 'ctrl1' && n.role === 'leader');
      },
      { what: 'ctrl1 as leader in /api/cluster', timeoutMs: 10_000, context: () => JSON.stringify(cluster) },
    );
    const id = /cluster id:\s+([0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(demo.stdout);
    assert.ok(id, `a status with a UUID v7 cluster id:\n${demo.output()}`);
    assert.match(demo.stdout, /phase:\s+member/);
    assert.match(demo.stdout, /role:\s+leader/);
    assert.match(demo.stdout, /kv get greeting → "hello from the demo"/);
    const exit = await demo.kill('SIGINT');
    assert.equal(exit.code, 0, demo.output());
    assert.match(demo.stdout, /stopping/);
  });
});
