// The simulator's bus keeps RequestOptions.accept as the real buses do (test/transport/bus-contract.test.ts):
// an answer the requester passes over leaves the request waiting for another, until its timeout. The
// join handshakes rely on it (an answer that does not prove the join secret is not the node's).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestTimeoutError } from '../../runtime/transport/types.ts';
import { type Delivery, type NetworkWorld, SimBus, SimNetwork } from './bus.ts';
import { SimClock } from './clock.ts';

/** a world without faults: every message takes 1 ms, events run in time order */
function world(): { network: SimNetwork; clock: SimClock; run(): Promise<void> } {
  let now = 0;
  const queue: Array<{ time: number; seq: number; fire: () => void }> = [];
  let seq = 0;
  const at = (time: number, fire: () => void) => queue.push({ time, seq: seq++, fire });
  let network: SimNetwork;
  const w: NetworkWorld = {
    prefix: 'p',
    maxPayload: 1024 * 1024,
    nodeIdOf: () => null,
    senderLineage: () => null,
    lost: () => false,
    cut: () => false,
    delay: () => 1,
    duplicate: () => false,
    scheduleDelivery: (time: number, d: Delivery) => at(time, () => void network.deliver(d)),
    later: (ms, fire) => at(now + ms, fire),
    now: () => now,
    tooLarge: () => {},
    delivering: () => {},
    handlerThrew: (_d, err) => {
      throw err;
    },
  };
  network = new SimNetwork(w);
  const clock = new SimClock({ now: () => now, at });
  return {
    network,
    clock,
    async run() {
      while (queue.length > 0) {
        queue.sort((a, b) => a.time - b.time || a.seq - b.seq);
        const next = queue.shift()!;
        now = next.time;
        next.fire();
        await Promise.resolve();
      }
    },
  };
}

const text = (d: Uint8Array) => new TextDecoder().decode(d);

test('a broadcast request with accept: the first answer passed over, the one it takes is returned', async () => {
  const { network, clock, run } = world();
  const asker = new SimBus(network, clock, 'asker', 1024 * 1024);
  // two processes answer on the broadcast subject: a forger at once, the real one later
  new SimBus(network, clock, 'forger', 1024 * 1024).subscribe('p.discover', (m) => void m.respond(new TextEncoder().encode('forged')));
  const real = new SimBus(network, clock, 'real', 1024 * 1024);
  real.subscribe('p.discover', (m) => clock.setTimeout(() => void m.respond(new TextEncoder().encode('real')), 5));
  const passedOver: string[] = [];
  const asked = asker.request('p.discover', new Uint8Array(), {
    timeoutMs: 100,
    accept: (reply) => {
      if (text(reply.data) === 'real') return true;
      passedOver.push(text(reply.data));
      return false;
    },
  });
  await run();
  assert.equal(text((await asked).data), 'real');
  assert.deepEqual(passedOver, ['forged']);
});

test('a request whose every answer is passed over times out', async () => {
  const { network, clock, run } = world();
  const asker = new SimBus(network, clock, 'asker', 1024 * 1024);
  new SimBus(network, clock, 'forger', 1024 * 1024).subscribe('p.discover', (m) => void m.respond(new TextEncoder().encode('forged')));
  const asked = asker.request('p.discover', new Uint8Array(), { timeoutMs: 50, accept: () => false });
  const outcome = asked.then(
    () => 'answered',
    (err) => err,
  );
  await run();
  assert.ok((await outcome) instanceof RequestTimeoutError, String(await outcome));
});
