// `conclave run` loads dist/cli/run.cjs compiled with the code cache the build made (bin/runBundle.js).
// V8 takes a cache for any source of the same length, so the cache is used only for the text it was
// made from; and a stack through the bundle still names the TypeScript line. Each load runs in a
// process of its own, as `conclave run` does (one isolate, one compile of the file).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { baseEnv, ROOT, runProgram } from '../helpers/cli.ts';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.ts';

const RUN_BUNDLE = pathToFileURL(join(ROOT, 'bin/runBundle.js')).href;
const SOURCE_MAPS = pathToFileURL(join(ROOT, 'bin/sourceMapStacks.js')).href;
const dir = makeTmpDir();
after(() => removeTmpDir(dir));
const dist = join(dir, 'dist/');
const cli = join(dist, 'cli/');
mkdirSync(cli, { recursive: true });

// a stand-in for runtime/cli/runBundle.ts, bundled as the build bundles it (CommonJS, a source map)
const entry = join(dir, 'entry.ts');
writeFileSync(
  entry,
  [
    'export const answer: number = 41 + 1;',
    'export function stack(): string {',
    "  return new Error('where').stack ?? '';",
    '}',
    'export async function loadRunModules(): Promise<void> {}',
    '',
  ].join('\n'),
);
esbuild.buildSync({ entryPoints: [entry], outfile: join(cli, 'run.cjs'), bundle: true, format: 'cjs', platform: 'node', sourcemap: true, logLevel: 'error' });

/** load the bundle in a process of its own; what it saw */
async function load(opts: { lazyMaps?: boolean } = {}): Promise<{ cache: string; answer: number; stack: string }> {
  const script = [
    opts.lazyMaps ? `(await import(${JSON.stringify(SOURCE_MAPS)})).installLazySourceMaps(new URL(${JSON.stringify(pathToFileURL(dist).href)}));` : '',
    `const { loadRunBundle } = await import(${JSON.stringify(RUN_BUNDLE)});`,
    `const r = loadRunBundle(new URL(${JSON.stringify(pathToFileURL(cli).href)}));`,
    'console.log(JSON.stringify({ cache: r.cache, answer: r.exports.answer, stack: r.exports.stack() }));',
  ].join('\n');
  const r = await runProgram(process.execPath, ['--input-type=module', '-e', script], { env: baseEnv(), label: 'load run.cjs' });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function makeCache(): Promise<void> {
  const script = `import { writeFileSync } from 'node:fs'; import { makeRunCodeCache } from ${JSON.stringify(RUN_BUNDLE)}; writeFileSync(${JSON.stringify(join(cli, 'run.cjs.cache'))}, await makeRunCodeCache(new URL(${JSON.stringify(pathToFileURL(cli).href)})));`;
  const r = await runProgram(process.execPath, ['--input-type=module', '-e', script], { env: baseEnv({ CONCLAVE_CLI_IN_PROCESS: '1' }), label: 'make the code cache' });
  assert.equal(r.code, 0, r.stderr);
}

test('without a cache file the bundle is compiled as it is', async () => {
  rmSync(join(cli, 'run.cjs.cache'), { force: true });
  assert.deepEqual((await load()).cache, 'missing');
});

test('the cache the build makes is accepted, and a stack through the bundle names the TypeScript line', async () => {
  await makeCache();
  const r = await load({ lazyMaps: true });
  assert.equal(r.cache, 'accepted');
  assert.equal(r.answer, 42);
  assert.match(r.stack, new RegExp(`at (Object\\.)?stack \\(${entry.replaceAll('/', '\\/').replaceAll('.', '\\.')}:3:\\d+\\)`));
  // without the lazy maps the frame names the bundle, the same name wherever the package is
  assert.match((await load()).stack, /at (Object\.)?stack \(conclave\/dist\/cli\/run\.cjs:\d+:\d+\)/);
});

test('a run.cjs changed after the build (the same length) runs as it now reads, its old cache unused', async () => {
  await makeCache();
  const file = join(cli, 'run.cjs');
  const text = readFileSync(file, 'utf8');
  assert.ok(text.includes('41 + 1'));
  writeFileSync(file, text.replace('41 + 1', '40 + 1'));
  const r = await load();
  assert.equal(r.cache, 'stale');
  assert.equal(r.answer, 41);
  writeFileSync(file, text);
});
