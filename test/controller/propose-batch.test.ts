// Proposals a client has in flight to one node leave as `propose.batch` requests (runtime/adminClient.ts):
// one envelope and one authentication for several commands, each still its own log entry with its
// own answer or error. A node that does not know batches (an older release) gets them one by one.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AdminServer, adminCall } from '../../runtime/admin.ts';
import type { Controller } from '../../runtime/controller.ts';
import { silentLogger } from '../../runtime/log/logger.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { encode, type Sender } from '../../runtime/wire/codec.ts';
import { MAX_PROPOSE_BATCH } from '../../runtime/wire/adminProtocol.ts';
import { MAX_VALUE_DEPTH } from '../../runtime/wire/limits.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';

const CLI: Sender = { name: 'cli', nodeId: null, clusterId: null };
const nested = (depth: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
const put = (key: string, value: unknown) => ({ command: { op: 'put', key, value } });

/** the admin request types seen on `subject` (a spy on the bus) */
function requestTypes(bus: { connect(name: string): { subscribe(subject: string, cb: (m: { data: Uint8Array }) => void): unknown } }, subject: string): string[] {
  const seen: string[] = [];
  bus.connect('spy').subscribe(subject, (m) => {
    seen.push(/"type":"([^"]+)"/.exec(new TextDecoder().decode(m.data))?.[1] ?? '(none)');
  });
  return seen;
}

describe('proposals in flight travel in batches', () => {
  const cluster = inProcessCluster('conclave-propose-batch-', { maxPayload: 16 * 1024 });
  let n1: Controller;
  /** what the leader holds at `key` */
  const stored = async (key: string) => {
    const got = (await n1.read({ op: 'get', key })) as { found: boolean; value?: unknown };
    return got.found ? { found: true, value: got.value } : { found: false };
  };
  before(async () => {
    n1 = await cluster.start('n1');
    await n1.init();
    await n1.waitForLeader(30_000);
    await cluster.start('n2');
    await n1.add('n2', { timeoutMs: 30_000 });
  });

  it('40 puts in flight: fewer requests than puts, each put answered on its own, every value stored', async () => {
    const seen = requestTypes(cluster.bus, 'conclave.node.n1.admin');
    const client = cluster.bus.connect('client');
    // each call with a sender of its own, equal in every field (as a caller that builds it per call passes it)
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => adminCall(client, 'conclave', 'n1', { ...CLI }, 'propose', put(`b/${i}`, i), 10_000)));
    assert.equal(replies.length, 40);
    assert.ok(seen.includes('propose.batch'), `requests seen: ${seen.join(' ')}`);
    assert.ok(seen.length < 40, `${seen.length} requests for 40 puts: ${seen.join(' ')}`);
    for (let i = 0; i < 40; i++) assert.deepEqual(await stored(`b/${i}`), { found: true, value: i });
    await client.close();
  });

  it('a refused command in a batch fails alone: the others are stored, the refused one gets its own error', async () => {
    const client = cluster.bus.connect('client');
    const results = await Promise.allSettled([
      adminCall(client, 'conclave', 'n1', CLI, 'propose', put('mixed/a', 1), 10_000),
      adminCall(client, 'conclave', 'n1', CLI, 'propose', { command: { op: 'put', key: '', value: 2 } }, 10_000),
      adminCall(client, 'conclave', 'n1', CLI, 'propose', put('mixed/c', 3), 10_000),
      // nested deeper than a value may be (MAX_VALUE_DEPTH): refused as alone
      adminCall(client, 'conclave', 'n1', CLI, 'propose', put('mixed/e', nested(MAX_VALUE_DEPTH + 1)), 10_000),
      // larger than one command may be (the bus carries 16 KiB here): COMMAND_TOO_LARGE, the others untouched
      adminCall(client, 'conclave', 'n1', CLI, 'propose', put('mixed/d', 'x'.repeat(15 * 1024)), 10_000),
    ]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[2]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'BAD_REQUEST', String((results[1] as PromiseRejectedResult).reason));
    assert.equal(results[4]!.status, 'rejected');
    assert.ok(['COMMAND_TOO_LARGE', 'MAX_PAYLOAD'].includes((results[4] as PromiseRejectedResult).reason.code), String((results[4] as PromiseRejectedResult).reason));
    assert.deepEqual(await stored('mixed/a'), { found: true, value: 1 });
    assert.deepEqual(await stored('mixed/c'), { found: true, value: 3 });
    assert.deepEqual(await stored('mixed/d'), { found: false });
    assert.equal(results[3]!.status, 'rejected');
    assert.match(String((results[3] as PromiseRejectedResult).reason), /nests arrays\/objects more than 64 levels deep/);
    assert.deepEqual(await stored('mixed/e'), { found: false });
    await client.close();
  });

  it('a batch larger than the bus carries is split until each part fits; every put is stored', async () => {
    const seen = requestTypes(cluster.bus, 'conclave.node.n1.admin');
    const client = cluster.bus.connect('client');
    // 12 values of 3 KiB: 36 KiB together, more than twice the bus's 16 KiB
    await Promise.all(Array.from({ length: 12 }, (_, i) => adminCall(client, 'conclave', 'n1', CLI, 'propose', put(`big/${i}`, 'v'.repeat(3 * 1024)), 10_000)));
    for (let i = 0; i < 12; i++) assert.deepEqual(await stored(`big/${i}`), { found: true, value: 'v'.repeat(3 * 1024) });
    assert.ok(seen.includes('propose.batch'), `requests seen: ${seen.join(' ')}`);
    await client.close();
  });

  it('a batch sent to a follower is forwarded to the leader as a batch, and answered put by put', async () => {
    const seen = requestTypes(cluster.bus, 'conclave.node.n1.admin');
    const client = cluster.bus.connect('client');
    await Promise.all(Array.from({ length: 8 }, (_, i) => adminCall(client, 'conclave', 'n2', CLI, 'propose', put(`fwd/${i}`, i), 10_000)));
    for (let i = 0; i < 8; i++) assert.deepEqual(await stored(`fwd/${i}`), { found: true, value: i });
    assert.ok(seen.includes('propose.batch'), `the leader was asked: ${seen.join(' ')}`);
    await client.close();
  });

  it('more commands than a batch may carry is refused at the door (BAD_REQUEST), and none is proposed', async () => {
    const client = cluster.bus.connect('client');
    const commands = Array.from({ length: MAX_PROPOSE_BATCH + 1 }, (_, i) => ({ op: 'put', key: `over/${i}`, value: i }));
    const reply = await client.request('conclave.node.n1.admin', encode(CLI, 'propose.batch', { commands }), { timeoutMs: 10_000 });
    assert.match(new TextDecoder().decode(reply.data), /"code":"BAD_REQUEST"/);
    assert.deepEqual(await stored('over/0'), { found: false });
    await client.close();
  });
});

describe('a batch over the largest message any bus carries (1 MiB)', () => {
  const cluster = inProcessCluster('conclave-propose-batch-big-');
  it('is split by its size: 6 puts of 300 KB in flight all commit', async () => {
    const n1 = await cluster.start('b1');
    await n1.init();
    await n1.waitForLeader(30_000);
    const seen = requestTypes(cluster.bus, 'conclave.node.b1.admin');
    const client = cluster.bus.connect('client');
    const value = 'w'.repeat(300 * 1024);
    await Promise.all(Array.from({ length: 6 }, (_, i) => adminCall(client, 'conclave', 'b1', CLI, 'propose', put(`huge/${i}`, value), 30_000)));
    for (let i = 0; i < 6; i++) assert.equal(((await n1.read({ op: 'get', key: `huge/${i}` })) as { value?: unknown }).value, value);
    assert.ok(seen.length >= 2 && seen.length < 6, `requests seen: ${seen.join(' ')}`);
    await client.close();
  });
});

describe('a node that does not know batches (an older release)', () => {
  it('gets the proposals one by one, and the client does not ask it for a batch again', async () => {
    const hub = createInProcessBus();
    const proposed: unknown[] = [];
    const server = new AdminServer(
      hub.connect('old'),
      'p.node.old.admin',
      {
        propose: async (body) => {
          proposed.push(body.command);
          return { index: proposed.length };
        },
      },
      silentLogger(),
    );
    const seen = requestTypes(hub, 'p.node.old.admin');
    const client = hub.connect('client');
    try {
      await server.start();
      const first = await Promise.all([1, 2, 3].map((i) => adminCall(client, 'p', 'old', CLI, 'propose', put(`k${i}`, i), 5000)));
      assert.deepEqual(
        first.map((r) => (r as { index: number }).index).sort(),
        [1, 2, 3],
      );
      const second = await Promise.all([4, 5].map((i) => adminCall(client, 'p', 'old', CLI, 'propose', put(`k${i}`, i), 5000)));
      assert.equal(second.length, 2);
      assert.equal(proposed.length, 5, 'each command proposed once');
      assert.deepEqual(seen, ['propose.batch', 'propose', 'propose', 'propose', 'propose', 'propose'], 'one batch tried, refused, then one by one');
      assert.equal(server.dropped.get('unknown-type') ?? [...server.dropped.values()].reduce((a, b) => a + b, 0), 1, `dropped: ${JSON.stringify([...server.dropped])}`);
    } finally {
      await server.stop();
      await client.close();
    }
  });
});
