// The CLI processes the tests start run the source as it is: under `npm test` from the JavaScript
// copy scripts/run-tests.mjs transpiled at the start of the run, alone through tsx (helpers/cli.ts).
// Either way a stack trace names the TypeScript line, as it does for a developer running the source.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { nodeArgsFor, ROOT, runProgram, transpiledOf } from '../helpers/cli.ts';

const MAIN = join(ROOT, 'runtime/cli/main.ts');
const ERRORS = join(ROOT, 'runtime/errors.ts');

test('under npm test the CLI starts from this run’s transpiled copy, never from dist/', () => {
  const args = nodeArgsFor(MAIN);
  if (process.env.CONCLAVE_TEST_JS) {
    assert.deepEqual(args, ['--enable-source-maps', join(process.env.CONCLAVE_TEST_JS, 'runtime/cli/main.js')]);
    assert.ok(!args[1]!.startsWith(join(ROOT, 'dist')));
  } else {
    assert.deepEqual(args, ['--import', 'tsx', MAIN]); // a test file run alone
  }
});

test('a stack trace in a process the tests start names the .ts file and line', async () => {
  const module = transpiledOf(ERRORS) ?? ERRORS;
  const loader = module === ERRORS ? ['--import', 'tsx'] : ['--enable-source-maps'];
  const script = `import { conclaveError } from ${JSON.stringify(pathToFileURL(module).href)}; console.log(conclaveError('USAGE', 'x').stack)`;
  const r = await runProgram(process.execPath, [...loader, '--input-type=module', '-e', script], { label: 'a stack through runtime/errors' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^ {4}at conclaveError \\(${ERRORS.replaceAll('/', '\\/').replaceAll('.', '\\.')}:\\d+:\\d+\\)$`, 'm'));
});
