// The demo's partitions: a node cut off from the others neither sends nor receives (its requests and
// the requests to it go unanswered), except on the subjects that pass (its inspection stream); on
// reconnect everything flows again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withCutOff } from '../../runtime/transport/cutOff.ts';
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

describe('cutting a node off (in-process bus)', () => {
  it('drops its traffic both ways, lets the inspection stream through, and heals on reconnect', async () => {
    const bus = withCutOff(createInProcessBus(), (subject) => subject.startsWith('p.inspect.'));
    const a = bus.connect('a');
    const b = bus.connect('b');
    const page = bus.connect('inspector');
    const toA = inbox(a, 'p.a');
    const toB = inbox(b, 'p.b');
    const stream = inbox(page, 'p.inspect.a');

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

    bus.reconnect('a');
    a.publish('p.b', bytes('from a again'));
    assert.equal(text((await b.request('p.a', bytes('ask a again'), { timeoutMs: 5000 })).data), 're:ask a again');
    await waitUntil(() => toB.length === 1, { what: 'b hears a again' });
    assert.deepEqual(toB, ['from a again']);
    await bus.close();
  });
});
