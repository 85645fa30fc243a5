// Replay protection across a real process restart (issue 11): a member whose process is killed and
// started again numbers its MACed peer messages from seq 1 again, under a boot counter its store made
// larger at the new start — and the members keep hearing it (nothing refused as `replayed`), while
// copies of what it sent before the restart are refused. Real nats-server; x2 is a `conclave run`
// process (SIGKILLed and started again), x1 and x3 are controllers in this process, so that their
// drop counters can be read; the test's own connection records x2's messages to the leader.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Controller, startController } from '../../runtime/controller.ts';
import { killLeftoverProcesses, waitUntil } from '../helpers/cli.ts';
import { cliCluster } from '../helpers/cliCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { drops } from './helpers.ts';

const PREFIX = 'rr';
// slow enough that no election happens by itself on a busy machine
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };

/** the (boot, seq) a MACed message carries */
function counterOf(data: Uint8Array): { boot: number; seq: number } | null {
  const m = /,"mac":"([1-9][0-9]*)\.([1-9][0-9]*)\.[A-Za-z0-9_-]{43}"}/.exec(Buffer.from(data).toString('latin1'));
  return m ? { boot: Number(m[1]), seq: Number(m[2]) } : null;
}

describe('replay protection across a process restart (issue 11)', { skip: natsServerSkipReason() }, () => {
  const c = cliCluster({ prefix: PREFIX, tmpPrefix: 'conclave-replay-restart-' });
  const nodes: Controller[] = [];

  before(async () => {
    for (const name of ['x1', 'x3']) nodes.push(await startController({ name, dataDir: join(c.dir, name), prefix: PREFIX, transport: { nats: { servers: c.nats.url } }, raft: RAFT }));
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    await killLeftoverProcesses();
  });

  it('a member killed and started again (seq from 1, a larger boot) is heard at once; its old messages replayed are not', async () => {
    const [x1, x3] = nodes as [Controller, Controller];
    await c.run('x2', { raft: RAFT });
    await x1.init();
    await x1.waitForLeader(30_000);
    await x1.cluster.add('x2');
    await x1.cluster.add('x3');
    await waitUntil(async () => x1.status().members.length === 3 && x1.status().members.every((m) => m.voter) && x3.status().leader === 'x1' && (await c.status('x2')).leader === 'x1', {
      timeoutMs: 60_000,
      what: 'three voters under x1',
    });
    const x2Id = (await c.status('x2')).nodeId;
    /** x2 has answered the leader up to its last index (its append-responses were taken) */
    const caughtUp = () => {
      const raft = x1.memberRuntime().raftStatus();
      return (raft.progress[x2Id]?.matchIndex ?? -1) >= raft.lastIndex;
    };
    const heard: Uint8Array[] = [];
    const tap = c.bus.subscribe(`${PREFIX}.node.x1.peer`, (msg) => {
      if (Buffer.from(msg.data).toString('latin1').includes('"from":"x2"')) heard.push(Buffer.from(msg.data));
    });
    await c.bus.flush();
    await x1.propose({ op: 'put', key: 'before', value: 1 });
    await waitUntil(() => caughtUp() && heard.length >= 5, { timeoutMs: 30_000, what: 'x2 to answer the leader' });
    const old = heard.splice(0);
    const oldCounters = old.map(counterOf);
    assert.ok(oldCounters.every((k) => k !== null), 'every message x2 sent the leader is MACed with (boot, seq)');
    const lastOld = oldCounters.at(-1)!;

    await c.procs.get('x2')!.kill('SIGKILL');
    await c.run('x2', { raft: RAFT });
    await x1.propose({ op: 'put', key: 'after', value: 2 });
    await waitUntil(() => caughtUp() && heard.length >= 1, { timeoutMs: 60_000, what: 'the restarted x2 to answer the leader' });
    const first = counterOf(heard[0]!)!;
    assert.ok(first.boot > lastOld.boot, `a larger boot counter after the restart (${first.boot} after ${lastOld.boot})`);
    assert.ok(first.seq < lastOld.seq, `its seq started again (${first.seq}, before the restart ${lastOld.seq})`);
    assert.equal(drops(x1, 'replayed') + drops(x3, 'replayed'), 0, 'nothing the restarted member sent was refused');

    // what x2 sent before it was killed, published again by a bus user
    for (const data of old) c.bus.publish(`${PREFIX}.node.x1.peer`, data);
    await waitUntil(() => drops(x1, 'replayed') >= old.length, { timeoutMs: 30_000, what: "the leader to refuse x2's messages from before its restart" });
    tap.unsubscribe();
    await x1.propose({ op: 'put', key: 'still', value: 3 });
    await waitUntil(caughtUp, { timeoutMs: 30_000, what: 'x2 to keep answering the leader' });
  });
});
