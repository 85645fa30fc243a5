// `npm run bench -- --scaling`: how the cost grows (issue 13's "How cost grows", first two parts) —
// throughput at 64 in flight for values of 100 B, 1 KB, 10 KB and 100 KB on 3 members, and for 100 B
// values on 3, 5 and 7 members. Every cluster is fresh: `conclave run` processes over one nats-server.
import { measureFormation, NatsCluster } from './natsCluster.ts';
import type { RaftSettings } from './controllerProcess.ts';
import { progress } from './progress.ts';
import { type LoadResult, runClosedLoop } from './stats.ts';

export interface ScalingResult {
  valueSizes: Array<{ valueBytes: number; load: LoadResult; mbPerSec: number }>;
  members: Array<{ members: number; load: LoadResult }>;
}

const CONCURRENCY = 64;
const VALUE_SIZES = [100, 1000, 10_000, 100_000];
const MEMBERS = [3, 5, 7];

/** puts per size: about the same bytes for the larger values, enough of them for the smaller */
const putsFor = (bytes: number) => (bytes <= 1000 ? 10_000 : bytes <= 10_000 ? 4000 : 1000);

async function withCluster<T>(raft: RaftSettings, nodeArgs: string[], members: number, fn: (c: NatsCluster, leader: string) => Promise<T>): Promise<T> {
  const cluster = await NatsCluster.prepare(raft, nodeArgs, {}, { members });
  try {
    await measureFormation(cluster);
    const leader = await cluster.findLeader();
    await runClosedLoop(500, 16, (i) => cluster.put(leader, `warmup/${i}`));
    return await fn(cluster, leader);
  } finally {
    await cluster.killAll();
    await cluster.bus.close();
    await cluster.nats.stop();
  }
}

function checked(label: string, r: LoadResult): LoadResult {
  if (r.errors > 0) throw new Error(`${label}: ${r.errors} of ${r.n} puts failed (first: ${r.firstError})`);
  return r;
}

export async function measureScaling(opts: { raft: RaftSettings; nodeArgs?: string[] }): Promise<ScalingResult> {
  const nodeArgs = opts.nodeArgs ?? [];
  progress(`S: how the cost grows — ${CONCURRENCY} in flight, values of ${VALUE_SIZES.join(', ')} bytes on 3 members, then 100 B on ${MEMBERS.join(', ')} members`);
  const valueSizes = await withCluster(opts.raft, nodeArgs, 3, async (cluster, leader) => {
    const out: ScalingResult['valueSizes'] = [];
    for (const valueBytes of VALUE_SIZES) {
      const value = 'v'.repeat(valueBytes);
      const n = putsFor(valueBytes);
      const load = checked(`${valueBytes}-byte values`, await runClosedLoop(n, CONCURRENCY, (i) => cluster.put(leader, `size${valueBytes}/${i}`, 10_000, value)));
      const mbPerSec = (load.opsPerSec * valueBytes) / 1e6;
      progress(`  ${valueBytes}-byte values: ${load.opsPerSec.toFixed(0)} puts/s (${mbPerSec.toFixed(1)} MB/s of values), p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms`);
      out.push({ valueBytes, load, mbPerSec });
    }
    return out;
  });
  const members: ScalingResult['members'] = [];
  for (const n of MEMBERS) {
    const load = await withCluster(opts.raft, nodeArgs, n, async (cluster, leader) => checked(`${n} members`, await runClosedLoop(10_000, CONCURRENCY, (i) => cluster.put(leader, `m${n}/${i}`))));
    progress(`  ${n} members: ${load.opsPerSec.toFixed(0)} puts/s, p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms`);
    members.push({ members: n, load });
  }
  return { valueSizes, members };
}

export function formatScaling(s: ScalingResult): string[] {
  return [
    `how the cost grows (${CONCURRENCY} in flight; each cluster fresh):`,
    ...s.valueSizes.map((v) => `     ${String(v.valueBytes).padStart(6)}-byte values, 3 members: ${v.load.opsPerSec.toFixed(0).padStart(6)} puts/s, ${v.mbPerSec.toFixed(1).padStart(5)} MB/s, p50 ${v.load.p50Ms.toFixed(2)} ms, p99 ${v.load.p99Ms.toFixed(2)} ms`),
    ...s.members.map((m) => `     100-byte values, ${m.members} members: ${m.load.opsPerSec.toFixed(0).padStart(6)} puts/s, p50 ${m.load.p50Ms.toFixed(2)} ms, p99 ${m.load.p99Ms.toFixed(2)} ms`),
  ];
}
