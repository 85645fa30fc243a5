// Issue 17, item 11: a received snapshot is written once, into the state database that is not
// current, and installed by one durable write that switches to it. A process killed (SIGKILL) at
// any point — while receiving, during the install, after it — leaves either the whole old state at
// the old index or the whole new state at the new index, never a mix, and no leftovers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStore } from '../../runtime/store/index.ts';
import { verifyStore } from '../../runtime/store/verify.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { BATCHES, NEW_INDEX, OLD_INDEX, OLD_PAIRS, PAIRS_PER_BATCH, statePairs } from './children/snapshotFixture.ts';

const tmp = tmpDirs('conclave-install-crash-');
after(() => tmp.cleanup());
const CHILD = join(import.meta.dirname, 'children', 'receive-snapshot.ts');
const CLUSTER = '0199aaaa-0000-7000-8000-0000000000c3';

/** run the receiving child on `dir`, SIGKILL it once `killAt` says so; what it printed last */
function receiveAndKill(dir: string, killAt: (line: string) => number | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = '';
    let stderr = '';
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        last = line;
        const delayMs = killAt(line);
        if (delayMs === null) continue;
        if (delayMs === 0) child.kill('SIGKILL');
        else setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === null && code !== 0) reject(new Error(`the child failed (exit ${code}): ${stderr}`));
      else resolve(last);
    });
  });
}

describe('installing a received snapshot survives a kill at any point', () => {
  const killPoints: Array<[string, (line: string) => number | null]> = [
    ['while receiving (after 3 of 8 batches)', (l) => (l === 'received 2' ? 0 : null)],
    ['as the install starts', (l) => (l === 'installing' ? 0 : null)],
    ['1 ms into the install', (l) => (l === 'installing' ? 1 : null)],
    ['5 ms into the install', (l) => (l === 'installing' ? 5 : null)],
    ['after the install', (l) => (l === 'installed' ? 0 : null)],
  ];
  const outcomes: string[] = [];
  after(() => console.log(`# outcomes: ${outcomes.join(' | ')}`));

  for (const [when, killAt] of killPoints) {
    it(`killed ${when}: the old state or the new one, whole`, async () => {
      const dir = join(tmp.make(), 'n1');
      const s = await openStore({ dataDir: dir, name: 'n1' });
      await s.initializeCluster({
        clusterId: CLUSTER,
        meta: { index: OLD_INDEX, term: 3, membership: { members: [{ nodeId: 'n', name: 'n1', voter: true }] } },
        pairs: statePairs(0, OLD_PAIRS, 'old'),
        hardState: { term: 3, vote: null, commit: OLD_INDEX },
      });
      await s.close();

      const last = await receiveAndKill(dir, killAt);
      const again = await openStore({ dataDir: dir, name: 'n1' });
      const state = [...again.stateRange({})];
      const applied = again.appliedIndex();
      const clusterId = again.identity().clusterId;
      await again.close();
      const report = await verifyStore(dir);
      assert.ok(report.ok, String(report.problem));
      outcomes.push(`${when}: last "${last}", index ${applied}`);
      assert.equal(clusterId, CLUSTER);
      if (applied === OLD_INDEX) assert.deepEqual(state, statePairs(0, OLD_PAIRS, 'old'), 'the old state, whole');
      else {
        assert.equal(applied, NEW_INDEX, 'the old index or the new one');
        assert.deepEqual(state, statePairs(0, BATCHES * PAIRS_PER_BATCH, 'new'), 'the new state, whole');
      }
      const stateRecords = (report.dbs.state?.records ?? 0) + (report.dbs.state2?.records ?? 0);
      assert.equal(stateRecords, state.length, 'no pairs of the other state are left in the store');
      if (last.startsWith('received')) assert.equal(applied, OLD_INDEX, 'killed while receiving: the old state');
      if (last === 'installed') assert.equal(applied, NEW_INDEX, 'killed after the install: the new state');
    });
  }
});
