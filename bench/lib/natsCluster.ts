// Scenario A: three `conclave run` processes over a real nats-server on loopback; the bench
// process is the client, sending admin requests over its own NATS connection.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '../../runtime/cli/client.ts';
import { codeOf } from '../../runtime/errors.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import type { AddProgress, AddResult } from '../../runtime/wire/adminProtocol.ts';
import { onCleanup, trackDir } from './cleanup.ts';
import { type CliStartupResult, formatCliStartup, measureCliStartup } from './cliStartup.ts';
import { ControllerProcess, type MemoryFigures, type NodeSpec, type RaftSettings, writeRunConfig } from './controllerProcess.ts';
import { type EtcdFormation, measureEtcdFormation } from './etcdFormation.ts';
import { seedStaticCluster } from '../../test/helpers/staticCluster.ts';
import { type NatsServer, startNatsServer } from './natsServer.ts';
import { progress, sleep, VALUE_100B } from './progress.ts';
import { formatStageMeans, type StageMeans, type StageTotals, scrapeStages, stageMeans } from './stages.ts';
import { freePort } from '../../test/helpers/natsServer.ts';
import { benchOperator } from './operator.ts';
import { type LoadResult, median, runClosedLoop, startOpenLoop } from './stats.ts';

/** the members' names: n1, n2, … */
const namesOf = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i + 1}`);
const PREFIX = 'bench';
const RUNNING = /controller \S+ is running/;

interface NodeStatus {
  role: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
}

export interface FormationResult {
  /** spawn of the 3 processes → first acknowledged put */
  spawnToFirstPutMs: number;
  /** spawn → the 2nd of the 3 printing "is running" (a quorum up: process start-up, store, NATS) */
  spawnToQuorumRunningMs: number;
  /** spawn → the last of the 3 printing "is running" */
  spawnToAllRunningMs: number;
  /** the 2nd "is running" → first acknowledged put (election + first commit) */
  quorumRunningToFirstPutMs: number;
}

export interface FormationRound {
  conclaveMs: number;
  etcdMs: number | null;
}

export interface FailoverRun {
  killed: string;
  newLeader: string | null;
  /** SIGKILL → the first acknowledged put among those sent after the kill */
  recoveryMs: number;
  /** puts that failed (error or timeout) during the run */
  failedPuts: number;
  putsSent: number;
}

export interface FailoverResult {
  runs: FailoverRun[];
  medianRecoveryMs: number;
  medianFailedPuts: number;
  intervalMs: number;
  putTimeoutMs: number;
}

export interface NatsResults {
  natsServer: string;
  formation: FormationResult;
  /** the same figure for three fresh etcd members, measured just before (A4's peer) */
  etcdFormation: EtcdFormation;
  /** every A4 round, the one above last (etcd null: not installed) */
  formationRounds: FormationRound[];
  sequential: LoadResult;
  /** A1: where the time went on the leader and on one follower (the stages' means over A1) */
  sequentialStages: { leader: StageMeans & { name: string }; follower: StageMeans & { name: string } };
  inflight64: LoadResult;
  inflight256: LoadResult;
  failover: FailoverResult;
  memory: Array<{ name: string; peakRssBytes: number; rssBytes: number; rssAnonBytes: number; rssFileBytes: number; idleRssBytes: number; measured: string }>;
  cliStartup: CliStartupResult;
}

export interface NatsBenchOptions {
  raft: RaftSettings;
  seqN: number;
  concN: number;
  failoverRuns: number;
  /** A4 rounds (etcd then Conclave, each on fresh processes); compared by their medians */
  formationRounds: number;
  /** extra node flags for the controller processes (profiling) */
  nodeArgs?: string[];
}

export class NatsCluster {
  readonly procs = new Map<string, ControllerProcess>();
  private constructor(
    readonly nats: NatsServer,
    readonly bus: Bus,
    readonly dir: string,
    readonly specs: Map<string, NodeSpec>,
    private readonly nodeArgs: string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * nats-server up, 3 stores seeded as one static cluster with their member keys committed (as
   * `init` and `cluster add` leave them: peer messages signed and checked), configs written; no
   * controller started. `env`: extra environment for the controller processes.
   */
  static async prepare(raft: RaftSettings, nodeArgs: string[] = [], env: NodeJS.ProcessEnv = {}, opts: { metrics?: boolean; members?: number } = {}): Promise<NatsCluster> {
    const nats = await startNatsServer();
    onCleanup(() => nats.stop());
    progress(`nats-server ${nats.version} on ${nats.url}`);
    const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-'));
    trackDir(dir);
    const specs = new Map<string, NodeSpec>();
    for (const name of namesOf(opts.members ?? 3)) {
      specs.set(name, { name, dataDir: join(dir, name), configPath: join(dir, `${name}.json`), ...(opts.metrics ? { metricsPort: await freePort() } : {}) });
    }
    await seedStaticCluster([...specs.values()], [], { commitKeys: true });
    for (const spec of specs.values()) await writeRunConfig(spec, nats.url, PREFIX, raft);
    const bus = await connectNats({ servers: nats.url, name: 'conclave-bench-client' });
    onCleanup(() => bus.close());
    const cluster = new NatsCluster(nats, bus, dir, specs, nodeArgs, env);
    onCleanup(() => cluster.killAll());
    return cluster;
  }

  get names(): readonly string[] {
    return [...this.specs.keys()];
  }

  /** `nodeArgs`: this process's node flags instead of the cluster's (e.g. --cpu-prof for one member) */
  spawn(name: string, nodeArgs: string[] = this.nodeArgs): ControllerProcess {
    const spec = this.specs.get(name)!;
    const proc = new ControllerProcess(spec, { nodeArgs, env: this.env });
    this.procs.set(name, proc);
    return proc;
  }

  /**
   * A node of no cluster yet: a config and an empty data folder, as an operator prepares a machine
   * before `conclave cluster add`; not started. Add it after formation (measureFormation starts every
   * node it knows).
   */
  async addBlankNode(name: string, raft: RaftSettings): Promise<NodeSpec> {
    if (this.specs.has(name)) throw new Error(`node ${name} already exists in this bench cluster`);
    const spec: NodeSpec = { name, dataDir: join(this.dir, name), configPath: join(this.dir, `${name}.json`) };
    await writeRunConfig(spec, this.nats.url, PREFIX, raft);
    this.specs.set(name, spec);
    return spec;
  }

  /** one `cluster.add` request as the CLI's `cluster add` sends it, signed by the bench's operator: the add's result, or its progress after `progressMs` */
  addMember(via: string, name: string, progressMs: number): Promise<AddResult | AddProgress> {
    return adminRequest(this.bus, PREFIX, via, 'cluster.add', { name, progressMs }, progressMs + 10_000, benchOperator());
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => p.kill()));
  }

  /** `node`'s write-path stage histograms (its /metrics) */
  stages(node: string): Promise<StageTotals> {
    const port = this.specs.get(node)!.metricsPort;
    if (port === undefined) return Promise.reject(new Error(`${node} serves no /metrics: prepare the cluster with { metrics: true }`));
    return scrapeStages(`http://127.0.0.1:${port}/metrics`);
  }

  put(node: string, key: string, timeoutMs = 5000, value: string = VALUE_100B): Promise<unknown> {
    // bench only: controllers that check nothing (authCost.ts's "off" side) get the puts unauthenticated
    const operator = this.env.CONCLAVE_UNSAFE_NO_PEER_AUTH === '1' ? undefined : benchOperator();
    return adminRequest(this.bus, PREFIX, node, 'propose', { command: { op: 'put', key, value } }, timeoutMs, operator);
  }

  status(node: string, timeoutMs = 1000): Promise<NodeStatus> {
    return adminRequest(this.bus, PREFIX, node, 'status', {}, timeoutMs) as Promise<NodeStatus>;
  }

  /** the node that says it leads and that the others agree on */
  async findLeader(among: readonly string[] = this.names, timeoutMs = 10_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (const n of among) {
        try {
          const s = await this.status(n, 500);
          if (s.role === 'leader') return n;
        } catch {
          // not answering (yet)
        }
      }
      if (performance.now() > deadline) throw new Error(`no leader among ${among.join(', ')} after ${timeoutMs} ms\n${this.outputs()}`);
      await sleep(20);
    }
  }

  /** error lines logged by the controllers, to explain a failed scenario */
  errorSummary(): string {
    const lines = [...this.procs.values()].flatMap((p) => p.errorLines());
    return lines.length > 0 ? `controllers logged:\n  ${lines.join('\n  ')}` : 'the controllers logged no error';
  }

  outputs(): string {
    return [...this.procs.values()].map((p) => `--- ${p.name} (pid ${p.pid}, ${p.running ? 'running' : 'exited'}) ---\n${p.output(1500)}`).join('\n');
  }

  assertAllRunning(): void {
    for (const p of this.procs.values()) {
      if (!p.running) throw new Error(`controller ${p.name} exited unexpectedly (code ${p.child.exitCode}, signal ${p.child.signalCode}):\n${p.output()}`);
    }
  }

  memory(): Array<{ name: string; figures: MemoryFigures | null }> {
    return [...this.procs.values()].map((p) => ({ name: p.name, figures: p.memory() }));
  }
}

/** A4: 3 fresh processes of a seeded static cluster → first acknowledged put */
export async function measureFormation(cluster: NatsCluster): Promise<FormationResult> {
  const t0 = performance.now();
  const procs = cluster.names.map((n) => cluster.spawn(n));
  const running = Promise.all(procs.map((p) => p.waitForOutput(RUNNING, 60_000))).then((ts) => ts.sort((a, b) => a - b));
  let firstPut: number | null = null;
  let attempt = 0;
  let lastError = '';
  while (firstPut === null) {
    cluster.assertAllRunning();
    if (performance.now() - t0 > 60_000) throw new Error(`formation: no put acknowledged within 60 s (last error: ${lastError})\n${cluster.outputs()}`);
    const via = cluster.names[attempt++ % cluster.names.length]!;
    try {
      await cluster.put(via, 'formation', 1000);
      firstPut = performance.now();
    } catch (err) {
      lastError = `${codeOf(err) ?? ''} ${(err as Error).message}`;
      await sleep(5);
    }
  }
  const runningAt = await running;
  const quorumAt = runningAt[1]!;
  return {
    spawnToFirstPutMs: firstPut - t0,
    spawnToQuorumRunningMs: quorumAt - t0,
    spawnToAllRunningMs: runningAt[2]! - t0,
    quorumRunningToFirstPutMs: firstPut - quorumAt,
  };
}

export async function measureLoad(cluster: NatsCluster, leader: string, label: string, n: number, concurrency: number): Promise<LoadResult> {
  const result = await runClosedLoop(n, concurrency, (i) => cluster.put(leader, `${label}/${i}`));
  cluster.assertAllRunning();
  // with a stable leader and no fault injected, any failed put is a defect, not a figure
  if (result.errors > 0) throw new Error(`${label}: ${result.errors} of ${n} puts failed (first: ${result.firstError})\n${cluster.errorSummary()}`);
  return result;
}

/** A3: a put every intervalMs to the followers; SIGKILL the leader; restart it and let it catch up */
export async function measureFailover(cluster: NatsCluster, runs: number, intervalMs = 5, putTimeoutMs = 1000): Promise<FailoverResult> {
  const results: FailoverRun[] = [];
  for (let run = 1; run <= runs; run++) {
    const leader = await cluster.findLeader();
    const survivors = cluster.names.filter((n) => n !== leader);
    const loop = startOpenLoop(intervalMs, (i) => cluster.put(survivors[i % survivors.length]!, `failover/${run}/${i}`, putTimeoutMs));
    await sleep(300); // steady state first
    const killAt = performance.now();
    await cluster.procs.get(leader)!.kill();
    const deadline = killAt + 10_000;
    let recoveredAt: number | null = null;
    while (recoveredAt === null && performance.now() < deadline) {
      for (const r of loop.records) if (r.sentAt >= killAt && r.ackAt !== null) recoveredAt = Math.min(recoveredAt ?? Number.POSITIVE_INFINITY, r.ackAt);
      if (recoveredAt === null) await sleep(5);
    }
    await sleep(200); // and a little after
    await loop.stop();
    if (recoveredAt === null) throw new Error(`failover run ${run}: no put acknowledged within 10 s of killing ${leader}\n${cluster.outputs()}`);
    const newLeader = await cluster.findLeader(survivors).catch(() => null);
    const failed = loop.records.filter((r) => r.error !== null).length;
    results.push({ killed: leader, newLeader, recoveryMs: recoveredAt - killAt, failedPuts: failed, putsSent: loop.records.length });
    progress(`  failover ${run}/${runs}: killed ${leader}, ${newLeader ?? '?'} leads; first put ${(recoveredAt - killAt).toFixed(0)} ms after SIGKILL, ${failed} failed puts`);
    // restart the killed node and let it catch up before the next run
    const restarted = cluster.spawn(leader);
    await restarted.waitForOutput(RUNNING, 30_000);
    const target = (await cluster.status(newLeader ?? survivors[0]!)).commitIndex;
    const catchUpDeadline = performance.now() + 30_000;
    for (;;) {
      const s = await cluster.status(leader).catch(() => null);
      if (s && s.appliedIndex >= target) break;
      if (performance.now() > catchUpDeadline) throw new Error(`restarted ${leader} did not catch up to ${target} within 30 s\n${restarted.output()}`);
      await sleep(20);
    }
  }
  return {
    runs: results,
    medianRecoveryMs: median(results.map((r) => r.recoveryMs)),
    medianFailedPuts: median(results.map((r) => r.failedPuts)),
    intervalMs,
    putTimeoutMs,
  };
}

/** A4, one round: 3 fresh etcd members, then 3 fresh controllers of `cluster` (seeded, not started); each spawn → first put */
async function formationRound(cluster: NatsCluster, round: number, rounds: number): Promise<FormationRound & { formation: FormationResult; etcd: EtcdFormation }> {
  progress(`A4 round ${round}/${rounds}: 3 fresh etcd members → first put, then 3 fresh controllers of a seeded static cluster`);
  const etcd = await measureEtcdFormation();
  const formation = await measureFormation(cluster);
  progress(
    `  ${'skipped' in etcd ? `etcd skipped: ${etcd.skipped}` : `etcd ${etcd.version}: ${etcd.spawnToFirstPutMs.toFixed(0)} ms`}; ` +
      `conclave: ${formation.spawnToFirstPutMs.toFixed(0)} ms (2 of 3 running after ${formation.spawnToQuorumRunningMs.toFixed(0)} ms, all 3 after ${formation.spawnToAllRunningMs.toFixed(0)} ms)`,
  );
  return { conclaveMs: formation.spawnToFirstPutMs, etcdMs: 'skipped' in etcd ? null : etcd.spawnToFirstPutMs, formation, etcd };
}

/** fills `partial` as scenarios finish, so a failed run still reports what it measured */
export async function runNatsScenarios(opts: NatsBenchOptions, partial: Partial<NatsResults> = {}): Promise<NatsResults> {
  progress('A: 3 `conclave run` processes over nats-server (loopback)');
  // A4 first, each round on a cluster of its own (etcd's formation varies from 0.25 to 2.5 s between
  // rounds: one round of each says little), started as `conclave run` starts by default (no /metrics)
  const formationRounds: FormationRound[] = [];
  partial.formationRounds = formationRounds;
  for (let round = 1; round <= opts.formationRounds; round++) {
    const fresh = await NatsCluster.prepare(opts.raft, opts.nodeArgs);
    try {
      const { conclaveMs, etcdMs, formation, etcd } = await formationRound(fresh, round, opts.formationRounds);
      formationRounds.push({ conclaveMs, etcdMs });
      partial.etcdFormation = etcd;
      partial.formation = formation;
    } finally {
      await fresh.killAll();
      await fresh.bus.close();
      await fresh.nats.stop();
    }
  }
  // the scenarios after it: a cluster whose controllers serve /metrics, where the bench reads where A1's time went
  const cluster = await NatsCluster.prepare(opts.raft, opts.nodeArgs, {}, { metrics: true });
  try {
    partial.natsServer = cluster.nats.version;
    progress('A: a cluster for the scenarios that follow (its controllers serve /metrics)');
    await measureFormation(cluster);
    const formation = partial.formation!;
    const etcdFormation = partial.etcdFormation!;
    const leader = await cluster.findLeader();
    const idle = new Map(cluster.memory().map(({ name, figures }) => [name, figures?.rss ?? Number.NaN]));
    progress(`  leader ${leader}; RSS when formed ${[...idle].map(([n, b]) => `${n} ${(b / 2 ** 20).toFixed(1)} MiB`).join(', ')}; warming up (500 puts)`);
    await measureLoad(cluster, leader, 'warmup', 500, 16);

    progress(`A1 sequential: ${opts.seqN} puts, 1 in flight, to the leader ${leader}`);
    const follower = cluster.names.find((n) => n !== leader)!;
    const stagesBefore = { leader: await cluster.stages(leader), follower: await cluster.stages(follower) };
    const sequential = await measureLoad(cluster, leader, 'seq', opts.seqN, 1);
    partial.sequential = sequential;
    progress(`  ${fmtLoad(sequential)}`);
    const sequentialStages = {
      leader: { name: leader, ...stageMeans(stagesBefore.leader, await cluster.stages(leader)) },
      follower: { name: follower, ...stageMeans(stagesBefore.follower, await cluster.stages(follower)) },
    };
    partial.sequentialStages = sequentialStages;
    progress(`  where the time went, means per write: leader ${leader}: ${formatStageMeans(sequentialStages.leader)}; follower ${follower}: ${formatStageMeans(sequentialStages.follower)}`);
    progress(`A2 ${opts.concN} puts, 64 in flight`);
    const inflight64 = await measureLoad(cluster, leader, 'c64', opts.concN, 64);
    partial.inflight64 = inflight64;
    progress(`  ${fmtLoad(inflight64)}`);
    progress(`A2 ${opts.concN} puts, 256 in flight`);
    const inflight256 = await measureLoad(cluster, leader, 'c256', opts.concN, 256);
    partial.inflight256 = inflight256;
    progress(`  ${fmtLoad(inflight256)}`);

    // A5 is read now, while every controller has run the whole load (failover restarts some)
    const memory = cluster.memory().map(({ name, figures }) => ({
      name,
      peakRssBytes: figures?.peakRss ?? Number.NaN,
      rssBytes: figures?.rss ?? Number.NaN,
      rssAnonBytes: figures?.rssAnon ?? Number.NaN,
      rssFileBytes: figures?.rssFile ?? Number.NaN,
      idleRssBytes: idle.get(name) ?? Number.NaN,
      measured: 'VmHWM after formation + A1 + A2 (before failover restarts)',
    }));
    partial.memory = memory;
    progress(`A5 peak RSS: ${memory.map((m) => `${m.name} ${(m.peakRssBytes / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);

    progress(`A3 failover: a put every 5 ms, SIGKILL the leader, ${opts.failoverRuns} runs`);
    const failover = await measureFailover(cluster, opts.failoverRuns);
    cluster.assertAllRunning();

    // last: 30 CLI processes in a row would disturb the scenarios above on a small machine
    const asked = await cluster.findLeader();
    progress(`A6 CLI start-up: \`conclave status --node ${asked}\` and \`conclave --help\`, 10 runs each, beside \`node -e 0\``);
    const cliStartup = measureCliStartup({ natsUrl: cluster.nats.url, prefix: PREFIX, node: asked });
    partial.cliStartup = cliStartup;
    for (const line of formatCliStartup(cliStartup)) progress(`  ${line}`);
    return { natsServer: cluster.nats.version, formation, etcdFormation, formationRounds, sequential, sequentialStages, inflight64, inflight256, failover, memory, cliStartup };
  } finally {
    await cluster.killAll();
  }
}

export function fmtLoad(r: LoadResult): string {
  return `${r.opsPerSec.toFixed(0)} ops/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${r.errors > 0 ? `, ${r.errors} errors (${r.firstError})` : ''}`;
}
