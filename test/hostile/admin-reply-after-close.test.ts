// Found by the bus fuzz (test/fuzz/bus.test.ts): an admin request still being handled when the
// node's bus connection closes (a membership change, a snapshot page, a forwarded proposal) answered
// into the closed connection, and the BusClosedError became an unhandled rejection — a process exit
// under `conclave run`. A reply that cannot be sent is logged (rate-limited), never thrown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdminServer } from '../../runtime/admin.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { encode } from '../../runtime/wire/codec.ts';

describe('admin replies after the bus closed (regression, found by the bus fuzz)', () => {
  it('an answer or an error that arrives after the connection closed is not an unhandled rejection', async () => {
    const hub = createInProcessBus();
    const nodeBus = hub.connect('node');
    const client = hub.connect('client');
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const pending: Array<{ resolve(v: unknown): void; reject(e: Error): void }> = [];
      const handled = () => new Promise((resolve, reject) => pending.push({ resolve, reject }));
      const server = new AdminServer(nodeBus, 'x.node.n.admin', { propose: handled, read: handled }, silentLogger());
      await server.start();
      const sender = { name: 'cli', nodeId: null, clusterId: null };
      const answers = [
        client.request('x.node.n.admin', encode(sender, 'propose', { command: { op: 'put', key: 'a', value: 1 } }), { timeoutMs: 60_000 }).catch((e: Error) => e),
        client.request('x.node.n.admin', encode(sender, 'read', { query: { op: 'get', key: 'a' } }), { timeoutMs: 60_000 }).catch((e: Error) => e),
      ];
      // both requests reach their handlers (valid bodies: the server refuses others before any handler runs)
      const deadline = Date.now() + 30_000;
      while (pending.length < 2) {
        assert.ok(Date.now() < deadline, `only ${pending.length} of 2 requests reached a handler`);
        await new Promise((r) => setTimeout(r, 5));
      }
      await nodeBus.close();
      pending[0]!.resolve({ late: true });
      pending[1]!.reject(new Error('late failure'));
      await client.close();
      await Promise.all(answers);
      // the rejection, if any, is reported once the microtasks of both settlements have run
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await hub.close();
    }
  });
});
