// Rolling upgrade from the previous release (issue #15, acceptance 1): three `conclave run`
// processes of release 0.1.0 (installed from its packed tarball) on a real nats-server, clients
// writing and reading through every member, and the nodes replaced by this build one at a time.
// Checked: no acknowledged write lost and the history linearizable (the torture suite's checker);
// the cluster version raised only after the last node; and member authentication — every peer
// message MACed or signed — only after that, as every peer message on the bus shows.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../helpers/cli.ts';
import { PREVIOUS_RELEASE } from '../helpers/previousRelease.ts';
import { checkHistory } from '../linearizability/checker.ts';
import { parseConclave } from '../linearizability/formats.ts';
import { renderText } from '../linearizability/render.ts';
import { clientOperations, lostWrites } from '../linearizability/window.ts';
import { type HistoryEvent, startWorkload } from '../nemesis/workload.ts';
import { Prng } from '../sim/prng.ts';
import { eventually, type MixedCluster, mixedCluster, PREFIX } from './mixedCluster.ts';

const NODES = ['ctrl1', 'ctrl2', 'ctrl3'];

/** one peer message seen on the bus */
interface Seen {
  to: string;
  from: string;
  version: number;
  authenticated: boolean;
}

describe(`rolling upgrade from ${PREVIOUS_RELEASE}`, () => {
  let c: MixedCluster;
  const seen: Seen[] = [];

  before(async () => {
    c = await mixedCluster();
    // every peer message: which version its envelope states, and whether it is authenticated
    c.bus.subscribe(`${PREFIX}.node.*.peer`, (msg) => {
      const text = Buffer.from(msg.data).toString('utf8');
      const head = /^\{"v":(\d+),"from":"([^"]+)"/.exec(text);
      if (head === null) return;
      seen.push({ to: msg.subject.split('.')[2]!, from: head[2]!, version: Number(head[1]), authenticated: /,"(mac|sig)":"[^"]+"\}$/.test(text) });
    });
  });
  after(() => c?.close());

  const status = (node: string) => c.status(node);

  /** make `name` the leader (the current leader hands over; release 0.1 has the same operation) */
  const transferLeadership = (name: string) =>
    eventually(async () => {
      const leader = (await status(name)).leader;
      if (leader !== null && leader !== name) await c.ask(leader, 'cluster.transfer', { name, timeoutMs: 5000 }, 10_000);
      return (await status(name)).leader === name;
    }, `leadership handed to ${name}`);

  /** `name` is a member that has applied everything the leader had committed when this was called */
  const caughtUp = (name: string) => {
    let target = -1;
    return eventually(async () => {
      const leader = (await status(name)).leader;
      if (leader === null) return false;
      if (target < 0) target = (await status(leader)).commitIndex;
      const s = await status(name);
      return s.phase === 'member' && s.appliedIndex >= target;
    }, `${name} caught up with its leader`);
  };

  it('keeps every acknowledged write and a linearizable history; the cluster version and authentication come after the last node', async () => {
    for (const name of NODES) await c.start(name, 'old');
    const init = await c.cli('old', ['init', '--node', 'ctrl1']);
    assert.equal(init.code, 0, init.stderr);
    for (const name of ['ctrl2', 'ctrl3']) {
      const add = await c.cli('old', ['cluster', 'add', name, '--via', 'ctrl1']);
      assert.equal(add.code, 0, add.stderr);
    }

    const workload = startWorkload({ bus: c.bus, prefix: PREFIX, targets: () => NODES, clients: 4, keys: 4, random: new Prng(0x0b5e), opTimeoutMs: 3000 });
    const acknowledgedBy = () => workload.acknowledgedWrites.length;
    const replacedAt = new Map<string, number>();
    try {
      // writes go through while the cluster is all of the previous release
      const first = acknowledgedBy();
      await waitUntil(() => acknowledgedBy() >= first + 20, { timeoutMs: 60_000, what: 'writes acknowledged by the old cluster' });

      // the leader first, and leadership back to it: a leader of this build with followers of the
      // previous release, which must not raise the cluster version while they run
      const leader = (await status('ctrl2')).leader!;
      const order = [leader, ...NODES.filter((n) => n !== leader)];
      for (const [i, name] of order.entries()) {
        await c.procs.get(name)!.kill('SIGTERM');
        replacedAt.set(name, seen.length);
        await c.start(name, 'new');
        await caughtUp(name);
        if (i === 0) await transferLeadership(name);
        const before = acknowledgedBy();
        await waitUntil(() => acknowledgedBy() >= before + 20, { timeoutMs: 60_000, what: `writes acknowledged after ${name} was replaced` });
        if (i < order.length - 1) {
          // an old node still runs: the upgraded ones stay at version 1, unauthenticated
          for (const upgraded of order.slice(0, i + 1)) {
            const s = await status(upgraded);
            assert.equal(s.clusterVersion?.version, 1, `${upgraded} while ${order.slice(i + 1).join(', ')} still run ${PREVIOUS_RELEASE}`);
            assert.equal(s.clusterVersion?.authentication, 'off');
            assert.match(s.clusterVersion?.note ?? '', /mixed versions/);
          }
        }
      }

      // every node runs this build: the leader raises the version and commits the keys
      await waitUntil(
        async () => {
          const all = await Promise.all(NODES.map((n) => status(n).catch(() => null)));
          return all.every((s) => s?.clusterVersion?.version === 2 && s.clusterVersion.authentication === 'on');
        },
        { timeoutMs: 30_000, what: 'cluster version 2 on every member' },
      );
      // a node answers status on the connection it publishes on: what it sent before its answer reached us first
      const allAtTwo = seen.length;
      for (const n of NODES) {
        const s = await status(n);
        assert.ok(s.members.every((m) => m.keyCommitted === true && m.speaks?.max === 2), `${n}: ${JSON.stringify(s.members)}`);
      }
      const after = acknowledgedBy();
      await waitUntil(() => acknowledgedBy() >= after + 20, { timeoutMs: 60_000, what: 'writes acknowledged at cluster version 2' });

      // on the wire: nothing authenticated and all at version 1 until the last node was replaced;
      // every member's messages at version 2 and authenticated once all of them said so
      const lastReplaced = replacedAt.get(order.at(-1)!)!;
      const early = seen.slice(0, lastReplaced);
      assert.ok(early.length > 100, `peer messages before the last replacement: ${early.length}`);
      assert.deepEqual(
        early.filter((s) => s.authenticated || s.version !== 1),
        [],
        'before the last node ran this build, no peer message was authenticated or above version 1',
      );
      const firstAtTwo = seen.findIndex((s) => s.version === 2);
      assert.ok(firstAtTwo >= lastReplaced, 'no message at version 2 before the last replacement');
      assert.deepEqual(
        seen.filter((s) => s.version === 2 && !s.authenticated),
        [],
        'every message at version 2 is authenticated',
      );
      const late = (n: string) => seen.slice(allAtTwo).filter((s) => s.from === n);
      await waitUntil(() => NODES.every((n) => late(n).length >= 10), { timeoutMs: 30_000, what: 'peer messages from every member after the raise' });
      for (const n of NODES) {
        assert.ok(
          late(n).every((s) => s.version === 2 && s.authenticated),
          `${n}'s messages after the raise: ${late(n).filter((s) => s.version !== 2 || !s.authenticated).length} not at version 2 or unauthenticated`,
        );
      }
      // the raise itself was logged once, by a node of this build, after the last replacement
      const raises = NODES.flatMap((n) => c.output(n).split('\n').filter((l) => l.includes('raising the cluster version from 1 to 2')));
      assert.equal(raises.length, 1, raises.join('\n'));
    } finally {
      await workload.stop();
    }

    // the last word on every key, read through the leader, then the checks
    const leaderNow = (await status('ctrl1')).leader!;
    for (let k = 0; k < 4; k++) {
      const key = `k${k}`;
      workload.events.push({ process: `final${k}`, type: 'invoke', f: 'get', key, time: performance.now() });
      const r = await c.ask<{ found: boolean; value: unknown }>(leaderNow, 'read', { query: { op: 'get', key } }, 10_000);
      workload.events.push({ process: `final${k}`, type: 'ok', f: 'get', key, time: performance.now(), found: r.found, value: r.value } satisfies HistoryEvent);
    }
    // a forward during the upgrade is taken as release 0.1 took it (no member has a key to sign it with yet)
    const refused = workload.events.filter((e) => e.error === 'UNAUTHORIZED');
    assert.equal(refused.length, 0, `operations refused as unauthorized: ${refused.length}`);
    const lost = lostWrites(clientOperations(workload.events));
    assert.deepEqual(lost, [], 'acknowledged writes lost');
    const check = checkHistory(parseConclave(workload.events.map((e) => JSON.stringify(e)).join('\n')), { timeoutMs: 120_000 });
    const outcomes = new Map<string, number>();
    for (const e of workload.events) if (e.type !== 'invoke') outcomes.set(`${e.f} ${e.type}${e.error ? ` ${e.error}` : ''}`, (outcomes.get(`${e.f} ${e.type}${e.error ? ` ${e.error}` : ''}`) ?? 0) + 1);
    assert.equal(check.verdict, 'linearizable', `${renderText(check)}\noutcomes: ${JSON.stringify([...outcomes])}`);
    assert.ok(workload.acknowledgedWrites.length >= 80, `acknowledged writes: ${workload.acknowledgedWrites.length}`);
  });
});
