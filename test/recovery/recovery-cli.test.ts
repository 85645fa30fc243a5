// Acceptance 8 (membership issue) over a real nats-server, through the CLI, one `conclave run`
// process per node: 3 nodes with data, stop 2 of 3, `conclave recover` the survivor offline,
// restart it, add two blank nodes → a working cluster with the original data; the old members,
// restarted with their old data dirs, are refused at both ends and are not members; wiped, one is
// added again. Also `snapshot save` of a state over 1 MB (paged) and `--init-from` that file.
import assert from 'node:assert/strict';
import { readdir, rm, } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readInitSource } from '../../runtime/state/initSource.ts';
import { waitUntil } from '../helpers/cli.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { cliCluster } from '../helpers/cliCluster.ts';

describe('disaster recovery over real NATS through the CLI', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'rec', tmpPrefix: 'conclave-recovery-cli-' });
  const spawnNode = (name: string, extra: string[] = []) => c.spawn(name, {}, extra);
  const run = (name: string, extra: string[] = []) => c.run(name, {}, extra);
  const { status, cli, admin } = c;
  const put = (via: string, key: string, value: unknown) => admin(via, 'propose', { command: { op: 'put', key, value } });
  const get = async (via: string, key: string) => ((await admin(via, 'read', { query: { op: 'get', key } })) as { value: unknown }).value;

  it('(8) stop 2 of 3, recover the survivor, re-add blank nodes; the old members are refused until wiped', async () => {
    await Promise.all(['n1', 'n2', 'n3'].map((n) => run(n)));
    const { clusterId } = (await admin('n1', 'init', {})) as { clusterId: string };
    await waitUntil(async () => (await status('n1')).role === 'leader', { what: 'n1 leads' });
    for (const n of ['n2', 'n3']) await admin('n1', 'cluster.add', { name: n });
    await put('n2', 'color', 'blue');
    await Promise.all(Array.from({ length: 50 }, (_, i) => put('n1', `item${i}`, { i })));

    // lose quorum: stop n2 and n3; the survivor n1 has no leader any more; stop it for recovery
    for (const n of ['n2', 'n3']) await c.procs.get(n)!.kill('SIGTERM');
    await waitUntil(async () => (await status('n1')).leader === null, { what: 'n1 without quorum', timeoutMs: 15_000 });
    await c.procs.get('n1')!.kill('SIGTERM');

    const rec = await cli(['recover', '--data-dir', join(c.dir, 'n1')]);
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(rec.stdout, new RegExp(`^recovered n1 \\(node [0-9a-f-]+\\) as the sole voter of cluster ${clusterId}$`, 'm'));
    assert.match(rec.stdout, /generation: 1 -> 2/);
    assert.match(rec.stdout, /51 keys/);
    assert.match(rec.stdout, /previous members: n1, n2, n3/);
    assert.match(rec.stdout, /conclave cluster add <name> --via n1/);
    assert.match(rec.stdout, /old members \(n2, n3\) are stale .* wipe their data dirs/);

    // restart it: it elects itself, same cluster id, same data
    const n1 = await run('n1');
    await waitUntil(async () => (await status('n1')).role === 'leader', { what: 'recovered n1 leads' });
    assert.equal((await status('n1')).clusterId, clusterId);
    assert.equal(await get('n1', 'color'), 'blue');

    // two BLANK nodes are added
    await Promise.all(['n4', 'n5'].map((n) => run(n)));
    assert.equal((await cli(['cluster', 'add', 'n4', '--via', 'n1'])).code, 0);
    const add5 = await cli(['cluster', 'add', 'n5', '--via', 'n4']);
    assert.equal(add5.code, 0, add5.stderr);
    const list = JSON.parse((await cli(['cluster', 'list', '--via', 'n5', '--json'])).stdout) as { clusterId: string; members: Array<{ name: string; voter: boolean }> };
    assert.equal(list.clusterId, clusterId);
    assert.deepEqual(list.members.map((m) => [m.name, m.voter]).sort(), [['n1', true], ['n4', true], ['n5', true]]);
    assert.deepEqual(await get('n5', 'item42'), { i: 42 });
    await put('n5', 'after', 'recovery');

    // the old members restarted with their old data dirs: refused, told, and they stop with the reason
    const stale = [await spawnNode('n2'), await spawnNode('n3')];
    for (const [i, p] of stale.entries()) {
      const name = `n${i + 2}`;
      const exit = await p.exited;
      assert.equal(exit.code, 1, p.output());
      assert.match(
        p.stderr,
        new RegExp(`^error: generation refused: ${name} is a stale member of cluster ${clusterId} \\(its store is generation 1, but the cluster was recovered to generation 2.*wipe its data dir and add it again`, 'm'),
      );
      await n1.waitForOutput(new RegExp(`generation refused: ${name} is a stale member of cluster ${clusterId}`));
    }
    assert.deepEqual((JSON.parse((await cli(['cluster', 'list', '--via', 'n1', '--json'])).stdout) as typeof list).members.map((m) => m.name).sort(), ['n1', 'n4', 'n5']);

    // wiped, n2 is a new node: added, with the data
    await rm(join(c.dir, 'n2'), { recursive: true, force: true });
    await run('n2');
    const add2 = await cli(['cluster', 'add', 'n2', '--via', 'n1']);
    assert.equal(add2.code, 0, add2.stderr);
    assert.equal(await get('n2', 'after'), 'recovery');
    assert.equal((await status('n2')).clusterId, clusterId);
    for (const n of ['n1', 'n2', 'n4', 'n5']) await c.procs.get(n)!.kill('SIGTERM');
  });

  it('snapshot save of a state over 1 MB (paged, through a follower) → --init-from that file → the same data', async () => {
    await Promise.all(['s1', 's2'].map((n) => run(n)));
    await admin('s1', 'init', {});
    await waitUntil(async () => (await status('s1')).role === 'leader', { what: 's1 leads' });
    await admin('s1', 'cluster.add', { name: 's2' });
    const big = (i: number) => `${String(i).padStart(4, '0')}${'x'.repeat(100_000)}`;
    for (let i = 0; i < 14; i++) await put('s1', `big${i}`, big(i));
    await Promise.all(Array.from({ length: 200 }, (_, i) => put('s1', `small/${i}`, { i, tags: ['t'] })));

    const file = join(c.dir, 'cluster.snapshot.json');
    const r = await cli(['snapshot', 'save', file, '--via', 's2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const saved = JSON.parse(r.stdout) as { file: string; node: string; keys: number; bytes: number; index: number; clusterId: string };
    assert.equal(saved.file, file);
    assert.equal(saved.node, 's1', 'taken by the leader');
    assert.equal(saved.keys, 214);
    assert.ok(saved.bytes > 1024 * 1024, `over one NATS message: ${saved.bytes}`);
    assert.equal(saved.clusterId, (await status('s1')).clusterId);
    assert.deepEqual((await readdir(c.dir)).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
    const source = await readInitSource(file);
    assert.equal(source.kind, 'snapshot');
    assert.equal(source.pairs.length, 214);

    const human = await cli(['snapshot', 'save', join(c.dir, 'again.json'), '--via', 's1']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^wrote a snapshot of cluster [0-9a-f-]+ at index \d+ \(term \d+, taken by s1\): 214 keys, \d+ bytes, to /);

    await run('t1', ['--init-from', file]);
    await waitUntil(async () => (await status('t1')).role === 'leader', { what: 't1 leads' });
    const t1 = await status('t1');
    assert.notEqual(t1.clusterId, saved.clusterId, 'a new cluster');
    assert.equal(await get('t1', 'big13'), big(13));
    const cliGet = await cli(['kv', 'get', 'small/199', '--via', 't1']);
    assert.equal(cliGet.stdout.trim(), '{"i":199,"tags":["t"]}', cliGet.stderr);

    // no leader: a clear refusal, nothing written
    await c.procs.get('s2')!.kill('SIGTERM');
    await waitUntil(async () => (await status('s1')).leader === null, { what: 's1 without quorum', timeoutMs: 15_000 });
    const none = await cli(['snapshot', 'save', join(c.dir, 'none.json'), '--via', 's1']);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /^error: cluster has no leader/m);
    assert.ok(!(await readdir(c.dir)).includes('none.json'));
    for (const n of ['s1', 't1']) await c.procs.get(n)!.kill('SIGTERM');
  });
});
