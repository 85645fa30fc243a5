// Example 5 (examples/disaster-recovery) run as a user runs it: `npm run example:disaster-recovery`.
// It must recover the survivor, re-add blank nodes with the original data, show the stale member
// refused at both ends, add it once wiped, exit 0 and leave no temporary folder behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { it } from 'node:test';
import { baseEnv, ROOT } from '../helpers/cli.ts';

it('npm run example:disaster-recovery: recovered cluster with the original data; stale member refused until wiped', async () => {
  const leftovers = () => readdirSync(tmpdir()).filter((n) => n.startsWith('conclave-disaster-recovery-'));
  const before = new Set(leftovers());
  const child = spawn('npm', ['run', '--silent', 'example:disaster-recovery'], { cwd: ROOT, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const out = `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  assert.equal(code, 0, out);
  const clusterId = /^cluster ([0-9a-f-]{36}): voters ctrl1, ctrl2, ctrl3; color="blue"$/m.exec(stdout)?.[1];
  assert.ok(clusterId, out);
  assert.match(stdout, new RegExp(`^recovered ctrl1 \\(node [0-9a-f-]+\\) as the sole voter of cluster ${clusterId}$`, 'm'));
  assert.match(stdout, /generation: 1 -> 2/);
  assert.match(stdout, new RegExp(`^ctrl1: leader, cluster ${clusterId}, members ctrl1; color="blue"$`, 'm'));
  assert.match(stdout, /^voters: ctrl1, ctrl4, ctrl5; limits=\{"cpu":2,"memory":"1Gi"\}$/m);
  assert.match(stdout, new RegExp(`^ctrl1 reported: generation refused: ctrl2 is a stale member of cluster ${clusterId}`, 'm'));
  assert.match(stdout, /^ctrl2 is now phase failed: generation refused: .*wipe its data dir and add it again/m);
  assert.match(stdout, /^voters: ctrl1, ctrl4, ctrl5 \(ctrl2 is not one\)$/m);
  assert.match(stdout, /^voters: ctrl1, ctrl2, ctrl4, ctrl5; ctrl2 reads color="blue", recovered=true \(generation 2\)$/m);
  assert.deepEqual(leftovers().filter((n) => !before.has(n)), [], 'its temporary folder is removed');
});
