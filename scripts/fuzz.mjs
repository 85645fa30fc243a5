#!/usr/bin/env node
// `npm run fuzz -- --runs N [--seed S]`: the fuzz suite (test/fuzz) with more runs per property than
// `npm test` gives it. Arguments become FUZZ_RUNS / FUZZ_SEED for the tests (test/helpers/fuzz.ts).
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';

let values;
try {
  ({ values } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' } }, strict: true }));
} catch (err) {
  console.error(`error: ${err.message}; usage: npm run fuzz -- [--runs N] [--seed S]`);
  process.exit(2);
}
const env = { ...process.env };
if (values.runs !== undefined) {
  if (!/^[1-9][0-9]*$/.test(values.runs)) {
    console.error(`error: --runs takes a positive whole number, got ${JSON.stringify(values.runs)}`);
    process.exit(2);
  }
  env.FUZZ_RUNS = values.runs;
}
if (values.seed !== undefined) {
  if (!/^-?[0-9]+$/.test(values.seed)) {
    console.error(`error: --seed takes a whole number, got ${JSON.stringify(values.seed)}`);
    process.exit(2);
  }
  env.FUZZ_SEED = values.seed;
}
const root = new URL('..', import.meta.url).pathname;
const child = spawn(process.execPath, ['scripts/run-tests.mjs', 'test/fuzz/'], { stdio: 'inherit', cwd: root, env });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
