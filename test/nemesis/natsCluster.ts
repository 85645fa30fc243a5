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

const STOP_GRACE_MS = 5000;
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** nats-servers of this process still running (a test checks that a failed start leaves none) */
export const liveServers = (): number => live.size;

/** SIGKILL every nats-server this process started and wait for them to exit: a test file's last word, so that nothing keeps it from exiting */
export async function killLeftoverServers(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}

export interface NatsClusterOptions {
  clusterName?: string;
  /** the ports of the first attempt (client, route per server); later attempts pick free ones */
  ports?: Array<{ client: number; route: number }>;
  /** how many times to start the cluster, on fresh ports after a failed start (default 3) */
  attempts?: number;
}

/**
 * Start `size` routed servers. A port that was free when picked may be taken by another process
 * before its server binds it (tests run side by side; a foreign server on it never routes): then
 * the servers already started are killed and the cluster starts again on fresh ports. A start that
 * fails for good leaves no server running, so it cannot keep the test process alive.
 */
export async function startNatsCluster(size: number, opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    const ports = attempt === 1 && opts.ports ? opts.ports : await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })));
    try {
      return await startOnPorts(ports, opts.clusterName ?? 'conclave-nemesis');
    } catch (err) {
      if (attempt >= attempts) throw new Error(`the NATS cluster did not start in ${attempts} attempts: ${(err as Error).message}`, { cause: err });
    }
  }
}

async function startOnPorts(ports: Array<{ client: number; route: number }>, clusterName: string): Promise<NatsCluster> {
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const nodes = ports.map((p, i) => natsNode(`s${i + 1}`, p.client, p.route, routes, clusterName));
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    waitRouted: (timeoutMs = 30_000) => waitRouted(nodes, timeoutMs),
    stopAll: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  try {
    const started = await Promise.allSettled(nodes.map((n) => n.start()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await cluster.waitRouted();
    return cluster;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw err;
  }
}

function natsNode(name: string, port: number, routePort: number, routes: string, clusterName: string): NatsNode {
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';
  const url = `nats://127.0.0.1:${port}`;
  const signal = async (sig: NodeJS.Signals) => {
    if (child === null) return;
    const proc = child;
    proc.kill(sig);
    // a server that does not end on SIGTERM within a few seconds is killed: stopping never hangs
    const force = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(force);
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
      if (child === null) {
        throw new Error(`nats-server ${name} exited at start:\n${stderr}`);
      }
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
