// Operator keys at the command line, without NATS (issue 11, "Operators"): `operator keygen` writes a
// private key readable by its owner only and prints the public key; it never overwrites a key; a
// missing or foreign --operator-key, and a malformed operators.keys in a member's config, are usage
// errors (exit 2, one `error:` line) found before anything connects.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { operatorSigner } from '../../runtime/operatorKey.ts';
import { baseEnv, runCli } from '../helpers/cli.ts';
import { tmpDirs } from '../helpers/tmp.ts';

function assertUsage(r: { code: number | null; stderr: string }, pattern: RegExp, how: string): void {
  assert.equal(r.code, 2, `${how}: exit ${r.code}\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `${how}: one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern, how);
}

describe('operator keys at the command line', () => {
  const tmp = tmpDirs('conclave-operator-keys-');
  after(() => tmp.cleanup());

  it('keygen writes the private key mode 0600, prints its public key, and never overwrites a key', async () => {
    const dir = tmp.make();
    const file = join(dir, 'ops.key');
    const made = await runCli(['operator', 'keygen', '--out', file]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(made.stdout.trim(), operatorSigner(file).publicKey);
    const pub = await runCli(['operator', 'pubkey', '--key', file]);
    assert.equal(pub.stdout, made.stdout);
    assertUsage(await runCli(['operator', 'keygen', '--out', file]), /the file exists/, 'keygen over an existing key');
    assert.equal(operatorSigner(file).publicKey, made.stdout.trim(), 'the key is unchanged');
    const json = await runCli(['operator', 'keygen', '--out', join(dir, 'two.key'), '--json']);
    assert.equal(JSON.parse(json.stdout).file, join(dir, 'two.key'));
  });

  it('a missing or foreign --operator-key is a usage error before connecting', async () => {
    const dir = tmp.make();
    const env = baseEnv({ NATS_URL: 'nats://127.0.0.1:1' });
    assertUsage(await runCli(['kv', 'put', 'k', 'v', '--via', 'n1', '--operator-key', join(dir, 'none.key')], { env }), /cannot read the operator key .*ENOENT.*operator keygen/, 'missing file');
    const rsa = join(dir, 'rsa.key');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    assertUsage(await runCli(['cluster', 'remove', 'n2', '--via', 'n1'], { env: { ...env, CONCLAVE_OPERATOR_KEY: rsa } }), /rsa key; an operator key is Ed25519/, 'an RSA key from the environment');
    const text = join(dir, 'text.key');
    writeFileSync(text, 'hello\n');
    assertUsage(await runCli(['init', '--node', 'n1', '--operator-key', text], { env }), /is not an operator key/, 'not a key');
  });

  it('a malformed operators.keys in a member config is a usage error naming the key', async () => {
    const dir = tmp.make();
    const config = join(dir, 'c.json');
    writeFileSync(config, JSON.stringify({ name: 'n1', dataDir: join(dir, 'n1'), operators: { keys: ['not-a-key'] } }));
    assertUsage(await runCli(['run', '--config', config]), /"operators\.keys\.0": must be an operator public key/, 'a malformed key');
    writeFileSync(config, JSON.stringify({ name: 'n1', dataDir: join(dir, 'n1'), operators: { keys: [] } }));
    assertUsage(await runCli(['run', '--config', config]), /"operators\.keys": must list at least one/, 'no key');
    writeFileSync(config, JSON.stringify({ name: 'n1', dataDir: join(dir, 'n1'), operators: { reads: 'signed' } }));
    assertUsage(await runCli(['run', '--config', config]), /"operators": must give "keys" .* or "keysFile"/, 'neither keys nor keysFile');
  });

  it('a keys file (--operators, $CONCLAVE_OPERATORS, operators.keysFile) with a line that is no key, or with no key, is a usage error naming file and line', async () => {
    const dir = tmp.make();
    const keys = join(dir, 'ops.pub');
    const made = await runCli(['operator', 'keygen', '--out', join(dir, 'ops.key')]);
    assert.equal(made.code, 0, made.stderr);
    const good = made.stdout.trim();
    writeFileSync(keys, `# the operators\n${good}\nnot-a-key\n`);
    const env = baseEnv({ NATS_URL: 'nats://127.0.0.1:1', CONCLAVE_OPERATORS: undefined });
    const run = ['run', '--name', 'n1', '--data-dir', join(dir, 'n1')];
    assertUsage(await runCli([...run, '--operators', keys], { env }), new RegExp(`${keys}:3: "not-a-key" is not an operator public key`), '--operators');
    assertUsage(await runCli(run, { env: { ...env, CONCLAVE_OPERATORS: keys } }), /ops\.pub:3: "not-a-key"/, '$CONCLAVE_OPERATORS');
    const config = join(dir, 'c.json');
    writeFileSync(config, JSON.stringify({ name: 'n1', dataDir: join(dir, 'n1'), operators: { keysFile: 'ops.pub' } }));
    assertUsage(await runCli(['run', '--config', config], { env }), /ops\.pub:3: "not-a-key"/, 'operators.keysFile, relative to the config file');
    writeFileSync(keys, '# nobody yet\n\n');
    assertUsage(await runCli([...run, '--operators', keys], { env }), /lists no operator public key .*operator keygen/, 'a file without keys');
    assertUsage(await runCli([...run, '--operators', join(dir, 'none.pub')], { env }), /cannot read the operator keys file .*ENOENT/, 'a missing file');
  });
});
