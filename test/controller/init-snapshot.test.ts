// initFrom accepts a snapshot file (the format `snapshot save` will write): imported into a fresh
// cluster with a new id; a file whose checksum does not match is refused and nothing is written.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { startController } from '../../runtime/controller.ts';
import { buildSnapshotFile } from '../../runtime/state/initSource.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';

it('initFrom a snapshot file: new cluster id, the data, and a tampered file refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-snapfile-'));
  const bus = createInProcessBus();
  try {
    const origin = '0199aaaa-0000-7000-8000-0000000000a1';
    const snapshot = buildSnapshotFile({ clusterId: origin, index: 42, term: 3, pairs: [['a', 1], ['b', { deep: [1, 2] }]] });
    const good = join(dir, 'good.snapshot.json');
    await writeFile(good, JSON.stringify(snapshot));
    const tampered = join(dir, 'tampered.snapshot.json');
    await writeFile(tampered, JSON.stringify({ ...snapshot, kv: [['a', 2], ['b', { deep: [1, 2] }]] }));

    await assert.rejects(
      startController({ name: 'snap2', dataDir: join(dir, 'snap2'), transport: { bus }, initFrom: tampered }),
      (err: unknown) => (err as { code?: string }).code === 'BAD_INIT_SOURCE' && /checksum mismatch/.test((err as Error).message),
    );
    const blank = await startController({ name: 'snap2', dataDir: join(dir, 'snap2'), transport: { bus } });
    assert.equal(blank.status().clusterId, null, 'a refused source writes nothing');
    await blank.stop();

    const ctrl = await startController({ name: 'snap1', dataDir: join(dir, 'snap1'), transport: { bus }, initFrom: good, raft: { heartbeatMs: 10, electionTimeoutMs: 50 } });
    try {
      const clusterId = ctrl.status().clusterId;
      assert.ok(clusterId && clusterId !== origin, 'a fresh cluster id, not the origin cluster’s');
      await ctrl.waitForLeader();
      assert.deepEqual(await ctrl.read({ op: 'get', key: 'b' }), { key: 'b', found: true, value: { deep: [1, 2] } });
      assert.deepEqual(await ctrl.read({ op: 'get', key: 'a' }), { key: 'a', found: true, value: 1 });
    } finally {
      await ctrl.stop();
    }
  } finally {
    await bus.close();
    await rm(dir, { recursive: true, force: true });
  }
});
