// Issue 17 item 9: operator mistakes that used to be accepted or mis-reported. Each is refused with
// exit 2 and one `error:` line that says what is wrong — and the process ends (a controller that
// cannot serve its inspector does not keep running with its store locked). A real nats-server is
// there so that nothing is refused merely because the bus is unreachable.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, CliProcess, runCli, waitUntil } from '../helpers/cli.ts';
import { freePort, type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const NAME_RULE = /\^\[a-z0-9\]\[a-z0-9_-\]\{0,62\}\$/;

describe('operator mistakes are refused: exit 2, one error line, the process ends', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-operator-mistakes-');
  let nats: NatsServerHandle;
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  before(async () => {
    nats = await startNatsServer();
    dir = tmp.make();
    env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: 'mistakes' });
  });
  after(async () => {
    await nats?.stop();
    tmp.cleanup();
  });

  /** run a command that must end by itself; one still running after a generous deadline is killed and reported as such */
  async function outcome(args: string[]): Promise<{ code: number | null; stderr: string; output: string }> {
    const p = new CliProcess(args, { env });
    await waitUntil(() => !p.running, { what: `conclave ${args.join(' ')} to exit`, timeoutMs: 60_000 }).catch(() => p.kill('SIGKILL'));
    const exit = await p.exited;
    return { code: exit.signal === null ? exit.code : null, stderr: p.stderr, output: p.output() };
  }

  function oneErrorLine(stderr: string, pattern: RegExp): void {
    const lines = stderr.split('\n').filter((l) => l.startsWith('error: '));
    assert.equal(lines.length, 1, `expected one "error: " line, got:\n${stderr}`);
    assert.match(lines[0]!, pattern);
  }

  it('run --inspect with a port out of range: exit 2 naming the flag', async () => {
    const r = await outcome(['run', '--name', 'i1', '--data-dir', join(dir, 'i1'), '--inspect', '127.0.0.1:70000']);
    assert.equal(r.code, 2, r.output);
    oneErrorLine(r.stderr, /--inspect|inspect/);
    assert.match(r.stderr, /70000/);
  });

  it('run --inspect on a port in use: exit 2 naming the address, and the store is not left locked', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const dataDir = join(dir, 'i2');
      const r = await outcome(['run', '--name', 'i2', '--data-dir', dataDir, '--inspect', `127.0.0.1:${port}`]);
      assert.equal(r.code, 2, r.output);
      oneErrorLine(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*in use`));
      // the same data dir opens again at once: the failed run released its store
      const again = new CliProcess(['run', '--name', 'i2', '--data-dir', dataDir], { env });
      await again.waitForOutput(/controller i2 is running/, 60_000);
      await again.kill('SIGTERM');
    } finally {
      blocker.close();
    }
  });

  it('--node, --via and node-name arguments that are not node names: exit 2 naming the rule, nothing reaches the bus', async () => {
    const cases: string[][] = [
      ['status', '--node', '*'],
      ['status', '--node', '>'],
      ['init', '--node', 'a.b'],
      ['kv', 'put', 'k', 'v', '--via', 'ctrl1.admin'],
      ['kv', 'get', 'k', '--via', '*'],
      ['kv', 'del', 'k', '--via', 'a.b'],
      ['cluster', 'list', '--via', '>'],
      ['cluster', 'add', 'a.b', '--via', 'ctrl1'],
      ['cluster', 'remove', '*', '--via', 'ctrl1'],
      ['cluster', 'transfer-leadership', 'ctrl1.admin', '--via', 'ctrl1'],
      ['snapshot', 'save', join(dir, 'snap.json'), '--via', 'a.b'],
    ];
    for (const args of cases) {
      const r = await runCli(args, { env, timeoutMs: 60_000 });
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      oneErrorLine(r.stderr, NAME_RULE);
    }
  });

  it('a config with heartbeatMs not well below electionTimeoutMs: exit 2 naming both keys', async () => {
    const file = join(dir, 'timing.json');
    for (const raft of [{ heartbeatMs: 500, electionTimeoutMs: 500 }, { heartbeatMs: 1000, electionTimeoutMs: 300 }, { heartbeatMs: 600 }]) {
      await writeFile(file, JSON.stringify({ name: 't1', dataDir: join(dir, 't1'), raft }));
      const r = await outcome(['run', '--config', file]);
      assert.equal(r.code, 2, `${JSON.stringify(raft)}\n${r.output}`);
      oneErrorLine(r.stderr, /raft\.heartbeatMs.*raft\.electionTimeoutMs|raft\.electionTimeoutMs.*raft\.heartbeatMs/);
    }
  });

  it('a FIFO (or a directory) as config file: exit 2, "not a regular file", without blocking', async () => {
    const fifo = join(dir, 'config.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await outcome(['run', '--config', fifo]);
    assert.equal(r.code, 2, r.output);
    oneErrorLine(r.stderr, /config\.fifo.*not a regular file/);
    const d = await outcome(['run', '--config', dir]);
    assert.equal(d.code, 2, d.output);
    oneErrorLine(d.stderr, /not a regular file/);
  });
});
