// Example 2 (examples/multi-process) run as a user runs it: `npm run example:multi-process`. It must
// form a 3-voter cluster of three `conclave run` processes on a real nats-server through the real
// CLI, show the value written, and leave nothing running: neither at its end, nor after a Ctrl-C.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { baseEnv, ROOT, waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, natsServerSkipReason, startNatsServer } from '../helpers/natsServer.ts';

const UUID7 = '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}';
const skip = natsServerSkipReason();

class Run {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  /** `npm run example:multi-process`, or with `viaNpm` false the script itself (so its exit code is its own) */
  constructor(args: string[], env: NodeJS.ProcessEnv, viaNpm = true) {
    const [command, argv] = viaNpm
      ? ['npm', ['run', '--silent', 'example:multi-process', ...(args.length > 0 ? ['--', ...args] : [])]]
      : [process.execPath, ['--import', 'tsx', 'examples/multi-process/run.ts', ...args]];
    // its own process group, like a shell's foreground job: `kill -INT -pgid` is a terminal's Ctrl-C
    this.child = spawn(command, argv, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  output(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/**
 * After a failed assertion: the script's controllers and nats-server are detached (their own process
 * groups), so killing the script's group would leave them running. SIGTERM makes the script stop
 * them; whatever is still alive after that is killed by pid.
 */
async function stopLeftovers(run: Run): Promise<void> {
  if (!run.running) return;
  process.kill(run.child.pid!, 'SIGTERM');
  const stopped = await Promise.race([run.exited.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 40_000).unref())]);
  if (!stopped) process.kill(-run.child.pid!, 'SIGKILL');
  const pids = [...run.stdout.matchAll(/(?:ctrl\d|nats-server) is running \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** what every successful run prints: the CLI steps, 3 voters, one leader, the value read back */
function checkTour(run: Run): { pids: number[] } {
  const out = run.stdout;
  const clusterId = new RegExp(`\\$ npx conclave init --node ctrl1\\n\\s+(${UUID7})\\n`).exec(out)?.[1];
  assert.ok(clusterId, `init printed the new cluster id:\n${run.output()}`);
  assert.match(out, /phase:\s+uninitialized/, 'the controllers start blank');
  assert.match(out, /\$ npx conclave cluster add ctrl2 --via ctrl1\n\s+added ctrl2 \(node [0-9a-f-]+\) as a voter/);
  assert.match(out, /\$ npx conclave cluster add ctrl3 --via ctrl1\n\s+added ctrl3 \(node [0-9a-f-]+\) as a voter/);
  assert.match(out, /\$ npx conclave kv get greeting --via ctrl3\n\s+hello from three processes\n/);
  for (const name of ['ctrl1', 'ctrl2', 'ctrl3']) assert.match(out, new RegExp(`${name}\\s+voter\\s+reachable`));
  assert.match(out, new RegExp(`=> 3 voters, 1 leader \\(ctrl[123]\\), cluster ${clusterId}\\n`));
  const pids = [...out.matchAll(/ctrl\d is running \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 3, 'three controller processes');
  return { pids };
}

describe('examples/multi-process', { skip }, () => {
  let nats: NatsServerHandle;
  before(async () => {
    nats = await startNatsServer();
  });
  after(async () => {
    await nats?.stop();
  });

  it('on the server NATS_URL names: forms the cluster through the CLI, then stops every controller (exit 0)', async () => {
    const run = new Run([], baseEnv({ NATS_URL: nats.url }));
    const code = await run.exited;
    assert.equal(code, 0, run.output());
    assert.match(run.stdout, new RegExp(`NATS: using ${nats.url} \\(from NATS_URL\\)`));
    assert.doesNotMatch(run.stdout, /starting nats-server/);
    const { pids } = checkTour(run);
    for (const name of ['ctrl1', 'ctrl2', 'ctrl3']) assert.match(run.stdout, new RegExp(`${name} exited with code 0`));
    for (const pid of pids) assert.ok(!alive(pid), `controller pid ${pid} is gone`);
    assert.match(run.stdout, /everything stopped; working folder removed\.\n$/);
  });

  it('without NATS_URL it starts nats-server itself; --keep-running waits, and Ctrl-C stops controllers, then nats-server', async () => {
    // the script itself in a process group of its own: a terminal's Ctrl-C reaches it, not its (detached) children
    const run = new Run(['--keep-running'], baseEnv({ NATS_URL: undefined }), false);
    try {
      await waitUntil(() => /Press Ctrl-C to stop everything/.test(run.stdout) || !run.running, {
        what: 'the example to form its cluster',
        timeoutMs: 90_000,
        context: () => run.output(),
      });
      assert.ok(run.running, `still running, waiting for Ctrl-C\n${run.output()}`);
      const { pids } = checkTour(run);
      const port = Number(/NATS: starting nats-server: v[\d.]+ on nats:\/\/127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
      assert.ok(port > 0, run.output());
      assert.ok(await listening(port), 'its nats-server is up while the cluster runs');
      process.kill(-run.child.pid!, 'SIGINT'); // Ctrl-C: the whole foreground job
      const code = await run.exited;
      assert.equal(code, 130, `interrupted: exit 130\n${run.output()}`);
      for (const name of ['ctrl1', 'ctrl2', 'ctrl3']) assert.match(run.stdout, new RegExp(`${name} exited with code 0`), run.output());
      assert.match(run.stdout, /ctrl\d exited with code 0\n {2}nats-server exited with code 0\n/, 'nats-server is stopped after the controllers');
      for (const pid of pids) assert.ok(!alive(pid), `controller pid ${pid} is gone`);
      assert.equal(await listening(port), false, 'nats-server is gone');
    } finally {
      await stopLeftovers(run);
    }
  });
});

describe('examples/multi-process without a NATS server', () => {
  it('explains how to install nats-server or point NATS_URL at one (exit 2)', async () => {
    const run = new Run([], baseEnv({ NATS_URL: undefined, NATS_SERVER_BIN: '/nonexistent/nats-server' }));
    assert.equal(await run.exited, 2, run.output());
    assert.match(run.stderr, /error: this example needs a NATS server, and nats-server is not installed/);
    assert.match(run.stderr, /apt-get install nats-server/);
    assert.match(run.stderr, /github\.com\/nats-io\/nats-server\/releases/);
    assert.match(run.stderr, /NATS_URL=nats:\/\/HOST:4222 npm run example:multi-process/);
    assert.doesNotMatch(run.stdout, /\$ npx conclave/, 'nothing was started');
  });
});
