// `npm run example:in-process`: three controllers in one process on the in-process bus.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runNpmScript } from './run.ts';

it('npm run example:in-process forms a 3-node cluster, writes, reads the same from each node and stops cleanly', async () => {
  const r = await runNpmScript('example:in-process');
  const out = `${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.equal(r.code, 0, out);
  const clusterId = /ctrl1 initialized cluster ([0-9a-f-]{36})/.exec(r.stdout)?.[1];
  assert.ok(clusterId, out);
  assert.match(r.stdout, /added ctrl2 \(added\)/);
  assert.match(r.stdout, /added ctrl3 \(added\)/);
  assert.match(r.stdout, /members: ctrl1 \(leader\), ctrl2, ctrl3\n/, 'three voters');
  for (const name of ['ctrl1', 'ctrl2', 'ctrl3']) {
    assert.match(r.stdout, new RegExp(`read on ${name}: color=green \\(linearizable\\), size=42 \\(local\\)`), out);
  }
  assert.match(r.stdout, /same cluster everywhere: true/);
  assert.match(r.stdout, /stopped cleanly\s*$/);
});
