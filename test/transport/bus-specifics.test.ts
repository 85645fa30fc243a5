// What only one transport does: the in-process bus's subject checks, asynchronous delivery and
// copies; NATS's connection errors and status. The behaviour both share is in bus-contract.test.ts.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BusClosedError, BusConnectError, connectNats, createInProcessBus, InvalidSubjectError, PayloadTooLargeError } from '../../runtime/transport/index.ts';
import { freePort, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { dec, enc, rejection, waitFor } from './busHelpers.ts';

describe('in-process bus specifics', () => {
  const hub = createInProcessBus({ maxPayload: 100 });
  after(() => hub.close());

  it('refuses invalid publish subjects', () => {
    const bus = hub.connect('p');
    for (const s of ['', '.', 'a..b', '.a', 'a.', 'a b', 'a\tb', 'a.*', '*', '>', 'a.>.b', 'a.>']) {
      assert.throws(() => bus.publish(s, new Uint8Array()), InvalidSubjectError, `publish ${JSON.stringify(s)}`);
    }
  });

  it('refuses invalid subscribe subjects and queue names', () => {
    const bus = hub.connect('s');
    for (const s of ['', 'a..b', '.a', 'a.', 'a b', 'a.>.b', '>.a']) {
      assert.throws(() => bus.subscribe(s, () => {}), InvalidSubjectError, `subscribe ${JSON.stringify(s)}`);
    }
    assert.throws(() => bus.subscribe('a', () => {}, { queue: 'q 1' }), /invalid queue group/);
    assert.throws(() => bus.subscribe('a', () => {}, { queue: '' }), /invalid queue group/);
    // and accepts the valid wildcard forms
    for (const s of ['*', '>', 'a.*.>', '*.*', 'a.b*c']) bus.subscribe(s, () => {}).unsubscribe();
    assert.equal(hub.subscriptionCount, 0, 'unsubscribe leaves nothing behind');
  });

  it('rejects an invalid request subject', async () => {
    const bus = hub.connect('r');
    assert.ok((await rejection(bus.request('a.*', new Uint8Array(), { timeoutMs: 10 }))) instanceof InvalidSubjectError);
  });

  it('honours a custom maxPayload', () => {
    const bus = hub.connect('m');
    assert.equal(bus.maxPayload, 100);
    bus.publish('m', new Uint8Array(100));
    assert.throws(() => bus.publish('m', new Uint8Array(101)), PayloadTooLargeError);
  });

  it('delivers asynchronously, never inside publish', async () => {
    const bus = hub.connect('async');
    let calls = 0;
    bus.subscribe('async.x', () => {
      calls++;
      // a handler that publishes must not recurse into itself
      if (calls < 3) bus.publish('async.x', new Uint8Array());
    });
    bus.publish('async.x', new Uint8Array());
    assert.equal(calls, 0);
    await waitFor('three deliveries', () => calls === 3);
  });

  it('gives every subscriber its own copy of the data', async () => {
    const bus = hub.connect('copy');
    const seen: string[] = [];
    bus.subscribe('copy.x', (m) => {
      m.data.fill(0); // a vandal
    });
    bus.subscribe('copy.x', (m) => seen.push(dec.decode(m.data)));
    bus.publish('copy.x', enc.encode('intact'));
    await waitFor('delivery', () => seen.length === 1);
    assert.deepEqual(seen, ['intact']);
  });

  it('rejects pending requests when the requesting connection closes', async () => {
    const [client, server] = [hub.connect('c'), hub.connect('s2')];
    server.subscribe('slow', () => {});
    const p = client.request('slow', new Uint8Array(), { timeoutMs: 5000 });
    await client.close();
    assert.ok((await rejection(p)) instanceof BusClosedError);
    await server.close();
  });

  it('reports handler exceptions to the hub onError by default', async () => {
    const errors: string[] = [];
    const h2 = createInProcessBus({ onError: (_e, s) => errors.push(s) });
    const bus = h2.connect();
    bus.subscribe('x.>', () => {
      throw new Error('nope');
    });
    bus.publish('x.y', new Uint8Array());
    await waitFor('the error report', () => errors.length === 1);
    assert.deepEqual(errors, ['x.y']);
    await h2.close();
  });
});

describe('NATS transport specifics', { skip: natsServerSkipReason() }, () => {
  it('fails to connect with a clear error naming the server', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const err = await rejection(connectNats({ servers: url, timeoutMs: 1000 }));
    assert.ok(err instanceof BusConnectError, `got ${String(err)}`);
    assert.match(err.message, new RegExp(`cannot connect to NATS at ${url}: .+\\. Is nats-server running\\? Set --nats or NATS_URL`));
  });

  it('refuses invalid subjects like the in-process bus, and reports status', async () => {
    const server = await startNatsServer();
    const statuses: string[] = [];
    const bus = await connectNats({
      servers: server.url,
      reconnectTimeWaitMs: 50,
      onStatus: (s) => statuses.push(s.type),
    });
    try {
      assert.equal(bus.kind, 'nats');
      assert.throws(() => bus.publish('a.*', new Uint8Array()), InvalidSubjectError);
      assert.throws(() => bus.subscribe('a..b', () => {}), InvalidSubjectError);
      server.kill();
      await waitFor('a disconnect status', () => statuses.includes('disconnect'), 3000);
    } finally {
      await bus.close();
      await server.stop();
    }
    assert.equal(bus.closed, true);
  });
});
