// The one typed admin protocol (runtime/wire/adminProtocol.ts): the server refuses a body that does
// not match the operation's schema before any handler runs, and the client's types refuse it at
// compile time (the @ts-expect-error lines fail `npm run typecheck` if the types ever accept them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdminServer, adminCall } from '../../runtime/admin.ts';
import { ConclaveError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { encode } from '../../runtime/wire/codec.ts';

const CLI = { name: 'cli', nodeId: null, clusterId: null };

describe('typed admin protocol', () => {
  it('read-only operations are answered on .read too (the client asks there first); a change sent there is refused and counted', async () => {
    const hub = createInProcessBus();
    const node = hub.connect('node');
    const client = hub.connect('client');
    const subjects: string[] = [];
    hub.connect('spy').subscribe('p.node.n.*', (m) => void subjects.push(m.subject));
    const seen: string[] = [];
    const server = new AdminServer(
      node,
      'p.node.n.admin',
      {
        status: async () => {
          seen.push('status');
          return { name: 'n' } as never;
        },
        propose: async () => {
          seen.push('propose');
          return null;
        },
      },
      silentLogger(),
      'p.node.n.read',
    );
    try {
      await server.start();
      await adminCall(client, 'p', 'n', CLI, 'status', {}, 5000);
      await adminCall(client, 'p', 'n', CLI, 'propose', { command: { op: 'put', key: 'k', value: 1 } }, 5000);
      assert.deepEqual(subjects, ['p.node.n.read', 'p.node.n.admin'], 'status asked on .read, propose on .admin');
      const reply = await client.request('p.node.n.read', encode(CLI, 'propose', { command: { op: 'put', key: 'k', value: 2 } }), { timeoutMs: 5000 });
      assert.match(new TextDecoder().decode(reply.data), /"code":"BAD_REQUEST".*propose changes the cluster and is not answered on p\.node\.n\.read/);
      assert.deepEqual(seen, ['status', 'propose'], 'the refused change never reached its handler');
      assert.equal(server.dropped.get('not-read-only'), 1);
    } finally {
      await server.stop();
    }
  });

  it('a node of an older release (no .read subject) is still asked a read-only operation, on .admin', async () => {
    const hub = createInProcessBus();
    const server = new AdminServer(hub.connect('node'), 'p.node.n.admin', { status: async () => ({ name: 'old' }) as never }, silentLogger());
    try {
      await server.start();
      assert.deepEqual(await adminCall(hub.connect('client'), 'p', 'n', CLI, 'status', {}, 5000), { name: 'old' });
    } finally {
      await server.stop();
    }
  });

  it('a wrong body is refused (BAD_REQUEST, naming the field) and never reaches the handler; a right one does', async () => {
    const hub = createInProcessBus();
    const node = hub.connect('node');
    const client = hub.connect('client');
    const seen: string[] = [];
    const server = new AdminServer(
      node,
      'p.node.n.admin',
      {
        'cluster.add': async (body) => {
          seen.push(body.name);
          return { name: body.name, nodeId: 'id', outcome: 'added' };
        },
      },
      silentLogger(),
    );
    try {
      await server.start();
      const ok = await adminCall(client, 'p', 'n', CLI, 'cluster.add', { name: 'n2' }, 5000);
      assert.deepEqual(ok, { name: 'n2', nodeId: 'id', outcome: 'added' });
      // what a hostile or buggy peer can still put on the wire
      const reply = await client.request('p.node.n.admin', encode(CLI, 'cluster.add', { name: 'a.b*', timeoutMs: 'soon' }), { timeoutMs: 5000 });
      const text = new TextDecoder().decode(reply.data);
      assert.match(text, /"code":"BAD_REQUEST"/);
      assert.match(text, /cluster\.add: .*name/);
      assert.deepEqual(seen, ['n2'], 'the handler saw only the valid request');
      assert.equal(server.dropped.get('bad-body'), 1, 'the refused request is counted');
      // the client's side of the same mistakes does not compile
      const wrong = () => [
        // @ts-expect-error: cluster.add needs a name
        adminCall(client, 'p', 'n', CLI, 'cluster.add', {}, 5000),
        // @ts-expect-error: timeoutMs is a number
        adminCall(client, 'p', 'n', CLI, 'cluster.add', { name: 'n2', timeoutMs: 'soon' }, 5000),
        // @ts-expect-error: no such operation
        adminCall(client, 'p', 'n', CLI, 'cluster.grow', {}, 5000),
      ];
      assert.equal(typeof wrong, 'function');
      await assert.rejects(adminCall(client, 'p', 'n', CLI, 'status', {}, 5000), (err: unknown) => err instanceof ConclaveError && err.code === 'BAD_REQUEST');
    } finally {
      await server.stop();
      await hub.close();
    }
  });
});
