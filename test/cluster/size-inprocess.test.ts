// Issue 17: the in-process bus has its own max payload, and the member derives its limits from it
// as from NATS's: appends split by bytes, commands over the largest one refused (COMMAND_TOO_LARGE,
// a UsageError naming the limit), and a snapshot streamed to a new node in chunks that fit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminRequest } from '../../runtime/cli/client.ts';
import { type Controller, startController } from '../../runtime/controller.ts';
import { UsageError } from '../../runtime/errors.ts';
import { createInProcessBus, type InProcessBus } from '../../runtime/transport/index.ts';
import { wireLimits } from '../../runtime/wire/codec.ts';
import { FAST } from '../helpers/inProcessCluster.ts';
import { tmpDirs } from '../helpers/tmp.ts';
import { waitUntil } from '../helpers/cli.ts';

const MAX_PAYLOAD = 32 * 1024;

describe('an in-process bus with a 32 KiB max payload', () => {
  const tmp = tmpDirs('conclave-size-');
  let bus: InProcessBus;
  let root: string;
  const started: Controller[] = [];
  const start = async (name: string) => {
    const c = await startController({ name, dataDir: `${root}/${name}`, transport: { bus }, raft: { ...FAST, snapshotEveryBytes: 1024 * 1024 } });
    started.push(c);
    return c;
  };
  before(() => {
    bus = createInProcessBus({ maxPayload: MAX_PAYLOAD });
    root = tmp.make();
  });
  after(async () => {
    for (const c of started) await c.stop();
    await bus.close();
    tmp.cleanup();
  });

  it('replicates 64 puts in flight near the largest command, refuses one byte more, and streams the state to a new node', async () => {
    const limit = wireLimits(MAX_PAYLOAD).commandBytes;
    const c1 = await start('m1');
    await c1.init();
    await c1.waitForLeader();
    await start('m2');
    await c1.cluster.add('m2');
    const value = (i: number) => `${i}:`.padEnd(limit - 100, 'v');
    // 64 × ~28 KB in flight: ~1.8 MB, far over one message of 32 KiB
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 64 }, (_, i) => c1.propose({ op: 'put', key: `k${round}-${i}`, value: value(i) })));
    }
    const oversized = { op: 'put', key: 'big', value: '' };
    oversized.value = 'x'.repeat(limit + 1 - JSON.stringify(oversized).length);
    await assert.rejects(c1.propose(oversized), (err: Error & { code?: string }) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.code, 'COMMAND_TOO_LARGE');
      assert.match(err.message, new RegExp(`command is ${limit + 1} bytes .*over the ${limit}-byte limit`));
      return true;
    });
    // a blank node gets the state (3.6 MB, compacted by bytes) by a snapshot streamed in chunks of < 32 KiB
    const c3 = await start('m3');
    await c1.cluster.add('m3');
    const got = (await c3.read({ op: 'get', key: 'k1-63' }, { stale: true })) as { value: unknown };
    assert.equal(got.value, value(63));
    const m2 = started[1]!;
    assert.equal(((await m2.read({ op: 'get', key: 'k0-7' }, { stale: true })) as { value: unknown }).value, value(7));
    // what /metrics exports of it: proposals by outcome, snapshots taken, sent and received with their bytes
    const leaderCounts = () => c1.memberCounts()!;
    assert.ok(leaderCounts().proposals.applied >= 128, JSON.stringify(leaderCounts().proposals));
    assert.ok(leaderCounts().proposals.refused >= 1, 'the oversized command was refused at the door');
    assert.equal(leaderCounts().proposals.failed, 0);
    assert.ok(leaderCounts().snapshots.taken >= 1, 'compacted by bytes');
    await waitUntil(() => leaderCounts().snapshots.sent >= 1, { what: 'the leader to count the snapshot it sent m3', context: () => JSON.stringify(leaderCounts()) });
    const received = c3.memberCounts()!.snapshots;
    assert.ok(received.received >= 1 && received.receivedBytes > 1_000_000 && received.receivedSeconds > 0, JSON.stringify(received));
    assert.ok(leaderCounts().snapshots.sentBytes > 1_000_000 && leaderCounts().snapshots.sentSeconds > 0, JSON.stringify(leaderCounts().snapshots));
    // `snapshot save` pages fit the bus too
    const cli = bus.connect('cli');
    const info = (await adminRequest(cli, 'conclave', 'm2', 'snapshot.begin', {}, 10_000)) as { session: string; node: string; pages: number; keys: number };
    let keys = 0;
    for (let seq = 0; seq < info.pages; seq++) {
      const page = (await adminRequest(cli, 'conclave', info.node, 'snapshot.page', { session: info.session, seq }, 10_000)) as { pairs: unknown[] };
      keys += page.pairs.length;
    }
    assert.equal(keys, info.keys);
    assert.ok(keys >= 128);
  });
});
