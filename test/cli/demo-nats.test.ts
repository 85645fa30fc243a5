// `conclave demo` on a real nats-server: NATS_URL (or --nats) moves the demo's three controllers and
// its intruder onto that server, each run under a subject prefix of its own (two demos on one server
// do not meet), and an unreachable server is one clear error with exit code 3.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { baseEnv, CliProcess, runCli } from '../helpers/cli.ts';
import { type ClusterView, checkDemoTour } from '../helpers/demo.ts';
import { freePort, type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

const skip = natsServerSkipReason();

/** the common tour checks, plus what a NATS run adds: the server and its own prefix named, the CLI hint */
async function checkDemo(demo: CliProcess, natsUrl: string): Promise<{ clusterId: string; prefix: string; view: ClusterView }> {
  const { clusterId, view } = await checkDemoTour(demo);
  const first = demo.stdout.split('\n')[0]!;
  const prefix = new RegExp(`^Conclave demo — three controllers on NATS at ${natsUrl}, subject prefix (demo-[0-9a-f]{8})$`).exec(first)?.[1];
  assert.ok(prefix, `the first line names NATS, the server and the prefix:\n${demo.output()}`);
  assert.match(demo.stdout, new RegExp(`conclave cluster list --via ctrl2 --nats ${natsUrl} --prefix ${prefix}`), 'it says how to reach it with the CLI');
  return { clusterId, prefix, view };
}

describe('the demo on NATS', { skip }, () => {
  let nats: NatsServerHandle;
  before(async () => {
    nats = await startNatsServer();
  });
  after(async () => {
    await nats?.stop();
  });

  it('runs on the server NATS_URL names, next to a second demo given --nats, without the two meeting; SIGINT stops each with exit 0', async () => {
    const a = new CliProcess(['demo', '--inspect', '127.0.0.1:0'], { env: baseEnv({ NATS_URL: nats.url }) });
    const b = new CliProcess(['demo', '--inspect', '127.0.0.1:0', '--nats', nats.url], { env: baseEnv({ NATS_URL: undefined }) });
    try {
      const [ra, rb] = await Promise.all([checkDemo(a, nats.url), checkDemo(b, nats.url)]);
      assert.notEqual(ra.prefix, rb.prefix, 'each run has its own subject prefix');
      assert.notEqual(ra.clusterId, rb.clusterId);
      // the put it prints works as printed, signed with the demo's own operator key; unsigned, it is refused
      const printed = new RegExp(`CONCLAVE_OPERATOR_KEY=(\\S+) npx conclave kv put color blue --via ctrl3 --nats ${nats.url} --prefix ${ra.prefix} `).exec(a.stdout);
      assert.ok(printed, `it prints a put signed with its operator key:\n${a.output()}`);
      const put = ['kv', 'put', 'color', 'blue', '--via', 'ctrl3', '--nats', nats.url, '--prefix', ra.prefix];
      const signed = await runCli(put, { env: baseEnv({ NATS_URL: undefined, CONCLAVE_OPERATOR_KEY: printed[1] }) });
      assert.equal(signed.code, 0, signed.stderr);
      const unsigned = await runCli(put, { env: baseEnv({ NATS_URL: undefined, CONCLAVE_OPERATOR_KEY: undefined }) });
      assert.equal(unsigned.code, 1, unsigned.stderr);
      assert.match(unsigned.stderr, /^error: propose refused by ctrl3: not authorized/);
      // each inspector sees its own demo only (its members and, once it answers, its intruder): the
      // same names, but no node id and no cluster id of the other run
      for (const [mine, other] of [
        [ra, rb],
        [rb, ra],
      ] as const) {
        // a node the inspector has not reached yet has no node id: nothing to compare
        const theirs = new Set(other.view.nodes.map((n) => n.nodeId).filter((id) => id !== undefined));
        for (const node of mine.view.nodes) {
          assert.ok(['ctrl1', 'ctrl2', 'ctrl3', 'intruder'].includes(node.name), JSON.stringify(mine.view));
          assert.ok(node.nodeId === undefined || !theirs.has(node.nodeId), `node ${node.name} ${node.nodeId} of the other demo seen: ${JSON.stringify(mine.view)}`);
          assert.notEqual(node.clusterId, other.clusterId, 'no node of the other demo');
        }
      }
    } finally {
      const [ea, eb] = await Promise.all([a.kill('SIGINT'), b.kill('SIGINT')]);
      assert.equal(ea.code, 0, a.output());
      assert.equal(eb.code, 0, b.output());
    }
    assert.match(a.stdout, /stopping/);
  });

  it('a NATS server that cannot be reached is one clear error and exit 3, before anything starts', async () => {
    const port = await freePort(); // nothing listens there
    const viaEnv = await runCli(['demo', '--inspect', '127.0.0.1:0'], { env: baseEnv({ NATS_URL: `nats://127.0.0.1:${port}` }) });
    assert.equal(viaEnv.code, 3, `${viaEnv.stdout}\n${viaEnv.stderr}`);
    assert.match(viaEnv.stderr, new RegExp(`^error: the demo cannot reach NATS at nats://127\\.0\\.0\\.1:${port} \\(connection refused\\), taken from \\$NATS_URL\\..*unset NATS_URL to run the demo on the embedded in-process bus\\n$`));
    assert.equal(viaEnv.stdout, '', 'nothing of the tour was printed');

    const viaFlag = await runCli(['demo', '--nats', `nats://127.0.0.1:${port}`], { env: baseEnv({ NATS_URL: undefined }) });
    assert.equal(viaFlag.code, 3, viaFlag.stderr);
    assert.match(viaFlag.stderr, /^error: the demo cannot reach NATS .*taken from --nats\..*leave out --nats/);
  });
});
