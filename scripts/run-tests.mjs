#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in runner. Node 20 does not expand globs, and a
// bare `node --test` silently finds no .ts files, so we list them ourselves and fail on none.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

function walk(dir, keep) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'artifacts') continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full, keep));
    else if (keep(name)) out.push(relative(root, full));
  }
  return out;
}

let files = walk(join(root, 'test'), (name) => name.endsWith('.test.ts')).sort();
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('error: no test files found under test/ (expected **/*.test.ts); refusing to report a pass');
  process.exit(1);
}

/**
 * The tests start hundreds of CLI processes (`conclave run`, `status`, …). Through tsx each costs
 * ≈0.6 s of CPU before it does anything; from JavaScript, a fraction of that. So this run first
 * transpiles machines/, actors/ and runtime/ as they are now (with esbuild, the transpiler tsx itself
 * runs on) into a fresh folder, with source maps to the .ts files, and the helpers of
 * test/helpers/cli.ts start the CLI from it (CONCLAVE_TEST_JS). Under node_modules/ so that the
 * copy's imports of packages resolve; removed when the run ends. Never dist/: it may be older
 * than the source.
 */
async function transpileSource() {
  const cache = join(root, 'node_modules', '.cache', 'conclave-tests');
  mkdirSync(cache, { recursive: true });
  // a copy a day old is the leftover of a run that was killed (a run takes minutes)
  for (const name of readdirSync(cache)) {
    const old = join(cache, name);
    if (Date.now() - statSync(old).mtimeMs > 24 * 3600_000) rmSync(old, { recursive: true, force: true });
  }
  const out = mkdtempSync(join(cache, 'run-'));
  const sources = ['machines', 'actors', 'runtime'].flatMap((dir) => walk(join(root, dir), () => true));
  const isModule = (f) => f.endsWith('.ts') && !f.endsWith('.d.ts');
  const importOfJs = (a) => (a.kind === 'entry-point' ? undefined : { path: a.path.replace(/\.ts$/, '.js'), external: true });
  try {
    const esbuild = createRequire(createRequire(import.meta.url).resolve('tsx'))('esbuild'); // tsx's own
    await esbuild.build({
      absWorkingDir: root,
      entryPoints: sources.filter(isModule),
      outdir: out,
      outbase: root,
      // one output file per source file: "bundle" only so that the plugin sees every import, and
      // each import stays an import, of the .js file next to it
      bundle: true,
      packages: 'external',
      plugins: [{ name: 'each-file-apart', setup: (b) => b.onResolve({ filter: /^\.\.?\// }, importOfJs) }],
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: true,
      sourcesContent: false, // the .ts files are where the maps point
      logLevel: 'error', // prints what failed, with file and line
    });
  } catch (err) {
    rmSync(out, { recursive: true, force: true });
    const what = err.errors ? `${err.errors.length} error(s), shown above` : err.message;
    console.error(`error: could not transpile machines/, actors/ and runtime/ for the CLI processes the tests start (${what}); fix that and run again`);
    process.exit(1);
  }
  // what the modules read beside themselves: the inspector page, the store check's child script
  for (const f of sources.filter((f) => !f.endsWith('.ts'))) cpSync(join(root, f), join(out, f));
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n'); // no package scope inside node_modules/
  return out;
}

const jsTree = await transpileSource();
// Two files at once on the 2-core machines (node's own default would be one: cores − 1). A file that
// drives CLI processes keeps ≈0.5–0.9 of a core busy (measured), the rest is waiting on timers and
// the bus: two nearly fill the machine (26 such files took 110 s at three, 109–117 s at two), and a
// third only adds CPU contention for the raft timers when another job runs.
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// TAP when not on a terminal (CI): its closing lines are `# tests N`, `# pass N`, `# fail N`.
const reporter = process.stdout.isTTY ? 'spec' : 'tap';
// The tests, and every program they start (examples, the CLI), run the TypeScript source: the
// package's own name (`import … from 'conclave'`) resolves to runtime/index.ts under this condition
// (package.json `exports`), not to a dist/ build that may be older than the source.
// test/package/ checks the build itself, as a user installs it.
const env = {
  ...process.env,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --conditions=conclave-source`.trim(),
  CONCLAVE_TEST_JS: jsTree,
};
// --test-force-exit: a file whose tests have all ended exits even if something it started still
// holds its event loop (a server a failed test left behind); the helpers' 'exit' hooks then kill
// the processes it started. Without it one leak hangs the whole run with every test reported.
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, `--test-reporter=${reporter}`, ...files],
  { stdio: 'inherit', cwd: root, env },
);
child.on('exit', (code, signal) => {
  rmSync(jsTree, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
