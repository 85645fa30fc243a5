// Example 2 — one process per controller on a real nats-server, driven through the real CLI.
//
//   npm run example:multi-process                  # start, form a cluster, write, list, stop
//   npm run example:multi-process -- --keep-running  # … and keep it running until Ctrl-C
//
// It uses the NATS server NATS_URL names, or starts nats-server (if installed) on a free loopback
// port; makes an operator key (`conclave operator keygen`); writes one JSON config file per
// controller, listing that key, to a temporary folder; starts three `conclave run --config FILE`
// processes; then runs `conclave status`, `init`, `cluster add`,
// `kv put`/`kv get` and `cluster list` exactly as an operator would, printing each command and its
// output. At the end, or on Ctrl-C, every controller gets SIGINT (graceful: leadership is handed
// over, stores are closed), the script waits for each to exit, then stops nats-server.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const CONCLAVE = fileURLToPath(new URL('../../bin/conclave.js', import.meta.url));
const NATS_SERVER = process.env.NATS_SERVER_BIN ?? 'nats-server';
const NAMES = ['ctrl1', 'ctrl2', 'ctrl3'] as const;
/** how long a controller may take to start (tsx compiles the code on first start) */
const START_TIMEOUT_MS = 60_000;
/** how long one `conclave …` command may take before it is killed (each has deadlines of its own, far shorter) */
const COMMAND_TIMEOUT_MS = 60_000;
/** how long a controller may take to stop after SIGINT before it is killed */
const STOP_TIMEOUT_MS = 15_000;

const { values: flags } = parseArgs({ options: { 'keep-running': { type: 'boolean', default: false } } });

const say = (line = '') => process.stdout.write(`${line}\n`);
const indent = (text: string) => text.trimEnd().replace(/^/gm, '    ');

class Interrupted extends Error {}

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** everything it wrote to stderr (its pino log), also kept in a file */
  log: string;
  logFile: string;
}

const procs: Proc[] = [];
let natsServer: Proc | null = null;
let interrupted = false;
let onInterrupt: (() => void) | null = null;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Start a long-running child in its own process group: a Ctrl-C in the terminal reaches this script
 * only, and the script stops the children in the right order (controllers first, NATS last).
 */
function startProcess(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Proc {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const file = createWriteStream(logFile);
  const proc: Proc = {
    name,
    child,
    log: '',
    logFile,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        proc.log += `\n${err.message}`;
        resolve({ code: null, signal: null });
      });
    }),
  };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    proc.log += chunk;
    file.write(chunk);
  });
  child.once('exit', () => file.end());
  return proc;
}

function running(proc: Proc): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null && proc.child.pid !== undefined;
}

/** wait until `check` holds; fail if the process exits first, or on Ctrl-C */
async function waitFor(what: string, proc: Proc, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (interrupted) throw new Interrupted();
    if (!running(proc)) throw new Error(`${proc.name} exited before ${what}; its log (${proc.logFile}):\n${indent(proc.log.split('\n').slice(-15).join('\n'))}`);
    if (Date.now() > deadline) throw new Error(`${proc.name}: no ${what} within ${timeoutMs} ms; its log: ${proc.logFile}`);
    await sleep(50);
  }
}

/** Run one `conclave …` command the way an operator would; print it and what it printed. */
async function conclave(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  if (interrupted) throw new Interrupted();
  say(`$ npx conclave ${args.map((a) => (/^[\w./:,-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`);
  const child = spawn(process.execPath, [CONCLAVE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, COMMAND_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (interrupted) throw new Interrupted(); // a Ctrl-C in the terminal reaches this command too
  if (stdout.trim()) say(indent(stdout));
  if (hung) throw new Error(`\`conclave ${args.join(' ')}\` did not exit within ${COMMAND_TIMEOUT_MS} ms (killed); it printed ${stdout.length} bytes to stdout and: ${stderr.trim() || 'nothing to stderr'}`);
  if (code !== 0) throw new Error(`\`conclave ${args.join(' ')}\` exited with ${code}: ${stderr.trim()}`);
  return stdout;
}

/** SIGINT each controller, wait for every exit, then stop nats-server; returns false if one failed */
async function stopEverything(): Promise<boolean> {
  let clean = true;
  const live = procs.filter(running);
  if (live.length > 0) say(`stopping ${live.map((p) => p.name).join(', ')} with SIGINT (graceful: leadership handed over, stores closed)…`);
  await Promise.all(
    live.map(async (proc) => {
      proc.child.kill('SIGINT');
      const timer = setTimeout(() => {
        say(`  ${proc.name} did not stop within ${STOP_TIMEOUT_MS} ms: SIGKILL`);
        proc.child.kill('SIGKILL');
      }, STOP_TIMEOUT_MS);
      const { code, signal } = await proc.exited;
      clearTimeout(timer);
      say(`  ${proc.name} exited with ${signal ?? `code ${code}`}`);
      if (code !== 0) clean = false;
    }),
  );
  if (natsServer && running(natsServer)) {
    natsServer.child.kill('SIGINT'); // nats-server exits 0 on SIGINT (1 on SIGTERM)
    const { code, signal } = await natsServer.exited;
    say(`  nats-server exited with ${signal ?? `code ${code}`}`);
    if (code !== 0) clean = false;
  }
  return clean;
}

// a crash of this script must not leave controllers or nats-server behind (they are detached)
process.on('exit', () => {
  for (const proc of [...procs, ...(natsServer ? [natsServer] : [])]) if (running(proc)) proc.child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      say('second signal: killing everything now');
      process.exit(130);
    }
    interrupted = true;
    say(`\n${signal}: stopping everything (press Ctrl-C again to kill at once)`);
    onInterrupt?.();
  });
}

let workDir = '';
let keptWorkDir = false;

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-example-'));
  workDir = dir;
  const prefix = `example-${randomBytes(4).toString('hex')}`;
  say('Conclave example: multi-process — one `conclave run` process per controller on a real NATS server');
  say(`working folder (configs, data, logs): ${dir}`);
  try {
    // 1. a NATS server
    let natsUrl = process.env.NATS_URL;
    if (natsUrl) {
      say(`NATS: using ${natsUrl} (from NATS_URL)`);
    } else {
      const installed = spawnSync(NATS_SERVER, ['--version'], { encoding: 'utf8' });
      if (installed.error || installed.status !== 0) {
        process.stderr.write(
          [
            'error: this example needs a NATS server, and nats-server is not installed (or not on PATH).',
            '  Install it:    sudo apt-get install nats-server        (Debian/Ubuntu)',
            '                 or download a release from https://github.com/nats-io/nats-server/releases',
            '                 or run it in Docker: docker run -p 4222:4222 nats',
            '  Or point the example at a running server:   NATS_URL=nats://HOST:4222 npm run example:multi-process',
            '',
          ].join('\n'),
        );
        return 2;
      }
      const port = await freePort();
      natsUrl = `nats://127.0.0.1:${port}`;
      say(`NATS: starting ${installed.stdout.trim()} on ${natsUrl}`);
      say(`$ nats-server -a 127.0.0.1 -p ${port} &`);
      natsServer = startProcess('nats-server', NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], process.env, join(dir, 'nats-server.log'));
      const server = natsServer;
      await waitFor('"Server is ready"', server, () => /Server is ready/.test(server.log), 10_000);
      say(`   nats-server is running (pid ${server.child.pid}), log in ${server.logFile}`);
    }
    // every command below talks to that server under a prefix of its own (nothing else on it is touched)
    const opsKey = join(dir, 'ops.key');
    const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: natsUrl, CONCLAVE_PREFIX: prefix, CONCLAVE_OPERATOR_KEY: opsKey };
    say(`$ export NATS_URL=${natsUrl} CONCLAVE_PREFIX=${prefix} CONCLAVE_OPERATOR_KEY=${opsKey}`);
    say();

    // 2. the operator's key: over NATS a controller takes a change only signed by a key it lists
    say('0. an operator key: the CLI signs every change with it (CONCLAVE_OPERATOR_KEY), the controllers list its public half');
    const publicKey = (await conclave(['operator', 'keygen', '--out', opsKey], env)).trim();
    writeFileSync(join(dir, 'ops.pub'), `${publicKey}\n`);
    say(`   (saved to ${join(dir, 'ops.pub')})`);
    say();

    // 3. three controllers, each from its own config file, each its own process
    say('1. three blank controllers, one process each, configured by JSON files:');
    for (const name of NAMES) {
      const config = {
        name,
        dataDir: `./${name}-data`,
        prefix,
        nats: { servers: natsUrl },
        log: { level: 'info' },
        raft: { heartbeatMs: 50, electionTimeoutMs: 500 },
        operators: { keysFile: './ops.pub' },
      };
      const file = join(dir, `${name}.json`);
      writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
      if (name === 'ctrl1') say(`   ${file}: ${JSON.stringify(config)}`);
    }
    for (const name of NAMES) {
      const file = join(dir, `${name}.json`);
      say(`$ npx conclave run --config ${file} 2> ${join(dir, `${name}.log`)} &`);
      const proc = startProcess(name, process.execPath, [CONCLAVE, 'run', '--config', file], env, join(dir, `${name}.log`));
      procs.push(proc);
    }
    for (const proc of procs) {
      await waitFor('"is running" in its log', proc, () => new RegExp(`controller ${proc.name} is running`).test(proc.log), START_TIMEOUT_MS);
      say(`   ${proc.name} is running (pid ${proc.child.pid}), log in ${proc.logFile}`);
    }
    await conclave(['status', '--node', 'ctrl1'], env);
    say();

    // 4. explicit initialization, then the cluster adds the others
    say('2. explicit initialization: ctrl1 bootstraps a one-member cluster with a fresh UUID');
    await conclave(['init', '--node', 'ctrl1'], env);
    say('3. the cluster adds ctrl2 and ctrl3 (each enters as a learner, catches up, is promoted to voter)');
    await conclave(['cluster', 'add', 'ctrl2', '--via', 'ctrl1'], env);
    await conclave(['cluster', 'add', 'ctrl3', '--via', 'ctrl1'], env);
    say('4. a write through one member, a linearizable read through another');
    await conclave(['kv', 'put', 'greeting', 'hello from three processes', '--via', 'ctrl2'], env);
    await conclave(['kv', 'get', 'greeting', '--via', 'ctrl3'], env);
    say('5. the membership, as every member sees it');
    await conclave(['cluster', 'list', '--via', 'ctrl3'], env);
    const list = JSON.parse(await conclave(['cluster', 'list', '--via', 'ctrl1', '--json'], env)) as {
      clusterId: string;
      leader: string | null;
      members: Array<{ name: string; voter: boolean; leader: boolean }>;
    };
    const voters = list.members.filter((m) => m.voter).length;
    const leaders = list.members.filter((m) => m.leader).length;
    say(`=> ${voters} voters, ${leaders} leader (${list.leader}), cluster ${list.clusterId}`);
    say();

    if (flags['keep-running']) {
      say('The cluster keeps running. From another terminal, with the same environment:');
      say(`  export NATS_URL=${natsUrl} CONCLAVE_PREFIX=${prefix} CONCLAVE_OPERATOR_KEY=${opsKey}`);
      say('  npx conclave cluster list --via ctrl2; npx conclave kv get greeting --via ctrl1');
      say(`  kill -INT ${procs[0]!.child.pid}   # stop ctrl1: the others elect a new leader`);
      say('Press Ctrl-C to stop everything.');
      await new Promise<void>((resolve) => {
        onInterrupt = resolve;
        if (interrupted) resolve();
      });
    }
    return (await stopEverything()) ? (interrupted ? 130 : 0) : 1;
  } catch (err) {
    if (err instanceof Interrupted) {
      await stopEverything();
      rmSync(dir, { recursive: true, force: true });
      return 130;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    await stopEverything();
    keptWorkDir = true; // the logs say what went wrong
    return 1;
  } finally {
    if (!keptWorkDir) rmSync(dir, { recursive: true, force: true });
  }
}

const code = await main();
if (keptWorkDir) say(`stopped, with errors (see above); configs and logs kept in ${workDir}`);
else if (procs.length > 0 || natsServer !== null) say('everything stopped; working folder removed.');
process.exitCode = code;
