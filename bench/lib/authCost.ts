// C: what authentication costs on the hot path (issue 11). Two copies of scenario A's cluster
// (3 `conclave run` processes over their own nats-server on loopback, member keys committed), up at
// the same time: one as shipped — every peer bus message (a raft batch, not an entry) authenticated
// between members, and every put from the bench's operator key in an operator session (one signed
// request per node opens it, then a MAC per request, which carries up to 16 of the puts in flight:
// runtime/wire/operatorSession.ts, runtime/adminClient.ts) — and one with
// CONCLAVE_UNSAFE_NO_PEER_AUTH=1 in its controllers' environment (runtime/wire/peerSignature.ts:
// bench only, nothing signed or checked, members' messages nor operators' requests) and its puts
// sent unauthenticated. The same 64-in-flight load goes to each leader in alternating rounds
// (on/off, then off/on, …), so that a drift of the machine's speed during the run falls on both
// sides alike; the figures are the medians of the rounds. Beside wall-clock throughput, the CPU time
// the three controllers spent per put (/proc utime + stime): on a machine busy with other work the
// throughput moves with the load, the CPU per put much less; and the peer bus messages per put
// (counted by a subscription of the bench's own on the peer subjects): each is authenticated once
// and checked once when authentication is on.

import { readFileSync } from 'node:fs';
import type { RaftSettings } from './controllerProcess.ts';
import { fmtLoad, measureFormation, NatsCluster } from './natsCluster.ts';
import { progress } from './progress.ts';
import { type LoadResult, median, runClosedLoop } from './stats.ts';

export const UNSAFE_ENV = { CONCLAVE_UNSAFE_NO_PEER_AUTH: '1' } as const;
const PREFIX = 'bench';
/** what a controller with the switch set logs at start, once for its members' messages and once for operators' requests */
const OFF_LINES = [/member authentication is off/, /operator authentication is off/];

export interface AuthSide {
  /** median over the rounds */
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the 3 controllers (user + system) per put, microseconds, median over the rounds */
  cpuUsPerPut: number;
  /** peer bus messages (raft batches, pings) published per put, median over the rounds */
  peerMessagesPerPut: number;
  rounds: Array<LoadResult & { cpuUsPerPut: number; peerMessagesPerPut: number }>;
}

export interface AuthCostResult {
  concurrency: number;
  putsPerRound: number;
  /** authentication on: as shipped (member authentication, puts in an operator session) */
  on: AuthSide;
  /** authentication off: CONCLAVE_UNSAFE_NO_PEER_AUTH=1 (bench only), puts unauthenticated */
  off: AuthSide;
  /** on.opsPerSec / off.opsPerSec (1 = free; the acceptance is ≥ 0.90) */
  throughputRatio: number;
  /** on.p50Ms / off.p50Ms */
  p50Ratio: number;
  /** on.cpuUsPerPut / off.cpuUsPerPut */
  cpuRatio: number;
  /** rounds measured again because a put failed in them (a leader change: on a loaded machine an election can happen mid-round) */
  repeatedRounds: Array<{ side: 'on' | 'off'; round: number; errors: number; firstError: string | null }>;
}

/** a round, measured again (after finding the leader) while a put fails in it, at most 3 times */
async function round(cluster: NatsCluster, leaders: Map<NatsCluster, string>, label: 'on' | 'off', n: number, concurrency: number, repeated: AuthCostResult['repeatedRounds'], index: number): Promise<AuthSide['rounds'][number]> {
  for (let attempt = 1; ; attempt++) {
    let peerMessages = 0;
    const counter = cluster.bus.subscribe(`${PREFIX}.node.*.peer`, () => {
      peerMessages++;
    });
    await cluster.bus.flush();
    const cpuBefore = cpuUs(cluster);
    const load = await runClosedLoop(n, concurrency, (i) => cluster.put(leaders.get(cluster)!, `auth-${label}/${index}/${attempt}/${i}`));
    const cpuAfter = cpuUs(cluster);
    counter.unsubscribe();
    cluster.assertAllRunning();
    if (load.errors === 0) return { ...load, cpuUsPerPut: (cpuAfter - cpuBefore) / n, peerMessagesPerPut: peerMessages / n };
    repeated.push({ side: label, round: index, errors: load.errors, firstError: load.firstError });
    progress(`  round ${index}, authentication ${label}: ${load.errors} of ${n} puts failed (${load.firstError}); measuring it again`);
    if (attempt >= 3) throw new Error(`auth-${label}/${index}: puts failed in 3 attempts (last: ${load.errors}, first error: ${load.firstError})\n${cluster.errorSummary()}`);
    leaders.set(cluster, await cluster.findLeader());
  }
}

function side(rounds: AuthSide['rounds']): AuthSide {
  return {
    opsPerSec: median(rounds.map((r) => r.opsPerSec)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    cpuUsPerPut: median(rounds.map((r) => r.cpuUsPerPut)),
    peerMessagesPerPut: median(rounds.map((r) => r.peerMessagesPerPut)),
    rounds,
  };
}

/** clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ: 100 on Linux) */
const TICK_US = 1e6 / 100;

/** user + system CPU time of the cluster's controllers so far, microseconds */
function cpuUs(cluster: NatsCluster): number {
  let ticks = 0;
  for (const p of cluster.procs.values()) {
    // a controller that died mid-round is the finding, not a missing file: say which and what it printed last
    if (!p.running) throw new Error(`${p.name} (pid ${p.pid}) exited during the authentication-cost rounds (code ${p.child.exitCode}, signal ${p.child.signalCode}):\n${p.output()}`);
    // the fields after the command name (in parentheses, which may hold spaces): utime is the 12th, stime the 13th
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_US;
}

export async function measureAuthCost(opts: { raft: RaftSettings; putsPerRound: number; rounds: number; nodeArgs?: string[] }): Promise<AuthCostResult> {
  const concurrency = 64;
  progress(`C authentication cost: two 3-node clusters (member keys committed), authentication on and off (CONCLAVE_UNSAFE_NO_PEER_AUTH=1, bench only); ${opts.rounds} alternating rounds of ${opts.putsPerRound} puts, ${concurrency} in flight`);
  const on = await NatsCluster.prepare(opts.raft, opts.nodeArgs);
  const off = await NatsCluster.prepare(opts.raft, opts.nodeArgs, UNSAFE_ENV);
  try {
    const leaders = new Map<NatsCluster, string>();
    for (const [label, cluster] of [
      ['on', on],
      ['off', off],
    ] as const) {
      await measureFormation(cluster);
      // the switch is what we think it is: the unsafe side says so at start, the other does not
      for (const line of OFF_LINES) {
        const said = [...cluster.procs.values()].filter((p) => line.test(p.output(64 * 1024))).length;
        if (said !== (label === 'off' ? cluster.procs.size : 0)) throw new Error(`authentication ${label}: ${said} of ${cluster.procs.size} controllers logged ${line.source}`);
      }
      const leader = await cluster.findLeader();
      leaders.set(cluster, leader);
      await runClosedLoop(500, 16, (i) => cluster.put(leader, `auth-${label}-warmup/${i}`));
    }
    const rounds = { on: [] as AuthSide['rounds'], off: [] as AuthSide['rounds'] };
    const repeatedRounds: AuthCostResult['repeatedRounds'] = [];
    for (let index = 1; index <= opts.rounds; index++) {
      const order = index % 2 === 1 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const label of order) {
        const cluster = label === 'on' ? on : off;
        const r = await round(cluster, leaders, label, opts.putsPerRound, concurrency, repeatedRounds, index);
        rounds[label].push(r);
        progress(`  round ${index}/${opts.rounds}, authentication ${label.padEnd(3)}: ${fmtLoad(r)}, controllers' CPU ${r.cpuUsPerPut.toFixed(0)} µs per put, ${r.peerMessagesPerPut.toFixed(2)} peer messages per put`);
      }
    }
    const result = { on: side(rounds.on), off: side(rounds.off) };
    const throughputRatio = result.on.opsPerSec / result.off.opsPerSec;
    const p50Ratio = result.on.p50Ms / result.off.p50Ms;
    const cpuRatio = result.on.cpuUsPerPut / result.off.cpuUsPerPut;
    progress(
      `  median: on ${result.on.opsPerSec.toFixed(0)} ops/s p50 ${result.on.p50Ms.toFixed(2)} ms ${result.on.cpuUsPerPut.toFixed(0)} µs CPU/put; off ${result.off.opsPerSec.toFixed(0)} ops/s p50 ${result.off.p50Ms.toFixed(2)} ms ${result.off.cpuUsPerPut.toFixed(0)} µs CPU/put; on/off throughput ${throughputRatio.toFixed(3)}, CPU ${cpuRatio.toFixed(3)}`,
    );
    return { concurrency, putsPerRound: opts.putsPerRound, ...result, throughputRatio, p50Ratio, cpuRatio, repeatedRounds };
  } finally {
    await Promise.all([on.killAll(), off.killAll()]);
  }
}
