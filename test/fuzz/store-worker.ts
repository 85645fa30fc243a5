// The child of test/fuzz/store.test.ts: opens each store it is given (one data dir per stdin
// line) as a node does, reads everything, and answers one JSON line. A crash of LMDB in here
// ends this process with a signal, which the parent reports as the property's failure.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { openStore, StoreError } from '../../runtime/store/index.ts';

for await (const dataDir of createInterface({ input: process.stdin })) {
  let answer: Record<string, unknown>;
  try {
    const s = await openStore({ dataDir, name: 'n1' });
    try {
      const { pairs } = s.exportState();
      const entries = s.entries(s.firstIndex(), s.lastIndex() + 1);
      const digest = createHash('sha256').update(JSON.stringify({ pairs, entries, hard: s.hardState(), meta: s.snapshotMeta() })).digest('hex');
      answer = { opened: true, nodeId: s.identity().nodeId, clusterId: s.identity().clusterId, keys: pairs.length, digest };
    } finally {
      await s.close();
    }
  } catch (err) {
    answer = { opened: false, storeError: err instanceof StoreError, code: (err as { code?: unknown }).code, message: (err as Error).message };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
