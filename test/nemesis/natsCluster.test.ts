// The torture suite's NATS cluster when a port it picked is taken by another process before its
// server binds it (tests run side by side): the start tries again on fresh ports, and a start that
// fails for good leaves no server behind. A server left running kept a test file from ever exiting
// (a CI run sat for 25 minutes with two idle nats-servers and no controller).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { freePort, natsServerSkipReason } from '../helpers/natsServer.ts';
import { killLeftoverServers, liveServers, startNatsCluster } from './natsCluster.ts';

/** a port held by a plain TCP listener, as another test's process would hold it */
async function holdPort(): Promise<{ port: number; server: Server }> {
  // a connection to it is closed at once: nothing of it keeps this file running
  const server = createServer((socket) => socket.destroy());
  server.unref();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  return { port: addr.port, server };
}

async function portsWithThirdTaken(taken: number): Promise<Array<{ client: number; route: number }>> {
  return [
    { client: await freePort(), route: await freePort() },
    { client: await freePort(), route: await freePort() },
    { client: taken, route: await freePort() },
  ];
}

describe('the torture suite’s NATS cluster when a port is taken', { skip: natsServerSkipReason() }, () => {
  const held: Server[] = [];
  after(async () => {
    for (const s of held) s.close();
    await killLeftoverServers();
  });

  it('one attempt: the start fails naming the server, and kills the servers it had started', async () => {
    const { port, server } = await holdPort();
    held.push(server);
    await assert.rejects(startNatsCluster(3, { ports: await portsWithThirdTaken(port), attempts: 1 }), /did not start in 1 attempts: nats-server s3 exited at start/);
    assert.equal(liveServers(), 0, 'no nats-server is left running');
  });

  it('by default: it starts again on fresh ports and routes', async () => {
    const { port, server } = await holdPort();
    held.push(server);
    const cluster = await startNatsCluster(3, { ports: await portsWithThirdTaken(port) });
    try {
      assert.equal(cluster.urls.length, 3);
      assert.ok(!cluster.urls.some((u) => u.endsWith(`:${port}`)), `the taken port is not used: ${cluster.urls.join(' ')}`);
      assert.equal(liveServers(), 3);
    } finally {
      await cluster.stopAll();
    }
    assert.equal(liveServers(), 0, 'stopAll leaves no server running');
  });
});
