// Issue 17 item 7: SIGTERM to a member with a forwarded request in flight is a graceful stop — it
// prints "stopped" and exits 0 — not an uncaught BusClosedError from the reply sent after the bus
// closed. Real nats-server, real `conclave run` processes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';
import { signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { waitUntil } from '../helpers/cli.ts';
import { cliCluster } from '../helpers/cliCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { testOperator } from '../helpers/testOperator.ts';

describe('graceful stop over real NATS', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'stop', tmpPrefix: 'conclave-shutdown-nats-' });

  it('SIGTERM to a follower whose forwarded put waits on a paused leader: "stopped", exit 0, the client gets an answer', async () => {
    const n1 = await c.run('s1');
    const s2 = await c.run('s2');
    assert.equal((await c.cli(['init', '--node', 's1'])).code, 0);
    await waitUntil(async () => (await c.status('s1')).role === 'leader', { what: 's1 leads' });
    const add = await c.cli(['cluster', 'add', 's2', '--via', 's1']);
    assert.equal(add.code, 0, add.stderr);
    await waitUntil(async () => (await c.status('s2')).leader === 's1', { what: 's2 follows s1' });

    // the leader stops answering (still subscribed: no "no responders"), and s2 gets a put to forward
    n1.child.kill('SIGSTOP');
    try {
      const sender = { name: 'test', nodeId: null, clusterId: null };
      const put = c.bus.request('stop.node.s2.admin', signAdminRequest(testOperator().signer, 'stop.node.s2.admin', sender, 'propose', { command: { op: 'put', key: 'k', value: 1 } }), { timeoutMs: 30_000 });
      // messages on one connection to one subject arrive in order: once s2 answers this, the put is in flight there
      const status = decodeReply((await c.bus.request('stop.node.s2.admin', encode(sender, 'status', {}), { timeoutMs: 10_000 })).data);
      assert.ok(status.ok);
      const exit = await s2.kill('SIGTERM');
      const answer = await put.then((m) => decodeReply(m.data)).catch((err: unknown) => ({ ok: false as const, error: { code: 'NONE', message: String(err) } }));
      console.log(`# s2 exit ${JSON.stringify(exit)}; the forwarded put was answered: ${JSON.stringify(answer)}`);
      assert.deepEqual(exit, { code: 0, signal: null }, s2.output());
      // ... and the put's client is told at once that its outcome is unknown, instead of waiting out its timeout
      assert.equal(answer.ok ? 'ok' : answer.error.code, 'OUTCOME_UNKNOWN');
      assert.match(s2.stdout + s2.stderr, /stopped/);
      assert.doesNotMatch(s2.stdout + s2.stderr, /BusClosedError|uncaught|unhandled/i, s2.output());
    } finally {
      n1.child.kill('SIGCONT');
    }
  });
});
