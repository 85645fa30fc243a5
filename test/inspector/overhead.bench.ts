// Measures what inspection costs the commit path: writes/s through a 3-node in-process cluster
// without a publisher, with one attached but nobody watching (the normal case), and watched by an
// inspector. Rounds alternate to spread machine noise. (snapshotEvery is out of reach: compaction
// under load trips a raft invariant in actors/member.ts, reported to the lead.) Run:
//   node --import tsx test/inspector/overhead.bench.ts [writesPerRound] [rounds]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, startController } from '../../runtime/controller.ts';
import { Inspector } from '../../runtime/inspect/inspector.ts';
import { attachInspectionPublisher, type InspectionPublisher } from '../../runtime/inspect/publisher.ts';
import { createInProcessBus } from '../../runtime/transport/inProcess.ts';
import { seedStaticCluster } from '../helpers/staticCluster.ts';

const WRITES = Number(process.argv[2] ?? 4000);
const ROUNDS = Number(process.argv[3] ?? 5);
const IN_FLIGHT = 64;
type Mode = 'none' | 'idle' | 'watched';

const dir = await mkdtemp(join(tmpdir(), 'conclave-inspect-bench-'));
const nodes = ['b1', 'b2', 'b3'].map((name) => ({ name, dataDir: join(dir, name) }));
await seedStaticCluster(nodes);
const hub = createInProcessBus();
const controllers: Controller[] = [];
for (const n of nodes) controllers.push(await startController({ ...n, prefix: 'bench', transport: { bus: hub }, raft: { heartbeatMs: 50, electionTimeoutMs: 1000, snapshotEvery: 1_000_000_000 } }));
const leaderName = await controllers[0]!.waitForLeader();
const leader = controllers.find((c) => c.name === leaderName)!;

async function round(mode: Mode, seq: { n: number }): Promise<number> {
  let publishers: InspectionPublisher[] = [];
  let inspector: Inspector | null = null;
  if (mode !== 'none') publishers = controllers.map((c) => attachInspectionPublisher(c));
  if (mode === 'watched') {
    inspector = new Inspector({ bus: hub.connect('bench-inspector'), prefix: 'bench' });
    await inspector.start();
    while (!publishers.every((p) => p.watching)) await new Promise((r) => setTimeout(r, 5));
  }
  const member = leader.memberRuntime();
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < WRITES) {
        next++;
        const i = seq.n++;
        await withTimeout(member.propose({ op: 'put', key: `k${i % 1000}`, value: i }), 5000, `write ${i} (${mode})`);
      }
    }),
  );
  const perSecond = WRITES / ((performance.now() - start) / 1000);
  await inspector?.stop();
  for (const p of publishers) p.stop();
  return perSecond;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not committed within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

const results: Record<Mode, number[]> = { none: [], idle: [], watched: [] };
const seq = { n: 0 };
await round('none', seq); // warm-up
for (const c of controllers) {
  c.actor.subscribe((snap) => {
    if (snap.value === 'failed') process.stderr.write(`${c.name} failed: ${JSON.stringify(snap.context.error)}\n`);
  });
}
for (let r = 0; r < ROUNDS; r++) for (const mode of ['none', 'idle', 'watched'] as const) results[mode].push(await round(mode, seq));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.none);
for (const mode of ['none', 'idle', 'watched'] as const) {
  const m = median(results[mode]);
  process.stdout.write(`${mode.padEnd(8)} median ${m.toFixed(0)} writes/s (${(((m - base) / base) * 100).toFixed(1)}% vs none) rounds: ${results[mode].map((x) => x.toFixed(0)).join(' ')}\n`);
}
for (const c of controllers) await c.stop();
await hub.close();
await rm(dir, { recursive: true, force: true });
