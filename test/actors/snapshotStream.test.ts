// The sender's chunk format (actors/snapshotStream.ts): `json` (every version reads it) until the
// receiver's acknowledgement says it reads `records`, and only when the store gives stored records;
// switching mid-transfer loses or repeats no pair.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Clock } from '../../actors/ports.ts';
import { OutgoingSnapshots, type SnapshotChunk, type SnapshotSource, TRANSFER_GIVEN_UP } from '../../actors/snapshotStream.ts';
import type { SnapshotMessage } from '../../machines/raft/messages.ts';
import { parseRecords, type StoredRecord } from '../../runtime/wire/records.ts';

const PAIRS: Array<[string, unknown]> = Array.from({ length: 40 }, (_, i) => [`k${String(i).padStart(2, '0')}`, { i, pad: 'x'.repeat(300 + i) }]);
const encodeValue = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const decodeValue = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as unknown;

/** the pairs as a store gives them: `records` (when `withRecords`) and `pairs` share one cursor; a record is a view of one read buffer, valid until the next read (as lmdb-js gives them) */
function source(withRecords: boolean): SnapshotSource {
  let at = 0;
  const readBuffer = new Uint8Array(4096);
  const view = (bytes: Uint8Array) => {
    readBuffer.fill(0);
    readBuffer.set(bytes);
    return readBuffer.subarray(0, bytes.length);
  };
  const next = <T>(f: (p: [string, unknown]) => T): IteratorResult<T> => (at < PAIRS.length ? { done: false, value: f(PAIRS[at++]!) } : { done: true, value: undefined });
  const s: SnapshotSource = { appliedIndex: 7, pairs: { next: () => next((p) => p) }, done() {} };
  if (withRecords) {
    s.records = { next: () => next(([k, v]) => [k, view(encodeValue(v))] as const) };
    s.decodeRecord = decodeValue;
  }
  return s;
}

/** a clock whose `soon` queue the test drains */
function manualClock(): Clock & { drain(): void } {
  const queue: Array<() => void> = [];
  return {
    now: () => 0,
    setTimeout: () => null,
    clearTimeout() {},
    setInterval: () => null,
    clearInterval() {},
    soon: (fn) => queue.push(fn),
    drain() {
      while (queue.length > 0) queue.shift()!();
    },
  };
}

const message = { type: 'snapshot', from: 'a', to: 'b', term: 1, snapshot: { index: 7, term: 1, membership: { members: [] } } } as SnapshotMessage;

/** a whole transfer to a receiver that acknowledges every chunk with `accepts` (from chunk `from` on) */
function transfer(withRecords: boolean, accepts: string[] | undefined, from = 0): { chunks: SnapshotChunk[]; ok: boolean } {
  const clock = manualClock();
  const chunks: SnapshotChunk[] = [];
  let ok = false;
  const out = new OutgoingSnapshots({
    // a records chunk's tail is valid until the next chunk is made: kept as a copy
    publish: (_to, chunk) => chunks.push(chunk.format === 'records' ? { ...chunk, tail: Uint8Array.from(chunk.tail) } : chunk),
    finished: (done) => {
      ok = done;
    },
    chunkBytes: 1200,
    recordsChunkBytes: 2500,
    window: 2,
    windowBytes: 1 << 20,
    stallMs: 1000,
    graceMs: 1000,
    clock,
  });
  out.request('b', 7, () => ({ source: source(withRecords), message }));
  let acked = 0;
  for (let guard = 0; guard < 1000 && !ok; guard++) {
    clock.drain();
    const id = chunks[0] && (chunks[0].format === 'json' ? /"id":"([^"]+)"/.exec(chunks[0].parts[0]!)![1]! : chunks[0].body.id);
    for (; acked < chunks.length; acked++) out.onAck('b', acked >= from && accepts ? { id: id!, seq: acked, accepts } : { id: id!, seq: acked });
  }
  return { chunks, ok };
}

function records(tail: Uint8Array, count: number): StoredRecord[] {
  const parsed = parseRecords(tail, count);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

/** every pair the chunks carry, in order */
function carried(chunks: SnapshotChunk[]): Array<[string, unknown]> {
  return chunks.flatMap((c) =>
    c.format === 'json' ? (JSON.parse(c.parts.join('')) as { pairs: Array<[string, unknown]> }).pairs : records(c.tail, c.body.records).map(([k, b]): [string, unknown] => [k, decodeValue(b)]),
  );
}

describe('snapshot stream: the chunk format', () => {
  it('a receiver that does not say it reads records gets json only', () => {
    const { chunks, ok } = transfer(true, undefined);
    assert.ok(ok);
    assert.deepEqual(new Set(chunks.map((c) => c.format)), new Set(['json']));
    assert.deepEqual(carried(chunks), PAIRS);
  });

  it('a receiver that says it reads records gets them from its first acknowledgement on, nothing lost or repeated', () => {
    const { chunks, ok } = transfer(true, ['records'], 1);
    assert.ok(ok);
    assert.equal(chunks[0]!.format, 'json', 'before any acknowledgement: json');
    assert.ok(chunks.some((c) => c.format === 'records'), 'then records');
    assert.ok(chunks.slice(chunks.findIndex((c) => c.format === 'records')).every((c) => c.format === 'records'), 'and records from then on');
    assert.deepEqual(carried(chunks), PAIRS);
    const last = chunks.at(-1)!;
    assert.ok(last.last && last.format === 'records' && last.body.last && records(last.tail, last.body.records).length === last.body.records);
  });

  it('a store that gives no stored records sends json whatever the receiver reads', () => {
    const { chunks, ok } = transfer(false, ['records']);
    assert.ok(ok);
    assert.deepEqual(new Set(chunks.map((c) => c.format)), new Set(['json']));
    assert.deepEqual(carried(chunks), PAIRS);
  });
});

describe('snapshot stream: a receiver that gave the transfer up', () => {
  it('ends the transfer at once, failed, without waiting for the stall timer; a notice for another transfer is ignored', () => {
    const clock = manualClock();
    const chunks: SnapshotChunk[] = [];
    const ended: Array<{ ok: boolean; error: unknown }> = [];
    const out = new OutgoingSnapshots({
      publish: (_to, chunk) => chunks.push(chunk),
      finished: (ok, report) => ended.push({ ok, error: report.error }),
      chunkBytes: 1200,
      recordsChunkBytes: 2500,
      window: 4,
      windowBytes: 1 << 20,
      stallMs: 60_000,
      graceMs: 60_000,
      clock,
    });
    out.request('b', 7, () => ({ source: source(false), message }));
    clock.drain();
    assert.ok(chunks.length >= 2, 'chunks in flight');
    const first = chunks[0]!;
    const id = first.format === 'json' ? /"id":"([^"]+)"/.exec(first.parts[0]!)![1]! : first.body.id;
    out.onAck('b', { id: 'another-transfer', seq: TRANSFER_GIVEN_UP });
    assert.equal(ended.length, 0, 'a notice about another transfer changes nothing');
    out.onAck('b', { id, seq: TRANSFER_GIVEN_UP });
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!.ok, false);
    assert.match(String(ended[0]!.error), /b missed a chunk and gave the transfer up/);
    // the next request starts a new transfer (a failed one is not 'recent')
    assert.equal(out.request('b', 7, () => ({ source: source(false), message })), 'started');
  });
});

describe('snapshot stream: a transfer that just completed', () => {
  it('is not repeated for the snapshot it carried or an earlier one, but is for a later one (the log was compacted past it)', () => {
    const clock = manualClock();
    const chunks: SnapshotChunk[] = [];
    const ended: boolean[] = [];
    const out = new OutgoingSnapshots({
      publish: (_to, chunk) => chunks.push(chunk),
      finished: (ok) => ended.push(ok),
      chunkBytes: 1200,
      recordsChunkBytes: 2500,
      window: 64,
      windowBytes: 1 << 20,
      stallMs: 60_000,
      graceMs: 60_000,
      clock,
    });
    assert.equal(out.request('b', 7, () => ({ source: source(false), message })), 'started');
    assert.equal(out.request('b', 9, () => ({ source: source(false), message })), 'running', 'one transfer to a follower at a time');
    clock.drain();
    const first = chunks[0]!;
    const id = first.format === 'json' ? /"id":"([^"]+)"/.exec(first.parts[0]!)![1]! : first.body.id;
    out.onAck('b', { id, seq: chunks.length - 1 });
    assert.deepEqual(ended, [true], 'the transfer of snapshot 7 completed');
    // the follower is installing snapshot 7: asking again for it (or less) would only cost a full copy
    assert.equal(out.request('b', 7, () => ({ source: source(false), message })), 'recent');
    assert.equal(out.request('b', 5, () => ({ source: source(false), message })), 'recent');
    // the leader compacted its log to 9 since: the follower cannot catch up from 7 without it
    let opened = 0;
    const later = { ...message, snapshot: { ...message.snapshot, index: 9 } };
    assert.equal(
      out.request('b', 9, () => {
        opened++;
        return { source: source(false), message: later };
      }),
      'started',
    );
    assert.equal(opened, 1);
  });
});

/** a clock whose time the test moves: `advance` runs the `soon` queue and fires the timers that fall due */
function steppedClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  const queue: Array<() => void> = [];
  const timers = new Set<{ at: number; fn: () => void }>();
  const drain = () => {
    while (queue.length > 0) queue.shift()!();
  };
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const timer = { at: now + ms, fn };
      timers.add(timer);
      return timer;
    },
    clearTimeout: (handle) => {
      timers.delete(handle as { at: number; fn: () => void });
    },
    setInterval: () => null,
    clearInterval() {},
    soon: (fn) => queue.push(fn),
    advance(ms) {
      drain();
      now += ms;
      for (const timer of [...timers].sort((a, b) => a.at - b.at)) {
        if (timer.at > now || !timers.has(timer)) continue;
        timers.delete(timer);
        timer.fn();
        drain();
      }
    },
  };
}

describe('snapshot stream: a transfer whose last chunk or its acknowledgement is lost', () => {
  it('ends failed when the stall timer fires, though the whole state was read, and the next request starts over', () => {
    // seed 3335 of the simulator: the one chunk of a small state was cut by a partition; reading the
    // state to its end stopped the stall timer, so the transfer ran forever and every later request
    // of the core got 'running' — the new voter never got the snapshot, and nothing committed
    const clock = steppedClock();
    const chunks: SnapshotChunk[] = [];
    const ended: Array<{ ok: boolean; error: unknown }> = [];
    const out = new OutgoingSnapshots({
      publish: (_to, chunk) => chunks.push(chunk),
      finished: (ok, report) => ended.push({ ok, error: report.error }),
      chunkBytes: 1 << 20,
      recordsChunkBytes: 1 << 20,
      window: 4,
      windowBytes: 1 << 20,
      stallMs: 1000,
      graceMs: 1000,
      clock,
    });
    assert.equal(out.request('b', 7, () => ({ source: source(false), message })), 'started');
    clock.advance(0);
    assert.equal(chunks.length, 1, 'the whole state in one chunk');
    assert.ok(chunks[0]!.last);
    // no acknowledgement comes back
    clock.advance(999);
    assert.equal(ended.length, 0, 'not before the stall timer');
    assert.equal(out.request('b', 7, () => ({ source: source(false), message })), 'running');
    clock.advance(1);
    assert.equal(ended.length, 1, 'the stall timer ended the transfer');
    assert.equal(ended[0]!.ok, false);
    assert.match(String(ended[0]!.error), /no chunk acknowledged for 1000 ms/);
    assert.equal(out.active, 0);
    assert.equal(out.request('b', 7, () => ({ source: source(false), message })), 'started', 'asked again, it sends the snapshot again');
    clock.advance(0);
    assert.equal(chunks.length, 2);
  });

  it('ends failed when the acknowledgements of its last chunks are lost, after earlier ones came', () => {
    const clock = steppedClock();
    const chunks: SnapshotChunk[] = [];
    const ended: boolean[] = [];
    const out = new OutgoingSnapshots({
      publish: (_to, chunk) => chunks.push(chunk),
      finished: (ok) => ended.push(ok),
      chunkBytes: 1200,
      recordsChunkBytes: 2500,
      window: 2,
      windowBytes: 1 << 20,
      stallMs: 1000,
      graceMs: 1000,
      clock,
    });
    out.request('b', 7, () => ({ source: source(false), message }));
    clock.advance(0);
    const first = chunks[0]!;
    const id = first.format === 'json' ? /"id":"([^"]+)"/.exec(first.parts[0]!)![1]! : first.body.id;
    // the receiver acknowledges each chunk until the last one is out; the rest of its acknowledgements are lost
    let acked = 0;
    for (let guard = 0; guard < 100 && !chunks.at(-1)!.last; guard++) {
      out.onAck('b', { id, seq: acked++ });
      clock.advance(10);
    }
    assert.ok(chunks.at(-1)!.last && chunks.length > acked, 'every chunk sent, the last ones unacknowledged');
    clock.advance(1000);
    assert.deepEqual(ended, [false]);
  });
});
