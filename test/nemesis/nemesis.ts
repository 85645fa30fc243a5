// The torture suite: three nats-servers clustered by routes, controllers (`conclave run`
// processes) spread over them, clients recording every operation, and faults on a seeded schedule.
// Afterwards: the history must be linearizable, at most one leader per term, one cluster id among
// the members, and every member must converge to the same state. Availability per fault is measured.
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdminOp, AdminReply, AdminRequest } from '../../runtime/wire/adminProtocol.ts';
import { adminRequest } from '../../runtime/cli/client.ts';
import { openEnv } from '../../runtime/store/lmdbEnv.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { baseEnv, CliProcess, ROOT, waitUntil } from '../helpers/cli.ts';
import { testOperator } from '../helpers/testOperator.ts';
import { checkHistory, type CheckResult } from '../linearizability/checker.ts';
import { parseConclave } from '../linearizability/formats.ts';
import { renderHtml, renderText } from '../linearizability/render.ts';
import { clientOperations, crashIncident, type FaultStart, type Incident, renderIncidents, renderIncidentsHtml, sightingIncident } from '../linearizability/window.ts';
import type { PlantedBug } from '../../actors/plantedBugs.ts';
import { Prng } from '../sim/prng.ts';
import { checkOneLeaderPerTerm, lastErrorLine } from './controllerLogs.ts';
import { type NatsCluster, startNatsCluster } from './natsCluster.ts';
import { type HistoryEvent, startWorkload, type Workload } from './workload.ts';

export const FAULT_KINDS = ['kill-leader', 'kill-follower', 'kill-all', 'pause-leader', 'pause-leader-brief', 'nats-server-loss', 'nats-cluster-restart', 'transfer-leadership', 'add-remove-member', 'lagging-follower', 'disk-full-follower'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface NemesisOptions {
  seed: number;
  /** how long faults keep coming (each fault kind at least once, in a seeded order) */
  durationMs: number;
  controllers?: number;
  faults?: readonly FaultKind[];
  /** how long the members are given to converge after the faults (default 60 s) */
  convergeTimeoutMs?: number;
  /** a planted bug (actors/plantedBugs.ts) switched on in every controller: the run must then fail */
  bug?: PlantedBug;
  /** progress lines */
  progress?: (line: string) => void;
}

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  at: number;
  healedAt: number;
  /** fault → the first acknowledgement of a write sent after the fault began (ms); null if none before the next fault */
  firstWriteMs: number | null;
  /** longest time without an acknowledged write between this fault and the next one (ms) */
  longestGapMs: number;
}

export interface NemesisReport {
  seed: number;
  ok: boolean;
  problems: string[];
  operations: number;
  acknowledgedWrites: number;
  check: CheckResult;
  faults: FaultRecord[];
  artifacts: string | null;
  /** the checker's text rendering: the offending operations when the history is not linearizable */
  rendering: string;
  /** the problems that happened at a time (a controller that died, two leaders in a term), each with its window of client operations */
  incidents: Incident[];
  /** the client operations around each incident, as printed (failed ones counted, the rest up to 20 per incident), then the acknowledged writes lost, if any; empty when neither; all of it in the artifacts' incidents.txt */
  incidentsText: string;
}

/** disk-full-follower: the quota is the follower's data file plus this */
const DISK_FULL_MARGIN = 2 * 1024 * 1024;

interface Controller {
  name: string;
  server: number;
  proc: CliProcess | null;
  /** output of every incarnation, for the leader-per-term check and the artifacts */
  log: string;
  paused: boolean;
  /** store.maxBytes of its next start (disk-full-follower); none when absent */
  maxBytes?: number;
  /** set while it runs with a quota: its exit on a full store is expected, not a crash */
  fullExit?: { expected: boolean; seen: boolean };
}

const PREFIX = 'nemesis';
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 500, snapshotEvery: 500 };

export async function runNemesis(opts: NemesisOptions): Promise<NemesisReport> {
  const say = opts.progress ?? (() => {});
  const random = new Prng(opts.seed);
  const nats = await startNatsCluster(3);
  const dir = await mkdtemp(join(tmpdir(), 'conclave-nemesis-'));
  // a planted bug is read by each controller from its environment, and only with NODE_ENV=test
  const env = baseEnv({ CONCLAVE_PREFIX: PREFIX, CONCLAVE_LOG_LEVEL: 'info', NODE_ENV: opts.bug ? 'test' : process.env.NODE_ENV, CONCLAVE_TEST_PLANTED_BUG: opts.bug });
  const controllers: Controller[] = Array.from({ length: opts.controllers ?? 3 }, (_, i) => ({ name: `n${i + 1}`, server: i % 3, proc: null, log: '', paused: false }));
  let bus: Bus | null = null;
  const problems: string[] = [];
  const faults: FaultRecord[] = [];
  // each fault as it begins (a controller may die before the fault is over)
  const begun: FaultStart[] = [];
  const incidents: Incident[] = [];
  let events: HistoryEvent[] = [];
  let acknowledged: Array<{ invoked: number; acked: number }> = [];
  let check: CheckResult | null = null;
  let workload: Workload | null = null;
  try {
    bus = await connectNats({ servers: nats.urls, name: 'nemesis-clients' });
    const admin = <O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs = 3000) => adminRequest(bus!, PREFIX, node, type, body, timeoutMs, testOperator().signer);
    // a controller that exits by itself (a crash, e.g. a failed invariant) is a finding, not noise
    let crashed = 0;
    const onCrash = (c: Controller, how: string) => {
      crashed++;
      const problem = `${c.name} exited by itself (${how}): ${lastErrorLine(c.log)}`;
      problems.push(problem);
      incidents.push(crashIncident(problem, performance.now(), begun));
    };
    const start = (c: Controller) => startController(c, dir, nats, env, onCrash);

    say(`seed ${opts.seed}${opts.bug ? `, planted bug ${opts.bug}` : ''}: nats cluster ${nats.urls.join(' ')}; starting ${controllers.length} controllers`);
    await Promise.all(controllers.map(start));
    await admin(controllers[0]!.name, 'init', {}, 30_000);
    for (const c of controllers.slice(1)) await admin(controllers[0]!.name, 'cluster.add', { name: c.name, timeoutMs: 30_000 }, 31_000);
    say('cluster formed; clients start');

    workload = startWorkload({ bus, prefix: PREFIX, targets: () => controllers.filter((c) => c.proc !== null).map((c) => c.name), clients: 6, keys: 4, random: new Prng(opts.seed ^ 0x5eed), opTimeoutMs: 2000 });
    const findLeader = async (): Promise<Controller | null> => {
      for (const c of controllers) {
        if (c.proc === null || c.paused) continue;
        try {
          const s = (await admin(c.name, 'status', {}, 1000)) as { role: string };
          if (s.role === 'leader') return c;
        } catch {
          // not answering is an answer here: try the next one
        }
      }
      return null;
    };
    const waitLeader = async (): Promise<Controller> => {
      let leader: Controller | null = null;
      await waitUntil(
        async () => {
          if (crashed * 2 > controllers.filter((c) => c.proc !== null || c.paused).length + crashed) throw new Error('most controllers exited by themselves: no leader can be elected');
          leader = await findLeader();
          return leader !== null;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'a leader' },
      );
      return leader!;
    };

    const kinds = opts.faults ?? FAULT_KINDS;
    const order = shuffled([...kinds], random);
    const started = performance.now();
    let i = 0;
    while (i < order.length || performance.now() - started < opts.durationMs) {
      if (crashed > 0) break; // the run has failed: go to the checks with what is left
      const kind = i < order.length ? order[i]! : kinds[random.int(kinds.length)]!;
      i++;
      await sleep(random.between(500, 1500));
      const leader = await waitLeader();
      const followers = controllers.filter((c) => c !== leader && c.proc !== null);
      const follower = followers[random.int(followers.length)] ?? leader;
      const hold = random.between(1500, 3000);
      const at = performance.now();
      const fault: FaultStart = { kind, target: leader.name, at };
      begun.push(fault);
      switch (kind) {
        case 'kill-leader':
        case 'kill-follower':
        case 'lagging-follower': {
          const victim = kind === 'kill-leader' ? leader : follower;
          fault.target = victim.name;
          await victim.proc!.kill('SIGKILL');
          victim.proc = null;
          // a lagging follower misses enough writes to be sent a snapshot
          await sleep(kind === 'lagging-follower' ? hold * 2 : hold);
          await start(victim);
          break;
        }
        case 'kill-all': {
          // every controller at once, as a power loss: only what each wrote durably survives
          fault.target = 'every controller';
          const all = controllers.filter((c) => c.proc !== null);
          await Promise.all(all.map((c) => c.proc!.kill('SIGKILL')));
          for (const c of all) c.proc = null;
          await sleep(Math.min(hold, 1000));
          await Promise.all(all.map(start));
          break;
        }
        case 'pause-leader':
        case 'pause-leader-brief':
          leader.proc!.child.kill('SIGSTOP');
          leader.paused = true;
          // brief: back while the others may still be electing, so its queued messages meet candidates
          await sleep(kind === 'pause-leader-brief' ? random.between(RAFT.electionTimeoutMs, 2 * RAFT.electionTimeoutMs) : hold);
          leader.proc!.child.kill('SIGCONT');
          leader.paused = false;
          break;
        case 'nats-server-loss': {
          const server = nats.nodes[leader.server]!;
          fault.target = `${server.name} (${leader.name}'s server)`;
          await server.stop();
          await sleep(hold);
          await server.start();
          await nats.waitRouted();
          break;
        }
        case 'nats-cluster-restart':
          fault.target = 'all nats-servers';
          await nats.stopAll();
          await sleep(Math.min(hold, 1000));
          await Promise.all(nats.nodes.map((n) => n.start()));
          await nats.waitRouted();
          break;
        case 'transfer-leadership':
          await admin(leader.name, 'cluster.transfer', { timeoutMs: 5000 }, 6000).catch((err: unknown) => say(`transfer refused: ${(err as Error).message}`));
          break;
        case 'disk-full-follower': {
          // restarted with a quota just above what its store holds; large writes through the leader
          // fill it: it must refuse, halt and exit (FULL, exit 1) — never wedge nor acknowledge — while
          // the other two keep committing; restarted without the quota it catches up
          const victim = follower;
          fault.target = victim.name;
          await victim.proc!.kill('SIGKILL');
          victim.proc = null;
          // LMDB reuses the pages a compaction freed: a data file grown by earlier fills has room
          // inside it that no quota on its size would reach, so the store is compacted first
          victim.maxBytes = (await compactStore(join(dir, victim.name))) + DISK_FULL_MARGIN;
          victim.fullExit = { expected: true, seen: false };
          await start(victim);
          victim.maxBytes = undefined;
          const value = 'f'.repeat(96 * 1024);
          for (let n = 0; n < 400 && !victim.fullExit.seen && crashed === 0; n++) {
            const via = (await findLeader()) ?? leader;
            await admin(via.name, 'propose', { command: { op: 'put', key: `fill-${n % 8}`, value } }, 5000).catch((err: unknown) => say(`fill write refused: ${(err as Error).message}`));
          }
          await waitUntil(() => victim.fullExit!.seen || crashed > 0, { timeoutMs: 30_000, intervalMs: 100, what: `${victim.name} to exit on its full store` }).catch(() => {
            problems.push(`${victim.name} did not exit on its full store (quota ${DISK_FULL_MARGIN} bytes above its data file): it wedged or kept accepting`);
          });
          if (victim.fullExit.seen) say(`${victim.name} exited on its full store as expected: ${lastErrorLine(victim.log)}`);
          victim.fullExit = undefined;
          const still = victim.proc as CliProcess | null; // set again by start(), cleared by its exit
          if (still !== null) {
            await still.kill('SIGKILL');
            victim.proc = null;
          }
          await sleep(hold);
          await start(victim);
          break;
        }
        case 'add-remove-member': {
          const extra: Controller = { name: `x${i}`, server: random.int(3), proc: null, log: '', paused: false };
          fault.target = extra.name;
          await start(extra);
          await admin(leader.name, 'cluster.add', { name: extra.name, timeoutMs: 20_000 }, 21_000).catch((err: unknown) => say(`add refused: ${(err as Error).message}`));
          await sleep(hold);
          const current = await waitLeader();
          await admin(current.name, 'cluster.remove', { name: extra.name, timeoutMs: 20_000 }, 21_000).catch((err: unknown) => say(`remove refused: ${(err as Error).message}`));
          await extra.proc?.kill('SIGKILL');
          controllers.push({ ...extra, proc: null }); // its log is kept for the leader-per-term check
          break;
        }
      }
      const healedAt = performance.now();
      faults.push({ kind, target: fault.target, at, healedAt, firstWriteMs: null, longestGapMs: 0 });
      say(`${kind} on ${fault.target}: held ${Math.round(healedAt - at)} ms`);
    }

    // heal and let every member catch up, then read every key through the leader
    await sleep(1000);
    await workload.stop();
    say(`faults done; ${workload.events.length} events; checking convergence`);
    const members = controllers.filter((c) => c.proc !== null);
    const leader = await waitLeader();
    for (let k = 0; k < 4; k++) {
      const key = `k${k}`;
      const invoke: HistoryEvent = { process: `final${k}`, type: 'invoke', f: 'get', key, time: performance.now() };
      workload.events.push(invoke);
      const r = (await admin(leader.name, 'read', { query: { op: 'get', key } }, 10_000)) as { found: boolean; value: unknown };
      workload.events.push({ process: `final${k}`, type: 'ok', f: 'get', key, time: performance.now(), found: r.found, value: r.value });
    }
    events = workload.events;
    acknowledged = workload.acknowledgedWrites;
    await checkConverged(members, admin, problems, opts.convergeTimeoutMs ?? 60_000);
    // the controllers log pino times (epoch ms); the history's clock is this process's performance.now()
    const logs = controllers.map((c) => ({ name: c.name, text: c.log + (c.proc ? c.proc.stdout + c.proc.stderr : '') }));
    for (const s of checkOneLeaderPerTerm(logs, problems)) incidents.push(sightingIncident(s.problem, s.first - performance.timeOrigin, s.last - performance.timeOrigin));

    check = checkHistory(parseConclave(events.map((e) => JSON.stringify(e)).join('\n')), { timeoutMs: 120_000 });
    if (check.verdict !== 'linearizable') problems.push(`the history is ${check.verdict}`);
    measureAvailability(faults, acknowledged);
  } catch (err) {
    problems.push(`the run failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    // a run that failed half-way still stops its clients and keeps what they recorded
    if (workload !== null) {
      await workload.stop();
      events = workload.events;
      acknowledged = workload.acknowledgedWrites;
    }
    for (const c of controllers) {
      if (c.paused) c.proc?.child.kill('SIGCONT');
      await c.proc?.kill('SIGKILL');
      // its exit folded this incarnation's output into c.log: keepArtifacts must not add it again
      c.proc = null;
    }
    await bus?.close().catch(() => {});
    await nats.stopAll();
  }
  const report: NemesisReport = {
    seed: opts.seed,
    ok: problems.length === 0,
    problems,
    operations: events.filter((e) => e.type === 'invoke').length,
    acknowledgedWrites: acknowledged.length,
    check: check ?? { verdict: 'unknown', keys: [], operations: 0, elapsedMs: 0 },
    faults,
    artifacts: null,
    rendering: check ? renderText(check) : '',
    incidents,
    incidentsText: renderIncidents(incidents, clientOperations(events), { limit: 20, fullListing: 'incidents.txt' }),
  };
  if (!report.ok) report.artifacts = keepArtifacts(report, events, controllers);
  rmSync(dir, { recursive: true, force: true });
  return report;
}

async function startController(c: Controller, dir: string, nats: NatsCluster, env: NodeJS.ProcessEnv, onCrash: (c: Controller, how: string) => void): Promise<void> {
  const file = join(dir, `${c.name}.json`);
  // attached to one server only: losing that server cuts this controller off
  writeFileSync(file, JSON.stringify({ name: c.name, dataDir: join(dir, c.name), nats: { servers: [nats.urls[c.server]] }, raft: RAFT, ...(c.maxBytes ? { store: { maxBytes: c.maxBytes } } : {}) }));
  const proc = new CliProcess(['run', '--config', file], { env });
  c.proc = proc;
  const logged = c.log.length;
  void proc.exited.then(({ code, signal }) => {
    c.log = c.log.slice(0, logged) + proc.stdout + proc.stderr;
    // the suite only ever kills with SIGKILL; a removed member may end cleanly (0)
    if (signal === 'SIGKILL' || code === 0 || c.proc !== proc) return;
    c.proc = null;
    // disk-full-follower: the member whose quota was reached ends with exit 1 and the FULL error
    if (c.fullExit?.expected && code === 1 && /^error: store .* is full: /m.test(proc.stderr)) {
      c.fullExit.seen = true;
      return;
    }
    onCrash(c, signal ?? `exit code ${code}`);
  });
  await proc.waitForOutput(/controller \S+ is running/, 60_000);
}

async function checkConverged(members: Controller[], admin: <O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs?: number) => Promise<AdminReply<O>>, problems: string[], timeoutMs: number): Promise<void> {
  const states = new Map<string, string>();
  const statusOf = (name: string) => admin(name, 'status', {}, 2000) as Promise<{ clusterId: string; commitIndex: number; appliedIndex: number; role: string; term: number }>;
  // what each member said last, for the report when they do not converge
  let last = '';
  try {
    await waitUntil(
      async () => {
        const all = await Promise.all(members.map((m) => statusOf(m.name).catch((err: unknown) => err as Error)));
        last = all.map((s, i) => `${members[i]!.name}: ${s instanceof Error ? `no status (${s.message})` : `${s.role} term ${s.term} commit ${s.commitIndex} applied ${s.appliedIndex}`}`).join('; ');
        if (all.some((s) => s instanceof Error)) return false;
        const statuses = all as Array<{ commitIndex: number; appliedIndex: number }>;
        const commit = Math.max(...statuses.map((s) => s.commitIndex));
        return statuses.every((s) => s.appliedIndex === commit);
      },
      { timeoutMs, intervalMs: 200, what: 'every member applied the same index' },
    );
  } catch (err) {
    problems.push(`members did not converge: ${(err as Error).message}; last answers: ${last}`);
    return;
  }
  const clusterIds = new Set<string>();
  for (const m of members) {
    clusterIds.add((await statusOf(m.name)).clusterId);
    const list = await admin(m.name, 'read', { query: { op: 'list' }, stale: true }, 5000);
    states.set(m.name, JSON.stringify(list));
  }
  if (clusterIds.size !== 1) problems.push(`members report ${clusterIds.size} cluster ids: ${[...clusterIds].join(', ')}`);
  if (new Set(states.values()).size !== 1) problems.push(`members hold different states: ${[...states].map(([n, s]) => `${n}=${s}`).join(' ')}`);
}

function measureAvailability(faults: FaultRecord[], acknowledged: ReadonlyArray<{ invoked: number; acked: number }>): void {
  const acks = acknowledged.map((w) => w.acked).sort((a, b) => a - b);
  faults.forEach((f, i) => {
    const end = faults[i + 1]?.at ?? acks[acks.length - 1] ?? f.healedAt;
    const first = acknowledged.filter((w) => w.invoked >= f.at && w.acked <= end).reduce((min, w) => Math.min(min, w.acked), Number.POSITIVE_INFINITY);
    f.firstWriteMs = Number.isFinite(first) ? first - f.at : null;
    let previous = f.at;
    let gap = 0;
    for (const t of acks) {
      if (t < f.at || t > end) continue;
      gap = Math.max(gap, t - previous);
      previous = t;
    }
    f.longestGapMs = Math.max(gap, end - previous);
  });
}

/** per fault kind: median and worst time to the first acknowledged write, and the longest gap */
export function availabilityTable(faults: readonly FaultRecord[]): string {
  const rows = ['| fault | times | fault → first write sent after it acknowledged (median / worst) | longest time without an acknowledged write |', '|---|---|---|---|'];
  for (const kind of FAULT_KINDS) {
    const of = faults.filter((f) => f.kind === kind);
    if (of.length === 0) continue;
    const firsts = of.map((f) => f.firstWriteMs ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
    const gaps = of.map((f) => f.longestGapMs);
    const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'none');
    rows.push(`| ${kind} | ${of.length} | ${ms(firsts[Math.floor((firsts.length - 1) / 2)]!)} / ${ms(firsts[firsts.length - 1]!)} | ${ms(Math.max(...gaps))} |`);
  }
  return rows.join('\n');
}

function keepArtifacts(report: NemesisReport, events: HistoryEvent[], controllers: Controller[]): string {
  const out = join(ROOT, 'test', 'artifacts', `nemesis-seed-${report.seed}-${Date.now()}`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'history.jsonl'), events.map((e) => JSON.stringify(e)).join('\n'));
  writeFileSync(join(out, 'report.json'), JSON.stringify({ ...report, check: { ...report.check, keys: report.check.keys.map((k) => ({ key: k.key, verdict: k.verdict })) } }, null, 2));
  writeFileSync(join(out, 'checker.txt'), report.rendering);
  const ops = clientOperations(events);
  writeFileSync(join(out, 'incidents.txt'), renderIncidents(report.incidents, ops) || 'no incident (no controller died, no term had two leaders) and no acknowledged write lost\n');
  writeFileSync(join(out, 'checker.html'), renderHtml(report.check, renderIncidentsHtml(report.incidents, ops)));
  for (const c of controllers) writeFileSync(join(out, `${c.name}.log`), c.log + (c.proc ? c.proc.stdout + c.proc.stderr : ''));
  return out;
}

/** a stopped controller's store copied compacted over itself (no free pages left in it); its new size */
async function compactStore(dataDir: string): Promise<number> {
  const file = join(dataDir, 'data.mdb');
  // the store is a directory environment: LMDB writes the copy as data.mdb into a directory
  const copyDir = join(dataDir, 'compacted');
  mkdirSync(copyDir);
  const env = openEnv(dataDir, true);
  try {
    await env.backup(copyDir, true);
  } finally {
    await env.close();
  }
  renameSync(join(copyDir, 'data.mdb'), file);
  rmSync(copyDir, { recursive: true, force: true });
  return statSync(file).size;
}

function shuffled<T>(items: T[], random: Prng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
