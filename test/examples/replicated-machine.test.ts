// `npm run example:replicated-machine` (acceptance 3): every node holds the same lease state after
// the leader is stopped (failover) and after a restore from snapshot (a restarted node, and a new
// node that installed the leader's snapshot after the log was compacted).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runNpmScript } from './run.ts';

/** "n1=held(worker-b#2) n2=…" → { n1: 'held(worker-b#2)', … } */
function states(line: string): Record<string, string> {
  return Object.fromEntries([...line.matchAll(/(n\d)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

it('npm run example:replicated-machine: all nodes in the same state value after failover and after restore', async () => {
  const r = await runNpmScript('example:replicated-machine');
  const out = `${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.equal(r.code, 0, out);
  assert.match(r.stdout, /worker-a acquires via n2: granted \(fencing 1\)/, out);
  assert.match(r.stdout, /worker-b acquires via n3: refused, held by worker-a/, out);

  const failover = /after failover: (.*)/.exec(r.stdout)?.[1];
  assert.ok(failover, out);
  assert.deepEqual(states(failover), { n2: 'held(worker-b#2)', n3: 'held(worker-b#2)' }, out);
  assert.match(r.stdout, /new leader: n[23]/);

  // the log was compacted, and the new node's log starts after the snapshot it installed
  const compacted = Number(/compacted its log at index (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(compacted > 10, out);
  const installed = /installed the leader's snapshot at index (\d+); its log starts at (\d+)/.exec(r.stdout);
  assert.ok(installed && Number(installed[1]) >= compacted && Number(installed[2]) === Number(installed[1]) + 1, out);

  const restored = /after restore: (.*)/.exec(r.stdout)?.[1];
  assert.ok(restored, out);
  assert.deepEqual(states(restored), { n1: 'held(worker-b#2)', n2: 'held(worker-b#2)', n3: 'held(worker-b#2)', n4: 'held(worker-b#2)' }, out);
  assert.match(r.stdout, /stopped cleanly\s*$/);
});
