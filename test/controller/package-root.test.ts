// The package root resolves by name (package.json "exports") and offers the embedding API.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { bootstrapMachine, checkJoin, createInProcessBus, startController } from 'conclave';

it("import from 'conclave' starts an embedded controller on the in-process bus", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-root-'));
  const bus = createInProcessBus();
  const ctrl = await startController({ name: 'embedded1', dataDir: join(dir, 'e1'), transport: { bus } });
  try {
    assert.equal(ctrl.status().phase, 'uninitialized');
    const clusterId = await ctrl.init();
    assert.equal(checkJoin({ name: 'a', clusterId }, { name: 'b', clusterId: null }).allowed, true);
    assert.equal(bootstrapMachine.id, 'bootstrap');
    await ctrl.waitForLeader();
    assert.deepEqual(await ctrl.propose({ op: 'put', key: 'k', value: 1 }), { op: 'put', key: 'k', previous: null });
    assert.deepEqual(await ctrl.read({ op: 'get', key: 'k' }), { key: 'k', found: true, value: 1 });
    assert.deepEqual(await ctrl.read({ op: 'get', key: 'k' }, { stale: true }), { key: 'k', found: true, value: 1 });
  } finally {
    await ctrl.stop();
    await bus.close();
    await rm(dir, { recursive: true, force: true });
  }
});
