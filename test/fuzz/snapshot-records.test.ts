// Snapshot chunks in format `records` (stored records in a binary tail, actors/peerWire.ts) are
// hostile input like any other: a malformed one — truncated, a length past the end, a count that
// does not match, a damaged value, a value that does not decode or nests too deep, a key that is
// not UTF-8 — is refused (counted, logged), never acknowledged, and leaves no state change and
// nothing staged; a well-formed one is acknowledged. Three real controllers on the in-process bus.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createInProcessBus } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { decode, encodeTailed, type Sender } from '../../runtime/wire/codec.ts';
import { recordsBytes, type StoredRecord, writeRecords } from '../../runtime/wire/records.ts';
import { signPeerMessage } from '../../runtime/wire/peerSignature.ts';
import { peerBodies } from '../../actors/peerWire.ts';
import { frame } from '../../runtime/store/frame.ts';
import { waitUntil } from '../helpers/cli.ts';
import { fuzzParams } from '../helpers/fuzz.ts';
import { allAnswer, clusterState, type FuzzCluster, PREFIX, startFuzzCluster } from './busCluster.ts';

/** stored values (checksum intact) that are not values: an unused msgpack byte, a truncated string, nested 300 deep, undefined */
const BAD_PAYLOADS = [Uint8Array.of(0xc1), Uint8Array.of(0xa5, 0x61), Uint8Array.from([...new Array(300).fill(0x91), 0xc0]), Uint8Array.of(0xd4, 0x00, 0x00)];

const mutation = fc.record({
  kind: fc.constantFrom('truncate', 'flip-value', 'length-past-end', 'count-more', 'count-less', 'bad-value', 'key-not-utf8', 'trailing', 'tail-on-json'),
  pick: fc.nat(),
  byte: fc.integer({ min: 1, max: 255 }),
});
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

describe('snapshot chunks with stored records (issue 17 item 11: the binary chunk format)', () => {
  let cluster: FuzzCluster;
  let listener: Bus;
  const acks: Array<{ id: string; seq: number; accepts?: string[] }> = [];
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  let records: StoredRecord[];

  before(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    const bus = createInProcessBus();
    cluster = await startFuzzCluster(() => ({ bus }), bus.connect('fuzzer'));
    for (let i = 0; i < 3; i++) await cluster.nodes[0]!.propose({ op: 'put', key: `r${i}`, value: { i, text: 'é'.repeat(i * 50), list: [i, [i]] } });
    // every node applied them before the state is taken to compare against (a follower may lag the leader's answer)
    const commit = cluster.nodes[0]!.status().commitIndex;
    await waitUntil(() => cluster.nodes.every((c) => c.status().appliedIndex >= commit), { timeoutMs: 30_000, what: 'every node applied the puts' });
    // real stored records, as the leader's store holds them
    const source = cluster.nodes[0]!.store.stateSnapshot();
    records = [];
    for (let r = source.records!.next(); !r.done; r = source.records!.next()) records.push([r.value[0], Uint8Array.from(r.value[1])]);
    source.done();
    // the acknowledgements the follower sends to the leader
    listener = bus.connect('ack-listener');
    listener.subscribe(`${PREFIX}.node.${cluster.nodes[0]!.name}.peer`, (msg) => {
      const d = decode(msg.data, peerBodies);
      if (d.ok && d.envelope.type === 'snapshot-ack') acks.push(d.body as (typeof acks)[number]);
    });
  });
  after(async () => {
    await listener?.close();
    await cluster?.stop();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  /** a chunk from the leader to the follower: its body and tail (or the bytes of an already mutated tail) */
  function chunk(id: string, seq: number, count: number, tail: Uint8Array, extra: Record<string, unknown> = {}): Uint8Array {
    const [leader, follower] = cluster.nodes;
    const identity = leader!.store.identity();
    const sender: Sender = { name: leader!.name, nodeId: identity.nodeId, clusterId: identity.clusterId, generation: identity.generation };
    const raft = follower!.memberRuntime().raftStatus();
    const message = {
      type: 'snapshot',
      from: identity.nodeId,
      to: follower!.store.identity().nodeId,
      term: raft.term,
      snapshot: { index: raft.lastIndex, term: raft.lastTerm, membership: raft.membership },
    };
    const body = { message, id, seq, last: false, records: count, ...extra };
    const write = (out: Buffer, at: number) => {
      out.set(tail, at);
      return at + tail.byteLength;
    };
    // signed with the leader's member key: what is tested here lies behind member identity
    const subject = `${PREFIX}.node.${follower!.name}.peer`;
    return signPeerMessage(leader!.store.memberKey().privateKey, subject, encodeTailed(sender, 'snapshot-chunk', body, { bytes: tail.byteLength, write }));
  }

  function tailOf(list: readonly StoredRecord[]): Buffer {
    const out = Buffer.alloc(recordsBytes(list));
    writeRecords(out, 0, list);
    return out;
  }

  /** a malformed tail (and the count and body fields it is sent with) */
  function malformed(m: Mutation): { count: number; tail: Uint8Array; extra?: Record<string, unknown> } {
    const good = tailOf(records);
    const n = records.length;
    // where record k's value starts (after its key) and ends
    const spans: Array<{ lengthAt: number; valueAt: number; end: number; keyAt: number }> = [];
    for (let at = 0; at < good.length; ) {
      const keyBytes = good.readUInt32BE(at);
      const lengthAt = at + 4 + keyBytes;
      const valueBytes = good.readUInt32BE(lengthAt);
      spans.push({ keyAt: at + 4, lengthAt, valueAt: lengthAt + 4, end: lengthAt + 4 + valueBytes });
      at = lengthAt + 4 + valueBytes;
    }
    const span = spans[m.pick % spans.length]!;
    switch (m.kind) {
      case 'truncate':
        return { count: n, tail: good.subarray(0, m.pick % good.length) };
      case 'flip-value': {
        const bad = Buffer.from(good);
        const at = span.valueAt + (m.pick % (span.end - span.valueAt));
        bad[at]! ^= m.byte;
        return { count: n, tail: bad };
      }
      case 'length-past-end': {
        const bad = Buffer.from(good);
        bad.writeUInt32BE(good.length + (m.pick % 1000), m.pick % 2 === 0 ? span.lengthAt : span.keyAt - 4);
        return { count: n, tail: bad };
      }
      case 'count-more':
        return { count: n + 1 + (m.pick % 5), tail: good };
      case 'count-less':
        return { count: m.pick % n, tail: good };
      case 'bad-value': {
        const list = [...records];
        list[m.pick % n] = [records[m.pick % n]![0], frame(BAD_PAYLOADS[m.byte % BAD_PAYLOADS.length]!)];
        return { count: n, tail: tailOf(list) };
      }
      case 'key-not-utf8': {
        const bad = Buffer.from(good);
        bad[span.keyAt] = 0xff;
        return { count: n, tail: bad };
      }
      case 'trailing':
        return { count: n, tail: Buffer.concat([good, Buffer.alloc(1 + (m.pick % 8), m.byte)]) };
      default:
        // a tail on a chunk in format json
        return { count: n, tail: good, extra: { records: undefined, pairs: [['x', 1]] } };
    }
  }

  const dropped = () => cluster.nodes[1]!.memberRuntime().dropped;
  const refusals = () => [...dropped().entries()].filter(([reason]) => reason === 'bad-snapshot-chunk' || reason === 'bad-body').reduce((sum, [, n]) => sum + n, 0);

  it('a well-formed chunk is acknowledged, and the receiver says it reads records', async () => {
    const id = randomUUID();
    cluster.client.publish(`${PREFIX}.node.${cluster.nodes[1]!.name}.peer`, chunk(id, 0, records.length, tailOf(records)));
    await waitUntil(() => acks.some((a) => a.id === id && a.seq === 0), { timeoutMs: 30_000, what: 'the follower to acknowledge chunk 0' });
    assert.deepEqual(acks.find((a) => a.id === id)?.accepts, ['records']);
  });

  it('a record in pieces out of order, past its length, mixed with whole records or unfinished at the end is refused', async () => {
    const { nodes, client } = cluster;
    const subject = `${PREFIX}.node.${nodes[1]!.name}.peer`;
    const state = await clusterState(nodes);
    const [key, value] = records[2]!;
    const of = value.byteLength;
    const half = Math.floor(of / 2);
    const piece = (from: number, to: number, k = key): Buffer => tailOf([[k, value.subarray(from, to)]]);
    const cases: Array<{ what: string; count: number; tail: Uint8Array; extra: Record<string, unknown> }> = [
      { what: 'a gap', count: 1, tail: piece(half + 1, of), extra: { part: { at: half + 1, of } } },
      { what: 'a piece again', count: 1, tail: piece(0, half), extra: { part: { at: 0, of } } },
      { what: 'past the length', count: 1, tail: tailOf([[key, Buffer.concat([value.subarray(half), Buffer.alloc(5)])]]), extra: { part: { at: half, of } } },
      { what: 'another length', count: 1, tail: piece(half, of), extra: { part: { at: half, of: of + 1 } } },
      { what: 'another key', count: 1, tail: piece(half, of, 'other'), extra: { part: { at: half, of } } },
      { what: 'two records', count: 2, tail: tailOf([[key, value.subarray(half)], records[0]!]), extra: { part: { at: half, of } } },
      { what: 'whole records', count: records.length, tail: tailOf(records), extra: {} },
      { what: 'unfinished at the end', count: 1, tail: piece(half, of - 1), extra: { part: { at: half, of }, last: true } },
      { what: 'an empty piece', count: 1, tail: piece(half, half), extra: { part: { at: half, of } } },
    ];
    for (const c of cases) {
      const id = randomUUID();
      client.publish(subject, chunk(id, 0, 1, piece(0, half), { part: { at: 0, of } }));
      await allAnswer(client, nodes);
      assert.ok(acks.some((a) => a.id === id && a.seq === 0), `${c.what}: the first piece acknowledged`);
      const refusedBefore = refusals();
      client.publish(subject, chunk(id, 1, c.count, c.tail, c.extra));
      await allAnswer(client, nodes);
      assert.equal(refusals(), refusedBefore + 1, `${c.what}: refused and counted once`);
      assert.ok(!acks.some((a) => a.id === id && a.seq === 1), `${c.what}: not acknowledged`);
      assert.equal(nodes[1]!.store.snapshotStaging().holdsLeftovers(), false, `${c.what}: nothing staged`);
    }
    // the same pieces in order are taken: the record is whole, checked and staged
    const id = randomUUID();
    client.publish(subject, chunk(id, 0, 1, piece(0, half), { part: { at: 0, of } }));
    client.publish(subject, chunk(id, 1, 1, piece(half, of), { part: { at: half, of } }));
    await allAnswer(client, nodes);
    assert.ok(acks.some((a) => a.id === id && a.seq === 1), 'the last piece acknowledged');
    assert.deepEqual(uncaught, []);
    assert.deepEqual(await clusterState(nodes), state);
  });

  it('a malformed chunk is refused and counted: no acknowledgement, no state change, nothing staged, no crash', async () => {
    const { nodes, client } = cluster;
    const subject = `${PREFIX}.node.${nodes[1]!.name}.peer`;
    const state = await clusterState(nodes);
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const id = randomUUID();
        // chunk 0 is fine (acknowledged); chunk 1 is malformed
        client.publish(subject, chunk(id, 0, records.length, tailOf(records)));
        await allAnswer(client, nodes);
        assert.ok(acks.some((a) => a.id === id && a.seq === 0), 'chunk 0 acknowledged');
        const refusedBefore = refusals();
        const { count, tail, extra } = malformed(m);
        client.publish(subject, chunk(id, 1, count, tail, extra));
        await allAnswer(client, nodes);
        assert.equal(refusals(), refusedBefore + 1, `${m.kind}: refused and counted once`);
        assert.ok(!acks.some((a) => a.id === id && a.seq === 1), `${m.kind}: not acknowledged`);
        assert.equal(nodes[1]!.store.snapshotStaging().holdsLeftovers(), false, `${m.kind}: nothing staged`);
        assert.deepEqual(uncaught, []);
      }),
      fuzzParams(120),
    );
    assert.deepEqual(await clusterState(nodes), state);
    assert.deepEqual(
      nodes.map((c) => c.status().phase),
      ['member', 'member', 'member'],
    );
  });
});
