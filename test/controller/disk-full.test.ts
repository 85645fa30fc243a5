// A full disk while a member is writing: the write is refused, nothing half-written is visible, the
// node halts (phase failed) instead of acknowledging what is not durable, and every acknowledged
// write is still there after a restart with room to grow.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { startController } from '../../runtime/controller.ts';
import { ConclaveError } from '../../runtime/errors.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

it('disk full: proposals fail, the node halts as failed, acknowledged data survives a restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-full-'));
  dirs.push(dir);
  const bus = createInProcessBus();
  const dataDir = join(dir, 'full1');
  const ctrl = await startController({ name: 'full1', dataDir, transport: { bus }, mapSizeBytes: 2 * 1024 * 1024, raft: { heartbeatMs: 10, electionTimeoutMs: 50 } });
  await ctrl.init();
  await ctrl.waitForLeader();
  const acked: string[] = [];
  const value = 'x'.repeat(8 * 1024);
  let failure: unknown = null;
  for (let i = 0; i < 2000 && failure === null; i++) {
    try {
      await ctrl.memberRuntime().propose({ op: 'put', key: `k${i}`, value });
      acked.push(`k${i}`);
    } catch (err) {
      failure = err;
    }
  }
  assert.ok(failure instanceof ConclaveError, `a write fails once the store is full (got ${String(failure)})`);
  assert.ok(acked.length > 10, `some writes succeeded first (${acked.length})`);
  // the node halted: it reports failed and refuses new work with a clear error
  const deadline = Date.now() + 5000;
  while (ctrl.phase !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(ctrl.phase, 'failed');
  assert.match(ctrl.actor.getSnapshot().context.error?.message ?? '', /full/i);
  assert.equal(ctrl.actor.getSnapshot().context.error?.code, 'FULL');
  await ctrl.stop();

  const again = await startController({ name: 'full1', dataDir, transport: { bus }, raft: { heartbeatMs: 10, electionTimeoutMs: 50 } });
  try {
    await again.waitForLeader();
    for (const key of acked) {
      const got = (await again.memberRuntime().read({ op: 'get', key })) as { found: boolean };
      assert.ok(got.found, `acknowledged ${key} survived`);
    }
    await again.memberRuntime().propose({ op: 'put', key: 'after', value: 1 });
  } finally {
    await again.stop();
    await bus.close();
  }
});
