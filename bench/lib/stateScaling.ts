// `npm run bench -- --state-scaling`: how the cost grows with the state (issue 13's "How cost grows",
// last two parts). (1) RSS per member of a 3-member cluster of `conclave run` processes holding 10k,
// 100k and 1M keys of 100-byte values, loaded 256 puts in flight (the client packs them into
// `propose.batch` requests), with the stores' size on disk. (2) Catch-up: a 3-member cluster holding
// a ~500 MB state, then a blank 4th node added with `cluster.add` as the CLI sends it; the time from
// the add to the new member's applied index reaching the leader's commit index, and state bytes / time.
import { readdir, stat } from 'node:fs/promises';
import { mkdtempSync, readdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type RaftSettings } from './controllerProcess.ts';
import { type ProfileSummary, summarizeProfile } from './cpuProfile.ts';
import { measureFormation, NatsCluster } from './natsCluster.ts';
import { progress, sleep, VALUE_100B } from './progress.ts';
import { type LoadResult, runClosedLoop } from './stats.ts';

/** puts of 100 B in flight while loading: the client packs them into propose.batch requests of 16 (runtime/adminClient.ts) */
const LOAD_IN_FLIGHT = 256;
/** puts of the catch-up's larger values in flight: 64 (as the value-size scaling rows), not 2.5 MB of 10 KB values at a time */
const LOAD_IN_FLIGHT_LARGE = 64;
/** puts per closed-loop run while loading (a progress line after each) */
const LOAD_STEP = 50_000;
export const DEFAULT_KEY_COUNTS = [10_000, 100_000, 1_000_000];
export const DEFAULT_CATCHUP_MB = 500;
/** 10 KB values: 50k of them make 500 MB (see README: why not 1 KB) */
export const DEFAULT_CATCHUP_VALUE_BYTES = 10_000;

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

export interface MemberMemory {
  name: string;
  /** VmHWM: the most the process held resident since it started (the load to this key count included) */
  peakRssBytes: number;
  /** VmRSS once it stopped changing after the load */
  settledRssBytes: number;
  rssAnonBytes: number;
  rssFileBytes: number;
  /** the data folder's files: their sizes (LMDB's map is sparse) and the blocks they occupy */
  storeApparentBytes: number;
  storeAllocatedBytes: number;
}

export interface KeysMemoryRow {
  keys: number;
  valueBytes: number;
  /** the leader at the end of the load */
  leader: string;
  /** the puts that took the cluster from the previous row's keys to this one's (errors: puts sent again) */
  load: LoadResult;
  settleMs: number;
  members: MemberMemory[];
  loadAverage: number[];
}

export interface CatchUpResult {
  keys: number;
  valueBytes: number;
  /** keys × value bytes */
  stateBytes: number;
  load: LoadResult;
  leader: string;
  /** the leader's commit index when the add was sent, and the new member's applied index at the end */
  commitIndex: number;
  appliedIndex: number;
  /** cluster.add sent → the new member's applied index ≥ the leader's commit index */
  catchUpMs: number;
  /** cluster.add sent → the add answered `added` (the learner promoted to voter) */
  addMs: number;
  mbPerSec: number;
  /** from the leader's `sent snapshot` and the new member's `received snapshot` log lines, when found */
  sent: Record<string, unknown> | null;
  received: Record<string, unknown> | null;
  newMember: MemberMemory;
  storeAllocatedBytes: number;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  /** --catchup-cpu-prof: the new member's CPU profile, summarized */
  profile: (Omit<ProfileSummary, 'inclusive'> & { file: string }) | null;
}

export interface StateScalingResult {
  date: string;
  keysMemory: KeysMemoryRow[];
  catchUp: CatchUpResult | null;
}

async function folderBytes(dir: string): Promise<{ apparent: number; allocated: number }> {
  let apparent = 0;
  let allocated = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = await folderBytes(path);
      apparent += sub.apparent;
      allocated += sub.allocated;
    } else if (entry.isFile()) {
      const s = await stat(path);
      apparent += s.size;
      allocated += s.blocks * 512;
    }
  }
  return { apparent, allocated };
}

/** every member's VmRSS, until no member's moved by more than 1 MiB over one second (at most 30 s) */
async function settle(cluster: NatsCluster): Promise<number> {
  const t0 = performance.now();
  let before = cluster.memory().map((m) => m.figures?.rss ?? 0);
  for (;;) {
    await sleep(1000);
    const now = cluster.memory().map((m) => m.figures?.rss ?? 0);
    const moved = now.some((rss, i) => Math.abs(rss - (before[i] ?? 0)) > 2 ** 20);
    before = now;
    if (!moved || performance.now() - t0 > 30_000) return performance.now() - t0;
  }
}

async function memberMemory(cluster: NatsCluster, name: string): Promise<MemberMemory> {
  const figures = cluster.procs.get(name)?.memory();
  if (!figures) throw new Error(`cannot read /proc of ${name}: ${cluster.procs.get(name)?.running ? 'running' : 'exited'}\n${cluster.outputs()}`);
  const disk = await folderBytes(cluster.specs.get(name)!.dataDir);
  return {
    name,
    peakRssBytes: figures.peakRss,
    settledRssBytes: figures.rss,
    rssAnonBytes: figures.rssAnon,
    rssFileBytes: figures.rssFile,
    storeApparentBytes: disk.apparent,
    storeAllocatedBytes: disk.allocated,
  };
}

/**
 * `count` puts of `value` under keys `${prefix}/${from..from+count}`, `inFlight` in flight, a progress
 * line per LOAD_STEP. Loading is not what is measured here: a put that fails (the leader lost its
 * leadership on this busy machine) is sent again, to the leader found then, at most 5 times; a put is
 * idempotent. The retries and leader changes are counted in `errors` and reported.
 */
async function loadKeys(cluster: NatsCluster, leaderAtStart: string, prefix: string, from: number, count: number, value: string, what: string, inFlight: number): Promise<LoadResult & { leader: string; retries: number }> {
  const started = performance.now();
  let leader = leaderAtStart;
  let finding: Promise<string> | null = null;
  let retries = 0;
  let firstError: string | null = null;
  const put = async (key: string) => {
    for (let attempt = 0; ; attempt++) {
      const via = leader;
      try {
        return await cluster.put(via, key, 30_000, value);
      } catch (err) {
        if (attempt >= 5) throw err;
        retries++;
        firstError ??= (err as Error).message;
        // one search for the new leader at a time, shared by every put that failed meanwhile
        finding ??= cluster.findLeader(cluster.names, 30_000).finally(() => {
          finding = null;
        });
        leader = await finding;
      }
    }
  };
  let done = 0;
  const totals = { maxMs: 0, p50: [] as number[], p99: [] as number[] };
  while (done < count) {
    const n = Math.min(LOAD_STEP, count - done);
    const base = from + done;
    const r = await runClosedLoop(n, inFlight, (i) => put(`${prefix}/${base + i}`));
    cluster.assertAllRunning();
    if (r.errors > 0) throw new Error(`${what}: ${r.errors} of ${n} puts failed 6 times (first: ${r.firstError})\n${cluster.errorSummary()}`);
    done += n;
    totals.maxMs = Math.max(totals.maxMs, r.maxMs);
    totals.p50.push(r.p50Ms);
    totals.p99.push(r.p99Ms);
    const s = (performance.now() - started) / 1000;
    progress(`  ${what}: ${done} of ${count} puts (${(done / s).toFixed(0)} puts/s so far, ${s.toFixed(0)} s; leader ${leader}${retries > 0 ? `, ${retries} puts sent again` : ''}; load average ${load()[0]})`);
  }
  if (retries > 0) progress(`  ${what}: ${retries} puts were sent again after failing (first: ${firstError})`);
  const elapsedMs = performance.now() - started;
  // the runs' percentiles are not a whole's: the worst of them is reported
  return {
    n: count,
    concurrency: inFlight,
    elapsedMs,
    opsPerSec: (count / elapsedMs) * 1000,
    p50Ms: Math.max(...totals.p50),
    p99Ms: Math.max(...totals.p99),
    maxMs: totals.maxMs,
    errors: retries,
    firstError,
    leader,
    retries,
  };
}

async function withCluster<T>(raft: RaftSettings, nodeArgs: string[], fn: (c: NatsCluster, leader: string) => Promise<T>): Promise<T> {
  const cluster = await NatsCluster.prepare(raft, nodeArgs);
  try {
    await measureFormation(cluster);
    const leader = await cluster.findLeader();
    return await fn(cluster, leader);
  } finally {
    await cluster.killAll();
    await cluster.bus.close();
    await cluster.nats.stop();
  }
}

/** (1): one cluster, loaded to each key count in turn (the rows' keys are cumulative) */
export async function measureKeysMemory(opts: { raft: RaftSettings; nodeArgs?: string[]; keyCounts?: number[] }): Promise<KeysMemoryRow[]> {
  const keyCounts = [...(opts.keyCounts ?? DEFAULT_KEY_COUNTS)].sort((a, b) => a - b);
  progress(`S: RSS with ${keyCounts.join(', ')} keys of 100-byte values on 3 members (${LOAD_IN_FLIGHT} puts in flight to load them)`);
  return withCluster(opts.raft, opts.nodeArgs ?? [], async (cluster, leaderAtStart) => {
    const rows: KeysMemoryRow[] = [];
    let have = 0;
    let leader = leaderAtStart;
    for (const keys of keyCounts) {
      const loaded = await loadKeys(cluster, leader, 'k', have, keys - have, VALUE_100B, `loading to ${keys} keys`, LOAD_IN_FLIGHT);
      have = keys;
      leader = loaded.leader;
      const settleMs = await settle(cluster);
      const members = await Promise.all(cluster.names.map((n) => memberMemory(cluster, n)));
      const { leader: _leader, retries: _retries, ...loadFigures } = loaded;
      const row = { keys, valueBytes: VALUE_100B.length, leader, load: loadFigures, settleMs, members, loadAverage: load() };
      rows.push(row);
      for (const line of formatKeysRow(row)) progress(`  ${line}`);
    }
    return rows;
  });
}

function formatKeysRow(r: KeysMemoryRow): string[] {
  const range = (f: (m: MemberMemory) => number) => {
    const v = r.members.map(f);
    return `${mib(Math.min(...v))}–${mib(Math.max(...v))}`;
  };
  return [
    `${String(r.keys).padStart(8)} keys: peak RSS ${range((m) => m.peakRssBytes)} MiB, settled ${range((m) => m.settledRssBytes)} MiB (anon ${range((m) => m.rssAnonBytes)}, file ${range((m) => m.rssFileBytes)}); store ${range((m) => m.storeAllocatedBytes)} MiB on disk (files ${range((m) => m.storeApparentBytes)} MiB); loaded at ${r.load.opsPerSec.toFixed(0)} puts/s${r.load.errors > 0 ? ` (${r.load.errors} sent again after a leader change)` : ''}`,
    `           per member: ${r.members.map((m) => `${m.name}${m.name === r.leader ? ' (leader)' : ''} ${mib(m.peakRssBytes)}/${mib(m.settledRssBytes)}`).join(', ')} MiB peak/settled; load average ${r.loadAverage.join(' ')}`,
  ];
}

/** the last JSON log line of `name` whose msg is `msg` (and, when given, whose `to` is `to`) */
function logRecord(cluster: NatsCluster, name: string, msg: string, to?: string): Record<string, unknown> | null {
  const out = cluster.procs.get(name)?.output(64 * 1024) ?? '';
  let found: Record<string, unknown> | null = null;
  for (const line of out.split('\n')) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (to === undefined || rec.to === to) found = rec;
    } catch {
      // a line cut by the output tail's start
    }
  }
  if (found === null) return null;
  // the figures only (sizes, counts, ms), not the node's identity fields
  return Object.fromEntries(Object.entries(found).filter(([k, v]) => typeof v === 'number' && !['level', 'time', 'pid'].includes(k)));
}

/** (2): a 3-member cluster loaded to `stateMb` MB of values, then a blank n4 added */
export async function measureCatchUp(opts: { raft: RaftSettings; nodeArgs?: string[]; stateMb?: number; valueBytes?: number; cpuProfile?: boolean }): Promise<CatchUpResult> {
  const valueBytes = opts.valueBytes ?? DEFAULT_CATCHUP_VALUE_BYTES;
  const stateMb = opts.stateMb ?? DEFAULT_CATCHUP_MB;
  const keys = Math.ceil((stateMb * 1e6) / valueBytes);
  const stateBytes = keys * valueBytes;
  progress(`S: catch-up — 3 members holding ${keys} keys of ${valueBytes}-byte values (${(stateBytes / 1e6).toFixed(0)} MB), then a blank n4 added with cluster.add`);
  return withCluster(opts.raft, opts.nodeArgs ?? [], async (cluster, leaderAtStart) => {
    const value = 'v'.repeat(valueBytes);
    const inFlight = valueBytes <= 1000 ? LOAD_IN_FLIGHT : LOAD_IN_FLIGHT_LARGE;
    const loaded = await loadKeys(cluster, leaderAtStart, 'c', 0, keys, value, `loading ${(stateBytes / 1e6).toFixed(0)} MB`, inFlight);
    const leader = await cluster.findLeader();
    const name = 'n4';
    await cluster.addBlankNode(name, opts.raft);
    const profDir = opts.cpuProfile ? mkdtempSync(join(tmpdir(), 'conclave-catchup-prof-')) : null;
    const proc = cluster.spawn(name, profDir === null ? undefined : [...(opts.nodeArgs ?? []), '--cpu-prof', '--cpu-prof-dir', profDir]);
    // a blank node answers status as soon as it listens
    for (let tries = 0; ; tries++) {
      if (!proc.running) throw new Error(`${name} exited before answering:\n${proc.output()}`);
      const ok = await cluster.status(name, 500).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (tries > 300) throw new Error(`${name} did not answer status within 30 s:\n${proc.output()}`);
      await sleep(100);
    }
    const commitIndex = (await cluster.status(leader)).commitIndex;
    const loadAverageBefore = load();
    progress(`  ${name} is up, blank; leader ${leader} at commit index ${commitIndex}; sending cluster.add (load average ${loadAverageBefore.join(' ')})`);
    const t0 = performance.now();
    let addMs: number | null = null;
    let addError: unknown = null;
    const follow = (async () => {
      for (;;) {
        const reply = await cluster.addMember(leader, name, 1000);
        if (reply.outcome !== 'in-progress') {
          addMs = performance.now() - t0;
          return;
        }
      }
    })().catch((err: unknown) => {
      addError = err;
    });
    let appliedIndex = 0;
    let lastReport = t0;
    for (;;) {
      if (addError !== null) throw new Error(`cluster.add ${name} failed: ${(addError as Error).message}\n${cluster.errorSummary()}`);
      cluster.assertAllRunning();
      const target = (await cluster.status(leader)).commitIndex;
      const s = await cluster.status(name, 2000).catch(() => null);
      if (s !== null) appliedIndex = s.appliedIndex;
      if (s !== null && s.appliedIndex >= target) break;
      if (performance.now() - t0 > 600_000) throw new Error(`${name} did not catch up within 600 s (applied ${appliedIndex} of ${target})\n${cluster.errorSummary()}`);
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        const rec = cluster.procs.get(name)!.memory();
        progress(`  catching up: ${name} applied ${appliedIndex} of ${target} after ${((lastReport - t0) / 1000).toFixed(0)} s; RSS ${rec ? mib(rec.rss) : '?'} MiB; store ${mib((await folderBytes(cluster.specs.get(name)!.dataDir)).allocated)} MiB`);
      }
      await sleep(50);
    }
    const catchUpMs = performance.now() - t0;
    await follow;
    if (addError !== null) throw new Error(`cluster.add ${name} failed after the catch-up: ${(addError as Error).message}`);
    const loadAverageAfter = load();
    const newMember = await memberMemory(cluster, name);
    const sent = logRecord(cluster, leader, 'sent snapshot', name);
    const received = logRecord(cluster, name, 'received snapshot');
    let profile: CatchUpResult['profile'] = null;
    if (profDir !== null) {
      const stopped = await proc.stop(30_000);
      if (stopped.forced) throw new Error(`${name} did not exit within 30 s of SIGTERM, so it wrote no profile:\n${proc.output()}`);
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(proc.pid) && f.split('.')[4] === '0');
      if (file === undefined) throw new Error(`no CPU profile of ${name} in ${profDir}`);
      const { inclusive: _inclusive, ...summary } = summarizeProfile(join(profDir, file), ROOT, 20);
      profile = { file: join(profDir, file), ...summary };
    }
    const { leader: _leader, retries: _retries, ...loadFigures } = loaded;
    const result: CatchUpResult = {
      keys,
      valueBytes,
      stateBytes,
      load: loadFigures,
      leader,
      commitIndex,
      appliedIndex,
      catchUpMs,
      addMs: addMs ?? Number.NaN,
      mbPerSec: stateBytes / 1e3 / catchUpMs,
      sent,
      received,
      newMember,
      storeAllocatedBytes: newMember.storeAllocatedBytes,
      loadAverageBefore,
      loadAverageAfter,
      profile,
    };
    for (const line of formatCatchUp(result)) progress(`  ${line}`);
    return result;
  });
}

export function formatCatchUp(c: CatchUpResult): string[] {
  const lines = [
    `catch-up of a blank 4th member, ${c.keys} keys × ${c.valueBytes} B = ${(c.stateBytes / 1e6).toFixed(0)} MB of values: ${(c.catchUpMs / 1000).toFixed(1)} s from cluster.add to applied ≥ the leader's commit (${c.appliedIndex} ≥ ${c.commitIndex}), ${c.mbPerSec.toFixed(1)} MB/s; add answered after ${(c.addMs / 1000).toFixed(1)} s`,
    `       new member: RSS peak ${mib(c.newMember.peakRssBytes)} MiB, settled ${mib(c.newMember.settledRssBytes)} MiB, store ${mib(c.newMember.storeAllocatedBytes)} MiB on disk; load average ${c.loadAverageBefore.join(' ')} → ${c.loadAverageAfter.join(' ')}; state loaded at ${c.load.opsPerSec.toFixed(0)} puts/s${c.load.errors > 0 ? ` (${c.load.errors} sent again after a leader change)` : ''}`,
  ];
  if (c.sent) lines.push(`       leader's sent snapshot: ${JSON.stringify(c.sent)}`);
  if (c.received) lines.push(`       new member's received snapshot: ${JSON.stringify(c.received)}`);
  if (c.profile) {
    lines.push(`       new member's CPU profile: busy ${(c.profile.busyMs / 1000).toFixed(1)} s of ${(c.profile.totalMs / 1000).toFixed(1)} s (${c.profile.file}); self time by file:`);
    for (const e of c.profile.byFile.slice(0, 10)) lines.push(`         ${e.pct.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.file}`);
    lines.push('       by function:');
    for (const e of c.profile.byFunction.slice(0, 15)) lines.push(`         ${e.pct.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.fn}  ${e.where}`);
  }
  return lines;
}

export async function measureStateScaling(opts: { raft: RaftSettings; nodeArgs?: string[]; keyCounts?: number[]; catchUpMb?: number; catchUpValueBytes?: number; cpuProfile?: boolean }): Promise<StateScalingResult> {
  const keysMemory = await measureKeysMemory(opts);
  const catchUp = await measureCatchUp({ ...opts, ...(opts.catchUpMb === undefined ? {} : { stateMb: opts.catchUpMb }), ...(opts.catchUpValueBytes === undefined ? {} : { valueBytes: opts.catchUpValueBytes }) });
  return { date: new Date().toISOString(), keysMemory, catchUp };
}

export function formatStateScaling(s: StateScalingResult): string[] {
  return [
    'how the cost grows with the state (3 members; each row: RSS per member after loading to that many 100-byte values):',
    ...s.keysMemory.flatMap((r) => formatKeysRow(r).map((l) => `     ${l}`)),
    ...(s.catchUp === null ? [] : formatCatchUp(s.catchUp).map((l, i) => (i === 0 ? `     ${l}` : l))),
  ];
}
