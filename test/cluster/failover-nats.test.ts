// Consensus acceptance over a real nats-server: three `conclave run` processes, a client writing
// all the time, the leader killed with SIGKILL. A new leader serves; every acknowledged write is on
// every survivor; the killed node restarts and catches up (after compaction: by snapshot).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AdminOp, AdminRequest } from '../../runtime/wire/adminProtocol.ts';
import { adminRequest } from '../../runtime/cli/client.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { baseEnv, CliProcess, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';
import { seedStaticCluster } from '../helpers/staticCluster.ts';
import { testOperator } from '../helpers/testOperator.ts';

const NAMES = ['n1', 'n2', 'n3'];
const PREFIX = 'fo';
/** how long the writes may make no progress at all before the test fails */
const STALL_MS = 20_000;

interface Status {
  role: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
}

describe('three controllers over real NATS: failover under writes', { skip: natsServerSkipReason() }, () => {
  let nats: NatsServerHandle;
  let dir: string;
  let bus: Bus;
  const procs = new Map<string, CliProcess>();

  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'conclave-failover-'));
    bus = await connectNats({ servers: nats.url, name: 'failover-test' });
  });
  let stopLoad = () => {};
  after(async () => {
    stopLoad();
    for (const p of procs.values()) await p.kill('SIGKILL');
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function startNode(name: string): Promise<CliProcess> {
    const config = join(dir, `${name}.json`);
    const p = new CliProcess(['run', '--config', config], { env: baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: PREFIX }) });
    procs.set(name, p);
    await p.waitForOutput(/controller .* is running/);
    return p;
  }

  const ask = <O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs = 2000) => adminRequest(bus, PREFIX, node, type, body, timeoutMs, testOperator().signer);
  const status = (node: string) => ask(node, 'status', {}) as Promise<Status>;

  /** every key the writer and the probes wrote, read locally (stale) from one node */
  async function readAll(node: string): Promise<Map<string, number>> {
    const have = new Map<string, number>();
    for (const prefix of ['w', 'p']) {
      const { items } = (await ask(node, 'read', { query: { op: 'list', prefix, limit: 10_000 }, stale: true })) as { items: Array<{ key: string; value: number }> };
      for (const x of items) have.set(x.key, x.value);
    }
    return have;
  }

  async function leaderAmong(nodes: string[]): Promise<string | null> {
    for (const n of nodes) {
      try {
        const s = await status(n);
        if (s.role === 'leader') return n;
      } catch {
        // not answering: not the leader we are looking for
      }
    }
    return null;
  }

  it('keeps every acknowledged write through a leader crash and catches the restarted node up', async () => {
    const nodes = NAMES.map((name) => ({ name, dataDir: join(dir, name) }));
    await seedStaticCluster(nodes);
    for (const n of nodes) {
      await writeFile(
        join(dir, `${n.name}.json`),
        // the torture suite's timing: at 20/150 ms a CPU-starved machine elects again and again, and
        // writes are refused more than they are taken (a loaded CI run got fewer than 300 in 30 s)
        JSON.stringify({ name: n.name, dataDir: n.dataDir, log: { level: 'info' }, raft: { heartbeatMs: 50, electionTimeoutMs: 500, snapshotEvery: 100 } }),
      );
    }
    await Promise.all(NAMES.map(startNode));
    let leader: string | null = null;
    await waitUntil(
      async () => {
        leader = await leaderAmong(NAMES);
        return leader !== null;
      },
      { what: 'a first leader', timeoutMs: 10_000 },
    );

    // a client writing all the time, to any member (followers forward to the leader)
    const acked = new Map<string, number>();
    let failed = 0;
    let writing = true;
    let seq = 0;
    let probe: NodeJS.Timeout | undefined;
    // whatever happens below, the writer and the probes stop (a failed assertion must not leave them running)
    stopLoad = () => {
      writing = false;
      clearInterval(probe);
    };
    const writer = (async () => {
      while (writing) {
        const i = seq++;
        const via = NAMES[i % NAMES.length]!;
        try {
          await ask(via, 'propose', { command: { op: 'put', key: `w${String(i).padStart(5, '0')}`, value: i } }, 1500);
          acked.set(`w${String(i).padStart(5, '0')}`, i);
        } catch {
          failed++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    /** until `count` writes are acknowledged; fails only when none is for STALL_MS (progress, not a deadline: a loaded machine is slower) */
    const waitForAcks = async (count: number, what: string) => {
      let seen = acked.size;
      let progressAt = Date.now();
      await waitUntil(
        () => {
          if (acked.size > seen) {
            seen = acked.size;
            progressAt = Date.now();
          }
          if (Date.now() - progressAt > STALL_MS) throw new Error(`no write acknowledged for ${STALL_MS} ms while waiting for ${what} (${acked.size} acknowledged, ${failed} failed)`);
          return acked.size >= count;
        },
        { what, timeoutMs: 10 * 60_000 },
      );
    };
    await waitForAcks(300, '300 acknowledged writes');
    const oldLeader = leader!;
    const killedAt = Date.now();
    await procs.get(oldLeader)!.kill('SIGKILL');
    const survivors = NAMES.filter((n) => n !== oldLeader);
    // probes: a put every 10 ms to the survivors, not waiting for each other, so the time to the
    // first acknowledged one measures the cluster, not a client's request timeout
    let firstProbeAck = 0;
    let probeSeq = 0;
    probe = setInterval(() => {
      const value = probeSeq++;
      const key = `p${String(value).padStart(5, '0')}`;
      ask(survivors[value % survivors.length]!, 'propose', { command: { op: 'put', key, value } }, 2000).then(
        () => {
          acked.set(key, value);
          if (firstProbeAck === 0) firstProbeAck = Date.now();
        },
        () => {
          failed++; // expected while there is no leader
        },
      );
    }, 10);
    await waitUntil(() => firstProbeAck > 0, { what: 'a write acknowledged after the crash', timeoutMs: 30_000 });
    clearInterval(probe);
    const recoveredMs = firstProbeAck - killedAt;
    const newLeader = await leaderAmong(survivors);
    assert.ok(newLeader && newLeader !== oldLeader, `a survivor leads (got ${newLeader})`);
    process.stdout.write(`# failover: first write acknowledged ${recoveredMs} ms after SIGKILL of ${oldLeader}; ${failed} writes failed meanwhile\n`);
    // (how fast is measured by `npm run bench`, not asserted here: a loaded machine is slower)

    const target = acked.size + 200;
    await waitForAcks(target, '200 more writes');
    writing = false;
    await writer;

    // every acknowledged write is on every survivor
    const leaderStatus = await status(newLeader!);
    for (const n of survivors) {
      await waitUntil(async () => (await status(n)).appliedIndex >= leaderStatus.commitIndex, { what: `${n} applied ${leaderStatus.commitIndex}` });
      const have = await readAll(n);
      for (const [k, v] of acked) assert.equal(have.get(k), v, `${n} lost acknowledged write ${k}`);
    }

    // the killed node restarts and catches up; the log was compacted meanwhile, so by snapshot
    const restarted = await startNode(oldLeader);
    const final = await status(newLeader!);
    await waitUntil(async () => (await status(oldLeader)).appliedIndex >= final.commitIndex, {
      what: `${oldLeader} catching up to ${final.commitIndex}`,
      timeoutMs: 60_000,
      context: () => restarted.output().slice(-3000),
    });
    const have = await readAll(oldLeader);
    for (const [k, v] of acked) assert.equal(have.get(k), v, `restarted ${oldLeader} is missing ${k}`);
    assert.match(restarted.stderr, /installed snapshot/, 'the restarted node caught up through a snapshot after compaction');
    // and it serves linearizable reads through the cluster
    const read = (await ask(oldLeader, 'read', { query: { op: 'get', key: 'w00000' } })) as { value: unknown };
    assert.equal(read.value, 0);
  });
});
