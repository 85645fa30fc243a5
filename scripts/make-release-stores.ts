// Stores written by the previous release, as test data (issue #15: "Stores written by the previous
// release open and migrate"). Runs v0.1.0 itself (test/data/releases, installRelease) over a real
// nats-server: `init` ctrl1, `cluster add` ctrl2 and ctrl3, a few `kv put`s (one of 64 KiB, one a
// JSON object), a `kv del` and an overwrite, enough writes for ctrl1 (snapshotEvery 10) to take a
// snapshot and compact its log while ctrl2 and ctrl3 keep theirs; and a blank node (blank1) that
// was run and never initialized. Every process is stopped with SIGTERM (clean shutdown). The data
// dirs, with a manifest of what was written, are packed into test/data/stores/v0.1.0-stores.tgz.
//
//   node --import tsx scripts/make-release-stores.ts [OUT.tgz]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { baseEnv, ROOT, runProgram, TsProcess, waitUntil } from '../test/helpers/cli.ts';
import { startNatsServer } from '../test/helpers/natsServer.ts';
import { installRelease } from '../test/helpers/previousRelease.ts';

export const STORES_VERSION = '0.1.0';
/** the top folder inside the tarball */
export const STORES_TOP = `v${STORES_VERSION}-stores`;
export const STORES_TARBALL = join(ROOT, 'test', 'data', 'stores', `${STORES_TOP}.tgz`);
export const MEMBERS = ['ctrl1', 'ctrl2', 'ctrl3'] as const;
export const BLANK = 'blank1';

/** What the tarball's manifest.json says was written (the tests check the stores against it). */
export interface StoresManifest {
  release: string;
  clusterId: string;
  /** node name → node id, as `status` reported them */
  nodeIds: Record<string, string>;
  /** the replicated kv state after the last write: key → value */
  kv: Record<string, unknown>;
  /** keys written and then deleted */
  deleted: string[];
  /** each member's `status --json` just before it was stopped */
  statuses: Record<string, Status>;
  /** which data dirs hold a snapshot (their log is compacted) */
  snapshotted: string[];
}

interface Status {
  name: string;
  nodeId: string;
  clusterId: string | null;
  phase: string;
  role: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
}

/** the large value: 64 KiB of text that is not one repeated byte */
export function largeValue(): string {
  let out = '';
  for (let i = 0; out.length < 65_536; i++) out += `line ${i} of the large value written by Conclave ${STORES_VERSION}\n`;
  return out.slice(0, 65_536);
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? STORES_TARBALL);
  const release = await installRelease(STORES_VERSION);
  const nats = await startNatsServer();
  const work = mkdtempSync(join(tmpdir(), 'conclave-release-stores-'));
  const top = join(work, STORES_TOP);
  mkdirSync(top);
  const procs: TsProcess[] = [];
  try {
    const env = (prefix: string) => baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: prefix, CONCLAVE_LOG_LEVEL: 'info' });
    const cli = async (args: string[], prefix = 'conclave'): Promise<string> => {
      const r = await runProgram(process.execPath, ['--import', 'tsx', release.main, ...args], { label: `conclave ${STORES_VERSION} ${args.join(' ').slice(0, 80)}`, env: env(prefix) });
      if (r.code !== 0) throw new Error(`conclave ${STORES_VERSION} ${args.join(' ').slice(0, 200)} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    const status = async (name: string): Promise<Status> => JSON.parse(await cli(['status', '--node', name, '--json'])) as Status;
    const start = async (name: string, raft: Record<string, number>, prefix = 'conclave'): Promise<TsProcess> => {
      const config = join(work, `${name}.json`);
      writeFileSync(config, JSON.stringify({ name, dataDir: join(top, name), log: { level: 'info' }, raft }));
      const p = new TsProcess(release.main, ['run', '--config', config], { env: env(prefix) });
      procs.push(p);
      await p.waitForOutput(/controller .* is running/, 120_000);
      return p;
    };
    const stop = async (p: TsProcess): Promise<void> => {
      const { code, signal } = await p.kill('SIGTERM');
      if (code !== 0) throw new Error(`a v${STORES_VERSION} process did not stop cleanly (code ${code}, signal ${signal})\n${p.output()}`);
    };

    // ctrl1 snapshots every 10 applied entries; ctrl2 and ctrl3 keep the default (10 000): whole logs
    const running = new Map<string, TsProcess>();
    running.set('ctrl1', await start('ctrl1', { snapshotEvery: 10 }));
    running.set('ctrl2', await start('ctrl2', {}));
    running.set('ctrl3', await start('ctrl3', {}));
    const clusterId = (await cli(['init', '--node', 'ctrl1'])).trim();
    await cli(['cluster', 'add', 'ctrl2', '--via', 'ctrl1', '--timeout', '30000']);
    await cli(['cluster', 'add', 'ctrl3', '--via', 'ctrl1', '--timeout', '30000']);

    const kv: Record<string, unknown> = {};
    const put = async (key: string, value: string, stored: unknown = value) => {
      await cli(['kv', 'put', key, value, '--via', 'ctrl2', '--timeout', '30000']);
      kv[key] = stored;
    };
    for (let i = 1; i <= 12; i++) await put(`key-${String(i).padStart(2, '0')}`, `value ${i}`);
    await put('config', JSON.stringify({ replicas: 3, zones: ['a', 'b'], nested: { on: true, ratio: 0.5 } }), {
      replicas: 3,
      zones: ['a', 'b'],
      nested: { on: true, ratio: 0.5 },
    });
    await put('large', largeValue());
    await put('key-03', 'value 3, written again');
    await put('gone', 'written, then deleted');
    await cli(['kv', 'del', 'gone', '--via', 'ctrl3', '--timeout', '30000']);
    delete kv.gone;

    // every member has applied everything before it stops: each store holds the whole state
    const leaderStatus = await status('ctrl1');
    if (leaderStatus.role !== 'leader') throw new Error(`ctrl1 is not the leader: ${JSON.stringify(leaderStatus)}`);
    const statuses: Record<string, Status> = {};
    await waitUntil(
      async () => {
        for (const name of MEMBERS) statuses[name] = await status(name);
        return MEMBERS.every((n) => statuses[n]!.appliedIndex === leaderStatus.commitIndex && statuses[n]!.commitIndex === leaderStatus.commitIndex);
      },
      { what: 'every member applied the last write', timeoutMs: 60_000 },
    );
    const ctrl1Log = running.get('ctrl1')!.output();
    const snapshotted = /snapshot taken, log compacted/.test(ctrl1Log) ? ['ctrl1'] : [];
    if (snapshotted.length === 0) throw new Error(`ctrl1 took no snapshot\n${running.get('ctrl1')!.output()}`);
    // the followers first, then the leader (it has nobody to hand leadership to)
    for (const name of ['ctrl3', 'ctrl2', 'ctrl1']) await stop(running.get(name)!);

    // a blank node, on a prefix of its own so that nothing contacts it
    await stop(await start(BLANK, {}, 'blank'));

    const nodeIds = Object.fromEntries(MEMBERS.map((n) => [n, statuses[n]!.nodeId]));
    const manifest: StoresManifest = { release: STORES_VERSION, clusterId, nodeIds, kv, deleted: ['gone'], statuses, snapshotted };
    writeFileSync(join(top, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    for (const name of [...MEMBERS, BLANK]) process.stdout.write(`${name}: ${readdirSync(join(top, name)).join(' ')}\n`);

    // lock.mdb is LMDB's reader table (made again on open); the rest is what v0.1.0 left
    mkdirSync(join(out, '..'), { recursive: true });
    const tar = ['--sort=name', '--mtime=2026-01-01 00:00Z', '--owner=0', '--group=0', '--numeric-owner', '--exclude=lock.mdb', '-C', work, '-cf', '-', STORES_TOP];
    const packed = execFileSync('sh', ['-c', `tar "$@" | gzip -9n > ${JSON.stringify(out)}`, 'tar', ...tar]);
    process.stdout.write(packed);
    process.stdout.write(`wrote ${out} (cluster ${clusterId})\n`);
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    await nats.stop();
    rmSync(work, { recursive: true, force: true });
    await release.remove();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
