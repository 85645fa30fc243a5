// Issue 17 item 6: a NATS outage lasts no longer than it must. nats-server is stopped and started
// again on the same port: the node logs the disconnect (warn) and the reconnect (info) with the
// server, `status` shows the bus disconnected and then connected again (with the reconnect
// counted), and writes resume. Times are printed, not asserted.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { adminRequest } from '../../runtime/cli/client.ts';
import { type Controller, startController } from '../../runtime/controller.ts';
import { createLogger } from '../../runtime/log/logger.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

describe('NATS restart: reconnect promptly, say so, show it in status', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-nats-reconnect-');
  const servers: NatsServerHandle[] = [];
  let controller: Controller | undefined;
  after(async () => {
    await controller?.stop();
    for (const s of servers) await s.stop();
    tmp.cleanup();
  });

  it('stop and restart nats-server on the same port: logs both events, status disconnected then connected, writes resume', async () => {
    const first = await startNatsServer();
    servers.push(first);
    const lines: Array<{ level: number; msg: string; server?: string }> = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
        done();
      },
    });
    controller = await startController({
      name: 'rc1',
      dataDir: `${tmp.make()}/rc1`,
      prefix: 'rc',
      transport: { nats: { servers: first.url } },
      raft: { heartbeatMs: 20, electionTimeoutMs: 200 },
      logger: createLogger({ level: 'info', pretty: false, destination }),
    });
    const c = controller;
    await c.init();
    await c.propose({ op: 'put', key: 'k', value: 0 });
    assert.deepEqual(c.status().bus, { kind: 'nats', connected: true, server: first.url, reconnects: 0 });

    await first.stop();
    await waitUntil(() => c.status().bus.connected === false, { what: 'status shows the bus disconnected', timeoutMs: 30_000 });
    await waitUntil(() => lines.some((l) => l.level === 40 && /lost the NATS connection/.test(l.msg)), { what: 'a warning about the lost connection' });
    const lost = lines.find((l) => /lost the NATS connection/.test(l.msg))!;
    assert.match(lost.msg, new RegExp(`127\\.0\\.0\\.1:${first.port}`));

    const second = await startNatsServer({ port: first.port });
    servers.push(second);
    const back = Date.now();
    await waitUntil(() => c.status().bus.connected, { what: 'status shows the bus connected again', timeoutMs: 30_000 });
    const reconnectMs = Date.now() - back;
    let attempts = 0;
    await waitUntil(
      async () => {
        attempts++;
        return c.propose({ op: 'put', key: 'k', value: attempts }).then(
          () => true,
          () => false,
        );
      },
      { what: 'a write succeeds after the server is back', timeoutMs: 30_000, intervalMs: 10 },
    );
    const writeMs = Date.now() - back;
    console.log(`# nats-server back on port ${second.port}: connected again after ${reconnectMs} ms, first write acknowledged after ${writeMs} ms (${attempts} attempts)`);
    const reconnected = lines.find((l) => l.level === 30 && /reconnected to NATS/.test(l.msg));
    assert.ok(reconnected, `no info line about the reconnect in:\n${lines.map((l) => l.msg).join('\n')}`);
    assert.match(reconnected.msg, new RegExp(`127\\.0\\.0\\.1:${second.port}`));
    assert.deepEqual(c.status().bus, { kind: 'nats', connected: true, server: second.url, reconnects: 1 });

    // `status --json` (the admin reply) carries the same field, next to the contract's
    const client = await connectNats({ servers: second.url, name: 'rc-test' });
    try {
      const status = (await adminRequest(client, 'rc', 'rc1', 'status', {}, 10_000)) as { phase: string; role: string; bus: unknown };
      assert.equal(status.phase, 'member');
      assert.equal(status.role, 'leader');
      assert.deepEqual(status.bus, { kind: 'nats', connected: true, server: second.url, reconnects: 1 });
    } finally {
      await client.close();
    }
  });
});
