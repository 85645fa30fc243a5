// A node receiving a snapshot and installing it, to be killed at any point by the test
// (test/store/snapshot-install-crash.test.ts): `node --import tsx receive-snapshot.ts DATA_DIR`.
// Says on stdout how far it got: `received B` after each batch, `installing`, `installed`.
import { openStore } from '../../../runtime/store/index.ts';
import { BATCHES, NEW_INDEX, PAIRS_PER_BATCH, statePairs } from './snapshotFixture.ts';

const store = await openStore({ dataDir: process.argv[2]!, name: 'n1' });
const staging = store.snapshotStaging();
staging.clear();
for (let b = 0; b < BATCHES; b++) {
  staging.add(statePairs(b * PAIRS_PER_BATCH, PAIRS_PER_BATCH, 'new'));
  process.stdout.write(`received ${b}\n`);
}
process.stdout.write('installing\n');
await store.installSnapshot(
  { index: NEW_INDEX, term: 3, membership: { members: [{ nodeId: 'n', name: 'n1', voter: true }] } },
  staging,
  { term: 3, vote: null, commit: NEW_INDEX },
);
process.stdout.write('installed\n');
await store.close();
