// An answer larger than the bus carries (a `kv list` of big values on a bus with a small max
// payload) is refused at once with MAX_PAYLOAD, naming both sizes and what to ask instead. It used
// to be dropped with a warning, so the asker waited for its timeout and was told the node did not
// answer (the torture suite's final `list` met it once its fill keys passed 1 MiB).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Controller } from '../../runtime/controller.ts';
import { adminRequest } from '../../runtime/cli/client.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

const MAX_PAYLOAD = 64 * 1024;

describe('an answer larger than the bus carries', () => {
  const cluster = inProcessCluster('conclave-answer-too-large-', { maxPayload: MAX_PAYLOAD });
  let node: Controller;
  before(async () => {
    node = await cluster.start('n1');
    await node.init();
    await node.waitForLeader(30_000);
    for (let i = 0; i < 4; i++) await node.propose({ op: 'put', key: `big${i}`, value: 'v'.repeat(30 * 1024) });
  });

  it('kv list over the admin subject: MAX_PAYLOAD at once, with the sizes and what to do; a smaller list is answered', async () => {
    const client = cluster.bus.connect('client');
    const asked = performance.now();
    await assert.rejects(
      adminRequest(client, 'conclave', 'n1', 'read', { query: { op: 'list' } }, 60_000),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MAX_PAYLOAD', err.message);
        assert.match(err.message, new RegExp(`more than the largest message the bus carries \\(${MAX_PAYLOAD} bytes\\)`));
        assert.match(err.message, /--limit/);
        return true;
      },
    );
    // refused, not timed out: well inside the 60 s the asker would otherwise have waited
    assert.ok(performance.now() - asked < 30_000);
    const one = (await adminRequest(client, 'conclave', 'n1', 'read', { query: { op: 'list', limit: 1 } }, 10_000)) as unknown[] | { keys?: unknown[] };
    assert.ok(JSON.stringify(one).includes('big0'), JSON.stringify(one).slice(0, 200));
    await client.close();
  });
});
