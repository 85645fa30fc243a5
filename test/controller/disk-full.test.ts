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
  const failures: unknown[] = [];
  // four writes in flight at a time, so some are in the log, not yet applied, when the node halts
  for (let i = 0; i < 2000 && failure === null; i += 4) {
    const batch = [0, 1, 2, 3].map((j) => `k${i + j}`);
    const results = await Promise.allSettled(batch.map((key) => ctrl.memberRuntime().propose({ op: 'put', key, value })));
    results.forEach((r, j) => {
      if (r.status === 'fulfilled') acked.push(batch[j]!);
      else failures.push(r.reason);
    });
    failure = failures[0] ?? null;
  }
  assert.ok(failure instanceof ConclaveError, `a write fails once the store is full (got ${String(failure)})`);
  // a write in the log when the node halted may still commit elsewhere: it is never said to be not applied
  for (const f of failures) assert.notEqual((f as ConclaveError).code, 'STOPPING', `an in-flight write was answered STOPPING: ${String(f)}`);
  console.log(`# failures: ${failures.map((f) => (f as ConclaveError).code).join(', ')}`);
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
