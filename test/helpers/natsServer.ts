// Starts a real nats-server for tests on a free loopback port, and makes sure none is leaked.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const READY_TIMEOUT_MS = 5000;
const STDERR_LINES = 20;

let installed: boolean | undefined;

function isInstalled(): boolean {
  if (installed === undefined) {
    const r = spawnSync(BINARY, ['--version'], { stdio: 'ignore' });
    installed = r.error === undefined && r.status === 0;
  }
  return installed;
}

/**
 * A skip message when nats-server is missing on a developer machine; false when it is installed,
 * and also false in CI so that startNatsServer fails loudly instead of the tests silently skipping.
 */
export function natsServerSkipReason(): string | false {
  if (isInstalled() || process.env.CI === 'true') return false;
  return 'nats-server not installed (apt-get install nats-server); skipping NATS tests';
}

/** a port that was free a moment ago (the OS picks it; racy only against other processes) */
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

export interface NatsServerHandle {
  url: string;
  port: number;
  /** SIGTERM, then SIGKILL if it has not exited within 2 s */
  stop(): Promise<void>;
  /** SIGKILL at once (simulates a crash); call stop() afterwards to reap it and remove its store */
  kill(): void;
}

const live = new Set<ChildProcess>();
const storeDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const reap = () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of storeDirs) rmSync(dir, { recursive: true, force: true });
  };
  // 'exit' handlers must be synchronous: a SIGKILL is all we can do there
  process.on('exit', reap);
  // a signal skips 'exit': reap, then re-raise so the process still dies the default way
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      reap();
      process.kill(process.pid, sig);
    });
  }
}

function tryConnect(port: number): Promise<boolean> {
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

/**
 * `maxPayload`: the server's max_payload in bytes (default nats-server's 1 MiB), set through a config file;
 * `port`: restart a server on the port a stopped one had (its clients reconnect to the same URL)
 * `config`: more nats-server configuration (e.g. an authorization block), appended to that file
 */
export async function startNatsServer(opts: { jetstream?: boolean; maxPayload?: number; port?: number; config?: string } = {}): Promise<NatsServerHandle> {
  if (!isInstalled()) {
    throw new Error(`${BINARY} is not installed or not runnable (apt-get install nats-server)`);
  }
  const port = opts.port ?? (await freePort());
  const args = ['-a', '127.0.0.1', '-p', String(port)];
  let storeDir: string | undefined;
  if (opts.jetstream) {
    storeDir = mkdtempSync(join(tmpdir(), 'conclave-nats-js-'));
    storeDirs.add(storeDir);
    args.push('-js', '-sd', storeDir);
  }
  let configDir: string | undefined;
  if (opts.maxPayload !== undefined || opts.config !== undefined) {
    configDir = mkdtempSync(join(tmpdir(), 'conclave-nats-conf-'));
    storeDirs.add(configDir);
    const lines = [opts.maxPayload === undefined ? '' : `max_payload: ${opts.maxPayload}`, opts.config ?? ''];
    writeFileSync(join(configDir, 'nats.conf'), `${lines.join('\n')}\n`);
    args.push('-c', join(configDir, 'nats.conf'));
  }
  const child = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  installExitHook();

  // nats-server logs to stderr: keep the tail for error messages, print nothing
  const tail: string[] = [];
  let partial = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > STDERR_LINES) tail.shift();
    }
  });
  const stderrTail = () => [...tail, partial].filter((l) => l.length > 0).join('\n');

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      live.delete(child);
      resolve();
    });
  });
  const cleanupStore = () => {
    for (const dir of [storeDir, configDir]) {
      if (!dir) continue;
      rmSync(dir, { recursive: true, force: true });
      storeDirs.delete(dir);
    }
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError || exited) {
      cleanupStore();
      const how = spawnError ? spawnError.message : `exited with code ${exited?.code} signal ${exited?.signal}`;
      throw new Error(`nats-server on port ${port} failed to start: ${how}\n${stderrTail()}`);
    }
    if (await tryConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exitPromise;
      cleanupStore();
      throw new Error(
        `nats-server on port ${port} did not accept connections within ${READY_TIMEOUT_MS} ms\n${stderrTail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  const stop = async (): Promise<void> => {
    if (!exited && !spawnError) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exitPromise;
      clearTimeout(timer);
    }
    cleanupStore();
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    kill: () => {
      if (!exited && !spawnError) child.kill('SIGKILL');
    },
  };
}
