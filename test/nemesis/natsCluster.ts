// A NATS cluster on loopback for the torture suite: N real nats-servers joined by routes. Each
// server keeps its ports across stop/start, so the controllers attached to it come back to it.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'nats';
import { freePort } from '../helpers/natsServer.ts';
import { waitUntil } from '../helpers/cli.ts';

export interface NatsNode {
  readonly name: string;
  readonly url: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** SIGTERM (a clean shutdown, connections closed) */
  stop(): Promise<void>;
  /** SIGKILL (a crash) */
  kill(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: NatsNode[];
  /** every server's URL: what a client that should survive one server's loss connects to */
  readonly urls: string[];
  /** wait until a message published on each server reaches a subscriber on each other one */
  waitRouted(timeoutMs?: number): Promise<void>;
  stopAll(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export async function startNatsCluster(size: number, clusterName = 'conclave-nemesis'): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })));
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const nodes = ports.map((p, i) => natsNode(`s${i + 1}`, p.client, p.route, routes, clusterName));
  await Promise.all(nodes.map((n) => n.start()));
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    waitRouted: (timeoutMs = 30_000) => waitRouted(nodes, timeoutMs),
    stopAll: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  await cluster.waitRouted();
  return cluster;
}

function natsNode(name: string, port: number, routePort: number, routes: string, clusterName: string): NatsNode {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';
  const url = `nats://127.0.0.1:${port}`;
  const signal = async (sig: NodeJS.Signals) => {
    if (child === null) return;
    child.kill(sig);
    await exited;
  };
  return {
    name,
    url,
    get running() {
      return child !== null;
    },
    async start() {
      if (child !== null) return;
      const args = ['-a', '127.0.0.1', '-p', String(port), '-n', name, '--cluster_name', clusterName, '--cluster', `nats://127.0.0.1:${routePort}`, '--routes', routes, '--no_advertise'];
      const proc = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      live.add(proc);
      stderr = '';
      proc.stderr!.setEncoding('utf8');
      proc.stderr!.on('data', (d: string) => {
        stderr = (stderr + d).slice(-4000);
      });
      exited = new Promise((resolve) =>
        proc.once('exit', () => {
          live.delete(proc);
          if (child === proc) child = null;
          resolve();
        }),
      );
      await waitUntil(async () => (await canConnect(url)) || child === null, { timeoutMs: 20_000, what: `nats-server ${name} on ${url}`, context: () => stderr });
      if (child === null) throw new Error(`nats-server ${name} exited at start:\n${stderr}`);
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
  };
}

async function canConnect(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

async function waitRouted(nodes: NatsNode[], timeoutMs: number): Promise<void> {
  const conns = await Promise.all(nodes.map((n) => connect({ servers: n.url, reconnect: false })));
  try {
    const subject = `_nemesis.route.${Math.random().toString(36).slice(2)}`;
    const heard = conns.map(() => new Set<number>());
    conns.forEach((nc, i) => {
      nc.subscribe(subject, { callback: (_err, msg) => heard[i]!.add(Number(msg.string())) });
    });
    await Promise.all(conns.map((nc) => nc.flush()));
    await waitUntil(
      async () => {
        for (const [i, nc] of conns.entries()) nc.publish(subject, String(i));
        await Promise.all(conns.map((nc) => nc.flush()));
        return heard.every((h) => h.size === nodes.length);
      },
      { timeoutMs, intervalMs: 100, what: 'routes between every pair of nats-servers' },
    );
  } finally {
    await Promise.all(conns.map((nc) => nc.close()));
  }
}
