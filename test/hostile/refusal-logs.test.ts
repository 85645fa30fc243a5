// Issue 17 item 9 (last sentence): refusal logs were not rate-limited — 10k pings from foreign
// clusters or non-members wrote 2 MB of log per node. Every refusal and drop on the inbound path is
// counted, every one; its log line is rate-limited per reason (a few distinct senders per interval),
// so a sender that changes its name at every message buys no more lines.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { before, describe, it } from 'node:test';
import pino from 'pino';
import type { Controller } from '../../runtime/controller.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';
import { inProcessCluster } from '../helpers/inProcessCluster.ts';
import { drops, forgePeer } from './helpers.ts';

const FLOOD = 10_000;

describe('refusal logs are rate-limited and counted (issue 17 item 9)', () => {
  const cluster = inProcessCluster('conclave-hostile-logs-');
  const lines: string[] = [];
  let node: Controller;
  let client: Bus;

  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(line);
        done();
      },
    });
    node = await cluster.start('solo', { logger: pino({ level: 'info', base: undefined }, sink), raft: { heartbeatMs: 50, electionTimeoutMs: 1000 } });
    await node.init();
    await node.waitForLeader(30_000);
    client = cluster.bus.connect('flood');
  });

  it(`${FLOOD} pings each from foreign clusters, non-members, anonymous newer generations, and garbage: every one counted, a few lines logged`, async () => {
    const clusterId = node.status().clusterId;
    const name = (i: number) => `n${i}-${randomBytes(3).toString('hex')}`;
    const linesBefore = lines.length;
    const bytesBefore = lines.reduce((n, l) => n + l.length + 1, 0);
    for (let i = 0; i < FLOOD; i++) {
      forgePeer(client, 'conclave', node.name, { name: name(i), nodeId: randomUUID(), clusterId: randomUUID(), generation: 1 }, 'ping', {});
      forgePeer(client, 'conclave', node.name, { name: name(i), nodeId: randomUUID(), clusterId, generation: 1 }, 'ping', {});
      forgePeer(client, 'conclave', node.name, { name: name(i), nodeId: null, clusterId, generation: 7 }, 'ping', {});
      client.publish(`conclave.node.${node.name}.peer`, new TextEncoder().encode(`{not json ${i}`));
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r)); // let the node drain its inbox
    }
    // the handshake doors: join offers claiming a newer generation, auto-join requests without a proof
    for (let i = 0; i < 1000; i++) {
      const sender = { name: name(i), nodeId: randomUUID(), clusterId, generation: 7 };
      client.publish(`conclave.node.${node.name}.admin`, encode(sender, 'join.offer', { protocolVersion: 1 }));
      const req = { cluster: clusterId, name: sender.name, nodeId: sender.nodeId, protocolVersion: 1, nonce: randomBytes(16).toString('hex'), ts: Date.now() };
      client.publish('conclave.discover', encode({ ...sender, clusterId: null, generation: undefined }, 'join.request', req));
    }
    const expected = { 'foreign-cluster': FLOOD, 'not-a-member': FLOOD, 'unproven-generation': FLOOD, 'not-json': FLOOD };
    await waitUntil(() => Object.entries(expected).every(([reason, n]) => drops(node, reason) === n), {
      timeoutMs: 120_000,
      what: 'every dropped message to be counted',
      context: () => JSON.stringify(Object.fromEntries(node.memberRuntime().dropped)),
    });
    await waitUntil(() => (node.refusals.get('join:stale-generation') ?? 0) === 1000 && (node.refusals.get('autojoin:auto-join') ?? 0) === 1000, {
      timeoutMs: 60_000,
      what: 'every refused handshake to be counted',
      context: () => JSON.stringify(Object.fromEntries(node.refusals)),
    });
    assert.equal(node.refusals.get('member:foreign-cluster'), FLOOD, 'each foreign message is a reported refusal too');
    const added = lines.slice(linesBefore);
    const bytes = added.reduce((n, l) => n + l.length + 1, 0);
    const byMessage = new Map<string, number>();
    for (const line of added) {
      const msg = (JSON.parse(line) as { msg: string; reason?: string }).msg.replace(/n\d+-[0-9a-f]{6}/g, '<name>').replace(/[0-9a-f-]{36}/g, '<id>');
      byMessage.set(msg, (byMessage.get(msg) ?? 0) + 1);
    }
    console.log(`${4 * FLOOD + 2000} hostile messages → ${added.length} log lines, ${bytes} bytes (before: ${linesBefore} lines, ${bytesBefore} bytes)`);
    for (const [msg, n] of byMessage) console.log(`  ${n} × ${msg.slice(0, 120)}`);
    // a few lines per reason and interval (4 senders each), and the flood takes at most a few intervals
    assert.ok(added.length <= 100, `${added.length} log lines for ${4 * FLOOD + 2000} refused messages`);
    assert.equal(node.status().phase, 'member');
    assert.equal(node.status().role, 'leader');
  });
});
