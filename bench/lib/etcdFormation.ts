// A4's peer, measured on the same machine in the same run: three fresh etcd members (Debian
// `etcd-server`), spawn → the first acknowledged put, like Conclave's formation figure. etcd is
// driven through its JSON gateway (POST /v3/kv/put), so the bench needs no etcd client library.
// Skipped, with the reason in the report, when etcd is not installed.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/natsServer.ts';
import { trackChild, trackDir } from './cleanup.ts';
import { serviceEnv } from './controllerProcess.ts';
import { sleep } from './progress.ts';

const BINARY = process.env.ETCD_BIN ?? 'etcd';

export type EtcdFormation = { version: string; spawnToFirstPutMs: number } | { skipped: string };

export interface EtcdMember {
  name: string;
  peer: number;
  client: number;
}

/** three etcd members on free loopback ports */
export async function etcdMembers(): Promise<EtcdMember[]> {
  const members: EtcdMember[] = [];
  for (const name of ['e1', 'e2', 'e3']) members.push({ name, peer: await freePort(), client: await freePort() });
  return members;
}

/** the command line of member `m` of a new etcd cluster of `members`, its data below `dir` */
export function etcdArgs(m: EtcdMember, members: EtcdMember[], dir: string, token: string): string[] {
  const initialCluster = members.map((x) => `${x.name}=http://127.0.0.1:${x.peer}`).join(',');
  return [
    '--name', m.name,
    '--data-dir', join(dir, m.name),
    '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--listen-client-urls', `http://127.0.0.1:${m.client}`,
    '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
    '--initial-cluster', initialCluster,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', token,
    '--log-level', 'error',
  ];
}

/** a port picked free was taken before etcd bound it (by another process's outgoing connection): a new round with other ports */
class PortTaken extends Error {}

export async function measureEtcdFormation(): Promise<EtcdFormation> {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { skipped: `etcd is not installed (${BINARY}): apt-get install etcd-server` };
  const version = /etcd Version: (\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim();
  for (let attempt = 1; ; attempt++) {
    try {
      return { version, spawnToFirstPutMs: await formOnce() };
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
    }
  }
}

/** spawn → first acknowledged put of three fresh members, ms */
async function formOnce(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-bench-etcd-'));
  trackDir(dir);
  const members = await etcdMembers();
  const t0 = performance.now();
  const procs = members.map((m) => {
    const child = spawn(
      BINARY,
      etcdArgs(m, members, dir, 'conclave-bench'),
      { stdio: ['ignore', 'ignore', 'pipe'], env: serviceEnv() },
    );
    trackChild(child);
    let tail = '';
    child.stderr!.on('data', (d) => (tail = (tail + d).slice(-2000)));
    return { child, tail: () => tail };
  });
  try {
    const body = JSON.stringify({ key: Buffer.from('formation').toString('base64'), value: Buffer.from('x'.repeat(100)).toString('base64') });
    for (let attempt = 0; ; attempt++) {
      const exited = procs.find((p) => p.child.exitCode !== null);
      if (exited) {
        // its last words first: 'close' comes once its stderr is read to the end
        await Promise.race([new Promise((resolve) => exited.child.once('close', resolve)), sleep(1000)]);
        if (/address already in use/.test(exited.tail())) throw new PortTaken(exited.tail());
        throw new Error(`etcd exited with code ${exited.child.exitCode} during formation:\n${exited.tail()}`);
      }
      if (performance.now() - t0 > 60_000) throw new Error('etcd formation: no put acknowledged within 60 s');
      const m = members[attempt % members.length]!;
      try {
        const r = await fetch(`http://127.0.0.1:${m.client}/v3/kv/put`, { method: 'POST', body, signal: AbortSignal.timeout(1000) });
        if (r.ok && 'header' in ((await r.json()) as object)) return performance.now() - t0;
      } catch {
        // not listening or no leader yet
      }
      await sleep(5);
    }
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
  }
}
