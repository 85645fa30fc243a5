// `npm run bench [-- --quick]`: Conclave's latency, throughput, failover, formation, memory and the
// cost of member authentication (C) on this machine, against the peers in TOOLCHAIN.md. Prints a
// table on stdout, progress on stderr, writes bench/results.json. Exits non-zero with an `error:`
// line when a scenario cannot run (a failed put under a stable leader counts as a failure); what was
// measured until then is still written to results.json.
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/cleanup.ts';
import { progress } from './lib/progress.ts';
import { positiveInt, type StateScalingOptions, stateScalingOptions } from './lib/stateScalingArgs.ts';

const USAGE = `usage: npm run bench -- [--quick] [--peers] [--heartbeat-ms N] [--election-timeout-ms N] [--snapshot-every N] [--failover-runs N] [--formation-rounds N] [--scaling] [--state-scaling] [--keys LIST] [--catchup-mb N] [--catchup-value-bytes N] [--catchup-cpu-prof] [--out FILE]
  --quick                 ~30 s version (fewer operations, 3 failover runs)
  --peers                 also run A1, A2 and A5's workload against a 3-member etcd and a 3-server
                          NATS JetStream KV (3 replicas) in this run, and print Conclave/peer ratios
  --heartbeat-ms N        raft heartbeat (default 20)
  --election-timeout-ms N raft election timeout (default 150; the core randomizes it in [T, 2T))
  --snapshot-every N      raft snapshotEvery (default: the controller's default)
  --failover-runs N       SIGKILL-the-leader repetitions (default 5, quick 3)
  --formation-rounds N    A4 rounds, etcd's and Conclave's, compared by their medians (default 5, quick 3)
  --scaling               also how the cost grows: 64 in flight with values of 100 B to 100 KB, and on 3, 5
                          and 7 members (≈1 minute more)
  --state-scaling         also how the cost grows with the state: RSS per member holding 10k, 100k and 1M
                          keys of 100 B, and the catch-up of a blank 4th member receiving a 500 MB state
                          (several minutes more; \`node --import tsx bench/scaling.ts\` runs it alone)
  --keys LIST             --state-scaling's key counts, comma-separated (default 10000,100000,1000000)
  --catchup-mb N          --state-scaling's catch-up state in MB of values (default 500)
  --catchup-value-bytes N the catch-up state's value size (default 10000)
  --catchup-cpu-prof      CPU-profile the catching-up member (node --cpu-prof) and print where its time went
  --auth-rounds N         C: alternating rounds of 64-in-flight puts with member authentication on
                          and off (default 8, quick 6; each round --quick 4000 puts, else 10000)
  --out FILE              where to write the results (default bench/results.json)
  --node-flags FLAGS      node flags for the controller processes, e.g. "--max-semi-space-size=4"`;


function parse() {
  return parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      peers: { type: 'boolean', default: false },
      scaling: { type: 'boolean', default: false },
      'state-scaling': { type: 'boolean', default: false },
      keys: { type: 'string' },
      'catchup-mb': { type: 'string' },
      'catchup-value-bytes': { type: 'string' },
      'catchup-cpu-prof': { type: 'boolean', default: false },
      'heartbeat-ms': { type: 'string' },
      'election-timeout-ms': { type: 'string' },
      'snapshot-every': { type: 'string' },
      'failover-runs': { type: 'string' },
      'formation-rounds': { type: 'string' },
      'auth-rounds': { type: 'string' },
      out: { type: 'string' },
      'node-flags': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
}

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  let raft: { heartbeatMs: number; electionTimeoutMs: number; snapshotEvery?: number };
  let failoverRuns: number;
  let formationRounds: number;
  let authRounds: number;
  let stateScaling: StateScalingOptions;
  try {
    args = parse();
    raft = {
      heartbeatMs: positiveInt('heartbeat-ms', args.values['heartbeat-ms']) ?? 20,
      electionTimeoutMs: positiveInt('election-timeout-ms', args.values['election-timeout-ms']) ?? 150,
    };
    const snapshotEvery = positiveInt('snapshot-every', args.values['snapshot-every']);
    if (snapshotEvery !== undefined) raft.snapshotEvery = snapshotEvery;
    failoverRuns = positiveInt('failover-runs', args.values['failover-runs']) ?? (args.values.quick ? 3 : 5);
    formationRounds = positiveInt('formation-rounds', args.values['formation-rounds']) ?? (args.values.quick ? 3 : 5);
    authRounds = positiveInt('auth-rounds', args.values['auth-rounds']) ?? (args.values.quick ? 6 : 8);
    stateScaling = stateScalingOptions(args.values);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = args.values.quick === true;
  const sizes = { seqN: quick ? 500 : 2000, concN: quick ? 2000 : 10_000, failoverRuns, formationRounds };
  const out = args.values.out ?? fileURLToPath(new URL('./results.json', import.meta.url));
  const started = performance.now();
  const loadBefore = load();
  const partial: { nats: Record<string, unknown>; authCost?: unknown; inProcess: Record<string, unknown>; peersMeasured: Record<string, unknown> } = { nats: {}, inProcess: {}, peersMeasured: {} };
  try {
    // loaded here, so that a runtime that does not load yet ends in one clear `error:` line
    const { runNatsScenarios } = await import('./lib/natsCluster.ts');
    const { runInProcessScenarios } = await import('./lib/inProcessCluster.ts');
    const { formatTable, gitInfo, machineInfo, PEERS, reached, TARGETS } = await import('./lib/report.ts');
    const { ROOT } = await import('./lib/controllerProcess.ts');
    const { runPeerScenarios } = await import('./lib/peers.ts');
    const { measureAuthCost } = await import('./lib/authCost.ts');
    const { measureScaling } = await import('./lib/scaling.ts');
    const { measureStateScaling } = await import('./lib/stateScaling.ts');

    progress(`raft heartbeatMs ${raft.heartbeatMs}, electionTimeoutMs ${raft.electionTimeoutMs}, snapshotEvery ${raft.snapshotEvery ?? 'default'}; ${quick ? 'quick' : 'full'} run; load average ${loadBefore.join(' ')}`);
    if ((loadBefore[0] ?? 0) > 1.5) progress('warning: this machine is busy (1-min load average > 1.5): figures will be noisy');
    const nodeArgs = (args.values['node-flags'] ?? '').split(/\s+/).filter((f) => f.length > 0);
    if (nodeArgs.length > 0) progress(`controllers run with node ${nodeArgs.join(' ')}`);
    const nats = await runNatsScenarios({ raft, ...sizes, nodeArgs }, partial.nats);
    const authCost = await measureAuthCost({ raft, putsPerRound: quick ? 4000 : 10_000, rounds: authRounds, nodeArgs });
    partial.authCost = authCost;
    const inProcess = await runInProcessScenarios({ raft, seqN: sizes.seqN, concN: sizes.concN }, partial.inProcess);
    const peersMeasured = args.values.peers ? await runPeerScenarios({ seqN: sizes.seqN, concN: sizes.concN }, partial.peersMeasured) : null;
    const scaling = args.values.scaling ? await measureScaling({ raft, nodeArgs }) : null;
    const stateScalingResult = args.values['state-scaling'] ? await measureStateScaling({ raft, nodeArgs, ...stateScaling }) : null;
    const report = {
      machine: { ...machineInfo(), loadAverageBefore: loadBefore, loadAverageAfter: load() },
      node: process.version,
      date: new Date().toISOString(),
      git: gitInfo(ROOT),
      quick,
      durationSec: (performance.now() - started) / 1000,
      settings: {
        raft: { ...raft, snapshotEvery: raft.snapshotEvery === undefined ? 'default (10000)' : String(raft.snapshotEvery) },
        valueBytes: 100,
        durability: 'LMDB fdatasync on every commit (overlappingSync off)',
        client: 'one client process (the bench), admin requests to the leader',
        controllerNodeFlags: args.values['node-flags'] ?? '',
      },
      targets: TARGETS,
      peers: PEERS,
      nats,
      authCost,
      inProcess,
      peersMeasured,
      scaling,
      stateScaling: stateScalingResult,
      reached: reached(nats),
    };
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${formatTable(report)}\n`);
    progress(`wrote ${out}`);
    return 0;
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    const [first, ...rest] = message.split('\n');
    try {
      writeFileSync(
        out,
        `${JSON.stringify({ failed: message, date: new Date().toISOString(), node: process.version, quick, raft, loadAverageBefore: loadBefore, loadAverageAfter: load(), partial }, null, 2)}\n`,
      );
      progress(`wrote the partial results to ${out}`);
    } catch {
      // the error line below matters more
    }
    if (rest.length > 0) process.stderr.write(`${rest.join('\n')}\n`);
    if (process.env.BENCH_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.stderr.write(`error: bench failed: ${first}\n`);
    return 1;
  } finally {
    await cleanupAll();
  }
}

process.exitCode = await main();
// lingering handles (a NATS reconnect timer, an in-process controller that did not stop) must not keep us alive
setTimeout(() => process.exit(), 1000).unref();
