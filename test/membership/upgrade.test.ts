// Upgrades (issue #4, acceptance 7): stores written by a Conclave from before cluster ids (store
// format 0: no clusterId, no generation) are upgraded in place on open; the cluster resumes with its
// raft state, its leader commits a cluster id through raft, and every member ends with that id and
// the same data. Real `conclave run` processes over a real nats-server, driven through the CLI.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { open } from 'lmdb';
import type { MemberInfo } from '../../actors/member.ts';
import { isUuid } from '../../machines/identity/index.ts';
import { unframe } from '../../runtime/store/frame.ts';
import { STORE_FORMAT_VERSION } from '../../runtime/store/identity.ts';
import { readStoredIdentity } from '../../runtime/store/store.ts';
import { waitUntil } from '../helpers/cli.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { cliCluster } from '../helpers/cliCluster.ts';

/**
 * rewrite a stopped store as the format-0 layout: records without checksums (format < 2), an
 * identity without cluster id and generation
 */
async function downgradeToFormat0(dir: string): Promise<void> {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, overlappingSync: false });
  env.transactionSync(() => {
    for (const name of ['hardstate', 'log', 'snapshot', 'state']) {
      const db = env.openDB({ name, encoding: 'binary' });
      for (const key of [...db.getKeys()]) db.putSync(key, Buffer.from(unframe(db.getBinary(key)!)));
    }
    const { clusterId: _c, generation: _g, contactedBy: _cb, initializedAt: _i, ...rest } = readStoredIdentity(env) as Record<string, unknown>;
    env.openDB({ name: 'identity' }).putSync('identity', { ...rest, formatVersion: 0 });
  });
  await env.close();
}

async function rawIdentity(dir: string): Promise<Record<string, unknown>> {
  const env = open({ path: dir, noSubdir: false, maxDbs: 16, readOnly: true });
  const id = readStoredIdentity(env) as Record<string, unknown>;
  await env.close();
  return id;
}

describe('upgrade of a cluster created without an id (acceptance 7)', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'upg', tmpPrefix: 'conclave-upgrade-' });
  const run = (name: string) => c.run(name);
  const { status, cli } = c;
  const nodes = ['u1', 'u2', 'u3'];

  it('older stores are upgraded on open; the leader commits a cluster id; every member persists it; data kept', async () => {
    // a three-node cluster with data, as the older Conclave would have left it once downgraded
    await Promise.all(nodes.map(run));
    const init = await cli(['init', '--node', 'u1']);
    assert.equal(init.code, 0, init.stderr);
    const oldId = init.stdout.trim();
    await waitUntil(async () => (await status('u1')).role === 'leader', { what: 'u1 leads' });
    for (const n of ['u2', 'u3']) assert.equal((await cli(['cluster', 'add', n, '--via', 'u1'])).code, 0);
    for (let i = 0; i < 5; i++) assert.equal((await cli(['kv', 'put', `k${i}`, `v${i}`, '--via', 'u2'])).code, 0);
    for (const n of nodes) await waitUntil(async () => (await status(n)).members.length === 3, { what: `${n} sees 3 members` });
    for (const n of nodes) assert.equal((await c.procs.get(n)!.kill('SIGINT')).code, 0);
    for (const n of nodes) {
      await downgradeToFormat0(join(c.dir, n));
      const raw = await rawIdentity(join(c.dir, n));
      assert.equal(raw.formatVersion, 0);
      assert.equal(raw.clusterId, undefined);
    }

    // restart: each store is migrated on open and the nodes resume as members without an id
    await Promise.all(nodes.map(async (n) => (await run(n)).waitForOutput(/store format migrated/)));
    let newId = '';
    await waitUntil(
      async () => {
        const all = await Promise.all(nodes.map(status));
        const ids = new Set(all.map((s) => s.clusterId));
        if (ids.size !== 1 || all[0]!.clusterId === null) return false;
        newId = all[0]!.clusterId;
        return all.every((s) => s.phase === 'member');
      },
      { what: 'one cluster id on every member', timeoutMs: 30_000 },
    );
    assert.ok(isUuid(newId));
    assert.notEqual(newId, oldId, 'the id comes from the upgrade, not from anything left behind');
    const list = await cli(['cluster', 'list', '--via', 'u3', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const parsed = JSON.parse(list.stdout) as { clusterId: string; members: MemberInfo[] };
    assert.equal(parsed.clusterId, newId);
    assert.deepEqual(parsed.members.map((m) => [m.name, m.voter]).sort(), nodes.map((n) => [n, true]));
    for (const n of nodes) {
      const got = await cli(['kv', 'get', 'k4', '--via', n]);
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.stdout, /v4/);
    }
    // the cluster keeps working and the id survives a restart of every member (it is durable)
    assert.equal((await cli(['kv', 'put', 'after', 'upgrade', '--via', 'u1'])).code, 0);
    for (const n of nodes) assert.equal((await c.procs.get(n)!.kill('SIGINT')).code, 0);
    for (const n of nodes) {
      const raw = await rawIdentity(join(c.dir, n));
      assert.equal(raw.clusterId, newId, `${n} persisted the id`);
      assert.equal(raw.formatVersion, STORE_FORMAT_VERSION, 'migrated to the current format');
    }
    await Promise.all(nodes.map(run));
    await waitUntil(async () => (await Promise.all(nodes.map(status))).every((s) => s.clusterId === newId && s.phase === 'member'), { what: 'same id after restart' });
    // and a blank node can now be added to the upgraded cluster under that id
    await run('u4');
    await waitUntil(async () => (await Promise.all(nodes.map(status))).some((s) => s.role === 'leader'), { what: 'a leader after restart' });
    const add = await cli(['cluster', 'add', 'u4', '--via', 'u2']);
    assert.equal(add.code, 0, add.stderr);
    assert.equal((await status('u4')).clusterId, newId);
  });
});
