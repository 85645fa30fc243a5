// A record damaged under a running node (issue 17, item 4): the read that finds it fails with
// CORRUPT instead of serving a wrong value, and the node stops (phase failed, code CORRUPT, which
// `conclave run` turns into exit 2 and one line) at once — an idle node too, with no write after
// the read — having written nothing more.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { waitFor } from 'xstate';
import { startController } from '../../runtime/controller.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { flipByteAt } from './damage.ts';

const tmp = tmpDirs('conclave-damage-running-');
after(() => tmp.cleanup());
const VALUE = 'DAMAGE-ME-0123456789-abcdefghij';

it('a damaged value is CORRUPT when read, and the node stops at once, with no write after it', async () => {
  const dataDir = join(tmp.make(), 'a');
  const bus = createInProcessBus();
  const a = await startController({ name: 'a', dataDir, transport: { bus }, raft: { heartbeatMs: 10, electionTimeoutMs: 100 } });
  try {
    await a.init();
    await a.waitForLeader();
    await a.propose({ op: 'put', key: 'victim', value: VALUE });
    await a.propose({ op: 'put', key: 'other', value: 1 });
    // the applied state reaches the store (the KV defers its writes): wait until the value is on disk
    const file = join(dataDir, 'data.mdb');
    const onDisk = () => readFileSync(file).indexOf(Buffer.from(VALUE));
    await a.propose({ op: 'put', key: 'flush', value: 'x'.repeat(10) });
    const deadline = Date.now() + 30_000;
    // and the node is idle: everything it applied is durable, so no write is pending when the damage comes
    const idle = () => a.store.appliedIndex() === a.status().commitIndex && a.status().appliedIndex === a.status().commitIndex;
    while (a.store.stateGet('victim') === undefined || onDisk() < 0 || !idle()) {
      if (Date.now() > deadline) throw new Error('the value never reached data.mdb');
      await new Promise((r) => setTimeout(r, 50));
    }
    const bytes = readFileSync(file);
    const needle = Buffer.from(VALUE);
    for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + needle.length)) flipByteAt(dataDir, at + 3);

    await assert.rejects(a.read({ op: 'get', key: 'victim' }), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'CORRUPT', String(err));
      assert.match((err as Error).message, /data\.mdb: state key "victim" is damaged/);
      return true;
    });
    const damaged = readFileSync(file);
    const s = await waitFor(a.actor, (x) => x.value === 'failed', { timeout: 30_000 });
    assert.equal(s.context.error?.code, 'CORRUPT');
    assert.match(s.context.error?.message ?? '', /restore the data dir from a backup/);
    assert.ok(readFileSync(file).equals(damaged), 'nothing written to data.mdb after the damage was found');
    await assert.rejects(a.propose({ op: 'put', key: 'after', value: 2 }));
    assert.ok(readFileSync(file).equals(damaged), 'nor after a write was asked for');
  } finally {
    await a.stop().catch(() => {});
    await bus.close();
  }
});
