// `npm start` runs `conclave demo`: three controllers initialized and joined, writes, a node of
// another cluster refused with both cluster ids, the inspector serving; Ctrl-C stops it cleanly.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { baseEnv, CliProcess } from '../helpers/cli.ts';
import { checkDemoTour } from '../helpers/demo.ts';

describe('the demo (npm start)', () => {
  it('forms a 3-node cluster, refuses a foreign node naming both ids, serves the inspector, stops cleanly on SIGINT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-demo-test-'));
    const recording = join(dir, 'demo.ndjson');
    // NATS_URL unset (a developer's shell or CI may export one): the demo is on the in-process bus
    const demo = new CliProcess(['demo', '--inspect', '127.0.0.1:0', '--record', recording], { env: baseEnv({ NATS_URL: undefined }) });
    await checkDemoTour(demo);
    assert.match(demo.stdout.split('\n')[0]!, /on the embedded in-process bus/, 'the first line names the transport');
    for (const name of ['ctrl1', 'ctrl2', 'ctrl3']) assert.match(demo.stdout, new RegExp(`${name}\\s+voter\\s+reachable`));
    assert.doesNotMatch(demo.stdout, /intruder\s+(voter|learner)/, 'the intruder is not a member');
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
