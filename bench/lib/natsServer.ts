// A nats-server on a free loopback port for the bench (the bench's own copy of the test helper,
// wired to the bench's cleanup registry).
import { spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { trackChild } from './cleanup.ts';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';

export interface NatsServer {
  url: string;
  version: string;
  pid: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not allocate a free port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

export async function startNatsServer(): Promise<NatsServer> {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`${BINARY} is not installed or not runnable (apt-get install -y nats-server, or set NATS_SERVER_BIN)`);
  }
  const version = probe.stdout.trim();
  const port = await freePort();
  const child = spawn(BINARY, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 5000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nats-server exited at start: ${stderr.trim()}`);
    if (Date.now() > deadline) throw new Error(`nats-server did not accept connections on port ${port} within 5 s: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    version,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
