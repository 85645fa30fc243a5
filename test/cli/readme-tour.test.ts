// The README's "Quick tour (real NATS)", run as a person pastes it: one bash script, line by line,
// every exit code checked against what the README says (0 unless its comment says "exit N").
// Only what cannot be pasted here changes: the first line (install and start nats-server on 4222)
// becomes this test's own nats-server, /tmp/ctrlN becomes a temp dir (also the working directory, where
// the tour's operator key is written; the test's own key is not given), and `npx conclave` runs the
// CLI from source (test/helpers/cli.ts's cliCommand; the package test checks `npx conclave` from the
// installed tarball).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { baseEnv, cliCommand, ROOT } from '../helpers/cli.ts';
import { type NatsServerHandle, startNatsServer } from '../helpers/natsServer.ts';
import { makeTmpDir, removeTmpDir } from '../helpers/tmp.ts';

function tourLines(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick tour (real NATS)'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the quick tour has a sh block');
  return block[1]!.split('\n').filter((l) => l.trim() !== '');
}

let nats: NatsServerHandle;
let dir: string;
let stopGroup = () => {};
before(async () => {
  nats = await startNatsServer();
  dir = makeTmpDir('conclave-tour-');
});
after(async () => {
  stopGroup();
  await nats?.stop();
  if (dir) removeTmpDir(dir);
});

test("the README's quick tour works pasted as is: every command exits as the README says", { timeout: 10 * 60_000 }, async () => {
  const lines = tourLines();
  assert.match(lines[0]!, /nats-server/, 'the first line starts nats-server');
  const expected: number[] = [];
  const conclave = cliCommand().map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
  const script = [`conclave() { ${conclave} "$@"; }`, 'trap \'kill $(jobs -p) 2>/dev/null; wait\' EXIT'];
  for (const line of lines.slice(1)) {
    const command = line.replace(/\s+#.*$/, '').replaceAll('npx conclave', 'conclave').replaceAll('/tmp/ctrl', `${dir}/ctrl`);
    if (command.endsWith('&')) {
      script.push(`${command.slice(0, -1)} >>"${dir}/background.log" 2>&1 &`);
      continue;
    }
    const exit = /exit (\d)/.exec(line.slice(line.indexOf('#')))?.[1];
    expected.push(line.includes('#') && exit !== undefined ? Number(exit) : 0);
    script.push(`${command}`, `echo "@@ exit $? @@ ${command.replaceAll('"', '\\"').replaceAll('$', '\\$')}"`);
  }
  const env = baseEnv({ NATS_URL: nats.url, CONCLAVE_PREFIX: undefined, CONCLAVE_OPERATOR_KEY: undefined, CONCLAVE_OPERATORS: undefined });
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    // its own process group: the nodes it starts in the background are killed with it, whatever happens
    const child = spawn('bash', ['-c', script.join('\n')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    stopGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // ESRCH: the group is gone already
      }
    };
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  stopGroup();
  const seen = [...result.stdout.matchAll(/@@ exit (\d+) @@ (.*)/g)].map((m) => ({ code: Number(m[1]), command: m[2]! }));
  const context = `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}\n--- background ---\n${safeRead(join(dir, 'background.log'))}`;
  assert.equal(seen.length, expected.length, `every command ran\n${context}`);
  for (const [i, s] of seen.entries()) assert.equal(s.code, expected[i], `${s.command}\n${context}`);
  assert.match(result.stdout, /"phase":"uninitialized"/, context);
  assert.match(result.stdout, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/m, `init printed a UUID v7\n${context}`);
  assert.match(result.stdout, /^blue$/m, `kv get printed the value\n${context}`);
  const list = result.stdout.split('\n').find((l) => l.startsWith('{"clusterId"'));
  assert.ok(list, `cluster list --json printed\n${context}`);
  assert.equal((JSON.parse(list) as { members: Array<{ voter: boolean }> }).members.filter((m) => m.voter).length, 3, context);
});

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return `(${(err as Error).message})`;
  }
}
