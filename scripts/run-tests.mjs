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
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-reporter=${reporter}`, ...files],
  { stdio: 'inherit', cwd: root, env: process.env },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
