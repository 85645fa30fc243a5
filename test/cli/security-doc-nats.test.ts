// Issue 11, operators and NATS credentials: docs/security.md's nats-server configuration, started
// verbatim, does what the page says. Controllers run with a user each; the operator user can do
// what the CLI offers; the monitoring user can read (status, list, kv get on the nodes' `.read`
// subjects) and is refused by the server when it tries to change anything; neither may publish raft
// traffic, and a controller may not listen on another controller's subjects.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectNats } from '../../runtime/transport/nats.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { baseEnv, CliProcess, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

const DOC = new URL('../../docs/security.md', import.meta.url);

function docConfig(): string {
  const text = readFileSync(DOC, 'utf8');
  const block = /```conf\n([\s\S]*?)```/.exec(text);
  assert.ok(block, 'docs/security.md has a ```conf block');
  return block[1]!;
}

describe("docs/security.md's nats-server configuration", { skip: natsServerSkipReason() }, () => {
  let nats: NatsServerHandle;
  let dir: string;
  const nodes: CliProcess[] = [];
  const as = (user: string, inbox?: string) =>
    baseEnv({ NATS_URL: nats.url, NATS_USER: user, NATS_PASSWORD: `change-me-${user}`, NATS_INBOX_PREFIX: inbox, CONCLAVE_PREFIX: undefined, NATS_TOKEN: undefined, NATS_CREDS: undefined, NATS_NKEY: undefined });
  const cli = (user: string, inbox: string, args: string[]) => runCli(args, { env: as(user, inbox), timeoutMs: 60_000 });

  before(async () => {
    nats = await startNatsServer({ config: docConfig() });
    dir = mkdtempSync(join(tmpdir(), 'conclave-security-doc-'));
    for (const name of ['ctrl1', 'ctrl2']) {
      const config = join(dir, `${name}.json`);
      writeFileSync(config, JSON.stringify({ name, dataDir: join(dir, name), nats: { user: name, pass: `change-me-${name}` } }));
      const p = new CliProcess(['run', '--config', config], { env: baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: undefined }) });
      nodes.push(p);
      await p.waitForOutput(/controller .* is running/, 60_000);
    }
  });
  after(async () => {
    for (const p of nodes) await p.kill('SIGTERM');
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the operator forms the cluster and writes; the monitoring user reads and is refused every change by the server', async () => {
    const ops = (args: string[]) => cli('ops', '_INBOX_ops', args);
    const init = await ops(['init', '--node', 'ctrl1']);
    assert.equal(init.code, 0, init.stderr);
    const add = await ops(['cluster', 'add', 'ctrl2', '--via', 'ctrl1']);
    assert.equal(add.code, 0, add.stderr);
    const put = await ops(['kv', 'put', 'color', '"blue"', '--via', 'ctrl2']);
    assert.equal(put.code, 0, `a write through a follower is forwarded with the controllers' own rights: ${put.stderr}`);

    const monitor = (args: string[]) => cli('monitor', '_INBOX_monitor', args);
    const status = await monitor(['status', '--node', 'ctrl2', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).leader, 'ctrl1');
    const list = await monitor(['cluster', 'list', '--via', 'ctrl2', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout).members.length, 2);
    const get = await monitor(['kv', 'get', 'color', '--via', 'ctrl2']);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /blue/);

    for (const change of [['kv', 'put', 'color', '"red"', '--via', 'ctrl1'], ['cluster', 'remove', 'ctrl2', '--via', 'ctrl1'], ['init', '--node', 'ctrl2']]) {
      const r = await monitor(change);
      assert.equal(r.code, 1, `${change.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: NATS refused it: permissions violation for publish to "conclave\.node\.ctrl[12]\.admin"/, change.join(' '));
    }
    const after = await ops(['kv', 'get', 'color', '--via', 'ctrl1']);
    assert.match(after.stdout, /blue/, 'nothing the monitoring user tried changed the data');
  });

  it('neither the operator nor a controller can publish raft traffic or listen where it must not', async () => {
    const errors: string[] = [];
    // a refused publish comes back as an 'error' status of the connection, a refused subscription to its handler's onError
    const onError = (err: unknown) => void errors.push(String((err as Error).message ?? err));
    // (the nats client gives the error's code there, not the subject)
    const onStatus = (s: { type: string; data?: unknown }) => void (s.type === 'error' && errors.push(`status error ${String(s.data)}`));
    const opsBus = await connectNats({ servers: nats.url, user: 'ops', pass: 'change-me-ops', inboxPrefix: '_INBOX_ops', onError, onStatus });
    const ctrl1Bus = await connectNats({ servers: nats.url, user: 'ctrl1', pass: 'change-me-ctrl1', onError, onStatus });
    try {
      opsBus.publish('conclave.node.ctrl1.peer', new TextEncoder().encode('{}'));
      await waitUntil(() => errors.includes('status error PERMISSIONS_VIOLATION'), { what: 'the server refusing ops a peer subject', context: () => errors.join('\n') });
      ctrl1Bus.subscribe('conclave.node.ctrl2.peer', () => {});
      await waitUntil(() => errors.some((e) => /Permissions Violation for Subscription to "conclave\.node\.ctrl2\.peer"/i.test(e)), { what: "the server refusing ctrl1 ctrl2's subjects", context: () => errors.join('\n') });
    } finally {
      await opsBus.close();
      await ctrl1Bus.close();
    }
  });

  it("one controller's credentials cannot make another controller's messages accepted", async () => {
    const ops = (args: string[]) => cli('ops', '_INBOX_ops', args);
    const statusOf = async (node: string) => {
      const r = await ops(['status', '--node', node, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { term: number; leader: string; clusterId: string; members: Array<{ name: string; nodeId: string }> };
    };
    const before = await statusOf('ctrl1');
    assert.equal(before.leader, 'ctrl1');
    const id = (name: string) => before.members.find((m) => m.name === name)!.nodeId;
    // ctrl1's NATS user may publish on every controller's peer subject (it must, to speak raft): with it,
    // messages under ctrl2's name and node id, to ctrl1, that would depose ctrl1 if taken
    const ctrl1Bus = await connectNats({ servers: nats.url, user: 'ctrl1', pass: 'change-me-ctrl1' });
    try {
      const asCtrl2 = { name: 'ctrl2', nodeId: id('ctrl2'), clusterId: before.clusterId, generation: 1 };
      const term = before.term + 10;
      const raft = (m: Record<string, unknown>) => encode(asCtrl2, 'raft', { messages: [{ from: id('ctrl2'), to: id('ctrl1'), term, ...m }] });
      ctrl1Bus.publish('conclave.node.ctrl1.peer', raft({ type: 'heartbeat', commit: 0, context: null }));
      ctrl1Bus.publish('conclave.node.ctrl1.peer', raft({ type: 'vote', lastIndex: 1000, lastTerm: term, transfer: true }));
      await ctrl1Bus.flush();
      // refused at ctrl1's door: not authenticated by ctrl2's committed key (logged, rate-limited)
      await nodes[0]!.waitForOutput(/"reason":"unsigned"[^\n]*dropped peer message|dropped peer message[^\n]*"reason":"unsigned"/, 30_000);
    } finally {
      await ctrl1Bus.close();
    }
    const after = await statusOf('ctrl1');
    assert.deepEqual({ term: after.term, leader: after.leader }, { term: before.term, leader: 'ctrl1' }, 'nothing ctrl1 forged as ctrl2 was taken');
    const put = await ops(['kv', 'put', 'after-forgery', '1', '--via', 'ctrl2']);
    assert.equal(put.code, 0, put.stderr);
  });
});
