// A lease machine (lease.ts) replicated on three controllers with `replicatedMachine`: every node
// holds the same statechart state — after the leader is stopped (failover) and after nodes restore
// the state from a snapshot (a restarted node, and a new node that installs the leader's snapshot).
//   npm run example:replicated-machine
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, createInProcessBus, type MachineApplyResult, replicatedMachine, startController } from 'conclave';
import { type LeaseContext, type LeaseEvent, leaseMachine } from './lease.ts';

const dataRoot = mkdtempSync(join(tmpdir(), 'conclave-example-machine-'));
const bus = createInProcessBus();
// a small snapshotEvery so the log is compacted and snapshots are used below
const raft = { heartbeatMs: 20, electionTimeoutMs: 150, snapshotEvery: 10 };
const running = new Map<string, Controller>();

async function start(name: string): Promise<Controller> {
  const c = await startController({ name, dataDir: join(dataRoot, name), transport: { bus }, raft, state: replicatedMachine(leaseMachine) });
  running.set(name, c);
  return c;
}

async function stop(name: string): Promise<void> {
  await running.get(name)?.stop();
  running.delete(name);
}

/** propose a lease event through `via`, retrying while a new leader is being elected */
async function send(via: string, event: LeaseEvent): Promise<MachineApplyResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await running.get(via)!.propose(event)) as MachineApplyResult;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 50 || (code !== 'NO_LEADER' && code !== 'NOT_LEADER' && code !== 'UNREACHABLE')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function describe(state: { value: unknown; context: LeaseContext }): string {
  return state.value === 'held' ? `held(${state.context.holder}#${state.context.fencing})` : `${String(state.value)}(#${state.context.fencing})`;
}

/** each running node's own copy (a stale read), once every node has applied what the leader committed */
async function everyNode(): Promise<string> {
  const leader = [...running.values()].find((c) => c.status().role === 'leader')!;
  const commit = leader.status().commitIndex;
  const parts: string[] = [];
  for (const [name, c] of [...running].sort(([a], [b]) => a.localeCompare(b))) {
    while (c.status().appliedIndex < commit) await new Promise((r) => setTimeout(r, 10));
    parts.push(`${name}=${describe((await c.read(null, { stale: true })) as { value: unknown; context: LeaseContext })}`);
  }
  const agree = new Set(parts.map((p) => p.split('=')[1])).size === 1;
  return `${parts.join(' ')}${agree ? ' (all agree)' : ' (DISAGREE)'}`;
}

// the proposer's clock travels in the events: the machine itself never reads a clock
let t = 1_000_000;
function tick(): number {
  t += 100;
  return t;
}
try {
  for (const name of ['n1', 'n2', 'n3']) await start(name);
  await running.get('n1')!.init();
  await running.get('n1')!.waitForLeader();
  await running.get('n1')!.cluster.add('n2');
  await running.get('n1')!.cluster.add('n3');
  console.log('three controllers n1 n2 n3 replicate the lease machine; leader n1');

  let r = await send('n2', { type: 'acquire', owner: 'worker-a', now: t, ttlMs: 10_000 });
  console.log(`worker-a acquires via n2: ${r.ok && r.handled ? `granted (fencing ${(r.context as LeaseContext).fencing})` : 'refused'}`);
  r = await send('n3', { type: 'acquire', owner: 'worker-b', now: tick(), ttlMs: 10_000 });
  console.log(`worker-b acquires via n3: ${r.ok && r.handled ? 'granted' : `refused, held by ${(r.ok ? (r.context as LeaseContext) : null)?.holder}`}`);
  console.log(`state: ${await everyNode()}`);

  console.log('stopping the leader n1 (failover)');
  await stop('n1');
  const newLeader = await running.get('n2')!.waitForLeader();
  console.log(`new leader: ${newLeader}`);
  r = await send('n3', { type: 'release', owner: 'worker-a' });
  console.log(`worker-a releases via n3: ${r.ok && r.handled ? 'released' : 'refused'}`);
  r = await send('n2', { type: 'acquire', owner: 'worker-b', now: tick(), ttlMs: 10_000 });
  console.log(`worker-b acquires via n2: ${r.ok && r.handled ? `granted (fencing ${(r.context as LeaseContext).fencing})` : 'refused'}`);
  console.log(`after failover: ${await everyNode()}`);

  for (let i = 0; i < 30; i++) await send('n3', { type: 'renew', owner: 'worker-b', now: tick(), ttlMs: 10_000 });
  const compacted = running.get(newLeader)!.store.snapshotMeta()!.index;
  console.log(`worker-b renewed 30 times; the leader ${newLeader} snapshotted and compacted its log at index ${compacted}`);

  await start('n1');
  await start('n4');
  await running.get(newLeader)!.cluster.add('n4');
  const n4 = running.get('n4')!;
  console.log(`restarted n1 (restored its own snapshot, caught up) and added n4 (installed the leader's snapshot at index ${n4.store.snapshotMeta()!.index}; its log starts at ${n4.store.firstIndex()})`);
  console.log(`after restore: ${await everyNode()}`);
} finally {
  for (const name of [...running.keys()]) await stop(name);
  await bus.close();
  rmSync(dataRoot, { recursive: true, force: true });
}
console.log('stopped cleanly');
