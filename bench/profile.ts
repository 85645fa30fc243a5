// `node --import tsx bench/profile.ts [--n N] [--inflight K]`: CPU-profile the three `conclave run`
// processes (node --cpu-prof) while one client keeps K puts in flight against the leader, then
// summarize where the leader and a follower spend their time. Writes bench/profile.json; the raw
// .cpuprofile files stay in a temp folder (printed) for Chrome DevTools.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/cleanup.ts';
import { ROOT } from './lib/controllerProcess.ts';
import { type ProfileSummary, summarizeProfile } from './lib/cpuProfile.ts';
import { fmtLoad, measureFormation, measureLoad, NatsCluster } from './lib/natsCluster.ts';
import { progress } from './lib/progress.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { n: { type: 'string', default: '8000' }, inflight: { type: 'string', default: '64' }, 'heartbeat-ms': { type: 'string', default: '20' }, 'election-timeout-ms': { type: 'string', default: '150' } },
    strict: true,
  });
  const n = Number(values.n);
  const inflight = Number(values.inflight);
  const raft = { heartbeatMs: Number(values['heartbeat-ms']), electionTimeoutMs: Number(values['election-timeout-ms']) };
  const profDir = mkdtempSync(join(tmpdir(), 'conclave-cpuprof-'));
  try {
    const cluster = await NatsCluster.prepare(raft, ['--cpu-prof', '--cpu-prof-dir', profDir]);
    await measureFormation(cluster);
    const leader = await cluster.findLeader();
    progress(`leader ${leader}; warm-up, then ${n} puts with ${inflight} in flight`);
    await measureLoad(cluster, leader, 'warmup', 1000, 16);
    const load = await measureLoad(cluster, leader, 'prof', n, inflight);
    progress(fmtLoad(load));
    if (load.errors > 0) {
      const logFile = join(profDir, 'controllers.log');
      writeFileSync(logFile, [...cluster.procs.values()].map((p) => `--- ${p.name} ---\n${p.output(60_000)}`).join('\n'));
      progress(`${load.errors} puts failed: controller output in ${logFile}`);
    }
    const pids = new Map([...cluster.procs.values()].map((p) => [p.pid, p.name]));
    progress('stopping the controllers gracefully (SIGTERM) so that they write their profiles');
    for (const p of cluster.procs.values()) {
      const r = await p.stop(15_000);
      if (r.forced) throw new Error(`${p.name} did not exit within 15 s of SIGTERM, so it wrote no profile:\n${p.output()}`);
    }
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (others: tsx's loader)
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[4] === '0');
    const summaries: Record<string, ProfileSummary & { role: string; file: string }> = {};
    for (const f of files) {
      const pid = Number(f.split('.')[3]);
      const name = pids.get(pid) ?? `pid${pid}`;
      summaries[name] = { role: name === leader ? 'leader' : 'follower', file: join(profDir, f), ...summarizeProfile(join(profDir, f), ROOT) };
    }
    const out = fileURLToPath(new URL('./profile.json', import.meta.url));
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), raft, n, inflight, load, profiles: summaries }, null, 2)}\n`);
    const follower = Object.keys(summaries).find((k) => k !== leader);
    for (const name of [leader, follower]) {
      const s = name ? summaries[name] : undefined;
      if (!s) continue;
      process.stdout.write(`\n== ${name} (${s.role}): busy ${(s.busyMs / 1000).toFixed(1)} s of ${(s.totalMs / 1000).toFixed(1)} s ==\n`);
      process.stdout.write('self time by file/package:\n');
      for (const e of s.byFile.slice(0, 15)) process.stdout.write(`  ${e.pct.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.file}\n`);
      process.stdout.write('self time by function:\n');
      for (const e of s.byFunction.slice(0, 20)) process.stdout.write(`  ${e.pct.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.fn}  ${e.where}\n`);
      process.stdout.write('inclusive time of own frames:\n');
      for (const e of s.inclusive.slice(0, 20)) process.stdout.write(`  ${e.pct.toFixed(1).padStart(5)}%  ${String(e.totalMs).padStart(6)} ms  ${e.fn}  ${e.where}\n`);
    }
    progress(`wrote ${out}; raw profiles in ${profDir}`);
    return 0;
  } catch (err) {
    process.stderr.write(`error: profile failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await cleanupAll();
  }
}

process.exitCode = await main();
setTimeout(() => process.exit(), 1000).unref();
