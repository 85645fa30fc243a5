// `store.maxBytes` in the `conclave run` config (etcd's --quota-backend-bytes): a real controller
// process with a small quota refuses the write that would grow its store past it (FULL), halts
// instead of acknowledging what is not stored, and exits with one `error:` line that names the
// setting and what to do; an invalid quota is a usage error (exit 2) naming the key.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { waitUntil } from '../helpers/cli.ts';
import { cliCluster } from '../helpers/cliCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';

const MiB = 1024 * 1024;

function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith('error: '));
  assert.equal(lines.length, 1, `expected one "error: " line, got:\n${stderr}`);
  return lines[0]!;
}

describe('store.maxBytes: a store quota in the run config (real NATS, CLI)', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'quota', tmpPrefix: 'conclave-quota-' });

  it('a controller with a 1 MiB quota refuses the write past it (FULL), exits 1 naming store.maxBytes; acknowledged writes survive without the quota', async () => {
    const p = await c.run('q1', { store: { maxBytes: MiB } });
    const init = await c.cli(['init', '--node', 'q1']);
    assert.equal(init.code, 0, init.stderr);
    const value = 'v'.repeat(64 * 1024);
    const acked: string[] = [];
    let refusal: Error | null = null;
    for (let i = 0; i < 200 && refusal === null; i++) {
      await c.admin('q1', 'propose', { command: { op: 'put', key: `k${i}`, value } }, 10_000).then(
        () => acked.push(`k${i}`),
        (err: Error) => (refusal = err),
      );
    }
    assert.ok(refusal, `a write was refused before 200 × 64 KiB went into a 1 MiB store (acked ${acked.length})`);
    assert.ok(acked.length > 0, 'some writes fit first');
    console.log(`# ${acked.length} writes acknowledged; then: ${(refusal as Error).message}`);
    const exit = await p.exited;
    assert.equal(exit.code, 1, p.output());
    const line = oneErrorLine(p.stderr);
    assert.match(line, /^error: store .* is full: .* store\.maxBytes is 1048576/);
    assert.match(line, /restart the node with a larger store\.maxBytes/);

    // without the quota the same data dir opens, keeps every acknowledged write, and takes more
    await c.run('q1', {});
    await waitUntil(async () => (await c.status('q1')).role === 'leader', { what: 'q1 to lead again', timeoutMs: 60_000 });
    for (const key of acked) {
      const got = await c.cli(['kv', 'get', key, '--via', 'q1']);
      assert.equal(got.code, 0, `${key}: ${got.stderr}`);
    }
    const put = await c.cli(['kv', 'put', 'after', 'room', '--via', 'q1']);
    assert.equal(put.code, 0, put.stderr);
  });

  it('an invalid store.maxBytes is refused: exit 2, one error line naming the key', async () => {
    const cases: [unknown, RegExp][] = [
      [0, /store\.maxBytes.*at least 1048576/],
      [-5, /store\.maxBytes.*at least 1048576/],
      [1000, /store\.maxBytes.*at least 1048576/],
      [MiB + 0.5, /store\.maxBytes.*whole number/],
      ['1GiB', /store\.maxBytes.*number of bytes/],
    ];
    for (const [maxBytes, pattern] of cases) {
      const file = join(c.dir, 'bad.json');
      await writeFile(file, JSON.stringify({ name: 'bad1', dataDir: join(c.dir, 'bad1'), store: { maxBytes } }));
      const r = await c.cli(['run', '--config', file]);
      assert.equal(r.code, 2, `${JSON.stringify(maxBytes)}: exit ${r.code}\n${r.stderr}`);
      assert.match(oneErrorLine(r.stderr), pattern, JSON.stringify(maxBytes));
    }
    const file = join(c.dir, 'bad.json');
    await writeFile(file, JSON.stringify({ name: 'bad1', dataDir: join(c.dir, 'bad1'), store: { maxByte: MiB } }));
    const r = await c.cli(['run', '--config', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneErrorLine(r.stderr), /unknown key "store\.maxByte"/);
  });
});
