// The standalone inspector and members that answer reads only to operators and readers (issue 11,
// `"reads": "signed"`), over a real nats-server: without a key the inspector shows each node's
// refusal (not a status it did not get); with a read-only key (`conclave inspect --operator-key`,
// the library's `signer`) it shows the node's status, and the key changes nothing in the cluster.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import { Inspector } from '../../runtime/inspect/inspector.ts';
import { createOperatorKey, operatorSigner } from '../../runtime/operatorKey.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { baseEnv, CliProcess, runCli, waitUntil } from '../helpers/cli.ts';
import { freePort, type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const PREFIX = 'sr';
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 1000 };

describe("the inspector and members with reads 'signed' (issue 11)", { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-inspect-signed-');
  let nats: NatsServerHandle;
  let bus: Bus;
  let node: Controller | null = null;
  let readerKey: string;
  const inspectors: Inspector[] = [];
  const tools: CliProcess[] = [];

  before(async () => {
    nats = await startNatsServer();
    bus = await connectNats({ servers: nats.url, name: 'inspector-test' });
    const root = tmp.make();
    readerKey = `${root}/reader.key`;
    const ops = createOperatorKey(`${root}/ops.key`);
    const reader = createOperatorKey(readerKey);
    node = await startController({
      name: 'r1',
      dataDir: `${root}/r1`,
      prefix: PREFIX,
      transport: { nats: { servers: nats.url } },
      raft: RAFT,
      operators: { keys: [ops.publicKey], readKeys: [reader.publicKey], reads: 'signed' },
    });
    await node.init();
    await node.waitForLeader(30_000);
  });
  after(async () => {
    for (const t of tools) await t.kill('SIGTERM');
    for (const i of inspectors) await i.stop();
    await node?.stop();
    await bus?.close();
    await nats?.stop();
    tmp.cleanup();
  });

  const inspect = async (signer?: ReturnType<typeof operatorSigner>) => {
    const inspector = new Inspector({ bus, prefix: PREFIX, statusEveryMs: 200, signer });
    inspectors.push(inspector);
    await inspector.start();
    return inspector;
  };
  const r1 = (inspector: Inspector) => inspector.cluster().nodes.find((n) => n.name === 'r1');

  it("without a key the node's card says it refused to answer; with a read-only key it shows the node's status", async () => {
    const term = node!.status().term;
    const without = await inspect();
    await waitUntil(() => r1(without)?.error !== undefined && r1(without)?.error !== 'not asked yet', { timeoutMs: 30_000, what: 'the unsigned inspector to ask r1' });
    assert.equal(r1(without)!.reachable, false);
    assert.match(String(r1(without)!.error), /not authorized: .*answers reads only to its operators and readers/);
    const signed = await inspect(operatorSigner(readerKey));
    await waitUntil(() => r1(signed)?.reachable === true, { timeoutMs: 30_000, what: 'the signed inspector to get r1 status' });
    assert.equal(r1(signed)!.role, 'leader');
    assert.equal(r1(signed)!.term, term);
    assert.equal(node!.status().term, term, 'reading changed nothing');
  });

  it('`conclave inspect --operator-key` signs its status requests; a key file that cannot be read is one error line, exit 2', async () => {
    const env = baseEnv({ CONCLAVE_OPERATOR_KEY: undefined, NATS_URL: undefined });
    const port = await freePort();
    const tool = new CliProcess(['inspect', '--listen', `127.0.0.1:${port}`, '--nats', nats.url, '--prefix', PREFIX, '--operator-key', readerKey], { env });
    tools.push(tool);
    await tool.waitForOutput(/inspector serving on (http:\/\/\S+)/, 90_000);
    const url = /inspector serving on (http:\/\/\S+)/.exec(tool.stdout)![1]!;
    let last: unknown = null;
    await waitUntil(
      async () => {
        const body = (await (await fetch(new URL('/api/cluster', url))).json()) as { nodes: Array<{ name: string; reachable: boolean; role?: string }> };
        last = body;
        return body.nodes.some((n) => n.name === 'r1' && n.reachable && n.role === 'leader');
      },
      { timeoutMs: 60_000, what: 'the CLI inspector to show r1 as leader', context: () => `last /api/cluster: ${JSON.stringify(last)}\n${tool.output()}` },
    );
    const missing = await runCli(['inspect', '--listen', '127.0.0.1:0', '--nats', nats.url, '--operator-key', `${tmp.make()}/none.key`], { env });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /^error: cannot read the operator key .*none\.key: ENOENT/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
  });
});
