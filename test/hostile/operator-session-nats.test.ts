// Operator sessions over a real nats-server (issue 11, "Cost"): the library's operator signer opens
// one session per node with a signed `operator.session` and then MACs each request in it
// (runtime/wire/operatorSession.ts). Each way around that is refused with UNAUTHORIZED, counted by
// its reason, and changes nothing (data, membership, term, leader, log end compared): a request whose
// MAC is wrong, one replayed, one in a session the node does not know, one in the session of a key
// revoked since (the embedding API's setOperators: what SIGHUP does), a change in a read-only key's
// session, a session open signed by another key, too old, or unsigned. The library reopens its
// session by itself once the node forgets it (a restart). The CLI signs each request instead.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { adminCall } from '../../runtime/adminClient.ts';
import { CLI_SENDER } from '../../runtime/cli/client.ts';
import { type Controller, startController } from '../../runtime/controller.ts';
import { createOperatorKey, operatorSigner } from '../../runtime/operatorKey.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { signAdminRequest } from '../../runtime/wire/adminAuth.ts';
import { adminSubjects } from '../../runtime/wire/adminSubjects.ts';
import { decodeReply, encode } from '../../runtime/wire/codec.ts';
import { type ClientSession, OperatorSessions } from '../../runtime/wire/operatorSession.ts';
import { baseEnv, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { appliedValue, clusterState, codeOfCall, natsWithForger, refusedCount } from './helpers.ts';

const RAFT = { heartbeatMs: 50, electionTimeoutMs: 1000 };
const PREFIX = 'os';
const put = (key: string, value: unknown) => ({ command: { op: 'put', key, value } });

describe('operator sessions over NATS: one signature per session, a MAC per request (issue 11)', { skip: natsServerSkipReason() }, () => {
  const tmp = tmpDirs('conclave-operator-session-');
  let nats: NatsServerHandle;
  let forger: Bus;
  let node: Controller;
  let root: string;
  const keys = { ops: { file: '', publicKey: '' }, other: { file: '', publicKey: '' }, reader: { file: '', publicKey: '' }, stranger: { file: '', publicKey: '' } };
  /** every operator.session request seen on the node's subjects */
  let opens = 0;
  /** the auth of every propose seen on the node's admin subject */
  const proposeAuth: unknown[] = [];
  /** propose.batch requests seen */
  let batches = 0;

  const subject = () => adminSubjects(PREFIX, 's1').admin;
  const operators = () => ({ keys: [keys.ops.publicKey, keys.other.publicKey], readKeys: [keys.reader.publicKey], reads: 'signed' as const });
  const start = () => startController({ name: 's1', dataDir: `${root}/s1`, prefix: PREFIX, transport: { nats: { servers: nats.url } }, raft: RAFT, operators: operators() });
  const state = () => clusterState([node]);
  const refused = (reason: string) => refusedCount([node], `admin:unauthorized:${reason}`);

  /** a session of `file`'s key with the node, opened as the library does, and the means to seal requests in it */
  async function sessionOf(file: string): Promise<{ sessions: OperatorSessions; session: ClientSession }> {
    const signer = operatorSigner(file, { sessions: false });
    const sessions = new OperatorSessions(signer.publicKey);
    const session = await sessions.session(subject(), (request) => adminCall(forger, PREFIX, 's1', CLI_SENDER, 'operator.session', request, 10_000, signer));
    assert.ok(session !== null);
    return { sessions, session };
  }

  /** raw bytes to the node's admin subject; the reply, decoded */
  async function ask(data: Uint8Array) {
    return decodeReply((await forger.request(subject(), data, { timeoutMs: 10_000 })).data);
  }

  /** the reply is an UNAUTHORIZED refusal, counted once more for `reason`, and nothing changed */
  async function assertRefused(reason: string, send: () => Promise<ReturnType<typeof decodeReply>>, how: string): Promise<void> {
    const before = state();
    const count = refused(reason);
    const reply = await send();
    assert.equal(reply.ok, false, `${how}: refused`);
    assert.equal(!reply.ok && reply.error.code, 'UNAUTHORIZED', how);
    assert.match(!reply.ok ? reply.error.message : '', /not authorized/, how);
    assert.equal(refused(reason), count + 1, `${how}: counted as ${reason}`);
    assert.deepEqual(state(), before, `${how}: nothing changed`);
  }

  before(async () => {
    ({ nats, forger } = await natsWithForger());
    root = tmp.make();
    for (const name of ['ops', 'other', 'reader', 'stranger'] as const) keys[name] = createOperatorKey(`${root}/${name}.key`);
    for (const s of [adminSubjects(PREFIX, 's1').admin, adminSubjects(PREFIX, 's1').read]) {
      forger.subscribe(s, (msg) => {
        const envelope = JSON.parse(Buffer.from(msg.data).toString('utf8')) as { type: string; auth?: unknown; body?: { commands?: unknown[] } };
        if (envelope.type === 'operator.session') opens++;
        if (envelope.type === 'propose') proposeAuth.push(envelope.auth);
        if (envelope.type === 'propose.batch') {
          batches++;
          // a batch's commands share its one authentication
          for (const _ of envelope.body?.commands ?? []) proposeAuth.push(envelope.auth);
        }
      });
    }
    await forger.flush();
    node = await start();
    await node.init();
    await node.waitForLeader(30_000);
  });
  after(async () => {
    await node?.stop();
    await forger?.close();
    await nats?.stop();
    tmp.cleanup();
  });

  it('(a) the library: one session open, then 64 puts in flight, in batches each MACed in it; reads too', async () => {
    const ops = operatorSigner(keys.ops.file);
    const opensBefore = opens;
    const batchesBefore = batches;
    proposeAuth.length = 0;
    await Promise.all(Array.from({ length: 64 }, (_, i) => adminCall(forger, PREFIX, 's1', CLI_SENDER, 'propose', put(`lib/${i}`, i), 10_000, ops)));
    await waitUntil(() => node.store.stateGet('lib/63') === 63, { timeoutMs: 10_000, what: 'the puts applied' });
    const got = await adminCall(forger, PREFIX, 's1', CLI_SENDER, 'read', { query: { op: 'get', key: 'lib/5' } }, 10_000, ops);
    assert.deepEqual(got, { found: true, key: 'lib/5', value: 5 });
    assert.equal(opens - opensBefore, 1, 'one session open for all of them');
    assert.equal(proposeAuth.length, 64);
    assert.ok(batches > batchesBefore, 'the puts in flight left in batches (runtime/adminClient.ts)');
    assert.ok(
      proposeAuth.every((a) => typeof (a as { session?: unknown }).session === 'string'),
      'every put went in the session',
    );
  });

  it('(b) a request whose MAC is wrong is refused', async () => {
    const { sessions, session } = await sessionOf(keys.ops.file);
    const data = Buffer.from(sessions.seal(session, subject(), CLI_SENDER, 'propose', put('forged', 'bad mac')));
    // the MAC's last base64url character but one, changed (the last carries padding bits)
    const at = data.lastIndexOf('"}') - 2;
    data[at] = data[at] === 0x41 ? 0x42 : 0x41;
    await assertRefused('bad-mac', () => ask(data), 'a wrong MAC');
    // the same request in another session (its id put in place of the right one) is not this session's either
    const other = await sessionOf(keys.ops.file);
    const moved = Buffer.from(Buffer.from(other.sessions.seal(other.session, subject(), CLI_SENDER, 'propose', put('forged', 'moved'))).toString('latin1').replace(other.session.id, session.id), 'latin1');
    await assertRefused('bad-mac', () => ask(moved), 'a request MACed in another session');
    assert.equal(appliedValue(node, 'forged'), undefined);
  });

  it('(c) the same MACed bytes replayed are refused', async () => {
    const { sessions, session } = await sessionOf(keys.ops.file);
    const data = sessions.seal(session, subject(), CLI_SENDER, 'propose', put('replayed', 1));
    const first = await ask(data);
    assert.equal(first.ok, true, JSON.stringify(first));
    await node.propose({ op: 'put', key: 'replayed', value: 2 });
    await waitUntil(() => node.store.stateGet('replayed') === 2, { timeoutMs: 10_000, what: 'the later write applied' });
    await assertRefused('replayed', () => ask(data), 'the replay');
    assert.equal(appliedValue(node, 'replayed'), 2, 'the replay did not write its old value');
  });

  it('(d) a request in a session the node does not know is refused, and says so in a form the client reads', async () => {
    const { sessions, session } = await sessionOf(keys.ops.file);
    const unknown = { ...session, id: 'ab'.repeat(16) };
    let reply: ReturnType<typeof decodeReply> | undefined;
    await assertRefused(
      'unknown-session',
      async () => {
        reply = await ask(sessions.seal(unknown, subject(), CLI_SENDER, 'propose', put('unknown', 1)));
        return reply;
      },
      'an unknown session',
    );
    assert.deepEqual(!reply!.ok && reply!.error.details, { reason: 'unknown-session' });
    assert.equal(appliedValue(node, 'unknown'), undefined);
  });

  it('(e) a change in a read-only key\'s session is refused; reads in it work', async () => {
    const reader = operatorSigner(keys.reader.file);
    const status = await adminCall(forger, PREFIX, 's1', CLI_SENDER, 'status', {}, 10_000, reader);
    assert.equal(status.role, 'leader');
    const before = state();
    const count = refused('read-only-key');
    const opensBefore = opens;
    assert.equal(await codeOfCall(adminCall(forger, PREFIX, 's1', CLI_SENDER, 'propose', put('reader', 1), 10_000, reader)), 'UNAUTHORIZED');
    assert.equal(opens, opensBefore, 'in the session the reader opened for the status');
    assert.equal(refused('read-only-key'), count + 1);
    assert.deepEqual(state(), before);
    // the raw request in the reader's session, too
    const { sessions, session } = await sessionOf(keys.reader.file);
    await assertRefused('read-only-key', () => ask(sessions.seal(session, subject(), CLI_SENDER, 'propose', put('reader', 2))), "a put in the reader's session");
    // and a batch of puts (what the library sends for writes in flight) in it
    await assertRefused('read-only-key', () => ask(sessions.seal(session, subject(), CLI_SENDER, 'propose.batch', { commands: [put('reader', 3).command, put('reader2', 4).command] })), "a batch in the reader's session");
    assert.deepEqual(state(), before);
  });

  it('(f) a forged session open is refused: signed by another key than it names, too old, unsigned, or naming an unlisted key', async () => {
    const stranger = operatorSigner(keys.stranger.file, { sessions: false });
    const ops = operatorSigner(keys.ops.file, { sessions: false });
    const pub = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!;
    const open = (signer: typeof ops, key: string) => signAdminRequest(signer, subject(), CLI_SENDER, 'operator.session', { key, pub });
    await assertRefused('bad-signature', () => ask(open(stranger, keys.ops.publicKey)), "signed by a stranger, naming the operator's key");
    await assertRefused('bad-signature', () => ask(open(stranger, keys.stranger.publicKey)), 'naming an unlisted key');
    await assertRefused('stale-time', () => ask(open({ ...ops, now: () => Date.now() - 120_000 }, keys.ops.publicKey)), 'signed two minutes ago');
    await assertRefused('unsigned', () => ask(encode(CLI_SENDER, 'operator.session', { key: keys.ops.publicKey, pub })), 'unsigned');
    const signed = open(ops, keys.ops.publicKey);
    const first = await ask(signed);
    assert.equal(first.ok, true, JSON.stringify(first));
    await assertRefused('replayed', () => ask(signed), 'the same signed open again');
  });

  it('(g) a key revoked while its session is open: the next request in it is refused, and the library gets UNAUTHORIZED', async () => {
    const other = operatorSigner(keys.other.file);
    await adminCall(forger, PREFIX, 's1', CLI_SENDER, 'propose', put('other', 1), 10_000, other);
    const { sessions, session } = await sessionOf(keys.other.file);
    node.setOperators({ ...operators(), keys: [keys.ops.publicKey] });
    try {
      await assertRefused('unknown-session', () => ask(sessions.seal(session, subject(), CLI_SENDER, 'propose', put('other', 2))), 'a request in the revoked key\'s session');
      const before = state();
      assert.equal(await codeOfCall(adminCall(forger, PREFIX, 's1', CLI_SENDER, 'propose', put('other', 3), 10_000, other)), 'UNAUTHORIZED');
      assert.deepEqual(state(), before);
      assert.equal(appliedValue(node, 'other'), 1);
    } finally {
      node.setOperators(operators());
    }
  });

  it('(h) a node restart forgets its sessions: the library opens a new one by itself', async () => {
    const ops = operatorSigner(keys.ops.file);
    await adminCall(forger, PREFIX, 's1', CLI_SENDER, 'propose', put('restart', 1), 10_000, ops);
    await node.stop();
    node = await start();
    await node.waitForLeader(30_000);
    const count = refused('unknown-session');
    const opensBefore = opens;
    await adminCall(forger, PREFIX, 's1', CLI_SENDER, 'propose', put('restart', 2), 10_000, ops);
    await waitUntil(() => node.store.stateGet('restart') === 2, { timeoutMs: 10_000, what: 'the put after the restart' });
    assert.equal(opens - opensBefore, 1, 'one new session');
    assert.equal(refused('unknown-session'), count + 1, 'after one refusal of the old one');
  });

  it('(i) the CLI: kv put and get with --operator-key, each request signed', async () => {
    const cli = (args: string[]) => runCli([...args, '--nats', nats.url, '--prefix', PREFIX, '--operator-key', keys.ops.file], { env: baseEnv({ CONCLAVE_OPERATOR_KEY: undefined, NATS_URL: undefined }) });
    const opensBefore = opens;
    proposeAuth.length = 0;
    const r = await cli(['kv', 'put', 'cli', '"by the CLI"', '--via', 's1']);
    assert.equal(r.code, 0, r.stderr);
    await waitUntil(() => node.store.stateGet('cli') === 'by the CLI', { timeoutMs: 10_000, what: 'the put' });
    const got = await cli(['kv', 'get', 'cli', '--via', 's1']);
    assert.match(got.stdout, /by the CLI/, got.stderr);
    assert.equal(opens, opensBefore, 'no session');
    assert.ok(proposeAuth.length === 1 && typeof (proposeAuth[0] as { nonce?: unknown }).nonce === 'string', 'signed');
  });
});
