// Issue 11, "Operators … require an operator credential": over NATS a member takes a change from a
// client only when it is signed with an operator key the member lists, and a member that lists none
// takes no change at all — `init` of a blank node included — until keys are given (here on SIGHUP,
// without a restart, as after an upgrade from a release without operator keys). Reads stay open. On
// the in-process bus only the host process speaks: a controller there without keys takes changes
// unsigned. A real nats-server and real `conclave run` processes; the CLI as a user runs it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminCall } from '../../runtime/adminClient.ts';
import { CLI_SENDER } from '../../runtime/cli/client.ts';
import { startController } from '../../runtime/controller.ts';
import { codeOf } from '../../runtime/errors.ts';
import { connectNats, createInProcessBus } from '../../runtime/transport/index.ts';
import { baseEnv, CliProcess, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { testOperator } from '../helpers/testOperator.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { refusedCount } from '../hostile/helpers.ts';

const PUT = { command: { op: 'put', key: 'k', value: 1 } };

describe('over NATS a member without operator keys takes no change from a client (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-operator-required-');
  let nats: NatsServerHandle;
  let dir = '';
  /** no operator key anywhere: neither the nodes nor the CLI get the tests' own */
  let env: NodeJS.ProcessEnv = {};
  before(async () => {
    nats = await startNatsServer();
    dir = tmp.make();
    env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: 'opreq', CONCLAVE_OPERATOR_KEY: undefined, CONCLAVE_OPERATORS: undefined });
  });
  after(async () => {
    await nats?.stop();
    tmp.cleanup();
  });

  it('init of a blank node is refused with what to do, and nothing changes; keys given on SIGHUP let the signed init through', async () => {
    const config = join(dir, 'r1.json');
    writeFileSync(config, JSON.stringify({ name: 'r1', dataDir: join(dir, 'r1') }));
    const node = new CliProcess(['run', '--config', config], { env });
    try {
      await node.waitForOutput(/controller r1 is running/);
      assert.match(node.output(), /no operator keys: this node takes no change from a client over NATS/, 'the log says so at start');

      const op = testOperator();
      for (const [how, extra] of [
        ['unsigned', []],
        ['signed with a key nobody listed', ['--operator-key', op.keyFile]],
      ] as const) {
        const refused = await runCli(['init', '--node', 'r1', ...extra], { env });
        assert.equal(refused.code, 1, `${how}: ${refused.stderr}`);
        const lines = refused.stderr.split('\n').filter((l) => l.length > 0);
        assert.equal(lines.length, 1, `${how}: one line\n${refused.stderr}`);
        assert.match(lines[0]!, /^error: init refused by r1: not authorized: this node lists no operator key .*conclave operator keygen --out ops\.key > ops\.pub.*--operators ops\.pub/, how);
      }
      const status = await runCli(['status', '--node', 'r1', '--json'], { env });
      assert.equal(status.code, 0, 'a read needs no key');
      const seen = JSON.parse(status.stdout) as { phase: string; clusterId: string | null };
      assert.deepEqual([seen.phase, seen.clusterId], ['uninitialized', null], 'nothing changed');

      // the operator gives the node its key; the running node takes it on SIGHUP
      writeFileSync(config, JSON.stringify({ name: 'r1', dataDir: join(dir, 'r1'), operators: { keysFile: op.keysFile } }));
      node.child.kill('SIGHUP');
      await node.waitForOutput(/operator keys replaced/);
      const init = await runCli(['init', '--node', 'r1', '--operator-key', op.keyFile], { env });
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stdout, /^[0-9a-f]{8}-/);
      const put = await runCli(['kv', 'put', 'color', 'blue', '--via', 'r1'], { env });
      assert.equal(put.code, 1, 'unsigned: refused now too');
      assert.match(put.stderr, /not authorized: the request is not signed with an operator key/);
      const signed = await runCli(['kv', 'put', 'color', 'blue', '--via', 'r1'], { env: { ...env, CONCLAVE_OPERATOR_KEY: op.keyFile } });
      assert.equal(signed.code, 0, signed.stderr);
      const get = await runCli(['kv', 'get', 'color', '--via', 'r1'], { env });
      assert.equal(get.stdout.trim(), 'blue');
    } finally {
      await node.kill('SIGTERM');
    }
  });

  it('a library controller on NATS without keys refuses an unsigned change; on the in-process bus it takes it', async () => {
    const onNats = await startController({ name: 'l1', dataDir: join(dir, 'l1'), prefix: 'opreq-lib', transport: { nats: { servers: nats.url } } });
    const client = await connectNats({ servers: nats.url, name: 'opreq-client' });
    try {
      await assert.rejects(adminCall(client, 'opreq-lib', 'l1', CLI_SENDER, 'init', {}, 10_000), (err: unknown) => {
        assert.equal(codeOf(err), 'UNAUTHORIZED');
        assert.match((err as Error).message, /lists no operator key/);
        return true;
      });
      assert.equal(onNats.status().phase, 'uninitialized');
      assert.equal(refusedCount([onNats], 'admin:unauthorized:no-operators'), 1, 'counted');
      // the controller's own methods are the host app's: no key
      await onNats.init();
      await waitUntil(() => onNats.status().role === 'leader', { what: 'l1 leads' });
      await assert.rejects(adminCall(client, 'opreq-lib', 'l1', CLI_SENDER, 'propose', PUT, 10_000), (err: unknown) => codeOf(err) === 'UNAUTHORIZED');
    } finally {
      await client.close();
      await onNats.stop();
    }

    const bus = createInProcessBus();
    const inProcess = await startController({ name: 'p1', dataDir: join(dir, 'p1'), transport: { bus } });
    try {
      const client = bus.connect('host-app');
      await adminCall(client, 'conclave', 'p1', CLI_SENDER, 'init', {}, 10_000);
      await waitUntil(() => inProcess.status().role === 'leader', { what: 'p1 leads' });
      await adminCall(client, 'conclave', 'p1', CLI_SENDER, 'propose', PUT, 10_000);
      assert.equal(refusedCount([inProcess], 'admin:unauthorized:no-operators'), 0);
    } finally {
      await inProcess.stop();
    }
  });
});
