// The demo's partitions: a node cut off from the others neither sends nor receives (its requests and
// the requests to it go unanswered), except on the subjects that pass (its inspection stream); on
// reconnect everything flows again, and what was lost each way is counted. A paused node's traffic is held both ways and flows on resume.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CutOffBus, MAX_HELD, withCutOff } from '../../runtime/transport/cutOff.ts';
import { createInProcessBus } from '../../runtime/transport/inProcess.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { waitUntil } from '../helpers/cli.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function inbox(bus: Bus, subject: string): string[] {
  const got: string[] = [];
  bus.subscribe(subject, (msg) => {
    got.push(text(msg.data));
    if (msg.reply) msg.respond(bytes(`re:${text(msg.data)}`));
  });
  return got;
}

/** nodes a and b, and the page watching a's inspection stream */
function nodesAandB(bus: CutOffBus) {
  const a = bus.connect('a');
  const b = bus.connect('b');
  const page = bus.connect('inspector');
  return { a, b, toA: inbox(a, 'p.a'), toB: inbox(b, 'p.b'), stream: inbox(page, 'p.inspect.a') };
}

/** the in-process bus delivers in one FIFO: once a message published now arrives, all before it have */
async function delivered(bus: CutOffBus): Promise<void> {
  const probe = bus.connect();
  let seen = false;
  probe.subscribe('p.probe', () => (seen = true));
  probe.publish('p.probe', bytes('probe'));
  await waitUntil(() => seen, { what: 'the bus delivered what was published before' });
  await probe.close();
}

describe('cutting a node off (in-process bus)', () => {
  it('drops its traffic both ways, lets the inspection stream through, and heals on reconnect', async () => {
    const bus = withCutOff(createInProcessBus(), (subject) => subject.startsWith('p.inspect.'));
    const { a, b, toA, toB, stream } = nodesAandB(bus);

    bus.cutOff('a');
    assert.equal(bus.isCutOff('a'), true);
    assert.equal(a.state().connected, false, 'a says it is not connected');
    a.publish('p.b', bytes('from a'));
    b.publish('p.a', bytes('from b'));
    a.publish('p.inspect.a', bytes('chart of a'));
    await assert.rejects(a.request('p.b', bytes('ask b'), { timeoutMs: 50 }), { code: 'TIMEOUT' });
    await assert.rejects(b.request('p.a', bytes('ask a'), { timeoutMs: 50 }), { code: 'TIMEOUT' });
    await waitUntil(() => stream.length === 1, { what: "a's inspection stream" });
    await a.flush();
    await b.flush();
    assert.deepEqual(toA, [], 'nothing reached a');
    assert.deepEqual(toB, [], 'nothing from a reached b');
    assert.deepEqual(stream, ['chart of a']);
    // counted each way: its publish and its request; b's publish and b's request to it (the inspection stream is not lost)
    assert.deepEqual({ sent: bus.lost('a')?.sent, received: bus.lost('a')?.received }, { sent: 2, received: 2 });
    assert.equal(bus.lost('b'), null, 'b is not cut off');

    const lost = bus.reconnect('a');
    assert.deepEqual({ sent: lost.sent, received: lost.received }, { sent: 2, received: 2 }, 'reconnect says what was lost');
    assert.equal(bus.lost('a'), null);
    a.publish('p.b', bytes('from a again'));
    assert.equal(text((await b.request('p.a', bytes('ask a again'), { timeoutMs: 5000 })).data), 're:ask a again');
    await waitUntil(() => toB.length === 1, { what: 'b hears a again' });
    assert.deepEqual(toB, ['from a again']);
    await bus.close();
  });

  it('a paused node: what it sends and what it is sent is held, in order, and flows on resume', async () => {
    const errors: string[] = [];
    const hub = createInProcessBus({ onError: (err, subject) => errors.push(`${subject}: ${(err as Error).message}`) });
    const bus = withCutOff(hub, (subject) => subject.startsWith('p.inspect.'));
    const { a, b, toA, toB, stream } = nodesAandB(bus);
    const gone = a.subscribe('p.gone', () => errors.push('an unsubscribed handler ran'));

    bus.pause('a');
    assert.equal(bus.isPaused('a'), true);
    a.publish('p.b', bytes('a1'));
    a.publish('p.inspect.a', bytes('chart of a'));
    b.publish('p.a', bytes('b1'));
    b.publish('p.gone', bytes('to a handler that goes away'));
    await delivered(bus);
    gone.unsubscribe();
    b.publish('p.a', bytes('b2'));
    // a request to a paused node is not answered while it is paused (the asker times out, as with SIGSTOP)
    await assert.rejects(b.request('p.a', bytes('ask a'), { timeoutMs: 50 }), { code: 'TIMEOUT' });
    // a's own request waits for the resume
    let answered: string | null = null;
    const asked = a.request('p.b', bytes('a asks b'), { timeoutMs: 5000 }).then((m) => (answered = text(m.data)));
    await delivered(bus);
    assert.deepEqual(toA, [], 'nothing handled while paused');
    assert.deepEqual(toB, [], 'nothing sent while paused');
    assert.deepEqual(stream, [], 'not even its inspection stream: a stopped process writes nothing');
    assert.equal(answered, null);

    const held = bus.resume('a');
    assert.equal(bus.isPaused('a'), false);
    assert.deepEqual({ sent: held.sent, delivered: held.delivered, dropped: held.dropped }, { sent: 2, delivered: 4, dropped: 0 });
    await asked;
    await waitUntil(() => toB.length === 2 && stream.length === 1, { what: "a's held messages" });
    assert.deepEqual(toA, ['b1', 'b2', 'ask a'], 'what it was sent, in order (the stale request too)');
    assert.deepEqual(toB, ['a1', 'a asks b']);
    assert.equal(answered, 're:a asks b');
    assert.deepEqual(errors, []);
    await bus.close();
  });

  it('a paused node holds at most MAX_HELD messages each way; the rest are dropped and counted', async () => {
    const bus = withCutOff(createInProcessBus(), () => false);
    const a = bus.connect('a');
    const b = bus.connect('b');
    const toA = inbox(a, 'p.a');
    bus.pause('a');
    for (let i = 0; i < MAX_HELD + 5; i++) b.publish('p.a', bytes(String(i)));
    await delivered(bus);
    const held = bus.resume('a');
    assert.deepEqual({ delivered: held.delivered, dropped: held.dropped }, { delivered: MAX_HELD, dropped: 5 });
    assert.equal(toA.length, MAX_HELD);
    assert.equal(toA.at(-1), String(MAX_HELD - 1), 'the newest are the ones dropped, as a full buffer refuses more');
    await bus.close();
  });
});
