// The package as a user gets it: `npm pack`, then `npm install ./conclave-<version>.tgz` into a plain
// JavaScript ESM project and into a TypeScript project (tsc against the shipped types), each of
// which runs a controller on the in-process bus; `npx conclave` from the installed package; the
// examples against the build. Installing the tarball's dependencies needs the npm registry (or its
// cache: --prefer-offline).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type CliResult, ROOT, runProgram, waitUntil } from '../helpers/cli.ts';
import { startNatsServer } from '../helpers/natsServer.ts';
import { tmpDirs } from '../helpers/tmp.ts';

const tmp = tmpDirs('conclave-package-');
after(() => tmp.cleanup());

/** A user's shell: no test-runner variables, and not the suite's `conclave-source` condition. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CONCLAVE_LOG_LEVEL: 'warn' };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key]; // set by `npm test`
  return env;
}

async function run(command: string, args: string[], cwd: string, timeoutMs = 480_000): Promise<CliResult> {
  const label = `${command} ${args.join(' ')} (in ${cwd})`;
  const started = performance.now();
  const r = await runProgram(command, args, { cwd, env: userEnv(), timeoutMs, label });
  process.stderr.write(`# ${label}: exit ${r.code} after ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  assert.equal(r.code, 0, `${label} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  return r;
}

const NPM_INSTALL = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

// What both projects run: a controller on the in-process bus — init, put, read, stop — and the
// inspector page served from the installed package.
const APP_JS = `import { createInProcessBus, startController, startInspectorForController } from 'conclave';

const ctrl = await startController({ name: 'app1', dataDir: process.argv[2], transport: { bus: createInProcessBus() } });
const clusterId = await ctrl.init();
await ctrl.waitForLeader();
await ctrl.propose({ op: 'put', key: 'color', value: 'blue' });
const read = await ctrl.read({ op: 'get', key: 'color' });
const inspector = await startInspectorForController(ctrl, { listen: '127.0.0.1:0' });
const page = {};
for (const path of ['/', '/app.js', '/charts.js', '/model.js', '/style.css', '/vendor/elk.bundled.js']) {
  page[path] = (await fetch(new URL(path, inspector.url))).status;
}
await inspector.stop();
const phase = ctrl.status().phase;
await ctrl.stop();
console.log(JSON.stringify({ clusterId, read, phase, page }));
`;

const APP_TS = `import { type Controller, type KvResult, createInProcessBus, startController } from 'conclave';
import { ledgerExample } from './snippets/host-state.js';

const ctrl: Controller = await startController({ name: 'app1', dataDir: process.argv[2]!, transport: { bus: createInProcessBus() } });
// the shipped types are real types, not \`any\`: a wrong option is a compile error
// @ts-expect-error name must be a string
void (() => startController({ name: 42, dataDir: 'x' }));
const clusterId: string = await ctrl.init();
await ctrl.waitForLeader();
await ctrl.propose({ op: 'put', key: 'color', value: 'blue' });
const read = (await ctrl.read({ op: 'get', key: 'color' })) as KvResult;
const phase: string = ctrl.status().phase;
await ctrl.stop();
const ledger = await ledgerExample(\`\${process.argv[2]}-ledger\`);
console.log(JSON.stringify({ clusterId, read, phase, ledger }));
`;

// The same store opened a second time, by a new process: an existing store is checked at open
// (runtime/store/files.ts runs verify-child.mjs in a child process), a new one is not.
const REOPEN_JS = `import { createInProcessBus, startController } from 'conclave';

const [dataDir, step] = process.argv.slice(2);
const ctrl = await startController({ name: 'app1', dataDir, transport: { bus: createInProcessBus() } });
if (step === 'first') {
  await ctrl.init();
  await ctrl.waitForLeader();
  await ctrl.propose({ op: 'put', key: 'color', value: 'green' });
} else {
  await ctrl.waitForLeader();
}
const read = await ctrl.read({ op: 'get', key: 'color' });
await ctrl.stop();
console.log(JSON.stringify({ step, read }));
`;

/** `node --import ./trace-loads.mjs …` appends every module URL it resolves to $TRACE_LOADS_FILE */
const TRACE_LOADS = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(
  "import { appendFileSync } from 'node:fs'; export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.TRACE_LOADS_FILE, r.url + '\\\\n'); return r; }",
));
`;

/** `conclave run` from the installed package (node_modules/.bin/conclave, what npx runs), output kept */
function startInstalledRun(t: TestContext, dir: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, [join(dir, 'node_modules/.bin/conclave'), 'run', ...args], { cwd: dir, env: { ...userEnv(), CONCLAVE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => void child.kill('SIGKILL'));
  return { child, output: () => output, exited };
}

function checkRun(out: string): { clusterId: string; read: unknown; phase: string } & Record<string, unknown> {
  const result = JSON.parse(out.trim().split('\n').at(-1)!);
  assert.match(result.clusterId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(result.read, { key: 'color', found: true, value: 'blue' });
  assert.equal(result.phase, 'member');
  return result;
}

describe('the package, installed from its tarball', { timeout: 30 * 60_000 }, () => {
  let packed: string[] = [];
  const jsProject = tmp.make();
  const tsProject = tmp.make();

  before(async () => {
    // `npm pack` runs `prepare`: a fresh build of dist/
    const dest = tmp.make();
    const r = await run('npm', ['pack', '--json', '--pack-destination', dest], ROOT, 600_000);
    const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
    const tarball = join(dest, info.filename);
    packed = info.files.map((f) => f.path);

    writeFileSync(join(jsProject, 'package.json'), JSON.stringify({ name: 'js-host', private: true, type: 'module' }));
    writeFileSync(join(tsProject, 'package.json'), JSON.stringify({ name: 'ts-host', private: true, type: 'module' }));
    const versions = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies;
    // the two installs at once: they wait on the same cache and registry more than on the CPU
    await Promise.all([
      run('npm', [...NPM_INSTALL, tarball], jsProject),
      run('npm', [...NPM_INSTALL, tarball, `typescript@${versions.typescript}`, `@types/node@${versions['@types/node']}`], tsProject),
    ]);
  });

  it('holds the build with its types and source maps, the CLI, the inspector page, README and LICENSE — not the tests or the TypeScript source', () => {
    for (const file of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/conclave.js',
      'bin/sourceMapStacks.js',
      'bin/runBundle.js',
      'dist/runtime/index.js',
      'dist/runtime/index.d.ts',
      'dist/runtime/index.js.map',
      'dist/cli/main.js',
      'dist/cli/main.js.map',
      'dist/cli/verify-child.mjs',
      'dist/cli/run.cjs',
      'dist/cli/run.cjs.map',
      'dist/cli/run.cjs.cache',
      'dist/cli/page/index.html',
      'dist/machines/raft/core.js',
      'dist/actors/member.js',
      'dist/runtime/inspect/page/index.html',
      'dist/runtime/inspect/page/app.js',
      'dist/runtime/inspect/page/style.css',
    ]) {
      assert.ok(packed.includes(file), `${file} is not in the tarball`);
    }
    const unexpected = packed.filter((f) => /^(test|bench|examples|scripts)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
    assert.deepEqual(unexpected, []);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    assert.equal(manifest.dependencies.tsx, undefined, 'tsx is for development only');
  });

  it('a plain JavaScript ESM project: import, run a controller, serve the inspector page; npx conclave', async () => {
    const dir = jsProject;
    writeFileSync(join(dir, 'app.js'), APP_JS);

    const result = checkRun((await run(process.execPath, ['app.js', join(dir, 'data')], dir)).stdout);
    assert.deepEqual(result.page, { '/': 200, '/app.js': 200, '/charts.js': 200, '/model.js': 200, '/style.css': 200, '/vendor/elk.bundled.js': 200 });

    const help = await run('npx', ['conclave', '--help'], dir);
    assert.match(help.stdout, /^Usage: conclave/m);
    const chart = await run('npx', ['conclave', 'machines', 'export', 'bootstrap'], dir);
    assert.match(chart.stdout, /^stateDiagram-v2\n/);
    assert.match(chart.stdout, /uninitialized --> bootstrapping : INIT \[mayInit\]/);

    // a client command loads what it uses: no zod, store, raft or logger (README, "The CLI's start-up")
    writeFileSync(join(dir, 'trace-loads.mjs'), TRACE_LOADS);
    const loads = join(dir, 'loads.txt');
    const status = await runProgram(process.execPath, ['--import', './trace-loads.mjs', 'node_modules/.bin/conclave', 'status', '--node', 'n1', '--nats', 'nats://127.0.0.1:1'], {
      cwd: dir,
      env: { ...userEnv(), TRACE_LOADS_FILE: loads },
      timeoutMs: 120_000,
      label: 'conclave status (nothing listening)',
    });
    assert.equal(status.code, 3, status.stderr);
    const loaded = [...new Set(readFileSync(loads, 'utf8').split('\n').filter((u) => u.startsWith('file://')))];
    // the CLI is one bundle (scripts/build.mjs): commander and nats are inside it, no package is loaded apart
    const packages = new Set(loaded.flatMap((u) => [...u.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1]!)));
    assert.deepEqual([...packages].filter((p) => p !== 'conclave'), []);
    // what the loaded files of the bundle hold: the sources their source maps list
    const bundled = new Set(
      loaded
        .filter((u) => u.includes('/node_modules/conclave/dist/cli/'))
        .flatMap((u) => (JSON.parse(readFileSync(new URL(`${u}.map`), 'utf8')) as { sources: string[] }).sources.map((f) => f.replace(/^(\.\.\/)+/, ''))),
    );
    const inside = (prefix: string) => [...bundled].filter((f) => f.startsWith(prefix));
    assert.ok(inside('node_modules/nats/').length > 0 && inside('node_modules/commander/').length > 0, `the bundle's loaded files hold ${[...bundled].join(', ')}`);
    for (const unwanted of ['node_modules/zod/', 'node_modules/xstate/', 'runtime/store/', 'machines/raft/', 'runtime/log/']) {
      assert.deepEqual(inside(unwanted), [], `conclave status loaded ${unwanted}`);
    }

    // with source maps on, a stack trace names the TypeScript line
    const stack = await run(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', "import { conclaveError } from 'conclave'; console.log(conclaveError('USAGE', 'x').stack)"], dir);
    assert.match(stack.stdout, /runtime\/errors\.ts:\d+:\d+/);
    // and without the flag, as `conclave run` prints it: each map read when a stack goes through its module
    const lazy = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { pathToFileURL } from 'node:url'; const pkg = pathToFileURL(process.cwd() + '/node_modules/conclave/'); " +
          "const { installLazySourceMaps } = await import(new URL('bin/sourceMapStacks.js', pkg)); installLazySourceMaps(new URL('dist/', pkg)); " +
          "const { conclaveError } = await import('conclave'); console.log(conclaveError('USAGE', 'x').stack)",
      ],
      dir,
    );
    assert.match(lazy.stdout, /^UsageError: x\n {4}at conclaveError \(\/.*\/runtime\/errors\.ts:\d+:\d+\)$/m);
    // `conclave run` compiles dist/cli/run.cjs with the code cache the build made: this node takes it
    // (bin/runBundle.js; CONCLAVE_CLI_IN_PROCESS: load the CLI without running a command)
    const cache = await runProgram(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { pathToFileURL } from 'node:url'; const pkg = pathToFileURL(process.cwd() + '/node_modules/conclave/'); " +
          "const { loadRunBundle } = await import(new URL('bin/runBundle.js', pkg)); console.log(loadRunBundle(new URL('dist/cli/', pkg)).cache)",
      ],
      { cwd: dir, env: { ...userEnv(), CONCLAVE_CLI_IN_PROCESS: '1' }, label: 'load the installed run.cjs with its code cache' },
    );
    assert.equal(cache.code, 0, cache.stderr);
    assert.equal(cache.stdout.trim(), 'accepted');
  });

  it('restarts on its existing store: the embedding API and `conclave run` reopen the data dir and read the value back', async (t) => {
    const dir = jsProject;
    writeFileSync(join(dir, 'reopen.js'), REOPEN_JS);
    const dataDir = join(dir, 'reopen-data');
    const first = JSON.parse((await run(process.execPath, ['reopen.js', dataDir, 'first'], dir)).stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(first.read, { key: 'color', found: true, value: 'green' });
    const again = JSON.parse((await run(process.execPath, ['reopen.js', dataDir, 'again'], dir)).stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(again.read, { key: 'color', found: true, value: 'green' });

    // the same with the installed CLI over a real nats-server: an operator key, run, init, put, stop; run again, get
    const nats = await startNatsServer();
    t.after(() => nats.stop());
    const opsKey = join(dir, 'ops.key');
    writeFileSync(join(dir, 'ops.pub'), (await run('npx', ['conclave', 'operator', 'keygen', '--out', opsKey], dir)).stdout);
    const runArgs = ['--name', 'pkg1', '--data-dir', join(dir, 'run-data'), '--nats', nats.url, '--prefix', 'pkgtest', '--operators', join(dir, 'ops.pub')];
    const cli = (...args: string[]) => run('npx', ['conclave', ...args, '--nats', nats.url, '--prefix', 'pkgtest', '--timeout', '30000', '--operator-key', opsKey], dir);
    for (const step of ['first', 'again'] as const) {
      const node = startInstalledRun(t, dir, runArgs);
      await waitUntil(() => /controller \S+ is running/.test(node.output()) || node.child.exitCode !== null, {
        timeoutMs: 120_000,
        what: `the installed \`conclave run\` (${step} start) to print "is running"`,
        context: node.output,
      });
      assert.equal(node.child.exitCode, null, `the installed \`conclave run\` (${step} start) exited ${node.child.exitCode}:\n${node.output()}`);
      if (step === 'first') {
        await cli('init', '--node', 'pkg1');
        await cli('kv', 'put', 'color', 'green', '--via', 'pkg1');
      }
      const got = await cli('kv', 'get', 'color', '--via', 'pkg1');
      assert.equal(got.stdout.trim(), 'green');
      node.child.kill('SIGTERM');
      assert.equal(await node.exited, 0, `\`conclave run\` did not stop cleanly on SIGTERM:\n${node.output()}`);
    }
  });

  it('a TypeScript project: tsc --noEmit against the shipped types (the README snippets too), then run', async () => {
    const dir = tsProject;
    const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], outDir: 'out', skipLibCheck: true };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts', 'snippets'] }));
    writeFileSync(join(dir, 'app.ts'), APP_TS);
    cpSync(join(ROOT, 'test/examples/snippets'), join(dir, 'snippets'), { recursive: true });

    await run('npx', ['tsc', '--noEmit', '-p', '.'], dir);
    await run('npx', ['tsc', '-p', '.', '--noCheck'], dir); // checked just above: now only emit, to run it
    const result = checkRun((await run(process.execPath, ['out/app.js', join(dir, 'data')], dir)).stdout);
    assert.deepEqual(result.ledger, { deposited: { balance: 100 }, refused: { error: 'insufficient funds' }, balance: 100 });
  });

  it('the examples import the package by name and run against the build', async () => {
    // without the test suite's `conclave-source` condition, `conclave` is dist/ (built by the pack above)
    const resolved = await run(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('conclave'))"], ROOT);
    assert.equal(resolved.stdout.trim(), `file://${join(ROOT, 'dist/runtime/index.js')}`);
    const r = await run(process.execPath, ['--import', 'tsx', 'examples/in-process/main.ts'], ROOT);
    assert.match(r.stdout, /stopped cleanly/);
  });
});
