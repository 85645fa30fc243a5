// initFrom accepts the LMDB environment of a standalone (single-process, unreplicated) deployment
// of the built-in KV: a directory with data.mdb and a named database "kv" written with lmdb-js's
// defaults. Imported read-only (data.mdb unchanged); an empty "kv", a missing "kv" and a Conclave
// node store are refused with a clear message (exit 2 at the CLI) and nothing is written.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { startController } from '../../runtime/controller.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { baseEnv, runCli } from '../helpers/cli.ts';
import { freePort } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-standalone-');
after(() => tmp.cleanup());
const raft = { heartbeatMs: 10, electionTimeoutMs: 100 };

/** what a standalone app using lmdb-js would have written */
async function standalone(dir: string, pairs: Array<[string, unknown]>, dbName = 'kv'): Promise<void> {
  const env = open({ path: dir });
  const db = env.openDB({ name: dbName });
  for (const [k, v] of pairs) await db.put(k, v);
  await env.close();
}

function printOf(file: string): { sha256: string; mtimeMs: number; size: number } {
  const st = statSync(file);
  return { sha256: createHash('sha256').update(readFileSync(file)).digest('hex'), mtimeMs: st.mtimeMs, size: st.size };
}

const isBadSource = (pattern: RegExp) => (err: unknown) => (err as { code?: string }).code === 'BAD_INIT_SOURCE' && pattern.test((err as Error).message);

describe('initFrom a standalone LMDB environment', () => {
  it('imports the "kv" database into a new cluster, leaving the source unchanged', async () => {
    const dir = tmp.make();
    const src = join(dir, 'standalone');
    await standalone(src, [
      ['color', 'blue'],
      ['limits', { cpu: 2, tags: ['a', 'b'] }],
      ['n', 42],
      ['flag', true],
    ]);
    const before = printOf(join(src, 'data.mdb'));
    const names = readdirSync(src).sort();
    const bus = createInProcessBus();
    const ctrl = await startController({ name: 's1', dataDir: join(dir, 's1'), transport: { bus }, initFrom: src, raft });
    try {
      assert.ok(ctrl.status().clusterId);
      await ctrl.waitForLeader();
      assert.deepEqual(await ctrl.read({ op: 'list' }), {
        items: [
          { key: 'color', value: 'blue' },
          { key: 'flag', value: true },
          { key: 'limits', value: { cpu: 2, tags: ['a', 'b'] } },
          { key: 'n', value: 42 },
        ],
      });
      assert.equal(ctrl.store.identity().importedFrom, src);
    } finally {
      await ctrl.stop();
      await bus.close();
    }
    assert.deepEqual(printOf(join(src, 'data.mdb')), before, 'data.mdb untouched');
    assert.deepEqual(readdirSync(src).sort(), names);
  });

  it('accepts the path of data.mdb itself', async () => {
    const dir = tmp.make();
    const src = join(dir, 'standalone');
    await standalone(src, [['x', 1]]);
    const bus = createInProcessBus();
    const ctrl = await startController({ name: 's2', dataDir: join(dir, 's2'), transport: { bus }, initFrom: join(src, 'data.mdb'), raft });
    try {
      await ctrl.waitForLeader();
      assert.deepEqual(await ctrl.read({ op: 'get', key: 'x' }), { key: 'x', found: true, value: 1 });
    } finally {
      await ctrl.stop();
      await bus.close();
    }
  });

  it('refuses an empty "kv", an environment without "kv", and a Conclave node store; the node stays blank', async () => {
    const dir = tmp.make();
    const bus = createInProcessBus();
    try {
      const empty = join(dir, 'empty');
      await standalone(empty, [['gone', 1]]);
      const env = open({ path: empty });
      await env.openDB({ name: 'kv' }).remove('gone');
      await env.close();
      await assert.rejects(startController({ name: 'e1', dataDir: join(dir, 'e1'), transport: { bus }, initFrom: empty }), isBadSource(/database "kv" contains no data/));

      const other = join(dir, 'other');
      await standalone(other, [['k', 1]], 'things');
      await assert.rejects(startController({ name: 'e1', dataDir: join(dir, 'e1'), transport: { bus }, initFrom: other }), isBadSource(/no database named "kv" \(it has databases things\)/));

      const member = await startController({ name: 'm1', dataDir: join(dir, 'm1'), transport: { bus }, raft });
      const memberCluster = await member.init();
      await member.stop();
      await assert.rejects(
        startController({ name: 'e1', dataDir: join(dir, 'e1'), transport: { bus }, initFrom: join(dir, 'm1') }),
        isBadSource(new RegExp(`is a Conclave node store \\(node m1, cluster ${memberCluster}\\), not a standalone deployment`)),
      );

      const blank = await startController({ name: 'e1', dataDir: join(dir, 'e1'), transport: { bus } });
      assert.equal(blank.status().clusterId, null, 'a refused source writes nothing');
      await blank.stop();
    } finally {
      await bus.close();
    }
  });

  it('the CLI exits 2 with one error line for an empty standalone source (before any connection)', async () => {
    const dir = tmp.make();
    const empty = join(dir, 'empty');
    const env = open({ path: empty });
    env.openDB({ name: 'kv' });
    await env.put('x', 1); // the root db only: "kv" exists but holds nothing
    await env.close();
    const port = await freePort(); // nothing listens there: the source is refused before connecting
    const r = await runCli(['run', '--name', 'c1', '--data-dir', join(dir, 'c1'), '--init-from', empty], { env: baseEnv({ NATS_URL: `nats://127.0.0.1:${port}` }) });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: cannot initialize from .*empty: database "kv" contains no data$/m);
  });
});
