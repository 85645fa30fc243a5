#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in runner. Node 20 does not expand globs, and a
// bare `node --test` silently finds no .ts files, so we list them ourselves and fail on none.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'artifacts') continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full));
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}

let files = walk(join(root, 'test')).sort();
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('error: no test files found under test/ (expected **/*.test.ts); refusing to report a pass');
  process.exit(1);
}

const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// TAP when not on a terminal (CI): its closing lines are `# tests N`, `# pass N`, `# fail N`.
const reporter = process.stdout.isTTY ? 'spec' : 'tap';
// The tests, and every program they start (examples, the CLI), run the TypeScript source: the
// package's own name (`import … from 'conclave'`) resolves to runtime/index.ts under this condition
// (package.json `exports`), not to a dist/ build that may be older than the source.
// test/package/ checks the build itself, as a user installs it.
const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --conditions=conclave-source`.trim() };
// --test-force-exit: a file whose tests have all ended exits even if something it started still
// holds its event loop (a server a failed test left behind); the helpers' 'exit' hooks then kill
// the processes it started. Without it one leak hangs the whole run with every test reported.
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, `--test-reporter=${reporter}`, ...files],
  { stdio: 'inherit', cwd: root, env },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
