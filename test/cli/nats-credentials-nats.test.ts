// Issue 11, "NATS credentials everywhere": the CLI and `conclave run` reach a nats-server that
// requires user and password, a token, an nkey, a .creds file (operator mode) or a TLS client
// certificate — by flag, by environment, by config file and in the URL — and an inbox prefix lets
// the server confine a user's replies. Without the credentials the CLI says why, in one line, exit 3.
// Real nats-servers, a real controller, the real CLI; no credential reaches a log line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, CliProcess, type CliResult, runCli } from '../helpers/cli.ts';
import { nkeyUser, operatorMode, tlsFiles } from '../helpers/natsAuth.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

const PREFIX = 'creds';

/** a nats-server with `serverConfig`, and one controller `c1` connected to it with `nodeNats` (its config file's nats block) */
async function serverWithNode(dir: string, serverConfig: string, nodeNats: Record<string, unknown>): Promise<{ nats: NatsServerHandle; node: CliProcess }> {
  const nats = await startNatsServer({ config: serverConfig });
  const config = join(dir, `c1-${nats.port}.json`);
  writeFileSync(config, JSON.stringify({ name: 'c1', dataDir: join(dir, `c1-${nats.port}`), prefix: PREFIX, nats: { servers: nats.url, ...nodeNats } }));
  const node = new CliProcess(['run', '--config', config], { env: baseEnv({ NATS_URL: undefined }) });
  await node.waitForOutput(/controller c1 is running/, 60_000);
  return { nats, node };
}

/** `conclave status --node c1` with these arguments and environment (NATS_* of the test's own environment removed) */
function status(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const clean: Record<string, string | undefined> = { NATS_URL: undefined, NATS_USER: undefined, NATS_PASSWORD: undefined, NATS_TOKEN: undefined, NATS_CREDS: undefined, NATS_NKEY: undefined };
  return runCli(['status', '--node', 'c1', '--prefix', PREFIX, '--json', ...args], { env: baseEnv({ ...clean, ...env }) });
}

function assertReached(r: CliResult, how: string): void {
  assert.equal(r.code, 0, `${how}: ${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).name, 'c1', how);
}

function assertRefused(r: CliResult, how: string, reason: RegExp): void {
  assertRefusedWith(r, 3, how, reason);
}

function assertRefusedWith(r: CliResult, exit: number, how: string, reason: RegExp): void {
  assert.equal(r.code, exit, `${how}: exit ${r.code}\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${how}: one line\n${r.stderr}`);
  assert.match(lines[0]!, reason, how);
}

describe('the CLI and `conclave run` on nats-servers that require credentials', { skip: natsServerSkipReason() }, () => {
  let dir: string;
  const running: Array<{ nats: NatsServerHandle; node: CliProcess }> = [];
  const start = async (serverConfig: string, nodeNats: Record<string, unknown>) => {
    const s = await serverWithNode(dir, serverConfig, nodeNats);
    running.push(s);
    return s;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'conclave-creds-'));
  });
  after(async () => {
    for (const { nats, node } of running) {
      await node.kill('SIGTERM');
      await nats.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('user and password: by flag, by environment and in the URL; none or a wrong one is refused', async () => {
    const { nats, node } = await start('authorization { user: "ops", password: "pw-1" }', { user: 'ops', pass: 'pw-1' });
    const host = nats.url.replace('nats://', '');
    assertReached(await status(['--nats', nats.url, '--nats-user', 'ops', '--nats-password', 'pw-1']), 'flags');
    assertReached(await status([], { NATS_URL: nats.url, NATS_USER: 'ops', NATS_PASSWORD: 'pw-1' }), 'environment');
    assertReached(await status(['--nats', `nats://ops:pw-1@${host}`]), 'URL');
    // a credential flag beats the URL's
    assertRefused(await status(['--nats', `nats://ops:pw-1@${host}`, '--nats-user', 'ops', '--nats-password', 'wrong']), 'flag over URL', /authorization violation/);
    assertRefused(await status(['--nats', nats.url]), 'none', /authorization violation.*Give the credentials this server expects: --nats-user/);
    const wrong = await status(['--nats', `nats://ops:wrong-secret@${host}`]);
    assertRefused(wrong, 'wrong password', /authorization violation/);
    assert.doesNotMatch(wrong.stderr, /wrong-secret/, 'the password is not printed');
    assert.doesNotMatch(node.stdout + node.stderr, /pw-1/, 'the node logs no password');
  });

  it('token: by flag and in the URL', async () => {
    const { nats } = await start('authorization { token: "tok-1" }', { token: 'tok-1' });
    assertReached(await status(['--nats', nats.url, '--nats-token', 'tok-1']), 'flag');
    assertReached(await status(['--nats', nats.url.replace('nats://', 'nats://tok-1@')]), 'URL');
    assertRefused(await status(['--nats', nats.url]), 'none', /authorization violation/);
  });

  it('nkey seed file: by flag and by environment', async () => {
    const nk = nkeyUser(dir);
    const { nats } = await start(`authorization { users: [ { nkey: "${nk.publicKey}" } ] }`, { nkeyFile: nk.seedFile });
    assertReached(await status(['--nats', nats.url, '--nats-nkey', nk.seedFile]), 'flag');
    assertReached(await status([], { NATS_URL: nats.url, NATS_NKEY: nk.seedFile }), 'environment');
    assertRefused(await status(['--nats', nats.url]), 'none', /authorization violation/);
  });

  it('creds file (operator mode): by flag; an unreadable one is a usage error (exit 2)', async () => {
    const op = operatorMode(dir);
    const { nats } = await start(op.serverConfig, { credsFile: op.credsFile });
    assertReached(await status(['--nats', nats.url, '--nats-creds', op.credsFile]), 'flag');
    assertRefused(await status(['--nats', nats.url]), 'none', /authorization violation/);
    const missing = await status(['--nats', nats.url, '--nats-creds', join(dir, 'nope.creds')]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /^error: cannot read the NATS credentials file .*nope\.creds/);
  });

  it('TLS with a client certificate: by flag and by environment', async () => {
    const t = tlsFiles(dir);
    const { nats } = await start(`tls { cert_file: "${t.serverCert}", key_file: "${t.serverKey}", ca_file: "${t.ca}", verify: true }`, {
      tls: { caFile: t.ca, certFile: t.clientCert, keyFile: t.clientKey },
    });
    assertReached(await status(['--nats', nats.url, '--nats-tls-ca', t.ca, '--nats-tls-cert', t.clientCert, '--nats-tls-key', t.clientKey]), 'flags');
    assertReached(await status([], { NATS_URL: nats.url, NATS_CA: t.ca, NATS_CERT: t.clientCert, NATS_KEY: t.clientKey }), 'environment');
    const noCert = await status(['--nats', nats.url, '--nats-tls-ca', t.ca]);
    assert.equal(noCert.code, 3, `without a client certificate: ${noCert.stderr}`);
  });

  it('an inbox prefix lets the server confine a user to its own replies', async () => {
    const { nats } = await start(
      `authorization { users: [
        { user: "ctl", password: "ctl-pw" }
        { user: "ops", password: "ops-pw", permissions: { publish: ["${PREFIX}.node.*.admin"], subscribe: ["_INBOX_ops.>"] } }
      ] }`,
      { user: 'ctl', pass: 'ctl-pw' },
    );
    const ops = ['--nats', nats.url, '--nats-user', 'ops', '--nats-password', 'ops-pw'];
    assertReached(await status([...ops, '--nats-inbox-prefix', '_INBOX_ops']), 'with the inbox prefix');
    // the shared _INBOX is not allowed to ops: one line naming the cause and the fix
    assertRefusedWith(await status([...ops, '--timeout', '3000']), 1, 'without the inbox prefix', /^error: NATS refused it: permissions violation for subscription to "_INBOX\..*--nats-inbox-prefix/);
    const bad = await status([...ops, '--nats-inbox-prefix', '_INBOX.>']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^error: NATS inbox prefix "_INBOX\.>" must be NATS subject tokens/);
  });

  it('credentials given two ways at once are a usage error (exit 2)', async () => {
    const r = await status(['--nats', 'nats://127.0.0.1:1', '--nats-token', 't', '--nats-user', 'u', '--nats-password', 'p']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: NATS credentials: give one way to authenticate, not user and password and token/);
    const half = await status(['--nats', 'nats://127.0.0.1:1', '--nats-user', 'u']);
    assert.equal(half.code, 2, half.stderr);
    assert.match(half.stderr, /a user needs a password/);
  });
});
