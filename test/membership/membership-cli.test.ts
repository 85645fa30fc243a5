// Membership acceptance over a real nats-server, through the CLI, one `conclave run` process per
// node: forming a cluster from blank nodes, refusals at both ends, never forking, initialMembers,
// removal, leadership transfer, and "cluster has no leader" instead of a hang.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isUuid } from '../../machines/identity/index.ts';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import type { MemberInfo } from '../../actors/member.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { cliCluster } from '../helpers/cliCluster.ts';

type Member = MemberInfo;

describe('membership over real NATS through the CLI', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'mem', tmpPrefix: 'conclave-membership-cli-' });
  const PREFIX = 'mem';
  const run = (name: string, extra: string[] = []) => c.run(name, {}, extra);
  const { status, cli } = c;
  async function list(via: string): Promise<{ clusterId: string; leader: string; term: number; members: Member[] }> {
    const r = await cli(['cluster', 'list', '--via', via, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  it('(a)(c)(e) blank nodes become one cluster by `cluster add`; contacted node refuses init; restart; remove; transfer; no leader', async () => {
    await Promise.all(['n1', 'n2', 'n3'].map((n) => run(n)));
    const init = await cli(['init', '--node', 'n1']);
    assert.equal(init.code, 0, init.stderr);
    const clusterId = init.stdout.trim();
    assert.ok(isUuid(clusterId));
    await waitUntil(async () => (await status('n1')).role === 'leader', { what: 'n1 leads' });
    assert.equal((await cli(['kv', 'put', 'color', 'blue', '--via', 'n1'])).code, 0);

    const addN2 = await cli(['cluster', 'add', 'n2', '--via', 'n1']);
    assert.equal(addN2.code, 0, addN2.stderr);
    assert.match(addN2.stdout, /added n2 .* as a voter/);

    // (c) the cluster's join offer reaches n3 (exactly what n1 sends); init on n3 is refused from then on
    const n1 = await status('n1');
    const offer = await c.bus.request(`${PREFIX}.node.n3.admin`, encode({ name: 'n1', nodeId: n1.nodeId, clusterId }, 'join.offer', { protocolVersion: 1 }), { timeoutMs: 2000 });
    assert.ok(decodeReply(offer.data).ok);
    const refusedInit = await cli(['init', '--node', 'n3']);
    assert.equal(refusedInit.code, 1, refusedInit.stderr);
    assert.match(refusedInit.stderr, new RegExp(`^error: init refused: n3 was already contacted by cluster ${clusterId}`, 'm'));
    // ... and it can still be added, through a follower
    const addN3 = await cli(['cluster', 'add', 'n3', '--via', 'n2', '--json']);
    assert.equal(addN3.code, 0, addN3.stderr);
    assert.equal(JSON.parse(addN3.stdout).outcome, 'added');
    // adding a current member again is a no-op success
    const again = await cli(['cluster', 'add', 'n3', '--via', 'n1']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already a voter/);

    const l = await list('n3');
    assert.equal(l.clusterId, clusterId);
    assert.equal(l.leader, 'n1');
    assert.deepEqual(l.members.map((m) => [m.name, m.voter]).sort(), [['n1', true], ['n2', true], ['n3', true]]);
    assert.equal(l.members.filter((m) => m.leader).length, 1);
    for (const n of ['n1', 'n2', 'n3']) assert.equal((await status(n)).clusterId, clusterId);

    // kill -9 and restart all three: same cluster, same data
    for (const n of ['n1', 'n2', 'n3']) await c.procs.get(n)!.kill('SIGKILL');
    await Promise.all(['n1', 'n2', 'n3'].map((n) => run(n)));
    await waitUntil(async () => (await status('n2')).leader !== null, { what: 'a leader after restart' });
    for (const n of ['n1', 'n2', 'n3']) assert.equal((await status(n)).clusterId, clusterId);
    const got = await cli(['kv', 'get', 'color', '--via', 'n3']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout.trim(), 'blue');

    // (e) transfer leadership: to a named voter; unknown target → clear error, exit 1
    const t = await cli(['cluster', 'transfer-leadership', 'n3', '--via', 'n2']);
    assert.equal(t.code, 0, t.stderr);
    await waitUntil(async () => (await status('n1')).leader === 'n3', { what: 'n3 leads' });
    const bad = await cli(['cluster', 'transfer-leadership', 'nobody', '--via', 'n1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: cannot transfer leadership to nobody: it is not a member of cluster/m);

    // remove n2: it learns it, reports removed, and stays removed after a restart
    const rm2 = await cli(['cluster', 'remove', 'n2', '--via', 'n1']);
    assert.equal(rm2.code, 0, rm2.stderr);
    await waitUntil(async () => (await status('n2')).phase === 'removed', { what: 'n2 removed' });
    await c.procs.get('n2')!.kill('SIGKILL');
    await run('n2');
    assert.equal((await status('n2')).phase, 'removed');
    assert.deepEqual((await list('n1')).members.map((m) => m.name).sort(), ['n1', 'n3']);

    // no quorum: the survivor says there is no leader, exit 1, instead of hanging
    await c.procs.get('n3')!.kill('SIGKILL');
    await waitUntil(async () => (await status('n1')).role !== 'leader', { what: 'n1 steps down without quorum', timeoutMs: 10_000 });
    const noLeader = await cli(['cluster', 'list', '--via', 'n1']);
    assert.equal(noLeader.code, 1, noLeader.stderr);
    assert.match(noLeader.stderr, /^error: cluster has no leader/m);
    for (const n of ['n1', 'n2']) await c.procs.get(n)!.kill('SIGTERM');
  });

  it('(b) a member of one cluster cannot be added to another: exit 1 naming both ids, reported at both ends, nothing changes', async () => {
    const x = await run('x1');
    const y = await run('y1');
    const xInit = await cli(['init', '--node', 'x1']);
    const yInit = await cli(['init', '--node', 'y1']);
    const xId = xInit.stdout.trim();
    const yId = yInit.stdout.trim();
    await waitUntil(async () => (await status('x1')).role === 'leader' && (await status('y1')).role === 'leader', { what: 'both lead' });
    const r = await cli(['cluster', 'add', 'y1', '--via', 'x1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: join refused: /m);
    assert.ok(r.stderr.includes(xId) && r.stderr.includes(yId), r.stderr);
    // both ends logged the refusal, naming both ids
    for (const p of [x, y]) {
      await p.waitForOutput(/join refused/);
      const line = (p.stdout + p.stderr).split('\n').find((s) => s.includes('join refused'))!;
      assert.ok(line.includes(xId) && line.includes(yId), line);
    }
    assert.deepEqual((await list('x1')).members.map((m) => m.name), ['x1']);
    assert.deepEqual((await list('y1')).members.map((m) => m.name), ['y1']);
    assert.equal((await status('y1')).clusterId, yId);
    await x.kill('SIGTERM');
    await y.kill('SIGTERM');
  });

  it('(d)(5) initialMembers started later become voters; a late node with initFrom does not fork', async () => {
    const seed = join(c.dir, 'seed.json');
    await writeFile(seed, JSON.stringify({ kv: { greeting: 'hello' } }));
    await run('i1', ['--init-from', seed, '--initial-members', 'i1,i2,i3']);
    await waitUntil(async () => (await status('i1')).role === 'leader', { what: 'i1 leads' });
    await run('i2');
    // i3 has initFrom too, but i1 already answers as a member: it waits to be added instead
    const i3 = await run('i3', ['--init-from', seed, '--initial-members', 'i1,i2,i3']);
    await i3.waitForOutput(/initFrom not used: initial member i1 already belongs to cluster/);
    await waitUntil(async () => (await status('i1')).members.filter((m) => m.voter).length === 3, { what: 'three voters', timeoutMs: 30_000 });
    const l = await list('i2');
    const clusterId = (await status('i1')).clusterId;
    assert.equal(l.clusterId, clusterId);
    for (const n of ['i2', 'i3']) assert.equal((await status(n)).clusterId, clusterId);
    const got = await cli(['kv', 'get', 'greeting', '--via', 'i3']);
    assert.equal(got.stdout.trim(), 'hello');
    for (const n of ['i1', 'i2', 'i3']) await c.procs.get(n)!.kill('SIGTERM');
  });
});
