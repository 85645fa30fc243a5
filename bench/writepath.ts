// `node --import tsx bench/writepath.ts [--n N] [--rounds R] [--heartbeat-ms N] [--election-timeout-ms N]`:
// where a sequential writer's time and the machine's CPU go, for comparing two builds of the write
// path one after the other (run it in each checkout, alternating: on a shared machine only figures
// taken close together compare). Three `conclave run` processes of this checkout's build over a real
// nats-server, as A1 runs them; prints the CPU each process (the controllers, nats-server, this
// client) spends per second when idle and per put over R rounds of N sequential puts, with the
// leader's and a follower's stage means (conclave_stage_seconds), then 10,000 puts with 64 in flight.
// CPU is user + system time from /proc, so it counts the kernel's work for the sockets and the disk.
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/cleanup.ts';
import { fmtLoad, measureFormation, measureLoad, NatsCluster } from './lib/natsCluster.ts';
import { progress } from './lib/progress.ts';
import { formatStageMeans, stageMeans } from './lib/stages.ts';
import { positiveInt } from './lib/stateScalingArgs.ts';

/** user + system CPU of a process so far, ms (USER_HZ 100) */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function natsServerPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'nats-server') pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { n: { type: 'string' }, rounds: { type: 'string' }, 'heartbeat-ms': { type: 'string' }, 'election-timeout-ms': { type: 'string' } },
    strict: true,
  });
  const n = positiveInt('n', values.n) ?? 2000;
  const rounds = positiveInt('rounds', values.rounds) ?? 2;
  const raft = { heartbeatMs: positiveInt('heartbeat-ms', values['heartbeat-ms']) ?? 20, electionTimeoutMs: positiveInt('election-timeout-ms', values['election-timeout-ms']) ?? 150 };
  const cluster = await NatsCluster.prepare(raft, [], {}, { metrics: true });
  await measureFormation(cluster);
  const leader = await cluster.findLeader();
  const follower = cluster.names.find((name) => name !== leader)!;
  await measureLoad(cluster, leader, 'warmup', 500, 16);
  const procs: Array<[string, number]> = [
    ...[...cluster.procs.values()].map((p): [string, number] => [p.name === leader ? `${p.name} (leader)` : p.name, p.pid!]),
    ...natsServerPids().map((pid): [string, number] => ['nats-server', pid]),
    ['client', process.pid],
  ];
  const cpu = () => procs.map(([, pid]) => cpuMs(pid));
  const per = (before: number[], after: number[], unit: number, digits: number) => procs.map(([name], i) => `${name} ${((after[i]! - before[i]!) / unit).toFixed(digits)}`).join(', ');
  progress(`leader ${leader}; idle for 4 s`);
  const idle0 = cpu();
  await new Promise((resolve) => setTimeout(resolve, 4000));
  process.stdout.write(`idle, CPU ms per s: ${per(idle0, cpu(), 4, 0)}\n`);
  for (let round = 1; round <= rounds; round++) {
    const stages0 = { leader: await cluster.stages(leader), follower: await cluster.stages(follower) };
    const cpu0 = cpu();
    const seq = await measureLoad(cluster, leader, `seq${round}`, n, 1);
    const cpu1 = cpu();
    process.stdout.write(`round ${round}: ${n} sequential puts: ${fmtLoad(seq)}\n`);
    process.stdout.write(`  CPU µs per put: ${per(cpu0, cpu1, n / 1000, 0)}\n`);
    process.stdout.write(`  leader ${leader}: ${formatStageMeans(stageMeans(stages0.leader, await cluster.stages(leader)))}\n`);
    process.stdout.write(`  follower ${follower}: ${formatStageMeans(stageMeans(stages0.follower, await cluster.stages(follower)))}\n`);
  }
  const cpu0 = cpu();
  const c64 = await measureLoad(cluster, leader, 'c64', 10_000, 64);
  process.stdout.write(`10000 puts, 64 in flight: ${fmtLoad(c64)}\n  CPU µs per put: ${per(cpu0, cpu(), 10, 0)}\n`);
  return 0;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  })
  .then(async (code) => {
    await cleanupAll();
    process.exit(code);
  });
