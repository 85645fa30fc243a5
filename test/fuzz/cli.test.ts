// Fuzz for a person's input: mutated `conclave` argument vectors and config files. Whatever is
// typed, the CLI ends with an exit code of the contract (0 done, 1 refused, 2 usage/config,
// 3 unreachable), a failure says so in exactly one `error: ` line, and nothing prints a stack
// trace. The CLI runs in one driver process (cliDriver.ts calls main() of runtime/cli/main.ts per
// command line: no process start per case) against a NATS port nobody listens on, so commands
// that need a cluster end as unreachable without waiting for one.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ConfigError, resolveRunConfig } from '../../runtime/config/config.ts';
import { baseEnv, ROOT } from '../helpers/cli.ts';
import { fuzzParams } from '../helpers/fuzz.ts';
import { freePort } from '../helpers/natsServer.ts';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** the driver process (cliDriver.ts): command lines in, outcomes out, one at a time */
class CliDriver {
  private readonly child: ChildProcess;
  private buffered = '';
  private waiting: ((line: string) => void) | null = null;
  private readonly exited: Promise<unknown>;
  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./cliDriver.ts', import.meta.url))], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => {
      this.buffered += chunk;
      const end = this.buffered.indexOf('\n');
      if (end < 0 || !this.waiting) return;
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 1);
      const waiting = this.waiting;
      this.waiting = null;
      waiting(line);
    });
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
  }

  run(argv: string[]): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.waiting = (line) => resolve(JSON.parse(line) as Outcome);
      void this.exited.then(() => reject(new Error(`the CLI driver exited while running conclave ${JSON.stringify(argv)}`)));
      this.child.stdin!.write(`${JSON.stringify(argv)}\n`);
    });
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    await this.exited;
  }
}

/** the contract for a person: a known exit code; a failure is one `error: ` line; never a stack trace */
function assertClear(argv: string[], r: Outcome): void {
  const context = `conclave ${JSON.stringify(argv)} → ${r.code}\n${r.stderr}`;
  assert.ok([0, 1, 2, 3].includes(r.code), context);
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `stack trace: ${context}`);
  if (r.code !== 0) assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('error: ')).length, 1, context);
}

/** the text of any JSON value, including nesting far deeper than any schema (or JSON.stringify) takes */
const anyJsonText = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.nat({ max: 5000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
);
const KEYS = ['name', 'dataDir', 'prefix', 'nats', 'initFrom', 'initialMembers', 'joinSecretFile', 'join', 'health', 'inspect', 'log', 'raft'];
const VALID = { name: 'n1', dataDir: 'data', prefix: 'p', nats: { servers: 'nats://127.0.0.1:4222' }, raft: { heartbeatMs: 50, electionTimeoutMs: 500 }, log: { level: 'warn' } };
const VALID_TEXT = JSON.stringify(VALID);

/** a config file's text: random keys and values, a valid file with one value changed, or bytes */
const configText = fc.oneof(
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), anyJsonText), { maxLength: 4 })
    .map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  fc.tuple(fc.constantFrom(...KEYS, 'raft.heartbeatMs', 'raft.electionTimeoutMs', 'nats.servers', 'nats.tls', 'join.cluster', 'log.level'), anyJsonText).map(([path, value]) => {
    const [head, tail] = path.split('.') as [string, string | undefined];
    const { [head]: inner, ...rest } = VALID as Record<string, unknown>;
    const innerText = tail === undefined ? value : `{${Object.entries((inner as object) ?? {}).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`).join('')}${JSON.stringify(tail)}:${value}}`;
    return `{${Object.entries(rest).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`).join('')}${JSON.stringify(head)}:${innerText}}`;
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 64 })).map(([cut, bytes]) => VALID_TEXT.slice(0, cut % 120) + Buffer.from(bytes).toString('latin1')),
);

const TEMPLATES: string[][] = [
  ['status', '--node', 'n1'],
  ['init', '--node', 'n1'],
  ['kv', 'put', 'color', '{"a":[1,2]}', '--via', 'n1'],
  ['kv', 'get', 'color', '--via', 'n1', '--stale'],
  ['kv', 'del', 'color', '--via', 'n1'],
  ['cluster', 'add', 'n2', '--via', 'n1', '--timeout', '500'],
  ['cluster', 'remove', 'n2', '--via', 'n1'],
  ['cluster', 'list', '--via', 'n1', '--json'],
  ['cluster', 'transfer-leadership', 'n2', '--via', 'n1'],
  ['snapshot', 'save', 'SNAPSHOT', '--via', 'n1'],
  ['recover', '--data-dir', 'DATA'],
  ['machines', 'export', 'raft', '--format', 'mermaid'],
  ['--help'],
];
const token = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', '-', '--', '--json', '--via', '--node', '--timeout', '--nats', '--prefix', '*', '>', 'a.b', 'n1.admin', '-1', '0', '1e309', 'NaN', 'nats://127.0.0.1:1', '--data-dir'),
  fc.nat({ max: 3000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
);
const argvMutation = fc.record({
  template: fc.nat(),
  edits: fc.array(fc.record({ kind: fc.constantFrom('replace', 'insert', 'delete'), at: fc.nat(), token }), { minLength: 1, maxLength: 3 }),
});

describe('CLI fuzz: a person gets a clear error, never a crash (issue 17)', () => {
  let dir: string;
  let cli: CliDriver;
  const conclave = (argv: string[]) => cli.run(argv);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'conclave-fuzz-cli-'));
    // nobody listens on that port: commands that need a cluster are unreachable at once
    cli = new CliDriver(baseEnv({ NATS_URL: `nats://127.0.0.1:${await freePort()}`, CONCLAVE_PREFIX: undefined }));
  });
  after(async () => {
    await cli?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a config file of any content is a configuration or one usage error naming the problem (and `run` exits 2 on it)', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(configText, async (text) => {
        const file = join(dir, `config-${n++}.json`);
        await writeFile(file, text);
        let refused: unknown = null;
        try {
          resolveRunConfig({ config: file }, {});
        } catch (err) {
          refused = err;
        }
        if (refused === null) return;
        assert.ok(refused instanceof ConfigError, `not a usage error: ${String((refused as Error)?.stack ?? refused)}`);
        const argv = ['run', '--config', file];
        const r = await conclave(argv);
        assert.equal(r.code, 2, r.stderr);
        assertClear(argv, r);
      }),
      fuzzParams(150),
    );
  });

  it('mutated command lines end with a contract exit code and at most one clear error line', async () => {
    const codes = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(argvMutation, async ({ template, edits }) => {
        const argv = TEMPLATES[template % TEMPLATES.length]!.map((t) => (t === 'DATA' ? join(dir, 'no-store') : t === 'SNAPSHOT' ? join(dir, 'snap.json') : t));
        for (const edit of edits) {
          const at = edit.at % (argv.length + 1);
          if (edit.kind === 'insert') argv.splice(at, 0, edit.token);
          else if (edit.kind === 'replace' && at < argv.length) argv[at] = edit.token;
          else if (argv.length > 0) argv.splice(at % argv.length, 1);
        }
        // servers, not commands: they run until stopped
        if (['run', 'demo', 'inspect'].includes(argv[0] ?? '')) return;
        const r = await conclave(argv);
        assertClear(argv, r);
        codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      }),
      fuzzParams(150),
    );
    console.log(`exit codes: ${[...codes].map(([code, n]) => `${code}: ${n}`).join(', ')}`);
  });
});
