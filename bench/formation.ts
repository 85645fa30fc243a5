// `npm run bench:formation [-- --rounds N] [--cli-runs N] [--shell-env]`: only the bench's A4 (formation, beside etcd's) and A6
// (CLI start-up) figures, N rounds each, the same functions as `npm run bench` times them with: a
// fresh seeded 3-member cluster per round. For working on start-up, where a full bench run (≈90 s,
// most of it load) measures much besides. --shell-env: the servers start with this shell's whole
// environment, not a service's (controllerProcess.ts serviceEnv), to see what it costs.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/cleanup.ts';
import { formatCliStartup, measureCliStartup } from './lib/cliStartup.ts';
import { measureEtcdFormation } from './lib/etcdFormation.ts';
import { useShellEnv } from './lib/controllerProcess.ts';
import { measureFormation, NatsCluster } from './lib/natsCluster.ts';
import { progress } from './lib/progress.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'cli-runs': { type: 'string', default: '10' }, 'shell-env': { type: 'boolean', default: false } }, strict: true });
const rounds = Number(values.rounds);
const cliRuns = Number(values['cli-runs']);
if (!Number.isInteger(rounds) || rounds <= 0 || !Number.isInteger(cliRuns) || cliRuns <= 0) {
  process.stderr.write('error: --rounds and --cli-runs must be positive whole numbers\n');
  process.exit(2);
}
if (values['shell-env']) useShellEnv();
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const raft = { heartbeatMs: 20, electionTimeoutMs: 150 }; // the bench's defaults
const rows: Array<{ etcd: number; formation: number; quorumRunning: number; election: number; status: number; help: number; floor: number }> = [];

try {
  for (let round = 1; round <= rounds; round++) {
    progress(`round ${round}/${rounds}; load average ${load()}`);
    const etcd = await measureEtcdFormation();
    if ('skipped' in etcd) throw new Error(etcd.skipped);
    const cluster = await NatsCluster.prepare(raft);
    const formation = await measureFormation(cluster);
    const leader = await cluster.findLeader();
    const cli = measureCliStartup({ natsUrl: cluster.nats.url, prefix: 'bench', node: leader, runs: cliRuns });
    await cluster.killAll();
    await cleanupAll();
    rows.push({
      etcd: etcd.spawnToFirstPutMs,
      formation: formation.spawnToFirstPutMs,
      quorumRunning: formation.spawnToQuorumRunningMs,
      election: formation.quorumRunningToFirstPutMs,
      status: cli.status.wallMs,
      help: cli.help.wallMs,
      floor: cli.floor.wallMs,
    });
    progress(`  etcd ${etcd.spawnToFirstPutMs.toFixed(0)} ms; conclave ${formation.spawnToFirstPutMs.toFixed(0)} ms (2 of 3 running ${formation.spawnToQuorumRunningMs.toFixed(0)} ms + ${formation.quorumRunningToFirstPutMs.toFixed(0)} ms)`);
    for (const line of formatCliStartup(cli)) progress(`  ${line}`);
  }
  const cols = Object.keys(rows[0]!) as Array<keyof (typeof rows)[0]>;
  process.stdout.write(`load average after: ${load()}\n`);
  process.stdout.write(`${['round', ...cols].map((c) => c.padStart(14)).join('')}\n`);
  for (const [i, r] of rows.entries()) process.stdout.write(`${[String(i + 1), ...cols.map((c) => r[c].toFixed(0))].map((c) => c.padStart(14)).join('')}\n`);
  process.stdout.write(`${['median', ...cols.map((c) => median(rows.map((r) => r[c])).toFixed(0))].map((c) => c.padStart(14)).join('')}\n`);
  process.stdout.write('ms; etcd and formation: spawn of 3 fresh members → first put; quorumRunning: → 2 of 3 print "is running"; election: the rest; status/help/floor: CLI wall, spawn → exit (median of each round\'s runs)\n');
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
setTimeout(() => process.exit(), 1000).unref();
