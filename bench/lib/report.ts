// The table (stdout) and bench/results.json.
import { execFileSync } from 'node:child_process';
import { cpus, hostname, type as osType, release, totalmem } from 'node:os';
import type { AuthCostResult } from './authCost.ts';
import { formatCliStartup } from './cliStartup.ts';
import { type RaftSettings, SERVICE_ENV_KEYS } from './controllerProcess.ts';
import type { InProcessResults } from './inProcessCluster.ts';
import type { NatsResults } from './natsCluster.ts';
import type { PeerResult, PeerResults } from './peers.ts';
import { formatScaling, type ScalingResult } from './scaling.ts';
import { formatStateScaling, type StateScalingResult } from './stateScaling.ts';
import { type LoadResult, median } from './stats.ts';

/** targets from /work/shared/TOOLCHAIN.md (peers measured on this machine) */
export const TARGETS = {
  sequentialP50Ms: 1.1, // below etcd's 1-client p50
  inflight64OpsPerSec: 7500,
  failoverMedianMs: 300,
  peakRssMiB: 60,
  cliStatusMs: 150,
} as const;

export const PEERS = {
  etcd: { version: '3.4', sequentialP50Ms: 1.1, inflight64OpsPerSec: 3700 },
  jetstreamKvR3: { note: 'no fsync per put', sequentialP50Ms: 0.45, inflight64OpsPerSec: '10000-12000' },
} as const;

export interface BenchReport {
  machine: { hostname: string; cpuModel: string; cpus: number; totalMemMiB: number; os: string; kernel: string; loadAverageBefore: number[]; loadAverageAfter: number[] };
  node: string;
  date: string;
  git: { commit: string | null; dirty: boolean | null };
  quick: boolean;
  durationSec: number;
  settings: { raft: Omit<RaftSettings, 'snapshotEvery'> & { snapshotEvery: string }; valueBytes: number; durability: string; client: string; controllerNodeFlags: string };
  targets: typeof TARGETS;
  peers: typeof PEERS;
  nats: NatsResults;
  /** C: 64 in flight with member authentication on and off (bench only), in this run */
  authCost: AuthCostResult;
  inProcess: InProcessResults;
  /** `--peers`: etcd and JetStream KV under the same workload, in this run (null without --peers) */
  peersMeasured: PeerResults | null;
  /** --scaling: how the cost grows */
  scaling: ScalingResult | null;
  /** --state-scaling: RSS by key count, a blank member's catch-up */
  stateScaling: StateScalingResult | null;
  reached: { sequentialP50: boolean; inflight64Throughput: boolean; failoverMedian: boolean; formation: boolean | null; peakRss: boolean; cliStatus: boolean };
}

export function machineInfo(): Omit<BenchReport['machine'], 'loadAverageBefore' | 'loadAverageAfter'> {
  const cpu = cpus();
  return {
    hostname: hostname(),
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cpus: cpu.length,
    totalMemMiB: Math.round(totalmem() / 2 ** 20),
    os: osType(),
    kernel: release(),
  };
}

export function gitInfo(cwd: string): BenchReport['git'] {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().length > 0;
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** A4's rounds by their medians (etcd null: not measured) */
export function formationMedians(nats: NatsResults): { conclave: number; etcd: number | null } {
  const etcd = nats.formationRounds.flatMap((r) => (r.etcdMs === null ? [] : [r.etcdMs]));
  return { conclave: median(nats.formationRounds.map((r) => r.conclaveMs)), etcd: etcd.length === 0 ? null : median(etcd) };
}

export function reached(nats: NatsResults): BenchReport['reached'] {
  return {
    sequentialP50: nats.sequential.p50Ms < TARGETS.sequentialP50Ms,
    inflight64Throughput: nats.inflight64.opsPerSec >= TARGETS.inflight64OpsPerSec,
    failoverMedian: nats.failover.medianRecoveryMs < TARGETS.failoverMedianMs,
    formation: formationMedians(nats).etcd === null ? null : formationMedians(nats).conclave <= (formationMedians(nats).etcd ?? 0),
    peakRss: nats.memory.every((m) => m.peakRssBytes / 2 ** 20 < TARGETS.peakRssMiB),
    cliStatus: nats.cliStartup.status.wallMs <= TARGETS.cliStatusMs,
  };
}

const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');
const int = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '—');
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
}

/** A1's breakdown: the leader's and a follower's stage means (actors/stageTimes.ts), and what lies outside the leader */
function formatWhereTimeGoes(nats: NatsResults): string[] {
  const st = nats.sequentialStages;
  if (st === undefined) return [];
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');
  const perWrite = nats.sequential.elapsedMs / nats.sequential.n;
  const l = st.leader;
  const outside = perWrite - l.propose.meanMs;
  const lone = (w: { meanMs: number; count: number }) => (w.count > 0 ? `${w.count} times, ${f(w.meanMs)} ms each` : 'never');
  return [
    `     where a write's ${f(perWrite)} ms went (means over A1): the leader ${l.name} from the request to its result ${f(l.propose.meanMs)} ms — its persist ${f(l.persist.meanMs)}, append → commit ${f(l.commit.meanMs)} (a follower's persist inside: ${f(st.follower.persist.meanMs)}), apply ${f(l.apply.meanMs)};`,
    `     outside it ${f(outside)} ms (the client, the bus's hops both ways, decoding and authenticating the request); the applied state written alone (not carried by raft's next write): ${lone(l.stateWrite)} on the leader, ${lone(st.follower.stateWrite)} on the follower`,
  ];
}

export function formatTable(r: BenchReport): string {
  const { nats, inProcess: b } = r;
  const ok = r.reached;
  const widths = [34, 6, 7, 7, 7, 6, 31, 4];
  const head = row(['scenario', 'N', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'target (peer on this machine)', 'met'], widths);
  const load = (name: string, l: LoadResult, target: string, met: string) =>
    row([name, String(l.n), int(l.opsPerSec), ms(l.p50Ms), ms(l.p99Ms), String(l.errors), target, met], widths);
  const f = nats.failover;
  const fo = nats.formation;
  const fm = formationMedians(nats);
  const lines = [
    `Conclave bench — ${r.date}, node ${r.node}, ${r.machine.cpuModel} ×${r.machine.cpus}, ${r.machine.os} ${r.machine.kernel}${r.quick ? ' (--quick)' : ''}`,
    `raft: heartbeatMs ${r.settings.raft.heartbeatMs}, electionTimeoutMs ${r.settings.raft.electionTimeoutMs}, snapshotEvery ${r.settings.raft.snapshotEvery}; ${r.settings.durability}; ${r.settings.valueBytes}-byte values; ${r.settings.client}${r.settings.controllerNodeFlags ? `; controllers run with node ${r.settings.controllerNodeFlags}` : ''}`,
    `git ${r.git.commit?.slice(0, 12) ?? '?'}${r.git.dirty ? ' (uncommitted changes)' : ''}; ${nats.natsServer}; took ${r.durationSec.toFixed(0)} s; load average before ${r.machine.loadAverageBefore.join(' ')}, after ${r.machine.loadAverageAfter.join(' ')}`,
    '',
    head,
    '-'.repeat(head.length),
    load('A1 NATS, 1 client, sequential', nats.sequential, `p50 < ${TARGETS.sequentialP50Ms} (etcd 1.1, JS KV 0.45)`, yes(ok.sequentialP50)),
    ...formatWhereTimeGoes(nats),
    load('A2 NATS, 64 in flight', nats.inflight64, `≥ ${TARGETS.inflight64OpsPerSec}/s (etcd 3.7k, JS 10–12k)`, yes(ok.inflight64Throughput)),
    load('A2 NATS, 256 in flight', nats.inflight256, '(reference)', ''),
    row(
      [
        `A3 failover, median of ${f.runs.length}`,
        '',
        '',
        '',
        '',
        '',
        `< ${TARGETS.failoverMedianMs} ms to first put`,
        yes(ok.failoverMedian),
      ],
      widths,
    ),
    `     SIGKILL → first put: median ${int(f.medianRecoveryMs)} ms (runs: ${f.runs.map((x) => int(x.recoveryMs)).join(', ')} ms); failed puts: median ${int(f.medianFailedPuts)} (runs: ${f.runs.map((x) => x.failedPuts).join(', ')}); a put every ${f.intervalMs} ms to the 2 followers, ${f.putTimeoutMs} ms timeout`,
    row(['A4 formation (3 fresh processes)', '', '', '', '', '', '≤ etcd, medians of this run', ok.formation === null ? '—' : yes(ok.formation)], widths),
    `     spawn → first put, median of ${nats.formationRounds.length} rounds: ${int(fm.conclave)} ms (rounds: ${nats.formationRounds.map((x) => int(x.conclaveMs)).join(', ')} ms)`,
    `     etcd: ${'skipped' in nats.etcdFormation ? `not measured (${nats.etcdFormation.skipped})` : `${nats.etcdFormation.version}, 3 fresh members, median ${int(fm.etcd ?? Number.NaN)} ms (rounds: ${nats.formationRounds.map((x) => int(x.etcdMs ?? Number.NaN)).join(', ')} ms)`}`,
    `     the last round: ${int(fo.spawnToFirstPutMs)} ms = start-up until 2 of 3 print "is running" ${int(fo.spawnToQuorumRunningMs)} ms (all 3: ${int(fo.spawnToAllRunningMs)} ms) + election and first commit ${int(fo.quorumRunningToFirstPutMs)} ms; servers start with a service's environment (${SERVICE_ENV_KEYS.join(', ')}), not the shell's`,
    row(['A5 peak RSS per controller (VmHWM)', '', '', '', '', '', `< ${TARGETS.peakRssMiB} MiB each`, yes(ok.peakRss)], widths),
    `     peak ${nats.memory.map((m) => `${m.name} ${mib(m.peakRssBytes)}`).join(', ')} MiB, read after A1+A2 (the controllers serving /metrics); now ${nats.memory.map((m) => `${m.name} ${mib(m.rssBytes)} (anon ${mib(m.rssAnonBytes)}, file ${mib(m.rssFileBytes)})`).join(', ')}; just formed, idle: ${nats.memory.map((m) => mib(m.idleRssBytes)).join(', ')} MiB`,
    row(['A6 CLI start-up (spawn → exit)', '', '', '', '', '', 'status ≤ 150 ms wall', yes(ok.cliStatus)], widths),
    ...formatCliStartup(nats.cliStartup).map((line) => `     ${line}`),
    load('C NATS, 64 in flight, auth on', { ...r.authCost.on.rounds[0]!, n: r.authCost.putsPerRound, opsPerSec: r.authCost.on.opsPerSec, p50Ms: r.authCost.on.p50Ms, p99Ms: r.authCost.on.p99Ms, errors: 0 }, `on/off ≥ 0.90`, yes(r.authCost.throughputRatio >= 0.9)),
    load('C NATS, 64 in flight, auth off', { ...r.authCost.off.rounds[0]!, n: r.authCost.putsPerRound, opsPerSec: r.authCost.off.opsPerSec, p50Ms: r.authCost.off.p50Ms, p99Ms: r.authCost.off.p99Ms, errors: 0 }, '(bench only, unsafe)', ''),
    `     authentication (a MAC per bus message between members, a MAC per request in an operator session, a request carrying the client's puts in flight, up to 16) on / nothing checked off: throughput ${r.authCost.throughputRatio.toFixed(3)}, p50 ${r.authCost.p50Ratio.toFixed(3)}, controllers' CPU per put ${r.authCost.cpuRatio.toFixed(3)} (${int(r.authCost.on.cpuUsPerPut)} against ${int(r.authCost.off.cpuUsPerPut)} µs); peer messages (each authenticated once, checked once) per put ${r.authCost.on.peerMessagesPerPut.toFixed(2)} on, ${r.authCost.off.peerMessagesPerPut.toFixed(2)} off; medians of ${r.authCost.on.rounds.length} alternating rounds (on: ${r.authCost.on.rounds.map((x) => int(x.opsPerSec)).join(', ')}; off: ${r.authCost.off.rounds.map((x) => int(x.opsPerSec)).join(', ')} ops/s); two 3-node clusters, member keys committed${r.authCost.repeatedRounds.length > 0 ? `; ${r.authCost.repeatedRounds.length} round(s) measured again after a failed put (a leader change)` : ''}`,
    load('B1 in-process bus, sequential', b.sequential, '(reference)', ''),
    load('B2 in-process bus, 64 in flight', b.inflight64, '(reference)', ''),
    load('B2 in-process bus, 256 in flight', b.inflight256, '(reference)', ''),
    '',
    ...(r.peersMeasured === null
      ? [
          `peers (TOOLCHAIN.md, this machine, 3 members, 100-byte puts): etcd 3.4 p50 1.1 ms, 3.7k puts/s at 64 in flight; NATS JetStream KV R3 (no fsync per put) p50 0.45 ms, 10–12k puts/s`,
          'measure them in this run with `npm run bench -- --peers`',
        ]
      : formatPeers(nats, r.peersMeasured)),
    ...(r.scaling === null ? [] : ['', ...formatScaling(r.scaling)]),
    ...(r.stateScaling === null ? [] : ['', ...formatStateScaling(r.stateScaling)]),
  ];
  return lines.join('\n');
}

/**
 * The peers measured in this run beside Conclave's A1/A2/A5, with the ratio Conclave/peer. For
 * latency and memory a ratio below 1 is better for Conclave, for throughput above 1.
 */
export function formatPeers(nats: NatsResults, peers: PeerResults): string[] {
  const widths = [26, 12, 12, 8, 12, 8];
  const head = row(['figure (same run)', 'Conclave', 'etcd', 'C/etcd', 'JetStream KV', 'C/JS'], widths);
  const conclavePeakMiB = Math.max(...nats.memory.map((m) => m.peakRssBytes / 2 ** 20));
  const figures: Array<{ name: string; conclave: number; of: (p: Exclude<PeerResult, { skipped: string }>) => number; fmt: (v: number) => string }> = [
    { name: 'A1 1 client, p50 ms', conclave: nats.sequential.p50Ms, of: (p) => p.sequential.p50Ms, fmt: ms },
    { name: 'A1 1 client, p99 ms', conclave: nats.sequential.p99Ms, of: (p) => p.sequential.p99Ms, fmt: ms },
    { name: 'A2 64 in flight, ops/s', conclave: nats.inflight64.opsPerSec, of: (p) => p.inflight64.opsPerSec, fmt: int },
    { name: 'A2 256 in flight, ops/s', conclave: nats.inflight256.opsPerSec, of: (p) => p.inflight256.opsPerSec, fmt: int },
    { name: 'A5 peak RSS, max MiB', conclave: conclavePeakMiB, of: (p) => Math.max(...p.peakRssBytes) / 2 ** 20, fmt: (v) => v.toFixed(1) },
  ];
  const cell = (p: PeerResult, f: (typeof figures)[number]): [string, string] => {
    if ('skipped' in p) return ['—', ''];
    const v = f.of(p);
    return [f.fmt(v), Number.isFinite(v) && v > 0 ? (f.conclave / v).toFixed(2) : '—'];
  };
  const lines = [`peers, measured in this run (3 members on loopback, the same ${nats.sequential.n} / ${nats.inflight64.n} puts of 100 bytes):`, head, '-'.repeat(head.length)];
  for (const f of figures) lines.push(row([f.name, f.fmt(f.conclave), ...cell(peers.etcd, f), ...cell(peers.jetstream, f)], widths));
  for (const [name, p] of [
    ['etcd', peers.etcd],
    ['JetStream KV', peers.jetstream],
  ] as const) {
    lines.push('skipped' in p ? `     ${name}: not measured (${p.skipped})` : `     ${name} ${p.version}: ${p.client}`);
  }
  lines.push('     etcd fsyncs every commit, as Conclave does; JetStream KV R3 does not fsync per put');
  return lines;
}
