// `npm run docs:screenshots`: the inspector screenshots in docs/ (and the README), taken anew. The
// browser tests take them while they drive the real page (test/inspector/browser.test.ts: a NATS
// cluster whose leader is killed; controls.test.ts: the demo's join handshakes and an append round); this runs those two
// tests and, only when both pass, copies their pictures over the ones in docs/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** docs/ name → what the tests write under test/artifacts/ */
const SHOTS = ['inspector-overview.png', 'inspector-focus.png', 'inspector-elections.png', 'inspector-sequence.png', 'inspector-messages.png', 'inspector-append-round.png'];

const started = Date.now();
process.stdout.write('running the browser tests that take the screenshots (about a minute)…\n');
const run = spawnSync(process.execPath, [join(ROOT, 'scripts/run-tests.mjs'), 'test/inspector/browser.test.ts', 'test/inspector/controls.test.ts'], { cwd: ROOT, stdio: 'inherit' });
if (run.status !== 0) {
  process.stderr.write(`error: the browser tests failed (exit ${run.status ?? run.signal}), so docs/ keeps its screenshots; fix the tests first (their output is above)\n`);
  process.exit(1);
}
for (const name of SHOTS) {
  const from = join(ROOT, 'test/artifacts', name);
  if (!existsSync(from) || statSync(from).mtimeMs < started) {
    process.stderr.write(`error: test/artifacts/${name} was not taken by this run; a test no longer takes it (see SHOTS in scripts/docs-screenshots.mjs)\n`);
    process.exit(1);
  }
  copyFileSync(from, join(ROOT, 'docs', name));
  process.stdout.write(`  docs/${name}\n`);
}
process.stdout.write(`${SHOTS.length} screenshots updated in docs/; review them with git diff --stat docs/ before committing\n`);
