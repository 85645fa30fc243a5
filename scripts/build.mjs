#!/usr/bin/env node
// `npm run build` (and `prepare`): compile machines/, actors/ and runtime/ to dist/ (JavaScript,
// declarations, source maps) and copy what tsc does not: the inspector page, which server.js serves
// from ./page/, and the store check that files.js runs in a child process (verify-child.mjs).
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const dist = `${root}dist/`;

rmSync(dist, { recursive: true, force: true }); // no stale output of a deleted or renamed module
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const built = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
if (built.status !== 0) {
  console.error('error: the TypeScript build failed (see above); fix it and run `npm run build` again');
  process.exit(built.status ?? 1);
}
// the page is plain JavaScript, HTML and CSS (no build step); its .d.ts files serve the tests only
cpSync(`${root}runtime/inspect/page/`, `${dist}runtime/inspect/page/`, {
  recursive: true,
  filter: (src) => !src.endsWith('.d.ts'),
});
// plain JavaScript run as `node verify-child.mjs DATA_DIR` next to files.js (runtime/store/files.ts)
cpSync(`${root}runtime/store/verify-child.mjs`, `${dist}runtime/store/verify-child.mjs`);
