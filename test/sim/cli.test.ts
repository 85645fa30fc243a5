// `npm run sim`'s own command line: a mistyped option gets one `error:` line and the usage (exit 2),
// not a stack trace; --help prints the usage (exit 0); a run prints its summary.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const sim = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

test('npm run sim: a mistyped option is one error line and the usage, exit 2', () => {
  const r = sim('--seedz', '3');
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, /^error: Unknown option '--seedz'/);
  assert.match(lines[1]!, /^usage: npm run sim -- --seeds N --nodes K/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('npm run sim: --help prints the usage, exit 0; a run prints its summary', () => {
  const help = sim('--help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: npm run sim -- /);
  assert.match(help.stdout, /--auto-join/);
  const run = sim('--seeds', '1', '--nodes', '3', '--steps', '500');
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /sim: 1 seeds × 3 nodes, 0 violations/);
});
