// Usage and configuration errors: exit 2, one `error:` line naming what is wrong. No NATS needed:
// these are refused before any connection.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../runtime/store/index.ts';
import { runCli } from '../helpers/cli.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conclave-usage-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertOneErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.split('\n').filter((l) => l.startsWith('error: '));
  assert.ok(lines.length >= 1, `expected an "error: " line, got:\n${stderr}`);
  assert.match(lines[0]!, pattern);
}

describe('conclave CLI usage errors', () => {
  it('--help for every command exits 0 and describes it', async () => {
    for (const args of [['--help'], ['run', '--help'], ['init', '--help'], ['status', '--help'], ['kv', 'put', '--help'], ['demo', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: conclave/);
    }
  });

  it('an unknown flag exits 2 with an error line naming it', async () => {
    const r = await runCli(['status', '--node', 'ctrl1', '--bogus']);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /unknown option '--bogus'/);
  });

  it('an unknown command exits 2', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /unknown command 'frobnicate'/);
  });

  it('a missing required flag exits 2', async () => {
    const r = await runCli(['init']);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /--node/);
  });

  it('run without a name exits 2 naming the key', async () => {
    const r = await runCli(['run', '--data-dir', join(dir, 'noname')]);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /node name is required/);
  });

  it('an invalid node name exits 2', async () => {
    const r = await runCli(['run', '--name', 'Bad.Name', '--data-dir', join(dir, 'bad')]);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /"name"/);
  });

  it('an unknown config key exits 2 naming the key (nested too)', async () => {
    const file = join(dir, 'unknown.json');
    await writeFile(file, JSON.stringify({ name: 'ctrl1', raft: { heartbeatMs: 50, electionTimeotMs: 10 } }));
    const r = await runCli(['run', '--config', file]);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /unknown key "raft\.electionTimeotMs"/);
    const top = join(dir, 'unknown-top.json');
    await writeFile(top, JSON.stringify({ name: 'ctrl1', colour: 'blue' }));
    const r2 = await runCli(['run', '--config', top]);
    assert.equal(r2.code, 2);
    assertOneErrorLine(r2.stderr, /unknown key "colour"/);
  });

  it('a config value of the wrong type exits 2 naming the key', async () => {
    const file = join(dir, 'type.json');
    await writeFile(file, JSON.stringify({ name: 'ctrl1', initialMembers: 'ctrl2' }));
    const r = await runCli(['run', '--config', file]);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /"initialMembers"/);
  });

  it('a config file that is not JSON or does not exist exits 2 naming the file', async () => {
    const file = join(dir, 'broken.json');
    await writeFile(file, '{ name: ');
    const r = await runCli(['run', '--config', file]);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /broken\.json is not valid JSON/);
    const r2 = await runCli(['run', '--config', join(dir, 'missing.json')]);
    assert.equal(r2.code, 2);
    assertOneErrorLine(r2.stderr, /cannot read config file .*missing\.json: ENOENT/);
  });

  it('a bad --log-level or CONCLAVE_LOG_LEVEL exits 2', async () => {
    const r = await runCli(['run', '--name', 'ctrl1', '--log-level', 'loud']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error: .*loud/);
  });

  it('run --record without --inspect exits 2 before connecting', async () => {
    const r = await runCli(['run', '--name', 'rec1', '--data-dir', join(dir, 'rec1'), '--record', join(dir, 'rec.ndjson'), '--nats', 'nats://127.0.0.1:1']);
    assert.equal(r.code, 2, r.stderr);
    assertOneErrorLine(r.stderr, /--record needs --inspect/);
  });

  it('a bad --timeout exits 2', async () => {
    const r = await runCli(['status', '--node', 'ctrl1', '--timeout', 'soon']);
    assert.equal(r.code, 2);
    assertOneErrorLine(r.stderr, /--timeout soon/);
  });

  it('an unreachable NATS server exits 3 and says what to do', async () => {
    const r = await runCli(['status', '--node', 'ctrl1', '--nats', 'nats://127.0.0.1:1', '--timeout', '1000']);
    assert.equal(r.code, 3);
    assertOneErrorLine(r.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1.*nats-server/);
  });

  it('a bad --init-from source exits 2 before connecting, and leaves the store uninitialized', async () => {
    for (const [label, content, pattern] of [
      ['missing', null, /does not exist/],
      ['empty', '', /the file is empty/],
      ['malformed', '{"kv": ', /not valid JSON/],
      ['unknown-format', '{"rows": []}', /not a recognised format/],
      ['no-data', '{"kv": {}}', /contains no data/],
    ] as const) {
      const src = join(dir, `${label}.json`);
      if (content !== null) await writeFile(src, content);
      const dataDir = join(dir, `data-${label}`);
      // an unreachable NATS: if the source were not checked first, this would exit 3
      const r = await runCli(['run', '--name', 'ctrl1', '--data-dir', dataDir, '--init-from', src, '--nats', 'nats://127.0.0.1:1']);
      assert.equal(r.code, 2, `${label}: ${r.stderr}`);
      assertOneErrorLine(r.stderr, new RegExp(`cannot initialize from .*${label}\\.json: .*${pattern.source}`));
      const store = await openStore({ dataDir, name: 'ctrl1' });
      assert.equal(store.identity().clusterId, null, `${label}: the store must stay uninitialized`);
      assert.equal(store.lastIndex(), 0);
      await store.close();
    }
  });
});
