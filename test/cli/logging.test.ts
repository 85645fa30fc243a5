// Logs of a `conclave run` process: pino JSON on stderr (not a terminal), every line names the
// node; every line of the controller carries node id, cluster id and phase; phase changes at info.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, CliProcess, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

describe('structured logs', { skip: natsServerSkipReason() }, () => {
  let nats: NatsServerHandle;
  let dir: string;
  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'conclave-logs-'));
  });
  after(async () => {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('every line is JSON with the node name; controller lines carry nodeId, clusterId and phase', async () => {
    const env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: 'logs' });
    const p = new CliProcess(['run', '--name', 'logged1', '--data-dir', join(dir, 'logged1')], { env });
    try {
      await p.waitForOutput(/is running/);
      assert.equal((await runCli(['init', '--node', 'logged1'], { env })).code, 0);
      await waitUntil(() => /role leader/.test(p.stderr), { what: 'the leader log line', context: () => p.output() });
      assert.equal((await p.kill('SIGTERM')).code, 0);
      const lines = p.stderr.split('\n').filter((l) => l.trim() !== '');
      assert.ok(lines.length >= 5, p.output());
      const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      let clusterId: unknown = null;
      for (const r of records) {
        assert.equal(r.node, 'logged1', `node on every line: ${JSON.stringify(r)}`);
        assert.equal(typeof r.level, 'number');
        if (r.component !== undefined) {
          assert.match(String(r.nodeId), /^[0-9a-f-]{36}$/, JSON.stringify(r));
          assert.ok('clusterId' in r && 'phase' in r, `clusterId and phase on controller lines: ${JSON.stringify(r)}`);
          if (typeof r.clusterId === 'string') clusterId = r.clusterId;
        }
      }
      const phases = records.filter((r) => typeof r.msg === 'string' && (r.msg as string).startsWith('phase ')).map((r) => [r.msg, r.level]);
      assert.deepEqual(phases, [
        ['phase uninitialized', 30],
        ['phase bootstrapping', 30],
        ['phase member', 30],
      ]);
      assert.match(String(clusterId), /^[0-9a-f-]{36}$/, 'lines after init carry the cluster id');
    } finally {
      await p.kill('SIGKILL');
    }
  });
});
