// `npm start` runs `conclave demo`: three controllers initialized and joined, writes, a node of
// another cluster refused with both cluster ids, the inspector serving; Ctrl-C stops it cleanly.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { baseEnv, CliProcess, waitUntil } from '../helpers/cli.ts';

const UUID7 = '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}';

describe('the demo (npm start)', () => {
  it('forms a 3-node cluster, refuses a foreign node naming both ids, serves the inspector, stops cleanly on SIGINT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-demo-test-'));
    const recording = join(dir, 'demo.ndjson');
    // NATS_URL unset (a developer's shell or CI may export one): the demo is on the in-process bus
    const demo = new CliProcess(['demo', '--inspect', '127.0.0.1:0', '--record', recording], { env: baseEnv({ NATS_URL: undefined }) });
    await demo.waitForOutput(/press Ctrl-C to stop/, 60_000);
    assert.match(demo.stdout.split('\n')[0]!, /on the embedded in-process bus/, 'the first line names the transport');
    const clusterId = new RegExp(`cluster id (${UUID7})`).exec(demo.stdout)?.[1];
    assert.ok(clusterId, `the demo prints the new cluster id:\n${demo.output()}`);
    assert.match(demo.stdout, /ctrl2: added in \d+ ms/);
    assert.match(demo.stdout, /ctrl3: added in \d+ ms/);
    assert.match(demo.stdout, /kv get greeting via ctrl3 → "hello from the demo"/);
    const foreignId = new RegExp(`intruder belongs to cluster (${UUID7})`).exec(demo.stdout)?.[1];
    assert.ok(foreignId && foreignId !== clusterId, demo.output());
    assert.match(demo.stdout, new RegExp(`refused at both ends — join refused: intruder belongs to cluster ${foreignId} but ctrl1 belongs to cluster ${clusterId}`));
    for (const name of ['ctrl1', 'ctrl2', 'ctrl3']) assert.match(demo.stdout, new RegExp(`${name}\\s+voter\\s+reachable`));
    assert.doesNotMatch(demo.stdout, /intruder\s+(voter|learner)/, 'the intruder is not a member');

    const url = /inspector: (http:\/\/\S+)/.exec(demo.stdout)?.[1];
    assert.ok(url, `the demo prints the inspector URL:\n${demo.output()}`);
    let cluster: { nodes: Array<{ name: string; role?: string; clusterId?: string }> } = { nodes: [] };
    await waitUntil(
      async () => {
        cluster = (await (await fetch(new URL('/api/cluster', url))).json()) as typeof cluster;
        const ours = cluster.nodes.filter((n) => n.clusterId === clusterId);
        return ours.length === 3 && ours.filter((n) => n.role === 'leader').length === 1;
      },
      { what: 'three nodes of the cluster, one leader, in /api/cluster', timeoutMs: 15_000, context: () => JSON.stringify(cluster) },
    );
    const exit = await demo.kill('SIGINT');
    assert.equal(exit.code, 0, demo.output());
    assert.match(demo.stdout, /stopping/);
    // --record kept what the inspector saw: a header, then frames naming the cluster's nodes
    const lines = (await readFile(recording, 'utf8')).trim().split('\n');
    assert.equal((JSON.parse(lines[0]!) as { format: string }).format, 'conclave-inspect-recording');
    assert.ok(lines.length > 2, `frames recorded (${lines.length} lines)`);
    assert.match(lines.slice(1).join('\n'), /ctrl2/);
    await rm(dir, { recursive: true, force: true });
  });
});
