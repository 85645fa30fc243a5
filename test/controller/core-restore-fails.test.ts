// A member whose raft core refuses to start from its store (here: a hard state whose commit index is
// beyond the last log entry, as a follower that acknowledged before it wrote would leave it) puts the
// node in phase `failed` with that error — and nothing else breaks: its status still answers, the
// initialMembers and stop paths do not read a core that was never made, no exception escapes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { waitFor } from 'xstate';
import { startController } from '../../runtime/controller.ts';
import { openStore } from '../../runtime/store/index.ts';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-core-restore-');
after(() => tmp.cleanup());
const RAFT = { heartbeatMs: 10, electionTimeoutMs: 100 };

it('a store the raft core refuses: phase failed with its error; status, initialMembers and stop do not throw', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const dataDir = join(tmp.make(), 'c1');
  const bus = createInProcessBus();
  try {
    const first = await startController({ name: 'c1', dataDir, transport: { bus }, raft: RAFT });
    await first.init();
    await first.waitForLeader();
    await first.propose({ op: 'put', key: 'k', value: 1 });
    await first.stop();
    // a commit index beyond the log
    const store = await openStore({ dataDir, name: 'c1' });
    await store.persist({ hardState: { ...store.hardState(), commit: store.lastIndex() + 10 } });
    await store.close();

    const again = await startController({ name: 'c1', dataDir, transport: { bus }, raft: RAFT, initialMembers: ['c2'] });
    const failed = await waitFor(again.actor, (s) => s.value === 'failed', { timeout: 30_000 });
    assert.match(failed.context.error?.message ?? '', /commit/i, JSON.stringify(failed.context.error));
    assert.doesNotThrow(() => again.status());
    await again.stop();
    assert.deepEqual(uncaught.map(String), []);
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await bus.close();
  }
});
