// Issue 17, item 11: a blank node added at default timeouts to a 3-node cluster holding a large
// state becomes a voter with no election: the leader streams the snapshot without blocking its
// event loop (one chunk per turn, a few chunks in flight, acknowledged by the receiver) and with
// memory bounded by a few chunks, not by the state; the new node writes the chunks to its store's
// staging area as they arrive and its join stays alive while they do. CONCLAVE_SNAPSHOT_TEST_MB
// sets the state's size (default 64; the issue's case is 200: CONCLAVE_SNAPSHOT_TEST_MB=200).
// Rates and memory are printed, not asserted (the machine may be shared).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { natsServerSkipReason } from '../helpers/natsServer.ts';
import { type NatsProcessCluster, natsProcessCluster, sizedValue } from '../helpers/natsProcessCluster.ts';

const STATE_MB = Number(process.env.CONCLAVE_SNAPSHOT_TEST_MB ?? 64);
const VALUE_BYTES = 100_000;
const NAMES = ['t1', 't2', 't3'];

/** kB fields of /proc/<pid>/status */
function procStatus(pid: number): { rssAnon: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  return { rssAnon: kb('RssAnon'), hwm: kb('VmHWM') };
}

describe('adding a blank node to a cluster holding a large state, over real NATS', { skip: natsServerSkipReason() }, () => {
  let c: NatsProcessCluster;
  const keys = Math.round((STATE_MB * 1e6) / VALUE_BYTES);
  before(async () => {
    c = await natsProcessCluster({ prefix: 'snapx' });
    const pairs: Array<[string, unknown]> = [];
    for (let i = 0; i < keys; i++) pairs.push([`k${String(i).padStart(5, '0')}`, sizedValue(VALUE_BYTES, i)]);
    // default timeouts (heartbeat 50 ms, election 500 ms): the transfer must not cost the leadership
    await c.startSeeded(NAMES, {}, pairs);
  });
  after(async () => {
    await c?.close();
  });

  it(`streams ${STATE_MB} MB to a blank node at default timeouts: a voter with no election, the leader's memory bounded (item 11)`, async () => {
    const leader = await c.leader();
    const before = await c.status(leader);
    const pid = c.procs.get(leader)!.child.pid!;
    const baseline = procStatus(pid);
    let peakAnon = baseline.rssAnon;
    let joinerPeakAnon = 0;
    const sampler = setInterval(() => {
      peakAnon = Math.max(peakAnon, procStatus(pid).rssAnon);
      const joiner = c.procs.get('t4')?.child.pid;
      if (joiner !== undefined && c.procs.get('t4')!.running) joinerPeakAnon = Math.max(joinerPeakAnon, procStatus(joiner).rssAnon);
    }, 20);
    // every existing member's term, from before the add until the new node is a voter: no election at all
    const terms = new Map<string, Set<number>>(NAMES.map((n) => [n, new Set([before.term])]));
    let watching = true;
    const termWatch = (async () => {
      while (watching) {
        for (const name of NAMES) terms.get(name)!.add((await c.status(name)).term);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // a writer all along: writes keep committing while the state streams
    let writing = true;
    let worstWriteMs = 0;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        const t = Date.now();
        await c.ask(leader, 'propose', { command: { op: 'put', key: 'during', value: writes } }, 20_000);
        worstWriteMs = Math.max(worstWriteMs, Date.now() - t);
        writes++;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      await c.startNode('t4', {});
      const added = Date.now();
      const result = (await c.ask(leader, 'cluster.add', { name: 't4', timeoutMs: 300_000 }, 305_000)) as { outcome: string };
      const addMs = Date.now() - added;
      assert.equal(result.outcome, 'added');
      const list = await c.status(leader);
      assert.ok(list.members.some((m) => m.name === 't4' && m.voter), 'cluster add returns with the node a voter');
      watching = false;
      await termWatch;
      writing = false;
      await writer;
      clearInterval(sampler);

      for (const name of NAMES) assert.deepEqual([...terms.get(name)!], [before.term], `${name}: the term never changed during the add`);
      for (const name of [...NAMES, 't4']) {
        const s = await c.status(name);
        assert.equal(s.term, before.term, `${name}: the term did not change`);
        assert.equal(s.leader, leader, `${name}: ${leader} still leads`);
      }
      const sent = c.procs
        .get(leader)!
        .stderr.split('\n')
        .filter((l) => l.includes('"sent snapshot"'))
        .map((l) => JSON.parse(l) as { bytes: number; ms: number; chunks: number; keys: number; encodeMs: number; publishMs: number; windowWaitMs: number; cpuMs?: number });
      assert.equal(sent.length, 1, 'one transfer, never restarted');
      const installed = c.procs
        .get('t4')!
        .stderr.split('\n')
        .filter((l) => l.includes('"installed snapshot (no restart)"'))
        .map((l) => JSON.parse(l) as { time: number; keys: number });
      assert.equal(installed.length, 1, 'installed once');
      const { bytes, ms, chunks } = sent[0]!;
      const stateBytes = keys * VALUE_BYTES;
      const growth = peakAnon - baseline.rssAnon;
      const mib = (b: number) => (b / 2 ** 20).toFixed(1);
      process.stdout.write(
        `# item 11: state ${(stateBytes / 1e6).toFixed(0)} MB (${keys} keys) | sent ${(bytes / 1e6).toFixed(1)} MB in ${chunks} chunks, ${ms} ms = ${(bytes / 1e3 / ms).toFixed(1)} MB/s | ` +
          `cluster add ${addMs} ms = ${(bytes / 1e3 / addMs).toFixed(1)} MB/s end to end | leader RssAnon ${mib(baseline.rssAnon)} MiB before, ${mib(peakAnon)} MiB at peak (+${mib(growth)}) | ` +
          `new node RssAnon peak ${mib(joinerPeakAnon)} MiB | terms seen ${NAMES.map((n) => `${n}:${[...terms.get(n)!].join('/')}`).join(' ')} | ${writes} writes meanwhile, slowest ${worstWriteMs} ms | load ${loadavg()[0]!.toFixed(1)}\n`,
      );
      // where the time went, per stage (the leader's and the new node's logs)
      const received = c.procs
        .get('t4')!
        .stderr.split('\n')
        .filter((l) => l.includes('"received snapshot"'))
        .map((l) => JSON.parse(l) as { ms: number; decodeMs: number; writeMs: number; cpuMs?: number })
        .at(-1);
      const rate = (stageMs: number | undefined) => (stageMs === undefined ? '?' : `${Math.round(stageMs)} ms (${stageMs > 0 ? (bytes / 1e3 / stageMs).toFixed(0) : '∞'} MB/s)`);
      process.stdout.write(
        `# item 11 stages: sender read+encode ${rate(sent[0]!.encodeMs)}, publish ${rate(sent[0]!.publishMs)}, window full (ack wait) ${rate(sent[0]!.windowWaitMs)} | ` +
          `receiver decode ${rate(received?.decodeMs)}, write ${rate(received?.writeMs)}, first to last chunk ${rate(received?.ms)} | ` +
          `CPU time of the whole process meanwhile: leader ${rate(sent[0]!.cpuMs)}, new node ${rate(received?.cpuMs)}\n`,
      );
      assert.ok(growth < stateBytes, `the leader's memory grew by ${growth} bytes, not less than the state's ${stateBytes}`);
      const got = (await c.ask('t4', 'read', { query: { op: 'get', key: `k${String(keys - 1).padStart(5, '0')}` }, stale: true })) as { value: string };
      assert.equal(got.value, sizedValue(VALUE_BYTES, keys - 1));
    } catch (err) {
      // what the leader and the new node said about the transfer
      for (const name of [leader, 't4']) {
        const lines = c.procs.get(name)?.stderr.split('\n').filter((l) => /snapshot|install|catch|t4|"level":(40|50)/.test(l)) ?? [];
        process.stdout.write(`--- ${name}\n${lines.slice(-12).join('\n').slice(0, 6000)}\n`);
      }
      throw err;
    } finally {
      writing = false;
      watching = false;
      clearInterval(sampler);
      await writer.catch(() => {});
      await termWatch.catch(() => {});
    }
  });
});
