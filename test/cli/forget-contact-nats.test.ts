// Issue 11, "Joining": without a join secret a forged join offer makes a blank node record a contact
// by a cluster that does not exist, and from then on `init` is refused (so that a node a real
// cluster reached never forks a second one). The way out is the operator's explicit, offline step:
// `init`'s refusal names it, `conclave store forget-contact` clears the contact of a stopped blank
// node, and never touches a member's store or a store in use. Real nats-server, `conclave run`, CLI.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { cliCluster } from '../helpers/cliCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';

describe('a blank node that accepted a forged join offer, over real NATS', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'forget', tmpPrefix: 'conclave-forget-contact-' });

  it('init is refused naming the way out; forget-contact clears it offline; init then works; a member or running store is refused', async () => {
    const node = await c.run('b1');
    const dataDir = join(c.dir, 'b1');
    const forged = randomUUID();
    // anyone on the bus: an offer from a "leader" of a cluster that will never send any state
    const sender = { name: 'mallory', nodeId: randomUUID(), clusterId: forged, generation: 1 };
    await c.bus.request('forget.node.b1.admin', encode(sender, 'join.offer', { protocolVersion: 1 }), { timeoutMs: 10_000 });
    await waitUntil(async () => (await c.status('b1')).phase === 'joining', { what: 'b1 joining the forged cluster', timeoutMs: 30_000 });

    const refused = await c.cli(['init', '--node', 'b1']);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`^error: init refused: b1 was already contacted by cluster ${forged} \\(via mallory\\).*conclave store forget-contact --data-dir`));

    const locked = await c.cli(['store', 'forget-contact', '--data-dir', dataDir]);
    assert.equal(locked.code, 1, `a store in use is not touched: ${locked.stderr}`);
    assert.match(locked.stderr, /^error: .*(in use|locked)/i);

    assert.deepEqual(await node.kill('SIGTERM'), { code: 0, signal: null }, node.output());
    const forgot = await c.cli(['store', 'forget-contact', '--data-dir', dataDir, '--json']);
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.deepEqual(JSON.parse(forgot.stdout).forgot?.clusterId, forged);
    const again = await c.cli(['store', 'forget-contact', '--data-dir', dataDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /has no recorded contact: nothing to forget/);

    await c.run('b1');
    const init = await c.cli(['init', '--node', 'b1']);
    assert.equal(init.code, 0, init.stderr);
    const clusterId = init.stdout.trim().split(/\s+/).find((w) => /^[0-9a-f-]{36}$/.test(w));
    assert.ok(clusterId !== undefined && clusterId !== forged, `a cluster of its own: ${init.stdout}`);

    assert.deepEqual(await c.procs.get('b1')!.kill('SIGTERM'), { code: 0, signal: null });
    const member = await c.cli(['store', 'forget-contact', '--data-dir', dataDir]);
    assert.equal(member.code, 1, member.stderr);
    assert.match(member.stderr, new RegExp(`^error: forget-contact refused: node b1 .* is a member of cluster ${clusterId}`));
  });
});
