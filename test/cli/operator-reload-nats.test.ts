// Revoking an operator key without a restart (issue 11, operators): `conclave run` rereads its config
// file on SIGHUP and puts its operator keys in force. A key taken out of `operators.keys` is refused
// from then on (UNAUTHORIZED, exit 1), a key put in works; a config file with an unusable key is
// refused with one error line and the keys in force stay. Over a real nats-server, the CLI as a user
// runs it; the embedding API's setOperators is the same step.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, CliProcess, runCli } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

describe('operator keys reloaded on SIGHUP', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-operator-reload-');
  let nats: NatsServerHandle;
  let node: CliProcess | undefined;
  let dir = '';
  const keys: Record<'a' | 'b', { file: string; pub: string }> = { a: { file: '', pub: '' }, b: { file: '', pub: '' } };
  const env = () => baseEnv({ CONCLAVE_OPERATOR_KEY: undefined, NATS_URL: undefined, CONCLAVE_PREFIX: undefined });
  const cli = (args: string[], key: 'a' | 'b') => runCli([...args, '--nats', nats.url, '--prefix', 'or', '--operator-key', keys[key].file], { env: env(), timeoutMs: 60_000 });
  const configFile = () => join(dir, 'r1.json');
  const writeConfig = (operatorKeys: string[]) =>
    writeFileSync(configFile(), JSON.stringify({ name: 'r1', dataDir: join(dir, 'r1'), prefix: 'or', nats: { servers: nats.url }, operators: { keys: operatorKeys } }));

  before(async () => {
    nats = await startNatsServer();
    dir = tmp.make();
    for (const k of ['a', 'b'] as const) {
      keys[k].file = join(dir, `${k}.key`);
      const made = await runCli(['operator', 'keygen', '--out', keys[k].file]);
      assert.equal(made.code, 0, made.stderr);
      keys[k].pub = made.stdout.trim();
    }
    writeConfig([keys.a.pub]);
    node = new CliProcess(['run', '--config', configFile()], { env: env() });
    await node.waitForOutput(/controller .* is running/, 60_000);
    const init = await cli(['init', '--node', 'r1'], 'a');
    assert.equal(init.code, 0, init.stderr);
  });
  after(async () => {
    await node?.kill('SIGTERM');
    await nats?.stop();
    tmp.cleanup();
  });

  it('a key taken out of operators.keys is refused after SIGHUP, the key put in works; no restart', async () => {
    const before = await cli(['kv', 'put', 'k', '1', '--via', 'r1'], 'a');
    assert.equal(before.code, 0, before.stderr);
    const refusedB = await cli(['kv', 'put', 'k', '2', '--via', 'r1'], 'b');
    assert.equal(refusedB.code, 1, 'b is not an operator yet');
    assert.match(refusedB.stderr, /not authorized/);

    writeConfig([keys.b.pub]);
    node!.child.kill('SIGHUP');
    await node!.waitForOutput(/operator keys replaced/, 30_000);
    const revoked = await cli(['kv', 'put', 'k', '3', '--via', 'r1'], 'a');
    assert.equal(revoked.code, 1, `a was revoked: ${revoked.stdout}`);
    assert.match(revoked.stderr, /^error: .*not authorized/);
    const added = await cli(['kv', 'put', 'k', '4', '--via', 'r1'], 'b');
    assert.equal(added.code, 0, added.stderr);
    const got = await cli(['kv', 'get', 'k', '--via', 'r1'], 'b');
    assert.match(got.stdout, /4/);
    assert.ok(node!.running, 'the same process all along');
  });

  it('a config file with an unusable key is refused with one error line; the keys in force stay', async () => {
    const text = readFileSync(configFile(), 'utf8');
    writeConfig(['not-a-key']);
    node!.child.kill('SIGHUP');
    await node!.waitForOutput(/operator keys not reloaded/, 30_000);
    writeFileSync(configFile(), text);
    const still = await cli(['kv', 'put', 'k', '5', '--via', 'r1'], 'b');
    assert.equal(still.code, 0, still.stderr);
    const stillRefused = await cli(['kv', 'put', 'k', '6', '--via', 'r1'], 'a');
    assert.equal(stillRefused.code, 1);
    assert.ok(node!.running);
  });
});
