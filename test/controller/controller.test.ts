// startController on the in-process bus with real LMDB stores: bootstrap, restart, initFrom,
// refusals, and malformed input on the node's subjects.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isUuid } from '../../machines/identity/index.ts';
import { type Controller, startController } from '../../runtime/controller.ts';
import { ConclaveError } from '../../runtime/errors.ts';
import { createInProcessBus, type InProcessBus } from '../../runtime/transport/index.ts';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';

let dir: string;
let bus: InProcessBus;
const started: Controller[] = [];
const FAST = { heartbeatMs: 10, electionTimeoutMs: 50 };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conclave-ctrl-'));
  bus = createInProcessBus();
});
after(async () => {
  for (const c of started) await c.stop();
  await bus.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(name: string, extra: Partial<Parameters<typeof startController>[0]> = {}): Promise<Controller> {
  const c = await startController({ name, dataDir: join(dir, name), transport: { bus }, raft: FAST, ...extra });
  started.push(c);
  return c;
}

async function stop(c: Controller): Promise<void> {
  await c.stop();
  started.splice(started.indexOf(c), 1);
}

async function ask(name: string, type: string, body: unknown = {}): Promise<ReturnType<typeof decodeReply>> {
  const conn = bus.connect('test-client');
  try {
    const reply = await conn.request(`conclave.node.${name}.admin`, encode({ name: 'cli', nodeId: null, clusterId: null }, type, body), { timeoutMs: 2000 });
    return decodeReply(reply.data);
  } finally {
    await conn.close();
  }
}

describe('controller bootstrap', () => {
  it('a blank node is uninitialized with no cluster id, and answers status', async () => {
    const c = await start('blank1');
    const s = c.status();
    assert.equal(s.phase, 'uninitialized');
    assert.equal(s.clusterId, null);
    assert.equal(s.role, 'none');
    assert.ok(isUuid(s.nodeId));
    const reply = await ask('blank1', 'status');
    assert.ok(reply.ok);
    assert.deepEqual(reply.ok && reply.body, JSON.parse(JSON.stringify(s)));
  });

  it('init makes a one-member cluster led by the node; a second init is refused naming the id', async () => {
    const c = await start('solo1');
    const clusterId = await c.init();
    assert.ok(isUuid(clusterId));
    await c.waitForLeader();
    const s = c.status();
    assert.equal(s.phase, 'member');
    assert.equal(s.role, 'leader');
    assert.equal(s.leader, 'solo1');
    assert.equal(s.clusterId, clusterId);
    assert.deepEqual(s.members.map((m) => [m.name, m.voter, m.leader, m.reachable]), [['solo1', true, true, true]]);
    await assert.rejects(c.init(), (err: unknown) => err instanceof ConclaveError && err.code === 'ALREADY_INITIALIZED' && err.message.includes(clusterId));
    const reply = await ask('solo1', 'init');
    assert.ok(!reply.ok && reply.error.code === 'ALREADY_INITIALIZED' && reply.error.message.includes(clusterId));
  });

  it('a restart keeps node id, cluster id, phase and data', async () => {
    let c = await start('keep1');
    const clusterId = await c.init();
    await c.waitForLeader();
    const nodeId = c.status().nodeId;
    await c.memberRuntime().propose({ op: 'put', key: 'k', value: { n: 1 } });
    const termBefore = c.status().term;
    await stop(c);
    c = await start('keep1');
    assert.equal(c.status().nodeId, nodeId);
    assert.equal(c.status().clusterId, clusterId);
    assert.equal(c.phase, 'member');
    await c.waitForLeader();
    assert.ok(c.status().term > termBefore, 'a new election after restart uses a higher, persisted term');
    assert.deepEqual(await c.memberRuntime().read({ op: 'get', key: 'k' }), { key: 'k', found: true, value: { n: 1 } });
  });

  it('initFrom imports a seed once: the restart does not import again', async () => {
    const seed = join(dir, 'seed.json');
    await writeFile(seed, JSON.stringify({ kv: { region: 'eu', limits: { max: 3 } } }));
    let c = await start('seeded1', { initFrom: seed });
    assert.equal(c.phase, 'member');
    await c.waitForLeader();
    const m = c.memberRuntime();
    assert.deepEqual(await m.read({ op: 'get', key: 'limits' }), { key: 'limits', found: true, value: { max: 3 } });
    await m.propose({ op: 'put', key: 'region', value: 'us' });
    const clusterId = c.status().clusterId;
    await stop(c);
    // the seed changes on disk; a restart must neither re-import nor change the cluster id
    await writeFile(seed, JSON.stringify({ kv: { region: 'ap', extra: true } }));
    c = await start('seeded1', { initFrom: seed });
    await c.waitForLeader();
    assert.equal(c.status().clusterId, clusterId);
    assert.deepEqual(await c.memberRuntime().read({ op: 'get', key: 'region' }), { key: 'region', found: true, value: 'us' });
    assert.deepEqual(await c.memberRuntime().read({ op: 'get', key: 'extra' }), { key: 'extra', found: false, value: null });
  });

  it('a bad initFrom source fails start with BAD_INIT_SOURCE and leaves the store blank', async () => {
    const seed = join(dir, 'bad-seed.json');
    await writeFile(seed, '{"kv": {}}');
    await assert.rejects(start('badseed1', { initFrom: seed }), (err: unknown) => (err as ConclaveError).code === 'BAD_INIT_SOURCE');
    const c = await start('badseed1');
    assert.equal(c.status().clusterId, null);
    assert.equal(c.phase, 'uninitialized');
  });

  it('a second controller on the same data dir is refused (LOCKED)', async () => {
    await start('locked1');
    await assert.rejects(
      startController({ name: 'locked1', dataDir: join(dir, 'locked1'), transport: { bus } }),
      (err: unknown) => (err as { code?: string }).code === 'LOCKED',
    );
  });

  it('a second node with the same name and another node id is refused, naming both ids', async () => {
    const first = await start('dup1');
    const firstId = first.status().nodeId;
    await assert.rejects(
      startController({ name: 'dup1', dataDir: join(dir, 'dup1-other'), transport: { bus } }),
      (err: unknown) => err instanceof ConclaveError && err.code === 'NAME_CONFLICT' && err.message.includes(firstId) && /this data dir is node [0-9a-f-]{36}/.test(err.message),
    );
  });
});

describe('malformed input on the node subjects', () => {
  it('garbage, truncated, oversized and wrongly-typed payloads are dropped; the node still answers', async () => {
    const c = await start('robust1');
    await c.init();
    await c.waitForLeader();
    const conn = bus.connect('attacker');
    const valid = encode({ name: 'cli', nodeId: null, clusterId: null }, 'status', {});
    const payloads: Uint8Array[] = [
      new Uint8Array([0xff, 0xfe, 0x00, 0x01]),
      new TextEncoder().encode('not json at all'),
      valid.subarray(0, valid.length - 5),
      new TextEncoder().encode(JSON.stringify({ v: 1, from: 'x' })),
      new TextEncoder().encode(JSON.stringify({ v: 99, from: 'x', nodeId: null, clusterId: null, type: 'status', body: {} })),
      new TextEncoder().encode(JSON.stringify({ v: 1, from: 'x', nodeId: null, clusterId: null, type: 'no-such-type', body: {} })),
      new TextEncoder().encode(JSON.stringify({ v: 1, from: 'x', nodeId: null, clusterId: null, type: 'raft', body: { messages: [{ type: 'append' }] } })),
      new Uint8Array(1024 * 1024 - 64).fill(0x7b),
    ];
    for (const p of payloads) {
      conn.publish('conclave.node.robust1.admin', p);
      conn.publish('conclave.node.robust1.peer', p);
    }
    // requests with a reply subject get a clear refusal instead of silence
    const reply = decodeReply((await conn.request('conclave.node.robust1.admin', new TextEncoder().encode('{'), { timeoutMs: 2000 })).data);
    assert.ok(!reply.ok && reply.error.code === 'BAD_REQUEST');
    await new Promise((r) => setTimeout(r, 50));
    const status = await ask('robust1', 'status');
    assert.ok(status.ok);
    assert.equal((status.ok && (status.body as { role: string }).role), 'leader');
    await conn.close();
  });

  it('raft traffic from another cluster is dropped (join rule on every message)', async () => {
    const c = await start('guard1');
    await c.init();
    await c.waitForLeader();
    const termBefore = c.status().term;
    const conn = bus.connect('foreign');
    const foreign = { name: 'intruder', nodeId: '0199ffff-0000-7000-8000-000000000001', clusterId: '0199ffff-0000-7000-8000-0000000000ff' };
    const vote = { type: 'vote', from: foreign.nodeId, to: c.status().nodeId, term: termBefore + 100, lastIndex: 1_000, lastTerm: 1_000, transfer: true };
    conn.publish('conclave.node.guard1.peer', encode(foreign, 'raft', { messages: [vote] }));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.status().role, 'leader');
    assert.equal(c.status().term, termBefore, 'a foreign vote request must not bump the term');
    await conn.close();
  });
});
