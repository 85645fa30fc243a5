// Raft messages in a recording: the inspector records the `msg` events as it received them (entries,
// reply outcomes, snapshot chunks and their bytes kept; a batch whose fields are not what the schema
// says is refused, not recorded), and a replay rebuilds the same rows from the recorded frames. For a
// page opened late the inspector keeps raft messages apart from the other events, each bounded.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Inspector } from '../../runtime/inspect/inspector.ts';
import { applyFrame, createModel } from '../../runtime/inspect/page/model.js';
import { messageRows } from '../../runtime/inspect/page/sequence.js';
import { BATCH_TYPE, streamSubject } from '../../runtime/inspect/protocol.ts';
import { readRecording } from '../../runtime/inspect/replay.ts';
import { createInProcessBus } from '../../runtime/transport/inProcess.ts';
import { encode } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';

describe('raft messages in a recording', () => {
  it('are recorded with their entries, outcomes and bytes, and a replay draws the same rows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-msg-replay-'));
    const file = join(dir, 'run.ndjson');
    const hub = createInProcessBus();
    const inspectorBus = hub.connect('inspector');
    const node = hub.connect('n2');
    const inspector = new Inspector({ bus: inspectorBus, prefix: 'tr', record: file, statusEveryMs: 60_000, statusTimeoutMs: 50 });
    await inspector.start();
    const sender = { name: 'n2', nodeId: null, clusterId: null };
    const msg = (t: number, extra: Record<string, unknown>) => ({ k: 'msg', t, a: 'raft:n2', to: 'id-2', term: 4, n: 1, ...extra });
    const send = (seq: number, events: unknown[]) => node.publish(streamSubject('tr', 'n2'), encode(sender, BATCH_TYPE, { node: 'n2', seq, events, dropped: 0 }));
    try {
      // hostile first: an entry count that is not a count, an outcome that is not a boolean
      send(0, [msg(1000, { type: 'append', from: 'id-1', entries: 'many' })]);
      send(1, [msg(1000, { type: 'vote-response', from: 'id-3', ok: 'yes' })]);
      send(2, [
        msg(1000, { type: 'vote', from: 'id-1' }),
        msg(1010, { type: 'vote-response', from: 'id-3', ok: true }),
        msg(1020, { type: 'append', from: 'id-1', n: 3, entries: 7 }),
        msg(1030, { type: 'append-response', from: 'id-3', ok: false }),
        msg(1040, { type: 'snapshot-chunk', from: 'n1', term: null, n: 4, bytes: 4096 }),
      ]);
      await waitUntil(async () => (await readRecording(file)).frames.some((f) => f.kind === 'batch'), { what: 'the batch recorded' });
      await inspector.stop();
      const { frames } = await readRecording(file);
      const batches = frames.filter((f) => f.kind === 'batch');
      assert.equal(batches.length, 1, 'only the batch that passes the schema is recorded');

      const model = createModel();
      for (const f of frames) applyFrame(model, f as Parameters<typeof applyFrame>[1]);
      const names = (id: string) => id.replace('id-', 'n');
      const { rows, total } = messageRows(model.messages, names, 0, 2000);
      assert.deepEqual(
        rows.map((r) => `${r.from}→${r.to} ${r.label}`),
        ['n1→n2 vote · term 4', 'n3→n2 vote-response ✓ granted · term 4', 'n1→n2 append ×3 · 7 entries · term 4', 'n3→n2 append-response ✗ rejected · term 4', 'n1→n2 snapshot-chunk ×4 · 4.0 kB'],
      );
      assert.equal(total, 10);
    } finally {
      await inspector.stop();
      await hub.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('for a page opened late: raft messages are kept apart, so a busy cluster does not push the other events out', async () => {
    const hub = createInProcessBus();
    const inspectorBus = hub.connect('inspector');
    const node = hub.connect('n2');
    const inspector = new Inspector({ bus: inspectorBus, prefix: 'tl', statusEveryMs: 60_000, statusTimeoutMs: 50, maxEvents: 10, maxMessages: 5 });
    await inspector.start();
    const frames: unknown[] = [];
    inspector.onFrame((f) => frames.push(f));
    const heartbeats = Array.from({ length: 20 }, (_, i) => ({ k: 'msg', t: 1000 + i, a: 'raft:n2', type: 'heartbeat', from: 'id-1', to: 'id-2', term: 4, n: 1 }));
    const tick = { k: 'event', t: 999, a: 'raft:n2', type: 'TICK', src: null, n: 1 };
    try {
      node.publish(streamSubject('tl', 'n2'), encode({ name: 'n2', nodeId: null, clusterId: null }, BATCH_TYPE, { node: 'n2', seq: 0, events: [tick, ...heartbeats], dropped: 0 }));
      await waitUntil(() => frames.length > 0, { what: 'the batch received' });
      const events = inspector.current().events;
      assert.deepEqual(
        events.map((e) => (e.k === 'msg' ? `msg ${e.t}` : `${e.k} ${e.t}`)),
        ['event 999', 'msg 1015', 'msg 1016', 'msg 1017', 'msg 1018', 'msg 1019'],
        'the tick kept, the last 5 messages kept',
      );
    } finally {
      await inspector.stop();
      await hub.close();
    }
  });
});
