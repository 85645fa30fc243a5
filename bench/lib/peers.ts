// `npm run bench -- --peers`: the same workload as A1/A2/A5, in the same run, against the two peers
// of TOOLCHAIN.md — a 3-member etcd (Debian `etcd-server`, fsync per commit like Conclave), driven
// by the `etcd3` gRPC client, and a 3-server NATS JetStream KV with 3 replicas (Debian
// `nats-server`; it does not fsync per put), driven by the `nats` client Conclave itself uses.
// Each gets the same 100-byte values, one client process (this one), requests to the leader where
// the peer has one to ask for. A peer that is not installed is skipped with the reason.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/natsServer.ts';
import { trackChild, trackDir } from './cleanup.ts';
import { serviceEnv } from './controllerProcess.ts';
import { etcdArgs, etcdMembers } from './etcdFormation.ts';
import { progress, sleep, VALUE_100B } from './progress.ts';
import { type LoadResult, runClosedLoop } from './stats.ts';

export interface PeerLoad {
  version: string;
  /** how the client reached it (for the report) */
  client: string;
  sequential: LoadResult;
  inflight64: LoadResult;
  inflight256: LoadResult;
  /** VmHWM of each server process after the load, bytes */
  peakRssBytes: number[];
}

export type PeerResult = PeerLoad | { skipped: string };

export interface PeerResults {
  etcd: PeerResult;
  jetstream: PeerResult;
}

export interface PeerSizes {
  seqN: number;
  concN: number;
}

/** one server process of a peer: its stderr tail (for errors) and its memory */
class ServerProcess {
  private tail = '';
  readonly child: ChildProcess;
  constructor(
    readonly name: string,
    binary: string,
    args: string[],
  ) {
    this.child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], env: serviceEnv() });
    trackChild(this.child);
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.tail = (this.tail + d).slice(-2000);
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  assertRunning(): void {
    if (this.exited) throw new Error(`${this.name} exited (code ${this.child.exitCode}, signal ${this.child.signalCode}):\n${this.tail}`);
  }

  peakRssBytes(): number {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) * 1024;
    } catch {
      return Number.NaN;
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

function versionOf(binary: string, pattern: RegExp): string | null {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return null;
  return pattern.exec(probe.stdout)?.[1] ?? probe.stdout.trim();
}

/** warm-up, then A1 (sequential) and A2 (64 and 256 in flight); any failed put fails the peer's run */
async function loadPeer(label: string, sizes: PeerSizes, put: (key: string) => Promise<unknown>, servers: ServerProcess[]): Promise<Omit<PeerLoad, 'version' | 'client'>> {
  const run = async (name: string, n: number, concurrency: number) => {
    const result = await runClosedLoop(n, concurrency, (i) => put(`${name}/${i}`));
    for (const s of servers) s.assertRunning();
    if (result.errors > 0) throw new Error(`${label} ${name}: ${result.errors} of ${n} puts failed (first: ${result.firstError})`);
    progress(`  ${label} ${name}: ${result.opsPerSec.toFixed(0)} ops/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms`);
    return result;
  };
  await run('warmup', 500, 16);
  const sequential = await run('seq', sizes.seqN, 1);
  const inflight64 = await run('c64', sizes.concN, 64);
  const inflight256 = await run('c256', sizes.concN, 256);
  return { sequential, inflight64, inflight256, peakRssBytes: servers.map((s) => s.peakRssBytes()) };
}

async function until<T>(what: string, timeoutMs: number, servers: ServerProcess[], attempt: () => Promise<T | null>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    for (const s of servers) s.assertRunning();
    try {
      const value = await attempt();
      if (value !== null) return value;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms${last ? ` (last error: ${last})` : ''}`);
    await sleep(50);
  }
}

export async function measureEtcd(sizes: PeerSizes): Promise<PeerResult> {
  const binary = process.env.ETCD_BIN ?? 'etcd';
  const version = versionOf(binary, /etcd Version: (\S+)/);
  if (version === null) return { skipped: `etcd is not installed (${binary}): apt-get install etcd-server` };
  const { Etcd3 } = await import('etcd3');
  const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-etcd-load-'));
  trackDir(dir);
  const members = await etcdMembers();
  const servers = members.map(
    (m) =>
      new ServerProcess(`etcd ${m.name}`, binary, etcdArgs(m, members, dir, 'conclave-bench-load')),
  );
  const clients: InstanceType<typeof Etcd3>[] = [];
  try {
    // ask each member who leads, then send every put to the leader, as the Conclave scenarios do
    const leaderEndpoint = await until('etcd leader', 60_000, servers, async () => {
      for (const m of members) {
        const probe = new Etcd3({ hosts: `http://127.0.0.1:${m.client}`, dialTimeout: 1000 });
        try {
          const s = await probe.maintenance.status();
          if (s.leader !== '0' && s.leader === s.header.member_id) return `http://127.0.0.1:${m.client}`;
        } finally {
          probe.close();
        }
      }
      return null;
    });
    const client = new Etcd3({ hosts: leaderEndpoint });
    clients.push(client);
    progress(`  etcd ${version}: 3 members, leader at ${leaderEndpoint}`);
    const load = await loadPeer('etcd', sizes, (key) => client.put(key).value(VALUE_100B).exec(), servers);
    return { version, client: 'etcd3 npm client (gRPC), to the leader', ...load };
  } finally {
    for (const c of clients) c.close();
    for (const s of servers) s.kill();
  }
}

export async function measureJetStream(sizes: PeerSizes): Promise<PeerResult> {
  const binary = process.env.NATS_SERVER_BIN ?? 'nats-server';
  const version = versionOf(binary, /nats-server: (\S+)/);
  if (version === null) return { skipped: `nats-server is not installed (${binary}): apt-get install nats-server` };
  const { connect } = await import('nats');
  const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-jetstream-'));
  trackDir(dir);
  const ports: Array<{ client: number; route: number }> = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), route: await freePort() });
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const servers = ports.map(
    (p, i) =>
      new ServerProcess(`nats-server s${i + 1}`, binary, [
        '-a', '127.0.0.1', '-p', String(p.client), '-n', `s${i + 1}`,
        '-js', '-sd', join(dir, `s${i + 1}`),
        '--cluster_name', 'conclave-bench-js', '--cluster', `nats://127.0.0.1:${p.route}`, '--routes', routes, '--no_advertise',
      ]),
  );
  let nc: Awaited<ReturnType<typeof connect>> | null = null;
  try {
    const conn = await until('nats-server', 30_000, servers, () => connect({ servers: `nats://127.0.0.1:${ports[0]!.client}`, name: 'conclave-bench-peer' }));
    nc = conn;
    // the bucket can be made once the JetStream meta group has a leader
    const kv = await until('JetStream KV bucket (replicas 3)', 60_000, servers, () => conn.jetstream().views.kv('bench', { replicas: 3, history: 1 }));
    progress(`  JetStream ${version}: 3 servers, KV bucket with 3 replicas`);
    const load = await loadPeer('JetStream KV', sizes, (key) => kv.put(key.replaceAll('/', '.'), VALUE_100B), servers);
    return { version, client: 'nats npm client, KV put (JetStream publish with ack)', ...load };
  } finally {
    await nc?.close();
    for (const s of servers) s.kill();
  }
}

/** both peers, one after the other; a peer that is installed but cannot be measured fails the bench */
export async function runPeerScenarios(sizes: PeerSizes, partial: Partial<PeerResults> = {}): Promise<PeerResults> {
  const attempt = async (name: string, measure: () => Promise<PeerResult>): Promise<PeerResult> => {
    progress(`P: ${name}, the same workload (${sizes.seqN} sequential, ${sizes.concN} at 64 and at 256 in flight)`);
    const result = await measure().catch((err: unknown) => {
      throw new Error(`peer ${name}: ${(err as Error).message}`);
    });
    if ('skipped' in result) progress(`  skipped: ${result.skipped}`);
    return result;
  };
  partial.etcd = await attempt('etcd', () => measureEtcd(sizes));
  partial.jetstream = await attempt('NATS JetStream KV R3', () => measureJetStream(sizes));
  return { etcd: partial.etcd, jetstream: partial.jetstream };
}
