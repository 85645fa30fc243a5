#!/usr/bin/env node
// `npm run build` (and `prepare`): compile machines/, actors/ and runtime/ to dist/ (JavaScript,
// declarations, source maps: the library that `import … from 'conclave'` loads) and copy what tsc
// does not: the inspector page, which server.js serves from ./page/, and the store check that
// files.js runs in a child process (verify-child.mjs, and walk.mjs which it and files.js run). Then bundle the CLI (bin/conclave.js runs it)
// into dist/cli/ with esbuild: a command loads a few files instead of ≈150 modules of dist/ and the
// pure-JavaScript packages' own (README, "The CLI's start-up").
import { spawnSync } from 'node:child_process';
import { cpSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
// Built beside dist/, at the same depth (the source maps' relative paths stay right), then put in its
// place in one rename: a `conclave` started from dist/ while a build runs (a test that packs the
// package beside one that runs the CLI) finds the old build or the new one, never half of either.
const dist = `${root}.dist-build-${process.pid}/`;
const finalDist = `${root}dist`;
process.on('exit', () => rmSync(dist, { recursive: true, force: true })); // a failed build leaves nothing behind
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const built = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`, '--outDir', dist], { stdio: 'inherit' });
if (built.status !== 0) {
  console.error('error: the TypeScript build failed (see above); fix it and run `npm run build` again');
  process.exit(built.status ?? 1);
}
// the page is plain JavaScript, HTML and CSS (no build step); its .d.ts files serve the tests only
cpSync(`${root}runtime/inspect/page/`, `${dist}runtime/inspect/page/`, {
  recursive: true,
  filter: (src) => !src.endsWith('.d.ts'),
});
// plain JavaScript run as `node verify-child.mjs DATA_DIR` next to files.js (runtime/store/files.ts),
// and the walk it runs (files.js runs it in-process too)
for (const f of ['verify-child.mjs', 'walk.mjs']) cpSync(`${root}runtime/store/${f}`, `${dist}runtime/store/${f}`);

// The CLI, bundled: one entry (runtime/cli/main.ts) and, with `splitting`, one chunk per set of modules
// that a command's dynamic import() brings in, so a command still loads only what it uses (a client
// command: commander and the nats client, no zod, store, raft or logger). The packages with native
// code or files of their own that they find at run time stay outside: lmdb (native; msgpackr comes
// with it), pino-pretty (loaded by require, for a terminal only), elkjs (its worker file, served by
// the inspector), prom-client (only for --metrics). pino is inside: its files of its own are the
// workers of pino.transport(), which Conclave does not use (it logs to fd 2 synchronously), and
// bundled it reaches "starting controller" ≈12 ms sooner (its ten CommonJS packages resolved and
// read one by one otherwise). Source maps point at the .ts lines (read lazily: bin/sourceMapStacks.js).
const cli = `${dist}cli/`;
// zod exports every locale it has (`z.locales`, ≈300 kB of the ≈1.4 MB a `conclave run` loads, parsed
// at each start); Conclave's messages are zod's English ones, which zod imports on its own
// (classic/external.js: config(en())). The bundle's `locales` namespace keeps English only.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'zod-english-only' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};
try {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'runtime/cli/main.ts' },
    outdir: cli,
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: ['lmdb', 'msgpackr', 'pino-pretty', 'elkjs', 'prom-client'],
    // the CommonJS packages inside (nats, commander) call require() for node's own modules
    banner: { js: "import { createRequire as __conclaveRequire } from 'node:module'; const require = __conclaveRequire(import.meta.url);" },
    sourcemap: true,
    sourcesContent: false,
    legalComments: 'eof', // the bundled packages' licence comments, kept at the end of each file
    // whitespace and syntax minified (≈6 ms less CPU per command, measured); names stay as written,
    // for stack frames and for pino's err.type
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'error', // prints what failed, with file and line
    plugins: [zodEnglishOnly],
  });
  // `conclave run`'s form of the same CLI: one CommonJS file (runtime/cli/runBundle.ts) that
  // bin/runBundle.js compiles with a V8 code cache, which node 20 has for scripts and not for ES
  // modules. Three controllers starting at once on two cores wait for each other's CPU, and the
  // cache takes ≈0.1 s of CPU off each start (README, "The CLI's start-up"). import() becomes
  // require() (the same modules, loaded when the command needs them, as in the chunks above).
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { run: 'runtime/cli/runBundle.ts' },
    outfile: `${cli}run.cjs`,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    supported: { 'dynamic-import': false },
    external: ['lmdb', 'msgpackr', 'pino-pretty', 'elkjs', 'prom-client'],
    // what the modules ask import.meta.url for (files beside them: verify-child.mjs, page/) is run.cjs's URL
    define: { 'import.meta.url': '__conclaveModuleUrl' },
    banner: { js: "const __conclaveModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    sourcemap: true,
    sourcesContent: false,
    legalComments: 'eof',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'error',
    plugins: [zodEnglishOnly],
  });
} catch (err) {
  const what = err.errors ? `${err.errors.length} error(s), shown above` : err.message;
  console.error(`error: bundling the CLI failed (${what}); fix it and run \`npm run build\` again`);
  process.exit(1);
}
// run.cjs's code cache, made in a process started as a `conclave run` starts (this node, no NODE_OPTIONS:
// V8 refuses a cache made under other flags) that loads the bundle without running a command
const makeCache =
  `import { writeFileSync } from 'node:fs'; import { makeRunCodeCache } from ${JSON.stringify(new URL('../bin/runBundle.js', import.meta.url).href)}; ` +
  `writeFileSync(${JSON.stringify(`${cli}run.cjs.cache`)}, await makeRunCodeCache(new URL(${JSON.stringify(pathToFileURL(cli).href)})));`;
const { NODE_OPTIONS: _notForTheCache, ...cacheEnv } = process.env;
const cached = spawnSync(process.execPath, ['--input-type=module', '-e', makeCache], { stdio: 'inherit', env: { ...cacheEnv, CONCLAVE_CLI_IN_PROCESS: '1' } });
if (cached.status !== 0) {
  console.error(`error: making the code cache of dist/cli/run.cjs failed (exit ${cached.status ?? cached.signal}, see above); fix it and run \`npm run build\` again`);
  process.exit(cached.status ?? 1);
}
// what the bundled modules find next to themselves (import.meta.url is now that of dist/cli/)
cpSync(`${root}runtime/inspect/page/`, `${cli}page/`, { recursive: true, filter: (src) => !src.endsWith('.d.ts') });
for (const f of ['verify-child.mjs', 'walk.mjs']) cpSync(`${root}runtime/store/${f}`, `${cli}${f}`);

// the new build in place of the old, two renames apart; then the old one goes (no stale output of a
// deleted or renamed module)
const old = `${root}.dist-old-${process.pid}`;
rmSync(old, { recursive: true, force: true });
try {
  renameSync(finalDist, old);
} catch (err) {
  if (err.code !== 'ENOENT') throw err; // the first build: nothing to move aside
}
renameSync(dist, finalDist);
rmSync(old, { recursive: true, force: true });
