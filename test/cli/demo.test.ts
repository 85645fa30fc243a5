// `npm start` runs `conclave demo`: it must reach an initialized cluster, print a status with a
// cluster id, keep running, and stop cleanly on Ctrl-C (SIGINT, exit 0).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliProcess } from '../helpers/cli.ts';

describe('the demo (npm start)', () => {
  it('initializes a cluster, prints its status with a cluster id, and stops cleanly on SIGINT', async () => {
    const demo = new CliProcess(['demo']);
    await demo.waitForOutput(/press Ctrl-C to stop/, 30_000);
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
