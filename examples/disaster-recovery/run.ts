// Example 5 — disaster recovery: a 3-voter cluster loses two members for good (no quorum), one
// survivor is recovered offline, blank nodes are added back, and a stale old member is refused
// until it is wiped.
//
//   npm run example:disaster-recovery
//
// Everything runs in this one process on the embedded in-process bus (the steps are the same over
// NATS with `conclave run`, `conclave recover --data-dir D` and `conclave cluster add`); the
// stores live in a temporary folder that is removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, createInProcessBus, recoverStore, startController } from 'conclave';
import { formatRecovery } from '../../runtime/cli/recover.ts'; // what `conclave recover` prints (the CLI's, not the package's API)

const say = (line = '') => process.stdout.write(`${line}\n`);
const step = (n: number, what: string) => say(`\n== ${n}. ${what}`);
const raft = { heartbeatMs: 20, electionTimeoutMs: 200 };

const dir = mkdtempSync(join(tmpdir(), 'conclave-disaster-recovery-'));
const bus = createInProcessBus();
const running = new Set<Controller>();

async function start(name: string): Promise<Controller> {
  const c = await startController({ name, dataDir: join(dir, name), transport: { bus }, raft });
  running.add(c);
  return c;
}
async function stop(c: Controller): Promise<void> {
  await c.stop();
  running.delete(c);
}
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const members = (c: Controller) =>
  c
    .status()
    .members.map((m) => `${m.name}${m.voter ? '' : ' (learner)'}`)
    .sort()
    .join(', ');
const value = async (c: Controller, key: string) => JSON.stringify(((await c.read({ op: 'get', key })) as { value: unknown }).value);

async function main(): Promise<void> {
  step(1, 'a healthy 3-voter cluster with some data');
  const [c1, c2, c3] = [await start('ctrl1'), await start('ctrl2'), await start('ctrl3')];
  const clusterId = await c1.init();
  await c1.waitForLeader();
  await c1.cluster.add('ctrl2');
  await c1.cluster.add('ctrl3');
  await c1.propose({ op: 'put', key: 'color', value: 'blue' });
  await c1.propose({ op: 'put', key: 'limits', value: { cpu: 2, memory: '1Gi' } });
  say(`cluster ${clusterId}: voters ${members(c1)}; color=${await value(c1, 'color')}`);

  step(2, 'disaster: ctrl2 and ctrl3 are gone for good — ctrl1 alone has no quorum');
  await stop(c2);
  await stop(c3);
  await until('ctrl1 to lose its leader', () => c1.status().leader === null);
  say(`ctrl1: role ${c1.status().role}, leader ${c1.status().leader ?? '(none)'} — writes and linearizable reads are impossible now`);

  step(3, 'recover the survivor offline (what `conclave recover --data-dir D` does)');
  await stop(c1);
  const result = await recoverStore({ dataDir: join(dir, 'ctrl1') });
  say(formatRecovery(result));

  step(4, 'start it again: it elects itself, with the same cluster id and data');
  const r1 = await start('ctrl1');
  await r1.waitForLeader();
  say(`ctrl1: ${r1.status().role}, cluster ${r1.status().clusterId}, members ${members(r1)}; color=${await value(r1, 'color')}`);

  step(5, 'add two blank nodes (what `conclave cluster add N --via ctrl1` does)');
  await start('ctrl4');
  await start('ctrl5');
  await r1.cluster.add('ctrl4');
  await r1.cluster.add('ctrl5');
  await r1.propose({ op: 'put', key: 'recovered', value: true });
  say(`voters: ${members(r1)}; limits=${await value(r1, 'limits')}`);

  step(6, 'ctrl2 comes back with its OLD data dir: it is refused, and told so');
  const refusals: string[] = [];
  const off = r1.onRefusal((r) => refusals.push(r.message));
  const stale = await start('ctrl2');
  await until('the stale ctrl2 to stop taking part', () => stale.status().phase === 'failed');
  off();
  say(`ctrl1 reported: ${refusals[0] ?? '(nothing)'}`);
  say(`ctrl2 is now phase ${stale.status().phase}: ${stale.actor.getSnapshot().context.error?.message}`);
  say(`voters: ${members(r1)} (ctrl2 is not one)`);

  step(7, 'wipe ctrl2 and add it again: it is a new node of the recovered cluster');
  await stop(stale);
  rmSync(join(dir, 'ctrl2'), { recursive: true, force: true });
  const fresh = await start('ctrl2');
  await r1.cluster.add('ctrl2');
  say(`voters: ${members(r1)}; ctrl2 reads color=${await value(fresh, 'color')}, recovered=${await value(fresh, 'recovered')} (generation ${fresh.store.identity().generation})`);
  say('\ndone: the cluster survived losing its quorum.');
}

try {
  await main();
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  for (const c of running) await c.stop();
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
}
