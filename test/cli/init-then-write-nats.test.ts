// Issue 17 item 10: `conclave init --node N` returns once N can take writes — a fresh one-voter
// cluster elects itself at once — so the very next `kv put … --via N` succeeds. Real nats-server,
// real `conclave run` processes at the default raft timing, through the CLI.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cliCluster } from '../helpers/cliCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';

describe('init, then write at once (real NATS, CLI)', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: 'itw', tmpPrefix: 'conclave-init-write-' });

  it('init returns when the node leads: the next write via it succeeds, every time (admin protocol and CLI, 4 fresh nodes)', async () => {
    // default timing (no raft section): heartbeat 50 ms, election timeout 500 ms
    const names = ['w1', 'w2', 'w3', 'w4'];
    const procs = await Promise.all(names.map((n) => c.spawn(n, { raft: undefined })));
    for (const p of procs) await p.waitForOutput(/controller .* is running/, 90_000);
    // what the CLI sends, back to back without a process start-up in between
    for (const n of ['w1', 'w2', 'w3']) {
      const t0 = Date.now();
      const init = (await c.admin(n, 'init', {})) as { clusterId: string };
      const initMs = Date.now() - t0;
      const put = await c.admin(n, 'propose', { command: { op: 'put', key: 'color', value: `blue-${n}` } }).then(
        () => 'ok',
        (err: Error) => err.message,
      );
      console.log(`# ${n}: init answered in ${initMs} ms (cluster ${init.clusterId}); put right after: ${put}`);
      assert.equal(put, 'ok');
    }
    // and through the CLI, as the README's quick tour does
    const init = await c.cli(['init', '--node', 'w4']);
    assert.equal(init.code, 0, init.stderr);
    const put = await c.cli(['kv', 'put', 'color', 'blue', '--via', 'w4']);
    assert.equal(put.code, 0, put.stderr);
    const get = await c.cli(['kv', 'get', 'color', '--via', 'w4']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.trim(), 'blue');
  });
});
