// `conclave run` loads the CLI as one CommonJS file, dist/cli/run.cjs, compiled with the V8 code cache
// that the build wrote beside it (run.cjs.cache): V8 then neither parses the file nor compiles the
// functions that loading the controller's modules runs. Node 20 has no code cache for ES modules, and
// three controllers starting at once on two cores wait for each other's CPU (README, "The CLI's
// start-up"). The cache is made by the build with this same function (scripts/build.mjs) and is a
// file of the package like the code: nothing is written at run time.
//
// V8 accepts a cache made by the same V8 with the same flags for a source of the same LENGTH: it does
// not compare the text. So the cache starts with the SHA-256 of the run.cjs it was made from, and is
// used only for that text; a cache refused (another node, other V8 flags, a run.cjs changed since the
// build) costs the compile it would have saved, nothing else.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { RUN_BUNDLE_NAME } from './sourceMapStacks.js';

const HASH_BYTES = 32;

/**
 * Compile and run dist/cli/run.cjs (in `cli`, the folder's URL): its main.ts runs the command line
 * unless CONCLAVE_CLI_IN_PROCESS=1. `cache`: 'use' the cache beside it, or 'none'.
 * @param {URL} cli
 * @param {'use' | 'none'} cache
 * @returns {{ exports: Record<string, unknown>, script: Script, sourceHash: Buffer, cache: 'accepted' | 'rejected' | 'stale' | 'missing' | 'none' }}
 */
export function loadRunBundle(cli, cache = 'use') {
  const url = new URL('run.cjs', cli);
  const file = fileURLToPath(url);
  const source = readFileSync(file);
  const sourceHash = createHash('sha256').update(source).digest();
  let cachedData;
  let verdict = cache === 'use' ? 'missing' : 'none';
  if (cache === 'use') {
    try {
      const stored = readFileSync(`${file}.cache`);
      if (stored.subarray(0, HASH_BYTES).equals(sourceHash)) cachedData = stored.subarray(HASH_BYTES);
      else verdict = 'stale';
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  // the wrapper node gives a CommonJS module. Its name: V8 keeps the one the cache was made under
  // (the build's folder, elsewhere than an installed package), so a name the same everywhere, which
  // bin/sourceMapStacks.js maps to this file's source map
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`, {
    filename: RUN_BUNDLE_NAME,
    cachedData,
  });
  if (cachedData) verdict = script.cachedDataRejected ? 'rejected' : 'accepted';
  // for the run's first log line (runtime/cli/run.ts): whether the start had its cache
  globalThis[Symbol.for('conclave.runCodeCache')] = verdict;
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, script, sourceHash, cache: verdict };
}

/**
 * The build's step (scripts/build.mjs), in a process of its own started as `conclave run` starts
 * (plain node, no flags): load run.cjs without a cache and without running a command, evaluate the
 * modules a `run` loads, then write the code V8 compiled, after the hash of the text it belongs to.
 * @param {URL} cli
 * @returns {Promise<Buffer>} the cache file's contents
 */
export async function makeRunCodeCache(cli) {
  if (process.env.CONCLAVE_CLI_IN_PROCESS !== '1') throw new Error('makeRunCodeCache needs CONCLAVE_CLI_IN_PROCESS=1 (else loading run.cjs runs a command)');
  const { exports, script, sourceHash } = loadRunBundle(cli, 'none');
  await /** @type {() => Promise<void>} */ (exports.loadRunModules)();
  return Buffer.concat([sourceHash, script.createCachedData()]);
}
