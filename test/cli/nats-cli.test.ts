// The foundation's acceptance over a real nats-server, through the CLI, one process per node.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'nats';
import { isUuid } from '../../machines/identity/index.ts';
import { baseEnv, CliProcess, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

describe('CLI over real NATS', { skip: natsServerSkipReason() }, () => {
  let nats: NatsServerHandle;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const procs: CliProcess[] = [];

  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'conclave-cli-'));
    env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: 'acc' });
  });
  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function run(args: string[]): CliProcess {
    const p = new CliProcess(['run', '--log-level', 'info', ...args], { env });
    procs.push(p);
    return p;
  }

  async function status(node: string): Promise<Record<string, unknown>> {
    const r = await runCli(['status', '--node', node, '--json'], { env });
    assert.equal(r.code, 0, `status ${node}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  async function waitAnswering(p: CliProcess, node: string): Promise<void> {
    await p.waitForOutput(/controller .* is running/);
    await waitUntil(async () => (await runCli(['status', '--node', node, '--json', '--timeout', '1000'], { env })).code === 0, { what: `${node} answering`, context: () => p.output() });
  }

  it('run → uninitialized → init → member/leader → kill -9 → restart keeps ids → init again refused', async () => {
    const dataDir = join(dir, 'ctrl1');
    let p = run(['--name', 'ctrl1', '--data-dir', dataDir]);
    await waitAnswering(p, 'ctrl1');
    const blank = await status('ctrl1');
    assert.equal(blank.phase, 'uninitialized');
    assert.equal(blank.clusterId, null);
    assert.equal(blank.role, 'none');

    const init = await runCli(['init', '--node', 'ctrl1'], { env });
    assert.equal(init.code, 0, init.stderr);
    const clusterId = init.stdout.trim();
    assert.ok(isUuid(clusterId), `init printed ${JSON.stringify(init.stdout)}`);

    await waitUntil(async () => (await status('ctrl1')).role === 'leader', { what: 'ctrl1 leader' });
    const member = await status('ctrl1');
    assert.equal(member.phase, 'member');
    assert.equal(member.clusterId, clusterId);
    assert.equal(member.leader, 'ctrl1');

    await p.kill('SIGKILL');
    p = run(['--name', 'ctrl1', '--data-dir', dataDir]);
    await waitAnswering(p, 'ctrl1');
    const again = await status('ctrl1');
    assert.equal(again.nodeId, blank.nodeId);
    assert.equal(again.clusterId, clusterId);
    assert.equal(again.phase, 'member');

    const refused = await runCli(['init', '--node', 'ctrl1'], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`^error: .*already a member of cluster ${clusterId}`, 'm'));

    // kv through the CLI against the real node
    assert.equal((await runCli(['kv', 'put', 'color', 'blue', '--via', 'ctrl1'], { env })).code, 0);
    const get = await runCli(['kv', 'get', 'color', '--via', 'ctrl1'], { env });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.trim(), 'blue');

    // graceful stop on SIGTERM: exit 0
    const exit = await p.kill('SIGTERM');
    assert.equal(exit.code, 0, p.output());
  });

  it('run --init-from seed.json imports once; bad sources exit 2 and leave the store blank', async () => {
    const seed = join(dir, 'seed.json');
    await writeFile(seed, JSON.stringify({ kv: { greeting: 'hello', n: 7 } }));
    const dataDir = join(dir, 'seeded');
    let p = run(['--name', 'seeded', '--data-dir', dataDir, '--init-from', seed]);
    await waitAnswering(p, 'seeded');
    const s = await status('seeded');
    assert.equal(s.phase, 'member');
    assert.ok(isUuid(String(s.clusterId)));
    await waitUntil(async () => (await status('seeded')).role === 'leader', { what: 'seeded leader' });
    const got = await runCli(['kv', 'get', 'greeting', '--via', 'seeded', '--json'], { env });
    assert.deepEqual(JSON.parse(got.stdout), { key: 'greeting', found: true, value: 'hello' });
    assert.equal((await runCli(['kv', 'put', 'greeting', 'changed', '--via', 'seeded'], { env })).code, 0);
    await p.kill('SIGKILL');
    p = run(['--name', 'seeded', '--data-dir', dataDir, '--init-from', seed]);
    await waitAnswering(p, 'seeded');
    await p.waitForOutput(/initFrom ignored/);
    assert.equal((await status('seeded')).clusterId, s.clusterId);
    await waitUntil(async () => (await status('seeded')).role === 'leader', { what: 'seeded leader after restart' });
    const after = await runCli(['kv', 'get', 'greeting', '--via', 'seeded'], { env });
    assert.equal(after.stdout.trim(), 'changed', 'a restart must not re-import the seed');
    await p.kill('SIGTERM');

    for (const [label, content] of [['empty', ''], ['malformed', '{"kv":'], ['missing', null]] as const) {
      const src = join(dir, `bad-${label}.json`);
      if (content !== null) await writeFile(src, content);
      const r = await runCli(['run', '--name', `bad-${label}`, '--data-dir', join(dir, `bad-${label}`), '--init-from', src], { env });
      assert.equal(r.code, 2, `${label}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`error: cannot initialize from .*bad-${label}\\.json`));
      const blank = run(['--name', `bad-${label}`, '--data-dir', join(dir, `bad-${label}`)]);
      await waitAnswering(blank, `bad-${label}`);
      const st = await status(`bad-${label}`);
      assert.equal(st.phase, 'uninitialized');
      assert.equal(st.clusterId, null);
      await blank.kill('SIGTERM');
    }
  });

  it('a second process on the same data dir, and a second node with the same name, are refused', async () => {
    const dataDir = join(dir, 'ctrl2');
    const first = run(['--name', 'ctrl2', '--data-dir', dataDir]);
    await waitAnswering(first, 'ctrl2');
    const firstId = (await status('ctrl2')).nodeId as string;

    const sameDir = await runCli(['run', '--name', 'ctrl2', '--data-dir', dataDir], { env });
    assert.equal(sameDir.code, 1, sameDir.stderr);
    assert.match(sameDir.stderr, /^error: .*ctrl2.*(in use|locked)/im);

    const sameName = await runCli(['run', '--name', 'ctrl2', '--data-dir', join(dir, 'ctrl2-elsewhere')], { env });
    assert.equal(sameName.code, 1, sameName.stderr);
    assert.match(sameName.stderr, new RegExp(`^error: name ctrl2 is already answered .* by node ${firstId}; this data dir is node [0-9a-f-]{36}`, 'm'));
    assert.ok(first.running, 'the first process keeps running');
    await first.kill('SIGTERM');
  });

  it('garbage, truncated and oversized payloads on the node subjects leave it answering status', async () => {
    const p = run(['--name', 'ctrl3', '--data-dir', join(dir, 'ctrl3')]);
    await waitAnswering(p, 'ctrl3');
    assert.equal((await runCli(['init', '--node', 'ctrl3'], { env })).code, 0);
    const nc = await connect({ servers: nats.url });
    const enc = new TextEncoder();
    const garbage = [
      new Uint8Array([0, 1, 2, 255]),
      enc.encode('{"v":1,"from":"x","nodeId":null,"clusterId":null,"type":"status","body":'),
      enc.encode(JSON.stringify({ v: 1, from: 'x', nodeId: null, clusterId: null, type: 'raft', body: { messages: 'lots' } })),
      new Uint8Array(1000 * 1024).fill(65),
    ];
    for (const g of garbage) for (const sub of ['admin', 'peer']) nc.publish(`acc.node.ctrl3.${sub}`, g);
    await nc.flush();
    await nc.close();
    const s = await status('ctrl3');
    assert.equal(s.phase, 'member');
    assert.ok(p.running);
    await p.kill('SIGTERM');
  });
});
