// Issue 17, item 11: `conclave cluster add` of a node that needs a large state. The CLI had a fixed
// deadline (30 s, the leader's 28.5 s), so an add that was still making progress — a slow new node,
// a 200 MB state — failed at the CLI although it went on and succeeded. Now the CLI follows the add
// for as long as the node makes progress, shows it on stderr, and fails with a clear error only when
// it stalls. Real `conclave run` processes over a real nats-server, driven through the real CLI;
// the new node is slowed by SIGSTOP/SIGCONT until the add has run for longer than the old deadline:
// it runs until its store has grown by a little (or for a second), then stands still for 1.5 s, so
// however fast the machine, it cannot take the whole state before then.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, runCli, waitUntil } from '../helpers/cli.ts';
import { type NatsProcessCluster, natsProcessCluster, sizedValue } from '../helpers/natsProcessCluster.ts';
import { natsServerSkipReason } from '../helpers/natsServer.ts';

const PREFIX = 'addprog';
/** the deadline `cluster add` had by default */
const OLD_DEADLINE_MS = 30_000;

/**
 * Slow process `pid` down until `untilMs`: let it run until `file` (its store) has grown by 2 MB or
 * for 1 s, whichever comes first, then stop it for 1.5 s (less than the leader's snapshot stall
 * timeout, so the transfer goes on). `stop()` lets it run for good.
 */
function slowDown(pid: number, file: string, untilMs: number): { stop(): Promise<void> } {
  let done = false;
  const size = () => {
    try {
      return statSync(file).size;
    } catch {
      return 0; // not created yet
    }
  };
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const loop = (async () => {
    while (!done && Date.now() < untilMs) {
      process.kill(pid, 'SIGSTOP');
      await pause(1500);
      process.kill(pid, 'SIGCONT');
      const from = size();
      const runUntil = Date.now() + 1000;
      while (!done && Date.now() < runUntil && size() - from < 2_000_000) await pause(20);
    }
  })();
  return {
    async stop() {
      done = true;
      await loop;
      process.kill(pid, 'SIGCONT');
    },
  };
}

describe('cluster add of a node that takes long to catch up, over real NATS through the CLI', { skip: natsServerSkipReason() }, () => {
  let c: NatsProcessCluster;
  before(async () => {
    c = await natsProcessCluster({ prefix: PREFIX });
    const pairs: Array<[string, unknown]> = [];
    for (let i = 0; i < 1500; i++) pairs.push([`k${String(i).padStart(4, '0')}`, sizedValue(100_000, i)]);
    await c.startSeeded(['p1'], {}, pairs);
  });
  after(async () => {
    await c?.close();
  });
  const cli = (args: string[]) => runCli(args, { env: baseEnv({ NATS_URL: c.nats.url, CONCLAVE_PREFIX: PREFIX }), timeoutMs: 240_000 });

  it('keeps waiting while the node makes progress (shown on stderr), past the old deadline, and ends added', async () => {
    await c.leader();
    const node = await c.startNode('p2', {});
    const startedAt = Date.now();
    const slowing = slowDown(node.child.pid!, join(c.dataDir('p2'), 'data.mdb'), startedAt + OLD_DEADLINE_MS + 5000);
    let add: Awaited<ReturnType<typeof cli>>;
    try {
      add = await cli(['cluster', 'add', 'p2', '--via', 'p1']);
    } finally {
      await slowing.stop();
    }
    const tookMs = Date.now() - startedAt;
    const progress = add.stderr.split('\n').filter((l) => l.startsWith('cluster add p2: '));
    process.stdout.write(`# cluster add took ${tookMs} ms; ${progress.length} progress lines, e.g.\n# ${progress.slice(0, 3).concat(progress.slice(-2)).join('\n# ')}\n`);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /^added p2 \(node [0-9a-f-]+\) as a voter/);
    assert.ok(tookMs > OLD_DEADLINE_MS, `precondition: the add ran past the old deadline (it took ${tookMs} ms)`);
    assert.ok(progress.some((l) => /snapshot [\d.]+ MB received/.test(l)), `progress shown on stderr:\n${add.stderr}`);
    const list = await c.status('p1');
    assert.ok(list.members.some((m) => m.name === 'p2' && m.voter), 'p2 is a voter');
  });

  it('fails with a clear error when the node stops making progress', async () => {
    const node = await c.startNode('p3', {});
    const pid = node.child.pid!;
    let settled: Awaited<ReturnType<typeof cli>> | undefined;
    const added = cli(['cluster', 'add', 'p3', '--via', 'p1']).then((r) => (settled = r));
    // once the leader streams it the state, the node freezes for good. The leader is whichever node
    // leads now (the first test's pauses of p2 may have moved leadership), so every node's log counts.
    const logs = () => [...c.procs.entries()].map(([name, p]) => `--- ${name} ---\n${p.stderr.split('\n').slice(-15).join('\n')}`).join('\n');
    await waitUntil(() => settled !== undefined || [...c.procs.values()].some((p) => /add p3: catchingUp/.test(p.stderr)), {
      what: 'p3 catching up',
      timeoutMs: 120_000,
      context: logs,
    });
    assert.equal(settled, undefined, `the add ended before p3 caught up: exit ${settled?.code}\n${settled?.stderr}\n${logs()}`);
    process.kill(pid, 'SIGSTOP');
    const add = await added;
    process.kill(pid, 'SIGCONT');
    process.stdout.write(`# stalled add: exit ${add.code}, ${add.stderr.trim().split('\n').at(-1)}\n`);
    assert.notEqual(add.code, 0);
    const last = add.stderr.trim().split('\n').at(-1)!;
    assert.match(last, /^error: .*p3/, 'one error line naming the node');
  });
});
