// Operators over a real nats-server (issue 11, "Operators"): members configured with an operator key
// (`operators.keys`) take client requests that change the cluster only when signed with it. Without
// a key, with another key, or replayed, `kv put`, `cluster remove` and `cluster transfer-leadership`
// are refused with UNAUTHORIZED (the CLI: exit 1, one `error:` line) and change nothing — data,
// membership, leader and term compared on every node before and after. With the key they work, also
// through a follower (which checks the operator's signature and forwards the request member-signed).
// Read-only requests need no key. Internal requests (a removal notice, a forward) are not an
// operator's to send, whatever key they carry. Three controllers in this process; the CLI runs as a
// child process, as a user runs it; the forger has its own NATS connection.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminCall } from '../../runtime/adminClient.ts';
import { CLI_SENDER } from '../../runtime/cli/client.ts';
import { type Controller, startController } from '../../runtime/controller.ts';
import { createOperatorKey, operatorSigner } from '../../runtime/operatorKey.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { type AdminSigner, signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { adminSubjects } from '../../runtime/wire/adminSubjects.ts';
import { decodeReply } from '../../runtime/wire/codec.ts';
import { baseEnv, type CliResult, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { appliedPairs, appliedValue, clusterState, codeOfCall, leaderOf, natsWithForger, refusedCount, senderOf, startVoters, stopAll } from './helpers.ts';

const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };
const PREFIX = 'oa';

describe('operators over NATS: only an operator key changes the cluster (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-operator-auth-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let nodes: Controller[] = [];
  let root: string;
  /** the operator key the members list, and one they do not */
  let opsKey: string;
  let wrongKey: string;
  let ops: ReturnType<typeof operatorSigner>;
  let wrong: AdminSigner;

  /** the CLI against this cluster; `key`: --operator-key FILE; CONCLAVE_OPERATOR_KEY from `env` only */
  const cli = (args: string[], opts: { key?: string; env?: Record<string, string> } = {}) =>
    runCli([...args, '--nats', nats.url, '--prefix', PREFIX, ...(opts.key === undefined ? [] : ['--operator-key', opts.key])], {
      env: baseEnv({ CONCLAVE_OPERATOR_KEY: undefined, NATS_URL: undefined, ...opts.env }),
    });

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    root = tmp.make();
    opsKey = `${root}/ops.key`;
    wrongKey = `${root}/wrong.key`;
    const made = await runCli(['operator', 'keygen', '--out', opsKey]);
    assert.equal(made.code, 0, made.stderr);
    const publicKey = made.stdout.trim();
    assert.match(publicKey, /^[A-Za-z0-9_-]{43}$/, 'keygen prints the public key alone on stdout');
    assert.equal((await runCli(['operator', 'keygen', '--out', wrongKey])).code, 0);
    ops = operatorSigner(opsKey);
    wrong = operatorSigner(wrongKey);
    assert.equal(ops.publicKey, publicKey);
    await startVoters(nodes, nats.url, root, PREFIX, ['o1', 'o2', 'o3'], RAFT, { operators: { keys: [publicKey] } });
  });
  after(async () => {
    await stopAll(nodes, forger, nats, tmp);
    nodes = [];
  });

  const everyState = () => clusterState(nodes);
  const refused = (reason: string) => refusedCount(nodes, `admin:unauthorized:${reason}`);
  const followers = () => nodes.filter((c) => c !== leaderOf(nodes));

  function assertRefused(r: CliResult, pattern: RegExp, how: string): void {
    assert.equal(r.code, 1, `${how}: exit ${r.code}\n${r.stderr}`);
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 1, `${how}: one line on stderr, got:\n${r.stderr}`);
    assert.match(lines[0]!, /^error: .* not authorized: /, how);
    assert.match(lines[0]!, pattern, how);
    assert.equal(r.stdout, '', `${how}: nothing on stdout`);
  }

  /** send raw bytes to a node's admin subject as the forger; the reply, decoded */
  async function ask(to: Controller, data: Uint8Array) {
    const reply = await forger.request(adminSubjects(PREFIX, to.name).admin, data, { timeoutMs: 10_000 });
    return decodeReply(reply.data);
  }

  it('(a) without a key, kv put, cluster remove and transfer-leadership are refused with UNAUTHORIZED (exit 1) and change nothing', async () => {
    const leader = leaderOf(nodes);
    const [follower, other] = followers();
    const before = everyState();
    const count = refused('unsigned');
    const attempts: Array<[string, string[]]> = [
      ['kv put via the leader', ['kv', 'put', 'k', 'v', '--via', leader.name]],
      ['kv put via a follower', ['kv', 'put', 'k', 'v', '--via', follower!.name]],
      ['kv del via a follower', ['kv', 'del', 'k', '--via', follower!.name]],
      ['cluster remove via the leader', ['cluster', 'remove', other!.name, '--via', leader.name]],
      ['cluster remove via a follower', ['cluster', 'remove', leader.name, '--via', follower!.name]],
      ['transfer-leadership via the leader', ['cluster', 'transfer-leadership', follower!.name, '--via', leader.name]],
      ['transfer-leadership via a follower', ['cluster', 'transfer-leadership', '--via', follower!.name]],
    ];
    for (const [how, args] of attempts) assertRefused(await cli(args), /--operator-key FILE/, how);
    assert.equal(refused('unsigned'), count + attempts.length, 'every refusal is counted');
    // the library's client meets the same code
    assert.equal(await codeOfCall(adminCall(forger, PREFIX, leader.name, CLI_SENDER, 'propose', { command: { op: 'put', key: 'k', value: 1 } }, 10_000)), 'UNAUTHORIZED');
    assert.equal(await codeOfCall(adminCall(forger, PREFIX, follower!.name, CLI_SENDER, 'cluster.remove', { name: other!.name }, 10_000)), 'UNAUTHORIZED');
    assert.deepEqual(everyState(), before);
    assert.ok(nodes.every((c) => appliedValue(c, 'k') === undefined));
  });

  it('(c) a key the members do not list is refused, and so is an operator key on an internal request', async () => {
    const leader = leaderOf(nodes);
    const [follower, other] = followers();
    const before = everyState();
    const count = refused('bad-signature');
    assertRefused(await cli(['kv', 'put', 'k', 'wrong', '--via', leader.name], { key: wrongKey }), /not one of this node's 1 operator key/, 'kv put with another key');
    assertRefused(await cli(['cluster', 'remove', other!.name, '--via', follower!.name], { key: wrongKey }), /operators\.keys/, 'cluster remove with another key');
    assertRefused(
      await cli(['cluster', 'transfer-leadership', follower!.name, '--via', leader.name], { env: { CONCLAVE_OPERATOR_KEY: wrongKey } }),
      /operators\.keys/,
      'transfer-leadership with another key from the environment',
    );
    assert.equal(refused('bad-signature'), count + 3);
    assert.equal(await codeOfCall(adminCall(forger, PREFIX, leader.name, CLI_SENDER, 'propose', { command: { op: 'put', key: 'k', value: 1 } }, 10_000, wrong)), 'UNAUTHORIZED');
    // internal requests are a member's: the operator's own key does not make them acceptable
    const notice = await ask(follower!, signAdminRequest(ops, adminSubjects(PREFIX, follower!.name).admin, senderOf(leader), 'member.removed', {}));
    assert.equal(!notice.ok && notice.error.code, 'UNAUTHENTICATED', 'a removal notice signed by the operator');
    const forward = await ask(leader, signAdminRequest(ops, adminSubjects(PREFIX, leader.name).admin, senderOf(follower!), 'propose', { command: { op: 'put', key: 'k', value: 'fwd' }, forwarded: true }));
    assert.equal(!forward.ok && forward.error.code, 'UNAUTHENTICATED', 'a "forwarded" request signed by the operator');
    assert.deepEqual(everyState(), before);
    assert.ok(nodes.every((c) => appliedValue(c, 'k') === undefined));
  });

  it('(d) the same signed bytes replayed are refused, and so are they on another node or long after', async () => {
    const leader = leaderOf(nodes);
    const [follower] = followers();
    const signed = signAdminRequest(ops, adminSubjects(PREFIX, leader.name).admin, CLI_SENDER, 'propose', { command: { op: 'put', key: 'replayed', value: 1 } });
    const first = await ask(leader, signed);
    assert.equal(first.ok, true, `the signed request is taken once: ${JSON.stringify(first)}`);
    await waitUntil(() => nodes.every((c) => c.store.stateGet('replayed') === 1), { timeoutMs: 30_000, what: 'every node to apply the signed write' });
    await leader.propose({ op: 'put', key: 'replayed', value: 2 });
    await waitUntil(() => nodes.every((c) => c.store.stateGet('replayed') === 2), { timeoutMs: 30_000, what: 'every node to apply the later write' });
    const before = everyState();
    const count = refused('replayed');
    const again = await ask(leader, signed);
    assert.equal(!again.ok && again.error.code, 'UNAUTHORIZED', 'the replay');
    assert.match(!again.ok ? again.error.message : '', /received before/);
    assert.equal(refused('replayed'), count + 1);
    const elsewhere = await ask(follower!, signed);
    assert.equal(!elsewhere.ok && elsewhere.error.code, 'UNAUTHORIZED', 'the same bytes sent to another node');
    const stale = signAdminRequest({ ...ops, now: () => Date.now() - 120_000 }, adminSubjects(PREFIX, leader.name).admin, CLI_SENDER, 'propose', { command: { op: 'put', key: 'replayed', value: 3 } });
    const staleReply = await ask(leader, stale);
    assert.equal(!staleReply.ok && staleReply.error.code, 'UNAUTHORIZED', 'signed two minutes ago');
    assert.deepEqual(everyState(), before);
    assert.ok(nodes.every((c) => appliedValue(c, 'replayed') === 2), 'no replay wrote its old value');
  });

  it('(e) status, cluster list and kv get (also stale) need no key', async () => {
    const [follower] = followers();
    const status = await cli(['status', '--node', follower!.name, '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).name, follower!.name);
    const list = await cli(['cluster', 'list', '--via', follower!.name, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout).members.length, 3);
    for (const stale of [[], ['--stale']]) {
      const got = await cli(['kv', 'get', 'replayed', '--via', follower!.name, ...stale]);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(got.stdout.trim(), '2');
    }
  });

  it('(b) with the operator key, kv put, transfer-leadership and cluster remove work, through the leader and through a follower', async () => {
    const leader = leaderOf(nodes);
    const [follower, other] = followers();
    const put = await cli(['kv', 'put', 'signed', '"by the leader"', '--via', leader.name], { key: opsKey });
    assert.equal(put.code, 0, put.stderr);
    const forwarded = await cli(['kv', 'put', 'forwarded', '"through a follower"', '--via', follower!.name], { env: { CONCLAVE_OPERATOR_KEY: opsKey } });
    assert.equal(forwarded.code, 0, forwarded.stderr);
    await waitUntil(() => nodes.every((c) => c.store.stateGet('signed') === 'by the leader' && c.store.stateGet('forwarded') === 'through a follower'), {
      timeoutMs: 30_000,
      what: 'every node to apply both signed writes',
    });
    const del = await cli(['kv', 'del', 'signed', '--via', other!.name], { key: opsKey });
    assert.equal(del.code, 0, del.stderr);
    await waitUntil(() => nodes.every((c) => c.store.stateGet('signed') === undefined), { timeoutMs: 30_000, what: 'every node to apply the delete' });
    // transfer through a follower (forwarded to the leader)
    const termBefore = leader.status().term;
    const transfer = await cli(['cluster', 'transfer-leadership', follower!.name, '--via', other!.name], { key: opsKey });
    assert.equal(transfer.code, 0, transfer.stderr);
    await waitUntil(() => nodes.every((c) => c.status().leader === follower!.name), { timeoutMs: 30_000, what: `every node to follow ${follower!.name}` });
    assert.ok(follower!.status().term > termBefore, 'the term moved on with the transfer');
    // remove the old leader through a node that is not the leader now (forwarded)
    const remove = await cli(['cluster', 'remove', leader.name, '--via', other!.name], { key: opsKey });
    assert.equal(remove.code, 0, remove.stderr);
    await waitUntil(() => [follower!, other!].every((c) => c.status().members.length === 2 && !c.status().members.some((m) => m.name === leader.name)), {
      timeoutMs: 30_000,
      what: `${leader.name} to leave the configuration`,
    });
  });
});

describe("operators over NATS with reads 'signed': a read needs an operator or a read-only key, which changes nothing", { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-operator-reads-');
  let nats: NatsServerHandle;
  let node: Controller | null = null;
  let opsKey: string;
  let readerKey: string;

  const cli = (args: string[], key?: string) =>
    runCli([...args, '--nats', nats.url, '--prefix', 'or', ...(key === undefined ? [] : ['--operator-key', key])], { env: baseEnv({ CONCLAVE_OPERATOR_KEY: undefined, NATS_URL: undefined }) });

  before(async () => {
    nats = await startNatsServer();
    const root = tmp.make();
    opsKey = `${root}/ops.key`;
    readerKey = `${root}/reader.key`;
    const ops = createOperatorKey(opsKey);
    const reader = createOperatorKey(readerKey);
    node = await startController({ name: 'r1', dataDir: `${root}/r1`, prefix: 'or', transport: { nats: { servers: nats.url } }, raft: RAFT, operators: { keys: [ops.publicKey], readKeys: [reader.publicKey], reads: 'signed' } });
    await node.init();
    await node.waitForLeader(30_000);
    await node.propose({ op: 'put', key: 'colour', value: 'blue' });
  });
  after(async () => {
    await node?.stop();
    await nats?.stop();
    tmp.cleanup();
  });

  it('(f) status, cluster list and kv get without a key are refused; with the read-only key they work, and it cannot write', async () => {
    for (const args of [['status', '--node', 'r1'], ['cluster', 'list', '--via', 'r1'], ['kv', 'get', 'colour', '--via', 'r1', '--stale']]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: .* refused by r1: not authorized: .*answers reads only to its operators and readers/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    const status = await cli(['status', '--node', 'r1', '--json'], readerKey);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).role, 'leader');
    const get = await cli(['kv', 'get', 'colour', '--via', 'r1'], readerKey);
    assert.equal(get.stdout.trim(), 'blue', get.stderr);
    const before = { term: node!.status().term, data: appliedPairs(node!) };
    const put = await cli(['kv', 'put', 'colour', 'red', '--via', 'r1'], readerKey);
    assert.equal(put.code, 1, put.stderr);
    assert.match(put.stderr, /signed with a read-only key/);
    assert.deepEqual({ term: node!.status().term, data: appliedPairs(node!) }, before);
    const opsPut = await cli(['kv', 'put', 'colour', 'red', '--via', 'r1'], opsKey);
    assert.equal(opsPut.code, 0, opsPut.stderr);
    const opsGet = await cli(['kv', 'get', 'colour', '--via', 'r1'], opsKey);
    assert.equal(opsGet.stdout.trim(), 'red', 'an operator key reads too');
  });
});
