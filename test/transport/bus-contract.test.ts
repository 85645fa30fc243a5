// One contract for every Bus: the in-process bus and real NATS must behave the same way. What only
// one of them does (subject checks, copies, connection errors) is in bus-specifics.test.ts.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  type Bus,
  BusClosedError,
  type BusMessage,
  createInProcessBus,
  connectNats,
  NoRespondersError,
  PayloadTooLargeError,
  RequestTimeoutError,
} from '../../runtime/transport/index.ts';
import { natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { enc, rejection, text, waitFor } from './busHelpers.ts';

type ErrorSink = (err: unknown, subject: string) => void;

interface Harness {
  connect(onError?: ErrorSink): Promise<Bus>;
  /** the payload limit the transport is expected to enforce */
  maxPayload: number;
  teardown(): Promise<void>;
}

function busContract(name: string, skip: string | false, setup: () => Promise<Harness>): void {
  describe(name, { skip }, () => {
    let h: Harness;
    let open: Bus[] = [];
    let seq = 0;
    // every test gets its own subject space, so a leftover from one test cannot satisfy another
    let prefix = '';
    const subj = (s: string) => `${prefix}.${s}`;
    const connect = async (onError?: ErrorSink) => {
      const bus = await h.connect(onError);
      open.push(bus);
      return bus;
    };
    /**
     * Everything `from` published before this call has been delivered to `to`'s handlers: one
     * connection's messages reach another connection in order, and the reply comes after them.
     */
    const barrier = async (from: Bus, to: Bus) => {
      const s = subj(`barrier${seq++}`);
      const sub = to.subscribe(s, (m) => m.respond(new Uint8Array()));
      await to.flush();
      await from.request(s, new Uint8Array(), { timeoutMs: 2000 });
      sub.unsubscribe();
    };

    before(async () => {
      h = await setup();
    });
    after(async () => {
      await h?.teardown();
    });
    afterEach(async () => {
      await Promise.all(open.map((b) => b.close()));
      open = [];
      prefix = `t${++seq}`;
    });
    prefix = `t${++seq}`;

    it('delivers to an exact subject and nothing else', async () => {
      const [pub, sub] = [await connect(), await connect()];
      const got: BusMessage[] = [];
      sub.subscribe(subj('a.b'), (m) => got.push(m));
      await sub.flush();
      pub.publish(subj('a.b'), enc.encode('hello'));
      pub.publish(subj('a.c'), enc.encode('other'));
      pub.publish(subj('a.b.c'), enc.encode('deeper'));
      pub.publish(subj('a'), enc.encode('shallower'));
      await barrier(pub, sub);
      assert.deepEqual(
        got.map((m) => [m.subject, text(m)]),
        [[subj('a.b'), 'hello']],
      );
      assert.equal(got[0]!.reply, undefined);
      assert.equal(got[0]!.respond(enc.encode('x')), false, 'a plain publish has nobody to answer');
    });

    it("matches '*' as exactly one token and '>' as one or more trailing tokens", async () => {
      const [pub, sub] = [await connect(), await connect()];
      const got = new Map<string, string[]>();
      for (const pattern of ['w.*.x', 'w.>', 'w.*', '*.a', 'w.*.>']) {
        got.set(pattern, []);
        sub.subscribe(subj(pattern), (m) => got.get(pattern)!.push(m.subject.slice(prefix.length + 1)));
      }
      await sub.flush();
      for (const s of ['w', 'w.a', 'w.a.x', 'w.a.b.x', 'w.a.x.y']) pub.publish(subj(s), enc.encode(s));
      await barrier(pub, sub);
      assert.deepEqual(Object.fromEntries(got), {
        'w.*.x': ['w.a.x'],
        'w.>': ['w.a', 'w.a.x', 'w.a.b.x', 'w.a.x.y'], // not 'w': '>' needs at least one token
        'w.*': ['w.a'],
        '*.a': ['w.a'],
        'w.*.>': ['w.a.x', 'w.a.b.x', 'w.a.x.y'],
      });
    });

    it('splits a queue group: each message to exactly one member, all to plain subscribers', async () => {
      const [pub, s1, s2] = [await connect(), await connect(), await connect()];
      const members: number[][] = [[], [], []];
      const plain: number[] = [];
      const s = subj('jobs');
      s1.subscribe(s, (m) => members[0]!.push(m.data[0]!), { queue: 'workers' });
      s1.subscribe(s, (m) => members[1]!.push(m.data[0]!), { queue: 'workers' });
      s2.subscribe(s, (m) => members[2]!.push(m.data[0]!), { queue: 'workers' });
      s2.subscribe(s, (m) => plain.push(m.data[0]!));
      await Promise.all([s1.flush(), s2.flush()]);
      const n = 120;
      for (let i = 0; i < n; i++) pub.publish(s, new Uint8Array([i]));
      await waitFor('all messages', () => plain.length === n && members.flat().length >= n);
      await barrier(pub, s1);
      await barrier(pub, s2);
      const all = members.flat().sort((a, b) => a - b);
      assert.deepEqual(all, [...Array(n).keys()], 'each message reached exactly one group member');
      for (const [i, got] of members.entries()) assert.ok(got.length > 0, `member ${i} got no message`);
      assert.deepEqual(plain, [...Array(n).keys()]);
    });

    it('round-trips a request to a responder', async () => {
      const [client, server] = [await connect(), await connect()];
      let seenReply: string | undefined;
      server.subscribe(subj('echo'), (m) => {
        seenReply = m.reply;
        assert.equal(m.respond(enc.encode(`echo:${text(m)}`)), true);
      });
      await server.flush();
      const reply = await client.request(subj('echo'), enc.encode('ping'), { timeoutMs: 2000 });
      assert.equal(text(reply), 'echo:ping');
      assert.ok(seenReply && seenReply.length > 0, 'the request carried a reply subject');
      assert.equal(reply.subject, seenReply);
      // several in flight at once are matched to the right callers
      const replies = await Promise.all(
        ['a', 'b', 'c', 'd'].map((x) => client.request(subj('echo'), enc.encode(x), { timeoutMs: 2000 })),
      );
      assert.deepEqual(replies.map(text), ['echo:a', 'echo:b', 'echo:c', 'echo:d']);
    });

    it('with `accept`, passes over the replies it refuses and takes a later one; none taken is a timeout', async () => {
      const [client, server, other] = [await connect(), await connect(), await connect()];
      // the first to answer (another connection: whoever may subscribe there) is not the one taken
      other.subscribe(subj('many'), (m) => void m.respond(enc.encode('forged')));
      server.subscribe(subj('many'), (m) => {
        m.respond(enc.encode('forged'));
        m.respond(enc.encode(`real:${text(m)}`));
      });
      await Promise.all([server.flush(), other.flush()]);
      const passedOver: string[] = [];
      const accept = (r: BusMessage) => {
        if (text(r).startsWith('real:')) return true;
        passedOver.push(text(r));
        return false;
      };
      const reply = await client.request(subj('many'), enc.encode('ping'), { timeoutMs: 5000, accept });
      assert.equal(text(reply), 'real:ping');
      assert.ok(passedOver.length >= 1 && passedOver.every((t) => t === 'forged'), JSON.stringify(passedOver));
      const none = await rejection(client.request(subj('many'), enc.encode('?'), { timeoutMs: 150, accept: () => false }));
      assert.ok(none instanceof RequestTimeoutError, `got ${String(none)}`);
      assert.ok((await rejection(client.request(subj('nobody'), enc.encode('?'), { timeoutMs: 2000, accept: () => true }))) instanceof NoRespondersError);
    });

    it('times out a request nobody answers with RequestTimeoutError naming the subject', async () => {
      const [client, server] = [await connect(), await connect()];
      let received = 0;
      server.subscribe(subj('silent'), () => {
        received++;
      });
      await server.flush();
      const t0 = Date.now();
      const err = await rejection(client.request(subj('silent'), enc.encode('?'), { timeoutMs: 150 }));
      const elapsed = Date.now() - t0;
      assert.ok(err instanceof RequestTimeoutError, `got ${String(err)}`);
      assert.equal(err.subject, subj('silent'));
      assert.equal(err.timeoutMs, 150);
      assert.equal(err.code, 'TIMEOUT');
      assert.ok(elapsed >= 140, `timed out too early (${elapsed} ms)`);
      assert.equal(received, 1, 'the listener did get the request');
    });

    it('rejects at once with NoRespondersError when nothing listens', async () => {
      const client = await connect();
      const t0 = Date.now();
      const err = await rejection(client.request(subj('nobody.home'), enc.encode('?'), { timeoutMs: 3000 }));
      const elapsed = Date.now() - t0;
      assert.ok(err instanceof NoRespondersError, `got ${String(err)}`);
      assert.ok(!(err instanceof RequestTimeoutError));
      assert.equal(err.subject, subj('nobody.home'));
      assert.equal(err.code, 'NO_RESPONDERS');
      assert.ok(elapsed < 1000, `no-responders should not wait for the timeout (${elapsed} ms)`);
    });

    it('stops delivery after unsubscribe', async () => {
      const [pub, sub] = [await connect(), await connect()];
      const got: string[] = [];
      const s = sub.subscribe(subj('u'), (m) => got.push(text(m)));
      assert.equal(s.subject, subj('u'));
      await sub.flush();
      pub.publish(subj('u'), enc.encode('1'));
      await barrier(pub, sub);
      s.unsubscribe();
      await sub.flush();
      pub.publish(subj('u'), enc.encode('2'));
      await barrier(pub, sub);
      s.unsubscribe(); // idempotent
      assert.deepEqual(got, ['1']);
    });

    it('keeps per-subscription order for 1000 messages', async () => {
      const [pub, sub] = [await connect(), await connect()];
      const exact: number[] = [];
      const wild: number[] = [];
      const idx = (m: BusMessage) => new DataView(m.data.buffer, m.data.byteOffset, 4).getUint32(0);
      sub.subscribe(subj('ord.x'), (m) => exact.push(idx(m)));
      sub.subscribe(subj('ord.*'), (m) => wild.push(idx(m)));
      await sub.flush();
      const buf = new Uint8Array(64);
      for (let i = 0; i < 1000; i++) {
        new DataView(buf.buffer).setUint32(0, i);
        pub.publish(subj('ord.x'), buf); // reusing the buffer is allowed: the bus copies
      }
      await waitFor('1000 messages', () => exact.length === 1000 && wild.length === 1000);
      const expected = [...Array(1000).keys()];
      assert.deepEqual(exact, expected);
      assert.deepEqual(wild, expected);
    });

    it('does not let a publisher mutate what a subscriber got', async () => {
      const [pub, sub] = [await connect(), await connect()];
      const got: string[] = [];
      sub.subscribe(subj('imm'), (m) => got.push(text(m)));
      await sub.flush();
      const buf = enc.encode('original');
      pub.publish(subj('imm'), buf);
      buf.set(enc.encode('MUTATED!'));
      await barrier(pub, sub);
      assert.deepEqual(got, ['original']);
    });

    it('survives a throwing handler and reports the exception', async () => {
      const errors: Array<[unknown, string]> = [];
      const [pub, sub] = [await connect(), await connect((err, s) => errors.push([err, s]))];
      const got: string[] = [];
      sub.subscribe(subj('boom'), (m) => {
        got.push(text(m));
        if (text(m) !== 'fine') throw new Error(`handler failed on ${text(m)}`);
      });
      await sub.flush();
      pub.publish(subj('boom'), enc.encode('bad1'));
      pub.publish(subj('boom'), enc.encode('fine'));
      pub.publish(subj('boom'), enc.encode('bad2'));
      await barrier(pub, sub);
      assert.deepEqual(got, ['bad1', 'fine', 'bad2']);
      assert.equal(errors.length, 2);
      assert.match(String(errors[0]![0]), /handler failed on bad1/);
      assert.equal(errors[0]![1], subj('boom'));
      // the connection still works for requests too
      sub.subscribe(subj('after'), (m) => m.respond(enc.encode('ok')));
      await sub.flush();
      assert.equal(text(await pub.request(subj('after'), new Uint8Array(), { timeoutMs: 2000 })), 'ok');
    });

    it("closing one connection leaves another connection's subscriptions alone", async () => {
      const [pub, a, b] = [await connect(), await connect(), await connect()];
      const gotA: string[] = [];
      const gotB: string[] = [];
      a.subscribe(subj('shared'), (m) => gotA.push(text(m)));
      b.subscribe(subj('shared'), (m) => gotB.push(text(m)));
      b.subscribe(subj('svc'), (m) => m.respond(enc.encode('b answers')));
      await Promise.all([a.flush(), b.flush()]);
      await a.close();
      assert.equal(a.closed, true);
      assert.equal(b.closed, false);
      await a.close(); // idempotent
      pub.publish(subj('shared'), enc.encode('after close'));
      await barrier(pub, b);
      assert.deepEqual(gotA, []);
      assert.deepEqual(gotB, ['after close']);
      assert.equal(text(await pub.request(subj('svc'), new Uint8Array(), { timeoutMs: 2000 })), 'b answers');
      // the closed connection refuses further use with BusClosedError
      assert.throws(() => a.publish(subj('shared'), new Uint8Array()), BusClosedError);
      assert.throws(() => a.subscribe(subj('shared'), () => {}), BusClosedError);
      assert.ok((await rejection(a.request(subj('svc'), new Uint8Array(), { timeoutMs: 100 }))) instanceof BusClosedError);
    });

    it('rejects a payload over the limit and accepts one at the limit', async () => {
      const [pub, sub] = [await connect(), await connect()];
      assert.equal(pub.maxPayload, h.maxPayload);
      const sizes: number[] = [];
      sub.subscribe(subj('big'), (m) => sizes.push(m.data.byteLength));
      await sub.flush();
      const tooBig = new Uint8Array(h.maxPayload + 1);
      assert.throws(
        () => pub.publish(subj('big'), tooBig),
        (err: unknown) =>
          err instanceof PayloadTooLargeError &&
          err.size === h.maxPayload + 1 &&
          err.maxPayload === h.maxPayload &&
          err.subject === subj('big'),
      );
      const reqErr = await rejection(pub.request(subj('big'), tooBig, { timeoutMs: 1000 }));
      assert.ok(reqErr instanceof PayloadTooLargeError, `got ${String(reqErr)}`);
      pub.publish(subj('big'), new Uint8Array(h.maxPayload));
      await barrier(pub, sub);
      assert.deepEqual(sizes, [h.maxPayload]);
      // the connection survives the refused publish
      assert.equal(pub.closed, false);
    });
  });
}

busContract('Bus contract: in-process', false, async () => {
  const hub = createInProcessBus();
  return {
    connect: async (onError) => hub.connect(undefined, { onError }),
    maxPayload: 1024 * 1024,
    teardown: () => hub.close(),
  };
});

busContract('Bus contract: NATS', natsServerSkipReason(), async () => {
  const server = await startNatsServer();
  return {
    connect: (onError) => connectNats({ servers: server.url, name: 'contract-test', onError }),
    maxPayload: 1024 * 1024, // nats-server's default max_payload
    teardown: () => server.stop(),
  };
});
