// Test helper: `conclave run` processes over one real nats-server, seeded as a static voter
// cluster (or started blank), driven through the admin protocol like the CLI drives them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AdminOp, AdminReply, AdminRequest } from '../../runtime/wire/adminProtocol.ts';
import { adminRequest } from '../../runtime/cli/client.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { baseEnv, CliProcess, waitUntil } from './cli.ts';
import { type NatsServerHandle, startNatsServer } from './natsServer.ts';
import { testOperator } from './testOperator.ts';
import { seedStaticCluster } from './staticCluster.ts';

export interface NodeStatus {
  role: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  members: Array<{ name: string; voter: boolean; matchIndex: number }>;
}

export interface NatsProcessCluster {
  readonly nats: NatsServerHandle;
  readonly bus: Bus;
  readonly procs: Map<string, CliProcess>;
  /** where node `name` keeps its store */
  dataDir(name: string): string;
  /** seed `names` as the voters of one cluster holding `pairs` (each with `raft` settings) and start them */
  startSeeded(names: string[], raft?: Record<string, number>, pairs?: Array<[string, unknown]>): Promise<void>;
  /** start (or restart) one node from its config file; a new name starts blank */
  startNode(name: string, raft?: Record<string, number>): Promise<CliProcess>;
  stopNode(name: string, signal?: NodeJS.Signals): Promise<void>;
  ask<O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs?: number): Promise<AdminReply<O>>;
  status(node: string): Promise<NodeStatus>;
  /** the node that leads, among the running ones (waits for one) */
  leader(timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export async function natsProcessCluster(opts: { prefix: string; maxPayload?: number }): Promise<NatsProcessCluster> {
  const nats = await startNatsServer({ maxPayload: opts.maxPayload });
  const dir = await mkdtemp(join(tmpdir(), 'conclave-npc-'));
  const bus = await connectNats({ servers: nats.url, name: `test-${opts.prefix}` });
  const procs = new Map<string, CliProcess>();
  const ask = <O extends AdminOp>(node: string, type: O, body: AdminRequest<O>, timeoutMs = 5000) => adminRequest(bus, opts.prefix, node, type, body, timeoutMs, testOperator().signer);
  const status = (node: string) => ask(node, 'status', {}) as Promise<NodeStatus>;

  async function writeConfig(name: string, raft: Record<string, number>): Promise<void> {
    await writeFile(join(dir, `${name}.json`), JSON.stringify({ name, dataDir: join(dir, name), log: { level: 'info' }, raft }));
  }

  async function startNode(name: string, raft?: Record<string, number>): Promise<CliProcess> {
    if (raft !== undefined) await writeConfig(name, raft);
    const p = new CliProcess(['run', '--config', join(dir, `${name}.json`)], { env: baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: opts.prefix }) });
    procs.set(name, p);
    await p.waitForOutput(/controller .* is running/, 30_000);
    return p;
  }

  return {
    nats,
    bus,
    procs,
    dataDir: (name) => join(dir, name),
    async startSeeded(names, raft = {}, pairs = []) {
      await seedStaticCluster(
        names.map((name) => ({ name, dataDir: join(dir, name) })),
        pairs,
      );
      for (const name of names) await writeConfig(name, raft);
      await Promise.all(names.map((name) => startNode(name)));
    },
    startNode,
    async stopNode(name, signal = 'SIGKILL') {
      await procs.get(name)?.kill(signal);
    },
    ask,
    status,
    async leader(timeoutMs = 20_000) {
      let found: string | null = null;
      await waitUntil(
        async () => {
          for (const [name, p] of procs) {
            if (!p.running) continue;
            try {
              if ((await status(name)).role === 'leader') found = name;
            } catch {
              // not answering: not the leader
            }
          }
          return found !== null;
        },
        { what: 'a leader', timeoutMs },
      );
      return found!;
    },
    async close() {
      for (const p of procs.values()) await p.kill('SIGKILL');
      await bus.close();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** a value of `bytes` characters (ASCII: as many bytes on the wire) */
export function sizedValue(bytes: number, tag: string | number): string {
  const head = `${tag}:`;
  return head + 'v'.repeat(Math.max(0, bytes - head.length));
}
