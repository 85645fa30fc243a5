// Issue 17, item 11: a blank node that accepted to join waits a bounded time (its join timeout) for
// the cluster's state. A large state streams for longer than that: while chunks keep arriving the
// join is alive; a transfer that truly stalls still ends, with an error that says so.
// In-process bus, real LMDB; the joiner's link is slowed (or cut) for snapshot chunks only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bus, BusMessage, InProcessBus } from '../../runtime/transport/index.ts';
import { waitUntil } from '../helpers/cli.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

const CHUNK = /"type":"snapshot-chunk"/;

/**
 * A bus on which the snapshot chunks addressed to `to` arrive one at a time, `everyMs` apart (a
 * slow link), and none after the first `upTo` (a stalled transfer). Everything else is untouched.
 */
function slowChunkLink(hub: InProcessBus, to: string, opts: { everyMs: number; upTo?: number }): InProcessBus & { chunksDelivered(): number } {
  let delivered = 0;
  const queue: Array<() => void> = [];
  let pumping = false;
  const pump = () => {
    const next = queue.shift();
    pumping = next !== undefined;
    if (!next) return;
    next();
    setTimeout(pump, opts.everyMs);
  };
  const slow = (handler: (msg: BusMessage) => void) => (msg: BusMessage) => {
    if (!CHUNK.test(Buffer.from(msg.data.buffer, msg.data.byteOffset, Math.min(msg.data.byteLength, 400)).toString('utf8'))) return handler(msg);
    if (opts.upTo !== undefined && delivered + queue.length >= opts.upTo) return; // the link stalls: dropped
    queue.push(() => {
      delivered++;
      handler(msg);
    });
    if (!pumping) {
      pumping = true;
      setTimeout(pump, opts.everyMs);
    }
  };
  return {
    kind: hub.kind,
    get maxPayload() {
      return hub.maxPayload;
    },
    get subscriptionCount() {
      return hub.subscriptionCount;
    },
    close: () => hub.close(),
    chunksDelivered: () => delivered,
    connect(name, connectOpts) {
      const bus = hub.connect(name, connectOpts);
      if (name !== to) return bus;
      const wrapped: Bus = Object.create(bus);
      wrapped.subscribe = (subject, handler, subOpts) => bus.subscribe(subject, subject.endsWith(`.node.${to}.peer`) ? slow(handler) : handler, subOpts);
      return wrapped;
    },
  };
}

/** `keys` values of `bytes` each */
async function fill(propose: (command: unknown) => Promise<unknown>, keys: number, bytes: number): Promise<void> {
  for (let i = 0; i < keys; i += 8) {
    const batch = [];
    for (let j = i; j < Math.min(keys, i + 8); j++) batch.push(propose({ op: 'put', key: `k${String(j).padStart(4, '0')}`, value: `${j}:`.padEnd(bytes, 'v') }));
    await Promise.all(batch);
  }
}

describe('a joining node and a large snapshot (item 11)', () => {
  const cluster = inProcessCluster('conclave-join-progress-');
  const { start, stop } = cluster;

  it('chunks that keep arriving keep the join alive past its timeout; the node becomes a voter', async () => {
    const a = await start('a1');
    await a.init();
    await a.waitForLeader();
    // 40 values of 100 KB: 40 chunks (a value each), one every 50 ms — twice the joiner's timeout of 1 s
    await fill((c) => a.memberRuntime().propose(c), 40, 100_000);
    const link = slowChunkLink(cluster.bus, 'j1', { everyMs: 50 });
    const j = await start('j1', { joinTimeoutMs: 1000, transport: { bus: link } });
    const phases: string[] = [];
    j.actor.subscribe((s) => {
      if (phases.at(-1) !== s.value) phases.push(String(s.value));
    });
    const t = Date.now();
    const added = await a.cluster.add('j1', { timeoutMs: 60_000 });
    const ms = Date.now() - t;
    process.stdout.write(`# join with progress: ${link.chunksDelivered()} chunks in ${ms} ms (join timeout 1000 ms), phases ${phases.join(' → ')}\n`);
    assert.equal(added.outcome, 'added');
    assert.ok(ms > 1000, `the transfer took longer than the join timeout (${ms} ms)`);
    // (contacted → uninitialized is the offer being recorded, before it is accepted)
    assert.deepEqual(phases.slice(phases.indexOf('joining')), ['joining', 'member'], 'the join never timed out');
    assert.equal(j.phase, 'member');
    assert.ok(a.status().members.some((m) => m.name === 'j1' && m.voter));
    assert.deepEqual(await j.memberRuntime().read({ op: 'get', key: 'k0039' }, { stale: true }), { key: 'k0039', found: true, value: '39:'.padEnd(100_000, 'v') });
    await stop(j);
    await stop(a);
  });

  it('a transfer that stalls ends the join after the timeout, with an error saying how much arrived', async () => {
    const a = await start('a2');
    await a.init();
    await a.waitForLeader();
    await fill((c) => a.memberRuntime().propose(c), 40, 100_000);
    const link = slowChunkLink(cluster.bus, 'j2', { everyMs: 50, upTo: 3 });
    const j = await start('j2', { joinTimeoutMs: 1000, transport: { bus: link } });
    const adding = a.cluster.add('j2', { timeoutMs: 4000 }).then(
      () => null,
      (err: unknown) => err as Error,
    );
    await waitUntil(() => j.actor.getSnapshot().context.error !== null, { what: 'the join of j2 ends', timeoutMs: 30_000 });
    const error = j.actor.getSnapshot().context.error!;
    process.stdout.write(`# stalled join: ${error.code}: ${error.message}\n`);
    assert.equal(error.code, 'TIMEOUT');
    assert.match(error.message, /3 chunks/);
    assert.match(error.message, /then nothing for 1000 ms/);
    assert.equal(j.status().clusterId, null, 'a blank node again: nothing of the cluster was written');
    const failed = await adding;
    assert.ok(failed instanceof Error, 'the add does not report success');
    await stop(j);
    await stop(a);
  });
});
